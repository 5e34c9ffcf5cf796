//! A fake Prometheus Pushgateway: records each PUT's path and body (no Pushgateway can
//! run here; its HTTP API is `PUT /metrics/job/<job>` with the text format).

use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct FakePushgateway {
    pub url: String,
    pushes: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakePushgateway {
    pub async fn start() -> FakePushgateway {
        let pushes: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let state = pushes.clone();
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method, uri: axum::http::Uri, body: String| {
                let state = state.clone();
                async move {
                    if method != axum::http::Method::PUT {
                        return axum::http::StatusCode::METHOD_NOT_ALLOWED;
                    }
                    if let Ok(mut p) = state.lock() {
                        p.push((uri.path().to_string(), body));
                    }
                    axum::http::StatusCode::OK
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind pushgateway");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakePushgateway {
            url: format!("http://{addr}"),
            pushes,
        }
    }

    pub fn pushes(&self) -> Vec<(String, String)> {
        self.pushes.lock().map(|p| p.clone()).unwrap_or_default()
    }
}
