//! Wiring only: build the clients once, then serve events (see `handler.rs`).

use std::process::ExitCode;
use std::sync::Arc;

use fleet_shared::runner;
use spot_drainer::Drainer;

#[tokio::main]
async fn main() -> ExitCode {
    runner::init_tracing();
    let drainer = match Drainer::from_cold_start().await {
        Ok(d) => Arc::new(d),
        Err(e) => return runner::fail(e),
    };
    runner::run(|event, inv| {
        let drainer = drainer.clone();
        async move { drainer.handle(event, inv).await }
    })
    .await
}
