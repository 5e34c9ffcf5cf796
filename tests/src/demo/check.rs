//! Whether the day went as promised: the bus events, uptime, DNS, the drain, Slack, the
//! webhooks, DORA and cost, each against what the day says it should be.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::inputs::example_config;
use super::print::short;
use super::{Day, Report, LOAD_BALANCER, RECORD};

/// Weekdays from the Monday's month's 1st to the Sunday before it, holidays of staging
/// in the example config left out: the days staging's history has 12 hours up.
fn staging_history_days(day: &Day) -> Result<i64, String> {
    let config = example_config(day)?;
    let holidays = config
        .clusters
        .iter()
        .find(|c| c.name == "staging")
        .map(|c| c.holidays.clone())
        .unwrap_or_default();
    let sunday = day.monday.yesterday().map_err(|e| e.to_string())?;
    let mut n = 0;
    let mut date = day.monday.first_of_month();
    while date < sunday {
        let weekday = date.weekday().to_monday_zero_offset() < 5;
        if weekday && !holidays.iter().any(|h| h.first <= date && date <= h.last) {
            n += 1;
        }
        date = date.tomorrow().map_err(|e| e.to_string())?;
    }
    Ok(n)
}

/// The outcome the demo promises; the demo exits non-zero when it does not hold.
pub fn check(report: &Report) -> Result<(), String> {
    let day = &report.day;
    let events: Vec<(Timestamp, &str, &str)> = report
        .events
        .iter()
        .map(|(at, d, c)| (*at, d.as_str(), c.as_str()))
        .collect();
    // Worked out from the schedules' local times (Berlin, New York) for this Monday, summer
    // time or not; on the default Monday: sandbox-us's Sunday-night window still open at
    // 05:00 UTC, staging's network up 07:30 and staging 08:00, the drain at 10:00, sandbox-us's day, staging held
    // past 20:00 Berlin, sandbox-us's Monday-night window.
    let expected = day.expected_events()?;
    if events != expected {
        let show = |e: &[(Timestamp, &str, &str)]| {
            e.iter()
                .map(|(at, d, c)| format!("{} {d}: {c}", short(*at)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "the fleet bus saw [{}], expected [{}]",
            show(&events),
            show(&expected)
        ));
    }
    // Staging's morning brought back a working platform, and said how long it took.
    match &report.morning {
        Some(m)
            if m.took_seconds.is_some_and(|t| t > 0) && m.facts.iter().all(|(_, held)| *held) => {}
        other => return Err(format!("staging's morning: {other:?}")),
    }
    // The production account's cluster lived where it belongs, and only there.
    if report.production.len() != 2 || !report.production.iter().all(|(_, held)| *held) {
        return Err(format!(
            "the production account's cluster: {:?}",
            report.production
        ));
    }
    let uptime = |name: &str| {
        report.status["clusters"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .and_then(|c| c["uptime_hours_this_month"].as_f64())
    };
    // The history (staging: 12 h each weekday before the Monday's week), then the day.
    let before = |name: &str| report.history_hours.get(name).copied().unwrap_or(0.0);
    let staging_history = 12.0 * staging_history_days(day)? as f64;
    if (before("staging") - staging_history).abs() > 0.01 {
        return Err(format!(
            "staging's history is {} hours, expected {staging_history}",
            before("staging")
        ));
    }
    let (end, (month_start, month_end)) = (day.end()?, day.month()?);
    // The status runs at the end, so "this month" is the end's month.
    let end_month_start = if end >= month_end {
        month_end
    } else {
        month_start
    };
    for name in ["staging", "sandbox-us"] {
        let history = if end_month_start == month_start {
            before(name)
        } else {
            0.0
        };
        let want = history + day.expected_hours(name, end_month_start, end)?;
        match uptime(name) {
            Some(h) if (h - want).abs() < 0.01 => {}
            other => {
                return Err(format!(
                    "{name} was up {other:?} hours this month, expected {want}"
                ))
            }
        }
    }
    // DNS followed the ingress, and on_destroy = "delete" removed only what it created.
    let lb = (LOAD_BALANCER.to_string(), LOAD_BALANCER.to_string());
    if report.dns_while_up.as_ref() != Some(&lb) {
        return Err(format!(
            "while staging was up, {RECORD} pointed at {:?}",
            report.dns_while_up
        ));
    }
    if report.dns_records_at_end != 0 {
        return Err(format!(
            "{} {RECORD} record(s) left after teardown",
            report.dns_records_at_end
        ));
    }
    // The drain: three web pods through the budget, DaemonSet and mirror pods left.
    let d = &report.drain;
    if d["status"] != "drained"
        || d["evicted"] != 3
        || d["forced"] != 0
        || d["skipped"].as_array().map(Vec::len) != Some(2)
    {
        return Err(format!("the drain reported {d}"));
    }
    // ... and the fake API agrees: cordoned, emptied, the budget never exceeded.
    match &report.drained_node {
        (true, left, Some(shortfall)) if left.is_empty() && *shortfall <= 0 => {}
        (cordoned, left, shortfall) => {
            return Err(format!(
                "after the drain the node is cordoned: {cordoned}, pods left on it: {left:?}, the budget's worst shortfall: {shortfall:?}"
            ))
        }
    }
    // The teardown deleted the ingress controller's Service (and waited for its load
    // balancer to go) before the nodegroups.
    if !report.karpenter_problems.is_empty() {
        return Err(format!(
            "sandbox-us's Karpenter nodes: {}",
            report.karpenter_problems.join("; ")
        ));
    }
    if report.ingress_gone_before_nodegroups != Some(true) {
        return Err(format!(
            "the ingress Service gone before the nodegroups: {:?}",
            report.ingress_gone_before_nodegroups
        ));
    }
    // Slack received what people act on: the drain and each DNS change.
    let said = |needles: &[&str]| {
        report
            .slack
            .iter()
            .any(|t| needles.iter().all(|n| t.contains(n)))
    };
    let drain_line = [crate::fixtures::spot_drainer::NODE, "3 evicted", "0 forced"];
    if !said(&drain_line) {
        return Err(format!(
            "no Slack message about the drain ({drain_line:?}) in {:?}",
            report.slack
        ));
    }
    for needles in [
        &["DNS", RECORD, "cloudflare", LOAD_BALANCER][..],
        &["DNS", RECORD, "deleted"][..],
    ] {
        if !said(needles) {
            return Err(format!(
                "no Slack message with {needles:?} in {:?}",
                report.slack
            ));
        }
    }
    if report.webhooks.len() != 16 || report.webhooks.iter().any(|s| *s != 200) {
        return Err(format!("webhook answers {:?}", report.webhooks));
    }
    // DORA for Monday: #101, #103 and #104 succeeded, #102 failed and the incident
    // (14:00-15:00) is pinned on #103; #104 shipped during it.
    let s = &report.dora["services"][0];
    let dora = [
        ("deployments", json!(3)),
        ("failed_deployments", json!(2)),
        ("change_failure_rate", json!(0.5)),
        ("rework_rate", json!(1.0 / 3.0)),
    ];
    for (k, v) in dora {
        if s[k] != v {
            return Err(format!("DORA {k} is {}, expected {v}", s[k]));
        }
    }
    // Five commits, the first two pushes' included by later deploys: median 50 minutes.
    let lead = s["lead_time_hours"]["median"].as_f64().unwrap_or(0.0);
    if s["lead_time_hours"]["commits"] != 5 || (lead - 50.0 / 60.0).abs() > 0.001 {
        return Err(format!("DORA lead time {}", s["lead_time_hours"]));
    }
    if s["recovery_time_hours"]["median"] != json!(0.75) {
        return Err(format!("DORA recovery {}", s["recovery_time_hours"]));
    }
    // shop, by Argo CD: e (10:00) and the hotfix f (13:20) synced; PagerDuty #12
    // (13:00-13:40) pinned on e, f shipped during it; lead times 40 and 15 minutes.
    let shop = &report.dora["services"][1];
    let expected = [
        ("name", json!("shop")),
        ("deployments", json!(2)),
        ("failed_deployments", json!(1)),
        ("change_failure_rate", json!(0.5)),
        ("rework_rate", json!(0.5)),
    ];
    for (k, v) in expected {
        if shop[k] != v {
            return Err(format!("DORA shop {k} is {}, expected {v}", shop[k]));
        }
    }
    let median = |v: &Value| v["median"].as_f64().unwrap_or(0.0);
    if (median(&shop["lead_time_hours"]) - 27.5 / 60.0).abs() > 0.001
        || (median(&shop["recovery_time_hours"]) - 40.0 / 60.0).abs() > 0.001
        || shop["incidents"][0]["source"] != "pagerduty"
    {
        return Err(format!(
            "DORA shop lead time {}, recovery {}, incidents {}",
            shop["lead_time_hours"], shop["recovery_time_hours"], shop["incidents"]
        ));
    }
    // Cost: the schedule saved money on staging, and the PVC's volume was found.
    let c = &report.cost;
    let staging = c["savings"]["clusters"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["cluster"] == "staging"))
        .cloned()
        .unwrap_or_default();
    let hours_up =
        before("staging") + day.expected_hours("staging", month_start, month_end.min(end))?;
    if staging["saved_usd"].as_f64().unwrap_or(0.0) <= 0.0
        || (staging["hours_up"].as_f64().unwrap_or(-1.0) - hours_up).abs() > 0.01
    {
        return Err(format!(
            "staging's savings {staging}, expected {hours_up} hours up"
        ));
    }
    let leftovers = c["leftovers"].as_array().cloned().unwrap_or_default();
    if leftovers.len() != 1
        || leftovers[0]["cluster"] != "staging"
        || leftovers[0]["type"] != "ebs-volume"
    {
        return Err(format!("leftovers {leftovers:?}"));
    }
    // Nothing of staging's network bills at night, and staging's platform (the cluster
    // and its NAT gateway, what the cron workflows ran) saved at least 65 % against always
    // on (issue #21's goal, on the default Monday's month: other months have more or
    // fewer weekdays).
    if !report.network_at_end.is_empty() {
        return Err(format!(
            "staging's network still bills after Network Down: {:?}",
            report.network_at_end
        ));
    }
    let platform = c["savings"]["platform"]["by_network"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["network"] == "network:staging-vpc"))
        .map(|x| x["to_date"].clone())
        .unwrap_or_default();
    let pct = platform["saved_pct"].as_f64().unwrap_or(0.0);
    if *day == Day::default() && pct < 65.0 {
        return Err(format!(
            "staging's platform (staging and its network) saved {pct} %, below 65 %: {platform}"
        ));
    }
    let network = c["savings"]["clusters"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["cluster"] == "network:staging-vpc"))
        .cloned()
        .unwrap_or_default();
    if network["saved_usd"].as_f64().unwrap_or(0.0) <= 0.0 {
        return Err(format!("the network's savings: {network}"));
    }
    // The automation's own line: the seeded days tagged fleet:component=automation (to
    // the cent: early in a month it reads $0.00).
    if c["automation"]["source"] != cost_reporter::report::AUTOMATION_SOURCE
        || c["automation"]["month_to_date_usd"]
            .as_f64()
            .is_none_or(|v| v < 0.0)
    {
        return Err(format!("the automation's line {}", c["automation"]));
    }
    if c["cost_explorer_requests"].as_u64().unwrap_or(99) > 3 {
        return Err(format!(
            "{} Cost Explorer requests",
            c["cost_explorer_requests"]
        ));
    }
    Ok(())
}
