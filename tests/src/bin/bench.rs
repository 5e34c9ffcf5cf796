//! `make bench`: what the users of these functions pay for and wait for, measured and
//! written to BENCHMARKS.md. Tests never assert timings; this does the measuring.
//!
//! Every figure is the median (or the stated percentile) of repeated runs on this
//! machine, against the same local stand-ins the tests use (moto server, the fake
//! Kubernetes, Cloudflare and Lambda Runtime APIs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use fleet_shared::bus::EventPublisher;
use fleet_shared::config::FleetConfig;
use fleet_shared::kube::KubeConnector;
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_tests::fakes::kube::FakeKube;
use fleet_tests::fakes::lambda::{Answer, FakeLambda};
use fleet_tests::fakes::slack::FakeSlack;
use fleet_tests::{sdk, seed_local_account, unique, workspace_root, CallCounter};
use jiff::Timestamp;
use serde_json::{json, Value};

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

/// A typical event per function (as the samples in `events/`).
fn typical_event(function: &str) -> Value {
    let file = match function {
        "cluster-scheduler" => "scheduler-plan.json",
        "spot-drainer" => "spot-interruption.json",
        "dns-updater" => "dns-drift-repair.json",
        "dora-webhook" => "dora-github-push.json",
        "dora-aggregator" => "dora-report.json",
        _ => "cost-report.json",
    };
    let text =
        std::fs::read_to_string(workspace_root().join("events").join(file)).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The cold starts and peak RSS of `RUNS` starts of one release binary under the Runtime
/// API stand-in: start times (ms, process start to its first `GET …/invocation/next`), the
/// peak RSS at that moment and after handling `event` (MiB).
async fn start_runs(
    bin: &std::path::Path,
    function: &str,
    config: &str,
    event: &Value,
) -> Result<(Vec<f64>, f64, f64), String> {
    if !bin.exists() {
        return Err(format!(
            "{} is missing: make bench builds it",
            bin.display()
        ));
    }
    let mut starts = Vec::new();
    let mut rss_start: f64 = 0.0;
    let mut rss_event: f64 = 0.0;
    for _ in 0..RUNS {
        let lambda = FakeLambda::start().await;
        let t0 = Instant::now();
        let mut child = lambda
            .function_process(bin, function)
            .env("FLEET_CONFIG", config)
            .env("FLEET_STACK", "fleet-bench")
            .env("CLOUDFLARE_API_URL", "http://127.0.0.1:9/client/v4")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{function}: {e}"))?;
        let pid = child.id().unwrap_or(0);
        let started = loop {
            if let Some(t) = lambda.first_poll() {
                break t;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                return Err(format!("{function} never asked for an invocation"));
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        starts.push(started.duration_since(t0).as_secs_f64() * 1000.0);
        rss_start = rss_start.max(peak_rss_mib(pid).unwrap_or(0.0));
        let id = lambda.invoke(event.clone());
        match lambda.answer(&id, Duration::from_secs(60)).await {
            Some(Answer::Response(_)) | Some(Answer::Error(_)) => {}
            None => return Err(format!("{function} did not answer its event")),
        }
        rss_event = rss_event.max(peak_rss_mib(pid).unwrap_or(0.0));
        let _ = child.kill().await;
    }
    Ok((starts, rss_start, rss_event))
}

/// Section 1: cold start and memory of each release binary under the Runtime API
/// stand-in, beside a hello-world `lambda_runtime` binary in the same harness.
async fn cold_starts(md: &mut String) -> Result<(), String> {
    let slack = FakeSlack::start().await;
    let sdk = sdk();
    seed_local_account(&sdk, &slack.url).await?;
    // As deployed: the config itself in SSM (`FLEET_CONFIG=ssm:…`), its secrets in SSM
    // (seeded above). The cold start reads both, as in Lambda.
    let text = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .map_err(|e| format!("the example config: {e}"))?;
    let name = format!("/{}/config", unique("bench"));
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&name)
        .value(text)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .map_err(|e| format!("storing the config in SSM: {e:?}"))?;
    let config = format!("ssm:{name}");
    // What one SSM round trip costs here, from a client already made: the floor under
    // every cold start that reads its config from SSM.
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let mut trips = Vec::new();
    for _ in 0..21 {
        let t0 = Instant::now();
        ssm.get_parameter()
            .name(&name)
            .send()
            .await
            .map_err(|e| format!("reading the config back: {e:?}"))?;
        trips.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let trip = median(trips[1..].to_vec());
    writeln!(md, "## 1. Cold start and memory\n").ok();
    writeln!(md, "Each release binary started {RUNS} times under a local stand-in of the Lambda Runtime API, with the config and its secrets in SSM (moto) as deployed (`FLEET_CONFIG=ssm:…`): time from process start to its first `GET /2018-06-01/runtime/invocation/next` (median and slowest of {RUNS}), its peak RSS then, and its peak RSS after handling a typical event (the sample in `events/`) against moto. The baseline is a hello-world `lambda_runtime` binary (`tests/src/bin/hello-lambda.rs`: no config, no SDK, answers the event with itself) in the same harness. The config's own round trip to SSM cannot be batched with anything (it names the secrets) and costs what moto takes to answer (measured below): the target is a cold start median, less that one round trip, at most 2× the hello-world one (both ratios shown); RSS ≤ 32 MB; handling ≤ 64 MB.\n").ok();
    writeln!(md, "| function | cold start median | slowest | × hello-world (less one SSM round trip) | peak RSS at start | peak RSS after an event | verdict |\n|---|---|---|---|---|---|---|").ok();
    let hello = release_dir().join("hello-lambda");
    let (starts, rss_start, rss_event) =
        start_runs(&hello, "hello-lambda", &config, &json!({})).await?;
    let baseline = median(starts.clone());
    let max = starts.iter().cloned().fold(0.0, f64::max);
    writeln!(
        md,
        "| hello-world (baseline) | {baseline:.1} ms | {max:.1} ms | 1.0 (1.0) | {rss_start:.1} MiB | {rss_event:.1} MiB | - |"
    )
    .ok();
    eprintln!("cold start hello-lambda: {baseline:.1} ms");
    for f in FUNCTIONS {
        let bin = release_dir().join(f);
        let (starts, rss_start, rss_event) =
            start_runs(&bin, f, &config, &typical_event(f)).await?;
        let med = median(starts.clone());
        let max = starts.iter().cloned().fold(0.0, f64::max);
        let ratio = med / baseline;
        let beyond = (med - trip) / baseline;
        let ok = beyond <= 2.0 && rss_start <= 32.0 && rss_event <= 64.0;
        writeln!(
            md,
            "| {f} | {med:.1} ms | {max:.1} ms | {ratio:.1} ({beyond:.1}) | {rss_start:.1} MiB | {rss_event:.1} MiB | {} |",
            verdict(ok)
        )
        .ok();
        eprintln!("cold start {f}: {med:.1} ms ({ratio:.1}×), {rss_start:.1}/{rss_event:.1} MiB");
    }
    writeln!(md, "\nOne `GetParameter` round trip to moto from a client already made takes {trip:.1} ms here (median of 20): every function reads its config from SSM at cold start, so its floor is the hello-world start plus that round trip, plus one `GetParameters` for the secrets it reads at cold start (the DNS updater's Cloudflare token and Slack webhook, the webhook's secrets, the aggregator's Pushgateway URL and Slack webhook); the scheduler, the drainer and the cost reporter read their Slack webhook when their first message goes out.\n").ok();
    Ok(())
}

/// 2. Package sizes from `make build ARCH=x86-64`.
fn package_sizes(md: &mut String) {
    writeln!(md, "## 2. Package size\n\nEach zip from `make build ARCH=x86-64`. Target ≤ 8 MB.\n\n| function | zip | verdict |\n|---|---|---|").ok();
    for f in FUNCTIONS {
        // Where `make build` puts them: $(CARGO_TARGET_DIR)/lambda.
        let zip = release_dir()
            .with_file_name("lambda")
            .join(f)
            .join("bootstrap.zip");
        match std::fs::metadata(&zip) {
            Ok(m) => {
                let mb = m.len() as f64 / 1_000_000.0;
                writeln!(md, "| {f} | {mb:.2} MB | {} |", verdict(mb <= 8.0)).ok();
            }
            Err(_) => {
                writeln!(md, "| {f} | not built (run `make build ARCH=x86-64`) | - |").ok();
            }
        }
    }
    writeln!(md).ok();
}

use fleet_tests::kubectl_drain::{
    crowded_node, kubectl_drain, kubectl_path, CROWDED_EVICTABLE, CROWDED_INSTANCE as INSTANCE,
    CROWDED_NODE as NODE,
};

async fn drainer(kube: &FakeKube) -> Result<spot_drainer::Drainer, String> {
    Ok(fleet_tests::fixtures::spot_drainer::drainer(&kube.url).await)
}

fn warning(now: Timestamp) -> Value {
    fleet_tests::fixtures::spot_drainer::interruption_warning(INSTANCE, now)
}

/// One drain by the spot drainer of the crowded node on `kube`, timed from its start.
struct OurDrain {
    report: Value,
    /// The drain's answer.
    answered: Duration,
    cordon: Option<Duration>,
    /// The last eviction the API accepted (201).
    every_eviction_accepted: Option<Duration>,
    /// When only DaemonSet and mirror pods were left (the fake's store).
    node_empty: Option<Duration>,
    /// The first forced deletion (a `DELETE` of a pod).
    first_forced: Option<Duration>,
}

/// Drains the crowded node already on `kube` with the spot drainer, as a spot
/// interruption warning sent at `sent` asks, and waits up to `settle` after its answer for
/// the node to empty.
async fn our_drain(kube: &FakeKube, sent: Timestamp, settle: Duration) -> Result<OurDrain, String> {
    let d = drainer(kube).await?;
    kube.set_latency(Duration::from_millis(5));
    kube.clear_requests();
    kube.watch_node_empty(NODE);
    let t0 = Instant::now();
    let report = d
        .handle(warning(sent), Invocation::at(sent))
        .await
        .map_err(|e| e.to_string())?;
    let answered = t0.elapsed();
    let until = Instant::now() + settle;
    while kube.node_emptied_at(NODE).is_none() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reqs = kube.requests();
    let since = |at: Instant| at.saturating_duration_since(t0);
    Ok(OurDrain {
        answered,
        cordon: reqs
            .iter()
            .find(|r| r.method == "PATCH" && r.path.ends_with(NODE))
            .map(|r| since(r.at)),
        every_eviction_accepted: reqs
            .iter()
            .filter(|r| r.path.ends_with("/eviction") && r.status == Some(201))
            .map(|r| since(r.at))
            .max(),
        node_empty: kube.node_emptied_at(NODE).map(since),
        first_forced: reqs
            .iter()
            .filter(|r| r.method == "DELETE" && r.path.contains("/pods/"))
            .map(|r| since(r.at))
            .min(),
        report,
    })
}

fn ms(d: Option<Duration>) -> f64 {
    d.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
}

/// 3. Drain speed on a crowded node with 5 ms per API request, beside `kubectl drain`.
async fn drain_speed(md: &mut String) -> Result<(), String> {
    writeln!(md, "## 3. Drain speed\n\nA node with 110 pods (10 from DaemonSets, 2 mirror pods, 98 from a ReplicaSet) on the fake Kubernetes API with 5 ms added to every request. Beside it, on the same fake node with the same latency, `kubectl drain --ignore-daemonsets --delete-emptydir-data` from Debian 12's `kubernetes-client` package (kubectl 1.20.2, the drain helper AWS Node Termination Handler uses; `make bench` installs it in `.venv`), as it ships: its client-side rate limit (5 requests/s, burst 10) is part of it. Both timed from their start by the fake's own record: the last eviction it accepted (201) and the moment only DaemonSet and mirror pods were left.\n").ok();
    let kubectl = kubectl_path();
    if !kubectl.exists() {
        return Err(format!(
            "{} is missing: make bench installs it",
            kubectl.display()
        ));
    }
    let (mut cordons, mut evictions, mut empties) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let kube = FakeKube::start().await;
        crowded_node(&kube, 0, false);
        let run = our_drain(&kube, Timestamp::now(), Duration::from_secs(10)).await?;
        if run.report["evicted"] != CROWDED_EVICTABLE {
            return Err(format!("the drain evicted {}", run.report["evicted"]));
        }
        cordons.push(ms(run.cordon));
        evictions.push(ms(run.every_eviction_accepted));
        empties.push(ms(run.node_empty));
    }
    let (mut k_evictions, mut k_empties) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let kube = FakeKube::start().await;
        crowded_node(&kube, 0, false);
        kube.set_latency(Duration::from_millis(5));
        let run = kubectl_drain(&kube, &kubectl, NODE, Duration::from_secs(120)).await?;
        if !run.exit.success() || run.evictions_accepted != CROWDED_EVICTABLE {
            return Err(format!(
                "kubectl drain: {:?}, {} evictions accepted: {}",
                run.exit, run.evictions_accepted, run.stderr_tail
            ));
        }
        k_evictions.push(ms(run.every_eviction_accepted));
        k_empties.push(ms(run.node_empty));
    }
    // A run that did not get there is a failed measurement, not a slow one.
    for (what, runs) in [
        ("cordon", &cordons),
        ("every eviction accepted", &evictions),
        ("node empty", &empties),
        ("kubectl: every eviction accepted", &k_evictions),
        ("kubectl: node empty", &k_empties),
    ] {
        if runs.iter().any(|v| v.is_nan()) {
            return Err(format!("{what}: not reached in every run ({runs:?} ms)"));
        }
    }
    let (c, e, n) = (median(cordons), median(evictions), median(empties));
    let (ke, kn) = (median(k_evictions), median(k_empties));
    writeln!(
        md,
        "| no budget, pods that terminate at once | this project (median of 5) | kubectl drain (median of 3) | target | verdict |\n|---|---|---|---|---|"
    )
    .ok();
    writeln!(
        md,
        "| cordon | {c:.0} ms | - | ≤ 50 ms | {} |",
        verdict(c <= 50.0)
    )
    .ok();
    writeln!(
        md,
        "| every eviction accepted | {e:.0} ms | {ke:.0} ms ({:.0}× ours) | ≤ 500 ms, and ≥ 3× faster than kubectl | {} |",
        ke / e,
        verdict(e <= 500.0 && ke >= 3.0 * e)
    )
    .ok();
    writeln!(
        md,
        "| node empty | {n:.0} ms | {kn:.0} ms | never slower than kubectl | {} |\n",
        verdict(n <= kn)
    )
    .ok();
    eprintln!("drain: cordon {c:.0} ms, evictions {e:.0} ms (kubectl {ke:.0}), empty {n:.0} ms (kubectl {kn:.0})");
    strict_drain(md, &kubectl).await
}

/// Pods still on the crowded node (terminating ones included) other than DaemonSet and
/// mirror pods: what a drain has left.
fn pods_left(kube: &FakeKube) -> usize {
    kube.list("v1", "Pod")
        .iter()
        .filter(|p| p["spec"]["nodeName"] == NODE)
        .filter(|p| {
            let owners = p["metadata"]["ownerReferences"].as_array();
            !owners.is_some_and(|o| o.iter().any(|r| r["kind"] == "DaemonSet"))
                && p["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_null()
        })
        .count()
}

/// The drain a spot interruption warning allows when the budget is the bottleneck, on the
/// fake as strict as the API server and the controllers: replacements Ready after 30 s
/// (`DEFAULT_READY_DELAY`), a budget of one at a time, pods that take 2 s to terminate;
/// kubectl beside it with the same 120 s as its timeout.
async fn strict_drain(md: &mut String, kubectl: &std::path::Path) -> Result<(), String> {
    let kube = FakeKube::start().await;
    crowded_node(&kube, 2, true);
    let sent = Timestamp::now();
    // The warning's `time` has whole seconds: the deadline is 120 s after that.
    let deadline = Timestamp::from_second(sent.as_second())
        .unwrap_or(sent)
        .checked_add(jiff::SignedDuration::from_secs(120))
        .unwrap_or(sent);
    let until_deadline = deadline.duration_since(sent).as_secs_f64();
    let ours = our_drain(&kube, sent, Duration::from_secs(10)).await?;
    let shortfall = kube.eviction_shortfall("shop/web");

    let theirs_kube = FakeKube::start().await;
    crowded_node(&theirs_kube, 2, true);
    theirs_kube.set_latency(Duration::from_millis(5));
    let theirs = kubectl_drain(&theirs_kube, kubectl, NODE, Duration::from_secs(120)).await?;
    let their_shortfall = theirs_kube.eviction_shortfall("shop/web");
    let their_left = pods_left(&theirs_kube);

    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN);
    let first_forced = secs(ours.first_forced);
    let answered = ours.answered.as_secs_f64();
    // A pod is forced only when the time left no longer covers its grace period plus the
    // margin (spot_drainer::plan::must_force): not before this instant.
    let margin = spot_drainer::plan::MARGIN_SECONDS;
    let force_from = until_deadline - (2 + margin) as f64;
    writeln!(md, "The same node on the fake as strict as the API server and its controllers: a budget of one at a time (`maxUnavailable: 1` over the 98 pods), a replacement Ready 30 s after each eviction (only Ready pods count toward the budget), pods that take 2 s to terminate, 5 ms per request, the warning's 120 s deadline ({until_deadline:.1} s after its delivery; kubectl gets `--timeout=120s`). One run each (each takes the whole deadline).\n").ok();
    writeln!(md, "| budget of one at a time | this project | kubectl drain | target | verdict |\n|---|---|---|---|---|").ok();
    writeln!(
        md,
        "| evicted through the budget | {} | {} | - | - |",
        ours.report["evicted"], theirs.evictions_accepted
    )
    .ok();
    writeln!(md, "| force-deleted before the deadline (grace clamped to the time left) | {} | 0 (kubectl never forces) | - | - |", ours.report["forced"]).ok();
    let beyond = |v: Option<i64>| v.map_or("-".to_string(), |v| v.max(0).to_string());
    writeln!(md, "| most pods of the budget down beyond what it allows, just after an eviction the API accepted | {} | {} | 0 | {} |", beyond(shortfall), beyond(their_shortfall), verdict(shortfall.is_some_and(|v| v <= 0))).ok();
    writeln!(md, "| first forced deletion | {first_forced:.1} s (due at {force_from:.1} s: 2 s grace + {margin} s margin before the deadline) | - | not before it is due | {} |", verdict(ours.first_forced.is_none() || first_forced >= force_from - 0.5)).ok();
    writeln!(
        md,
        "| answered / exited | {answered:.1} s | {:.1} s (exit {}) | before the deadline | {} |",
        theirs.elapsed.as_secs_f64(),
        theirs.exit.code().unwrap_or(-1),
        verdict(answered <= until_deadline)
    )
    .ok();
    let their_empty = match theirs.node_empty {
        Some(d) => format!("{:.1} s", d.as_secs_f64()),
        None => format!("not empty: {their_left} pods left when it exited"),
    };
    writeln!(
        md,
        "| node empty | {:.1} s | {their_empty} | before the deadline | {} |\n",
        secs(ours.node_empty),
        verdict(secs(ours.node_empty) <= until_deadline)
    )
    .ok();
    eprintln!(
        "strict drain: ours {answered:.1} s, empty {:?}, {} evicted, {} forced, first forced {first_forced:.1} s, shortfall {shortfall:?}; kubectl {} evicted, exit {:?}",
        ours.node_empty, ours.report["evicted"], ours.report["forced"], theirs.evictions_accepted, theirs.exit
    );
    Ok(())
}

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
            });
            events.push(DoraEvent::IncidentClosed {
                at: t(opened + 3_600 + (rand() % 28_800) as i64),
                issue,
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
                DoraEvent::IncidentOpened { at, issue } => {
                    writeln!(incidents, "{s},{issue},opened,{}", at.as_second())?
                }
                DoraEvent::IncidentClosed { at, issue } => {
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
            "opened" => DoraEvent::IncidentOpened { at, issue },
            _ => DoraEvent::IncidentClosed { at, issue },
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
fn dora_aggregation(md: &mut String) -> Result<(), String> {
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

/// 5. Webhook ingest of a 25 KB push: signature, parse, normalize (storage excluded).
fn webhook_ingest(md: &mut String) -> Result<(), String> {
    let mut push = fleet_tests::fixtures::dora::github_examples("push")
        .into_iter()
        .find(|e| e["ref"] == "refs/heads/master")
        .ok_or("no push example (make setup)")?;
    push["ref"] = json!("refs/heads/main");
    push["repository"]["full_name"] = json!("your-org/infra-fleet");
    let commit = push["commits"][0].clone();
    let mut commits = Vec::new();
    while serde_json::to_vec(&push).map(|b| b.len()).unwrap_or(0) < 25_000 {
        let mut c = commit.clone();
        c["id"] = json!(format!("{:040x}", commits.len()));
        commits.push(c);
        push["commits"] = json!(commits);
    }
    let body = serde_json::to_vec(&push).map_err(|e| e.to_string())?;
    let secret = fleet_tests::LOCAL_WEBHOOK_SECRET.as_bytes();
    let sig = dora_webhook::signature::sign_sha256(secret, &body);
    let config = FleetConfig::parse(
        &std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let dora = config.dora.ok_or("no [dora] in the example")?;
    let mut samples = Vec::new();
    for _ in 0..20_000 {
        let t0 = Instant::now();
        dora_webhook::signature::verify_sha256("X-Hub-Signature-256", &[&sig], secret, &body)
            .map_err(|e| e.to_string())?;
        let payload: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let n = dora_webhook::normalize::github("push", &payload, &dora).map_err(|e| e.0)?;
        std::hint::black_box(n);
        samples.push(t0.elapsed().as_secs_f64() * 1_000_000.0);
    }
    let (p50, p99) = (percentile(samples.clone(), 0.5), percentile(samples, 0.99));
    writeln!(md, "## 5. Webhook ingest\n\nSignature check, JSON parse and normalization of a {} KB `push` ({} commits), 20,000 times, storage excluded. Target p99 ≤ 1 ms.\n\n| p50 | p99 | verdict |\n|---|---|---|\n| {p50:.0} µs | {p99:.0} µs | {} |\n", body.len() / 1000, commits.len(), verdict(p99 <= 1000.0)).ok();
    eprintln!("webhook: p50 {p50:.0} µs, p99 {p99:.0} µs");
    Ok(())
}

/// 6. One scheduler tick over 200 clusters against moto, and its AWS calls.
async fn scheduler_fan_out(md: &mut String) -> Result<(), String> {
    let sdk = sdk();
    let counter = CallCounter::default();
    let eks = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::config::Builder::from(&sdk)
            .interceptor(counter.clone())
            .build(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(counter.clone())
            .build(),
    );
    let events = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&sdk)
            .interceptor(counter.clone())
            .build(),
    );
    let bus = unique("bench-bus");
    let _ = events.create_event_bus().name(&bus).send().await;
    let store = fleet_shared::state::StateStore::new(dynamodb, unique("bench-state"));
    store.create_table().await.map_err(|e| e.to_string())?;
    let prefix = unique("fan");
    let mut text = format!("[fleet]\nregion = \"eu-west-1\"\nevent_bus = \"{bus}\"\n");
    for i in 0..200 {
        text.push_str(
            &fleet_tests::fixtures::scheduler::cluster_toml("scale", "daily 00:00-24:00 UTC", "")
                .replace("{name}", &format!("{prefix}-{i}")),
        );
    }
    let config = FleetConfig::parse(&text).map_err(|e| e.to_string())?;
    let mut scheduler = cluster_scheduler::Scheduler::new(
        &sdk,
        config,
        fleet_shared::startup::LOCAL_STACK,
        store.table(),
        Notifier::disabled(),
        KubeConnector::new(&sdk, None),
    );
    // The clients whose calls are counted.
    scheduler.eks = cluster_scheduler::eks::Eks::new(eks, fleet_shared::startup::LOCAL_STACK);
    scheduler.store = store;
    scheduler.bus = EventPublisher::new(events, &bus);
    let mut now = Timestamp::now();
    let tick = |now: Timestamp| {
        let scheduler = &scheduler;
        async move {
            scheduler
                .handle(json!({"action": "reconcile"}), Invocation::at(now))
                .await
                .map_err(|e| e.to_string())
        }
    };
    let five_minutes = jiff::SignedDuration::from_mins(5);
    // Ticks until every cluster is built, ready and announced.
    let mut steady = false;
    for _ in 0..8 {
        let r = tick(now).await?;
        now = now.checked_add(five_minutes).map_err(|e| e.to_string())?;
        if r["clusters"]
            .as_array()
            .is_some_and(|a| a.iter().all(|c| c["result"] == "steady"))
        {
            steady = true;
            break;
        }
    }
    if !steady {
        return Err("200 clusters never became steady".into());
    }
    // Half an hour of ticks, 5 minutes apart: one full look per cluster (nodegroups,
    // add-ons), the other ticks trust the recorded phase on DescribeCluster alone.
    let mut times = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..6 {
        let before = counter.count();
        let t0 = Instant::now();
        tick(now).await?;
        times.push(t0.elapsed().as_secs_f64());
        calls.push((counter.count() - before) as f64 / 200.0);
        now = now.checked_add(five_minutes).map_err(|e| e.to_string())?;
    }
    let mean = calls.iter().sum::<f64>() / calls.len() as f64;
    let (lo, hi) = (
        calls.iter().copied().fold(f64::INFINITY, f64::min),
        calls.iter().copied().fold(0.0, f64::max),
    );
    let (t, worst) = (
        median(times.clone()),
        times.iter().copied().fold(0.0, f64::max),
    );
    writeln!(md, "## 6. Scheduler fan-out\n\nSteady-state ticks (every cluster up, nothing to do) over 200 clusters against moto: six ticks 5 minutes apart, the half hour in which each cluster gets one full look (`ListNodegroups`, a `DescribeNodegroup` per nodegroup, two in the example blueprint, and a write recording the look; each cluster's half hours are offset by a hash of its name, so every tick has about a sixth of the fleet's full looks) while the other ticks trust the recorded phase on one `DescribeCluster`. Every cluster's record is read in one `BatchGetItem` per 50 clusters. AWS requests counted by an SDK interceptor. Targets: ≤ 10 s, ≤ 2 AWS calls per cluster.\n\n| tick (median / slowest of 6) | AWS calls per cluster per tick (mean over the half hour; range) | verdict |\n|---|---|---|\n| {t:.2} s / {worst:.2} s | {mean:.2} ({lo:.2}-{hi:.2}) | {} |\n", if worst <= 10.0 && mean <= 2.0 { "met" } else if worst <= 10.0 { "time met; **calls missed**" } else { "**missed**" }).ok();
    let c = mean;
    eprintln!("fan-out: {t:.2} s, {c:.1} calls/cluster");
    Ok(())
}

/// 7. API economy: a no-change DNS sync, and Cost Explorer requests per report.
async fn api_economy(md: &mut String) -> Result<(), String> {
    let mut dns = String::from("[cluster.dns]\ningress_service = \"ingress-nginx/ingress-nginx-controller\"\ningress_wait_seconds = 0\n");
    for i in 0..10 {
        write!(dns, "[[cluster.dns.record]]\nprovider = \"cloudflare\"\nzone = \"{{zone}}\"\nname = \"r{i}.{{zone}}\"\n[[cluster.dns.record]]\nprovider = \"route53\"\nzone_id = \"{{zone_id}}\"\nname = \"r{i}.{{zone}}\"\n").ok();
    }
    let mut f = fleet_tests::fixtures::dns::DnsFixture::start(&dns).await;
    let counter = CallCounter::default();
    f.updater.route53 =
        dns_updater::route53::Route53::from_client(aws_sdk_route53::Client::from_conf(
            aws_sdk_route53::config::Builder::from(&f.sdk)
                .interceptor(counter.clone())
                .build(),
        ));
    f.set_ingress(Some("k8s-ingress-0123456789.eu-west-1.elb.amazonaws.com"));
    f.ready("g1").await.map_err(|e| e.to_string())?;
    f.cloudflare.clear_requests();
    let before = counter.count();
    f.ready("g1").await.map_err(|e| e.to_string())?;
    let cf_reads = f.cloudflare.requests().len();
    let cf_writes = f.cloudflare.writes().len();
    let r53 = counter.count() - before;
    writeln!(
        md,
        "## 7. API economy\n\n| measure | value | target | verdict |\n|---|---|---|---|"
    )
    .ok();
    writeln!(md, "| no-change sync of 20 records (10 Cloudflare, 10 Route53): Cloudflare requests | {cf_reads} reads, {cf_writes} writes | ≤ 1 read per record, no writes | {} |", verdict(cf_reads <= 10 && cf_writes == 0)).ok();
    writeln!(md, "| the same sync: Route53 requests | {r53} (`ListResourceRecordSets`) | ≤ 1 per record, no changes | {} |", verdict(r53 <= 10)).ok();
    let cost = fleet_tests::fixtures::cost::CostFixture::start(
        &[("destroy", "Mon-Fri 08:00-20:00 UTC")],
        "",
        fleet_tests::fixtures::cost::forecast_rule(1.0, 1.0, 1.0),
    )
    .await;
    let first = cost
        .call(json!({"action": "report"}), "2026-11-23T06:00:00Z")
        .await
        .map_err(|e| e.to_string())?;
    let second = cost
        .call(json!({"action": "report"}), "2026-11-23T09:00:00Z")
        .await
        .map_err(|e| e.to_string())?;
    let (a, b) = (
        first["cost_explorer_requests"].as_u64().unwrap_or(99),
        second["cost_explorer_requests"].as_u64().unwrap_or(99),
    );
    writeln!(md, "| Cost Explorer requests: a daily report, then a second one the same day | {a}, then {b} | ≤ 3, then 0 | {} |\n", verdict(a <= 3 && b == 0)).ok();
    eprintln!("economy: cloudflare {cf_reads}/{cf_writes}, route53 {r53}, ce {a}/{b}");
    Ok(())
}

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
        "1" => cold_starts(md).await,
        "2" => {
            package_sizes(md);
            Ok(())
        }
        "3" => drain_speed(md).await,
        "4" => dora_aggregation(md),
        "5" => webhook_ingest(md),
        "6" => scheduler_fan_out(md).await,
        "7" => api_economy(md).await,
        other => Err(format!("no section {other} (1-7)")),
    }
}

/// `bench` runs every section and rewrites BENCHMARKS.md; `bench 4 6` runs those
/// sections only and prints them, leaving the file alone.
#[tokio::main]
async fn main() -> ExitCode {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let mut md = String::new();
    let mut failed = Vec::new();
    for n in ["1", "2", "3", "4", "5", "6", "7"] {
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
    let head = format!("# Benchmarks\n\nWritten by `make bench` ({}), every figure in it, except the two sections it keeps as they stand: \"Fresh clone\" (written by `tests/support/fresh-clone.sh`) and the notes people write at the end. Machine: {}. Reproduce with `make setup && make bench` (release builds; about ten minutes, four of them the budget-bound drains); `make bench SECTIONS=\"4 6\"` runs some sections and prints them instead. Every section names what it runs; the code is `tests/src/bin/bench.rs`. Tests never assert timings: this file is where speed and memory are measured.\n\n", Timestamp::now().strftime("%Y-%m-%d"), machine());
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
