//! The drain plan: whether the node is the drainer's to act on at all, which pods to
//! evict, in which order, and when to stop waiting for a PodDisruptionBudget and delete a
//! pod so that it still gets SIGTERM before the instance dies. Pure: the executor in
//! `drain.rs` feeds it the node's labels, the pods and the clock.

use std::collections::BTreeMap;

use fleet_shared::config::{InterruptionHandler, RebalanceAction};
use fleet_shared::events::DrainCause;
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

/// The label Karpenter puts on every node it launches: the NodePool's name
/// (`karpenter.sh/nodepool`, Karpenter's `NodePoolLabelKey`).
pub const NODEPOOL_LABEL: &str = "karpenter.sh/nodepool";

/// The label EKS puts on every node of a managed nodegroup.
pub const NODEGROUP_LABEL: &str = "eks.amazonaws.com/nodegroup";

/// Why an event for a Karpenter node is left to Karpenter (the answer's `reason`).
pub const KARPENTER_OWNED_REASON: &str =
    "Karpenter's interruption queue handles its nodes (interruption = \"karpenter\")";

/// What the drainer does to a node for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAction {
    /// Nothing: Karpenter launched the node (its NodePool named) and acts on this event
    /// itself, from its interruption queue. Two handlers for one warning would both
    /// cordon and evict, and Karpenter would launch a replacement besides.
    KarpenterOwned { nodepool: String },
    /// Cordon only: a rebalance recommendation where the cluster says `cordon`.
    Cordon,
    /// Cordon and evict.
    Drain,
}

/// What to do to a node with `labels` for an event of `cause`, in a cluster whose
/// `rebalance` is `rebalance` and whose `[cluster.karpenter] interruption` is
/// `interruption` (`None`: no `[cluster.karpenter]`).
///
/// Karpenter's interruption queue acts on spot interruption warnings, Health scheduled
/// changes and state changes to stopping, stopped, shutting-down or terminated
/// (karpenter-provider-aws, `pkg/controllers/interruption/utils.go`, `actionForMessage`:
/// cordon and drain), so with `interruption = "karpenter"` those are its own for the
/// nodes it launched, whichever NodePool (its queue serves them all, not only the ones
/// the fleet manages). A rebalance recommendation it only records as a Kubernetes event
/// (karpenter-provider-aws #2813): that one follows `rebalance` as for any node. A manual
/// drain is a person's explicit request: always done.
pub fn node_action(
    cause: DrainCause,
    rebalance: RebalanceAction,
    interruption: Option<InterruptionHandler>,
    labels: &BTreeMap<String, String>,
) -> NodeAction {
    let karpenters_event = matches!(
        cause,
        DrainCause::SpotInterruption | DrainCause::ScheduledChange | DrainCause::StateChange
    );
    // A managed nodegroup's node that merely carries the label (copied into a launch
    // template, say) is not Karpenter's: its queue knows nothing of it.
    let in_nodegroup = labels.contains_key(NODEGROUP_LABEL);
    if karpenters_event && interruption == Some(InterruptionHandler::Karpenter) && !in_nodegroup {
        if let Some(nodepool) = labels.get(NODEPOOL_LABEL) {
            return NodeAction::KarpenterOwned {
                nodepool: nodepool.clone(),
            };
        }
    }
    if cause == DrainCause::RebalanceRecommendation && rebalance == RebalanceAction::Cordon {
        NodeAction::Cordon
    } else {
        NodeAction::Drain
    }
}

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

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn karpenter_nodes_are_karpenters_for_what_its_queue_handles() {
        use DrainCause::*;
        let karpenter = labels(&[(NODEPOOL_LABEL, "spot"), ("kubernetes.io/os", "linux")]);
        let nodegroup = labels(&[("eks.amazonaws.com/nodegroup", "system")]);
        // A nodegroup's node carrying the label anyway (copied into its launch template).
        let labelled = labels(&[
            ("eks.amazonaws.com/nodegroup", "system"),
            (NODEPOOL_LABEL, "spot"),
        ]);
        let owned = NodeAction::KarpenterOwned {
            nodepool: "spot".into(),
        };
        let k = Some(InterruptionHandler::Karpenter);
        let drain = RebalanceAction::Drain;
        // (cause, rebalance, interruption, labels) -> action
        let cases = [
            (SpotInterruption, drain, k, &karpenter, owned.clone()),
            (ScheduledChange, drain, k, &karpenter, owned.clone()),
            (StateChange, drain, k, &karpenter, owned.clone()),
            // Karpenter does not act on rebalance recommendations: `rebalance` decides.
            (
                RebalanceRecommendation,
                drain,
                k,
                &karpenter,
                NodeAction::Drain,
            ),
            (
                RebalanceRecommendation,
                RebalanceAction::Cordon,
                k,
                &karpenter,
                NodeAction::Cordon,
            ),
            // A person asked.
            (Manual, drain, k, &karpenter, NodeAction::Drain),
            // A nodegroup's node in the same cluster.
            (SpotInterruption, drain, k, &nodegroup, NodeAction::Drain),
            (SpotInterruption, drain, k, &labelled, NodeAction::Drain),
            // interruption = "fleet", or no [cluster.karpenter]: drained like any node.
            (
                SpotInterruption,
                drain,
                Some(InterruptionHandler::Fleet),
                &karpenter,
                NodeAction::Drain,
            ),
            (ScheduledChange, drain, None, &karpenter, NodeAction::Drain),
            (StateChange, drain, None, &karpenter, NodeAction::Drain),
            (
                RebalanceRecommendation,
                RebalanceAction::Cordon,
                Some(InterruptionHandler::Fleet),
                &karpenter,
                NodeAction::Cordon,
            ),
        ];
        for (cause, rebalance, interruption, labels, want) in cases {
            assert_eq!(
                node_action(cause, rebalance, interruption, labels),
                want,
                "{cause:?}, {rebalance:?}, {interruption:?}, {labels:?}"
            );
        }
    }

    #[test]
    fn retries_back_off_and_cap() {
        assert_eq!(
            (0..6).map(retry_delay_ms).collect::<Vec<_>>(),
            vec![500, 1000, 2000, 4000, 4000, 4000]
        );
    }
}
