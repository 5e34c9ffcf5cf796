//! Wiring only: build the clients once, then serve events (see `handler.rs`).

use std::process::ExitCode;
use std::sync::Arc;

use dns_updater::Updater;
use fleet_shared::runner;

#[tokio::main]
async fn main() -> ExitCode {
    runner::init_tracing();
    let updater = match Updater::from_cold_start().await {
        Ok(d) => Arc::new(d),
        Err(e) => return runner::fail(e),
    };
    runner::run(|event, inv| {
        let updater = updater.clone();
        async move { updater.handle(event, inv).await }
    })
    .await
}
