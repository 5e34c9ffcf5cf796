//! The scheduler's handler: decode the request, then reconcile, plan, override or report.

use std::sync::Arc;
use std::time::Duration;

use fleet_shared::bus::{detail_type, EventPublisher, SOURCE_SCHEDULER};
use fleet_shared::config::{ClusterConfig, FleetConfig, Mode};
use fleet_shared::kube::{ClusterAccess, KubeConnector};
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_shared::schedule::{Decision, Desired, Override};
use fleet_shared::state::{
    uptime_hours, AuditEntry, ClusterRecord, RecordedState, StateStore, TransitionKind,
};
use fleet_shared::{FleetError, Result};
use futures::stream::{self, StreamExt};
use jiff::{Timestamp, ToSpan};
use serde::Serialize;
use serde_json::{json, Value};

use crate::bootstrap;
use crate::eks::{Eks, Want};
use crate::reconcile::{
    config_fingerprint, creation_token_candidate, next_step, ownership, summarize,
    teardown_deletable, trust_recorded, Observed, ObservedCluster, Ownership, Situation, Step,
};
use crate::request::{self, Request, Until};
use crate::teardown;

/// Clusters reconciled at once: enough to finish 200 clusters well inside a tick, few
/// enough to stay under EKS's API rate limits.
const CONCURRENCY: usize = 16;
/// Stop starting work this long before Lambda's deadline.
const DEADLINE_MARGIN: Duration = Duration::from_secs(3);
/// How far ahead a plan looks for the next change of desired state.
const HORIZON_DAYS: i64 = 40;

pub struct Scheduler {
    pub config: Arc<FleetConfig>,
    /// This fleet's name: the `fleet:managed-by` value it creates and acts on.
    pub stack: String,
    pub eks: Eks,
    pub store: StateStore,
    pub bus: EventPublisher,
    pub notifier: Notifier,
    pub kube: Arc<KubeConnector>,
    pub s3: aws_sdk_s3::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
}

/// What one tick did for one cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub desired: Desired,
    pub reason: String,
    pub actual: String,
    pub step: String,
    /// `done`, `waiting`, `steady`, `backoff`, `failed`, `skipped`, `foreign`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a step had to skip or leave behind.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Backoff after the n-th consecutive failure: 2, 4, 8, 16, then 30 minutes.
pub fn backoff(attempts: u32) -> jiff::Span {
    let minutes = 2i64.saturating_pow(attempts.clamp(1, 5)).min(30);
    minutes.minutes()
}

impl Scheduler {
    /// Wires the scheduler from the environment: config, secrets and clients, once.
    pub async fn from_cold_start() -> Result<Self> {
        let cold = fleet_shared::startup::cold_start().await?;
        let table = fleet_shared::startup::table_name()?;
        let notifier = cold.notifier().await?;
        let bus = cold.publisher(SOURCE_SCHEDULER);
        let stack = fleet_shared::startup::stack_name()?;
        Ok(Scheduler {
            eks: Eks::new(aws_sdk_eks::Client::new(&cold.sdk), stack.clone()),
            stack,
            kube: Arc::new(KubeConnector::from_env(&cold.sdk)),
            s3: aws_sdk_s3::Client::new(&cold.sdk),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&cold.sdk),
            store: StateStore::new(aws_sdk_dynamodb::Client::new(&cold.sdk), table),
            bus,
            notifier,
            config: Arc::new(cold.config),
        })
    }

    pub async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        match request::parse(&event)? {
            Request::Reconcile => self.reconcile_all(&inv).await,
            Request::Plan { at } => self.plan(at.unwrap_or(inv.now)).await,
            Request::Override {
                cluster,
                desired,
                until,
                reason,
            } => {
                self.set_override(&inv, &cluster, desired, until, reason)
                    .await
            }
            Request::Clear { cluster } => self.clear_override(&inv, &cluster).await,
            Request::Status => self.status(inv.now).await,
        }
    }

    fn cluster(&self, name: &str) -> Result<&ClusterConfig> {
        self.config.cluster(name).ok_or_else(|| {
            let known: Vec<&str> = self
                .config
                .clusters
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            FleetError::bad_request(
                "cluster",
                format!(
                    "unknown cluster `{name}`: configured are {}",
                    known.join(", ")
                ),
            )
        })
    }

    fn want(c: &ClusterConfig, desired: Desired) -> Want {
        Want {
            addons: desired == Desired::Up && !c.blueprint.addons.is_empty(),
            fargate: desired == Desired::Down && c.mode == Mode::Destroy,
            access: desired == Desired::Up && !c.blueprint.access.is_empty(),
        }
    }

    fn access(name: &str, o: &ObservedCluster) -> ClusterAccess {
        ClusterAccess {
            name: name.to_string(),
            endpoint: o.endpoint.clone().unwrap_or_default(),
            ca_data: o.ca_data.clone(),
        }
    }

    /// EKS, whose it is, plus (while a destroy-mode teardown still has running
    /// nodegroups) the load balancers that must not be orphaned.
    async fn observe(
        &self,
        c: &ClusterConfig,
        desired: Desired,
        recorded: &RecordedState,
    ) -> Result<Observed> {
        let mut described = self.eks.describe(&c.name).await?;
        self.classify(&mut described, recorded);
        self.look_inside(c, desired, described).await
    }

    /// Decides whose a described cluster is (see [`ownership`]).
    fn classify(&self, observed: &mut Observed, recorded: &RecordedState) {
        if let Observed::Present(o) = observed {
            o.ownership = ownership(o, recorded, &self.stack);
        }
    }

    /// The rest of [`Self::observe`] for a cluster already described.
    async fn look_inside(
        &self,
        c: &ClusterConfig,
        desired: Desired,
        mut observed: Observed,
    ) -> Result<Observed> {
        if let Observed::Present(o) = &mut observed {
            self.eks
                .look_inside(&c.name, o, Self::want(c, desired))
                .await?;
            let tearing_down = desired == Desired::Down
                && c.mode == Mode::Destroy
                && o.ownership == Ownership::Ours
                && o.status == "ACTIVE"
                && !teardown_deletable(c, o).is_empty();
            if tearing_down {
                let client = self.kube.client(&Self::access(&c.name, o)).await;
                o.teardown = Some(teardown::observe(client, &self.elb, &c.name).await?);
            }
        }
        Ok(observed)
    }

    async fn reconcile_all(&self, inv: &Invocation) -> Result<Value> {
        // One instant for all, in real time: clusters that wait for a free slot get what is
        // left, not a budget of their own that would end past Lambda's deadline.
        let stop_at = tokio::time::Instant::from_std(inv.budget.less(DEADLINE_MARGIN).ends());
        let names: Vec<&str> = self
            .config
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        // One batch read for every cluster's record. If it fails the tick fails before
        // acting on anything, and the next tick starts over.
        let mut records = self.store.clusters(&names).await?;
        let outcomes: Vec<Outcome> = stream::iter(self.config.clusters.iter())
            .map(|c| {
                let record = records.remove(&c.name).unwrap_or_default();
                async move {
                    match tokio::time::timeout_at(stop_at, self.reconcile_recorded(c, record, inv))
                        .await
                    {
                        Ok(outcome) => outcome,
                        Err(_) => Outcome {
                            name: c.name.clone(),
                            desired: c.schedule().decide(inv.now, None).desired,
                            reason: String::new(),
                            actual: "unknown".into(),
                            step: "none".into(),
                            result: "skipped",
                            error: Some(
                                "out of time before the Lambda deadline; the next tick continues"
                                    .into(),
                            ),
                            notes: vec![],
                        },
                    }
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        Ok(json!({ "clusters": outcomes }))
    }

    /// One cluster, one step, reading its record first (overrides act at once).
    async fn reconcile_one(&self, c: &ClusterConfig, inv: &Invocation) -> Outcome {
        let now = inv.now;
        match self.store.cluster(&c.name).await {
            Ok(record) => self.reconcile_recorded(c, record, inv).await,
            Err(e) => {
                tracing::error!(cluster = %c.name, error = %e, "reading state failed");
                Outcome {
                    name: c.name.clone(),
                    desired: c.schedule().decide(now, None).desired,
                    reason: String::new(),
                    actual: "unknown".into(),
                    step: "none".into(),
                    result: "failed",
                    error: Some(e.to_string()),
                    notes: vec![],
                }
            }
        }
    }

    /// One cluster, one step. Errors end up in the outcome: one cluster's failure never
    /// stops the others.
    async fn reconcile_recorded(
        &self,
        c: &ClusterConfig,
        mut record: ClusterRecord,
        inv: &Invocation,
    ) -> Outcome {
        let now = inv.now;
        let mut outcome = Outcome {
            name: c.name.clone(),
            desired: Desired::Down,
            reason: String::new(),
            actual: "unknown".into(),
            step: "none".into(),
            result: "failed",
            error: None,
            notes: vec![],
        };
        let decision = c.schedule().decide(now, record.over.as_ref());
        outcome.desired = decision.desired;
        outcome.reason = decision.reason.clone();
        if let Some(until) = record.state.backoff_until.filter(|u| *u > now) {
            outcome.result = "backoff";
            outcome.step = format!("wait: backing off until {until}");
            outcome.error = record.state.last_error.clone();
            return outcome;
        }
        let mut described = match self.eks.describe(&c.name).await {
            Ok(d) => d,
            Err(e) => return self.after_error(c, &record, now, outcome, e).await,
        };
        self.classify(&mut described, &record.state);
        if let Observed::Present(o) = &described {
            // First sight of the incarnation the fleet's token created: it is the fleet's
            // (the token is spent; the next creation takes a new one).
            let unconfirmed =
                record.state.owned_generation.as_deref() != Some(o.generation.as_str());
            if o.ownership == Ownership::Ours && unconfirmed && !o.generation.is_empty() {
                if let Err(e) = self.store.mark_owned(&c.name, &o.generation).await {
                    return self.after_error(c, &record, now, outcome, e).await;
                }
                record.state.owned_generation = Some(o.generation.clone());
            }
        }
        // Wanted up again (an override) before the teardown ended: the next teardown's
        // load-balancer wait counts from its own start, not from an earlier evening's.
        if decision.desired == Desired::Up && record.state.teardown_started.is_some() {
            if let Err(e) = self.store.clear_teardown_started(&c.name).await {
                return self.after_error(c, &record, now, outcome, e).await;
            }
            record.state.teardown_started = None;
        }
        let fingerprint = config_fingerprint(c);
        let situation = Situation {
            desired: decision.desired,
            cluster: c,
            observed: &described,
            recorded: &record.state,
            now,
        };
        if trust_recorded(&situation, &described, &fingerprint) {
            outcome.actual = summarize(&described);
            outcome.step = Step::Steady.describe();
            outcome.result = "steady";
            return outcome;
        }
        let observed = match self.look_inside(c, decision.desired, described).await {
            Ok(o) => o,
            Err(e) => return self.after_error(c, &record, now, outcome, e).await,
        };
        outcome.actual = summarize(&observed);
        // The load-balancer wait counts from the first tick that can delete a nodegroup.
        if let Observed::Present(o) = &observed {
            if o.teardown.is_some() && record.state.teardown_started.is_none() {
                if let Err(e) = self.store.mark_teardown_started(&c.name, now).await {
                    return self.after_error(c, &record, now, outcome, e).await;
                }
                record.state.teardown_started = Some(now);
            }
        }
        let step = next_step(Situation {
            desired: decision.desired,
            cluster: c,
            observed: &observed,
            recorded: &record.state,
            now,
        });
        outcome.step = step.describe();
        if let Step::DeleteNodegroups { notes, .. } = &step {
            outcome.notes = notes.clone();
        }
        tracing::info!(cluster = %c.name, desired = %decision.desired, step = %outcome.step, "reconcile");
        let result = match self
            .execute(c, &step, &observed, &record, inv, &decision.reason)
            .await
        {
            Ok(result) => result,
            Err(e) => return self.after_error(c, &record, now, outcome, e).await,
        };
        if record.state.attempts > 0 && !matches!(result, "failed") {
            if let Err(e) = self.store.clear_backoff(&c.name).await {
                tracing::warn!(cluster = %c.name, error = %e, "clearing backoff failed");
            }
        }
        if step == Step::Steady && matches!(observed, Observed::Present(_)) {
            // Lets the next ticks trust the recorded phase (see `trust_recorded`); a lost
            // write only costs another full look.
            if let Err(e) = self.store.mark_checked(&c.name, now, &fingerprint).await {
                tracing::warn!(cluster = %c.name, error = %e, "recording the full look failed");
            }
        }
        outcome.result = result;
        outcome
    }

    /// Retryable errors back off quietly; the rest are recorded as a failed transition,
    /// published and sent to Slack (once per distinct error).
    async fn after_error(
        &self,
        c: &ClusterConfig,
        record: &ClusterRecord,
        now: Timestamp,
        mut outcome: Outcome,
        e: FleetError,
    ) -> Outcome {
        let attempts = record.state.attempts.saturating_add(1);
        let retry_at = now.checked_add(backoff(attempts)).unwrap_or(now);
        outcome.error = Some(e.to_string());
        if e.is_retryable() {
            tracing::warn!(cluster = %c.name, error = %e, %retry_at, "retryable error; backing off");
            outcome.result = "backoff";
            if let Err(e) = self.store.set_backoff(&c.name, retry_at, attempts).await {
                tracing::error!(cluster = %c.name, error = %e, "recording backoff failed");
            }
            return outcome;
        }
        tracing::error!(cluster = %c.name, step = %outcome.step, error = %e, "step failed");
        outcome.result = "failed";
        self.report_failure(c, &outcome.step, &e.to_string(), now, retry_at, attempts)
            .await;
        outcome
    }

    async fn report_failure(
        &self,
        c: &ClusterConfig,
        step: &str,
        error: &str,
        now: Timestamp,
        retry_at: Timestamp,
        attempts: u32,
    ) {
        let is_new = match self
            .store
            .record_failure(&c.name, now, error, retry_at, attempts)
            .await
        {
            Ok(new) => new,
            Err(e) => {
                tracing::error!(cluster = %c.name, error = %e, "recording the failure failed");
                true
            }
        };
        if !is_new {
            return;
        }
        let detail = json!({
            "cluster": c.name,
            "region": self.config.fleet.region,
            "step": step,
            "error": error,
            "retry_at": retry_at.to_string(),
            "at": now.to_string(),
        });
        if let Err(e) = self
            .bus
            .publish(detail_type::CLUSTER_TRANSITION_FAILED, &detail)
            .await
        {
            tracing::error!(cluster = %c.name, error = %e, "publishing Cluster Transition Failed failed");
        }
        let text = format!(
            ":warning: cluster `{}`: `{step}` failed: {error}. Retrying after {retry_at}.",
            c.name
        );
        if let Err(e) = self.notifier.send(&text).await {
            tracing::warn!(cluster = %c.name, error = %e, "Slack notification failed");
        }
    }

    /// Records a destructive step (or an adoption) in the audit trail before it is taken:
    /// what decided it and which invocation. A step that cannot be recorded is not taken.
    async fn audit(
        &self,
        c: &ClusterConfig,
        step: &Step,
        observed: &Observed,
        inv: &Invocation,
        decided_by: &str,
    ) -> Result<()> {
        let generation = match observed {
            Observed::Present(o) => o.generation.clone(),
            Observed::Absent => String::new(),
        };
        let entry = AuditEntry {
            at: inv.now,
            step: step.describe(),
            decided_by: decided_by.to_string(),
            request_id: inv.request_id.clone(),
            generation,
        };
        self.store.audit(&c.name, &entry).await
    }

    /// Carries out one step. Returns the outcome's `result`. `reason` is what the schedule
    /// (or an override) decided, for the audit trail.
    async fn execute(
        &self,
        c: &ClusterConfig,
        step: &Step,
        observed: &Observed,
        record: &ClusterRecord,
        inv: &Invocation,
        reason: &str,
    ) -> Result<&'static str> {
        let name = c.name.as_str();
        let now = inv.now;
        if step.is_destructive() {
            let decided_by = match step {
                Step::DeleteCluster { failed: true } => {
                    "the cluster is FAILED: deleted to be rebuilt"
                }
                Step::ReplaceFailedNodegroups(_) => "CREATE_FAILED: deleted to be recreated",
                _ => reason,
            };
            self.audit(c, step, observed, inv, decided_by).await?;
        }
        match step {
            Step::Steady => Ok("steady"),
            Step::Foreign(other) => {
                tracing::warn!(cluster = %name, managed_by = ?other, "a cluster of this name is not this fleet's (fleet:managed-by); not touching it");
                Ok("foreign")
            }
            Step::NotCreatedByFleet => {
                tracing::warn!(cluster = %name, "tagged as this fleet's, but not an incarnation it created or adopted; not touching it (adopt = true takes it over)");
                Ok("not-created-by-fleet")
            }
            Step::Adopt => {
                let Observed::Present(o) = observed else {
                    return Ok("waiting");
                };
                if !self
                    .store
                    .adopt(name, &o.generation, now, &inv.request_id)
                    .await?
                {
                    return Ok("steady");
                }
                self.audit(c, step, observed, inv, "adopt = true").await?;
                let text = format!(
                    ":handshake: cluster `{name}` adopted (adopt = true): {} (created {}) is now this fleet's; the schedule acts on it from now on",
                    o.arn.as_deref().unwrap_or("the existing cluster"),
                    o.generation
                );
                if let Err(e) = self.notifier.send(&text).await {
                    tracing::warn!(cluster = %name, error = %e, "Slack notification failed");
                }
                tracing::warn!(cluster = %name, arn = ?o.arn, generation = %o.generation, "adopted");
                Ok("adopted")
            }
            Step::Wait(_) => Ok("waiting"),
            Step::CreateCluster => {
                let candidate = creation_token_candidate(&inv.request_id, name, now);
                let token = self
                    .store
                    .creation_token(name, &record.state, &candidate)
                    .await?;
                self.eks.create_cluster(c, &token).await.map(|_| "done")
            }
            Step::CreateAddons(names) => self.eks.create_addons(c, names).await.map(|_| "done"),
            Step::CreateNodegroups(names) => {
                self.eks.create_nodegroups(c, names).await.map(|_| "done")
            }
            Step::ScaleNodegroups(targets) => self
                .eks
                .scale_nodegroups(name, targets)
                .await
                .map(|_| "done"),
            Step::DeleteNodegroups {
                names,
                notes,
                services,
            } => {
                let mut notes = notes.clone();
                if let (false, Observed::Present(o)) = (services.is_empty(), observed) {
                    let deleted = match self.kube.client(&Self::access(name, o)).await {
                        Ok(client) => teardown::delete_services(&client, services).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = deleted {
                        notes.push(format!("deleting the LoadBalancer Services failed: {e}"));
                    }
                }
                self.eks.delete_nodegroups(name, names).await?;
                if !notes.is_empty() {
                    let text = format!(":warning: cluster `{name}` teardown: {}", notes.join("; "));
                    if let Err(e) = self.notifier.send(&text).await {
                        tracing::warn!(cluster = %name, error = %e, "Slack notification failed");
                    }
                    tracing::warn!(cluster = %name, notes = ?notes, "teardown left something behind");
                }
                Ok("done")
            }
            Step::CreateAccessEntries(principals) => self
                .eks
                .create_access_entries(c, principals)
                .await
                .map(|_| "done"),
            Step::DeleteLoadBalancerServices(services) => {
                let Observed::Present(o) = observed else {
                    return Ok("waiting");
                };
                let client = self.kube.client(&Self::access(name, o)).await?;
                teardown::delete_services(&client, services).await?;
                Ok("done")
            }
            Step::BootstrapThenAnnounce => {
                let Observed::Present(o) = observed else {
                    return Ok("waiting");
                };
                let mut manifests = Vec::new();
                for source in &c.blueprint.bootstrap {
                    let text = bootstrap::load(&self.s3, source).await?;
                    manifests.extend(bootstrap::parse(source, &text)?);
                }
                let client = self.kube.client(&Self::access(name, o)).await?;
                match bootstrap::apply(&client, manifests).await? {
                    bootstrap::Progress::WaitingForCrds(pending) => {
                        tracing::info!(cluster = %name, crds = ?pending, "waiting for CRDs to be Established");
                        Ok("waiting")
                    }
                    bootstrap::Progress::Applied(n) => {
                        tracing::info!(cluster = %name, documents = n, "bootstrap applied");
                        self.announce_up(c, o, record, now).await
                    }
                }
            }
            Step::DeleteCluster { failed: false } => {
                self.eks.delete_cluster(name).await.map(|_| "done")
            }
            Step::DeleteCluster { failed: true } => {
                self.eks.delete_cluster(name).await?;
                self.fail_and_continue(
                    c,
                    step,
                    "the cluster is in FAILED status; deleted to be rebuilt",
                    record,
                    now,
                )
                .await
            }
            Step::ReplaceFailedNodegroups(names) => {
                self.eks.delete_nodegroups(name, names).await?;
                let issues = match observed {
                    Observed::Present(o) => failed_nodegroup_issues(o, names),
                    Observed::Absent => String::new(),
                };
                let error = format!(
                    "nodegroup {} is CREATE_FAILED{issues}; deleted to be recreated",
                    names.join(",")
                );
                self.fail_and_continue(c, step, &error, record, now).await
            }
            Step::AnnounceUp => match observed {
                Observed::Present(o) => self.announce_up(c, o, record, now).await,
                Observed::Absent => Ok("waiting"),
            },
            Step::AnnounceDown => {
                let generation = match observed {
                    Observed::Present(o) => o.generation.clone(),
                    Observed::Absent => record
                        .state
                        .generation
                        .clone()
                        .unwrap_or_else(|| "none".into()),
                };
                let detail = json!({
                    "cluster": name,
                    "region": self.config.fleet.region,
                    "mode": c.mode,
                    "at": now.to_string(),
                });
                self.announce(c, Desired::Down, &generation, record, detail, now)
                    .await
            }
            Step::RecordDown => {
                self.store
                    .record_transition(&c.name, Desired::Down, "none", now, "down (never built)")
                    .await?;
                self.store
                    .mark_announced(&c.name, Desired::Down, "none")
                    .await?;
                Ok("done")
            }
        }
    }

    async fn announce_up(
        &self,
        c: &ClusterConfig,
        o: &ObservedCluster,
        record: &ClusterRecord,
        now: Timestamp,
    ) -> Result<&'static str> {
        let detail = json!({
            "cluster": c.name,
            "endpoint": o.endpoint,
            "region": self.config.fleet.region,
            "mode": c.mode,
            "generation": o.generation,
            "at": now.to_string(),
        });
        self.announce(c, Desired::Up, &o.generation, record, detail, now)
            .await
    }

    async fn fail_and_continue(
        &self,
        c: &ClusterConfig,
        step: &Step,
        error: &str,
        record: &ClusterRecord,
        now: Timestamp,
    ) -> Result<&'static str> {
        let attempts = record.state.attempts.saturating_add(1);
        let retry_at = now.checked_add(backoff(attempts)).unwrap_or(now);
        self.report_failure(c, &step.describe(), error, now, retry_at, attempts)
            .await;
        Ok("failed")
    }

    /// Records the transition once, then publishes its event. If publishing fails the
    /// phase stays unannounced and the next tick publishes again: at least once.
    async fn announce(
        &self,
        c: &ClusterConfig,
        phase: Desired,
        generation: &str,
        record: &ClusterRecord,
        detail: Value,
        now: Timestamp,
    ) -> Result<&'static str> {
        let detail_text = match phase {
            Desired::Up => format!("ready, generation {generation}"),
            Desired::Down => format!("down ({})", mode_name(c.mode)),
        };
        let recorded = self
            .store
            .record_transition(&c.name, phase, generation, now, &detail_text)
            .await?;
        if !recorded {
            let ours = record.state.phase == Some(phase)
                && record.state.generation.as_deref() == Some(generation);
            // Recorded earlier but never announced: publish again, unless another tick is
            // announcing it right now (claims go stale after two minutes).
            let claimed = ours
                && self
                    .store
                    .claim_announcement(&c.name, phase, generation, now, 2.minutes())
                    .await?;
            if !claimed {
                return Ok("steady");
            }
        }
        let dt = match phase {
            Desired::Up => detail_type::CLUSTER_READY,
            Desired::Down => detail_type::CLUSTER_DESTROYED,
        };
        self.bus.publish(dt, &detail).await?;
        self.store
            .mark_announced(&c.name, phase, generation)
            .await?;
        tracing::info!(cluster = %c.name, event = dt, "published");
        Ok("done")
    }

    async fn plan(&self, at: Timestamp) -> Result<Value> {
        let rows: Vec<Result<Value>> = stream::iter(self.config.clusters.iter())
            .map(|c| self.plan_one(c, at))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let clusters = rows.into_iter().collect::<Result<Vec<Value>>>()?;
        Ok(json!({ "at": at.to_string(), "clusters": clusters }))
    }

    async fn plan_one(&self, c: &ClusterConfig, at: Timestamp) -> Result<Value> {
        let record = self.store.cluster(&c.name).await?;
        let schedule = c.schedule();
        let decision = schedule.decide(at, record.over.as_ref());
        let observed = self.observe(c, decision.desired, &record.state).await?;
        let step = next_step(Situation {
            desired: decision.desired,
            cluster: c,
            observed: &observed,
            recorded: &record.state,
            now: at,
        });
        let next_step = match record.state.backoff_until.filter(|u| *u > at) {
            Some(until) => format!("wait: backing off until {until}, then {}", step.describe()),
            None => step.describe(),
        };
        Ok(json!({
            "name": c.name,
            "desired": decision.desired,
            "actual": summarize(&observed),
            "next_step": next_step,
            "reason": decision.reason,
            "rule": decision.rule,
            "next_change": schedule.next_change(at, record.over.as_ref(), HORIZON_DAYS).map(|t| t.to_string()),
        }))
    }

    async fn set_override(
        &self,
        inv: &Invocation,
        name: &str,
        desired: Desired,
        until: Until,
        reason: String,
    ) -> Result<Value> {
        let c = self.cluster(name)?;
        let until = until.resolve(inv.now)?;
        if until <= inv.now {
            return Err(FleetError::bad_request(
                "until",
                format!("{until} is not in the future (now is {})", inv.now),
            ));
        }
        if c.protect && desired == Desired::Down {
            return Err(FleetError::bad_request(
                "action",
                format!("cluster `{name}` has protect = true: it is never taken down"),
            ));
        }
        let o = Override {
            desired,
            until,
            reason,
            set_at: inv.now,
        };
        self.store.set_override(name, &o).await?;
        tracing::info!(cluster = %name, desired = %desired, %until, "override set");
        // Act now rather than on the next tick.
        let outcome = self.reconcile_one(c, inv).await;
        Ok(json!({ "cluster": name, "override": o, "reconcile": outcome }))
    }

    async fn clear_override(&self, inv: &Invocation, name: &str) -> Result<Value> {
        let c = self.cluster(name)?;
        let cleared = self.store.clear_override(name).await?;
        let outcome = self.reconcile_one(c, inv).await;
        Ok(json!({
            "cluster": name,
            "cleared": cleared.is_some(),
            "override": cleared,
            "reconcile": outcome,
        }))
    }

    async fn status(&self, now: Timestamp) -> Result<Value> {
        let rows: Vec<Result<Value>> = stream::iter(self.config.clusters.iter())
            .map(|c| self.status_one(c, now))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let clusters = rows.into_iter().collect::<Result<Vec<Value>>>()?;
        Ok(json!({ "at": now.to_string(), "clusters": clusters }))
    }

    async fn status_one(&self, c: &ClusterConfig, now: Timestamp) -> Result<Value> {
        let record = self.store.cluster(&c.name).await?;
        let schedule = c.schedule();
        let Decision {
            desired, reason, ..
        } = schedule.decide(now, record.over.as_ref());
        let mut observed = self.eks.describe(&c.name).await?;
        self.classify(&mut observed, &record.state);
        if let Observed::Present(o) = &mut observed {
            let want = Want {
                addons: false,
                fargate: false,
                access: false,
            };
            self.eks.look_inside(&c.name, o, want).await?;
        }
        let audit = self.store.audit_trail(&c.name, 5).await?;
        let month_start = month_start(now)?;
        // Look back far enough to know the phase at the start of the month.
        let lookback = month_start
            .checked_sub((40 * 24).hours())
            .unwrap_or(month_start);
        let history = self.store.transitions(&c.name, lookback, now).await?;
        let up_at_start = history
            .iter()
            .rev()
            .find(|t| t.at < month_start && t.kind != TransitionKind::Failed)
            .is_some_and(|t| t.kind == TransitionKind::Up);
        let uptime = uptime_hours(&history, up_at_start, month_start, now);
        let last: Vec<_> = history.iter().rev().take(5).collect();
        let live_override = record.over.as_ref().filter(|o| o.until > now);
        Ok(json!({
            "name": c.name,
            "mode": c.mode,
            "protect": c.protect,
            "desired": desired,
            "reason": reason,
            "actual": summarize(&observed),
            "endpoint": match &observed { Observed::Present(ObservedCluster { endpoint, .. }) => endpoint.clone(), Observed::Absent => None },
            "recorded": record.state,
            "override": live_override,
            "next_change": schedule.next_change(now, record.over.as_ref(), HORIZON_DAYS).map(|t| t.to_string()),
            "last_transitions": last,
            "last_destructive_steps": audit,
            "uptime_hours_this_month": (uptime * 100.0).round() / 100.0,
        }))
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Destroy => "destroyed",
        Mode::Scale => "scaled to zero",
    }
}

fn failed_nodegroup_issues(o: &ObservedCluster, names: &[String]) -> String {
    let issues: Vec<&str> = o
        .nodegroups
        .iter()
        .filter(|n| names.contains(&n.name))
        .flat_map(|n| n.issues.iter().map(String::as_str))
        .collect();
    if issues.is_empty() {
        String::new()
    } else {
        format!(" ({})", issues.join("; "))
    }
}

/// The first instant of `now`'s month, UTC.
pub fn month_start(now: Timestamp) -> Result<Timestamp> {
    let utc = now.to_zoned(jiff::tz::TimeZone::UTC);
    utc.date()
        .first_of_month()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| FleetError::Internal(format!("month start: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps() {
        let minutes = |n| backoff(n).get_minutes();
        assert_eq!(minutes(1), 2);
        assert_eq!(minutes(2), 4);
        assert_eq!(minutes(4), 16);
        assert_eq!(minutes(5), 30);
        assert_eq!(minutes(50), 30);
    }

    #[test]
    fn month_start_is_utc_midnight() {
        let t: Timestamp = "2026-11-22T10:42:00Z".parse().expect("ts");
        assert_eq!(month_start(t).ok(), "2026-11-01T00:00:00Z".parse().ok());
    }
}
