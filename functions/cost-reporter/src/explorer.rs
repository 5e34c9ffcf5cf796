//! The Cost Explorer adapter. Every request costs $0.01 (and is, for the example config,
//! the largest item of the automation's own bill: BENCHMARKS.md), so a daily report makes
//! one: the usage query for the whole range, grouped by service and by the cluster tag,
//! cached in the state table for the rest of the UTC day. The forecast is asked for once
//! a week ([`FORECAST_MAX_AGE_DAYS`]) and on a month's first report, and reused between,
//! rebased to the days left ([`rebase`]): one more request on those days. At most three
//! in any report (a second usage page).
//!
//! The usage query also brings the automation's own cost: its filter takes the clusters'
//! tag values *or* [`AUTOMATION_TAG`], so a row without a cluster tag value is the
//! automation's (its functions, table, log groups and bus carry that tag, never a
//! cluster's).

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

/// The cost-allocation tag (key, value) on the automation's own resources
/// (`infra/template.yaml`: the functions, the state table, their log groups, the bus).
pub const AUTOMATION_TAG: (&str, &str) = ("fleet:component", "automation");

/// A forecast is reused, rebased to the days left, for this many days after it was made
/// (within its month); then asked for again.
pub const FORECAST_MAX_AGE_DAYS: i32 = 7;

/// A forecast as cached: made on `made` for `[made, end)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct CachedForecast {
    made: Date,
    end: Date,
    forecast: Forecast,
}

/// The forecast made on `made` for `[made, end)`, rebased to `[today, end)`: scaled by
/// the share of its days still ahead (a month's forecast is a rate over its days). `None`
/// when it is older than [`FORECAST_MAX_AGE_DAYS`], made after today, or the period is over.
pub fn rebase(made: Date, end: Date, forecast: &Forecast, today: Date) -> Option<Forecast> {
    let days = |from: Date, to: Date| from.until(to).ok().map(|s| s.get_days());
    let (age, covered, left) = (days(made, today)?, days(made, end)?, days(today, end)?);
    if !(0..FORECAST_MAX_AGE_DAYS).contains(&age) || covered <= 0 || left <= 0 {
        return None;
    }
    let share = f64::from(left) / f64::from(covered);
    Some(Forecast {
        mean: forecast.mean * share,
        lower: forecast.lower * share,
        upper: forecast.upper * share,
    })
}

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
    /// Today's usage answer.
    fn cache_key(&self, today: Date) -> String {
        format!(
            "usage#{today}#{}#{}#{}#{}",
            self.start,
            self.end,
            self.metric.usage_name(),
            self.clusters.join(",")
        )
    }

    /// The forecast of the period ending `end`, whenever it was made.
    fn forecast_key(&self, end: Date) -> String {
        format!(
            "forecast#{end}#{}#{}",
            self.metric.usage_name(),
            self.clusters.join(",")
        )
    }

    /// The fleet's resources (by the cluster tag) and the automation's (by
    /// [`AUTOMATION_TAG`]), usage only.
    fn filter(&self) -> Expression {
        let clusters = Expression::builder()
            .tags(
                TagValues::builder()
                    .key(&self.tag)
                    .set_values(Some(self.clusters.clone()))
                    .build(),
            )
            .build();
        let automation = Expression::builder()
            .tags(
                TagValues::builder()
                    .key(AUTOMATION_TAG.0)
                    .values(AUTOMATION_TAG.1)
                    .build(),
            )
            .build();
        let by_tag = Expression::builder().or(clusters).or(automation).build();
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

    /// The data for `q`: the usage from today's cache or from Cost Explorer, the
    /// forecast from the week's cache (rebased) or from Cost Explorer; with the number of
    /// Cost Explorer requests made.
    pub async fn load(&self, q: &Query, now: Timestamp) -> Result<(CostData, u32)> {
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let mut requests = 0;
        let days = self.days(q, today, now, &mut requests).await?;
        let (forecast, forecast_error) = match q
            .forecast_end
            .filter(|end| today < *end && !q.clusters.is_empty())
        {
            Some(end) => match self.cached_forecast(q, today, end, now).await? {
                Some(f) => (Some(f), None),
                None => match self.forecast(q, today, end, &mut requests).await {
                    Ok(f) => {
                        if let Some(f) = &f {
                            self.keep_forecast(q, today, end, f, now).await?;
                        }
                        (f, None)
                    }
                    // Asked for again by the next report rather than cached.
                    Err(e) => {
                        tracing::warn!(error = %e, "no forecast");
                        (None, Some(e.to_string()))
                    }
                },
            },
            None => (None, None),
        };
        Ok((
            CostData {
                days,
                forecast,
                forecast_error,
            },
            requests,
        ))
    }

    /// The days of `q`, from today's cache or from one usage query (cached till tomorrow).
    async fn days(
        &self,
        q: &Query,
        today: Date,
        now: Timestamp,
        requests: &mut u32,
    ) -> Result<Vec<DayCost>> {
        if q.clusters.is_empty() || q.start >= q.end {
            return Ok(Vec::new());
        }
        let key = q.cache_key(today);
        if let Some(text) = self.cache.cached(CACHE_PK, &key, now).await? {
            match serde_json::from_str(&text) {
                Ok(days) => return Ok(days),
                Err(e) => tracing::warn!(error = %e, "cached cost data unreadable; asking again"),
            }
        }
        let days = self.usage(q, requests).await?;
        let body = serde_json::to_string(&days).map_err(|e| FleetError::Internal(e.to_string()))?;
        let until = now.checked_add(48.hours()).unwrap_or(now);
        self.cache.cache(CACHE_PK, &key, &body, until).await?;
        Ok(days)
    }

    /// The period's forecast made within the last [`FORECAST_MAX_AGE_DAYS`], rebased.
    async fn cached_forecast(
        &self,
        q: &Query,
        today: Date,
        end: Date,
        now: Timestamp,
    ) -> Result<Option<Forecast>> {
        let Some(text) = self
            .cache
            .cached(CACHE_PK, &q.forecast_key(end), now)
            .await?
        else {
            return Ok(None);
        };
        match serde_json::from_str::<CachedForecast>(&text) {
            Ok(c) if c.end == end => Ok(rebase(c.made, c.end, &c.forecast, today)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "cached forecast unreadable; asking again");
                Ok(None)
            }
        }
    }

    async fn keep_forecast(
        &self,
        q: &Query,
        today: Date,
        end: Date,
        forecast: &Forecast,
        now: Timestamp,
    ) -> Result<()> {
        let body = serde_json::to_string(&CachedForecast {
            made: today,
            end,
            forecast: forecast.clone(),
        })
        .map_err(|e| FleetError::Internal(e.to_string()))?;
        let until = now
            .checked_add((24 * (i64::from(FORECAST_MAX_AGE_DAYS) + 1)).hours())
            .unwrap_or(now);
        self.cache
            .cache(CACHE_PK, &q.forecast_key(end), &body, until)
            .await
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
                    // No cluster tag value: only the automation's tag let it through.
                    if cluster.is_empty() {
                        day.automation += cost;
                    } else {
                        *day.by_cluster.entry(cluster).or_default() += cost;
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        text.parse().expect("date")
    }

    #[test]
    fn a_forecast_is_rebased_to_the_days_left_for_a_week() {
        let f = Forecast {
            mean: 30.0,
            lower: 27.0,
            upper: 33.0,
        };
        // Made on the 1st for [1st, 31st): 30 days.
        let (made, end) = (d("2026-11-01"), d("2026-12-01"));
        // (today, mean then or none)
        let cases = [
            ("2026-11-01", Some(30.0)),
            ("2026-11-07", Some(24.0)),
            // A week old: asked for again.
            ("2026-11-08", None),
            ("2026-10-31", None),
            ("2026-12-01", None),
        ];
        for (today, want) in cases {
            let got = rebase(made, end, &f, d(today));
            assert_eq!(got.as_ref().map(|g| g.mean), want, "{today}");
            if let Some(g) = got {
                assert!(g.lower <= g.mean && g.mean <= g.upper, "{today}");
            }
        }
        assert_eq!(
            rebase(made, end, &f, d("2026-11-16")).map(|g| g.upper),
            None
        );
        assert_eq!(
            rebase(d("2026-11-28"), end, &f, d("2026-11-30")).map(|g| g.mean),
            Some(10.0)
        );
    }
}
