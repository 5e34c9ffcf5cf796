//! The demo's output: a timeline line, and the tables of clusters, DORA and cost.

use jiff::Timestamp;
use serde_json::Value;

use super::{Entry, Report};

pub(super) fn short(t: Timestamp) -> String {
    t.strftime("%a %H:%M").to_string()
}

/// Readable tables: the clusters, the DORA report and the cost report.
pub fn summary(report: &Report) -> String {
    let mut s =
        String::from("\ncluster      mode      now       uptime this month   next change\n");
    for c in report.status["clusters"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "{:<12} {:<9} {:<9} {:>8.2} h          {}\n",
            c["name"].as_str().unwrap_or_default(),
            c["mode"].as_str().unwrap_or_default(),
            c["recorded"]["phase"].as_str().unwrap_or("-"),
            c["uptime_hours_this_month"].as_f64().unwrap_or_default(),
            c["next_change"].as_str().unwrap_or("-"),
        ));
    }
    let num = |v: &Value, digits: usize| match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "-".into(),
    };
    s.push_str(&format!("\nDORA, Monday {}\n", report.day.monday));
    s.push_str("service        deploys  failed  per day  lead time (median, p90)  change failure  recovery  rework\n");
    for d in report.dora["services"].as_array().into_iter().flatten() {
        let lv = |k: &str| d["levels"][k].as_str().unwrap_or("-").to_string();
        s.push_str(&format!(
            "{:<14} {:>7}  {:>6}  {:>7} ({})  {} h, {} h ({})  {:>5} ({})  {} h ({})  {}\n",
            d["name"].as_str().unwrap_or_default(),
            d["deployments"].to_string(),
            d["failed_deployments"].to_string(),
            num(&d["deployment_frequency_per_day"], 1),
            lv("deployment_frequency"),
            num(&d["lead_time_hours"]["median"], 2),
            num(&d["lead_time_hours"]["p90"], 2),
            lv("lead_time"),
            num(&d["change_failure_rate"], 2),
            lv("change_failure_rate"),
            num(&d["recovery_time_hours"]["median"], 2),
            lv("recovery_time"),
            num(&d["rework_rate"], 2),
        ));
    }
    let c = &report.cost;
    s.push_str(&format!(
        "\nCost, {} to {}: ${} (estimated days: {})\ncluster              hours up  of hours  cost      per running hour  saved     month: saved\n",
        c["month"].as_str().unwrap_or_default(),
        c["as_of"].as_str().unwrap_or_default(),
        num(&c["month_to_date"]["total_usd"], 2),
        c["month_to_date"]["estimated_days"],
    ));
    for x in c["savings"]["clusters"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "{:<20} {:>8}  {:>8}  ${:>7}  ${:>15}  ${:>7}  ${:>7}\n",
            x["cluster"].as_str().unwrap_or_default(),
            num(&x["hours_up"], 2),
            num(&x["hours_in_period"], 2),
            num(&x["cost_usd"], 2),
            num(&x["cost_per_running_hour_usd"], 4),
            num(&x["saved_usd"], 2),
            num(&x["projected_month"]["saved_usd"], 2),
        ));
    }
    let p = &c["savings"]["platform"];
    s.push_str(&format!(
        "platform: ${} on the schedule against ${} always on: {} % saved (the month as planned: {} %)\n",
        num(&p["to_date"]["cost_usd"], 2),
        num(&p["to_date"]["always_on_usd"], 2),
        num(&p["to_date"]["saved_pct"], 1),
        num(&p["projected_month"]["saved_pct"], 1),
    ));
    for n in p["by_network"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  {} with {}: ${} against ${} always on: {} % saved\n",
            n["network"].as_str().unwrap_or_default(),
            n["clusters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            num(&n["to_date"]["cost_usd"], 2),
            num(&n["to_date"]["always_on_usd"], 2),
            num(&n["to_date"]["saved_pct"], 1),
        ));
    }
    s.push_str(&format!(
        "the automation itself: ${:.2} ({}; {})\n",
        c["automation"]["month_to_date_usd"].as_f64().unwrap_or(0.0),
        c["automation"]["source"].as_str().unwrap_or_default(),
        c["automation"]["untagged"].as_str().unwrap_or_default(),
    ));
    for l in c["leftovers"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "left behind by {}: {} {} ({}), ${}/day\n",
            l["cluster"].as_str().unwrap_or_default(),
            l["type"].as_str().unwrap_or_default(),
            l["id"].as_str().unwrap_or_default(),
            l["detail"].as_str().unwrap_or_default(),
            num(&l["daily_cost_usd"], 2),
        ));
    }
    for w in c["warnings"].as_array().into_iter().flatten() {
        s.push_str(&format!("warning: {}\n", w.as_str().unwrap_or_default()));
    }
    s
}

pub fn format_entry(e: &Entry) -> String {
    format!("{:<10} {:<18} {}", short(e.at), e.source, e.what)
}
