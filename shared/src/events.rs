//! The events on the `fleet` bus: the one contract between the functions and with the
//! users' own EventBridge rules. One struct per event; the publisher takes the struct,
//! consumers decode the struct, so a consumer cannot read a field its producer does not
//! send. The README's event tables are checked against these types
//! (`tests/tests/events_contract.rs`).
//!
//! Every timestamp is RFC 3339 in UTC (`2026-11-23T09:00:00Z`), the decision time of the
//! tick or event that produced it (`FLEET_NOW` locally), not the wall clock.

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Mode;
use crate::error::{FleetError, Result};

/// `source` of the cluster-scheduler's events.
pub const SOURCE_SCHEDULER: &str = "fleet.cluster-scheduler";
/// `source` of the spot-drainer's events.
pub const SOURCE_DRAINER: &str = "fleet.spot-drainer";

/// An event on the `fleet` bus: its envelope's `source` and `detail-type`, and the detail
/// (this type, as JSON).
pub trait BusEvent: Serialize + DeserializeOwned {
    /// The envelope's `source`: which function publishes it.
    const SOURCE: &'static str;
    /// The envelope's `detail-type`: what rules and consumers match on.
    const DETAIL_TYPE: &'static str;

    /// Decodes the `detail` of an EventBridge envelope as this event.
    ///
    /// # Errors
    /// A bad-request error naming the field that is missing or of the wrong type
    /// (`detail.cluster`), never a panic. Fields this version does not know are ignored:
    /// a producer may add fields before its consumers read them.
    fn from_envelope(event: &Value) -> Result<Self> {
        let detail = event
            .get("detail")
            .ok_or_else(|| FleetError::bad_request("detail", "missing"))?;
        serde_path_to_error::deserialize(detail).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "detail".to_string()
            } else {
                format!("detail.{path}")
            };
            FleetError::bad_request(&field, e.into_inner().to_string())
        })
    }

    /// Whether an envelope's `source` and `detail-type` name this event.
    fn matches(source: &str, detail_type: &str) -> bool {
        source == Self::SOURCE && detail_type == Self::DETAIL_TYPE
    }
}

/// `Cluster Ready`: a cluster is up, its blueprint applied; DNS may point at it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterReady {
    /// The cluster's name in the fleet config.
    pub cluster: String,
    /// The Kubernetes API server's URL (`https://…eks.amazonaws.com`).
    pub endpoint: String,
    /// The AWS region the cluster runs in (`eu-west-1`).
    pub region: String,
    /// How the cluster goes down at night: `destroy` or `scale`.
    pub mode: Mode,
    /// The cluster's generation: its EKS creation time in Unix seconds (`"1763888400"`);
    /// a rebuilt cluster has a new one. Consumers drop events of a generation that is no
    /// longer the recorded one.
    pub generation: String,
    /// When the transition was recorded.
    pub at: Timestamp,
    /// Seconds from the morning's first step (`CreateCluster`, or the first scale-up) to
    /// this event; absent when the scheduler did not see the rise begin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_seconds: Option<i64>,
    /// The `ready_when` objects still not ready when `ready_timeout_minutes` ran out, each
    /// with why (`Deployment ingress-nginx/ingress-nginx-controller: 0/2 available`);
    /// empty (absent) when the platform is ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<String>,
}

impl BusEvent for ClusterReady {
    const SOURCE: &'static str = SOURCE_SCHEDULER;
    const DETAIL_TYPE: &'static str = "Cluster Ready";
}

/// `Cluster Destroyed`: a cluster is down for the night (deleted, or its nodegroups at 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterDestroyed {
    /// The cluster's name in the fleet config.
    pub cluster: String,
    /// The AWS region the cluster ran in.
    pub region: String,
    /// `destroy` (the cluster is gone) or `scale` (its nodegroups are at 0).
    pub mode: Mode,
    /// When the transition was recorded.
    pub at: Timestamp,
}

impl BusEvent for ClusterDestroyed {
    const SOURCE: &'static str = SOURCE_SCHEDULER;
    const DETAIL_TYPE: &'static str = "Cluster Destroyed";
}

/// `Cluster Transition Failed`: a step failed in a way a person may need to see (quota,
/// unsupported zone, a FAILED cluster). Published once per distinct error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterTransitionFailed {
    /// The cluster's name in the fleet config.
    pub cluster: String,
    /// The AWS region the cluster runs in.
    pub region: String,
    /// The step that failed, as the scheduler's `plan` describes it (`create nodegroups …`).
    pub step: String,
    /// The error, as the AWS API or the Kubernetes API gave it (no secrets).
    pub error: String,
    /// When the scheduler tries again (after its backoff: 2, 4, 8, 16, then 30 minutes).
    pub retry_at: Timestamp,
    /// When the failure was recorded.
    pub at: Timestamp,
}

impl BusEvent for ClusterTransitionFailed {
    const SOURCE: &'static str = SOURCE_SCHEDULER;
    const DETAIL_TYPE: &'static str = "Cluster Transition Failed";
}

/// What made the drainer act on a node (`event` in its reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrainCause {
    /// `EC2 Spot Instance Interruption Warning`: two minutes left.
    SpotInterruption,
    /// `EC2 Instance Rebalance Recommendation`: elevated risk, no deadline.
    RebalanceRecommendation,
    /// `EC2 Instance State-change Notification` to stopping, stopped, shutting-down or
    /// terminated.
    StateChange,
    /// An AWS Health scheduled change (retirement, maintenance) on the instance.
    ScheduledChange,
    /// `{"action":"drain"}` from a person.
    Manual,
}

impl DrainCause {
    /// The word in reports and taints: `spot-interruption`, `rebalance-recommendation`, ….
    pub fn as_str(&self) -> &'static str {
        match self {
            DrainCause::SpotInterruption => "spot-interruption",
            DrainCause::RebalanceRecommendation => "rebalance-recommendation",
            DrainCause::StateChange => "state-change",
            DrainCause::ScheduledChange => "scheduled-change",
            DrainCause::Manual => "manual",
        }
    }
}

/// How far a drain went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrainStatus {
    /// Cordoned only (a rebalance recommendation with `rebalance = "cordon"`).
    Cordoned,
    /// Cordoned and its pods evicted (or deleted when the deadline required it).
    Drained,
}

/// A pod the drain left alone on purpose, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedPod {
    /// `namespace/name`.
    pub pod: String,
    /// `daemonset`, `mirror`, `finished`, ….
    pub reason: String,
}

/// A pod the API server would not evict (it answered 500: several budgets select it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedPod {
    /// `namespace/name`.
    pub pod: String,
    /// The API server's message, naming the budgets.
    pub reason: String,
}

/// `Node Drained`: the drainer's report of one node, also its answer to the invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDrained {
    /// `cordoned` or `drained`.
    pub status: DrainStatus,
    /// The Kubernetes node's name.
    pub node: String,
    /// The cluster's name in the fleet config.
    pub cluster: String,
    /// The EC2 instance id (`i-0…`).
    pub instance_id: String,
    /// What made the drainer act.
    pub event: DrainCause,
    /// Pods evicted through the Eviction API (their budgets respected).
    pub evicted: usize,
    /// Pods deleted because the deadline came before their budget allowed an eviction.
    pub forced: usize,
    /// Pods left on purpose (DaemonSet, mirror, finished).
    pub skipped: Vec<SkippedPod>,
    /// Pods still on the node when the drain had to stop (`namespace/name`).
    pub pending: Vec<String>,
    /// Pods the API server refused to evict.
    pub refused: Vec<RefusedPod>,
    /// Milliseconds from the start of this node's drain to the node cordoned.
    pub cordon_ms: u64,
    /// Milliseconds the whole drain took.
    pub duration_ms: u64,
    /// The Health event's `eventTypeCode` (`AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED`);
    /// absent for the other events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_code: Option<String>,
}

impl BusEvent for NodeDrained {
    const SOURCE: &'static str = SOURCE_DRAINER;
    const DETAIL_TYPE: &'static str = "Node Drained";
}

/// `Network Ready`: a `[[network]]`'s NAT gateways are available and the private route
/// tables' default routes point at them; its clusters' nodes come up after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkReady {
    /// The network's name in the fleet config.
    pub network: String,
    /// The AWS region its VPC is in.
    pub region: String,
    /// The NAT gateways (`nat-…`), in config order.
    pub nat_gateways: Vec<String>,
    /// The route tables whose default route points at them (`rtb-…`).
    pub route_tables: Vec<String>,
    /// Route tables whose default route points elsewhere, left alone (`rtb-… -> igw-…`).
    pub conflicts: Vec<String>,
    /// When the transition was recorded.
    pub at: Timestamp,
}

impl BusEvent for NetworkReady {
    const SOURCE: &'static str = SOURCE_SCHEDULER;
    const DETAIL_TYPE: &'static str = "Network Ready";
}

/// `Network Down`: every cluster that needs a `[[network]]` is down and nothing of it
/// that bills by the hour is left: its routes removed, NAT gateways deleted, Elastic IPs
/// released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkDown {
    /// The network's name in the fleet config.
    pub network: String,
    /// The AWS region its VPC is in.
    pub region: String,
    /// When the transition was recorded.
    pub at: Timestamp,
}

impl BusEvent for NetworkDown {
    const SOURCE: &'static str = SOURCE_SCHEDULER;
    const DETAIL_TYPE: &'static str = "Network Down";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_consumer_names_the_field_that_is_wrong() {
        let event = json!({"detail": {"cluster": "staging", "endpoint": "https://x", "region": "eu-west-1",
            "mode": "destroy", "generation": 7, "at": "2026-11-23T09:00:00Z"}});
        let e = ClusterReady::from_envelope(&event).unwrap_err().to_string();
        assert!(e.contains("detail.generation"), "{e}");
        let e = ClusterReady::from_envelope(&json!({"detail": {"cluster": "staging"}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("endpoint"), "{e}");
        let e = ClusterDestroyed::from_envelope(&json!({}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("detail"), "{e}");
    }

    #[test]
    fn fields_a_consumer_does_not_know_are_ignored() {
        let event = json!({"detail": {"cluster": "staging", "region": "eu-west-1", "mode": "scale",
            "at": "2026-11-23T19:00:00Z", "added_later": true}});
        let d = ClusterDestroyed::from_envelope(&event).unwrap();
        assert_eq!(d.mode, Mode::Scale);
        assert_eq!(d.at.to_string(), "2026-11-23T19:00:00Z");
    }

    #[test]
    fn a_drain_report_round_trips_and_names_its_cause_in_kebab_case() {
        let report = NodeDrained {
            status: DrainStatus::Drained,
            node: "ip-10-0-1-23.ec2.internal".into(),
            cluster: "staging".into(),
            instance_id: "i-0abc".into(),
            event: DrainCause::SpotInterruption,
            evicted: 3,
            forced: 1,
            skipped: vec![SkippedPod {
                pod: "kube-system/aws-node-x".into(),
                reason: "daemonset".into(),
            }],
            pending: vec![],
            refused: vec![],
            cordon_ms: 40,
            duration_ms: 9000,
            event_type_code: None,
        };
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["event"], "spot-interruption");
        assert_eq!(v["status"], "drained");
        assert!(v.get("event_type_code").is_none());
        for cause in [
            DrainCause::SpotInterruption,
            DrainCause::RebalanceRecommendation,
            DrainCause::StateChange,
            DrainCause::ScheduledChange,
            DrainCause::Manual,
        ] {
            assert_eq!(serde_json::to_value(cause).unwrap(), cause.as_str());
        }
        let back: NodeDrained = serde_json::from_value(v).unwrap();
        assert_eq!(back, report);
    }
}
