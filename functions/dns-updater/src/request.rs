//! What an invocation asks the DNS updater to do: a `fleet` bus event from the
//! scheduler, a scheduled drift repair, or a manual document.

use fleet_shared::bus::{detail_type, SOURCE_SCHEDULER};
use fleet_shared::request::{action, document};
use fleet_shared::{FleetError, Result};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `Cluster Ready`: point the cluster's records at its ingress.
    Ready {
        cluster: String,
        generation: Option<String>,
    },
    /// `Cluster Destroyed`: apply the cluster's `on_destroy`.
    Destroyed {
        cluster: String,
        generation: Option<String>,
    },
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

fn cluster_of(event: &Value) -> Result<(String, Option<String>)> {
    let cluster = event
        .pointer("/detail/cluster")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| FleetError::bad_request("detail.cluster", "missing or not a string"))?;
    let generation = event
        .pointer("/detail/generation")
        .and_then(Value::as_str)
        .map(String::from);
    Ok((cluster.to_string(), generation))
}

/// Decodes an invocation event.
pub fn parse(event: &Value) -> Result<Request> {
    if !event.is_object() {
        return Err(FleetError::bad_request(
            "(event)",
            "expected a JSON object: a fleet bus event, a scheduled event or {\"action\": ...}",
        ));
    }
    // EventBridge Scheduler with no `Input` delivers `{}`.
    if fleet_shared::request::is_scheduled(event) {
        return Ok(Request::SyncUp);
    }
    if let Some(dt) = event.get("detail-type") {
        let dt = dt
            .as_str()
            .ok_or_else(|| FleetError::bad_request("detail-type", "not a string"))?;
        let source = event.get("source").and_then(Value::as_str).unwrap_or("");
        return match (source, dt) {
            (SOURCE_SCHEDULER, detail_type::CLUSTER_READY) => {
                let (cluster, generation) = cluster_of(event)?;
                Ok(Request::Ready {
                    cluster,
                    generation,
                })
            }
            (SOURCE_SCHEDULER, detail_type::CLUSTER_DESTROYED) => {
                let (cluster, generation) = cluster_of(event)?;
                Ok(Request::Destroyed {
                    cluster,
                    generation,
                })
            }
            // A rule wider than it should be: acknowledged, so it is not retried forever.
            _ => Ok(Request::Ignore {
                reason: format!("`{dt}` from `{source}` is not an event the DNS updater handles"),
            }),
        };
    }
    match action(event, ACTIONS)? {
        "sync" => {
            let d: SyncDoc = document(event)?;
            Ok(Request::Sync {
                cluster: d.cluster,
                dry_run: d.dry_run,
            })
        }
        other => Err(FleetError::bad_request(
            "action",
            format!("unknown action `{other}`: expected one of {ACTIONS}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bus_events() {
        let ready = json!({"source": "fleet.cluster-scheduler", "detail-type": "Cluster Ready", "detail": {"cluster": "staging", "generation": "g1"}});
        assert_eq!(
            parse(&ready).ok(),
            Some(Request::Ready {
                cluster: "staging".into(),
                generation: Some("g1".into())
            })
        );
        let destroyed = json!({"source": "fleet.cluster-scheduler", "detail-type": "Cluster Destroyed", "detail": {"cluster": "staging"}});
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
