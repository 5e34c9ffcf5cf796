//! `fleet-config check <file>`: the validation every function runs at cold start (unknown
//! keys, types, values), before `make deploy` stores the config (`infra/put-config.py`).
//! Prints `ok: ...` and exits 0, or the error naming the key and exits 1; 2 on bad usage.

use std::process::ExitCode;

use fleet_shared::config::FleetConfig;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [command, path] = args.as_slice() else {
        eprintln!("usage: fleet-config check <file.toml>");
        return ExitCode::from(2);
    };
    if command != "check" {
        eprintln!("usage: fleet-config check <file.toml>");
        return ExitCode::from(2);
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            return ExitCode::from(1);
        }
    };
    match FleetConfig::parse(&text) {
        Ok(c) => {
            println!("ok: {path}: {} cluster(s)", c.clusters.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {path}: {e}");
            ExitCode::from(1)
        }
    }
}
