//! The drainer's answers: what an invocation returns (and, for a drained node, what it
//! publishes as `Node Drained`). Shapes are fixed here; the handler fills them.

use fleet_shared::events::{DrainCause, NodeDrained, SkippedPod};
use serde::Serialize;

/// The answer for one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum InstanceReport {
    /// The instance is not a node of any cluster in the fleet: nothing to do.
    NotOurs {
        instance_id: String,
        event: DrainCause,
    },
    /// A drain of the instance by the same or a stronger event is under way or done.
    Duplicate {
        instance_id: String,
        event: DrainCause,
    },
    /// Karpenter launched the node and handles this event itself, from its interruption
    /// queue (`[cluster.karpenter] interruption = "karpenter"`, the default): nothing
    /// done, nothing published. Spot warnings, Health scheduled changes and state
    /// changes only; see [`crate::plan::node_action`].
    KarpenterOwned(KarpenterOwned),
    /// `dry_run`: what a drain would do, nothing done.
    DryRun(DryRun),
    /// Cordoned or drained (`status` is the report's own): the `Node Drained` event.
    #[serde(untagged)]
    Done(NodeDrained),
}

/// An event for a node Karpenter handles: acknowledged, nothing changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KarpenterOwned {
    /// The Kubernetes node's name.
    pub node: String,
    /// The cluster's name in the fleet config.
    pub cluster: String,
    /// The EC2 instance id.
    pub instance_id: String,
    /// The event left to Karpenter.
    pub event: DrainCause,
    /// The node's `karpenter.sh/nodepool` label.
    pub nodepool: String,
    /// Why nothing was done ([`crate::plan::KARPENTER_OWNED_REASON`]).
    pub reason: String,
}

/// What a drain would do (`{"action":"drain","dry_run":true}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRun {
    /// The Kubernetes node's name.
    pub node: String,
    /// The cluster's name in the fleet config.
    pub cluster: String,
    /// The EC2 instance id.
    pub instance_id: String,
    /// What the drain would be for.
    pub event: DrainCause,
    /// Always true: every drain cordons first.
    pub would_cordon: bool,
    /// Pods that would be evicted, in order (`namespace/name`); empty when the node
    /// would only be cordoned.
    pub would_evict: Vec<String>,
    /// Pods that would be left alone, and why.
    pub skipped: Vec<SkippedPod>,
}

/// The answer to an invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Answer {
    /// A valid event with nothing to drain (a public Health event, a resolved entity, a
    /// rule wider than it should be): acknowledged so that it is not retried.
    Ignored { reason: String },
    /// One instance, nothing skipped: its report is the answer.
    #[serde(untagged)]
    One(InstanceReport),
    /// Several instances (a Health event), or entities skipped.
    #[serde(untagged)]
    Several(Several),
}

/// The answer for a Health event naming several entities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Several {
    /// One report per instance id, in the event's order.
    pub instances: Vec<InstanceReport>,
    /// What the drains were for.
    pub event: DrainCause,
    /// The Health event's `eventTypeCode`, when it was one.
    pub event_type_code: Option<String>,
    /// Entities that are not instance ids (`h-…`, `UNKNOWN`) or are resolved, skipped.
    pub skipped_entities: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_shared::events::DrainStatus;
    use serde_json::json;

    #[test]
    fn answers_keep_their_shapes() {
        let not_ours = InstanceReport::NotOurs {
            instance_id: "i-1".into(),
            event: DrainCause::SpotInterruption,
        };
        assert_eq!(
            serde_json::to_value(Answer::One(not_ours)).unwrap(),
            json!({"status": "not-ours", "instance_id": "i-1", "event": "spot-interruption"})
        );
        assert_eq!(
            serde_json::to_value(Answer::Ignored {
                reason: "closed".into()
            })
            .unwrap(),
            json!({"status": "ignored", "reason": "closed"})
        );
        let done = NodeDrained {
            status: DrainStatus::Cordoned,
            node: "n".into(),
            cluster: "c".into(),
            instance_id: "i-2".into(),
            event: DrainCause::RebalanceRecommendation,
            evicted: 0,
            forced: 0,
            skipped: vec![],
            pending: vec![],
            refused: vec![],
            cordon_ms: 1,
            duration_ms: 2,
            event_type_code: None,
        };
        let karpenter = InstanceReport::KarpenterOwned(KarpenterOwned {
            node: "n".into(),
            cluster: "c".into(),
            instance_id: "i-4".into(),
            event: DrainCause::ScheduledChange,
            nodepool: "spot".into(),
            reason: crate::plan::KARPENTER_OWNED_REASON.into(),
        });
        assert_eq!(
            serde_json::to_value(Answer::One(karpenter)).unwrap(),
            json!({"status": "karpenter-owned", "node": "n", "cluster": "c", "instance_id": "i-4",
                   "event": "scheduled-change", "nodepool": "spot",
                   "reason": "Karpenter's interruption queue handles its nodes (interruption = \"karpenter\")"})
        );
        let v = serde_json::to_value(Answer::One(InstanceReport::Done(done))).unwrap();
        assert_eq!(v["status"], "cordoned");
        assert_eq!(v.as_object().map(|o| o.len()), Some(12), "{v}");
        let dry = InstanceReport::DryRun(DryRun {
            node: "n".into(),
            cluster: "c".into(),
            instance_id: "i-3".into(),
            event: DrainCause::Manual,
            would_cordon: true,
            would_evict: vec!["default/web-1".into()],
            skipped: vec![],
        });
        let several = Answer::Several(Several {
            instances: vec![dry],
            event: DrainCause::ScheduledChange,
            event_type_code: Some("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into()),
            skipped_entities: vec!["h-0abc".into()],
        });
        let v = serde_json::to_value(several).unwrap();
        assert_eq!(v["instances"][0]["status"], "dry-run");
        assert_eq!(v["instances"][0]["would_evict"][0], "default/web-1");
        assert_eq!(v["skipped_entities"][0], "h-0abc");
        assert!(v.get("status").is_none());
    }
}
