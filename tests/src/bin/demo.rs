//! `make demo` (see `fleet_tests::demo`). `--json` prints JSON lines instead of text.

use std::process::ExitCode;

use fleet_tests::demo;

#[tokio::main]
async fn main() -> ExitCode {
    let json = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--json") => true,
        Some(_) => {
            eprintln!("usage: demo [--json]");
            return ExitCode::from(2);
        }
    };
    if !json {
        println!("infra-fleet demo: Monday 2026-11-23 and the night after, virtual time (UTC),");
        println!("the example config (infra/fleet.example.toml), AWS played by moto server.\n");
    }
    let report = demo::run(|e| {
        if json {
            println!("{}", e.to_json());
        } else {
            println!("{}", demo::format_entry(e));
        }
    })
    .await;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("demo failed: {e}");
            return ExitCode::from(1);
        }
    };
    if json {
        println!("{}", serde_json::json!({ "status": report.status }));
        println!("{}", serde_json::json!({ "dora": report.dora }));
        println!("{}", serde_json::json!({ "cost": report.cost }));
    } else {
        println!("{}", demo::summary(&report));
    }
    match demo::check(&report) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo did not go as the timeline says: {e}");
            ExitCode::from(1)
        }
    }
}
