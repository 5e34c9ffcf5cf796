//! What an invocation asks the aggregator for.

use fleet_shared::request::{document, not_scheduled, unknown_action, Envelope};
use fleet_shared::{FleetError, Result};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// The daily schedule: report every service over the default window and publish.
    Daily,
    /// `{"action":"report"}`: return a report; publishes nothing.
    Report {
        service: Option<String>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    },
}

const ACTIONS: &str = "report";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportDoc {
    #[allow(dead_code)]
    action: String,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

fn timestamp(field: &str, text: Option<String>) -> Result<Option<Timestamp>> {
    text.map(|t| {
        t.parse().map_err(|_| {
            FleetError::bad_request(
                field,
                format!("`{t}` is not an RFC 3339 time such as 2026-11-01T00:00:00Z"),
            )
        })
    })
    .transpose()
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
            Ok(Request::Report {
                service: d.service,
                from: timestamp("from", d.from)?,
                to: timestamp("to", d.to)?,
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
    fn requests() {
        assert_eq!(
            parse(
                &json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}})
            )
            .ok(),
            Some(Request::Daily)
        );
        assert!(matches!(
            parse(&json!({"action": "report", "service": "web", "from": "2026-11-01T00:00:00Z"})),
            Ok(Request::Report {
                service: Some(_),
                from: Some(_),
                to: None
            })
        ));
        assert!(parse(&json!({"action": "report", "from": "yesterday"}))
            .err()
            .is_some_and(|e| e.to_string().contains("from")));
        assert!(parse(&json!({"action": "report", "services": "x"})).is_err());
        assert!(parse(&json!("report")).is_err());
    }
}
