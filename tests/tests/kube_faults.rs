//! The spot drainer against a Kubernetes API that fails: a 429, a 500 or a connection
//! broken mid-response on any request of the drain, a pod deleted between the list and
//! its eviction, the node gone before the warning is handled. The node must end drained
//! and cordoned, by this delivery or by Lambda's retry of it, and nothing may panic.

use fleet_shared::runner::Invocation;
use fleet_tests::fakes::kube::{FakeKube, CONNECTION_RESET};
use fleet_tests::fixtures::spot_drainer::{
    drainer, interruption_warning, pods_on_node, small_node, SMALL_INSTANCE, SMALL_NODE,
};
use jiff::Timestamp;

async fn node_with_drainer() -> (FakeKube, spot_drainer::Drainer) {
    let kube = FakeKube::start().await;
    kube.replace_evicted_pods(false);
    small_node(&kube);
    let d = drainer(&kube.url).await;
    (kube, d)
}

fn cordoned(kube: &FakeKube) -> bool {
    kube.get("v1", "Node", "", SMALL_NODE)
        .is_some_and(|n| n["spec"]["unschedulable"] == true)
}

#[tokio::test]
async fn a_failed_request_anywhere_in_a_drain_ends_drained() {
    for code in [429, 500, CONNECTION_RESET] {
        let mut request = 1;
        let mut failed_deliveries = 0;
        loop {
            let (kube, d) = node_with_drainer().await;
            kube.fail_request(request, code);
            let warning = interruption_warning(SMALL_INSTANCE, Timestamp::now());
            let first = d
                .handle(warning.clone(), Invocation::at(Timestamp::now()))
                .await;
            if kube.fault_pending() {
                // Past the drain's last request.
                assert!(request > 3, "{code}: only {request} requests");
                // Some requests (the node lookup, the cordon) cannot be retried within the
                // delivery: the fault reached the handler and Lambda's retry finished.
                assert!(failed_deliveries > 0, "{code}: the fault never showed");
                break;
            }
            let what = format!("{code} on request {request}: {first:?}");
            if let Err(e) = &first {
                assert!(!e.to_string().is_empty(), "{what}");
                failed_deliveries += 1;
            }
            if first.is_err() || pods_on_node(&kube) > 0 {
                let retry = d
                    .handle(warning, Invocation::at(Timestamp::now()))
                    .await
                    .unwrap_or_else(|e| panic!("{what}; retry: {e}"));
                assert!(
                    ["drained", "duplicate"].contains(&retry["status"].as_str().unwrap_or("")),
                    "{what}; retry: {retry}"
                );
            }
            assert_eq!(pods_on_node(&kube), 0, "{what}");
            assert!(cordoned(&kube), "{what}");
            request += 1;
        }
    }
}

#[tokio::test]
async fn a_pod_deleted_between_list_and_eviction_counts_as_gone() {
    let (kube, d) = node_with_drainer().await;
    kube.vanish_before_evict("shop/web-1");
    let report = d
        .handle(
            interruption_warning(SMALL_INSTANCE, Timestamp::now()),
            Invocation::at(Timestamp::now()),
        )
        .await
        .expect("drain");
    assert_eq!(report["status"], "drained", "{report}");
    assert_eq!(pods_on_node(&kube), 0);
    // The two left were evicted; the one that went by itself needs nothing.
    assert_eq!(report["evicted"], 2, "{report}");
    assert_eq!(report["pending"], serde_json::json!([]), "{report}");
}

#[tokio::test]
async fn a_node_already_gone_is_acknowledged_not_failed() {
    let kube = FakeKube::start().await;
    let d = drainer(&kube.url).await;
    // No node has this instance's providerID: the instance is gone, or never joined.
    let report = d
        .handle(
            interruption_warning(SMALL_INSTANCE, Timestamp::now()),
            Invocation::at(Timestamp::now()),
        )
        .await
        .expect("acknowledged");
    assert_ne!(report["status"], "drained", "{report}");
    assert!(
        kube.requests().iter().all(|r| r.method == "GET"),
        "nothing written"
    );
}
