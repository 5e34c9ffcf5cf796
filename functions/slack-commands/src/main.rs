//! Wiring only: the cold start and the handler are in `lambda.rs` and `handler.rs`.

use std::process::ExitCode;

use fleet_shared::runner;
use slack_commands::lambda::Deployed;

#[tokio::main]
async fn main() -> ExitCode {
    runner::serve::<Deployed>().await
}
