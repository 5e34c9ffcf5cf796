//! Decoding what a function is invoked with, the same way in every function: the
//! envelope (a schedule, a bus event, or a manual document), then the manual documents
//! (`{"action": ...}`), whose unknown fields are rejected and whose errors name the field.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{FleetError, Result};

/// Decodes a whole document; the error names the offending field.
pub fn document<T: DeserializeOwned>(event: &Value) -> Result<T> {
    serde_path_to_error::deserialize(event).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "(document)".to_string()
        } else {
            path
        };
        FleetError::bad_request(field, e.into_inner().to_string())
    })
}

/// The document's `action`, which must be a string; `expected` lists the valid ones.
pub fn action<'a>(event: &'a Value, expected: &str) -> Result<&'a str> {
    match event.get("action") {
        Some(Value::String(a)) => Ok(a.as_str()),
        Some(other) => Err(FleetError::bad_request(
            "action",
            format!("expected a string, got {other}"),
        )),
        None => Err(FleetError::bad_request(
            "action",
            format!("missing: expected one of {expected}"),
        )),
    }
}

/// What an invocation event is, before its function reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// A scheduled invocation: EventBridge's `Scheduled Event` or EventBridge Scheduler's
    /// `{}` (see [`is_scheduled`]).
    Scheduled,
    /// An EventBridge event (it has a `detail-type`); `source` is empty when absent.
    Bus {
        /// The envelope's `source` (`fleet.cluster-scheduler`, `aws.ec2`).
        source: &'a str,
        /// The envelope's `detail-type`.
        detail_type: &'a str,
    },
    /// A manual document: its `action` word, not yet checked against the function's.
    Action(&'a str),
}

impl<'a> Envelope<'a> {
    /// Reads the envelope of `event`; `actions` lists the function's actions, for errors.
    ///
    /// # Errors
    /// Bad request naming the problem: not a JSON object (`(event)`), a `detail-type`
    /// that is not a string, or no `action` string.
    pub fn of(event: &'a Value, actions: &str) -> Result<Envelope<'a>> {
        if !event.is_object() {
            return Err(FleetError::bad_request(
                "(event)",
                format!("expected a JSON object: a scheduled event, a fleet bus event or {{\"action\": ...}} ({actions})"),
            ));
        }
        if is_scheduled(event) {
            return Ok(Envelope::Scheduled);
        }
        if let Some(dt) = event.get("detail-type") {
            let detail_type = dt
                .as_str()
                .ok_or_else(|| FleetError::bad_request("detail-type", "not a string"))?;
            let source = event.get("source").and_then(Value::as_str).unwrap_or("");
            return Ok(Envelope::Bus {
                source,
                detail_type,
            });
        }
        action(event, actions).map(Envelope::Action)
    }
}

/// A bus event a function that is only scheduled or invoked by hand does not take.
pub fn not_scheduled(detail_type: &str) -> FleetError {
    FleetError::bad_request(
        "detail-type",
        format!("\"{detail_type}\" is not an event this function handles (expected \"Scheduled Event\")"),
    )
}

/// An action word the function does not know; `actions` lists the ones it does.
pub fn unknown_action(other: &str, actions: &str) -> FleetError {
    FleetError::bad_request(
        "action",
        format!("unknown action `{other}`: expected one of {actions}"),
    )
}

/// Whether `event` is a scheduled invocation: EventBridge's `Scheduled Event` (a rule
/// with a schedule expression), or `{}`. The EventBridge Scheduler API reference
/// (`Target.Input`) makes the input optional ("If you do not specify anything for this
/// field, EventBridge Scheduler delivers a default notification"); a Lambda target then
/// receives an empty JSON object.
pub fn is_scheduled(event: &Value) -> bool {
    event.as_object().is_some_and(|o| o.is_empty())
        || event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

/// The raw body of a Function URL request (`body`, base64 when `is_base64_encoded`), at
/// most `max` bytes; before decoding, a base64 text too long to fit is refused unread.
///
/// # Errors
/// `(400, why)` for an empty body or bad base64, `(413, why)` for one over `max` bytes:
/// the HTTP status to answer and its reason.
pub fn function_url_body(
    body: Option<&str>,
    is_base64_encoded: bool,
    max: usize,
) -> std::result::Result<Vec<u8>, (i64, String)> {
    use base64::Engine;
    let raw = body.unwrap_or_default();
    let too_large = || (413, format!("the body is over {max} bytes"));
    if raw.is_empty() {
        return Err((400, "the body is empty".into()));
    }
    if !is_base64_encoded {
        return if raw.len() > max {
            Err(too_large())
        } else {
            Ok(raw.as_bytes().to_vec())
        };
    }
    // Base64 is 4 bytes per 3: anything longer cannot decode to an accepted size.
    if raw.len() > max.div_ceil(3) * 4 + 4 {
        return Err(too_large());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| {
            (
                400,
                "isBase64Encoded is set but the body is not base64".to_string(),
            )
        })?;
    if bytes.len() > max {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes() {
        assert_eq!(
            Envelope::of(&json!({}), "a").ok(),
            Some(Envelope::Scheduled)
        );
        let bus = json!({"source": "aws.ec2", "detail-type": "X", "detail": {}});
        assert_eq!(
            Envelope::of(&bus, "a").ok(),
            Some(Envelope::Bus {
                source: "aws.ec2",
                detail_type: "X"
            })
        );
        let sync = json!({"action": "sync"});
        assert_eq!(
            Envelope::of(&sync, "a").ok(),
            Some(Envelope::Action("sync"))
        );
        let e = Envelope::of(&json!([1]), "sync").unwrap_err().to_string();
        assert!(e.contains("JSON object") && e.contains("sync"), "{e}");
        let e = Envelope::of(&json!({"detail-type": 3}), "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("detail-type"), "{e}");
        let e = Envelope::of(&json!({"cluster": "a"}), "sync, status")
            .unwrap_err()
            .to_string();
        assert!(e.contains("action") && e.contains("sync, status"), "{e}");
    }

    #[test]
    fn scheduler_without_input_and_scheduled_events_are_scheduled() {
        assert!(is_scheduled(&json!({})));
        assert!(is_scheduled(
            &json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
        ));
        assert!(!is_scheduled(&json!({"action": "report"})));
        assert!(!is_scheduled(&json!([])));
        assert!(!is_scheduled(&json!({"detail-type": "Cluster Ready"})));
    }
}
