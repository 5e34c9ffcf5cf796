//! Wiring only: build the clients once, then serve events (see `handler.rs`).

use std::process::ExitCode;
use std::sync::Arc;

use cluster_scheduler::Scheduler;
use fleet_shared::runner;

#[tokio::main]
async fn main() -> ExitCode {
    runner::init_tracing();
    let scheduler = match Scheduler::from_cold_start().await {
        Ok(s) => Arc::new(s),
        Err(e) => return runner::fail(e),
    };
    runner::run(|event, inv| {
        let scheduler = scheduler.clone();
        async move { scheduler.handle(event, inv).await }
    })
    .await
}
