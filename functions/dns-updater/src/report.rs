//! The DNS updater's answers: one cluster's sync, several, or an event it ignored.

use fleet_shared::schedule::Desired;
use serde::Serialize;

use crate::plan::Change;

/// One cluster's records brought where its phase says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterSync {
    /// The cluster's name in the fleet config.
    pub cluster: String,
    /// `up` (records point at the ingress) or `down` (`on_destroy` applied).
    pub phase: Desired,
    /// `keep` when the cluster is down and its records are left as they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_destroy: Option<&'static str>,
    /// Where the records point now: a hostname or an IP; `null` when they are removed;
    /// absent when `on_destroy = "keep"` left them alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Option<String>>,
    /// One entry per configured record: what was (or, in a dry run, would be) done.
    pub changes: Vec<Change>,
    /// Nothing was written.
    pub dry_run: bool,
}

/// The answer to an invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// A `Cluster Ready` / `Cluster Destroyed` event, or a sync of one cluster.
    One(ClusterSync),
    /// The scheduled drift repair, or a sync of every cluster.
    Several {
        clusters: Vec<ClusterSync>,
        dry_run: bool,
    },
    /// A valid event with nothing to do: stale, for a cluster without DNS, or not one
    /// this function handles.
    Ignored(Ignored),
}

/// An event acknowledged and left alone (so that EventBridge does not retry it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ignored {
    /// Always `ignored`.
    pub status: &'static str,
    /// The cluster the event named, when it named one.
    pub cluster: Option<String>,
    /// Why nothing was done.
    pub reason: String,
}

impl Ignored {
    /// An ignored event, logged.
    pub fn new(cluster: Option<&str>, reason: String) -> Self {
        tracing::info!(cluster, %reason, "ignored");
        Ignored {
            status: "ignored",
            cluster: cluster.map(String::from),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_keep_their_shapes() {
        let kept = ClusterSync {
            cluster: "staging".into(),
            phase: Desired::Down,
            on_destroy: Some("keep"),
            target: None,
            changes: vec![],
            dry_run: false,
        };
        assert_eq!(
            serde_json::to_value(Answer::One(kept.clone())).unwrap(),
            json!({"cluster": "staging", "phase": "down", "on_destroy": "keep", "changes": [], "dry_run": false})
        );
        let all = Answer::Several {
            clusters: vec![kept],
            dry_run: true,
        };
        let v = serde_json::to_value(all).unwrap();
        assert_eq!(v["clusters"][0]["cluster"], "staging");
        assert_eq!(v["dry_run"], true);
        let ignored = Answer::Ignored(Ignored::new(None, "not ours".into()));
        assert_eq!(
            serde_json::to_value(ignored).unwrap(),
            json!({"status": "ignored", "cluster": null, "reason": "not ours"})
        );
    }
}
