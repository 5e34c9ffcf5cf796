//! The drain plan: which pods to evict, in which order, and when to stop waiting for a
//! PodDisruptionBudget and delete a pod so that it still gets SIGTERM before the instance
//! dies. Pure: the executor in `drain.rs` feeds it the pods and the clock.

use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

/// Seconds kept in hand before the deadline: API round trips and kubelet reaction time.
pub const MARGIN_SECONDS: i64 = 5;
/// Kubernetes' default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_SECONDS: i64 = 30;

/// A pod the drain evicts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub grace_seconds: i64,
    /// `system-cluster-critical` / `system-node-critical`: evicted last.
    pub critical: bool,
    /// The pod's labels: which PodDisruptionBudgets select it.
    #[serde(skip)]
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Target {
    pub fn qualified(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A pod the drain leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub pod: String,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Non-critical pods first, then critical ones.
    pub tiers: [Vec<Target>; 2],
    pub skipped: Vec<Skipped>,
}

fn skip_reason(pod: &Pod) -> Option<&'static str> {
    let meta = &pod.metadata;
    if meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
    {
        return Some("mirror pod");
    }
    if meta
        .owner_references
        .as_ref()
        .is_some_and(|o| o.iter().any(|r| r.kind == "DaemonSet"))
    {
        return Some("DaemonSet pod");
    }
    if meta.deletion_timestamp.is_some() {
        return Some("already terminating");
    }
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") | Some("Failed") => Some("finished"),
        _ => None,
    }
}

/// Sorts a node's pods into eviction tiers and skips.
pub fn plan(pods: &[Pod]) -> Plan {
    let mut plan = Plan::default();
    for pod in pods {
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Some(reason) = skip_reason(pod) {
            plan.skipped.push(Skipped {
                pod: format!("{namespace}/{name}"),
                reason,
            });
            continue;
        }
        let spec = pod.spec.as_ref();
        let critical = matches!(
            spec.and_then(|s| s.priority_class_name.as_deref()),
            Some("system-cluster-critical") | Some("system-node-critical")
        );
        let target = Target {
            namespace,
            name,
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            grace_seconds: spec
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(DEFAULT_GRACE_SECONDS),
            critical,
        };
        plan.tiers[usize::from(critical)].push(target);
    }
    plan
}

/// Whether to stop waiting for a pod's budget and delete it now: when the time left
/// before the deadline no longer covers its grace period plus the margin.
pub fn must_force(seconds_left: i64, grace_seconds: i64) -> bool {
    seconds_left < grace_seconds + MARGIN_SECONDS
}

/// The grace period a forced delete gets: what is left before the deadline (less the
/// margin), never more than the pod asked for, never under 1 second.
pub fn clamped_grace(seconds_left: i64, grace_seconds: i64) -> i64 {
    (seconds_left - MARGIN_SECONDS).min(grace_seconds).max(1)
}

/// Backoff between eviction attempts a PodDisruptionBudget refused: 0.5, 1, 2, then 4 s.
pub fn retry_delay_ms(attempt: u32) -> u64 {
    500u64 << attempt.min(3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn daemonsets_mirrors_terminating_and_finished_pods_are_skipped() {
        let pods = vec![
            pod(
                json!({"metadata": {"name": "web-1", "namespace": "shop", "uid": "u1"}, "spec": {"containers": [], "terminationGracePeriodSeconds": 10}}),
            ),
            pod(
                json!({"metadata": {"name": "coredns-1", "namespace": "kube-system", "uid": "u2"}, "spec": {"containers": [], "priorityClassName": "system-cluster-critical"}}),
            ),
            pod(
                json!({"metadata": {"name": "aws-node-x", "namespace": "kube-system", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "aws-node", "uid": "d"}]}, "spec": {"containers": []}}),
            ),
            pod(
                json!({"metadata": {"name": "kube-proxy-static", "namespace": "kube-system", "annotations": {"kubernetes.io/config.mirror": "abc"}}, "spec": {"containers": []}}),
            ),
            pod(
                json!({"metadata": {"name": "leaving", "namespace": "shop", "deletionTimestamp": "2026-11-23T10:00:00Z"}, "spec": {"containers": []}}),
            ),
            pod(
                json!({"metadata": {"name": "job-done", "namespace": "shop"}, "spec": {"containers": []}, "status": {"phase": "Succeeded"}}),
            ),
        ];
        let p = plan(&pods);
        assert_eq!(
            p.tiers[0].iter().map(Target::qualified).collect::<Vec<_>>(),
            vec!["shop/web-1"]
        );
        assert_eq!(p.tiers[0][0].grace_seconds, 10);
        assert_eq!(
            p.tiers[1].iter().map(Target::qualified).collect::<Vec<_>>(),
            vec!["kube-system/coredns-1"]
        );
        assert_eq!(p.tiers[1][0].grace_seconds, DEFAULT_GRACE_SECONDS);
        let reasons: Vec<&str> = p.skipped.iter().map(|s| s.reason).collect();
        assert_eq!(
            reasons,
            vec![
                "DaemonSet pod",
                "mirror pod",
                "already terminating",
                "finished"
            ]
        );
    }

    #[test]
    fn force_when_grace_no_longer_fits() {
        assert!(!must_force(100, 30));
        assert!(!must_force(35, 30));
        assert!(must_force(34, 30));
        assert_eq!(clamped_grace(34, 30), 29);
        assert_eq!(clamped_grace(12, 30), 7);
        assert_eq!(clamped_grace(3, 30), 1);
        assert_eq!(clamped_grace(-5, 30), 1);
        assert_eq!(clamped_grace(100, 10), 10);
    }

    #[test]
    fn retries_back_off_and_cap() {
        assert_eq!(
            (0..6).map(retry_delay_ms).collect::<Vec<_>>(),
            vec![500, 1000, 2000, 4000, 4000, 4000]
        );
    }
}
