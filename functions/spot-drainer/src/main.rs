//! Wiring only: the cold start and the handler are in `handler.rs`.

use std::process::ExitCode;

use fleet_shared::runner;
use spot_drainer::Drainer;

#[tokio::main]
async fn main() -> ExitCode {
    runner::serve::<Drainer>().await
}
