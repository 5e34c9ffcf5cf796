//! Injected faults: a status code for the next N requests or for the n-th, a connection
//! broken mid-response, latency, and pods deleted between list and evict.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{status, FakeKube, Store, CONNECTION_RESET};

/// Marks a response whose connection is broken on purpose ([`CONNECTION_RESET`]).
#[derive(Clone, Copy)]
pub(super) struct BrokenConnection;

/// The fault injected into this request, if any: the one set for it with
/// [`FakeKube::fail_request`] (a status, or a connection broken mid-response), else the
/// next of [`FakeKube::fail_next`]'s.
pub(super) fn injected(s: &mut Store) -> Option<Response> {
    let scheduled = match s.fault_at {
        Some((0, code)) => {
            s.fault_at = None;
            Some(code)
        }
        Some((n, code)) => {
            s.fault_at = Some((n - 1, code));
            None
        }
        None => None,
    };
    if scheduled == Some(CONNECTION_RESET) {
        let broken = futures::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset (injected)",
            ))
        });
        let mut response = (
            StatusCode::OK,
            [("content-type", "application/json")],
            axum::body::Body::from_stream(broken),
        )
            .into_response();
        response.extensions_mut().insert(BrokenConnection);
        return Some(response);
    }
    scheduled.or_else(|| s.faults.pop_front()).map(|code| {
        let reason = match code {
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            _ => "Injected",
        };
        status(code, reason, format!("injected fault {code}"))
    })
}

impl FakeKube {
    /// Every request waits this long first.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency)
    }

    /// The next `n` requests fail with `code`.
    pub fn fail_next(&self, n: usize, code: u16) {
        self.with(|s| s.faults.extend(std::iter::repeat_n(code, n)))
    }

    /// The `n`-th request from now (1 = the next) fails with `code`, or breaks off
    /// mid-response with [`CONNECTION_RESET`].
    pub fn fail_request(&self, n: usize, code: u16) {
        self.with(|s| s.fault_at = Some((n.saturating_sub(1), code)))
    }

    /// Whether the fault set with [`Self::fail_request`] has happened.
    pub fn fault_pending(&self) -> bool {
        self.store
            .lock()
            .map(|s| s.fault_at.is_some())
            .unwrap_or(false)
    }

    /// `namespace/name` is deleted by someone else just before its eviction arrives (the
    /// drainer listed it, then it went).
    pub fn vanish_before_evict(&self, pod: &str) {
        self.with(|s| s.vanish_before_evict.push(pod.to_string()))
    }
}
