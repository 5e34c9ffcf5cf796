//! The DNS updater's handler: decide which clusters to converge and where their records
//! should point, then plan and apply each record (see `plan.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_shared::config::{ClusterConfig, DnsConfig, DnsProvider, FleetConfig, OnDestroy};
use fleet_shared::kube::{ClusterAccess, KubeConnector};
use fleet_shared::notify::Notifier;
use fleet_shared::place::{PerPlace, Places};
use fleet_shared::runner::Invocation;
use fleet_shared::schedule::Desired;
use fleet_shared::startup::{cold_start, table_name};
use fleet_shared::state::StateStore;
use fleet_shared::{FleetError, Result};
use serde_json::Value;

use crate::cloudflare::{Cloudflare, RetryPolicy};
use crate::ingress::read_ingress;
use crate::plan::{Action, Goal};
use crate::report::{Answer, ClusterSync, Ignored};
use crate::request::{parse, Request};
use crate::route53::Route53;
use crate::target::Target;

/// CloudWatch namespace of the DNS metrics.
pub const METRICS_NAMESPACE: &str = "Fleet/DNS";
/// Time kept free at the end of an invocation for writing the records and reporting.
pub(crate) const DEADLINE_MARGIN: Duration = Duration::from_secs(15);
/// How long a Route53 change is waited for when `wait_insync` is set.
pub(crate) const INSYNC_WAIT: Duration = Duration::from_secs(60);

pub struct Updater {
    pub config: Arc<FleetConfig>,
    /// EKS of each place a cluster lives in.
    pub eks: PerPlace<aws_sdk_eks::Client>,
    pub kube: Arc<KubeConnector>,
    pub store: StateStore,
    /// Present when some record uses Cloudflare.
    pub cloudflare: Option<Cloudflare>,
    /// Route53 of each account a hosted zone is in (`zone_account`; the hub's without).
    pub route53: PerPlace<Route53>,
    pub notifier: Notifier,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

fn phase_name(p: Desired) -> &'static str {
    match p {
        Desired::Up => "up",
        Desired::Down => "down",
    }
}

impl Updater {
    pub async fn from_cold_start() -> Result<Self> {
        let cold = cold_start().await?;
        let table = table_name()?;
        let uses_cloudflare = cold
            .config
            .clusters
            .iter()
            .filter_map(|c| c.dns.as_ref())
            .any(|d| d.uses(DnsProvider::Cloudflare));
        // Both secrets in one SSM round trip.
        let fleet = &cold.config.fleet;
        cold.prefetch([
            fleet.slack_webhook.as_ref(),
            fleet
                .cloudflare_api_token
                .as_ref()
                .filter(|_| uses_cloudflare),
        ])
        .await;
        let notifier = cold.notifier().await?;
        let cloudflare = match (&cold.config.fleet.cloudflare_api_token, uses_cloudflare) {
            (Some(token), true) => {
                let token = cold.secret("fleet.cloudflare_api_token", token).await?;
                let url = std::env::var("CLOUDFLARE_API_URL")
                    .ok()
                    .filter(|u| !u.trim().is_empty());
                Some(Cloudflare::new(
                    url.as_deref(),
                    token,
                    RetryPolicy::default(),
                )?)
            }
            _ => None,
        };
        let places = cold.places(fleet_shared::place::SpokeRole::Dns).await?;
        let kube = KubeConnector::from_env(places.clone());
        Ok(Updater::new(
            places,
            cold.config,
            table,
            notifier,
            kube,
            cloudflare,
        ))
    }

    /// An updater reaching each cluster's EKS through `places` (Route53, its table and
    /// metrics with the hub's credentials), its ownership records in the
    /// state table `table`, clusters' APIs reached through `kube`, and a Cloudflare client
    /// when some record uses Cloudflare. The cold start and the tests build it here.
    pub fn new(
        places: Arc<Places>,
        config: FleetConfig,
        table: impl Into<String>,
        notifier: Notifier,
        kube: KubeConnector,
        cloudflare: Option<Cloudflare>,
    ) -> Self {
        let sdk = &places.hub().clone();
        Updater {
            eks: PerPlace::new(places.clone(), aws_sdk_eks::Client::new),
            kube: Arc::new(kube),
            store: StateStore::new(aws_sdk_dynamodb::Client::new(sdk), table),
            cloudflare,
            route53: PerPlace::new(places.clone(), Route53::new),
            notifier,
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            config: Arc::new(config),
        }
    }

    /// Serves one invocation; the answer is an [`Answer`] as JSON.
    ///
    /// # Errors
    /// A malformed event (bad request, naming the field); a sync that failed or ran out
    /// of time (retried by Lambda; what is done stays done).
    pub async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        let answer = self.answer(event, inv).await?;
        fleet_shared::runner::respond(answer)
    }

    async fn answer(&self, event: Value, inv: Invocation) -> Result<Answer> {
        match parse(&event)? {
            Request::Ignore { reason } => Ok(Answer::Ignored(Ignored::new(None, reason))),
            Request::Ready(e) => {
                self.on_event(&e.cluster, Some(e.generation), Desired::Up, &inv)
                    .await
            }
            Request::Destroyed(e) => self.on_event(&e.cluster, None, Desired::Down, &inv).await,
            Request::SyncUp => {
                let mut up = Vec::new();
                for (c, dns) in self.dns_clusters() {
                    let state = self.store.cluster(&c.name).await?.state;
                    if state.phase == Some(Desired::Up) {
                        up.push((c, dns));
                    }
                }
                self.converge_all(up, Some(Desired::Up), false, &inv).await
            }
            Request::Sync { cluster, dry_run } => {
                let clusters = match cluster {
                    None => self.dns_clusters(),
                    Some(name) => {
                        let c = self.config.cluster(&name).ok_or_else(|| {
                            FleetError::bad_request(
                                "cluster",
                                format!("`{name}` is not a cluster in the fleet config"),
                            )
                        })?;
                        let dns = c.dns.as_ref().ok_or_else(|| {
                            FleetError::bad_request(
                                "cluster",
                                format!("cluster `{name}` has no [cluster.dns] section"),
                            )
                        })?;
                        vec![(c, dns)]
                    }
                };
                match self.converge_all(clusters, None, dry_run, &inv).await? {
                    Answer::Several { mut clusters, .. } if clusters.len() == 1 => {
                        Ok(Answer::One(clusters.remove(0)))
                    }
                    other => Ok(other),
                }
            }
        }
    }

    fn dns_clusters(&self) -> Vec<(&ClusterConfig, &DnsConfig)> {
        self.config
            .clusters
            .iter()
            .filter_map(|c| c.dns.as_ref().map(|d| (c, d)))
            .collect()
    }

    /// A `Cluster Ready` or `Cluster Destroyed` event, unless a later transition made it
    /// stale (a redelivery arriving after the next teardown must not point DNS back).
    async fn on_event(
        &self,
        name: &str,
        generation: Option<String>,
        phase: Desired,
        inv: &Invocation,
    ) -> Result<Answer> {
        let Some(c) = self.config.cluster(name) else {
            return Ok(Answer::Ignored(Ignored::new(
                Some(name),
                "not a cluster in the fleet config".into(),
            )));
        };
        let Some(dns) = c.dns.as_ref() else {
            return Ok(Answer::Ignored(Ignored::new(
                Some(name),
                "the cluster has no [cluster.dns] section".into(),
            )));
        };
        let state = self.store.cluster(name).await?.state;
        if let Some(recorded) = state.phase {
            let other_generation =
                matches!((&generation, &state.generation), (Some(a), Some(b)) if a != b);
            if recorded != phase || other_generation {
                return Ok(Answer::Ignored(Ignored::new(
                    Some(name),
                    format!(
                        "stale event: the cluster is recorded {} since {}",
                        phase_name(recorded),
                        state.since.map(|t| t.to_string()).unwrap_or_default()
                    ),
                )));
            }
        }
        self.converge(c, dns, phase, false, inv)
            .await
            .map(Answer::One)
    }

    /// Converges several clusters; every one is tried, then any failure fails the whole.
    async fn converge_all(
        &self,
        clusters: Vec<(&ClusterConfig, &DnsConfig)>,
        phase: Option<Desired>,
        dry_run: bool,
        inv: &Invocation,
    ) -> Result<Answer> {
        let mut reports = Vec::new();
        let mut failures = Vec::new();
        for (c, dns) in clusters {
            let phase = match phase {
                Some(p) => p,
                None => match self.store.cluster(&c.name).await?.state.phase {
                    Some(Desired::Down) => Desired::Down,
                    _ => Desired::Up,
                },
            };
            match self.converge(c, dns, phase, dry_run, inv).await {
                Ok(r) => reports.push(r),
                Err(e) => failures.push(format!("{}: {e}", c.name)),
            }
        }
        if !failures.is_empty() {
            return Err(FleetError::Internal(format!(
                "DNS sync failed for {}",
                failures.join("; ")
            )));
        }
        Ok(Answer::Several {
            clusters: reports,
            dry_run,
        })
    }

    /// Points every record of the cluster where its phase says, one sync per cluster at a
    /// time: a delivery racing another (a redelivery, or the drift repair) fails with
    /// `Pending` and is retried by Lambda, so two syncs never both create a record.
    async fn converge(
        &self,
        c: &ClusterConfig,
        dns: &DnsConfig,
        phase: Desired,
        dry_run: bool,
        inv: &Invocation,
    ) -> Result<ClusterSync> {
        if dry_run {
            return self.converge_unlocked(c, dns, phase, true, inv).await;
        }
        let lease = format!("dnssync#{}", c.name);
        // Held for as long as this invocation can run, in decision time: racing deliveries
        // compare it with their own `now`.
        if !self
            .store
            .acquire_lease(&lease, &inv.request_id, inv.budget_ends_at(), inv.now)
            .await?
        {
            return Err(FleetError::Pending(format!(
                "another DNS sync of cluster `{}` is running; this one is retried",
                c.name
            )));
        }
        let result = self.converge_unlocked(c, dns, phase, false, inv).await;
        if let Err(e) = self.store.release_lease(&lease, &inv.request_id).await {
            // It expires at `until` anyway.
            tracing::warn!(cluster = %c.name, error = %e, "releasing the DNS sync lease failed");
        }
        result
    }

    async fn converge_unlocked(
        &self,
        c: &ClusterConfig,
        dns: &DnsConfig,
        phase: Desired,
        dry_run: bool,
        inv: &Invocation,
    ) -> Result<ClusterSync> {
        let goal = match (phase, &dns.on_destroy) {
            (Desired::Up, _) => Goal::PointAt(self.ingress_target(c, dns, inv).await?),
            (Desired::Down, OnDestroy::Keep) => {
                return Ok(ClusterSync {
                    cluster: c.name.clone(),
                    phase: Desired::Down,
                    on_destroy: Some("keep"),
                    target: None,
                    changes: vec![],
                    dry_run,
                })
            }
            (Desired::Down, OnDestroy::Delete) => Goal::Remove,
            (Desired::Down, OnDestroy::PointAt(h)) => Goal::PointAt(Target::Hostname(h.clone())),
        };
        let known = if dns.uses(DnsProvider::Route53) {
            self.store.dns_targets(&c.name).await?
        } else {
            vec![]
        };
        let mut changes = Vec::new();
        let mut failures = Vec::new();
        let mut out_of_time = false;
        for (done, rec) in dns.records.iter().enumerate() {
            // Stop between records rather than be cut off inside one: what is done stays
            // done (the records are the record of it) and the retry plans only the rest.
            if inv.budget.is_within(DEADLINE_MARGIN) {
                failures.push(format!(
                    "out of time after {done} of {} records; the retry continues",
                    dns.records.len()
                ));
                out_of_time = true;
                break;
            }
            match self
                .record(&c.name, rec, &goal, &known, dry_run, inv.budget)
                .await
            {
                Ok(change) => changes.push(change),
                Err(e) => {
                    failures.push(format!("{} {}: {e}", rec.provider.as_str(), rec.name));
                }
            }
        }
        let target = match &goal {
            Goal::PointAt(t) => Some(t.value()),
            Goal::Remove => None,
        };
        if !dry_run && failures.is_empty() && phase == Desired::Up {
            if let Some(t) = &target {
                self.store.remember_dns_target(&c.name, t).await?;
            }
        }
        if !dry_run {
            self.announce(&c.name, &changes).await;
        }
        let report = ClusterSync {
            cluster: c.name.clone(),
            phase,
            on_destroy: None,
            target: Some(target),
            changes,
            dry_run,
        };
        // At info only when a record was (or would be) touched: the hourly drift repair of
        // a cluster whose records are right logs nothing at the default level.
        let line = serde_json::to_string(&report).unwrap_or_default();
        if report.changes.iter().all(|ch| ch.action == Action::None) {
            tracing::debug!(cluster = %c.name, report = %line, "DNS converged");
        } else {
            tracing::info!(cluster = %c.name, report = %line, "DNS converged");
        }
        if out_of_time {
            return Err(FleetError::Pending(failures.join("; ")));
        }
        if !failures.is_empty() {
            return Err(FleetError::Internal(failures.join("; ")));
        }
        Ok(report)
    }

    /// The ingress load balancer's address, waited for within the invocation's time.
    async fn ingress_target(
        &self,
        c: &ClusterConfig,
        dns: &DnsConfig,
        inv: &Invocation,
    ) -> Result<Target> {
        let place = self.config.place(c);
        let access = ClusterAccess::of_active(&self.eks.at(&place), c.eks_name(), &place)
            .await?
            .ok_or_else(|| {
                FleetError::Pending(format!("cluster `{}` is not ACTIVE in EKS", c.name))
            })?;
        let client = self.kube.client(&access).await?;
        // Real time: the load balancer appears in real time, within the invocation's own.
        let wait = Duration::from_secs(u64::from(dns.ingress_wait_seconds));
        let until = inv
            .budget
            .less(DEADLINE_MARGIN)
            .min(Instant::now() + wait)
            .ends();
        read_ingress(&client, &dns.ingress_service, until).await
    }
}

impl fleet_shared::runner::Function for Updater {
    async fn cold_start() -> Result<Self> {
        Updater::from_cold_start().await
    }

    async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        Updater::handle(self, event, inv).await
    }
}
