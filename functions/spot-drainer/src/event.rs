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

pub use fleet_shared::events::DrainCause;

/// The taint that says why the node is going: `fleet/<cause>:NoSchedule`.
pub fn taint_key(cause: DrainCause) -> String {
    format!("fleet/{}", cause.as_str())
}

/// How strong a drain is. A drain lease taken for an event keeps out later events for the
/// same instance that are the same or weaker (duplicates); a stronger one takes it over:
/// a rebalance recommendation that only cordoned must not stop the spot interruption
/// warning a minute later from draining (aws-node-termination-handler and Karpenter both
/// escalate the same way: the warning is the one with a deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    /// Cordon only (a rebalance recommendation where the cluster says `cordon`).
    Cordon = 1,
    /// Cordon and evict, no deadline (rebalance, Health scheduled change, manual).
    Drain = 2,
    /// Cordon and evict before the instance goes (spot warning, stopping/terminated).
    Deadline = 3,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrainRequest {
    /// The EventBridge event id (or a synthetic one for manual documents).
    pub event_id: String,
    pub kind: DrainCause,
    pub instance_ids: Vec<String>,
    /// When the instance goes away; `None` when there is no deadline.
    pub deadline: Option<Timestamp>,
    pub dry_run: bool,
    /// EC2 state for state-change events.
    pub state: Option<String>,
    /// AWS Health's `eventTypeCode` (e.g. `AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED`).
    pub event_type_code: Option<String>,
    /// Health entities that are not drained, each with why (`h-0a1b…: not an EC2
    /// instance`, `i-…: RESOLVED`).
    pub skipped_entities: Vec<String>,
    /// Where the instance runs, from the event's envelope (`account`, `region`): a spoke
    /// region's rule forwards its events to the hub's bus unchanged, so the envelope
    /// still names the spoke. `None` for a manual document: every cluster is searched.
    pub origin: Option<Origin>,
}

/// The account (12 digits) and region an EventBridge event comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub account: String,
    pub region: String,
}

impl DrainRequest {
    /// This request's urgency when the cluster's rebalance action is `cordon_only`.
    pub fn urgency(&self, cordon_only: bool) -> Urgency {
        if self.deadline.is_some() {
            Urgency::Deadline
        } else if cordon_only {
            Urgency::Cordon
        } else {
            Urgency::Drain
        }
    }
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
///
/// Errors: a malformed envelope or detail, naming the field; an `account` that is not 12
/// digits or a `region` that is not a region name.
pub fn parse(event: &Value, now: Timestamp) -> Result<Request> {
    let mut request = parse_detail(event, now)?;
    if let Request::Drain(req) = &mut request {
        if event.get("action").is_none() {
            req.origin = origin(event)?;
        }
    }
    Ok(request)
}

/// The envelope's `account` and `region`, when it has both (EventBridge's always does).
/// A `region` that names no region (Health's `global` for account-wide events) leaves
/// the origin open: every cluster is searched.
fn origin(event: &Value) -> Result<Option<Origin>> {
    let (Some(account), Some(region)) = (event.get("account"), event.get("region")) else {
        return Ok(None);
    };
    let account = account
        .as_str()
        .filter(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()))
        .ok_or_else(|| bad("account", "not a 12-digit AWS account id"))?;
    let region = region
        .as_str()
        .ok_or_else(|| bad("region", "not a string"))?;
    if fleet_shared::config::partition_of(region).is_none() {
        return Ok(None);
    }
    Ok(Some(Origin {
        account: account.to_string(),
        region: region.to_string(),
    }))
}

fn parse_detail(event: &Value, now: Timestamp) -> Result<Request> {
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
                    kind: DrainCause::Manual,
                    instance_ids: vec![instance_id(&doc.instance_id, "instance_id")?],
                    deadline: None,
                    dry_run: doc.dry_run,
                    state: None,
                    event_type_code: None,
                    skipped_entities: Vec::new(),
                    origin: None,
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
            event_type_code: None,
            skipped_entities: Vec::new(),
            origin: None,
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
            Ok(drain(
                DrainCause::SpotInterruption,
                vec![iid],
                Some(deadline),
                None,
            ))
        }
        ("aws.ec2", "EC2 Instance Rebalance Recommendation") => {
            let iid = instance_id(
                str_at(event, "/detail/instance-id", "detail.instance-id")?,
                "detail.instance-id",
            )?;
            Ok(drain(
                DrainCause::RebalanceRecommendation,
                vec![iid],
                None,
                None,
            ))
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
                DrainCause::StateChange,
                vec![iid],
                Some(deadline),
                Some(state.to_string()),
            ))
        }
        ("aws.health", "AWS Health Event") => health(event, id),
        _ => Err(bad(
            "detail-type",
            format!("`{source}` / `{detail_type}` is not an event this function handles"),
        )),
    }
}

/// Health's event status codes that still ask for action (`closed` is the end of the
/// event: Health sends the event again on every status change). Source: the AWS Health
/// API reference, `Event.statusCode`: `open | closed | upcoming`.
const HEALTH_ACTIVE: [&str; 2] = ["open", "upcoming"];
/// Entity statuses that mean the entity needs nothing (AWS Health API reference,
/// `AffectedEntity.statusCode`: `IMPAIRED | UNIMPAIRED | UNKNOWN | PENDING | RESOLVED`).
const ENTITY_DONE: [&str; 2] = ["RESOLVED", "UNIMPAIRED"];

/// An AWS Health event: an EC2 scheduled change that is still open or upcoming drains its
/// instances (no deadline: the change is hours or days away). Entities that are not
/// instances (Dedicated Hosts `h-…`, `UNKNOWN` when Health does not know the extent) or
/// are resolved are skipped one by one; an event without entities (a public event) or
/// with none left is acknowledged as ignored.
fn health(event: &Value, id: String) -> Result<Request> {
    let service = str_at(event, "/detail/service", "detail.service")?;
    let category = str_at(
        event,
        "/detail/eventTypeCategory",
        "detail.eventTypeCategory",
    )?;
    let code = event
        .pointer("/detail/eventTypeCode")
        .and_then(Value::as_str)
        .unwrap_or("(no eventTypeCode)");
    if service != "EC2" || category != "scheduledChange" {
        return Ok(Request::Ignore {
            reason: format!(
                "health event {code} for {service} {category}: not an EC2 scheduled change"
            ),
        });
    }
    // Absent in older samples; Health's events carry it.
    let status = match event.pointer("/detail/statusCode") {
        None => "open",
        Some(v) => v
            .as_str()
            .ok_or_else(|| bad("detail.statusCode", "not a string"))?,
    };
    if !HEALTH_ACTIVE.contains(&status) {
        return Ok(Request::Ignore {
            reason: format!("health event {code} is {status}: nothing to drain"),
        });
    }
    let Some(entities) = event.pointer("/detail/affectedEntities") else {
        return Ok(Request::Ignore {
            reason: format!("health event {code} names no affected entities (a public event)"),
        });
    };
    let entities = entities
        .as_array()
        .ok_or_else(|| bad("detail.affectedEntities", "not a list"))?;
    let mut ids = Vec::new();
    let mut skipped = Vec::new();
    for (i, e) in entities.iter().enumerate() {
        let Some(value) = e.get("entityValue").and_then(Value::as_str) else {
            skipped.push(format!(
                "detail.affectedEntities[{i}]: no entityValue string"
            ));
            continue;
        };
        let entity_status = e.get("status").and_then(Value::as_str).unwrap_or("");
        if ENTITY_DONE
            .iter()
            .any(|d| d.eq_ignore_ascii_case(entity_status))
        {
            skipped.push(format!("{value}: {entity_status}"));
        } else if instance_id(value, "entityValue").is_err() {
            skipped.push(format!("{value}: not an EC2 instance"));
        } else if !ids.iter().any(|known| known == value) {
            ids.push(value.to_string());
        }
    }
    if ids.is_empty() {
        let what = if skipped.is_empty() {
            "no entities".to_string()
        } else {
            skipped.join(", ")
        };
        return Ok(Request::Ignore {
            reason: format!("health event {code} affects no instance to drain ({what})"),
        });
    }
    Ok(Request::Drain(DrainRequest {
        event_id: id,
        kind: DrainCause::ScheduledChange,
        instance_ids: ids,
        deadline: None,
        dry_run: false,
        state: None,
        event_type_code: Some(code.to_string()),
        skipped_entities: skipped,
        origin: None,
    }))
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
        assert_eq!(d.kind, DrainCause::SpotInterruption);
        assert_eq!(d.instance_ids, vec!["i-1234567890abcdef0"]);
        assert_eq!(
            d.deadline,
            Some("2026-11-23T10:02:00Z".parse().expect("ts"))
        );
        for (file, kind) in [
            ("spot-rebalance.json", DrainCause::RebalanceRecommendation),
            ("instance-state-change.json", DrainCause::StateChange),
            ("health-scheduled-change.json", DrainCause::ScheduledChange),
            ("spot-drain-manual.json", DrainCause::Manual),
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
    fn the_envelope_says_where_the_instance_runs() {
        let mut warning = sample("spot-interruption.json");
        warning["account"] = json!("222233334444");
        warning["region"] = json!("us-east-1");
        let Ok(Request::Drain(d)) = parse(&warning, now()) else {
            panic!("drains");
        };
        assert_eq!(
            d.origin,
            Some(Origin {
                account: "222233334444".into(),
                region: "us-east-1".into()
            })
        );
        warning["region"] = json!("global");
        let Ok(Request::Drain(d)) = parse(&warning, now()) else {
            panic!("drains");
        };
        assert_eq!(d.origin, None, "no region: every cluster is searched");
        warning["account"] = json!("2222");
        let err = parse(&warning, now()).expect_err("a bad account");
        assert!(err.to_string().contains("account"), "{err}");
    }

    #[test]
    fn health_events_drain_only_open_instances() {
        let with = |status: Option<&str>, entities: Value| {
            let mut h = sample("health-scheduled-change.json");
            if let Some(s) = status {
                h["detail"]["statusCode"] = json!(s);
            }
            h["detail"]["affectedEntities"] = entities;
            parse(&h, now())
        };
        let instance = json!([{"entityValue": "i-1234567890abcdef0"}]);
        for status in ["open", "upcoming"] {
            assert!(matches!(
                with(Some(status), instance.clone()),
                Ok(Request::Drain(_))
            ));
        }
        assert!(matches!(
            with(Some("closed"), instance.clone()),
            Ok(Request::Ignore { .. })
        ));
        // Entities: hosts, UNKNOWN, resolved or unimpaired instances are skipped.
        for entity in [
            json!({"entityValue": "h-0a1b2c3d4e5f60718"}),
            json!({"entityValue": "UNKNOWN"}),
            json!({"entityValue": "arn:aws:ec2:eu-west-1:123456789012:dedicated-host/h-0a1b2c3d4e5f60718"}),
            json!({"entityValue": "i-1234567890abcdef0", "status": "RESOLVED"}),
            json!({"entityValue": "i-1234567890abcdef0", "status": "UNIMPAIRED"}),
            json!({"entityArn": "no value"}),
        ] {
            let r = with(None, json!([entity.clone()]));
            assert!(matches!(r, Ok(Request::Ignore { .. })), "{entity}: {r:?}");
        }
        let Ok(Request::Drain(d)) = with(
            Some("open"),
            json!([{"entityValue": "UNKNOWN"}, {"entityValue": "i-1234567890abcdef0", "status": "IMPAIRED"}, {"entityValue": "i-1234567890abcdef0"}]),
        ) else {
            panic!("the instance drains");
        };
        assert_eq!(d.instance_ids, vec!["i-1234567890abcdef0"]);
        assert_eq!(d.skipped_entities, vec!["UNKNOWN: not an EC2 instance"]);
        assert_eq!(
            d.event_type_code.as_deref(),
            Some("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED")
        );
        // A public event has no entities at all: acknowledged.
        let mut public = sample("health-scheduled-change.json");
        public["detail"]
            .as_object_mut()
            .map(|d| d.remove("affectedEntities"));
        assert!(matches!(parse(&public, now()), Ok(Request::Ignore { .. })));
        // A wrong shape is still an error naming the field.
        let err = with(None, json!("i-1234567890abcdef0")).expect_err("not a list");
        assert!(err.to_string().contains("detail.affectedEntities"));
    }

    #[test]
    fn urgency_orders_cordon_drain_and_deadline() {
        let Request::Drain(spot) = parse(&sample("spot-interruption.json"), now()).expect("spot")
        else {
            panic!("drain")
        };
        let Request::Drain(rebalance) =
            parse(&sample("spot-rebalance.json"), now()).expect("rebalance")
        else {
            panic!("drain")
        };
        assert_eq!(rebalance.urgency(true), Urgency::Cordon);
        assert_eq!(rebalance.urgency(false), Urgency::Drain);
        assert_eq!(spot.urgency(true), Urgency::Deadline);
        assert!(Urgency::Cordon < Urgency::Drain && Urgency::Drain < Urgency::Deadline);
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
