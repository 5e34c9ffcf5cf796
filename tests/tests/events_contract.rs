//! The README's tables of the `fleet` bus events say what the typed events in
//! `fleet_shared::events` send: every field, nothing more. A field added to an event and
//! not to the README (or the other way round) fails here.

use std::collections::{BTreeMap, BTreeSet};

use fleet_shared::config::Mode;
use fleet_shared::events::{
    BusEvent, ClusterDestroyed, ClusterReady, ClusterTransitionFailed, DrainCause, DrainStatus,
    NetworkDown, NetworkReady, NodeDrained,
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
        &NetworkReady {
            network: "staging-vpc".into(),
            region: "eu-west-1".into(),
            nat_gateways: vec!["nat-0abc".into()],
            route_tables: vec!["rtb-0a".into()],
            conflicts: vec![],
            at,
        },
    );
    check(
        &readme,
        &NetworkDown {
            network: "staging-vpc".into(),
            region: "eu-west-1".into(),
            at,
        },
    );
    check(
        &readme,
        &ClusterReady {
            cluster: "staging".into(),
            endpoint: "https://x.eks.amazonaws.com".into(),
            region: "eu-west-1".into(),
            mode: Mode::Destroy,
            generation: "1763882400".into(),
            at,
            took_seconds: Some(1080),
            degraded: vec![
                "Deployment ingress-nginx/ingress-nginx-controller: 0/2 available".into(),
            ],
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

/// The spot-drainer's answer table in the README: for each `status` (the backticked
/// words of a row's first cell), the fields its second cell names (backticked, outside
/// parentheses). A row naming only `Node Drained` stands for that event's detail.
fn readme_answers(readme: &str) -> BTreeMap<String, BTreeSet<String>> {
    let section = readme
        .split("\n## spot-drainer\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README: a `## spot-drainer` section");
    let table = section
        .split("\n| answer | fields |\n|---|---|\n")
        .nth(1)
        .expect("README, spot-drainer: the `| answer | fields |` table");
    let backticked = |cell: &str| -> BTreeSet<String> {
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
    };
    let mut rows = BTreeMap::new();
    for line in table.lines().take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
        let [statuses, fields] = cells.as_slice() else {
            panic!("README, spot-drainer answers: two cells in `{line}`");
        };
        for status in backticked(statuses) {
            rows.insert(status, backticked(fields));
        }
    }
    rows
}

/// One answer of every kind the drainer gives (the match fails to compile when a kind
/// is added and not listed here), as JSON.
fn every_drainer_answer() -> Vec<Value> {
    use spot_drainer::report::{Answer, DryRun, InstanceReport, KarpenterOwned};
    let drained = |status| NodeDrained {
        status,
        node: "n".into(),
        cluster: "c".into(),
        instance_id: "i-0abc".into(),
        event: DrainCause::SpotInterruption,
        evicted: 1,
        forced: 0,
        skipped: vec![],
        pending: vec![],
        refused: vec![],
        cordon_ms: 1,
        duration_ms: 2,
        event_type_code: Some("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED".into()),
    };
    let reports = [
        InstanceReport::Done(drained(DrainStatus::Drained)),
        InstanceReport::Done(drained(DrainStatus::Cordoned)),
        InstanceReport::KarpenterOwned(KarpenterOwned {
            node: "n".into(),
            cluster: "c".into(),
            instance_id: "i-0abc".into(),
            event: DrainCause::SpotInterruption,
            nodepool: "spot".into(),
            reason: "r".into(),
        }),
        InstanceReport::NotOurs {
            instance_id: "i-0abc".into(),
            event: DrainCause::SpotInterruption,
        },
        InstanceReport::Duplicate {
            instance_id: "i-0abc".into(),
            event: DrainCause::SpotInterruption,
        },
        InstanceReport::DryRun(DryRun {
            node: "n".into(),
            cluster: "c".into(),
            instance_id: "i-0abc".into(),
            event: DrainCause::Manual,
            would_cordon: true,
            would_evict: vec![],
            skipped: vec![],
        }),
    ];
    for r in &reports {
        match r {
            InstanceReport::Done(_)
            | InstanceReport::KarpenterOwned(_)
            | InstanceReport::NotOurs { .. }
            | InstanceReport::Duplicate { .. }
            | InstanceReport::DryRun(_) => {}
        }
    }
    let mut answers: Vec<Answer> = reports.into_iter().map(Answer::One).collect();
    answers.push(Answer::Ignored { reason: "r".into() });
    for a in &answers {
        match a {
            // `Several` has no status: it is described in prose, not in the table.
            Answer::Ignored { .. } | Answer::One(_) | Answer::Several(_) => {}
        }
    }
    answers
        .iter()
        .map(|a| serde_json::to_value(a).expect("an answer serializes"))
        .collect()
}

#[test]
fn the_readme_names_every_answer_of_the_drainer_and_its_fields() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let rows = readme_answers(&readme);
    let drained_detail = sent_fields(&NodeDrained {
        status: DrainStatus::Drained,
        node: "n".into(),
        cluster: "c".into(),
        instance_id: "i-0abc".into(),
        event: DrainCause::Manual,
        evicted: 0,
        forced: 0,
        skipped: vec![],
        pending: vec![],
        refused: vec![],
        cordon_ms: 0,
        duration_ms: 0,
        event_type_code: Some("X".into()),
    });
    let mut statuses = BTreeSet::new();
    for answer in every_drainer_answer() {
        let Value::Object(o) = &answer else {
            panic!("not an object: {answer}");
        };
        let status = o["status"].as_str().expect("a status").to_string();
        let Some(named) = rows.get(&status) else {
            panic!("README's answer table has no row for `{status}`");
        };
        let sent: BTreeSet<String> = o.keys().filter(|k| *k != "status").cloned().collect();
        let named = if named.iter().eq(["Node Drained"].iter()) {
            drained_detail
                .iter()
                .filter(|k| *k != "status")
                .cloned()
                .collect()
        } else {
            named.clone()
        };
        assert_eq!(
            named, sent,
            "README's `{status}` row and the answer disagree"
        );
        statuses.insert(status);
    }
    let listed: BTreeSet<String> = rows.keys().cloned().collect();
    assert_eq!(
        listed, statuses,
        "README's answer table lists answers the drainer never gives"
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
