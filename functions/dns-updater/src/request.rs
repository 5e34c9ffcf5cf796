//! What an invocation asks the DNS updater to do: a `fleet` bus event from the
//! scheduler, a scheduled drift repair, or a manual document.

use fleet_shared::events::{BusEvent, ClusterDestroyed, ClusterReady};
use fleet_shared::request::{document, unknown_action, Envelope};
use fleet_shared::{FleetError, Result};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `Cluster Ready`: point the cluster's records at its ingress.
    Ready(ClusterReady),
    /// `Cluster Destroyed`: apply the cluster's `on_destroy`.
    Destroyed(ClusterDestroyed),
    /// The schedule: repair drift on every cluster that is up.
    SyncUp,
    /// `{"action":"sync"}`: converge one cluster (or every one) to its recorded phase.
    Sync {
        cluster: Option<String>,
        dry_run: bool,
    },
    /// A valid event this function has nothing to do with.
    Ignore { reason: String },
}

const ACTIONS: &str = "sync";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncDoc {
    #[allow(dead_code)]
    action: String,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// The scheduler's events name a cluster; an empty name is not one.
fn named<E: HasCluster>(event: E) -> Result<E> {
    if event.cluster().is_empty() {
        return Err(FleetError::bad_request("detail.cluster", "empty"));
    }
    Ok(event)
}

trait HasCluster {
    fn cluster(&self) -> &str;
}

impl HasCluster for ClusterReady {
    fn cluster(&self) -> &str {
        &self.cluster
    }
}

impl HasCluster for ClusterDestroyed {
    fn cluster(&self) -> &str {
        &self.cluster
    }
}

/// Decodes an invocation event.
///
/// # Errors
/// A bad-request error naming the field: not an object, a scheduler event whose detail
/// is not the scheduler's (`detail.generation`), an unknown action or document field.
pub fn parse(event: &Value) -> Result<Request> {
    let action = match Envelope::of(event, ACTIONS)? {
        Envelope::Scheduled => return Ok(Request::SyncUp),
        Envelope::Bus {
            source,
            detail_type,
        } => {
            if ClusterReady::matches(source, detail_type) {
                return Ok(Request::Ready(named(ClusterReady::from_envelope(event)?)?));
            }
            if ClusterDestroyed::matches(source, detail_type) {
                return Ok(Request::Destroyed(named(ClusterDestroyed::from_envelope(
                    event,
                )?)?));
            }
            // A rule wider than it should be: acknowledged, so it is not retried forever.
            return Ok(Request::Ignore {
                reason: format!(
                    "`{detail_type}` from `{source}` is not an event the DNS updater handles"
                ),
            });
        }
        Envelope::Action(a) => a,
    };
    match action {
        "sync" => {
            let d: SyncDoc = document(event)?;
            Ok(Request::Sync {
                cluster: d.cluster,
                dry_run: d.dry_run,
            })
        }
        other => Err(unknown_action(other, ACTIONS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bus_events() {
        let ready = json!({"source": "fleet.cluster-scheduler", "detail-type": "Cluster Ready", "detail": {"cluster": "staging", "generation": "g1",
            "endpoint": "https://x.eks.amazonaws.com", "region": "eu-west-1", "mode": "destroy", "at": "2026-11-23T07:20:00Z"}});
        assert!(
            matches!(parse(&ready), Ok(Request::Ready(r)) if r.cluster == "staging" && r.generation == "g1")
        );
        let destroyed = json!({"source": "fleet.cluster-scheduler", "detail-type": "Cluster Destroyed", "detail": {"cluster": "staging",
            "region": "eu-west-1", "mode": "scale", "at": "2026-11-23T19:00:00Z"}});
        assert!(matches!(parse(&destroyed), Ok(Request::Destroyed { .. })));
        let scheduled =
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(parse(&scheduled).ok(), Some(Request::SyncUp));
        let drained =
            json!({"source": "fleet.spot-drainer", "detail-type": "Node Drained", "detail": {}});
        assert!(matches!(parse(&drained), Ok(Request::Ignore { .. })));
    }

    #[test]
    fn bad_input_names_the_field() {
        let no_cluster = json!({"source": "fleet.cluster-scheduler", "detail-type": "Cluster Ready", "detail": {"cluster": 7}});
        assert!(parse(&no_cluster)
            .err()
            .is_some_and(|e| e.to_string().contains("detail.cluster")));
        let empty = json!({"source": "fleet.cluster-scheduler", "detail-type": "Cluster Destroyed", "detail": {"cluster": "",
            "region": "eu-west-1", "mode": "scale", "at": "2026-11-23T19:00:00Z"}});
        assert!(parse(&empty)
            .err()
            .is_some_and(|e| e.to_string().contains("detail.cluster")));
        let no_generation = json!({"source": "fleet.cluster-scheduler", "detail-type": "Cluster Ready", "detail": {"cluster": "staging",
            "endpoint": "https://x", "region": "eu-west-1", "mode": "destroy", "at": "2026-11-23T07:20:00Z"}});
        assert!(parse(&no_generation)
            .err()
            .is_some_and(|e| e.to_string().contains("generation")));
        let typo = json!({"action": "sync", "cluster": "a", "dryrun": true});
        assert!(parse(&typo)
            .err()
            .is_some_and(|e| e.to_string().contains("dryrun")));
        let wrong_type = json!({"action": "sync", "dry_run": "yes"});
        assert!(parse(&wrong_type)
            .err()
            .is_some_and(|e| e.to_string().contains("dry_run")));
        assert!(parse(&json!({"action": "purge"}))
            .err()
            .is_some_and(|e| e.to_string().contains("purge")));
        assert!(parse(&json!([1])).is_err());
    }

    #[test]
    fn manual_sync() {
        assert_eq!(
            parse(&json!({"action": "sync", "cluster": "staging", "dry_run": true})).ok(),
            Some(Request::Sync {
                cluster: Some("staging".into()),
                dry_run: true
            })
        );
        assert_eq!(
            parse(&json!({"action": "sync"})).ok(),
            Some(Request::Sync {
                cluster: None,
                dry_run: false
            })
        );
    }
}
