//! Section 6: steady-state scheduler ticks over 1000 clusters in 3 accounts and 4
//! regions against moto, and what one region answering only errors does to the others.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use cluster_scheduler::handler::PlaceClients;
use fleet_shared::bus::EventPublisher;
use fleet_shared::config::{FleetConfig, Place};
use fleet_shared::kube::KubeConnector;
use fleet_shared::notify::Notifier;
use fleet_shared::place::{PerPlace, Places, SpokeRole};
use fleet_shared::runner::Invocation;
use jiff::Timestamp;
use serde_json::{json, Value};

use super::{median, verdict};
use crate::fixtures::accounts::spoke_role;
use crate::{sdk, unique, CallCounter};

const CLUSTERS: usize = 1000;
const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "eu-central-1", "ap-southeast-2"];
/// The hub (moto's default account) and two spokes.
const ACCOUNTS: [(Option<&str>, &str); 3] = [
    (None, "123456789012"),
    (Some("production"), "222233334444"),
    (Some("staging"), "444455556666"),
];

/// Every place's clients, each request counted; the places in `refusing` answer nothing
/// (their endpoint is a closed port: every request is refused, as a region in an outage).
fn counted(
    places: &Arc<Places>,
    counter: &CallCounter,
    refusing: Option<Place>,
) -> PerPlace<PlaceClients> {
    let counter = counter.clone();
    PerPlace::new(places.clone(), move |sdk| {
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let down = refusing.as_ref().is_some_and(|p| p.region == region);
        let sdk = if down {
            sdk.to_builder().endpoint_url("http://127.0.0.1:9").build()
        } else {
            sdk.clone()
        };
        let c = counter.clone();
        PlaceClients {
            eks: cluster_scheduler::eks::Eks::new(
                aws_sdk_eks::Client::from_conf(
                    aws_sdk_eks::config::Builder::from(&sdk)
                        .interceptor(c.clone())
                        .build(),
                ),
                fleet_shared::startup::LOCAL_STACK,
            ),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(
                aws_sdk_elasticloadbalancingv2::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&sdk)
                    .interceptor(c.clone())
                    .build(),
            ),
            iam: cluster_scheduler::irsa::Iam::new(aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&sdk)
                    .interceptor(c)
                    .build(),
            )),
        }
    })
}

/// Resets the process's peak resident set (Linux `clear_refs` 5), so that the next
/// `VmHWM` read is the peak since now.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn results(tick: &Value) -> Vec<(String, String)> {
    tick["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// 6. Scheduler ticks over 1000 clusters in 3 accounts and 4 regions against moto.
pub(super) async fn scheduler_fan_out(md: &mut String) -> Result<(), String> {
    let hub = sdk();
    for (account, id) in ACCOUNTS {
        if account.is_some() {
            spoke_role(&hub, id, None).await;
        }
    }
    let counter = CallCounter::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&hub)
            .interceptor(counter.clone())
            .build(),
    );
    let events = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&hub)
            .interceptor(counter.clone())
            .build(),
    );
    let bus = unique("bench-bus");
    let _ = events.create_event_bus().name(&bus).send().await;
    let store = fleet_shared::state::StateStore::new(dynamodb, unique("bench-state"));
    store.create_table().await.map_err(|e| e.to_string())?;
    let prefix = unique("fan");
    let mut text = format!("[fleet]\nregion = \"eu-west-1\"\nevent_bus = \"{bus}\"\n");
    for (account, id) in ACCOUNTS {
        if let Some(name) = account {
            text.push_str(&format!(
                "\n[[account]]\nname = \"{name}\"\nrole_arn = \"arn:aws:iam::{id}:role/fleet-spoke\"\n"
            ));
        }
    }
    for i in 0..CLUSTERS {
        let (account, id) = ACCOUNTS[i % ACCOUNTS.len()];
        let region = REGIONS[(i / ACCOUNTS.len()) % REGIONS.len()];
        let place = format!(
            "{}region = \"{region}\"",
            account
                .map(|a| format!("account = \"{a}\"\n"))
                .unwrap_or_default()
        );
        text.push_str(
            &crate::fixtures::scheduler::cluster_toml("scale", "daily 00:00-24:00 UTC", &place)
                .replace("{name}", &format!("{prefix}-{i}"))
                .replace("123456789012", id),
        );
    }
    let config = FleetConfig::parse(&text).map_err(|e| e.to_string())?;
    let places = Arc::new(
        Places::new(
            &hub,
            &config,
            &Default::default(),
            "bench",
            SpokeRole::Scheduler,
        )
        .await,
    );
    let mut scheduler = cluster_scheduler::Scheduler::new(
        places.clone(),
        config,
        fleet_shared::startup::LOCAL_STACK,
        store.table(),
        Notifier::disabled(),
        KubeConnector::with_places(places.clone(), None),
    );
    scheduler.aws = counted(&places, &counter, None);
    scheduler.store = store;
    scheduler.bus = EventPublisher::new(events, &bus);
    let mut now = Timestamp::now();
    let five_minutes = jiff::SignedDuration::from_mins(5);
    async fn tick(
        scheduler: &cluster_scheduler::Scheduler,
        now: Timestamp,
    ) -> Result<Value, String> {
        scheduler
            .handle(json!({"action": "reconcile"}), Invocation::at(now))
            .await
            .map_err(|e| e.to_string())
    }
    // Ticks until every cluster is built, ready and announced.
    let mut steady = false;
    for _ in 0..12 {
        let r = tick(&scheduler, now).await?;
        now = now.checked_add(five_minutes).map_err(|e| e.to_string())?;
        if results(&r).iter().all(|(_, result)| result == "steady") {
            steady = true;
            break;
        }
    }
    if !steady {
        return Err(format!("{CLUSTERS} clusters never became steady"));
    }
    let sts_after_build: Vec<u64> = ACCOUNTS
        .iter()
        .filter_map(|(a, _)| *a)
        .map(|a| places.assume_role_calls(a))
        .collect();
    // An hour of ticks, 5 minutes apart: one full look per cluster (nodegroups, a write
    // recording it), the other ticks trust the recorded phase on DescribeCluster alone.
    reset_peak_rss();
    let per_hour = 60 / 5;
    let mut times = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..per_hour {
        let before = counter.count();
        let t0 = Instant::now();
        tick(&scheduler, now).await?;
        times.push(t0.elapsed().as_secs_f64());
        calls.push((counter.count() - before) as f64 / CLUSTERS as f64);
        now = now.checked_add(five_minutes).map_err(|e| e.to_string())?;
    }
    let rss = super::peak_rss_mib(std::process::id()).unwrap_or(f64::NAN);
    let sts: u64 = ACCOUNTS
        .iter()
        .filter_map(|(a, _)| *a)
        .map(|a| places.assume_role_calls(a))
        .sum();
    let sts_build: u64 = sts_after_build.iter().sum();
    let mean = calls.iter().sum::<f64>() / calls.len() as f64;
    let (lo, hi) = (
        calls.iter().copied().fold(f64::INFINITY, f64::min),
        calls.iter().copied().fold(0.0, f64::max),
    );
    let (t, worst) = (
        median(times.clone()),
        times.iter().copied().fold(0.0, f64::max),
    );
    // One region (all its accounts) refusing every connection: the others' clusters are
    // steady as before; that region's fail and back off.
    let down = Place::hub("ap-southeast-2");
    scheduler.aws = counted(&places, &counter, Some(down.clone()));
    let t0 = Instant::now();
    let r = tick(&scheduler, now).await?;
    let outage = t0.elapsed().as_secs_f64();
    let in_down: Vec<bool> = (0..CLUSTERS)
        .map(|i| REGIONS[(i / ACCOUNTS.len()) % REGIONS.len()] == down.region)
        .collect();
    let mut others_steady = true;
    let mut down_failed = 0;
    for (i, (_, result)) in results(&r).iter().enumerate() {
        if in_down[i] {
            down_failed += usize::from(result != "steady");
        } else {
            others_steady &= result == "steady";
        }
    }
    let down_count = in_down.iter().filter(|d| **d).count();
    writeln!(md, "## 6. Scheduler fan-out: 1000 clusters, 3 accounts, 4 regions\n\nSteady-state ticks (every cluster up, nothing to do) over {CLUSTERS} clusters spread evenly over 3 accounts (the hub and two spokes, reached by assuming each spoke's scheduler role: moto keeps accounts apart by the credentials AssumeRole returns) and 4 regions ({}) against moto: an hour of ticks 5 minutes apart, in which each cluster gets one full look (`ListNodegroups`, a `DescribeNodegroup` per nodegroup, two in the blueprint, and a write recording the look; each cluster's hours are offset by a hash of its name, so every tick has about a twelfth of the fleet's full looks) while the other ticks trust the recorded phase on one `DescribeCluster`. Every cluster's record is read in one `BatchGetItem` per 50 clusters. Each place (account and region) works on 16 clusters at once, every place at once. AWS requests counted by an SDK interceptor; STS counted apart. Memory: the benchmark process's peak resident set over the hour (reset before it; the moto server is another process). Then one tick with one region (ap-southeast-2, in every account) refusing every connection, as in a regional outage. Targets: tick ≤ 20 s, ≤ 1.5 AWS calls per cluster per tick, ≤ 1 `AssumeRole` per account per cold start, ≤ 128 MB; the outage fails only that region's clusters.\n\n| measure | value | verdict |\n|---|---|---|\n| tick (median / slowest of {per_hour}) | {t:.2} s / {worst:.2} s | {} |\n| AWS calls per cluster per tick (mean over the hour; range) | {mean:.2} ({lo:.2}-{hi:.2}) | {} |\n| `AssumeRole` calls: building the fleet, then the hour of ticks (2 spoke accounts; one process is one cold start) | {sts_build}, then {} | {} |\n| peak RSS over the hour | {rss:.0} MiB | {} |\n| one region refusing connections: the tick; its {down_count} clusters not steady; every other cluster steady | {outage:.2} s; {down_failed}; {} | {} |\n",
        REGIONS.join(", "),
        verdict(worst <= 20.0),
        verdict(mean <= 1.5),
        sts - sts_build,
        verdict(sts_build <= 2 && sts == sts_build),
        verdict(rss <= 128.0),
        if others_steady { "yes" } else { "no" },
        verdict(others_steady && down_failed == down_count && outage <= 20.0),
    )
    .ok();
    eprintln!("fan-out: {t:.2} s, {mean:.2} calls/cluster, outage tick {outage:.2} s");
    Ok(())
}
