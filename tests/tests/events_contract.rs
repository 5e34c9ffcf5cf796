//! The README's tables of the `fleet` bus events say what the typed events in
//! `fleet_shared::events` send: every field, nothing more. A field added to an event and
//! not to the README (or the other way round) fails here.

use std::collections::BTreeSet;

use fleet_shared::config::Mode;
use fleet_shared::events::{
    BusEvent, ClusterDestroyed, ClusterReady, ClusterTransitionFailed, DrainCause, DrainStatus,
    NodeDrained,
};
use fleet_tests::workspace_root;
use jiff::Timestamp;
use serde_json::Value;

/// The detail fields the README's row for `detail_type` names: the backticked words of
/// its second cell, leaving out what is in parentheses (allowed values, notes).
fn readme_fields(readme: &str, detail_type: &str) -> BTreeSet<String> {
    let prefix = format!("| `{detail_type}` |");
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(
        rows.len(),
        1,
        "README: one table row for `{detail_type}`, found {}",
        rows.len()
    );
    let cell = rows[0][prefix.len()..].trim_end_matches('|');
    let mut outside = String::new();
    let mut depth = 0usize;
    for ch in cell.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => outside.push(ch),
            _ => {}
        }
    }
    outside
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// The fields an event sends, with every optional field present.
fn sent_fields<E: BusEvent>(event: &E) -> BTreeSet<String> {
    match serde_json::to_value(event) {
        Ok(Value::Object(o)) => o.keys().cloned().collect(),
        other => panic!("{} is not an object: {other:?}", E::DETAIL_TYPE),
    }
}

fn check<E: BusEvent>(readme: &str, event: &E) {
    assert_eq!(
        readme_fields(readme, E::DETAIL_TYPE),
        sent_fields(event),
        "README's `{}` row and the event disagree",
        E::DETAIL_TYPE
    );
}

#[test]
fn the_readme_names_every_field_each_bus_event_sends() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let at: Timestamp = "2026-11-23T07:20:00Z".parse().expect("a timestamp");
    check(
        &readme,
        &ClusterReady {
            cluster: "staging".into(),
            endpoint: "https://x.eks.amazonaws.com".into(),
            region: "eu-west-1".into(),
            mode: Mode::Destroy,
            generation: "1763882400".into(),
            at,
        },
    );
    check(
        &readme,
        &ClusterDestroyed {
            cluster: "staging".into(),
            region: "eu-west-1".into(),
            mode: Mode::Scale,
            at,
        },
    );
    check(
        &readme,
        &ClusterTransitionFailed {
            cluster: "staging".into(),
            region: "eu-west-1".into(),
            step: "create cluster".into(),
            error: "quota".into(),
            retry_at: at,
            at,
        },
    );
    check(
        &readme,
        &NodeDrained {
            status: DrainStatus::Drained,
            node: "ip-10-0-1-23.ec2.internal".into(),
            cluster: "staging".into(),
            instance_id: "i-0abc".into(),
            event: DrainCause::ScheduledChange,
            evicted: 1,
            forced: 0,
            skipped: vec![],
            pending: vec![],
            refused: vec![],
            cordon_ms: 1,
            duration_ms: 2,
            event_type_code: Some("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into()),
        },
    );
}

#[test]
fn the_readme_check_sees_a_missing_field() {
    let readme = "| `Cluster Destroyed` | `cluster`, `region` (`eu-west-1`), `at` |\n";
    let fields = readme_fields(readme, "Cluster Destroyed");
    assert_eq!(fields, ["at", "cluster", "region"].map(String::from).into());
    let sent = sent_fields(&ClusterDestroyed {
        cluster: "c".into(),
        region: "r".into(),
        mode: Mode::Scale,
        at: Timestamp::UNIX_EPOCH,
    });
    assert_ne!(fields, sent, "`mode` is sent and not named");
}
