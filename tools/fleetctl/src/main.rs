//! `fleetctl`: wiring only. The command line is `cli`, the request documents `request`,
//! where they go `invoke`, the tables `render`; `wait` and `kubeconfig` are their own.

mod cli;
mod commands;
mod invoke;
mod kubeconfig;
mod render;
mod request;
mod wait;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // The handlers' logs (with --local) only when asked for: stdout is the answer.
    if std::env::var_os("RUST_LOG").is_some() {
        fleet_shared::runner::init_tracing();
    }
    let cli = cli::Cli::parse();
    let style = render::Style::detect();
    match commands::run(cli, style).await {
        Ok(done) => done.code(),
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.exit.code()
        }
    }
}
