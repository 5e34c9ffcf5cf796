//! Wiring only: build the clients once, then serve events (see `handler.rs`).

use std::process::ExitCode;
use std::sync::Arc;

use cost_reporter::Reporter;
use fleet_shared::runner;

#[tokio::main]
async fn main() -> ExitCode {
    runner::init_tracing();
    let reporter = match Reporter::from_cold_start().await {
        Ok(d) => Arc::new(d),
        Err(e) => return runner::fail(e),
    };
    runner::run(|event, inv| {
        let reporter = reporter.clone();
        async move { reporter.handle(event, inv).await }
    })
    .await
}
