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
        crate::fake_kube::merge_patch(&mut p, &json!({"metadata": meta, "spec": spec}));
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
