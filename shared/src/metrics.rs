//! CloudWatch custom metrics, sent one way by every function.

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::error::{FleetError, Result};

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

/// Sends `data` to `namespace` (`Fleet/SpotDrainer`), in as few requests as the API
/// allows. Nothing is sent for no data.
///
/// # Errors
/// The first `PutMetricData` call that fails; data in earlier requests was sent (the
/// metrics are gauges: sending them again changes nothing).
pub async fn put(
    client: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    data: Vec<MetricDatum>,
) -> Result<()> {
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
    namespace: &str,
    data: Vec<MetricDatum>,
) {
    if let Err(e) = put(client, namespace, data).await {
        tracing::warn!(error = %e, namespace, "metrics not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
