//! A command as the request document its function reads, checked by that function's own
//! parser before anything is invoked: the CLI accepts exactly what the function accepts
//! (one implementation), and a bad argument is a usage error that invokes nothing.

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use crate::invoke::Function;

/// A document for `function`, already accepted by its parser.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub function: Function,
    pub event: Value,
}

/// A bad argument: one line naming it. Exit 2.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage(pub String);

fn doc(pairs: &[(&str, Option<Value>)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            m.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(m)
}

fn s(v: &Option<String>) -> Option<Value> {
    v.as_ref().map(|v| json!(v))
}

/// The function's refusal in the CLI's words: `--for` for the document's `for`.
fn usage(e: fleet_shared::FleetError) -> Usage {
    Usage(cli_words(&e.to_string()))
}

/// A function's refusal (`bad request: `until`: …`) in the CLI's words (`--until: …`),
/// whether the parser here or the deployed function said it.
pub fn cli_words(refusal: &str) -> String {
    let text = refusal.strip_prefix("bad request: ").unwrap_or(refusal);
    text.replacen("`for`", "--for", 1)
        .replacen("`until`", "--until", 1)
        .replacen("`at`", "--at", 1)
        .replacen("`instance_id`", "instance id", 1)
        .replacen("`month`", "--month", 1)
        .replacen("`from`", "--from", 1)
        .replacen("`to`", "--to", 1)
}

/// `status [<cluster>]`.
pub fn status(cluster: &Option<String>) -> Result<Request, Usage> {
    scheduler(doc(&[
        ("action", Some(json!("status"))),
        ("cluster", s(cluster)),
    ]))
}

/// `plan [--at <time>] [<cluster>]`.
pub fn plan(at: &Option<String>, cluster: &Option<String>) -> Result<Request, Usage> {
    scheduler(doc(&[
        ("action", Some(json!("plan"))),
        ("at", s(at)),
        ("cluster", s(cluster)),
    ]))
}

/// `up`/`down <cluster> (--for <duration> | --until <time>) --reason <text>`, at decision
/// time `now`: a `--until` not after `now` is refused here (the scheduler would refuse it
/// too, having invoked).
pub fn hold(
    desired: &str,
    cluster: &str,
    for_: &Option<String>,
    until: &Option<String>,
    reason: &str,
    now: Timestamp,
) -> Result<Request, Usage> {
    if reason.trim().is_empty() {
        return Err(Usage(
            "--reason: say why (it is shown in status, Slack and the audit trail)".into(),
        ));
    }
    let r = scheduler(doc(&[
        ("action", Some(json!(desired))),
        ("cluster", Some(json!(cluster))),
        ("for", s(for_)),
        ("until", s(until)),
        ("reason", Some(json!(reason))),
    ]))?;
    if let Ok(cluster_scheduler::request::Request::Override { until, .. }) =
        cluster_scheduler::request::parse(&r.event)
    {
        let end = until.resolve(now).map_err(usage)?;
        if end <= now {
            return Err(Usage(format!(
                "--until: {end} is not in the future (now is {now})"
            )));
        }
    }
    Ok(r)
}

/// `clear <cluster> [--reason …]`.
pub fn clear(cluster: &str, reason: Option<&str>) -> Result<Request, Usage> {
    let mut doc = json!({"action": "clear", "cluster": cluster});
    if let Some(r) = reason {
        doc["reason"] = json!(r);
    }
    scheduler(doc)
}

/// One step of `cluster` and its network (what `wait --local` runs between looks:
/// nothing else ticks locally, and nothing else should be acted on).
pub fn reconcile(cluster: &str) -> Request {
    Request {
        function: Function::Scheduler,
        event: json!({"action": "reconcile", "cluster": cluster}),
    }
}

fn scheduler(event: Value) -> Result<Request, Usage> {
    cluster_scheduler::request::parse(&event).map_err(usage)?;
    Ok(Request {
        function: Function::Scheduler,
        event,
    })
}

/// `drain <instance-id> [--dry-run]`.
pub fn drain(instance_id: &str, dry_run: bool, now: Timestamp) -> Result<Request, Usage> {
    let event = json!({"action": "drain", "instance_id": instance_id, "dry_run": dry_run});
    spot_drainer::event::parse(&event, now).map_err(usage)?;
    Ok(Request {
        function: Function::Drainer,
        event,
    })
}

/// `dns sync [<cluster>] [--dry-run]`.
pub fn dns_sync(cluster: &Option<String>, dry_run: bool) -> Result<Request, Usage> {
    let event = doc(&[
        ("action", Some(json!("sync"))),
        ("cluster", s(cluster)),
        ("dry_run", Some(json!(dry_run))),
    ]);
    dns_updater::request::parse(&event).map_err(usage)?;
    Ok(Request {
        function: Function::DnsUpdater,
        event,
    })
}

/// `dora report [--service …] [--from … --to …]`.
pub fn dora_report(
    service: &Option<String>,
    from: &Option<String>,
    to: &Option<String>,
) -> Result<Request, Usage> {
    let event = doc(&[
        ("action", Some(json!("report"))),
        ("service", s(service)),
        ("from", s(from)),
        ("to", s(to)),
    ]);
    dora_aggregator::request::parse(&event).map_err(usage)?;
    Ok(Request {
        function: Function::DoraAggregator,
        event,
    })
}

/// `cost report [--month YYYY-MM]`.
pub fn cost_report(month: &Option<String>) -> Result<Request, Usage> {
    let event = doc(&[("action", Some(json!("report"))), ("month", s(month))]);
    cost_reporter::request::parse(&event).map_err(usage)?;
    Ok(Request {
        function: Function::CostReporter,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-23T20:00:00Z".parse().expect("ts")
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn commands_become_the_functions_documents() {
        assert_eq!(
            hold("up", "staging", &some("3h"), &None, "late release", now())
                .expect("ok")
                .event,
            json!({"action": "up", "cluster": "staging", "for": "3h", "reason": "late release"})
        );
        assert_eq!(
            plan(&some("2026-11-23T08:00:00+01:00"), &None)
                .expect("ok")
                .event,
            json!({"action": "plan", "at": "2026-11-23T08:00:00+01:00"})
        );
        assert_eq!(
            status(&some("staging")).expect("ok").event,
            json!({"action": "status", "cluster": "staging"})
        );
        assert_eq!(
            drain("i-0abc1234def567890", true, now())
                .expect("ok")
                .function,
            Function::Drainer
        );
        assert_eq!(
            dns_sync(&None, true).expect("ok").event,
            json!({"action": "sync", "dry_run": true})
        );
        assert!(dora_report(&some("web"), &some("2026-11-01T00:00:00Z"), &None).is_ok());
        assert!(cost_report(&some("2026-11")).is_ok());
    }

    #[test]
    fn bad_arguments_are_named_and_invoke_nothing() {
        let e = hold("up", "staging", &some("3x"), &None, "r", now()).expect_err("3x");
        assert!(
            e.0.starts_with("--for: `3x` is not a positive duration"),
            "{e:?}"
        );
        let e = hold(
            "up",
            "staging",
            &None,
            &some("2026-11-23T19:00:00Z"),
            "r",
            now(),
        )
        .expect_err("past");
        assert!(
            e.0.starts_with("--until: 2026-11-23T19:00:00Z is not in the future"),
            "{e:?}"
        );
        let e = hold("up", "staging", &None, &some("tonight"), "r", now()).expect_err("tonight");
        assert!(
            e.0.starts_with("--until: `tonight` is not an RFC 3339"),
            "{e:?}"
        );
        assert!(hold("down", "staging", &some("2h"), &None, " ", now()).is_err());
        let e = plan(&some("tomorrow"), &None).expect_err("at");
        assert!(e.0.starts_with("--at:"), "{e:?}");
        let e = drain("i-nothex", false, now()).expect_err("id");
        assert!(e.0.contains("is not an EC2 instance id"), "{e:?}");
        assert!(cost_report(&some("November")).is_err());
        assert!(dora_report(&None, &some("yesterday"), &None).is_err());
    }
}
