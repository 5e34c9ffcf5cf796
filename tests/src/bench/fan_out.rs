//! Section 6: steady-state scheduler ticks over 200 clusters against moto.

use std::fmt::Write as _;
use std::time::Instant;

use fleet_shared::bus::EventPublisher;
use fleet_shared::config::FleetConfig;
use fleet_shared::kube::KubeConnector;
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use jiff::Timestamp;
use serde_json::json;

use super::median;
use crate::{sdk, unique, CallCounter};

/// 6. One scheduler tick over 200 clusters against moto, and its AWS calls.
pub(super) async fn scheduler_fan_out(md: &mut String) -> Result<(), String> {
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
            &crate::fixtures::scheduler::cluster_toml("scale", "daily 00:00-24:00 UTC", "")
                .replace("{name}", &format!("{prefix}-{i}")),
        );
    }
    let config = FleetConfig::parse(&text).map_err(|e| e.to_string())?;
    let mut scheduler = cluster_scheduler::Scheduler::new(
        std::sync::Arc::new(fleet_shared::place::Places::hub_only(&sdk)),
        config,
        fleet_shared::startup::LOCAL_STACK,
        store.table(),
        Notifier::disabled(),
        KubeConnector::new(&sdk, None),
    );
    // The clients whose calls are counted.
    scheduler.use_eks(eks);
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
