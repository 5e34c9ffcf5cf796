//! A drain never runs past its deadline, even when a PodDisruptionBudget refuses every
//! eviction it can: refused evictions come back to the drainer (the Kubernetes client does
//! not retry them behind its back), which forces the rest before the instance goes.

use std::time::{Duration, Instant};

use fleet_shared::runner::Invocation;
use fleet_tests::fakes::kube::FakeKube;
use jiff::{Timestamp, ToSpan};
use serde_json::json;

const NODE: &str = "ip-10-0-7-7.eu-west-1.compute.internal";
const INSTANCE: &str = "i-0d0d0d0d0d0d0d0d0";

#[tokio::test]
async fn a_budget_that_refuses_does_not_hold_the_drain_past_its_deadline() {
    let kube = FakeKube::start().await;
    kube.insert(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
                       "spec": {"providerID": format!("aws:///eu-west-1a/{INSTANCE}")}}),
    );
    kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    kube.insert(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "shop"},
                       "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}));
    for i in 0..20 {
        kube.insert(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("web-{i}"), "namespace": "shop", "labels": {"app": "web"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs"}]},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 2, "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running"}}));
    }
    let drainer = fleet_tests::fixtures::spot_drainer::drainer(&kube.url).await;
    // The warning came 108 s ago: 12 s are left.
    let sent = Timestamp::now().checked_sub(108.seconds()).expect("time");
    let deadline = sent.checked_add(120.seconds()).expect("time");
    let warning = fleet_tests::fixtures::spot_drainer::interruption_warning(INSTANCE, sent);
    let started = Instant::now();
    let report = drainer
        .handle(warning, Invocation::at(Timestamp::now()))
        .await
        .expect("drain");
    assert!(
        Timestamp::now() < deadline,
        "the drain ended after the deadline: {report}"
    );
    assert!(started.elapsed() < Duration::from_secs(13), "{report}");
    let (evicted, forced) = (
        report["evicted"].as_u64().unwrap_or(0),
        report["forced"].as_u64().unwrap_or(0),
    );
    assert_eq!(evicted + forced, 20, "{report}");
    assert!(
        forced > 0,
        "a budget of one at a time cannot let 20 pods go in 12 s: {report}"
    );
}
