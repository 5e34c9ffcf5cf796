//! A spot node of the example fleet, as the spot-drainer walkthrough and the demo seed it:
//! three web pods behind a PodDisruptionBudget allowing one disruption at a time, a
//! DaemonSet pod and a mirror pod.

use serde_json::{json, Value};

pub const INSTANCE: &str = "i-1234567890abcdef0";
pub const NODE: &str = "ip-10-0-1-23.eu-west-1.compute.internal";

pub fn objects() -> Vec<Value> {
    let pod = |name: &str, ns: &str, meta: Value, spec: Value| {
        let mut p = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 2, "containers": [{"name": "app", "image": "nginx:1.27"}]},
            "status": {"phase": "Running"}
        });
        crate::fakes::kube::merge_patch(&mut p, &json!({"metadata": meta, "spec": spec}));
        p
    };
    let rs =
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "uid": "rs-1"}]);
    let mut out = vec![
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
               "spec": {"providerID": format!("aws:///eu-west-1b/{INSTANCE}")}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
        pod(
            "aws-node-x1",
            "kube-system",
            json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "aws-node", "uid": "ds-1"}]}),
            json!({}),
        ),
        pod(
            "kube-proxy-static",
            "kube-system",
            json!({"annotations": {"kubernetes.io/config.mirror": "static"}}),
            json!({}),
        ),
    ];
    for i in 1..=3 {
        out.push(pod(
            &format!("web-{i}"),
            "shop",
            json!({"labels": {"app": "web"}, "ownerReferences": rs}),
            json!({}),
        ));
    }
    out
}

/// A spot-drainer for one ACTIVE cluster on moto (its own bus and table), whose
/// Kubernetes API is `kube_url`.
pub async fn drainer(kube_url: &str) -> spot_drainer::Drainer {
    let sdk = crate::sdk();
    let bus = crate::unique("fleet-bus");
    let _ = aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await;
    let cluster = crate::unique("spot");
    let eks = aws_sdk_eks::Client::new(&sdk);
    crate::active_cluster(&eks, &cluster).await;
    let text = format!("[fleet]\nregion = \"eu-west-1\"\nevent_bus = \"{bus}\"\n[[cluster]]\nname = \"{cluster}\"\nuptime = \"daily 00:00-24:00 UTC\"\n[cluster.blueprint]\nversion = \"1.32\"\nrole_arn = \"arn:aws:iam::123456789012:role/eks\"\nsubnet_ids = [\"a\", \"b\"]\n");
    let store = crate::state_table(&sdk).await;
    spot_drainer::Drainer::new(
        &sdk,
        fleet_shared::config::FleetConfig::parse(&text).expect("config"),
        store.table(),
        fleet_shared::notify::Notifier::disabled(),
        fleet_shared::kube::KubeConnector::new(&sdk, Some(kube_url.to_string())),
    )
}

/// The spot interruption warning for `instance`, sent at `sent`.
pub fn interruption_warning(instance: &str, sent: jiff::Timestamp) -> Value {
    json!({"version": "0", "id": crate::unique("ev"), "detail-type": "EC2 Spot Instance Interruption Warning",
           "source": "aws.ec2", "account": "123456789012", "time": sent.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
           "region": "eu-west-1", "resources": [], "detail": {"instance-id": instance, "instance-action": "terminate"}})
}

/// The node of [`small_node`], and its instance.
pub const SMALL_NODE: &str = "ip-10-0-9-9.eu-west-1.compute.internal";
pub const SMALL_INSTANCE: &str = "i-0f0f0f0f0f0f0f0f0";

/// A node with three pods of a ReplicaSet that terminate at once: a drain in milliseconds.
pub fn small_node(kube: &crate::fakes::kube::FakeKube) {
    kube.insert(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": SMALL_NODE},
                       "spec": {"providerID": format!("aws:///eu-west-1a/{SMALL_INSTANCE}")}}),
    );
    kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    for i in 0..3 {
        kube.insert(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("web-{i}"), "namespace": "shop",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs"}]},
            "spec": {"nodeName": SMALL_NODE, "terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running"}}));
    }
}

/// Pods still on the node of [`small_node`].
pub fn pods_on_node(kube: &crate::fakes::kube::FakeKube) -> usize {
    kube.list("v1", "Pod")
        .iter()
        .filter(|p| p["spec"]["nodeName"] == SMALL_NODE)
        .count()
}
