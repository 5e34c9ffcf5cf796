//! What an invocation asks the cost reporter for.

use fleet_shared::request::{action, document};
use fleet_shared::{FleetError, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::report::Month;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// The daily schedule: this month's report, published and sent to Slack.
    Daily,
    /// `{"action":"report","month":"YYYY-MM"?}`: returned only.
    Report { month: Option<Month> },
}

const ACTIONS: &str = "report";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportDoc {
    #[allow(dead_code)]
    action: String,
    #[serde(default)]
    month: Option<String>,
}

pub fn parse(event: &Value) -> Result<Request> {
    if !event.is_object() {
        return Err(FleetError::bad_request(
            "(event)",
            "expected a JSON object: a scheduled event or {\"action\": \"report\"}",
        ));
    }
    // EventBridge Scheduler with no `Input` delivers `{}`.
    if fleet_shared::request::is_scheduled(event) {
        return Ok(Request::Daily);
    }
    if let Some(dt) = event.get("detail-type") {
        return Err(FleetError::bad_request(
            "detail-type",
            format!("{dt} is not an event this function handles (expected \"Scheduled Event\")"),
        ));
    }
    match action(event, ACTIONS)? {
        "report" => {
            let d: ReportDoc = document(event)?;
            let month = d
                .month
                .map(|m| {
                    Month::parse(&m).ok_or_else(|| {
                        FleetError::bad_request(
                            "month",
                            format!("`{m}` is not a month such as 2026-11"),
                        )
                    })
                })
                .transpose()?;
            Ok(Request::Report { month })
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
    fn requests() {
        assert_eq!(
            parse(&json!({"detail-type": "Scheduled Event", "detail": {}})).ok(),
            Some(Request::Daily)
        );
        assert_eq!(
            parse(&json!({"action": "report", "month": "2026-10"})).ok(),
            Some(Request::Report {
                month: Month::parse("2026-10")
            })
        );
        assert!(parse(&json!({"action": "report", "month": "October"}))
            .err()
            .is_some_and(|e| e.to_string().contains("month")));
        assert!(parse(&json!({"action": "report", "year": 2026})).is_err());
        assert!(parse(&json!({"action": "refund"})).is_err());
    }
}
