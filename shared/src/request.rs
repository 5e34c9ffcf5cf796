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
