//! The cost reporter's handler: gather (Cost Explorer, the recorded uptime, leftovers,
//! EKS versions), build the report, and on the daily run publish it.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_cloudwatch::types::StandardUnit;
use fleet_shared::aws::SdkConfig;
use fleet_shared::config::{ClusterConfig, CostConfig, FleetConfig, Place};
use fleet_shared::metrics;
use fleet_shared::notify::Notifier;
use fleet_shared::place::{PerPlace, Places, SpokeRole};
use fleet_shared::runner::Invocation;
use fleet_shared::schedule::Desired;
use fleet_shared::startup::{cold_start, table_name};
use fleet_shared::state::{median_took_seconds, network_history_key, StateStore};
use fleet_shared::{FleetError, Result};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde_json::Value;

use crate::explorer::{Explorer, Query};
use crate::karpenter;
use crate::leftovers::{price, Finder, Named};
use crate::report::{build, slack_text, utc, ClusterInput, CostReport, Inputs, Leftover, Month};
use crate::request::{parse, Request};
use crate::uptime::{hours_by_day, hours_up, scheduled_hours, scheduled_hours_any};
use crate::versions::{check, table_end, VersionWarning, TABLE_CHECKED};

/// What to look for at one place (see [`Reporter::looks`]).
#[derive(Default)]
struct Look<'a> {
    /// Clusters and networks that are down (networks as `network:<name>` both ways).
    down: Vec<Named>,
    /// EKS names of the destroy-mode clusters among `down`.
    destroyed: Vec<String>,
    /// Clusters with `[cluster.karpenter]`.
    karpenter: Vec<Named>,
    /// Every cluster that lives here.
    clusters: Vec<&'a ClusterConfig>,
}

impl Look<'_> {
    /// The fleet name of an EKS name here (EKS names are unique in a place); unknown
    /// ones as they are.
    fn fleet_name(&self, eks_name: &str) -> String {
        self.down
            .iter()
            .chain(&self.karpenter)
            .find(|n| n.eks_name == eks_name)
            .map_or_else(|| eks_name.to_string(), |n| n.name.clone())
    }
}

/// CloudWatch namespace of the cost metrics.
pub const METRICS_NAMESPACE: &str = "Fleet/Cost";

pub struct Reporter {
    pub config: Arc<FleetConfig>,
    pub cost: CostConfig,
    pub explorer: Explorer,
    pub store: StateStore,
    /// Leftovers are looked for where each cluster and network lives.
    pub leftovers: PerPlace<Finder>,
    pub eks: aws_sdk_eks::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub notifier: Notifier,
}

impl Reporter {
    pub async fn from_cold_start() -> Result<Self> {
        let cold = cold_start().await?;
        let table = table_name()?;
        let notifier = cold.notifier().await?;
        let places = cold.places(SpokeRole::Cost).await?;
        Ok(Reporter::with_places(places, cold.config, table, notifier))
    }

    /// A reporter of the hub's account only, its AWS clients built from `sdk`.
    pub fn new(
        sdk: &SdkConfig,
        config: FleetConfig,
        table: impl Into<String>,
        notifier: Notifier,
    ) -> Self {
        Self::with_places(Arc::new(Places::hub_only(sdk)), config, table, notifier)
    }

    /// A reporter with its AWS clients built from `places`: Cost Explorer in us-east-1
    /// (its one endpoint) of `cost.account` (the hub's when absent), leftovers where each
    /// cluster lives; its cache and daily claims in the hub's state table `table`. The
    /// cold start and the tests build it here.
    pub fn with_places(
        places: Arc<Places>,
        config: FleetConfig,
        table: impl Into<String>,
        notifier: Notifier,
    ) -> Self {
        let sdk = places.hub().clone();
        let store = StateStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
        let cost = config.cost.clone().unwrap_or_default();
        let bill = Place {
            account: cost.account.clone(),
            region: "us-east-1".into(),
        };
        let ce = aws_sdk_costexplorer::Client::new(&places.sdk(&bill));
        Reporter {
            cost,
            explorer: Explorer::new(ce.clone(), ce, store.clone()),
            store,
            leftovers: PerPlace::new(places, |sdk| Finder {
                tagging: aws_sdk_resourcegroupstagging::Client::new(sdk),
                ec2: aws_sdk_ec2::Client::new(sdk),
                elb: aws_sdk_elasticloadbalancingv2::Client::new(sdk),
                iam: aws_sdk_iam::Client::new(sdk),
            }),
            eks: aws_sdk_eks::Client::new(&sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            notifier,
            config: Arc::new(config),
        }
    }

    /// Serves one invocation; the answer is a [`CostReport`] as JSON.
    ///
    /// # Errors
    /// A malformed event or a month that has not begun (bad request); Cost Explorer or
    /// the state table failing (retried).
    pub async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        let report = self.answer(event, &inv).await?;
        fleet_shared::runner::respond(report)
    }

    async fn answer(&self, event: Value, inv: &Invocation) -> Result<CostReport> {
        match parse(&event)? {
            Request::Daily => {
                let report = self.report(Month::of(inv.now), inv.now).await?;
                self.publish(&report, inv).await;
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

    pub async fn report(&self, month: Month, now: Timestamp) -> Result<CostReport> {
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
            // Networks' NAT gateways and addresses carry `network:<name>` (see
            // `network_history_key`): one query groups both.
            clusters: self
                .config
                .clusters
                .iter()
                .map(|c| c.name.clone())
                .chain(
                    self.config
                        .networks
                        .iter()
                        .map(|n| network_history_key(&n.name)),
                )
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
                median_rebuild_seconds: median_took_seconds(
                    &transitions,
                    month.start(),
                    period_end,
                ),
            });
            if self.store.cluster(&c.name).await?.state.phase == Some(Desired::Down) {
                down.push(c.name.clone());
            }
        }
        // A network as a cluster: hours up from its transitions, cost from its tag,
        // scheduled while any of its clusters is.
        for n in &self.config.networks {
            let key = network_history_key(&n.name);
            let lookback = utc(month.first.checked_sub(35.days()).unwrap_or(month.first));
            let transitions = self.store.transitions(&key, lookback, period_end).await?;
            let schedules: Vec<_> = self
                .config
                .clusters_of(&n.name)
                .map(|c| c.schedule())
                .collect();
            clusters.push(ClusterInput {
                name: key.clone(),
                hours_up: hours_up(&transitions, month.start(), period_end),
                uptime_by_day: hours_by_day(&transitions, month.first, period_end),
                scheduled_hours_month: scheduled_hours_any(&schedules, month.start(), month.end()),
                median_rebuild_seconds: None,
            });
            // Down, and not coming up: a morning's gateway is not a leftover.
            let wanted = self
                .config
                .clusters_of(&n.name)
                .any(|c| c.schedule().decide(now, None).desired == Desired::Up);
            if !wanted && self.store.network(&n.name).await?.phase == Some(Desired::Down) {
                down.push(key);
            }
        }
        let with_karpenter: Vec<String> = self
            .config
            .clusters
            .iter()
            .filter(|c| c.karpenter.is_some())
            .map(|c| c.name.clone())
            .collect();
        let mut leftovers = Vec::new();
        let mut instances = Vec::new();
        let mut not_looked = Vec::new();
        let looks = self.looks(&down, &with_karpenter);
        let found = futures::future::join_all(
            looks
                .iter()
                .map(|(place, look)| self.leftovers_at(place, look, now)),
        )
        .await;
        let hub = Place::hub(self.config.fleet.region.clone());
        for ((place, _), found) in looks.iter().zip(found) {
            match found {
                Ok((l, i)) => {
                    leftovers.extend(l);
                    instances.extend(i);
                }
                // The hub's own region failing fails the report (retried, as before
                // spokes); elsewhere only that place goes unchecked, and says so.
                Err(e) if *place == hub => return Err(e),
                Err(e) => {
                    tracing::warn!(%place, error = %e, "leftovers not looked for");
                    not_looked.push(format!("leftovers in {place} not looked for: {e}"));
                }
            }
        }
        let karpenter_tagging =
            karpenter::tagging(&instances, &with_karpenter, &self.cost.cluster_tag);
        let versions = self.version_warnings(today).await;
        let mut accounts: BTreeMap<String, String> = BTreeMap::new();
        for c in &self.config.clusters {
            let account = c.account.clone().unwrap_or_else(|| "hub".into());
            accounts.insert(c.name.clone(), account);
        }
        for n in &self.config.networks {
            let account = n.account.clone().unwrap_or_else(|| "hub".into());
            accounts.insert(network_history_key(&n.name), account.clone());
            accounts.insert(n.name.clone(), account);
        }
        let inputs = Inputs {
            accounts,
            month,
            now,
            metric: self.cost.metric.usage_name(),
            data: &data,
            clusters,
            leftovers,
            karpenter_tagging,
            cluster_tag: &self.cost.cluster_tag,
            versions,
            not_looked,
            budget: self.cost.monthly_budget_usd,
            anomaly_factor: self.cost.anomaly_factor,
            requests,
            platforms: self
                .config
                .networks
                .iter()
                .map(|n| {
                    let clusters = self.config.clusters_of(&n.name).map(|c| c.name.clone());
                    (network_history_key(&n.name), clusters.collect())
                })
                .collect(),
        };
        Ok(build(&inputs))
    }

    /// Where to look for leftovers: every place with a cluster or network, with what is
    /// down there (fleet and EKS names) and its clusters with `[cluster.karpenter]`.
    /// `down` and `with_karpenter` hold fleet names of configured clusters and
    /// `network:<name>` keys.
    fn looks(&self, down: &[String], with_karpenter: &[String]) -> BTreeMap<Place, Look<'_>> {
        let mut looks: BTreeMap<Place, Look<'_>> = BTreeMap::new();
        for c in &self.config.clusters {
            let look = looks.entry(self.config.place(c)).or_default();
            let named = Named {
                name: c.name.clone(),
                eks_name: c.eks_name().to_string(),
            };
            if down.contains(&c.name) {
                look.down.push(named.clone());
                if c.mode == fleet_shared::config::Mode::Destroy {
                    look.destroyed.push(named.eks_name.clone());
                }
            }
            if with_karpenter.contains(&c.name) {
                look.karpenter.push(named);
            }
            look.clusters.push(c);
        }
        for n in &self.config.networks {
            let key = network_history_key(&n.name);
            let look = looks.entry(self.config.network_place(n)).or_default();
            if down.contains(&key) {
                look.down.push(Named {
                    name: key.clone(),
                    eks_name: key,
                });
            }
        }
        looks
    }

    /// The leftovers at one place and the Karpenter instances there (cluster fields are
    /// fleet names).
    async fn leftovers_at(
        &self,
        place: &Place,
        look: &Look<'_>,
        now: Timestamp,
    ) -> Result<(Vec<Leftover>, Vec<karpenter::KarpenterInstance>)> {
        let finder = self.leftovers.at(place);
        let region = place.region.as_str();
        let tagged = finder.tagged(&self.cost.cluster_tag, &look.down).await?;
        let mut leftovers = finder.describe(&tagged, now).await?;
        // Karpenter: its instances of clusters that are down are leftovers (any cluster:
        // Karpenter may run where the config does not say so); those of clusters with
        // `[cluster.karpenter]` are checked for the cost tag, up or down. One
        // DescribeInstances serves both; none when neither applies.
        let mut looked_for: Vec<String> = look.down.iter().map(|d| d.eks_name.clone()).collect();
        looked_for.extend(
            look.karpenter
                .iter()
                .filter(|k| !look.down.contains(k))
                .map(|k| k.eks_name.clone()),
        );
        let mut instances = finder.karpenter_instances(&looked_for, region).await?;
        for i in &mut instances {
            i.cluster = look.fleet_name(&i.cluster);
        }
        leftovers.extend(
            instances
                .iter()
                .filter(|i| look.down.iter().any(|d| d.name == i.cluster))
                .map(|i| karpenter::instance_leftover(i, price::GENERAL_PURPOSE_VCPU_HOUR, now)),
        );
        // Launch templates and instance profiles of a scale-mode cluster are kept overnight
        // on purpose (its EC2NodeClasses stay; Karpenter reuses them in the morning):
        // leftovers only where the cluster itself is gone.
        let mut karpenter_leftovers = finder
            .karpenter_launch_templates(&look.destroyed, region, now)
            .await?;
        karpenter_leftovers.extend(
            finder
                .karpenter_instance_profiles(&look.destroyed, region, now)
                .await?,
        );
        for l in &mut karpenter_leftovers {
            l.cluster = look.fleet_name(&l.cluster);
        }
        leftovers.extend(karpenter_leftovers);
        // NAT gateways nobody schedules in the VPCs of the fleet's clusters: they bill
        // around the clock (the fleet's own carry its managed-by tag).
        leftovers.extend(
            finder
                .unscheduled_nat_gateways(&self.config, &look.clusters, &self.cost.cluster_tag, now)
                .await?,
        );
        Ok((leftovers, instances))
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
    async fn publish(&self, r: &CostReport, inv: &Invocation) {
        let fleet = |name: &str, value: f64| metrics::datum(name, value, StandardUnit::None, &[]);
        let mut data = vec![fleet("MonthToDateUsd", r.month_to_date.total_usd)];
        if let Some(f) = &r.forecast {
            data.push(fleet("ForecastMonthEndUsd", f.month_end_usd));
        }
        if let Some(y) = &r.yesterday {
            data.push(fleet("YesterdayUsd", y.cost_usd));
        }
        data.push(fleet("LeftoverDailyUsd", r.leftover_daily_cost_usd));
        for s in &r.savings.clusters {
            let dims = [("Cluster", s.cluster.as_str())];
            let cluster =
                |name: &str, value: f64| metrics::datum(name, value, StandardUnit::None, &dims);
            data.push(cluster("ClusterMonthToDateUsd", s.cost_usd));
            if let Some(v) = s.saved_usd {
                data.push(cluster("SavedUsd", v));
            }
            data.push(cluster("HoursUp", s.hours_up));
        }
        metrics::put_or_warn(
            &self.cloudwatch,
            self.config.metrics.cloudwatch,
            METRICS_NAMESPACE,
            data,
        )
        .await;
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
                self.notifier.send_or_warn(&slack_text(r)).await;
            }
            Ok(false) => tracing::info!("the cost report went to Slack already today"),
            Err(e) => tracing::warn!(error = %e, "daily marker unavailable; Slack skipped"),
        }
    }
}

impl fleet_shared::runner::Function for Reporter {
    async fn cold_start() -> Result<Self> {
        Reporter::from_cold_start().await
    }

    async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        Reporter::handle(self, event, inv).await
    }
}
