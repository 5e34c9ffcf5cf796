//! Wiring only: the cold start and the handler are in `handler.rs`.

use std::process::ExitCode;

use cost_reporter::Reporter;
use fleet_shared::runner;

#[tokio::main]
async fn main() -> ExitCode {
    runner::serve::<Reporter>().await
}
