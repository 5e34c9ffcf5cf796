//! CloudWatch custom metrics, sent one way by every function, as many as
//! `[metrics] cloudwatch` allows ([`selected`]).

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::config::CloudWatchMetrics;
use crate::error::{FleetError, Result};

/// The metrics `cloudwatch = "summary"` sends, (namespace, metric name): exactly those
/// the stack's dashboard and alarms read (`infra/template.yaml`; `tests/tests/infra.rs`
/// checks the two agree). Per-cluster dimensions stay (one metric per cluster); a
/// `Service` dimension other than `all` does not (DORA per service is `detailed`, or the
/// Pushgateway's).
pub const SUMMARY: [(&str, &str); 14] = [
    ("Fleet/Cost", "MonthToDateUsd"),
    ("Fleet/Cost", "ForecastMonthEndUsd"),
    ("Fleet/Cost", "LeftoverDailyUsd"),
    ("Fleet/Cost", "SavedUsd"),
    ("Fleet/Cost", "HoursUp"),
    ("Fleet/SpotDrainer", "PodsEvicted"),
    ("Fleet/SpotDrainer", "PodsForced"),
    ("Fleet/DNS", "RecordChanges"),
    ("Fleet/DNS", "RecordConflicts"),
    ("Fleet/DORA", "DeploymentFrequencyPerDay"),
    ("Fleet/DORA", "LeadTimeHours"),
    ("Fleet/DORA", "ChangeFailureRate"),
    ("Fleet/DORA", "RecoveryTimeHours"),
    ("Fleet/DORA", "ReworkRate"),
];

/// The dimension that would multiply a metric per DORA service.
const SERVICE_DIMENSION: &str = "Service";
/// The `Service` value of every service together.
const ALL_SERVICES: &str = "all";

/// Whether `datum` of `namespace` is sent at `level`: `detailed` everything, `off`
/// nothing, `summary` the [`SUMMARY`] metrics without a per-service dimension.
pub fn selected(level: CloudWatchMetrics, namespace: &str, datum: &MetricDatum) -> bool {
    match level {
        CloudWatchMetrics::Detailed => true,
        CloudWatchMetrics::Off => false,
        CloudWatchMetrics::Summary => {
            let name = datum.metric_name().unwrap_or_default();
            SUMMARY.contains(&(namespace, name))
                && datum
                    .dimensions()
                    .iter()
                    .all(|d| d.name() != Some(SERVICE_DIMENSION) || d.value() == Some(ALL_SERVICES))
        }
    }
}

/// Data points per `PutMetricData` request: the API takes up to 1000; 500 keeps each
/// request well inside its 1 MB payload limit whatever the dimensions.
const PER_REQUEST: usize = 500;

/// One data point of `name` with `value` in `unit`, under `dimensions` (name, value).
pub fn datum(
    name: &str,
    value: f64,
    unit: StandardUnit,
    dimensions: &[(&str, &str)],
) -> MetricDatum {
    let dimensions: Vec<Dimension> = dimensions
        .iter()
        .map(|(n, v)| Dimension::builder().name(*n).value(*v).build())
        .collect();
    MetricDatum::builder()
        .metric_name(name)
        .value(value)
        .unit(unit)
        // None, not an empty list, for a metric without dimensions (as the SDK's default).
        .set_dimensions((!dimensions.is_empty()).then_some(dimensions))
        .build()
}

/// Sends what `level` selects of `data` to `namespace` (`Fleet/SpotDrainer`), in as few
/// requests as the API allows. Nothing is sent when nothing is selected.
///
/// # Errors
/// The first `PutMetricData` call that fails; data in earlier requests was sent (the
/// metrics are gauges: sending them again changes nothing).
pub async fn put(
    client: &aws_sdk_cloudwatch::Client,
    level: CloudWatchMetrics,
    namespace: &str,
    data: Vec<MetricDatum>,
) -> Result<()> {
    let data: Vec<MetricDatum> = data
        .into_iter()
        .filter(|d| selected(level, namespace, d))
        .collect();
    for chunk in data.chunks(PER_REQUEST) {
        client
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(FleetError::aws_call("CloudWatch", "PutMetricData"))?;
    }
    Ok(())
}

/// [`put`], best effort: a failure is logged as a warning, for callers whose work is done
/// whatever happens to its metrics.
pub async fn put_or_warn(
    client: &aws_sdk_cloudwatch::Client,
    level: CloudWatchMetrics,
    namespace: &str,
    data: Vec<MetricDatum>,
) {
    if let Err(e) = put(client, level, namespace, data).await {
        tracing::warn!(error = %e, namespace, "metrics not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_selects_what_is_sent() {
        use CloudWatchMetrics::{Detailed, Off, Summary};
        let cluster = [("Cluster", "staging")];
        let saved = datum("SavedUsd", 1.0, StandardUnit::None, &cluster);
        let yesterday = datum("YesterdayUsd", 1.0, StandardUnit::None, &[]);
        let all = [("Service", "all"), ("Environment", "all")];
        let one = [("Service", "web"), ("Environment", "production")];
        let dora_all = datum("LeadTimeHours", 2.0, StandardUnit::None, &all);
        let dora_one = datum("LeadTimeHours", 2.0, StandardUnit::None, &one);
        let deployments = datum("Deployments", 2.0, StandardUnit::Count, &all);
        // (level, namespace, datum, sent)
        let cases = [
            (Summary, "Fleet/Cost", &saved, true),
            (Summary, "Fleet/Cost", &yesterday, false),
            (Summary, "Fleet/DORA", &dora_all, true),
            (Summary, "Fleet/DORA", &dora_one, false),
            (Summary, "Fleet/DORA", &deployments, false),
            // The name alone is not enough: the namespace is part of the metric.
            (Summary, "Fleet/DNS", &saved, false),
            (Detailed, "Fleet/DORA", &dora_one, true),
            (Detailed, "Fleet/Cost", &yesterday, true),
            (Off, "Fleet/Cost", &saved, false),
            (Off, "Fleet/DORA", &dora_all, false),
        ];
        for (level, ns, d, want) in cases {
            assert_eq!(
                selected(level, ns, d),
                want,
                "{level:?} {ns} {:?}",
                d.metric_name()
            );
        }
    }

    #[test]
    fn a_datum_carries_its_dimensions_in_order() {
        let d = datum(
            "PodsEvicted",
            3.0,
            StandardUnit::Count,
            &[("Cluster", "staging"), ("Env", "prod")],
        );
        assert_eq!(d.metric_name(), Some("PodsEvicted"));
        assert_eq!(d.value(), Some(3.0));
        let dims: Vec<(Option<&str>, Option<&str>)> = d
            .dimensions()
            .iter()
            .map(|x| (x.name(), x.value()))
            .collect();
        assert_eq!(
            dims,
            vec![
                (Some("Cluster"), Some("staging")),
                (Some("Env"), Some("prod"))
            ]
        );
    }
}
