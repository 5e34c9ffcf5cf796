//! `[metrics]`: which CloudWatch custom metrics the functions send.

use serde::Deserialize;

/// `[metrics]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct MetricsConfig {
    /// Which custom metrics go to CloudWatch (default `summary`).
    #[serde(default)]
    pub cloudwatch: CloudWatchMetrics,
}

/// `metrics.cloudwatch`: how many CloudWatch custom metrics the functions send. Each
/// distinct metric (name and dimensions) bills $0.30 a month when it is sent in every
/// hour of the month, prorated by the hours in which it is sent (BENCHMARKS.md, "The
/// automation's own bill").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudWatchMetrics {
    /// Only the metrics the stack's dashboard and alarms read (`metrics::SUMMARY`), with
    /// no per-service dimension: DORA for all services together (default).
    #[default]
    Summary,
    /// Every metric, DORA's per service too.
    Detailed,
    /// None (the Pushgateway, when set, still gets the DORA gauges).
    Off,
}
