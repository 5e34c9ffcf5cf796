//! Wiring only: build the clients once, then serve events (see `handler.rs`).

use std::process::ExitCode;
use std::sync::Arc;

use dora_aggregator::Aggregator;
use fleet_shared::runner;

#[tokio::main]
async fn main() -> ExitCode {
    runner::init_tracing();
    let aggregator = match Aggregator::from_cold_start().await {
        Ok(d) => Arc::new(d),
        Err(e) => return runner::fail(e),
    };
    runner::run(|event, inv| {
        let aggregator = aggregator.clone();
        async move { aggregator.handle(event, inv).await }
    })
    .await
}
