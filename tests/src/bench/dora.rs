//! Section 4: DORA aggregation over a year of 50 services, beside DuckDB on the same
//! events.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::{median, peak_rss_mib, verdict};
use crate::workspace_root;

/// A year of one service's events, about 55 a day: pushes of 1-3 commits and
/// deployments of the latest head (10 % failing) half and half, and an incident opened and
/// closed hours later on one day in five. Deterministic (xorshift from a fixed seed).
fn service_year(s: usize, start: Timestamp, seed: &mut u64) -> Vec<fleet_shared::dora::DoraEvent> {
    use fleet_shared::dora::{Commit, DoraEvent, Outcome};
    let mut rand = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    };
    let t = |x: i64| Timestamp::from_second(x).unwrap_or(start);
    let mut events = Vec::new();
    let mut sha = 0u64;
    let mut issue = 0u64;
    for day in 0..365i64 {
        let base = start.as_second() + day * 86_400;
        for k in 0..55 {
            let at = base + 1_500 * k + (rand() % 1_000) as i64;
            if rand() % 2 == 0 {
                let n = 1 + rand() % 3;
                let commits = (0..n)
                    .map(|i| {
                        sha += 1;
                        Commit {
                            sha: format!("{s:02}{sha:038x}"),
                            at: t(at - 3_600 - 600 * i as i64),
                        }
                    })
                    .collect();
                events.push(DoraEvent::Push {
                    at: t(at),
                    head: format!("{s:02}{sha:038x}"),
                    commits,
                });
            } else {
                events.push(DoraEvent::Deployment {
                    at: t(at),
                    outcome: if rand() % 10 == 0 {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    },
                    sha: Some(format!("{s:02}{sha:038x}")),
                });
            }
        }
        if rand() % 5 == 0 {
            issue += 1;
            let opened = base + (rand() % 80_000) as i64;
            events.push(DoraEvent::IncidentOpened {
                at: t(opened),
                issue,
                source: Default::default(),
            });
            events.push(DoraEvent::IncidentClosed {
                at: t(opened + 3_600 + (rand() % 28_800) as i64),
                issue,
                source: Default::default(),
            });
        }
    }
    events
}

/// The events as the CSV files `tests/support/dora_duckdb.py` loads.
fn write_dora_csv(
    dir: &std::path::Path,
    services: &[Vec<fleet_shared::dora::DoraEvent>],
) -> std::io::Result<()> {
    use fleet_shared::dora::{DoraEvent, Outcome};
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let open = |name: &str, header: &str| -> std::io::Result<std::io::BufWriter<std::fs::File>> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join(name))?);
        writeln!(w, "{header}")?;
        Ok(w)
    };
    let mut deploys = open("deploys.csv", "service,id,t,success,sha")?;
    let mut pushes = open("pushes.csv", "service,push,t,head")?;
    let mut commits = open("commits.csv", "service,push,sha,committed")?;
    let mut incidents = open("incidents.csv", "service,issue,kind,t")?;
    let mut id = 0u64;
    for (s, events) in services.iter().enumerate() {
        // Push numbers in time order, as the aggregator sorts them.
        let mut push_list: Vec<&DoraEvent> = events
            .iter()
            .filter(|e| matches!(e, DoraEvent::Push { .. }))
            .collect();
        push_list.sort_by_key(|e| e.at());
        for (n, e) in push_list.iter().enumerate() {
            if let DoraEvent::Push {
                at,
                head,
                commits: cs,
            } = e
            {
                writeln!(pushes, "{s},{n},{},{head}", at.as_second())?;
                for c in cs {
                    writeln!(commits, "{s},{n},{},{}", c.sha, c.at.as_second())?;
                }
            }
        }
        for e in events {
            match e {
                DoraEvent::Deployment { at, outcome, sha } => {
                    id += 1;
                    writeln!(
                        deploys,
                        "{s},{id},{},{},{}",
                        at.as_second(),
                        *outcome == Outcome::Success,
                        sha.as_deref().unwrap_or("")
                    )?;
                }
                DoraEvent::IncidentOpened { at, issue, .. } => {
                    writeln!(incidents, "{s},{issue},opened,{}", at.as_second())?
                }
                DoraEvent::IncidentClosed { at, issue, .. } => {
                    writeln!(incidents, "{s},{issue},closed,{}", at.as_second())?
                }
                _ => {}
            }
        }
    }
    for mut w in [deploys, pushes, commits, incidents] {
        w.flush()?;
    }
    Ok(())
}

/// The events back from the CSV files [`write_dora_csv`] wrote, one list per service:
/// this project's side of the comparison with the load included.
fn read_dora_csv(dir: &std::path::Path) -> Result<Vec<Vec<fleet_shared::dora::DoraEvent>>, String> {
    use fleet_shared::dora::{Commit, DoraEvent, Outcome};
    use std::collections::HashMap;
    fn rows<T: serde::de::DeserializeOwned>(
        dir: &std::path::Path,
        file: &str,
    ) -> Result<Vec<T>, String> {
        let mut reader =
            csv::Reader::from_path(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
        reader
            .deserialize()
            .collect::<Result<Vec<T>, _>>()
            .map_err(|e| format!("{file}: {e}"))
    }
    let at = |t: i64| Timestamp::from_second(t).map_err(|e| format!("time {t}: {e}"));
    let mut services: Vec<Vec<DoraEvent>> = Vec::new();
    fn of(services: &mut Vec<Vec<DoraEvent>>, s: usize) -> &mut Vec<DoraEvent> {
        if services.len() <= s {
            services.resize_with(s + 1, Vec::new);
        }
        &mut services[s]
    }
    let mut commits: HashMap<(usize, u64), Vec<Commit>> = HashMap::new();
    for (s, push, sha, committed) in rows::<(usize, u64, String, i64)>(dir, "commits.csv")? {
        commits.entry((s, push)).or_default().push(Commit {
            sha,
            at: at(committed)?,
        });
    }
    for (s, push, t, head) in rows::<(usize, u64, i64, String)>(dir, "pushes.csv")? {
        let commits = commits.remove(&(s, push)).unwrap_or_default();
        of(&mut services, s).push(DoraEvent::Push {
            at: at(t)?,
            head,
            commits,
        });
    }
    for (s, _id, t, success, sha) in rows::<(usize, u64, i64, bool, String)>(dir, "deploys.csv")? {
        of(&mut services, s).push(DoraEvent::Deployment {
            at: at(t)?,
            outcome: if success {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            sha: (!sha.is_empty()).then_some(sha),
        });
    }
    for (s, issue, kind, t) in rows::<(usize, u64, String, i64)>(dir, "incidents.csv")? {
        let at = at(t)?;
        of(&mut services, s).push(match kind.as_str() {
            "opened" => DoraEvent::IncidentOpened {
                at,
                issue,
                source: Default::default(),
            },
            _ => DoraEvent::IncidentClosed {
                at,
                issue,
                source: Default::default(),
            },
        });
    }
    Ok(services)
}

/// Every metric of every service and of all together: the figures [`dora_figures`]
/// compares, by service number and `all`.
fn aggregate_all(
    services: Vec<Vec<fleet_shared::dora::DoraEvent>>,
    window: &dora_aggregator::metrics::Window,
) -> BTreeMap<String, Value> {
    let mut figures = BTreeMap::new();
    let mut all = dora_aggregator::metrics::Tally::default();
    // Owned, as the aggregator gets them from its query: no copy in the timed part.
    for (s, events) in services.into_iter().enumerate() {
        let h = dora_aggregator::metrics::History::new(events);
        let t = dora_aggregator::metrics::tally(&h, window);
        figures.insert(s.to_string(), dora_figures(&t));
        all.add(t.clone());
        std::hint::black_box(t.metrics(window));
    }
    figures.insert("all".to_string(), dora_figures(&all));
    std::hint::black_box(all.metrics(window));
    figures
}

/// The figures both sides compute, for one service or all.
fn dora_figures(t: &dora_aggregator::metrics::Tally) -> Value {
    let mut lead = t.lead_times_hours.clone();
    lead.sort_by(f64::total_cmp);
    let mut rec = t.recoveries_hours.clone();
    rec.sort_by(f64::total_cmp);
    let q = |v: &[f64], x| dora_aggregator::metrics::quantile(v, x);
    json!({
        "successes": t.successes,
        "failures": t.failures,
        "failed_by_incident": t.failed_by_incident,
        "rework": t.rework,
        "lead_times": lead.len(),
        "lead_median": q(&lead, 0.5),
        "lead_p90": q(&lead, 0.9),
        "recoveries": rec.len(),
        "recovery_median": q(&rec, 0.5),
    })
}

/// Where two sets of figures differ (counts exactly, hours to a millisecond).
fn dora_differences(ours: &BTreeMap<String, Value>, theirs: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (service, mine) in ours {
        let Some(other) = theirs.get(service) else {
            out.push(format!("{service}: missing from DuckDB's answer"));
            continue;
        };
        for (k, v) in mine.as_object().into_iter().flatten() {
            let same = match (v.as_f64(), other[k].as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-6 * a.abs().max(1.0),
                _ => v.is_null() && other[k].is_null(),
            };
            if !same {
                out.push(format!("{service} {k}: ours {v}, DuckDB {}", other[k]));
            }
        }
    }
    out
}

/// 4. DORA aggregation of a million events, and DuckDB on the same events.
pub(super) fn dora_aggregation(md: &mut String) -> Result<(), String> {
    let start: Timestamp = "2025-11-22T00:00:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let t_gen = Instant::now();
    let mut seed: u64 = 42;
    let services: Vec<Vec<fleet_shared::dora::DoraEvent>> =
        (0..50).map(|s| service_year(s, start, &mut seed)).collect();
    let total: usize = services.iter().map(Vec::len).sum();
    let generated = t_gen.elapsed();
    let window = dora_aggregator::metrics::Window {
        from: start,
        to: start
            .checked_add(jiff::SignedDuration::from_hours(365 * 24))
            .unwrap_or(start),
    };
    let rss_before = peak_rss_mib(std::process::id()).unwrap_or(0.0);
    let mut times = Vec::new();
    let mut figures = BTreeMap::new();
    for _ in 0..3 {
        // The copy each run consumes is made before the clock starts.
        let events = services.clone();
        let t0 = Instant::now();
        figures = aggregate_all(events, &window);
        times.push(t0.elapsed().as_secs_f64());
    }
    let rss = peak_rss_mib(std::process::id()).unwrap_or(0.0);
    let t = median(times);

    let dir = workspace_root().join("target/bench-dora");
    write_dora_csv(&dir, &services).map_err(|e| format!("writing the CSV files: {e}"))?;
    drop(services);
    let mut loaded_times = Vec::new();
    let mut loaded_figures = BTreeMap::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let services = read_dora_csv(&dir)?;
        loaded_figures = aggregate_all(services, &window);
        loaded_times.push(t0.elapsed().as_secs_f64());
    }
    let t_loaded = median(loaded_times);
    let mut duck_times = Vec::new();
    let mut duck_queries = Vec::new();
    let mut duck = Value::Null;
    for _ in 0..3 {
        let out = std::process::Command::new(workspace_root().join(".venv/bin/python"))
            .arg(workspace_root().join("tests/support/dora_duckdb.py"))
            .arg(&dir)
            .arg(window.from.as_second().to_string())
            .arg(window.to.as_second().to_string())
            .output()
            .map_err(|e| format!("running DuckDB (make bench installs it): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "DuckDB failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        duck = serde_json::from_slice(&out.stdout).map_err(|e| format!("DuckDB's answer: {e}"))?;
        duck_times.push(duck["seconds"].as_f64().unwrap_or(f64::NAN));
        duck_queries.push(duck["query_seconds"].as_f64().unwrap_or(f64::NAN));
    }
    let (duck_t, duck_q) = (median(duck_times), median(duck_queries));
    let mut differences = dora_differences(&figures, &duck["metrics"]);
    differences.extend(
        dora_differences(&loaded_figures, &duck["metrics"])
            .into_iter()
            .map(|d| format!("read from CSV: {d}")),
    );
    writeln!(md, "## 4. DORA aggregation\n\n{total} normalized events (50 services, 365 days, about 55 a day each: pushes of 1-3 commits and deployments of the latest head half and half, 10 % of deployments failing, an incident opened and closed hours later on one day in five), generated in {:.1} s. Every metric of every service and of all together, median of 3 runs each. DuckDB {} (`tests/support/dora_duckdb.py`, the same rules in SQL: as-of joins for incident attribution and recovery, a range join for rework, a suffix minimum over push order for lead time) computes the same figures from the same events, written once to CSV files, with {} threads (its default here: one per core; ours runs on one). Like for like, twice: in memory (ours from the events in memory, DuckDB from its in-memory tables already loaded: the queries only), and both including the load from those CSV files (ours with the `csv` crate into the same events). Targets: faster than DuckDB in both, ≤ 512 MB.\n", generated.as_secs_f64(), duck["duckdb"].as_str().unwrap_or("?"), duck["threads"]).ok();
    writeln!(
        md,
        "| measure | this project | DuckDB | verdict |\n|---|---|---|---|"
    )
    .ok();
    writeln!(
        md,
        "| in memory, events already loaded | {t:.2} s | {duck_q:.2} s | {} |",
        verdict(t < duck_q)
    )
    .ok();
    writeln!(
        md,
        "| load from the same CSV files included | {t_loaded:.2} s | {duck_t:.2} s | {} |",
        verdict(t_loaded < duck_t)
    )
    .ok();
    writeln!(md, "| peak RSS (ours: the benchmark process, the generated events held in memory included; after generating, before aggregating: {rss_before:.0} MiB) | {rss:.0} MiB | {:.0} MiB | {} |", duck["peak_rss_mib"].as_f64().unwrap_or(f64::NAN), verdict(rss <= 512.0)).ok();
    if differences.is_empty() {
        writeln!(md, "| both agree on every figure of all 51 rows (50 services and all together): counts, lead-time median and p90, recovery median; ours the same from memory and from CSV | yes | yes | - |\n").ok();
    } else {
        writeln!(
            md,
            "| both agree on every figure | **no**: {} | | **missed** |\n",
            differences
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        )
        .ok();
    }
    eprintln!(
        "dora: {total} events, in memory {t:.2} s vs DuckDB {duck_q:.2} s; with the load {t_loaded:.2} s vs {duck_t:.2} s; {rss:.0} MiB; {} differences",
        differences.len()
    );
    if differences.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "DuckDB and the aggregator disagree: {differences:?}"
        ))
    }
}
