//! Wiring only: the cold start and the handler are in `handler.rs`.

use std::process::ExitCode;

use dora_aggregator::Aggregator;
use fleet_shared::runner;

#[tokio::main]
async fn main() -> ExitCode {
    runner::serve::<Aggregator>().await
}
