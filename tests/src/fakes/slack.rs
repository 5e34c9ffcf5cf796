//! A fake Slack incoming webhook. No Slack can run here; this keeps the parts of its
//! behaviour the functions rely on: `POST /services/<team>/<bot>/<token>` with a JSON body
//! carrying `text` (or `blocks`) answers 200 `ok`; a body that is not JSON answers 400
//! `invalid_payload`; no text answers 400 `no_text`; another path answers 404 `no_service`.
//! A failure can be injected to test that notifications never fail the work they report.
//!
//! It also serves the `response_url`s of slash commands and button clicks
//! (`POST /commands|actions/<team>/<id>/<token>`, JSON with `text` or `blocks`): each
//! takes at most five posts, as Slack's do ("Handling user interaction"), then answers
//! 404 `used_url`; a URL it did not mint answers 404 `expired_url`. (Their 30-minute
//! lifetime is real time, which tests do not wait for.)

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::Value;

#[derive(Default)]
struct Inner {
    messages: Vec<Value>,
    fail_with: Option<u16>,
    /// Minted response URL paths, and how often each was posted to.
    minted: std::collections::HashMap<String, usize>,
    /// Posts to response URLs: (path, body), in order.
    responses: Vec<(String, Value)>,
}

/// The most posts one `response_url` takes (Slack: "up to 5 times within 30 minutes").
pub const RESPONSE_URL_USES: usize = 5;

async fn response_url(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((kind, team, id, token)): Path<(String, String, String, String)>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let Ok(mut inner) = inner.lock() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "lock");
    };
    let path = format!("/{kind}/{team}/{id}/{token}");
    let Some(uses) = inner.minted.get_mut(&path) else {
        return (StatusCode::NOT_FOUND, "expired_url");
    };
    if *uses >= RESPONSE_URL_USES {
        return (StatusCode::NOT_FOUND, "used_url");
    }
    *uses += 1;
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload");
    };
    if json.get("text").and_then(Value::as_str).is_none() && json.get("blocks").is_none() {
        return (StatusCode::BAD_REQUEST, "no_text");
    }
    inner.responses.push((path, json));
    (StatusCode::OK, "ok")
}

#[derive(Clone)]
pub struct FakeSlack {
    /// The webhook URL to configure as `slack_webhook`.
    pub url: String,
    /// `http://127.0.0.1:<port>/`: what its response URLs start with.
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

async fn webhook(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((_team, _bot, _token)): Path<(String, String, String)>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let Ok(mut inner) = inner.lock() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "lock");
    };
    if let Some(code) = inner.fail_with {
        return (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "injected_failure",
        );
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload");
    };
    if json.get("text").and_then(Value::as_str).is_none() && json.get("blocks").is_none() {
        return (StatusCode::BAD_REQUEST, "no_text");
    }
    inner.messages.push(json);
    (StatusCode::OK, "ok")
}

impl FakeSlack {
    /// Serves on a free loopback port for as long as the current tokio runtime lives.
    pub async fn start() -> FakeSlack {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/services/{team}/{bot}/{token}", post(webhook))
            .route("/{kind}/{team}/{id}/{token}", post(response_url))
            .fallback(|| async { (StatusCode::NOT_FOUND, "no_service") })
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake slack");
        let addr = listener.local_addr().expect("fake slack address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSlack {
            url: format!("http://{addr}/services/T000/B000/fake-token"),
            base: format!("http://{addr}/"),
            inner,
        }
    }

    /// A fresh `response_url`, as Slack puts in a slash command (`commands`) or a click
    /// (`actions`).
    pub fn response_url(&self, kind: &str) -> String {
        let path = format!("/{kind}/T000/{}/token", crate::unique("r"));
        if let Ok(mut i) = self.inner.lock() {
            i.minted.insert(path.clone(), 0);
        }
        format!("{}{}", self.base.trim_end_matches('/'), path)
    }

    /// The bodies posted to `url` (a [`Self::response_url`]) so far.
    pub fn responses(&self, url: &str) -> Vec<Value> {
        let path = url
            .strip_prefix(self.base.trim_end_matches('/'))
            .unwrap_or(url);
        self.inner
            .lock()
            .map(|i| {
                i.responses
                    .iter()
                    .filter(|(p, _)| p == path)
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Messages received so far.
    pub fn messages(&self) -> Vec<Value> {
        self.inner
            .lock()
            .map(|i| i.messages.clone())
            .unwrap_or_default()
    }

    /// Texts received so far.
    pub fn texts(&self) -> Vec<String> {
        self.messages()
            .iter()
            .filter_map(|m| m.get("text").and_then(Value::as_str).map(String::from))
            .collect()
    }

    /// Answer every request with `status` from now on (`None`: behave again).
    pub fn fail_with(&self, status: Option<u16>) {
        if let Ok(mut i) = self.inner.lock() {
            i.fail_with = status;
        }
    }
}
