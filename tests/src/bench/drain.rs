//! Section 3: drain speed, the spot drainer beside `kubectl drain` on the same fake node,
//! and a strict budget against the deadline.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use fleet_shared::runner::Invocation;
use jiff::Timestamp;
use serde_json::Value;

use super::{median, verdict};
use crate::fakes::kube::FakeKube;
use crate::kubectl_drain::{
    crowded_node, kubectl_drain, kubectl_path, CROWDED_EVICTABLE, CROWDED_INSTANCE as INSTANCE,
    CROWDED_NODE as NODE,
};

async fn drainer(kube: &FakeKube) -> Result<spot_drainer::Drainer, String> {
    Ok(crate::fixtures::spot_drainer::drainer(&kube.url).await)
}

fn warning(now: Timestamp) -> Value {
    crate::fixtures::spot_drainer::interruption_warning(INSTANCE, now)
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
pub(super) async fn drain_speed(md: &mut String) -> Result<(), String> {
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
