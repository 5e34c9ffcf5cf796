//! `[cost]`: what the cost reporter reads and warns about.

use serde::Deserialize;

use crate::error::{FleetError, Result};

/// `[cost]`.
#[derive(Debug, Clone, Deserialize)]
pub struct CostConfig {
    /// The cost-allocation tag on every cluster resource (activate it in Billing).
    #[serde(default = "default_tag")]
    pub cluster_tag: String,
    /// Warn at 80 % and 100 % of it, spent or forecast.
    #[serde(default)]
    pub monthly_budget_usd: Option<f64>,
    /// Which Cost Explorer cost: `unblended` (what the bill shows) or `amortized`
    /// (reservations and savings plans spread over their term).
    #[serde(default)]
    pub metric: CostMetric,
    /// Yesterday is an anomaly above this multiple of the trailing 7-day mean.
    #[serde(default = "default_anomaly")]
    pub anomaly_factor: f64,
    /// The `[[account]]` whose Cost Explorer holds the bill (the organization's management
    /// account sees its linked accounts'); absent: the hub's own. Read with that
    /// account's `<role_arn>-cost` role.
    #[serde(default)]
    pub account: Option<String>,
}

fn default_tag() -> String {
    crate::config::CLUSTER_TAG.into()
}

fn default_anomaly() -> f64 {
    1.5
}

/// Which Cost Explorer cost the report reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostMetric {
    /// `UnblendedCost`: what the bill shows (default).
    #[default]
    Unblended,
    /// `AmortizedCost`: reservations and savings plans spread over their term.
    Amortized,
}

impl CostMetric {
    /// The metric name in `GetCostAndUsage`.
    pub fn usage_name(&self) -> &'static str {
        match self {
            CostMetric::Unblended => "UnblendedCost",
            CostMetric::Amortized => "AmortizedCost",
        }
    }

    /// The metric name in `GetCostForecast`.
    pub fn forecast_name(&self) -> &'static str {
        match self {
            CostMetric::Unblended => "UNBLENDED_COST",
            CostMetric::Amortized => "AMORTIZED_COST",
        }
    }
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            cluster_tag: default_tag(),
            monthly_budget_usd: None,
            metric: CostMetric::default(),
            anomaly_factor: default_anomaly(),
            account: None,
        }
    }
}

impl CostConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.cluster_tag.trim().is_empty() {
            return Err(FleetError::config("cost.cluster_tag", "must not be empty"));
        }
        if self
            .monthly_budget_usd
            .is_some_and(|b| !(b > 0.0 && b.is_finite()))
        {
            return Err(FleetError::config(
                "cost.monthly_budget_usd",
                "must be a positive amount",
            ));
        }
        if !(self.anomaly_factor > 1.0 && self.anomaly_factor.is_finite()) {
            return Err(FleetError::config(
                "cost.anomaly_factor",
                "must be above 1 (e.g. 1.5)",
            ));
        }
        Ok(())
    }
}
