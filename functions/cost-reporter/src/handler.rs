//! The cost reporter's handler: gather (Cost Explorer, the recorded uptime, leftovers,
//! EKS versions), build the report, and on the daily run publish it.

use std::sync::Arc;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use fleet_shared::config::{CostConfig, FleetConfig};
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_shared::schedule::Desired;
use fleet_shared::startup::{cold_start, table_name};
use fleet_shared::state::StateStore;
use fleet_shared::{FleetError, Result};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde_json::Value;

use crate::explorer::{Explorer, Query};
use crate::leftovers::Finder;
use crate::report::{build, slack_text, utc, ClusterInput, Inputs, Month};
use crate::request::{parse, Request};
use crate::uptime::{hours_by_day, hours_up, scheduled_hours};
use crate::versions::{check, table_end, VersionWarning, TABLE_CHECKED};

/// CloudWatch namespace of the cost metrics.
pub const METRICS_NAMESPACE: &str = "Fleet/Cost";

pub struct Reporter {
    pub config: Arc<FleetConfig>,
    pub cost: CostConfig,
    pub explorer: Explorer,
    pub store: StateStore,
    pub leftovers: Finder,
    pub eks: aws_sdk_eks::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub notifier: Notifier,
}

impl Reporter {
    pub async fn from_cold_start() -> Result<Self> {
        let cold = cold_start().await?;
        let table = table_name()?;
        let notifier = cold.notifier().await?;
        let store = StateStore::new(aws_sdk_dynamodb::Client::new(&cold.sdk), table);
        // Cost Explorer has one endpoint, in us-east-1.
        let ce = aws_sdk_costexplorer::Client::new(&fleet_shared::aws::in_region(
            &cold.sdk,
            "us-east-1",
        ));
        Ok(Reporter {
            cost: cold.config.cost.clone().unwrap_or_default(),
            explorer: Explorer::new(ce.clone(), ce, store.clone()),
            store,
            leftovers: Finder {
                tagging: aws_sdk_resourcegroupstagging::Client::new(&cold.sdk),
                ec2: aws_sdk_ec2::Client::new(&cold.sdk),
                elb: aws_sdk_elasticloadbalancingv2::Client::new(&cold.sdk),
            },
            eks: aws_sdk_eks::Client::new(&cold.sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&cold.sdk),
            notifier,
            config: Arc::new(cold.config),
        })
    }

    pub async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        match parse(&event)? {
            Request::Daily => {
                let report = self.report(Month::of(inv.now), inv.now).await?;
                self.publish(&report, &inv).await;
                Ok(report)
            }
            Request::Report { month } => {
                let month = month.unwrap_or(Month::of(inv.now));
                if month.start() > inv.now {
                    return Err(FleetError::bad_request(
                        "month",
                        format!("{month} has not begun"),
                    ));
                }
                self.report(month, inv.now).await
            }
        }
    }

    pub async fn report(&self, month: Month, now: Timestamp) -> Result<Value> {
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let current = now < month.end();
        let period_end = now.min(month.end());
        // The month so far, and enough days before it for yesterday's 7-day comparison;
        // today is partial, so it ends yesterday.
        let start = if current {
            month
                .first
                .min(today.checked_sub(8.days()).unwrap_or(month.first))
        } else {
            month.first
        };
        let end = if current { today } else { month.next() };
        let query = Query {
            start,
            end,
            forecast_end: current.then(|| month.next()),
            metric: self.cost.metric,
            tag: self.cost.cluster_tag.clone(),
            clusters: self
                .config
                .clusters
                .iter()
                .map(|c| c.name.clone())
                .collect(),
        };
        let (data, requests) = self.explorer.load(&query, now).await?;
        let mut clusters = Vec::new();
        let mut down = Vec::new();
        for c in &self.config.clusters {
            // Far enough back to know whether it was up when the month began.
            let lookback = utc(month.first.checked_sub(35.days()).unwrap_or(month.first));
            let transitions = self
                .store
                .transitions(&c.name, lookback, period_end)
                .await?;
            clusters.push(ClusterInput {
                name: c.name.clone(),
                hours_up: hours_up(&transitions, month.start(), period_end),
                uptime_by_day: hours_by_day(&transitions, month.first, period_end),
                scheduled_hours_month: scheduled_hours(&c.schedule(), month.start(), month.end()),
            });
            if self.store.cluster(&c.name).await?.state.phase == Some(Desired::Down) {
                down.push(c.name.clone());
            }
        }
        let tagged = self.leftovers.tagged(&self.cost.cluster_tag, &down).await?;
        let leftovers = self.leftovers.describe(&tagged, now).await?;
        let versions = self.version_warnings(today).await;
        let inputs = Inputs {
            month,
            now,
            metric: self.cost.metric.usage_name(),
            data: &data,
            clusters,
            leftovers,
            versions,
            budget: self.cost.monthly_budget_usd,
            anomaly_factor: self.cost.anomaly_factor,
            requests,
        };
        Ok(build(&inputs))
    }

    /// Standard-support warnings for the blueprint versions: dates from EKS
    /// `DescribeClusterVersions`, else from the table.
    async fn version_warnings(&self, today: Date) -> Vec<VersionWarning> {
        let mut versions: Vec<String> = self
            .config
            .clusters
            .iter()
            .map(|c| c.blueprint.version.clone())
            .collect();
        versions.sort();
        versions.dedup();
        let from_api = match self
            .eks
            .describe_cluster_versions()
            .set_cluster_versions(Some(versions))
            .send()
            .await
        {
            Ok(out) => out
                .cluster_versions()
                .iter()
                .filter_map(|v| {
                    let end = v.end_of_standard_support_date()?;
                    let date = Timestamp::from_second(end.secs())
                        .ok()?
                        .to_zoned(jiff::tz::TimeZone::UTC)
                        .date();
                    Some((v.cluster_version()?.to_string(), date))
                })
                .collect(),
            Err(e) => {
                tracing::info!(error = %FleetError::aws("EKS", "DescribeClusterVersions", e), "EKS version dates from the built-in table");
                Vec::new()
            }
        };
        self.config
            .clusters
            .iter()
            .filter_map(|c| {
                let v = &c.blueprint.version;
                let ends = from_api
                    .iter()
                    .find(|(version, _)| version == v)
                    .map(|(_, d)| (*d, "EKS DescribeClusterVersions".to_string()))
                    .or_else(|| {
                        table_end(v)
                            .map(|d| (d, format!("built-in table, checked {TABLE_CHECKED}")))
                    });
                check(&c.name, v, ends, today)
            })
            .collect()
    }

    /// CloudWatch and Slack: best effort, logged. Slack once a day, however often the
    /// schedule fires (the metrics are gauges: sending them twice changes nothing).
    async fn publish(&self, r: &Value, inv: &Invocation) {
        let mut data = Vec::new();
        let datum = |name: &str, value: f64, cluster: Option<&str>| {
            let mut b = MetricDatum::builder()
                .metric_name(name)
                .value(value)
                .unit(StandardUnit::None);
            if let Some(c) = cluster {
                b = b.dimensions(Dimension::builder().name("Cluster").value(c).build());
            }
            b.build()
        };
        let num = |v: &Value| v.as_f64();
        if let Some(v) = num(&r["month_to_date"]["total_usd"]) {
            data.push(datum("MonthToDateUsd", v, None));
        }
        if let Some(v) = num(&r["forecast"]["month_end_usd"]) {
            data.push(datum("ForecastMonthEndUsd", v, None));
        }
        if let Some(v) = num(&r["yesterday"]["cost_usd"]) {
            data.push(datum("YesterdayUsd", v, None));
        }
        if let Some(v) = num(&r["leftover_daily_cost_usd"]) {
            data.push(datum("LeftoverDailyUsd", v, None));
        }
        for s in r["savings"]["clusters"].as_array().into_iter().flatten() {
            let c = s["cluster"].as_str();
            if let Some(v) = num(&s["cost_usd"]) {
                data.push(datum("ClusterMonthToDateUsd", v, c));
            }
            if let Some(v) = num(&s["saved_usd"]) {
                data.push(datum("SavedUsd", v, c));
            }
            if let Some(v) = num(&s["hours_up"]) {
                data.push(datum("HoursUp", v, c));
            }
        }
        let sent = self
            .cloudwatch
            .put_metric_data()
            .namespace(METRICS_NAMESPACE)
            .set_metric_data(Some(data))
            .send()
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %FleetError::aws("CloudWatch", "PutMetricData", e), "cost metrics not sent");
        }
        if !self.notifier.enabled() {
            return;
        }
        // The webhook first: one that cannot be read must not use up the day's claim.
        if let Err(e) = self.notifier.ready().await {
            tracing::warn!(error = %e, "Slack webhook unavailable; the report is not posted, the day's claim is left for a later run");
            return;
        }
        match self
            .store
            .claim_daily("cost#slack", &inv.request_id, inv.now)
            .await
        {
            Ok(true) => {
                if let Err(e) = self.notifier.send(&slack_text(r)).await {
                    tracing::warn!(error = %e, "Slack notification failed");
                }
            }
            Ok(false) => tracing::info!("the cost report went to Slack already today"),
            Err(e) => tracing::warn!(error = %e, "daily marker unavailable; Slack skipped"),
        }
    }
}
