//! Section 1: cold start and memory of each release binary under the Runtime API
//! stand-in, beside a hello-world `lambda_runtime` binary in the same harness.

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{median, peak_rss_mib, release_dir, verdict, FUNCTIONS, RUNS};
use crate::fakes::lambda::{Answer, FakeLambda};
use crate::fakes::slack::FakeSlack;
use crate::{sdk, seed_local_account, unique, workspace_root};

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
pub(super) async fn cold_starts(md: &mut String) -> Result<(), String> {
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
