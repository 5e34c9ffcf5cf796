//! `make demo` (see `fleet_tests::demo`): `demo [--date <a Monday>] [--json]`. `--date`
//! replays another Monday (default 2026-11-23); `--json` prints JSON lines instead of text.

use std::process::ExitCode;

use fleet_tests::demo::{self, Day};

const USAGE: &str = "usage: demo [--date YYYY-MM-DD (a Monday)] [--json]";

/// `(day, json)` from the arguments.
fn args(mut args: impl Iterator<Item = String>) -> Result<(Day, bool), String> {
    let mut day = Day::default();
    let mut json = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--date" => {
                let d = args.next().ok_or("--date needs a date")?;
                day = Day::parse(&d)?;
            }
            _ if a.starts_with("--date=") => day = Day::parse(&a["--date=".len()..])?,
            _ => return Err(format!("unknown argument `{a}`")),
        }
    }
    Ok((day, json))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (day, json) = match args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !json {
        println!(
            "infra-fleet demo: Monday {} and the night after, virtual time (UTC), whatever",
            day.monday
        );
        println!("today's date; the example config (infra/fleet.example.toml), AWS played by moto server.\n");
    }
    let report = demo::run(day, |e| {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<(Day, bool), String> {
        args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(&[]), Ok((Day::default(), false)));
        let (day, json) = parse(&["--date", "2027-03-29", "--json"]).expect("args");
        assert_eq!(
            (day.monday.to_string().as_str(), json),
            ("2027-03-29", true)
        );
        assert_eq!(
            parse(&["--date=2026-11-02"]).map(|a| a.0.monday.to_string()),
            Ok("2026-11-02".into())
        );
        assert!(parse(&["--date", "2026-11-24"])
            .expect_err("a Tuesday")
            .contains("is a Tuesday"));
        assert!(parse(&["--date"]).is_err());
        assert!(parse(&["--date", "tomorrow"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
    }
}
