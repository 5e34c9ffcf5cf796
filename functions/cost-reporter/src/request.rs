//! What an invocation asks the cost reporter for.

use fleet_shared::request::{document, not_scheduled, unknown_action, Envelope};
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
    let action = match Envelope::of(event, ACTIONS)? {
        Envelope::Scheduled => return Ok(Request::Daily),
        Envelope::Bus { detail_type, .. } => return Err(not_scheduled(detail_type)),
        Envelope::Action(a) => a,
    };
    match action {
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
        other => Err(unknown_action(other, ACTIONS)),
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
