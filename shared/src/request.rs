//! Decoding manual invoke documents (`{"action": ...}`), the same way in every function:
//! unknown fields are rejected and every error names the field.

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

/// Whether `event` is a scheduled invocation: EventBridge's `Scheduled Event` (a rule
/// with a schedule expression), or `{}`. The EventBridge Scheduler API reference
/// (`Target.Input`) makes the input optional ("If you do not specify anything for this
/// field, EventBridge Scheduler delivers a default notification"); a Lambda target then
/// receives an empty JSON object.
pub fn is_scheduled(event: &Value) -> bool {
    event.as_object().is_some_and(|o| o.is_empty())
        || event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
