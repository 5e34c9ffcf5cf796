//! A drain never runs past its deadline, even when a PodDisruptionBudget refuses every
//! eviction it can: refused evictions come back to the drainer (the Kubernetes client does
//! not retry them behind its back), which forces the rest before the instance goes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_shared::bus::{EventPublisher, SOURCE_DRAINER};
use fleet_shared::config::FleetConfig;
use fleet_shared::kube::KubeConnector;
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_tests::fake_kube::FakeKube;
use fleet_tests::{sdk, state_table, unique};
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
    let sdk = sdk();
    let bus = unique("fleet-bus");
    let _ = aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await;
    let cluster = unique("spot");
    let eks = aws_sdk_eks::Client::new(&sdk);
    fleet_tests::active_cluster(&eks, &cluster).await;
    let text = format!("[fleet]\nregion = \"eu-west-1\"\nevent_bus = \"{bus}\"\n[[cluster]]\nname = \"{cluster}\"\nuptime = \"daily 00:00-24:00 UTC\"\n[cluster.blueprint]\nversion = \"1.32\"\nrole_arn = \"arn:aws:iam::123456789012:role/eks\"\nsubnet_ids = [\"a\", \"b\"]\n");
    let drainer = spot_drainer::Drainer {
        config: Arc::new(FleetConfig::parse(&text).expect("config")),
        eks,
        kube: Arc::new(KubeConnector::new(&sdk, Some(kube.url.clone()))),
        store: state_table(&sdk).await,
        bus: EventPublisher::new(aws_sdk_eventbridge::Client::new(&sdk), &bus, SOURCE_DRAINER),
        notifier: Notifier::disabled(),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
    };
    // The warning came 108 s ago: 12 s are left.
    let sent = Timestamp::now().checked_sub(108.seconds()).expect("time");
    let deadline = sent.checked_add(120.seconds()).expect("time");
    let warning = json!({"version": "0", "id": unique("ev"), "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2", "account": "123456789012", "time": sent.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "eu-west-1", "resources": [], "detail": {"instance-id": INSTANCE, "instance-action": "terminate"}});
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
