//! `kubectl drain` (Debian 12's kubectl 1.20.2, which `make bench` installs in
//! `.venv/bin/kubectl`) against the fake Kubernetes API: the reference the benchmark
//! compares the spot drainer's drain with. Ignored by default: `make test` and CI do not
//! install kubectl. Run with `cargo test -p fleet-tests --test kubectl_drain -- --ignored
//! --nocapture` after `make .venv/bin/kubectl` (or with `FLEET_KUBECTL` naming one).

use std::time::Duration;

use fleet_tests::fakes::kube::FakeKube;
use fleet_tests::kubectl_drain::{
    crowded_node, kubectl_drain, kubectl_path, CROWDED_EVICTABLE, CROWDED_NODE,
};

/// No budget, pods that go at once: kubectl evicts all 98 and the node empties; it
/// exits 0.
#[tokio::test]
#[ignore = "needs Debian's kubectl: make bench installs it"]
async fn kubectl_drains_the_crowded_node() {
    let kube = FakeKube::start().await;
    crowded_node(&kube, 0, false);
    kube.set_latency(Duration::from_millis(5));
    let drain = kubectl_drain(
        &kube,
        &kubectl_path(),
        CROWDED_NODE,
        Duration::from_secs(120),
    )
    .await
    .expect("kubectl runs");
    eprintln!("{drain:#?}");
    assert!(drain.exit.success(), "{}", drain.stderr_tail);
    assert_eq!(drain.evictions_accepted, CROWDED_EVICTABLE);
    let accepted = drain
        .every_eviction_accepted
        .expect("every eviction accepted");
    let empty = drain.node_empty.expect("the node emptied");
    assert!(accepted <= empty, "{accepted:?} {empty:?}");
    let node = kube.get("v1", "Node", "", CROWDED_NODE).expect("the node");
    assert_eq!(node["spec"]["unschedulable"], true, "cordoned");
    // DaemonSet and mirror pods stay.
    let left = kube
        .list("v1", "Pod")
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == CROWDED_NODE)
        .count();
    assert_eq!(left, 12);
}

/// A budget of one at a time over the 98, pods that take 2 s to go, 120 s: what kubectl
/// reaches (it retries a refused eviction every 5 s). Reports, asserts only that it ran.
#[tokio::test]
#[ignore = "needs Debian's kubectl: make bench installs it"]
async fn kubectl_drains_through_a_budget_for_120_s() {
    let kube = FakeKube::start().await;
    crowded_node(&kube, 2, true);
    kube.set_latency(Duration::from_millis(5));
    let drain = kubectl_drain(
        &kube,
        &kubectl_path(),
        CROWDED_NODE,
        Duration::from_secs(120),
    )
    .await
    .expect("kubectl runs");
    eprintln!("{drain:#?}");
    // A replacement is Ready only after the fake's 30 s ready delay, and the budget lets
    // one go at a time: a handful of the 98 in 120 s, then kubectl gives up (exit 1).
    assert!(drain.evictions_accepted > 0, "{}", drain.stderr_tail);
    assert!(drain.evictions_accepted < CROWDED_EVICTABLE);
    assert!(!drain.exit.success());
    assert_eq!(drain.every_eviction_accepted, None);
}
