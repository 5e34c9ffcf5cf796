//! The Cost Explorer adapter. Every request costs $0.01, so a report makes at most three
//! (one usage query for the whole range, grouped by service and by the cluster tag, and
//! one forecast), and caches the answers in the state table for the rest of the day.

use std::collections::BTreeMap;

use aws_sdk_costexplorer::types::{
    DateInterval, Dimension, DimensionValues, Expression, Granularity, GroupDefinition,
    GroupDefinitionType, Metric, TagValues,
};
use fleet_shared::config::CostMetric;
use fleet_shared::state::StateStore;
use fleet_shared::{FleetError, Result};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};

/// At most this many Cost Explorer requests per report.
pub const MAX_REQUESTS: u32 = 3;

/// Record types that are not usage: left out so figures match what was consumed.
const EXCLUDED_RECORD_TYPES: [&str; 4] = ["Credit", "Refund", "Upfront", "Support"];

pub use crate::report::{CostData, DayCost, Forecast};

/// What to ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// `[start, end)` in UTC days.
    pub start: Date,
    pub end: Date,
    /// Forecast `[today, forecast_end)`, for the current month only.
    pub forecast_end: Option<Date>,
    pub metric: CostMetric,
    pub tag: String,
    pub clusters: Vec<String>,
}

impl Query {
    fn cache_key(&self, today: Date) -> String {
        format!(
            "{today}#{}#{}#{}#{}#{}",
            self.start,
            self.end,
            self.forecast_end.map(|d| d.to_string()).unwrap_or_default(),
            self.metric.usage_name(),
            self.clusters.join(",")
        )
    }

    /// The fleet's resources (by the cluster tag), usage only.
    fn filter(&self) -> Expression {
        let by_tag = Expression::builder()
            .tags(
                TagValues::builder()
                    .key(&self.tag)
                    .set_values(Some(self.clusters.clone()))
                    .build(),
            )
            .build();
        let not_usage = Expression::builder()
            .dimensions(
                DimensionValues::builder()
                    .key(Dimension::RecordType)
                    .set_values(Some(
                        EXCLUDED_RECORD_TYPES
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                    ))
                    .build(),
            )
            .build();
        Expression::builder()
            .and(by_tag)
            .and(Expression::builder().not(not_usage).build())
            .build()
    }
}

#[derive(Debug, Clone)]
pub struct Explorer {
    usage: aws_sdk_costexplorer::Client,
    /// The same client in Lambda; the tests give it a mocked one (moto has no forecast).
    forecast: aws_sdk_costexplorer::Client,
    cache: StateStore,
}

const CACHE_PK: &str = "cost#cache";

fn amount(v: Option<&aws_sdk_costexplorer::types::MetricValue>) -> f64 {
    v.and_then(|m| m.amount())
        .and_then(|a| a.parse::<f64>().ok())
        .unwrap_or(0.0)
}

fn ce_date(d: Date) -> String {
    d.strftime("%Y-%m-%d").to_string()
}

impl Explorer {
    pub fn new(
        usage: aws_sdk_costexplorer::Client,
        forecast: aws_sdk_costexplorer::Client,
        cache: StateStore,
    ) -> Self {
        Explorer {
            usage,
            forecast,
            cache,
        }
    }

    /// The data for `q`, from today's cache or from Cost Explorer; with the number of
    /// Cost Explorer requests made.
    pub async fn load(&self, q: &Query, now: Timestamp) -> Result<(CostData, u32)> {
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let key = q.cache_key(today);
        if let Some(text) = self.cache.cached(CACHE_PK, &key, now).await? {
            match serde_json::from_str(&text) {
                Ok(data) => return Ok((data, 0)),
                Err(e) => tracing::warn!(error = %e, "cached cost data unreadable; asking again"),
            }
        }
        let mut requests = 0;
        let days = if q.clusters.is_empty() || q.start >= q.end {
            Vec::new()
        } else {
            self.usage(q, &mut requests).await?
        };
        let (forecast, forecast_error) = match q
            .forecast_end
            .filter(|end| today < *end && !q.clusters.is_empty())
        {
            Some(end) => match self.forecast(q, today, end, &mut requests).await {
                Ok(f) => (f, None),
                Err(e) => {
                    tracing::warn!(error = %e, "no forecast");
                    (None, Some(e.to_string()))
                }
            },
            None => (None, None),
        };
        let data = CostData {
            days,
            forecast,
            forecast_error,
        };
        // A failed forecast is asked for again by the next report rather than cached.
        if data.forecast_error.is_none() {
            let body =
                serde_json::to_string(&data).map_err(|e| FleetError::Internal(e.to_string()))?;
            let until = now.checked_add(48.hours()).unwrap_or(now);
            self.cache.cache(CACHE_PK, &key, &body, until).await?;
        }
        Ok((data, requests))
    }

    async fn usage(&self, q: &Query, requests: &mut u32) -> Result<Vec<DayCost>> {
        let metric = q.metric.usage_name();
        let mut days: BTreeMap<Date, DayCost> = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            if *requests >= MAX_REQUESTS {
                return Err(FleetError::Internal(format!(
                    "Cost Explorer needs more than {MAX_REQUESTS} pages for this report; narrow the month"
                )));
            }
            *requests += 1;
            let out = self
                .usage
                .get_cost_and_usage()
                .time_period(
                    DateInterval::builder()
                        .start(ce_date(q.start))
                        .end(ce_date(q.end))
                        .build()
                        .map_err(|e| FleetError::Internal(e.to_string()))?,
                )
                .granularity(Granularity::Daily)
                .metrics(metric)
                .group_by(
                    GroupDefinition::builder()
                        .r#type(GroupDefinitionType::Dimension)
                        .key("SERVICE")
                        .build(),
                )
                .group_by(
                    GroupDefinition::builder()
                        .r#type(GroupDefinitionType::Tag)
                        .key(&q.tag)
                        .build(),
                )
                .filter(q.filter())
                .set_next_page_token(token.take())
                .send()
                .await
                .map_err(FleetError::aws_call("CostExplorer", "GetCostAndUsage"))?;
            for r in out.results_by_time() {
                let Some(date) = r.time_period().and_then(|p| p.start().parse::<Date>().ok())
                else {
                    continue;
                };
                let day = days.entry(date).or_insert_with(|| DayCost {
                    date,
                    ..Default::default()
                });
                day.estimated |= r.estimated();
                for g in r.groups() {
                    let cost = amount(g.metrics().and_then(|m| m.get(metric)));
                    let keys = g.keys();
                    let service = keys.first().cloned().unwrap_or_default();
                    // Tag group keys read `<tag key>$<value>` (`$` alone: untagged).
                    let cluster = keys
                        .get(1)
                        .and_then(|k| k.split_once('$').map(|(_, v)| v.to_string()))
                        .unwrap_or_default();
                    day.total += cost;
                    *day.by_service.entry(service).or_default() += cost;
                    *day.by_cluster.entry(cluster).or_default() += cost;
                }
                if r.groups().is_empty() {
                    day.total += amount(r.total().and_then(|t| t.get(metric)));
                }
            }
            match out.next_page_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(days.into_values().collect())
    }

    async fn forecast(
        &self,
        q: &Query,
        today: Date,
        end: Date,
        requests: &mut u32,
    ) -> Result<Option<Forecast>> {
        *requests += 1;
        let metric = Metric::from(q.metric.forecast_name());
        let result = self
            .forecast
            .get_cost_forecast()
            .time_period(
                DateInterval::builder()
                    .start(ce_date(today))
                    .end(ce_date(end))
                    .build()
                    .map_err(|e| FleetError::Internal(e.to_string()))?,
            )
            .metric(metric)
            .granularity(Granularity::Monthly)
            .prediction_interval_level(80)
            .filter(q.filter())
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                let e = FleetError::aws("CostExplorer", "GetCostForecast", e);
                // Too little history to forecast is an answer, not a failure.
                if matches!(&e, FleetError::Aws { code, .. } if code == "DataUnavailableException")
                {
                    return Ok(None);
                }
                return Err(e);
            }
        };
        let (lower, upper) = out
            .forecast_results_by_time()
            .iter()
            .fold((0.0, 0.0), |(l, u), f| {
                (
                    l + f
                        .prediction_interval_lower_bound()
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0),
                    u + f
                        .prediction_interval_upper_bound()
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0),
                )
            });
        let mean = amount(out.total());
        Ok(Some(Forecast {
            mean,
            lower: if lower > 0.0 { lower } else { mean },
            upper: if upper > 0.0 { upper } else { mean },
        }))
    }
}
