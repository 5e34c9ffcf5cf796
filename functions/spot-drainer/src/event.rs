//! What an invocation asks the drainer to do: one of the EC2 and Health events it is
//! wired to (shapes as in the AWS documentation), or a manual document.

use fleet_shared::{FleetError, Result};
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;
use serde_json::Value;

/// The two-minute spot warning.
pub const SPOT_WARNING_SECONDS: i64 = 120;
/// An instance already stopping or shutting down gives little time; drain as if 30 s were left.
pub const STATE_CHANGE_SECONDS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Interruption,
    Rebalance,
    StateChange,
    ScheduledChange,
    Manual,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Interruption => "spot-interruption",
            Kind::Rebalance => "rebalance-recommendation",
            Kind::StateChange => "state-change",
            Kind::ScheduledChange => "scheduled-change",
            Kind::Manual => "manual",
        }
    }

    /// The taint that says why the node is going: `fleet/<kind>:NoSchedule`.
    pub fn taint_key(&self) -> String {
        format!("fleet/{}", self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrainRequest {
    /// The EventBridge event id (or a synthetic one for manual documents).
    pub event_id: String,
    pub kind: Kind,
    pub instance_ids: Vec<String>,
    /// When the instance goes away; `None` when there is no deadline.
    pub deadline: Option<Timestamp>,
    pub dry_run: bool,
    /// EC2 state for state-change events.
    pub state: Option<String>,
}

/// What to do with a decoded event.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Drain(DrainRequest),
    /// A valid event that needs no drain (e.g. an instance entering `running`).
    Ignore {
        reason: String,
    },
}

const DRAIN_STATES: [&str; 4] = ["stopping", "stopped", "shutting-down", "terminated"];

fn bad(field: &str, message: impl Into<String>) -> FleetError {
    FleetError::bad_request(field, message)
}

fn str_at<'a>(event: &'a Value, pointer: &str, field: &str) -> Result<&'a str> {
    event
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(field, "missing or not a string"))
}

fn instance_id(id: &str, field: &str) -> Result<String> {
    let ok = id
        .strip_prefix("i-")
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(id.to_string())
    } else {
        Err(bad(field, format!("`{id}` is not an EC2 instance id")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualDoc {
    #[allow(dead_code)]
    action: String,
    instance_id: String,
    #[serde(default)]
    dry_run: bool,
}

/// Decodes an event. `now` names manual documents and dates events without a time.
pub fn parse(event: &Value, now: Timestamp) -> Result<Request> {
    if !event.is_object() {
        return Err(bad("(event)", "expected a JSON object"));
    }
    if let Some(action) = event.get("action") {
        return match action.as_str() {
            Some("drain") => {
                let doc: ManualDoc = serde_path_to_error::deserialize(event).map_err(|e| {
                    let path = e.path().to_string();
                    bad(&path, e.into_inner().to_string())
                })?;
                Ok(Request::Drain(DrainRequest {
                    event_id: format!("manual-{}-{}", doc.instance_id, now.as_second()),
                    kind: Kind::Manual,
                    instance_ids: vec![instance_id(&doc.instance_id, "instance_id")?],
                    deadline: None,
                    dry_run: doc.dry_run,
                    state: None,
                }))
            }
            _ => Err(bad(
                "action",
                format!("unknown action {action}: expected \"drain\""),
            )),
        };
    }
    let source = str_at(event, "/source", "source")?;
    let detail_type = str_at(event, "/detail-type", "detail-type")?;
    let id = str_at(event, "/id", "id")?.to_string();
    let time: Timestamp = str_at(event, "/time", "time")?
        .parse()
        .map_err(|_| bad("time", "not an RFC 3339 timestamp"))?;
    let drain = |kind, ids, deadline, state| {
        Request::Drain(DrainRequest {
            event_id: id.clone(),
            kind,
            instance_ids: ids,
            deadline,
            dry_run: false,
            state,
        })
    };
    match (source, detail_type) {
        ("aws.ec2", "EC2 Spot Instance Interruption Warning") => {
            let iid = instance_id(
                str_at(event, "/detail/instance-id", "detail.instance-id")?,
                "detail.instance-id",
            )?;
            let deadline = time
                .checked_add(SPOT_WARNING_SECONDS.seconds())
                .map_err(|e| bad("time", e.to_string()))?;
            Ok(drain(Kind::Interruption, vec![iid], Some(deadline), None))
        }
        ("aws.ec2", "EC2 Instance Rebalance Recommendation") => {
            let iid = instance_id(
                str_at(event, "/detail/instance-id", "detail.instance-id")?,
                "detail.instance-id",
            )?;
            Ok(drain(Kind::Rebalance, vec![iid], None, None))
        }
        ("aws.ec2", "EC2 Instance State-change Notification") => {
            let iid = instance_id(
                str_at(event, "/detail/instance-id", "detail.instance-id")?,
                "detail.instance-id",
            )?;
            let state = str_at(event, "/detail/state", "detail.state")?;
            if !DRAIN_STATES.contains(&state) {
                return Ok(Request::Ignore {
                    reason: format!("instance {iid} entered `{state}`: nothing to drain"),
                });
            }
            let deadline = time
                .checked_add(STATE_CHANGE_SECONDS.seconds())
                .map_err(|e| bad("time", e.to_string()))?;
            Ok(drain(
                Kind::StateChange,
                vec![iid],
                Some(deadline),
                Some(state.to_string()),
            ))
        }
        ("aws.health", "AWS Health Event") => {
            let service = str_at(event, "/detail/service", "detail.service")?;
            let category = str_at(
                event,
                "/detail/eventTypeCategory",
                "detail.eventTypeCategory",
            )?;
            if service != "EC2" || category != "scheduledChange" {
                return Ok(Request::Ignore {
                    reason: format!(
                        "health event for {service} {category}: not an EC2 scheduled change"
                    ),
                });
            }
            let entities = event
                .pointer("/detail/affectedEntities")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("detail.affectedEntities", "missing or not a list"))?;
            let ids = entities
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let field = format!("detail.affectedEntities[{i}].entityValue");
                    e.get("entityValue")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad(&field, "missing or not a string"))
                        .and_then(|v| instance_id(v, &field))
                })
                .collect::<Result<Vec<String>>>()?;
            if ids.is_empty() {
                return Ok(Request::Ignore {
                    reason: "health event affects no instance".into(),
                });
            }
            // Retirement is days away: drain now, without a deadline.
            Ok(drain(Kind::ScheduledChange, ids, None, None))
        }
        _ => Err(bad(
            "detail-type",
            format!("`{source}` / `{detail_type}` is not an event this function handles"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-23T10:00:00Z".parse().expect("ts")
    }

    fn sample(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect("sample")).expect("json")
    }

    #[test]
    fn every_sample_event_decodes() {
        let Request::Drain(d) = parse(&sample("spot-interruption.json"), now()).expect("spot")
        else {
            panic!("spot should drain");
        };
        assert_eq!(d.kind, Kind::Interruption);
        assert_eq!(d.instance_ids, vec!["i-1234567890abcdef0"]);
        assert_eq!(
            d.deadline,
            Some("2026-11-23T10:02:00Z".parse().expect("ts"))
        );
        for (file, kind) in [
            ("spot-rebalance.json", Kind::Rebalance),
            ("instance-state-change.json", Kind::StateChange),
            ("health-scheduled-change.json", Kind::ScheduledChange),
            ("spot-drain-manual.json", Kind::Manual),
        ] {
            match parse(&sample(file), now()).expect(file) {
                Request::Drain(d) => assert_eq!(d.kind, kind, "{file}"),
                other => panic!("{file}: {other:?}"),
            }
        }
    }

    #[test]
    fn running_instances_and_other_health_events_are_ignored() {
        let mut ev = sample("instance-state-change.json");
        ev["detail"]["state"] = json!("running");
        assert!(matches!(parse(&ev, now()), Ok(Request::Ignore { .. })));
        let mut h = sample("health-scheduled-change.json");
        h["detail"]["eventTypeCategory"] = json!("issue");
        assert!(matches!(parse(&h, now()), Ok(Request::Ignore { .. })));
    }

    #[test]
    fn bad_events_name_the_field() {
        let err = |v: Value| parse(&v, now()).expect_err("bad").to_string();
        let mut ev = sample("spot-interruption.json");
        ev["detail"]["instance-id"] = json!("not-an-instance");
        assert!(err(ev).contains("`detail.instance-id`"));
        let mut ev = sample("spot-interruption.json");
        ev["time"] = json!("yesterday");
        assert!(err(ev).contains("`time`"));
        assert!(err(json!({"source": "aws.s3", "detail-type": "Object Created", "id": "x", "time": "2026-11-23T10:00:00Z"})).contains("not an event this function handles"));
        assert!(err(json!({"action": "cordon"})).contains("unknown action"));
        assert!(err(
            json!({"action": "drain", "instance_id": "i-1234567890abcdef0", "force": true})
        )
        .contains("unknown field `force`"));
        assert!(err(json!("hello")).contains("expected a JSON object"));
    }
}
