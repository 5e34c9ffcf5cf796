//! Wiring only: the cold start and the handler are in `lambda.rs` and `handler.rs`.

use std::process::ExitCode;

use fleet_shared::runner;
use slack_commands::lambda::LambdaDispatch;
use slack_commands::SlackCommands;

#[tokio::main]
async fn main() -> ExitCode {
    runner::serve::<SlackCommands<LambdaDispatch>>().await
}
