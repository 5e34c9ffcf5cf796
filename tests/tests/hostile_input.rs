//! Every function's decode step against arbitrary JSON and against garbled real events
//! (every file in `events/`, through every function: a function must also survive the
//! others' events). No panic; an error names what is wrong. The decode steps are pure, so
//! nothing can change; the webhook is driven through its whole handler with a store that
//! cannot be reached, so an input that got past verification would show as a 500.
//!
//! `make fuzz` runs the same decode steps under libFuzzer for longer (`fuzz/`).

use std::sync::OnceLock;

use dora_webhook::handler::{Secrets, Webhook};
use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::runner::Invocation;
use fleet_tests::workspace_root;
use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Keys and values the decoders look for, so that random documents get past the first
/// checks often enough to reach the deeper ones.
const KEYS: &[&str] = &[
    "action",
    "detail-type",
    "source",
    "detail",
    "cluster",
    "desired",
    "until",
    "reason",
    "at",
    "instance-id",
    "EC2InstanceId",
    "time",
    "resources",
    "id",
    "version",
    "account",
    "region",
    "month",
    "from",
    "to",
    "dry_run",
    "node",
    "generation",
    "endpoint",
    "requestContext",
    "http",
    "method",
    "body",
    "headers",
    "isBase64Encoded",
    "rawPath",
    "rawQueryString",
    "state",
    "eventTypeCode",
    "affectedEntities",
    "entityValue",
];
const WORDS: &[&str] = &[
    "reconcile",
    "plan",
    "override",
    "clear",
    "status",
    "report",
    "sync",
    "adopt",
    "drain",
    "up",
    "down",
    "Cluster Ready",
    "Cluster Destroyed",
    "Scheduled Event",
    "EC2 Spot Instance Interruption Warning",
    "EC2 Instance Rebalance Recommendation",
    "EC2 Instance State-change Notification",
    "AWS Health Event",
    "aws.ec2",
    "aws.events",
    "aws.health",
    "fleet.cluster-scheduler",
    "POST",
    "GET",
    "/github",
    "/flux",
    "/flagger",
    "i-0123456789abcdef0",
    "2026-11-23T07:00:00Z",
    "2026-11",
    "8h",
    "tomorrow 08:00",
    "",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(WORDS).prop_map(String::from),
        ".{0,40}",
        // Control characters, right-to-left marks, emoji, lone combining marks.
        "[\\x00-\\x1f\u{202e}\u{0301}🦀é]{0,8}",
    ]
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        word().prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        let key = prop_oneof![
            proptest::sample::select(KEYS).prop_map(String::from),
            ".{0,12}"
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn sample_events() -> &'static [(String, Value)] {
    static EVENTS: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let mut out = Vec::new();
        let dir = workspace_root().join("events");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("events/")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).expect("event file");
            let value: Value = serde_json::from_str(&text).expect("event JSON");
            out.push((path.display().to_string(), value));
        }
        assert!(out.len() >= 20, "the sample events are there");
        out
    })
}

/// Every node of a document, as a path of keys and indexes.
fn paths(v: &Value, here: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(json!(k));
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(json!(i));
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Garble {
    Remove,
    Replace(Value),
    /// A string or number turned into the other, or a value into a list of itself.
    WrongType,
}

/// Applies `garble` at `path`; the root is replaced, never removed.
fn garble(doc: &mut Value, path: &[Value], g: &Garble) {
    let Some((last, parent_path)) = path.split_last() else {
        if let Garble::Replace(v) = g {
            *doc = v.clone();
        }
        return;
    };
    let mut parent = &mut *doc;
    for step in parent_path {
        parent = match (parent, step) {
            (Value::Object(m), Value::String(k)) => match m.get_mut(k) {
                Some(v) => v,
                None => return,
            },
            (Value::Array(a), Value::Number(i)) => {
                match i.as_u64().and_then(|i| a.get_mut(i as usize)) {
                    Some(v) => v,
                    None => return,
                }
            }
            _ => return,
        };
    }
    let slot = match (&mut *parent, last) {
        (Value::Object(m), Value::String(k)) => {
            if let Garble::Remove = g {
                m.remove(k);
                return;
            }
            m.get_mut(k)
        }
        (Value::Array(a), Value::Number(i)) => {
            let i = i.as_u64().unwrap_or(0) as usize;
            if let Garble::Remove = g {
                if i < a.len() {
                    a.remove(i);
                }
                return;
            }
            a.get_mut(i)
        }
        _ => None,
    };
    if let Some(slot) = slot {
        let new = match g {
            Garble::Replace(v) => v.clone(),
            Garble::WrongType => match &*slot {
                Value::String(s) => s.parse::<f64>().map(|f| json!(f)).unwrap_or(json!(s.len())),
                Value::Number(n) => json!(n.to_string()),
                Value::Bool(b) => json!(b.to_string()),
                other => json!([other.clone()]),
            },
            Garble::Remove => return,
        };
        *slot = new;
    }
}

fn webhook() -> &'static Webhook {
    static HOOK: OnceLock<Webhook> = OnceLock::new();
    HOOK.get_or_init(|| {
        let text = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
            .expect("example config");
        let config = FleetConfig::parse(&text).expect("example config parses");
        let dora = config.dora.expect("[dora] in the example");
        // Nothing listens on port 9: reaching storage would answer 500.
        let sdk = fleet_shared::aws::emulator_config("http://127.0.0.1:9", "eu-west-1");
        Webhook::new(
            &sdk,
            dora,
            "unreachable",
            Secrets {
                github: Secret::new("hostile-input-secret".into()),
                flux: Secret::new("hostile-input-secret".into()),
                flagger: Some(Secret::new("hostile-input-secret".into())),
                argocd: Some(Secret::new("hostile-input-secret".into())),
                pagerduty: Some(Secret::new("hostile-input-secret".into())),
            },
        )
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// Every decode step on one input: no panic (a panic fails the property), and every error
/// says something.
fn decode_everywhere(event: &Value) -> Result<(), TestCaseError> {
    let now: Timestamp = "2026-11-23T07:00:00Z".parse().expect("ts");
    let errors = [
        cluster_scheduler::request::parse(event).err(),
        spot_drainer::event::parse(event, now).err(),
        dns_updater::request::parse(event).err(),
        dora_aggregator::request::parse(event).err(),
        cost_reporter::request::parse(event).err(),
    ];
    for e in errors.into_iter().flatten() {
        let text = e.to_string();
        // Clear: a bad request that names the field (`detail.instance-id`, `action`) and
        // says what is wrong with it, both in the text a caller sees.
        match &e {
            fleet_shared::FleetError::BadRequest { field, message } => {
                prop_assert!(!field.trim().is_empty(), "no field named: {text:?}");
                prop_assert!(
                    text.contains(field.as_str()),
                    "the text omits the field: {text:?}"
                );
                prop_assert!(message.trim().len() >= 6, "no problem stated: {text:?}");
            }
            other => prop_assert!(false, "not a bad request: {other:?}"),
        }
    }
    let answer = runtime()
        .block_on(webhook().handle(event.clone(), Invocation::at(now)))
        .map_err(|e| TestCaseError::fail(format!("the webhook must answer, not fail: {e}")))?;
    let status = answer["statusCode"].as_i64().unwrap_or(0);
    prop_assert!(
        (400..500).contains(&status),
        "an unsigned or garbled request answered {status}: {answer}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_is_refused_clearly(event in arbitrary_json()) {
        decode_everywhere(&event)?;
    }

    #[test]
    fn garbled_sample_events_are_refused_clearly(
        which in 0usize..1000,
        at in 0usize..1000,
        how in prop_oneof![
            Just(Garble::Remove),
            Just(Garble::WrongType),
            arbitrary_json().prop_map(Garble::Replace),
        ],
    ) {
        let events = sample_events();
        let (_, original) = &events[which % events.len()];
        let mut all = Vec::new();
        paths(original, &mut Vec::new(), &mut all);
        let mut event = original.clone();
        garble(&mut event, &all[at % all.len()], &how);
        decode_everywhere(&event)?;
    }
}

/// The sample events themselves decode in the function they are for, and each is
/// refused with a clear error by the functions they are not for.
#[test]
fn every_sample_event_decodes_somewhere() {
    let now: Timestamp = "2026-11-23T07:00:00Z".parse().expect("ts");
    for (name, event) in sample_events() {
        let accepted = [
            (
                "cluster-scheduler",
                cluster_scheduler::request::parse(event).is_ok(),
            ),
            (
                "spot-drainer",
                spot_drainer::event::parse(event, now).is_ok(),
            ),
            // The DNS updater acknowledges a bus event it does not handle (a rule wider
            // than it should be is not retried forever): that is not taking it.
            (
                "dns-updater",
                dns_updater::request::parse(event)
                    .is_ok_and(|r| !matches!(r, dns_updater::request::Request::Ignore { .. })),
            ),
            (
                "dora-aggregator",
                dora_aggregator::request::parse(event).is_ok(),
            ),
            (
                "cost-reporter",
                cost_reporter::request::parse(event).is_ok(),
            ),
            // Webhook requests are Function URL requests.
            ("dora-webhook", event.get("requestContext").is_some()),
        ];
        let takers: Vec<&str> = accepted
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(f, _)| *f)
            .collect();
        // A schedule's event is every scheduled function's (the rule picks the target);
        // any other event is one function's, and every other function refuses it.
        let expected = if fleet_shared::request::is_scheduled(event) {
            vec![
                "cluster-scheduler",
                "dns-updater",
                "dora-aggregator",
                "cost-reporter",
            ]
        } else if *event == serde_json::json!({"action": "report"}) {
            // Each reporter's default report: `aws lambda invoke` names the function.
            vec!["dora-aggregator", "cost-reporter"]
        } else {
            takers.first().copied().into_iter().collect()
        };
        assert!(!takers.is_empty(), "{name} decodes nowhere");
        assert_eq!(takers, expected, "{name}");
    }
}

/// EventBridge Scheduler given no `Input` delivers `{}`: each scheduled function takes it
/// for its scheduled event (reconcile, drift repair, the daily report), never "action
/// missing"; the drainer, which no schedule invokes, refuses it naming the field.
#[test]
fn an_empty_object_is_the_scheduled_event() {
    let empty = serde_json::json!({});
    assert!(matches!(
        cluster_scheduler::request::parse(&empty),
        Ok(cluster_scheduler::request::Request::Reconcile)
    ));
    assert!(matches!(
        dns_updater::request::parse(&empty),
        Ok(dns_updater::request::Request::SyncUp)
    ));
    assert!(matches!(
        dora_aggregator::request::parse(&empty),
        Ok(dora_aggregator::request::Request::Daily)
    ));
    assert!(matches!(
        cost_reporter::request::parse(&empty),
        Ok(cost_reporter::request::Request::Daily)
    ));
    let now: Timestamp = "2026-11-23T07:00:00Z".parse().expect("ts");
    let refused = spot_drainer::event::parse(&empty, now).expect_err("not a drain");
    assert!(refused.to_string().contains("`source`"), "{refused}");
}

/// Text that is not JSON at all never reaches a handler: the runtime (and the local
/// runner) refuse it first, naming the position.
#[test]
fn truncated_events_are_not_json() {
    for (name, event) in sample_events() {
        let text = event.to_string();
        for cut in [1, text.len() / 2, text.len() - 1] {
            let err = serde_json::from_slice::<Value>(&text.as_bytes()[..cut]).expect_err(name);
            assert!(err.to_string().contains("line"), "{name}: {err}");
        }
    }
}
