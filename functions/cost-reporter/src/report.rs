//! The report: spend, forecast, budget, savings from the schedule, leftovers. Pure:
//! everything it needs is read before.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;

use crate::versions::VersionWarning;

pub use crate::inputs::*;

/// Below this many dollars a day-over-day jump is never an anomaly (noise on tiny bills).
const ANOMALY_MIN_USD: f64 = 1.0;

/// To the cent, never `-0.0`: a negative zero prints as "-0.00" in Slack and `-0.0` in
/// JSON (an empty sum or a tiny credit rounds to it).
fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0 + 0.0
}

/// The sum of `values`, `0.0` when there are none. Rust's `Sum for f64` starts from
/// `-0.0` (so that a sum of negative zeros stays one), and every empty sum here would be
/// a negative zero: the month's first report, a cluster without cost, no leftovers.
fn sum(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |total, v| total + v)
}

fn round_map(m: BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    m.into_iter().map(|(k, v)| (k, round(v))).collect()
}

/// What the schedule saved on one cluster so far this month (USD, hours).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Savings {
    pub cluster: String,
    /// Hours up in the month so far.
    pub hours_up: f64,
    /// Hours of the month so far (to now, or the month's end).
    pub hours_in_period: f64,
    /// Cost tagged for the cluster this month.
    pub cost_usd: f64,
    /// `cost_usd / hours_up`, to 1/100 cent; `null` before the cluster ran.
    pub cost_per_running_hour_usd: Option<f64>,
    /// What running it around the clock would have cost on top.
    pub saved_usd: Option<f64>,
    /// The same over the whole month, as the schedule plans it.
    pub projected_month: ProjectedMonth,
    /// The median time from a morning's first step to `Cluster Ready` this month, in
    /// seconds; `null` for a network, or before a morning was timed.
    pub median_rebuild_seconds: Option<i64>,
}

/// A cluster's month as the schedule plans it, at its cost per running hour so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectedMonth {
    pub scheduled_hours_up: f64,
    pub hours_in_month: f64,
    pub cost_usd: Option<f64>,
    pub saved_usd: Option<f64>,
}

/// The cost report: the cost reporter's answer, and what its metrics and Slack read.
/// Money in USD rounded to the cent, never `-0.0`; dates `YYYY-MM-DD` (UTC).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    /// `YYYY-MM`.
    pub month: String,
    /// When the report was made (decision time).
    pub as_of: Timestamp,
    /// Cost Explorer's metric (`UnblendedCost`, …).
    pub metric: String,
    pub month_to_date: MonthToDate,
    /// Every day of the month Cost Explorer reported.
    pub days: Vec<DayLine>,
    /// Yesterday against the seven days before it; `null` when not reported yet.
    pub yesterday: Option<Yesterday>,
    /// The month's end; `null` for a past month or when Cost Explorer gave none.
    pub forecast: Option<MonthEndForecast>,
    /// `null` without `cost.monthly_budget_usd`.
    pub budget: Option<BudgetUse>,
    pub savings: SavingsSummary,
    /// Hours up per day, by cluster.
    pub uptime_by_day: BTreeMap<String, Vec<UptimeDay>>,
    pub leftovers: Vec<Leftover>,
    pub leftover_daily_cost_usd: f64,
    pub eks_versions: Vec<VersionWarning>,
    pub warnings: Vec<String>,
    /// Cost Explorer requests this report made (each costs $0.01).
    pub cost_explorer_requests: u32,
    /// The automation's own cost (these functions and their table).
    pub automation: AutomationCost,
}

/// The automation's own cost this month: what Cost Explorer attributes to the tag
/// `fleet:component=automation` (its Lambda functions, state table, log groups and bus;
/// counted in `month_to_date.total_usd`, in no cluster). CloudWatch custom metrics,
/// alarms, the dashboard and Cost Explorer's own requests carry no tag: `untagged`
/// says so, and BENCHMARKS.md ("The automation's own bill") counts the whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutomationCost {
    /// Month to date, USD.
    pub month_to_date_usd: f64,
    /// Where the figure comes from.
    pub source: &'static str,
    /// What the figure cannot include.
    pub untagged: &'static str,
}

/// [`AutomationCost::source`].
pub const AUTOMATION_SOURCE: &str = "Cost Explorer, tag fleet:component=automation";
/// [`AutomationCost::untagged`].
pub const AUTOMATION_UNTAGGED: &str = "not in it: CloudWatch custom metrics, alarms, the dashboard and Cost Explorer requests (no tag reaches them); BENCHMARKS.md counts them";

/// Spend so far this month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthToDate {
    pub total_usd: f64,
    pub by_service: BTreeMap<String, f64>,
    /// By the cluster tag's value; `""` for cost without it.
    pub by_cluster: BTreeMap<String, f64>,
    /// By the account it is spent in (`hub`, or an `[[account]]` name), from
    /// `by_cluster` and where the config puts each cluster; the automation's is the
    /// hub's; a tag value the config does not know (a removed cluster) is `(unknown)`.
    pub by_account: BTreeMap<String, f64>,
    /// Days Cost Explorer has not finalized.
    pub estimated_days: Vec<String>,
    /// The month is over.
    pub complete: bool,
}

/// One day's spend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayLine {
    pub date: String,
    pub cost_usd: f64,
    pub estimated: bool,
}

/// Yesterday's spend, and whether it was an anomaly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Yesterday {
    pub date: String,
    pub cost_usd: f64,
    pub estimated: bool,
    pub trailing_7_day_mean_usd: Option<f64>,
    /// More than `anomaly_factor` times the trailing mean, and at least $1 above it.
    pub anomaly: bool,
}

/// The month's end: spent so far plus Cost Explorer's forecast of the rest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthEndForecast {
    pub month_end_usd: f64,
    pub lower_usd: f64,
    pub upper_usd: f64,
    /// Always `80 %`: the interval Cost Explorer is asked for.
    pub prediction_interval: &'static str,
}

/// The budget, and how much of it is spent and forecast (percent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetUse {
    pub monthly_usd: f64,
    pub spent_pct: f64,
    pub forecast_pct: f64,
}

/// The schedule's savings, per cluster and in all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavingsSummary {
    /// Per cluster, then per `[[network]]` (named `network:<name>`: its NAT gateways and
    /// Elastic IPs).
    pub clusters: Vec<Savings>,
    pub saved_to_date_usd: f64,
    pub projected_month_usd: f64,
    /// The whole platform (every cluster and network) against keeping it up around the
    /// clock.
    pub platform: PlatformSavings,
}

/// The platform's cost on the schedule against always on, so far and over the month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlatformSavings {
    pub to_date: Counterfactual,
    /// As the schedule plans the whole month, at each part's cost per running hour.
    pub projected_month: Counterfactual,
    /// Per `[[network]]`: the network and the clusters that need it, together (the
    /// platform a cron workflow would have run).
    pub by_network: Vec<NetworkPlatform>,
}

/// A network and its clusters, as one platform.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkPlatform {
    /// `network:<name>`.
    pub network: String,
    pub clusters: Vec<String>,
    pub to_date: Counterfactual,
    pub projected_month: Counterfactual,
}

/// What it cost on the schedule, what it would have cost always on, and the difference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counterfactual {
    pub cost_usd: f64,
    /// The same parts up every hour of the period.
    pub always_on_usd: f64,
    pub saved_usd: f64,
    /// `saved / always_on`, percent; `null` while nothing has run.
    pub saved_pct: Option<f64>,
}

impl Counterfactual {
    fn of(cost: f64, saved: f64) -> Counterfactual {
        let always_on = cost + saved;
        Counterfactual {
            cost_usd: round(cost),
            always_on_usd: round(always_on),
            saved_usd: round(saved),
            saved_pct: (always_on > 0.0).then(|| round(saved / always_on * 100.0)),
        }
    }
}

/// Hours a cluster was up on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UptimeDay {
    pub date: String,
    pub hours_up: f64,
}

/// The whole report, and the headline numbers for metrics and Slack.
pub fn build(i: &Inputs) -> CostReport {
    let today = i.now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let period_end = i.now.min(i.month.end());
    let in_month = |d: &Date| *d >= i.month.first && *d < i.month.next();
    let month_days: Vec<_> = i.data.days.iter().filter(|d| in_month(&d.date)).collect();
    let total = sum(month_days.iter().map(|d| d.total));
    let automation = sum(month_days.iter().map(|d| d.automation));
    let mut by_service: BTreeMap<String, f64> = BTreeMap::new();
    let mut by_cluster: BTreeMap<String, f64> = BTreeMap::new();
    for d in &month_days {
        for (k, v) in &d.by_service {
            *by_service.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &d.by_cluster {
            *by_cluster.entry(k.clone()).or_default() += v;
        }
    }
    let estimated: Vec<String> = month_days
        .iter()
        .filter(|d| d.estimated)
        .map(|d| d.date.to_string())
        .collect();
    let mut warnings: Vec<String> = Vec::new();
    if !estimated.is_empty() {
        warnings.push(format!(
            "{} day(s) are still estimated by Cost Explorer ({}); they may change",
            estimated.len(),
            estimated.join(", ")
        ));
    }

    // Yesterday against the seven days before it.
    let yesterday_date = today.yesterday().ok();
    let day_total = |d: Date| {
        i.data
            .days
            .iter()
            .find(|x| x.date == d)
            .map(|x| (x.total, x.estimated))
    };
    let yesterday = yesterday_date.and_then(|y| {
        let (cost, estimated) = day_total(y)?;
        let trailing: Vec<f64> = (2..=8)
            .filter_map(|n| today.checked_sub(n.days()).ok())
            .filter_map(|d| day_total(d).map(|x| x.0))
            .collect();
        let mean =
            (!trailing.is_empty()).then(|| sum(trailing.iter().copied()) / trailing.len() as f64);
        let anomaly =
            mean.is_some_and(|m| cost > m * i.anomaly_factor && cost - m >= ANOMALY_MIN_USD);
        if anomaly {
            warnings.push(format!(
                "yesterday ({y}) cost ${cost:.2}, {:.1}x the trailing 7-day mean of ${:.2}",
                cost / mean.unwrap_or(1.0),
                mean.unwrap_or(0.0)
            ));
        }
        Some(Yesterday {
            date: y.to_string(),
            cost_usd: round(cost),
            estimated,
            trailing_7_day_mean_usd: mean.map(round),
            anomaly,
        })
    });

    let current = i.now < i.month.end();
    // Cost Explorer reports whole UTC days: on the 1st, none of the month is complete.
    if current && today <= i.month.first {
        warnings.push(format!(
            "no day of {} is complete yet (Cost Explorer reports whole UTC days): month-to-date figures start with tomorrow's report",
            i.month
        ));
    }
    if let Some(e) = &i.data.forecast_error {
        warnings.push(format!("no forecast: {e}"));
    }
    let forecast = match (&i.data.forecast, current) {
        (Some(f), true) => Some(MonthEndForecast {
            month_end_usd: round(total + f.mean),
            lower_usd: round(total + f.lower),
            upper_usd: round(total + f.upper),
            prediction_interval: "80 %",
        }),
        _ => None,
    };
    let month_end = match (&i.data.forecast, current) {
        (Some(f), true) => total + f.mean,
        _ => total,
    };
    let budget = i.budget.map(|b| {
        let spent = total / b;
        let projected = month_end / b;
        // Without a forecast the month's end is only what is spent: one warning, not two.
        let shares = [("spent", spent), ("forecast", projected)];
        let shares = if forecast.is_some() {
            &shares[..]
        } else {
            &shares[..1]
        };
        for &(what, share) in shares {
            if share >= 1.0 {
                warnings.push(format!(
                    "{what} ${:.2} is {:.0} % of the ${b:.2} budget: over it",
                    share * b,
                    share * 100.0
                ));
            } else if share >= 0.8 {
                warnings.push(format!(
                    "{what} ${:.2} is {:.0} % of the ${b:.2} budget",
                    share * b,
                    share * 100.0
                ));
            }
        }
        BudgetUse {
            monthly_usd: b,
            spent_pct: round(spent * 100.0),
            forecast_pct: round(projected * 100.0),
        }
    });

    let hours_in_period = period_end
        .duration_since(i.month.start())
        .as_secs_f64()
        .max(0.0)
        / 3600.0;
    let savings: Vec<Savings> = i
        .clusters
        .iter()
        .map(|c| {
            let cost = by_cluster.get(&c.name).copied().unwrap_or(0.0);
            let per_hour = (c.hours_up > 0.0).then(|| cost / c.hours_up);
            let saved = per_hour.map(|p| p * (hours_in_period - c.hours_up).max(0.0));
            let projected = ProjectedMonth {
                scheduled_hours_up: round(c.scheduled_hours_month),
                hours_in_month: i.month.hours(),
                cost_usd: per_hour.map(|p| round(p * c.scheduled_hours_month)),
                saved_usd: per_hour
                    .map(|p| round(p * (i.month.hours() - c.scheduled_hours_month).max(0.0))),
            };
            Savings {
                cluster: c.name.clone(),
                hours_up: round(c.hours_up),
                hours_in_period: round(hours_in_period),
                cost_usd: round(cost),
                cost_per_running_hour_usd: per_hour
                    .map(|p| (p * 10_000.0).round() / 10_000.0 + 0.0),
                saved_usd: saved.map(round),
                projected_month: projected,
                median_rebuild_seconds: c.median_rebuild_seconds,
            }
        })
        .collect();
    let saved_to_date = sum(savings.iter().filter_map(|s| s.saved_usd));
    let saved_projected = sum(savings.iter().filter_map(|s| s.projected_month.saved_usd));
    let together = |rows: &[&Savings]| {
        (
            Counterfactual::of(
                sum(rows.iter().map(|s| s.cost_usd)),
                sum(rows.iter().filter_map(|s| s.saved_usd)),
            ),
            Counterfactual::of(
                sum(rows.iter().filter_map(|s| s.projected_month.cost_usd)),
                sum(rows.iter().filter_map(|s| s.projected_month.saved_usd)),
            ),
        )
    };
    let all: Vec<&Savings> = savings.iter().collect();
    let (to_date, projected_month) = together(&all);
    let by_network = i
        .platforms
        .iter()
        .map(|(network, clusters)| {
            let rows: Vec<&Savings> = savings
                .iter()
                .filter(|s| &s.cluster == network || clusters.contains(&s.cluster))
                .collect();
            let (to_date, projected_month) = together(&rows);
            NetworkPlatform {
                network: network.clone(),
                clusters: clusters.clone(),
                to_date,
                projected_month,
            }
        })
        .collect();
    let platform = PlatformSavings {
        to_date,
        projected_month,
        by_network,
    };
    let leftover_daily = sum(i.leftovers.iter().map(|l| l.daily_cost_usd));
    if !i.leftovers.is_empty() {
        warnings.push(format!(
            "{} resource(s) left behind by clusters that are down cost ${leftover_daily:.2} a day",
            i.leftovers.len()
        ));
    }
    warnings.extend(i.not_looked.iter().cloned());
    warnings.extend(
        i.karpenter_tagging
            .iter()
            .filter_map(|t| untagged_karpenter_warning(t, i.cluster_tag)),
    );
    warnings.extend(
        i.versions
            .iter()
            .map(|v| format!("{}: {}", v.cluster, v.message)),
    );
    let uptime: BTreeMap<String, Vec<UptimeDay>> = i
        .clusters
        .iter()
        .map(|c| {
            let days = c
                .uptime_by_day
                .iter()
                .map(|(d, h)| UptimeDay {
                    date: d.to_string(),
                    hours_up: round(*h),
                })
                .collect();
            (c.name.clone(), days)
        })
        .collect();

    CostReport {
        month: i.month.to_string(),
        as_of: i.now,
        metric: i.metric.to_string(),
        month_to_date: MonthToDate {
            total_usd: round(total),
            by_service: round_map(by_service),
            by_account: round_map(by_account(&by_cluster, &i.accounts)),
            by_cluster: round_map(by_cluster),
            estimated_days: estimated,
            complete: !current,
        },
        days: month_days
            .iter()
            .map(|d| DayLine {
                date: d.date.to_string(),
                cost_usd: round(d.total),
                estimated: d.estimated,
            })
            .collect(),
        yesterday,
        forecast,
        budget,
        savings: SavingsSummary {
            clusters: savings,
            saved_to_date_usd: round(saved_to_date),
            projected_month_usd: round(saved_projected),
            platform,
        },
        uptime_by_day: uptime,
        leftovers: i.leftovers.clone(),
        leftover_daily_cost_usd: round(leftover_daily),
        eks_versions: i.versions.clone(),
        warnings,
        cost_explorer_requests: i.requests,
        automation: AutomationCost {
            month_to_date_usd: round(automation),
            source: AUTOMATION_SOURCE,
            untagged: AUTOMATION_UNTAGGED,
        },
    }
}

/// At most this many instance ids in a warning.
const IDS_SHOWN: usize = 5;

/// The warning for a cluster with `[cluster.karpenter]` whose Karpenter instances lack
/// `<cluster_tag> = <cluster>`: Cost Explorer groups by that tag, so their spend is
/// attributed to no fleet cluster (or another one) and left out of the cluster's cost
/// and savings. Karpenter tags its instances with the EC2NodeClass's `spec.tags` only.
fn untagged_karpenter_warning(t: &KarpenterTagging, cluster_tag: &str) -> Option<String> {
    if t.untagged.is_empty() {
        return None;
    }
    let mut ids = t.untagged[..t.untagged.len().min(IDS_SHOWN)].join(", ");
    if t.untagged.len() > IDS_SHOWN {
        ids.push_str(", …");
    }
    Some(format!(
        "{cluster}: {n} of {all} running Karpenter instance(s) lack the cost-allocation tag `{cluster_tag}={cluster}` ({ids}): their spend is not attributed to the cluster nor counted in its savings; the EC2NodeClass must propagate it (`spec.tags: {{{cluster_tag}: {cluster}}}`)",
        cluster = t.cluster,
        n = t.untagged.len(),
        all = t.instances,
    ))
}

/// `by_cluster` summed by the account each tag value is spent in (see
/// [`MonthToDate::by_account`]).
fn by_account(
    by_cluster: &BTreeMap<String, f64>,
    accounts: &BTreeMap<String, String>,
) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for (tag, usd) in by_cluster {
        let account = match accounts.get(tag) {
            Some(a) => a.as_str(),
            None if tag.is_empty() => "hub",
            None => "(unknown)",
        };
        *out.entry(account.to_string()).or_default() += usd;
    }
    out
}

/// The Slack message.
pub fn slack_text(r: &CostReport) -> String {
    let mut lines = vec![format!(
        ":moneybag: Fleet cost, {}: ${:.2} so far",
        r.month, r.month_to_date.total_usd
    )];
    // Per account only where there is more than one.
    if r.month_to_date.by_account.len() > 1 {
        let parts: Vec<String> = r
            .month_to_date
            .by_account
            .iter()
            .map(|(a, usd)| format!("{a} ${usd:.2}"))
            .collect();
        lines.push(format!("By account: {}", parts.join(", ")));
    }
    if let Some(f) = &r.forecast {
        lines.push(format!(
            "Month end: ${:.2} (80 %: ${:.2} to ${:.2})",
            f.month_end_usd, f.lower_usd, f.upper_usd
        ));
    }
    for s in &r.savings.clusters {
        let rebuild = s
            .median_rebuild_seconds
            .map(|t| format!("; mornings take {} min (median)", (t + 30) / 60))
            .unwrap_or_default();
        lines.push(format!(
            "• `{}`: up {:.0} of {:.0} h, ${:.2}; the schedule saved ${:.2} (month: ${:.2}){rebuild}",
            s.cluster,
            s.hours_up,
            s.hours_in_period,
            s.cost_usd,
            s.saved_usd.unwrap_or(0.0),
            s.projected_month.saved_usd.unwrap_or(0.0),
        ));
    }
    let p = &r.savings.platform;
    if let Some(pct) = p.to_date.saved_pct {
        lines.push(format!(
            "Platform: ${:.2} on the schedule against ${:.2} always on: {pct:.0} % saved (month: {:.0} %)",
            p.to_date.cost_usd,
            p.to_date.always_on_usd,
            p.projected_month.saved_pct.unwrap_or(pct),
        ));
    }
    for n in &p.by_network {
        if let Some(pct) = n.to_date.saved_pct {
            lines.push(format!(
                "• `{}` with {}: {pct:.0} % saved against always on",
                n.network,
                n.clusters.join(", ")
            ));
        }
    }
    lines.push(format!(
        "• the automation itself: ${:.2} ({})",
        r.automation.month_to_date_usd, r.automation.source
    ));
    for l in &r.leftovers {
        lines.push(format!(
            "• left behind by `{}`: {} {} (${:.2}/day)",
            l.cluster, l.kind, l.id, l.daily_cost_usd,
        ));
    }
    for w in &r.warnings {
        lines.push(format!(":warning: {w}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The report as its JSON answer, as the tests read it.
    fn built(i: &Inputs) -> Value {
        serde_json::to_value(build(i)).expect("a report serializes")
    }

    fn day(d: &str, total: f64, cluster: &str, estimated: bool) -> DayCost {
        DayCost {
            date: d.parse().expect("date"),
            estimated,
            total,
            by_service: BTreeMap::from([("Amazon Elastic Kubernetes Service".to_string(), total)]),
            by_cluster: BTreeMap::from([(cluster.to_string(), total)]),
            automation: 0.0,
        }
    }

    #[test]
    fn the_automation_has_its_own_line_in_the_total_and_in_no_cluster() {
        let mut days: Vec<DayCost> = (1..=22)
            .map(|d| day(&format!("2026-11-{d:02}"), 1.2, "staging", false))
            .collect();
        for d in &mut days {
            // Cost Explorer's row without a cluster tag value: the automation's.
            d.automation = 0.03;
            d.total += 0.03;
            *d.by_service.entry("AWS Lambda".into()).or_default() += 0.03;
        }
        let data = CostData {
            days,
            forecast: None,
            forecast_error: None,
        };
        let r = built(&inputs(&data, 180.0));
        assert_eq!(r["automation"]["month_to_date_usd"], 0.66);
        assert_eq!(r["automation"]["source"], AUTOMATION_SOURCE);
        assert_eq!(r["month_to_date"]["total_usd"], 27.06);
        assert_eq!(r["month_to_date"]["by_cluster"], json!({"staging": 26.4}));
        assert_eq!(r["savings"]["clusters"][0]["cost_usd"], 26.4);
        let text = slack_text(&build(&inputs(&data, 180.0)));
        assert!(text.contains("the automation itself: $0.66"), "{text}");
        assert!(text.contains("; mornings take 25 min (median)"), "{text}");
    }

    fn inputs(data: &CostData, hours_up: f64) -> Inputs<'_> {
        Inputs {
            month: Month::parse("2026-11").expect("month"),
            now: "2026-11-23T06:00:00Z".parse().expect("now"),
            metric: "UnblendedCost",
            data,
            clusters: vec![ClusterInput {
                name: "staging".into(),
                hours_up,
                uptime_by_day: vec![],
                scheduled_hours_month: 21.0 * 12.0,
                median_rebuild_seconds: Some(1500),
            }],
            leftovers: vec![],
            karpenter_tagging: vec![],
            cluster_tag: "fleet:cluster",
            versions: vec![],
            not_looked: vec![],
            budget: Some(60.0),
            anomaly_factor: 1.5,
            requests: 2,
            platforms: vec![],
            accounts: [("staging".to_string(), "hub".to_string())].into(),
        }
    }

    #[test]
    fn costs_are_summed_per_account_where_the_config_puts_each_cluster() {
        let by_cluster: BTreeMap<String, f64> = [
            ("staging".to_string(), 10.0),
            ("storefront-preview".to_string(), 4.5),
            ("".to_string(), 0.5),
            ("removed".to_string(), 1.0),
        ]
        .into();
        let accounts: BTreeMap<String, String> = [
            ("staging".to_string(), "hub".to_string()),
            ("storefront-preview".to_string(), "production".to_string()),
        ]
        .into();
        let sums = by_account(&by_cluster, &accounts);
        assert_eq!(sums["hub"], 10.5, "the automation is the hub's");
        assert_eq!(sums["production"], 4.5);
        assert_eq!(sums["(unknown)"], 1.0);
    }

    #[test]
    fn savings_for_a_weekday_schedule() {
        // 1-22 November: 15 weekdays up 12 h = 180 h of 528 h; $1.20 a day while up.
        let days: Vec<DayCost> = (1..=22)
            .map(|d| day(&format!("2026-11-{d:02}"), 1.2, "staging", false))
            .collect();
        let data = CostData {
            days,
            forecast: Some(Forecast {
                mean: 8.0,
                lower: 6.0,
                upper: 10.0,
            }),
            forecast_error: None,
        };
        let r = built(&inputs(&data, 180.0));
        let s = &r["savings"]["clusters"][0];
        assert_eq!(s["cost_usd"], 26.4);
        assert_eq!(s["hours_in_period"], 534.0); // to 06:00 on the 23rd
        assert_eq!(s["cost_per_running_hour_usd"], 0.1467);
        // 26.40 / 180 × (534 − 180) = 51.92
        assert_eq!(s["saved_usd"], 51.92);
        // Month: 720 h, 252 scheduled: saved 26.40 / 180 × 468 = 68.64
        assert_eq!(s["projected_month"]["saved_usd"], 68.64);
        assert_eq!(r["forecast"]["month_end_usd"], 34.4);
        assert_eq!(r["budget"]["forecast_pct"], 57.33);
        assert_eq!(r["warnings"], json!([]));
    }

    #[test]
    fn anomalies_budgets_and_estimates_warn() {
        let mut days: Vec<DayCost> = (14..=21)
            .map(|d| day(&format!("2026-11-{d:02}"), 2.0, "staging", false))
            .collect();
        days.push(day("2026-11-22", 9.0, "staging", true));
        let data = CostData {
            days,
            forecast: Some(Forecast {
                mean: 40.0,
                lower: 30.0,
                upper: 50.0,
            }),
            forecast_error: None,
        };
        let r = built(&inputs(&data, 100.0));
        assert_eq!(r["yesterday"]["anomaly"], true);
        assert_eq!(r["yesterday"]["trailing_7_day_mean_usd"], 2.0);
        assert_eq!(r["month_to_date"]["estimated_days"], json!(["2026-11-22"]));
        let warnings = r["warnings"].to_string();
        assert!(warnings.contains("estimated"), "{warnings}");
        assert!(warnings.contains("4.5x"), "{warnings}");
        assert!(
            warnings.contains("forecast $65.00 is 108 % of the $60.00 budget: over it"),
            "{warnings}"
        );
    }

    #[test]
    fn a_past_month_is_complete_and_unforecast() {
        let data = CostData {
            days: vec![day("2026-10-05", 3.0, "staging", false)],
            forecast: None,
            forecast_error: None,
        };
        let mut i = inputs(&data, 10.0);
        i.month = Month::parse("2026-10").expect("month");
        let r = built(&i);
        assert_eq!(r["month_to_date"]["complete"], true);
        assert_eq!(r["forecast"], Value::Null);
        assert_eq!(r["savings"]["clusters"][0]["hours_in_period"], 744.0);
    }

    /// No JSON number anywhere in `v` is a negative zero.
    fn no_negative_zero(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.as_f64().is_none_or(|f| f != 0.0 || f.is_sign_positive()),
            Value::Array(a) => a.iter().all(no_negative_zero),
            Value::Object(o) => o.values().all(no_negative_zero),
            _ => true,
        }
    }

    #[test]
    fn empty_sums_are_zero_not_negative_zero() {
        assert!(sum(std::iter::empty()).is_sign_positive());
        assert!(round(-0.0).is_sign_positive() && round(-0.001).is_sign_positive());
        let data = CostData {
            days: vec![],
            forecast: None,
            forecast_error: None,
        };
        let mut i = inputs(&data, 0.0);
        i.month = Month::parse("2026-12").expect("month");
        i.now = "2026-12-01T06:30:00Z".parse().expect("now");
        let report = build(&i);
        let r = built(&i);
        assert!(no_negative_zero(&r), "{r:#}");
        assert!(r["warnings"]
            .to_string()
            .contains("no day of 2026-12 is complete yet"));
        let text = slack_text(&report);
        assert!(!text.contains("-0.00"), "{text}");
    }

    #[test]
    fn karpenter_instances_without_the_cost_tag_warn() {
        let data = CostData {
            days: vec![],
            forecast: None,
            forecast_error: None,
        };
        let mut i = inputs(&data, 10.0);
        let ids: Vec<String> = (1..=7).map(|n| format!("i-{n}")).collect();
        i.karpenter_tagging = vec![
            KarpenterTagging {
                cluster: "staging".into(),
                instances: 9,
                untagged: ids,
            },
            KarpenterTagging {
                cluster: "tagged".into(),
                instances: 2,
                untagged: vec![],
            },
        ];
        let r = build(&i);
        let karpenter: Vec<&String> = r
            .warnings
            .iter()
            .filter(|w| w.contains("Karpenter"))
            .collect();
        assert_eq!(karpenter.len(), 1, "{:#?}", r.warnings);
        assert_eq!(
            karpenter[0],
            "staging: 7 of 9 running Karpenter instance(s) lack the cost-allocation tag `fleet:cluster=staging` (i-1, i-2, i-3, i-4, i-5, …): their spend is not attributed to the cluster nor counted in its savings; the EC2NodeClass must propagate it (`spec.tags: {fleet:cluster: staging}`)"
        );
        assert!(slack_text(&r).contains(":warning: staging: 7 of 9 running Karpenter"));
    }

    #[test]
    fn karpenter_leftovers_are_listed_like_any_other() {
        let data = CostData {
            days: vec![],
            forecast: None,
            forecast_error: None,
        };
        let mut i = inputs(&data, 10.0);
        i.leftovers = vec![Leftover {
            cluster: "staging".into(),
            kind: "karpenter-instance".into(),
            id: "i-0abc".into(),
            arn: "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc".into(),
            age_days: Some(0.5),
            daily_cost_usd: 2.304,
            detail: "m6i.large spot".into(),
        }];
        let r = build(&i);
        assert_eq!(r.leftover_daily_cost_usd, 2.3);
        assert!(slack_text(&r)
            .contains("left behind by `staging`: karpenter-instance i-0abc ($2.30/day)"));
    }

    #[test]
    fn months() {
        assert_eq!(Month::parse("2026-02").map(|m| m.hours()), Some(672.0));
        assert_eq!(Month::parse("2026-13"), None);
        assert_eq!(Month::parse("2026-1"), None);
    }
}
