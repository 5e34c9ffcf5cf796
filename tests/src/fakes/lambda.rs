//! A local stand-in for the Lambda Runtime API, so a function binary can be run the way
//! Lambda runs it: `GET /2018-06-01/runtime/invocation/next` hands out queued events
//! (with the request id and deadline headers), `POST .../{id}/response` and
//! `.../{id}/error` collect the answers, `POST .../init/error` a failed cold start. When
//! the queue is empty, `next` waits, as Lambda's does between invocations.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<(String, Value)>,
    answers: Vec<(String, Answer)>,
    init_error: Option<Value>,
    /// When the first `next` arrived: the end of the cold start.
    first_poll: Option<std::time::Instant>,
}

#[derive(Clone)]
pub struct FakeLambda {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    inner: Arc<Mutex<Inner>>,
}

async fn next(State(inner): State<Arc<Mutex<Inner>>>) -> impl IntoResponse {
    if let Ok(mut i) = inner.lock() {
        i.first_poll.get_or_insert_with(std::time::Instant::now);
    }
    loop {
        let item = inner.lock().ok().and_then(|mut i| i.queue.pop_front());
        if let Some((id, event)) = item {
            let mut headers = HeaderMap::new();
            // Real time, as the Lambda service sets it: a wall-clock instant a minute ahead.
            let deadline = jiff::Timestamp::now().as_millisecond() + 60_000;
            let values = [
                ("lambda-runtime-aws-request-id", id),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:eu-west-1:123456789012:function:fleet".to_string(),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000".to_string(),
                ),
            ];
            for (k, v) in values {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    headers.insert(k, v);
                }
            }
            return (StatusCode::OK, headers, event.to_string());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn parse(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::String(String::from_utf8_lossy(body).into()))
}

impl FakeLambda {
    /// The function binary `bin` set up as Lambda starts it, polling this Runtime API:
    /// the `AWS_LAMBDA_*` variables Lambda sets for function `function`, and AWS (moto's
    /// endpoint, the local region and table). The caller adds `FLEET_CONFIG`,
    /// `FLEET_STACK` and where the output goes.
    pub fn function_process(
        &self,
        bin: &std::path::Path,
        function: &str,
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(bin);
        command
            .env("AWS_LAMBDA_RUNTIME_API", &self.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function}"),
            )
            .env("AWS_ENDPOINT_URL", &crate::moto().endpoint)
            .env("AWS_REGION", crate::REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("FLEET_TABLE", crate::LOCAL_TABLE)
            .kill_on_drop(true);
        command
    }

    pub async fn start() -> FakeLambda {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app =
            Router::new()
                .route("/2018-06-01/runtime/invocation/next", get(next))
                .route(
                    "/2018-06-01/runtime/invocation/{id}/response",
                    post(
                        |State(i): State<Arc<Mutex<Inner>>>,
                         Path(id): Path<String>,
                         body: Bytes| async move {
                            if let Ok(mut i) = i.lock() {
                                i.answers.push((id, Answer::Response(parse(&body))));
                            }
                            StatusCode::ACCEPTED
                        },
                    ),
                )
                .route(
                    "/2018-06-01/runtime/invocation/{id}/error",
                    post(
                        |State(i): State<Arc<Mutex<Inner>>>,
                         Path(id): Path<String>,
                         body: Bytes| async move {
                            if let Ok(mut i) = i.lock() {
                                i.answers.push((id, Answer::Error(parse(&body))));
                            }
                            StatusCode::ACCEPTED
                        },
                    ),
                )
                .route(
                    "/2018-06-01/runtime/init/error",
                    post(
                        |State(i): State<Arc<Mutex<Inner>>>, body: Bytes| async move {
                            if let Ok(mut i) = i.lock() {
                                i.init_error = Some(parse(&body));
                            }
                            StatusCode::ACCEPTED
                        },
                    ),
                )
                .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake lambda");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeLambda {
            address: addr.to_string(),
            inner,
        }
    }

    /// When the function first asked for an invocation (its cold start ended).
    pub fn first_poll(&self) -> Option<std::time::Instant> {
        self.inner.lock().ok().and_then(|i| i.first_poll)
    }

    /// Queues an invocation; returns its request id.
    pub fn invoke(&self, event: Value) -> String {
        let id = crate::unique("request");
        if let Ok(mut i) = self.inner.lock() {
            i.queue.push_back((id.clone(), event));
        }
        id
    }

    /// Waits (up to `timeout`) for the answer to `id`.
    pub async fn answer(&self, id: &str, timeout: Duration) -> Option<Answer> {
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            let found = self.inner.lock().ok().and_then(|i| {
                i.answers
                    .iter()
                    .find(|(a, _)| a == id)
                    .map(|(_, ans)| ans.clone())
            });
            if found.is_some() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}
