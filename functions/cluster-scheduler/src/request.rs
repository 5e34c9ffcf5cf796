//! What an invocation asks for: a scheduled tick or a manual document.

use fleet_shared::schedule::Desired;
use fleet_shared::{FleetError, Result};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// One reconcile pass over every cluster (the schedule tick, or `{"action":"reconcile"}`).
    Reconcile,
    /// One step of one cluster (and its network's): `{"action":"reconcile","cluster":…}`.
    ReconcileOne { cluster: String },
    /// What a tick at `at` would do (for one cluster, or every one); changes nothing.
    Plan {
        at: Option<Timestamp>,
        cluster: Option<String>,
    },
    /// Hold a cluster up or down until a time, or for a while from now.
    Override {
        cluster: String,
        desired: Desired,
        until: Until,
        reason: String,
        /// Refused at or after this instant (`"not_after"`): a notice's button is about
        /// one transition, and its click may wait in Lambda's queue past it.
        not_after: Option<Timestamp>,
    },
    /// Drop a cluster's override; `reason`: who asked and why (the audit trail's).
    Clear {
        cluster: String,
        reason: Option<String>,
    },
    /// Recorded state, overrides, history and uptime of one cluster, or every one.
    Status { cluster: Option<String> },
}

/// When an override ends: `until` (a timestamp) or `for` (a duration such as `3h`,
/// `90m` or `2 days`, from the invocation's time).
#[derive(Debug, Clone)]
pub enum Until {
    At(Timestamp),
    For(jiff::Span),
}

impl PartialEq for Until {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Until::At(a), Until::At(b)) => a == b,
            (Until::For(a), Until::For(b)) => a.fieldwise() == b.fieldwise(),
            _ => false,
        }
    }
}

impl Until {
    pub fn resolve(&self, now: Timestamp) -> Result<Timestamp> {
        match self {
            Until::At(t) => Ok(*t),
            // Through UTC so that days and weeks count (a UTC day is 24 hours).
            Until::For(span) => now
                .to_zoned(jiff::tz::TimeZone::UTC)
                .checked_add(*span)
                .map(|z| z.timestamp())
                .map_err(|e| FleetError::bad_request("for", format!("{span} from {now}: {e}"))),
        }
    }
}

const ACTIONS: &str = "plan, reconcile, up, down, clear, status";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanDoc {
    #[allow(dead_code)]
    action: String,
    #[allow(dead_code)]
    #[serde(default)]
    reply_to: Option<ReplyTo>,
    at: Option<String>,
    #[serde(default)]
    cluster: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusDoc {
    #[allow(dead_code)]
    action: String,
    #[allow(dead_code)]
    #[serde(default)]
    reply_to: Option<ReplyTo>,
    #[serde(default)]
    cluster: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideDoc {
    #[allow(dead_code)]
    action: String,
    #[allow(dead_code)]
    #[serde(default)]
    reply_to: Option<ReplyTo>,
    cluster: String,
    #[serde(default)]
    until: Option<String>,
    #[serde(default, rename = "for")]
    duration: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearDoc {
    #[allow(dead_code)]
    action: String,
    #[allow(dead_code)]
    #[serde(default)]
    reply_to: Option<ReplyTo>,
    cluster: String,
    #[serde(default)]
    reason: Option<String>,
}

/// Where the answer also goes (`"reply_to"` in `status`, `plan`, `up`, `down` and
/// `clear`): a Slack `response_url`, as `slack-commands` passes it on. The invocation's
/// own answer is unchanged.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyTo {
    /// The `response_url` (under `https://hooks.slack.com/`).
    pub url: String,
    /// Replace the message the command came from (a notice's buttons) rather than post
    /// a new one.
    #[serde(default)]
    pub replace_original: bool,
}

#[derive(Deserialize)]
struct ReplyDoc {
    #[serde(default)]
    reply_to: Option<ReplyTo>,
}

/// The document's `reply_to`, if any (checked like the rest of it by [`parse`]).
///
/// # Errors
/// Bad request naming `reply_to` when it is not `{"url": …, "replace_original": bool}`.
pub fn reply_to(event: &Value) -> Result<Option<ReplyTo>> {
    if event.get("reply_to").is_none() {
        return Ok(None);
    }
    doc::<ReplyDoc>(event).map(|d| d.reply_to)
}

use fleet_shared::request::document as doc;
use fleet_shared::request::{not_scheduled, unknown_action, Envelope};

fn timestamp(field: &str, text: &str) -> Result<Timestamp> {
    text.parse().map_err(|_| {
        FleetError::bad_request(
            field,
            format!("`{text}` is not an RFC 3339 timestamp such as 2026-11-23T08:00:00Z"),
        )
    })
}

fn duration(field: &str, text: &str) -> Result<jiff::Span> {
    let bad = || {
        FleetError::bad_request(
            field,
            format!("`{text}` is not a positive duration such as 3h, 90m or 2 days"),
        )
    };
    let span: jiff::Span = text.parse().map_err(|_| bad())?;
    if !span.is_positive() {
        return Err(bad());
    }
    Ok(span)
}

/// Decodes an invocation event.
pub fn parse(event: &Value) -> Result<Request> {
    let action = match Envelope::of(event, ACTIONS)? {
        Envelope::Scheduled => return Ok(Request::Reconcile),
        Envelope::Bus { detail_type, .. } => return Err(not_scheduled(detail_type)),
        Envelope::Action(a) => a,
    };
    match action {
        "reconcile" => doc::<StatusDoc>(event).map(|d| match d.cluster {
            Some(cluster) => Request::ReconcileOne { cluster },
            None => Request::Reconcile,
        }),
        "status" => doc::<StatusDoc>(event).map(|d| Request::Status { cluster: d.cluster }),
        "plan" => {
            let d: PlanDoc = doc(event)?;
            let at = d.at.as_deref().map(|t| timestamp("at", t)).transpose()?;
            Ok(Request::Plan {
                at,
                cluster: d.cluster,
            })
        }
        "up" | "down" => {
            let d: OverrideDoc = doc(event)?;
            let until =
                match (d.until.as_deref(), d.duration.as_deref()) {
                    (Some(t), None) => Until::At(timestamp("until", t)?),
                    (None, Some(span)) => Until::For(duration("for", span)?),
                    _ => return Err(FleetError::bad_request(
                        "until",
                        "give exactly one of `until` (RFC 3339) or `for` (a duration such as 3h)",
                    )),
                };
            Ok(Request::Override {
                cluster: d.cluster,
                desired: if action == "up" {
                    Desired::Up
                } else {
                    Desired::Down
                },
                until,
                reason: d.reason.unwrap_or_else(|| "manual override".into()),
                not_after: d
                    .not_after
                    .as_deref()
                    .map(|t| timestamp("not_after", t))
                    .transpose()?,
            })
        }
        "clear" => {
            let d: ClearDoc = doc(event)?;
            Ok(Request::Clear {
                cluster: d.cluster,
                reason: d.reason,
            })
        }
        other => Err(unknown_action(other, ACTIONS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        parse(&v).expect_err("should fail").to_string()
    }

    #[test]
    fn scheduled_events_reconcile() {
        let ev = json!({"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","detail":{}});
        assert_eq!(parse(&ev).ok(), Some(Request::Reconcile));
        assert_eq!(
            parse(&json!({"action":"reconcile"})).ok(),
            Some(Request::Reconcile)
        );
    }

    #[test]
    fn reply_to_rides_along_checked() {
        let ev = json!({"action":"up","cluster":"staging","for":"1h","reason":"demo",
            "reply_to":{"url":"https://hooks.slack.com/actions/T1/2/x","replace_original":true}});
        assert!(matches!(parse(&ev), Ok(Request::Override { .. })));
        assert_eq!(
            reply_to(&ev).ok().flatten(),
            Some(ReplyTo {
                url: "https://hooks.slack.com/actions/T1/2/x".into(),
                replace_original: true
            })
        );
        assert_eq!(reply_to(&json!({"action":"status"})).ok(), Some(None));
        let bad = json!({"action":"status","reply_to":{"url":"x","to":"y"}});
        assert!(parse(&bad).is_err());
        assert!(reply_to(&bad).is_err());
        assert_eq!(
            parse(&json!({"action":"clear","cluster":"staging","reason":"by Uxx"})).ok(),
            Some(Request::Clear {
                cluster: "staging".into(),
                reason: Some("by Uxx".into())
            })
        );
    }

    #[test]
    fn manual_documents() {
        assert_eq!(
            parse(&json!({"action":"plan","at":"2026-11-23T08:00:00+01:00"})).ok(),
            Some(Request::Plan {
                at: Some("2026-11-23T07:00:00Z".parse().expect("ts")),
                cluster: None,
            })
        );
        assert_eq!(
            parse(&json!({"action":"down","cluster":"staging","until":"2026-11-24T00:00:00Z"}))
                .ok(),
            Some(Request::Override {
                cluster: "staging".into(),
                desired: Desired::Down,
                until: Until::At("2026-11-24T00:00:00Z".parse().expect("ts")),
                reason: "manual override".into(),
                not_after: None,
            })
        );
        let Ok(Request::Override { until, .. }) =
            parse(&json!({"action":"up","cluster":"staging","for":"3h","reason":"demo"}))
        else {
            panic!("for: should parse");
        };
        let now: Timestamp = "2026-11-23T20:00:00Z".parse().expect("ts");
        assert_eq!(until.resolve(now).ok(), "2026-11-23T23:00:00Z".parse().ok());
        let Ok(Request::Override { until, .. }) =
            parse(&json!({"action":"down","cluster":"staging","for":"2 days"}))
        else {
            panic!("for days: should parse");
        };
        assert_eq!(until.resolve(now).ok(), "2026-11-25T20:00:00Z".parse().ok());
        assert_eq!(
            parse(&json!({"action":"reconcile","cluster":"staging"})).ok(),
            Some(Request::ReconcileOne {
                cluster: "staging".into()
            })
        );
        assert_eq!(
            parse(&json!({"action":"status","cluster":"staging"})).ok(),
            Some(Request::Status {
                cluster: Some("staging".into())
            })
        );
        assert_eq!(
            parse(&json!({"action":"plan","cluster":"staging"})).ok(),
            Some(Request::Plan {
                at: None,
                cluster: Some("staging".into())
            })
        );
        assert_eq!(
            parse(&json!({"action":"clear","cluster":"staging"})).ok(),
            Some(Request::Clear {
                cluster: "staging".into(),
                reason: None,
            })
        );
    }

    #[test]
    fn bad_documents_name_the_field() {
        assert_eq!(
            err(json!({"action":"destroy-everything"})),
            "bad request: `action`: unknown action `destroy-everything`: expected one of plan, reconcile, up, down, clear, status"
        );
        assert!(err(json!({"action":"up","cluster":"a","until":"tomorrow"}))
            .starts_with("bad request: `until`: `tomorrow` is not an RFC 3339"));
        assert!(err(json!({"action":"up","until":"2026-11-24T00:00:00Z"}))
            .contains("missing field `cluster`"));
        assert!(err(json!({"action":"up","cluster":"a"})).contains("exactly one of `until`"));
        assert!(
            err(json!({"action":"up","cluster":"a","for":"-2h"})).starts_with("bad request: `for`")
        );
        assert!(err(json!({"action":"up","cluster":"a","for":"soon"}))
            .starts_with("bad request: `for`"));
        assert!(err(json!({"action":"plan","at":5})).starts_with("bad request: `at`: invalid type"));
        assert!(err(json!({"action":"status","force":true})).contains("unknown field `force`"));
        assert!(err(json!({"action":7})).starts_with("bad request: `action`: expected a string"));
        assert!(err(json!([1, 2])).starts_with("bad request: `(event)`"));
        assert!(
            err(json!({"detail-type":"EC2 Spot Instance Interruption Warning"}))
                .starts_with("bad request: `detail-type`")
        );
        assert!(err(json!({"cluster": "a"})).contains("missing"));
        // EventBridge Scheduler without an Input.
        assert!(matches!(parse(&json!({})), Ok(Request::Reconcile)));
    }
}
