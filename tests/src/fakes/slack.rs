//! A fake Slack incoming webhook. No Slack can run here; this keeps the parts of its
//! behaviour the functions rely on: `POST /services/<team>/<bot>/<token>` with a JSON body
//! carrying `text` (or `blocks`) answers 200 `ok`; a body that is not JSON answers 400
//! `invalid_payload`; no text answers 400 `no_text`; another path answers 404 `no_service`.
//! A failure can be injected to test that notifications never fail the work they report.

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
}

#[derive(Clone)]
pub struct FakeSlack {
    /// The webhook URL to configure as `slack_webhook`.
    pub url: String,
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
            inner,
        }
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
