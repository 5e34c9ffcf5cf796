//! `make bench`: what the users of these functions pay for and wait for, measured and
//! written to BENCHMARKS.md. Tests never assert timings; this does the measuring.
//!
//! Every figure is the median (or the stated percentile) of repeated runs on this
//! machine, against the same local stand-ins the tests use (moto server, the fake
//! Kubernetes, Cloudflare and Lambda Runtime APIs).
//!
//! One file a section: `cold_start` (1), `package_size` (2), `drain` (3), `dora`
//! (4), `ingest` (5), `fan_out` (6), `api_economy` (7), `own_bill` (8); this module holds what they
//! share, the machine's description and the writing of BENCHMARKS.md. The `bench` binary
//! is [`run`].

mod api_economy;
mod cold_start;
mod dora;
mod drain;
mod fan_out;
mod ingest;
mod own_bill;
mod package_size;

use std::fmt::Write as _;
use std::process::ExitCode;

use jiff::Timestamp;

use crate::workspace_root;

const RUNS: usize = 10;

/// The heading of the notes people write: `make bench` keeps that section as it stands
/// (or starts an empty one).
const NOTES: &str = "## Notes (written by people; `make bench` keeps this section as it stands)";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    cost_reporter_quantile(&v, 0.5)
}

fn cost_reporter_quantile(sorted: &[f64], q: f64) -> f64 {
    dora_aggregator::metrics::quantile(sorted, q).unwrap_or(f64::NAN)
}

fn percentile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    cost_reporter_quantile(&v, q)
}

/// `VmHWM` (peak resident set) of a process, in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn release_dir() -> std::path::PathBuf {
    workspace_root()
        .join(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
        .join("release")
}

const FUNCTIONS: [&str; 6] = [
    "cluster-scheduler",
    "spot-drainer",
    "dns-updater",
    "dora-webhook",
    "dora-aggregator",
    "cost-reporter",
];

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
                    / 1024.0
                    / 1024.0
            })
        })
        .unwrap_or(0.0);
    format!("{cpu}, {cores} cores, {mem:.0} GiB")
}

/// The heading of the section `make bench` keeps rather than measures.
const FRESH_CLONE: &str = "## Fresh clone";

/// The section of `md` that starts with `heading`, up to the next `## ` heading: its text
/// with the blank line before the next heading.
fn kept_section(md: &str, heading: &str) -> Option<String> {
    let start = md.find(&format!("\n{heading}"))? + 1;
    let rest = &md[start..];
    let end = rest[heading.len()..]
        .find("\n## ")
        .map(|i| i + heading.len() + 1)
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// The people's notes of `md`, kept as they stand: from [`NOTES`] to the end of the file
/// (headings inside them included), or an empty section under that heading.
fn kept_notes(md: &str) -> String {
    match md.find(&format!("\n{NOTES}")) {
        Some(i) => md[i + 1..].to_string(),
        None => format!("{NOTES}\n"),
    }
}

/// One numbered section of BENCHMARKS.md.
async fn section(n: &str, md: &mut String) -> Result<(), String> {
    match n {
        "1" => cold_start::cold_starts(md).await,
        "2" => {
            package_size::package_sizes(md);
            Ok(())
        }
        "3" => drain::drain_speed(md).await,
        "4" => dora::dora_aggregation(md),
        "5" => ingest::webhook_ingest(md),
        "6" => fan_out::scheduler_fan_out(md).await,
        "7" => api_economy::api_economy(md).await,
        "8" => own_bill::own_bill(md).await,
        other => Err(format!("no section {other} (1-8)")),
    }
}

/// `bench` runs every section and rewrites BENCHMARKS.md; `bench 4 6` runs those
/// sections only and prints them, leaving the file alone.
pub async fn run() -> ExitCode {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let mut md = String::new();
    let mut failed = Vec::new();
    for n in ["1", "2", "3", "4", "5", "6", "7", "8"] {
        if !only.is_empty() && !only.iter().any(|o| o == n) {
            continue;
        }
        let mut s = String::new();
        match section(n, &mut s).await {
            Ok(()) => md.push_str(&s),
            Err(e) => failed.push(format!("{n}: {e}")),
        }
    }
    for f in &failed {
        writeln!(md, "Could not measure {f}\n").ok();
    }
    if !only.is_empty() {
        println!("{md}");
        return if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    let head = format!("# Benchmarks\n\nWritten by `make bench` ({}), every figure in it, except the two sections it keeps as they stand: \"Fresh clone\" (written by `tests/support/fresh-clone.sh`) and the notes people write at the end. Machine: {}. Reproduce with `make setup && make bench` (release builds; about ten minutes, four of them the budget-bound drains, and the simulated month of section 8 about fifteen more); `make bench SECTIONS=\"4 6\"` runs some sections and prints them instead. Every section names what it runs; the code is `tests/src/bench/`. Tests never assert timings: this file is where speed and memory are measured.\n\n", Timestamp::now().strftime("%Y-%m-%d"), machine());
    md.insert_str(0, &head);
    let path = workspace_root().join("BENCHMARKS.md");
    // Measured by tests/support/fresh-clone.sh (three quarters of an hour, not part of
    // `make bench`): kept as it stands.
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    if let Some(section) = kept_section(&old, FRESH_CLONE) {
        md.push_str(&section);
    }
    md.push_str(&kept_notes(&old));
    if let Err(e) = std::fs::write(&path, md) {
        eprintln!("writing {}: {e}", path.display());
        return ExitCode::from(1);
    }
    eprintln!("wrote {}", path.display());
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("failed: {failed:?}");
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fresh_clone_section_is_kept_whole() {
        let md = "# B\n\n## 7. API\n\nx\n\n## Fresh clone\n\n| a | b |\n\n## Notes\n\n- n\n";
        assert_eq!(
            kept_section(md, FRESH_CLONE).as_deref(),
            Some("## Fresh clone\n\n| a | b |\n\n")
        );
        assert_eq!(kept_section("# B\n\n## Notes\n", FRESH_CLONE), None);
        let with_notes = format!(
            "# B\n\n## Fresh clone\n\nf\n\n{NOTES}\n\n- a note\n\n## Their heading\n\nmore\n"
        );
        assert_eq!(
            kept_notes(&with_notes),
            format!("{NOTES}\n\n- a note\n\n## Their heading\n\nmore\n")
        );
        assert_eq!(kept_notes("# B\n\n## Notes\n"), format!("{NOTES}\n"));
        assert_eq!(
            kept_section("# B\n## Fresh clone\nlast", FRESH_CLONE).as_deref(),
            Some("## Fresh clone\nlast")
        );
    }
}
