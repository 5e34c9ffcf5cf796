//! The cost report's inputs: what Cost Explorer said, what is left behind, the month, and
//! what is known of each cluster. Plain types, read by the adapters and taken by
//! [`crate::report::build`].

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

pub use crate::karpenter::KarpenterTagging;
use crate::versions::VersionWarning;

/// One day's cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayCost {
    pub date: Date,
    /// Cost Explorer has not finalized the day yet.
    pub estimated: bool,
    pub total: f64,
    pub by_service: BTreeMap<String, f64>,
    /// By the cluster tag's value.
    pub by_cluster: BTreeMap<String, f64>,
    /// The automation's own cost (tagged `fleet:component=automation`, no cluster tag
    /// value), USD; in `total`, not in `by_cluster`.
    #[serde(default)]
    pub automation: f64,
}

/// Cost Explorer's forecast of the rest of the month, USD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The rest of the month (from today).
    pub mean: f64,
    /// The 80 % prediction interval.
    pub lower: f64,
    pub upper: f64,
}

/// What Cost Explorer said about the month: the report's input (cached in the state table).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostData {
    pub days: Vec<DayCost>,
    pub forecast: Option<Forecast>,
    /// Why there is no forecast, when asking for one failed (the report goes on without).
    #[serde(default)]
    pub forecast_error: Option<String>,
}

/// A resource tagged for a cluster that is still there while the cluster is down.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leftover {
    pub cluster: String,
    /// `ebs-volume`, `nat-gateway`, `elastic-ip`, `network-interface`,
    /// `load-balancer (<type>)`, `karpenter-instance`, `karpenter-launch-template`,
    /// `karpenter-instance-profile`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// Its ARN; `""` for a launch template whose creator's account is not known.
    pub arn: String,
    /// `None` when the service does not say when it was created (Elastic IPs, ENIs).
    pub age_days: Option<f64>,
    pub daily_cost_usd: f64,
    pub detail: String,
}

/// A calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub first: Date,
}

impl Month {
    pub fn of(t: Timestamp) -> Month {
        let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
        Month {
            first: d.first_of_month(),
        }
    }

    pub fn parse(text: &str) -> Option<Month> {
        let (y, m) = text.split_once('-')?;
        let first = Date::new(y.parse().ok()?, m.parse().ok()?, 1).ok()?;
        (text.len() == 7).then_some(Month { first })
    }

    pub fn next(&self) -> Date {
        self.first.checked_add(1.month()).unwrap_or(self.first)
    }

    pub fn start(&self) -> Timestamp {
        utc(self.first)
    }

    pub fn end(&self) -> Timestamp {
        utc(self.next())
    }

    pub fn hours(&self) -> f64 {
        self.end().duration_since(self.start()).as_secs_f64() / 3600.0
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.first.strftime("%Y-%m"))
    }
}

pub fn utc(d: Date) -> Timestamp {
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// What the report knows about one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterInput {
    pub name: String,
    /// Hours up in the month so far (from the recorded transitions).
    pub hours_up: f64,
    pub uptime_by_day: Vec<(Date, f64)>,
    /// Hours the schedule keeps it up over the whole month.
    pub scheduled_hours_month: f64,
    /// The median time from a morning's first step to `Cluster Ready` this month, in
    /// seconds (`None` for a network, or before one was timed).
    pub median_rebuild_seconds: Option<i64>,
}

pub struct Inputs<'a> {
    pub month: Month,
    pub now: Timestamp,
    pub metric: &'a str,
    pub data: &'a CostData,
    pub clusters: Vec<ClusterInput>,
    pub leftovers: Vec<Leftover>,
    /// The Karpenter instances of each cluster with `[cluster.karpenter]` that has any,
    /// and those without the cost tag.
    pub karpenter_tagging: Vec<KarpenterTagging>,
    /// `cost.cluster_tag`: the cost-allocation tag Cost Explorer groups by.
    pub cluster_tag: &'a str,
    pub versions: Vec<VersionWarning>,
    /// Places whose leftovers could not be looked for, and why (a warning each).
    pub not_looked: Vec<String>,
    pub budget: Option<f64>,
    pub anomaly_factor: f64,
    pub requests: u32,
    /// Each `[[network]]` (its row's name, `network:<name>`) and the clusters that need
    /// it: a platform whose savings are reported together.
    pub platforms: Vec<(String, Vec<String>)>,
    /// The account each cluster tag value is spent in (`[[account]]` names; `hub` for the
    /// hub's own): the config says where each cluster and network lives. Cost without a
    /// cluster tag value is the automation's, in the hub.
    pub accounts: BTreeMap<String, String>,
}
