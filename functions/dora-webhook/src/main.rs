//! Wiring only: the cold start and the handler are in `handler.rs`.

use std::process::ExitCode;

use dora_webhook::Webhook;
use fleet_shared::runner;

#[tokio::main]
async fn main() -> ExitCode {
    runner::serve::<Webhook>().await
}
