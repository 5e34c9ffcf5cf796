//! One tick: every cluster observed, its record read, the next step decided and taken
//! ([`crate::execute`]); failures recorded, backed off and announced once.

use fleet_shared::config::{ClusterConfig, KarpenterConfig, Mode, Place};
use fleet_shared::events::ClusterTransitionFailed;
use fleet_shared::kube::ClusterAccess;
use fleet_shared::runner::Invocation;
use fleet_shared::schedule::Desired;
use fleet_shared::state::{AuditEntry, ClusterRecord, RecordedState};
use fleet_shared::{FleetError, Result};
use jiff::Timestamp;

use crate::eks::Want;
use crate::reconcile::{
    config_fingerprint, next_step, ownership, summarize, teardown_deletable, trust_recorded,
    Observed, ObservedCluster, Ownership, Situation, Step,
};
use crate::{karpenter_api, teardown};

use crate::answer::Tick;
use crate::handler::*;

impl Scheduler {
    pub(crate) fn want(c: &ClusterConfig, desired: Desired) -> Want {
        Want {
            addons: desired == Desired::Up && !c.blueprint.addons.is_empty(),
            fargate: desired == Desired::Down && c.mode == Mode::Destroy,
            access: desired == Desired::Up && !c.blueprint.access.is_empty(),
            pod_identity: desired == Desired::Up && !c.blueprint.pod_identity.is_empty(),
        }
    }

    pub(crate) fn access(&self, c: &ClusterConfig, o: &ObservedCluster) -> ClusterAccess {
        ClusterAccess {
            name: c.eks_name().to_string(),
            endpoint: o.endpoint.clone().unwrap_or_default(),
            ca_data: o.ca_data.clone(),
            place: self.config.place(c),
        }
    }

    /// EKS, whose it is, plus (while a destroy-mode teardown still has running
    /// nodegroups) the load balancers that must not be orphaned.
    pub(crate) async fn observe(
        &self,
        c: &ClusterConfig,
        desired: Desired,
        recorded: &RecordedState,
    ) -> Result<Observed> {
        let mut described = self.at(c).eks.describe(c.eks_name()).await?;
        self.classify(&mut described, recorded);
        self.look_inside(c, desired, recorded, described).await
    }

    /// Decides whose a described cluster is (see [`ownership`]).
    pub(crate) fn classify(&self, observed: &mut Observed, recorded: &RecordedState) {
        if let Observed::Present(o) = observed {
            o.ownership = ownership(o, recorded, &self.stack);
        }
    }

    /// The rest of [`Self::observe`] for a cluster already described.
    pub(crate) async fn look_inside(
        &self,
        c: &ClusterConfig,
        desired: Desired,
        recorded: &RecordedState,
        mut observed: Observed,
    ) -> Result<Observed> {
        if let Observed::Present(o) = &mut observed {
            self.at(c)
                .eks
                .look_inside(c.eks_name(), o, Self::want(c, desired))
                .await?;
            let tearing_down = desired == Desired::Down
                && c.mode == Mode::Destroy
                && o.ownership == Ownership::Ours
                && o.status == "ACTIVE"
                && !teardown_deletable(c, o).is_empty();
            if tearing_down {
                let client = self.kube.client(&self.access(c, o)).await;
                o.teardown = Some(teardown::observe(client, &self.at(c).elb, c.eks_name()).await?);
            }
            // Karpenter's side: every evening tick (the cap is re-asserted against GitOps),
            // and in the morning while recorded limits wait to be restored, even if
            // `[cluster.karpenter]` was removed overnight (its NodePools are still capped).
            let restore = recorded
                .nodepool_limits
                .as_ref()
                .is_some_and(|r| r.generation == o.generation);
            let k = c
                .karpenter
                .clone()
                .or_else(|| restore.then(KarpenterConfig::default));
            if let Some(k) = k {
                let look = o.ownership == Ownership::Ours
                    && o.status == "ACTIVE"
                    && ((desired == Desired::Down && c.karpenter.is_some()) || restore);
                if look {
                    let client = self.kube.client(&self.access(c, o)).await;
                    // A destroyed cluster takes every NodePool's nodes with it: the backstop
                    // covers them all. Scale mode leaves unmanaged NodePools running.
                    let all = c.mode == Mode::Destroy;
                    // Boxed: the Kubernetes and EC2 reads' futures are large, and a tick runs
                    // on a 2 MiB worker stack.
                    let aws = self.at(c);
                    let view = karpenter_api::observe(client, &aws.ec2, c.eks_name(), &k, all);
                    o.karpenter = Some(Box::pin(view).await?);
                }
            }
        }
        Ok(observed)
    }

    /// What posting the notices may take: Slack's timeout and a lease on either side.
    const NOTICE_TIME: std::time::Duration = std::time::Duration::from_secs(7);

    pub(crate) async fn reconcile_all(&self, inv: &Invocation) -> Result<Tick> {
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
        let notices = self.notices_due(&records, inv.now);
        // Networks first: a cluster's nodes wait for its network's NAT gateways, and a
        // network goes down only after its clusters are recorded down.
        let (networks, mut gates) = self.reconcile_networks(&records, inv, stop_at).await;
        let inputs: Vec<_> = self
            .config
            .clusters
            .iter()
            .map(|c| {
                (
                    records.remove(&c.name).unwrap_or_default(),
                    gates.remove(&c.name).flatten(),
                )
            })
            .collect();
        let outcomes: Vec<Outcome> = self
            .each_cluster(inputs, |c, (record, gate)| async move {
                match tokio::time::timeout_at(
                    stop_at,
                    self.reconcile_recorded(c, record, gate, inv),
                )
                .await
                {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome {
                        name: c.name.clone(),
                        desired: c.schedule().decide(inv.now, None).desired,
                        reason: String::new(),
                        actual: "unknown".into(),
                        step: "none".into(),
                        result: StepResult::Skipped,
                        error: Some(
                            "out of time before the Lambda deadline; the next tick continues"
                                .into(),
                        ),
                        notes: vec![],
                    },
                }
            })
            .await;
        // After the clusters' work, if what is left of the tick holds Slack's 5-second
        // timeout (posts go at once): else the next tick posts them (a notice is minutes
        // ahead of its transition). Never cut short: a lease taken and its post cut off
        // would lose the notice.
        if stop_at.saturating_duration_since(tokio::time::Instant::now()) >= Self::NOTICE_TIME {
            self.post_notices(notices, inv).await;
        } else if !notices.is_empty() {
            tracing::warn!("out of time for the pre-shutdown notices; the next tick posts them");
        }
        Ok(Tick {
            clusters: outcomes,
            networks,
        })
    }

    /// One cluster, one step, reading its record first (overrides act at once).
    /// A cluster with a network takes its network's tick first (its gate).
    pub(crate) async fn reconcile_one(&self, c: &ClusterConfig, inv: &Invocation) -> Outcome {
        let now = inv.now;
        let gate = match self
            .config
            .networks
            .iter()
            .find(|n| c.network.as_ref() == Some(&n.name))
        {
            None => None,
            Some(n) => {
                let names: Vec<&str> = self
                    .config
                    .clusters_of(&n.name)
                    .map(|c| c.name.as_str())
                    .collect();
                let read = match self.store.clusters(&names).await {
                    Ok(records) => self.known_networks().await.map(|known| (records, known)),
                    Err(e) => Err(e),
                };
                match read {
                    Ok((records, known)) => {
                        let outcome = self.network_tick(n, &records, inv, &known).await;
                        self.gates(&[outcome]).remove(&c.name).flatten()
                    }
                    Err(e) => Some(format!(
                        "network {}: reading its clusters' state or where it lives failed: {e}",
                        n.name
                    )),
                }
            }
        };
        match self.store.cluster(&c.name).await {
            Ok(record) => self.reconcile_recorded(c, record, gate, inv).await,
            Err(e) => {
                tracing::error!(cluster = %c.name, error = %e, "reading state failed");
                Outcome {
                    name: c.name.clone(),
                    desired: c.schedule().decide(now, None).desired,
                    reason: String::new(),
                    actual: "unknown".into(),
                    step: "none".into(),
                    result: StepResult::Failed,
                    error: Some(e.to_string()),
                    notes: vec![],
                }
            }
        }
    }

    /// One cluster, one step. Errors end up in the outcome: one cluster's failure never
    /// stops the others.
    pub(crate) async fn reconcile_recorded(
        &self,
        c: &ClusterConfig,
        mut record: ClusterRecord,
        network_gate: Option<String>,
        inv: &Invocation,
    ) -> Outcome {
        let now = inv.now;
        let mut outcome = Outcome {
            name: c.name.clone(),
            desired: Desired::Down,
            reason: String::new(),
            actual: "unknown".into(),
            step: "none".into(),
            result: StepResult::Failed,
            error: None,
            notes: vec![],
        };
        let decision = c.schedule().decide(now, record.over.as_ref());
        outcome.desired = decision.desired;
        outcome.reason = decision.reason.clone();
        if let Some(until) = record.state.backoff_until.filter(|u| *u > now) {
            outcome.result = StepResult::Backoff;
            outcome.step = format!("wait: backing off until {until}");
            outcome.error = record.state.last_error.clone();
            return outcome;
        }
        let home = self.home(c);
        if let Some(there) = record.state.home.clone().filter(|h| *h != home) {
            let gone = match self.left_home(c, &record.state, &there).await {
                Ok(()) => self.store.forget_home(&c.name).await,
                Err(e) => Err(e),
            };
            if let Err(e) = gone {
                return self.after_error(c, &record, now, outcome, e).await;
            }
            record.state.home = None;
        }
        let mut described = match self.at(c).eks.describe(c.eks_name()).await {
            Ok(d) => d,
            Err(e) => return self.after_error(c, &record, now, outcome, e).await,
        };
        self.classify(&mut described, &record.state);
        // About to be built, and the fleet owns an incarnation whose home was never
        // recorded (owned before homes were, or its home forgotten when it was
        // destroyed): it may run where every cluster lived before accounts, the hub's
        // region under its fleet name. One look there before building.
        let homeless = record.state.home.is_none() && record.state.owned_generation.is_some();
        if homeless && decision.desired == Desired::Up && matches!(described, Observed::Absent) {
            let legacy = format!(
                "{}/{}",
                Place::hub(self.config.fleet.region.clone()),
                c.name
            );
            if legacy != home {
                if let Err(e) = self.left_home(c, &record.state, &legacy).await {
                    return self.after_error(c, &record, now, outcome, e).await;
                }
            }
        }
        if let Observed::Present(o) = &described {
            // First sight of the incarnation the fleet's token created: it is the fleet's
            // (the token is spent; the next creation takes a new one). Where it lives is
            // written with it (and once for an incarnation owned before homes were).
            let unconfirmed =
                record.state.owned_generation.as_deref() != Some(o.generation.as_str());
            let homeless = record.state.home.is_none();
            if o.ownership == Ownership::Ours
                && (unconfirmed || homeless)
                && !o.generation.is_empty()
            {
                if let Err(e) = self.store.mark_owned(&c.name, &o.generation, &home).await {
                    return self.after_error(c, &record, now, outcome, e).await;
                }
                record.state.owned_generation = Some(o.generation.clone());
                record.state.home = Some(home);
            }
        }
        // Wanted up again (an override) before the teardown ended: the next teardown's
        // load-balancer wait counts from its own start, not from an earlier evening's.
        let evening_marks = record.state.teardown_started.is_some()
            || record.state.karpenter_drain_started.is_some();
        if decision.desired == Desired::Up && evening_marks {
            if let Err(e) = self.store.clear_teardown_started(&c.name).await {
                return self.after_error(c, &record, now, outcome, e).await;
            }
            record.state.teardown_started = None;
            record.state.karpenter_drain_started = None;
        }
        let fingerprint = config_fingerprint(c);
        let situation = Situation {
            desired: decision.desired,
            cluster: c,
            observed: &described,
            recorded: &record.state,
            now,
            network_wait: network_gate.as_deref(),
        };
        if trust_recorded(&situation, &described, &fingerprint) {
            outcome.actual = summarize(&described);
            outcome.step = Step::Steady.describe();
            outcome.result = StepResult::Steady;
            return outcome;
        }
        // Boxed, as the step below: this future is polled on every tick's stack.
        let observed =
            match Box::pin(self.look_inside(c, decision.desired, &record.state, described)).await {
                Ok(o) => o,
                Err(e) => return self.after_error(c, &record, now, outcome, e).await,
            };
        outcome.actual = summarize(&observed);
        if let Observed::Present(o) = &observed {
            let conflicts = crate::reconcile::pod_identity_conflicts(
                &c.blueprint.pod_identity,
                &o.pod_identities,
            );
            if !conflicts.is_empty() {
                tracing::warn!(cluster = %c.name, conflicts = ?conflicts, "Pod Identity associations someone else made with another role: left alone");
                outcome.notes.push(format!(
                    "Pod Identity associations not the fleet's, with another role than the blueprint's (left alone): {}",
                    conflicts.join(", ")
                ));
            }
        }
        // An evening ends a morning that had not finished: its start no longer dates one.
        if decision.desired == Desired::Down && record.state.rising_since.is_some() {
            if let Err(e) = self.store.clear_rising(&c.name).await {
                return self.after_error(c, &record, now, outcome, e).await;
            }
            record.state.rising_since = None;
            record.state.bootstrapped = None;
        }
        // The load-balancer wait counts from the first tick that can delete a nodegroup.
        if let Observed::Present(o) = &observed {
            if o.teardown.is_some() && record.state.teardown_started.is_none() {
                if let Err(e) = self.store.mark_teardown_started(&c.name, now).await {
                    return self.after_error(c, &record, now, outcome, e).await;
                }
                record.state.teardown_started = Some(now);
            }
            // Every wait for Karpenter counts from the evening's first look at it.
            let evening = decision.desired == Desired::Down && o.karpenter.is_some();
            if evening && record.state.karpenter_drain_started.is_none() {
                if let Err(e) = self.store.mark_karpenter_drain_started(&c.name, now).await {
                    return self.after_error(c, &record, now, outcome, e).await;
                }
                record.state.karpenter_drain_started = Some(now);
            }
        }
        let step = next_step(Situation {
            desired: decision.desired,
            cluster: c,
            observed: &observed,
            recorded: &record.state,
            now,
            network_wait: network_gate.as_deref(),
        });
        outcome.step = step.describe();
        outcome.notes.extend(step.notes());
        if step == Step::Steady {
            tracing::debug!(cluster = %c.name, desired = %decision.desired, step = %outcome.step, "reconcile");
        } else {
            tracing::info!(cluster = %c.name, desired = %decision.desired, step = %outcome.step, "reconcile");
        }
        // The morning's first step dates it (`Cluster Ready`'s `took_seconds`).
        let announced_up = record.state.phase == Some(Desired::Up) && record.state.announced;
        if step.is_rise() && !announced_up && record.state.rising_since.is_none() {
            if let Err(e) = self.store.mark_rising(&c.name, now).await {
                return self.after_error(c, &record, now, outcome, e).await;
            }
            record.state.rising_since = Some(now);
        }
        // Boxed: a step's future holds its largest adapter call's (see `look_inside`).
        let mut result =
            match Box::pin(self.execute(c, &step, &observed, &record, inv, &decision.reason)).await
            {
                Ok(result) => result,
                Err(e) => return self.after_error(c, &record, now, outcome, e).await,
            };
        // The quick steps of a morning (access entries, IRSA, Pod Identity, the add-ons
        // nodes need) are API calls that finish at once: the next one is taken in the
        // same tick, as the previous one left the cluster, instead of a tick later each,
        // up to the nodegroups.
        let mut observed = observed;
        let mut taken = step.clone();
        for _ in 0..4 {
            if result != StepResult::Done || !taken.is_quick() {
                break;
            }
            crate::observed::reflect(&mut observed, &mut record.state, &taken);
            let next = next_step(Situation {
                desired: decision.desired,
                cluster: c,
                observed: &observed,
                recorded: &record.state,
                now,
                network_wait: network_gate.as_deref(),
            });
            // The nodegroups (or their scale-up) may end the run: created, they are
            // waited for on later ticks anyway.
            let nodes = matches!(next, Step::CreateNodegroups(_))
                || matches!(&next, Step::ScaleNodegroups(_) if next.is_rise());
            if !(next.is_quick() || nodes) || next == taken {
                break;
            }
            outcome.step = format!("{}; then {}", outcome.step, next.describe());
            tracing::info!(cluster = %c.name, step = %next.describe(), "reconcile (same tick)");
            result =
                match Box::pin(self.execute(c, &next, &observed, &record, inv, &decision.reason))
                    .await
                {
                    Ok(result) => result,
                    Err(e) => return self.after_error(c, &record, now, outcome, e).await,
                };
            taken = next;
        }
        if record.state.attempts > 0 && result != StepResult::Failed {
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
    /// Where `c`'s incarnation lives, as [`RecordedState::home`] writes it:
    /// `<account name or hub>/<region>/<EKS name>`.
    pub(crate) fn home(&self, c: &ClusterConfig) -> String {
        format!("{}/{}", self.config.place(c), c.eks_name())
    }

    /// The config moved `c` (account, region or EKS name) away from `there`, where the
    /// fleet's incarnation was recorded (or may be). `Ok`: gone from there (or not the
    /// fleet's one any more), and the cluster may be built where the config says. Still
    /// there: an error, and nothing is built, so that the old one is not left billing
    /// out of the fleet's sight; it names the way out.
    ///
    /// # Errors
    /// [`FleetError::Config`] while the old incarnation runs, or when the fleet cannot
    /// look there (its account no longer configured, or IAM refusing: its region left
    /// the deploy); EKS's otherwise.
    pub(crate) async fn left_home(
        &self,
        c: &ClusterConfig,
        recorded: &RecordedState,
        there: &str,
    ) -> Result<()> {
        let key = self.config.cluster_key(c);
        // Not written by this code: nothing to hold on to.
        let Some((place, eks_name)) = parse_home(there) else {
            return Ok(());
        };
        let account = place.account.as_deref().unwrap_or("hub");
        if place
            .account
            .as_deref()
            .is_some_and(|a| self.config.account(a).is_none())
        {
            return Err(FleetError::config(
                key,
                format!("cluster `{}` was built in {there}, and account `{account}` is no longer configured: the fleet cannot see whether it still runs there. Configure the account again until it is gone (delete it there, or move the cluster back until it is down), or clear the record", c.name),
            ));
        }
        let observed = match self.aws.at(&place).eks.describe(&eks_name).await {
            Ok(o) => o,
            Err(e) if e.is_access_denied() => {
                return Err(FleetError::config(
                    key,
                    format!("cluster `{}` was built in {there}, and the fleet may no longer look there ({e}): keep that account and region in the deploy (make deploy and make deploy-spoke take them from the config) until the move is done; move it back until the schedule has it down, then move it", c.name),
                ))
            }
            Err(e) => return Err(e),
        };
        let still_there = matches!(&observed, Observed::Present(o)
            if recorded.owned_generation.as_deref() == Some(o.generation.as_str()));
        if still_there {
            return Err(FleetError::config(
                key,
                format!("cluster `{}` still runs in {there}, and the config puts it in {}: the fleet does not build a second one and leave the first billing. Move it back until the schedule has it down{}, or delete it there; then move it", c.name, self.home(c), if c.mode == Mode::Scale { " (scale mode keeps the cluster: delete it there)" } else { "" }),
            ));
        }
        tracing::info!(cluster = %c.name, from = %there, to = %self.home(c), "the cluster moved; the old incarnation is gone");
        Ok(())
    }

    pub(crate) async fn after_error(
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
            outcome.result = StepResult::Backoff;
            if let Err(e) = self.store.set_backoff(&c.name, retry_at, attempts).await {
                tracing::error!(cluster = %c.name, error = %e, "recording backoff failed");
            }
            return outcome;
        }
        tracing::error!(cluster = %c.name, step = %outcome.step, error = %e, "step failed");
        outcome.result = StepResult::Failed;
        self.report_failure(c, &outcome.step, &e.to_string(), now, retry_at, attempts)
            .await;
        outcome
    }

    pub(crate) async fn report_failure(
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
        let event = ClusterTransitionFailed {
            cluster: c.name.clone(),
            // Where the cluster lives, not the hub.
            region: self.config.place(c).region,
            step: step.to_string(),
            error: error.to_string(),
            retry_at,
            at: now,
        };
        if let Err(e) = self.bus.publish(&event).await {
            tracing::error!(cluster = %c.name, error = %e, "publishing Cluster Transition Failed failed");
        }
        let text = format!(
            ":warning: cluster `{}`: `{step}` failed: {error}. Retrying after {retry_at}.",
            c.name
        );
        self.notifier.send_or_warn(&text).await;
    }

    /// Records a destructive step (or an adoption) in the audit trail before it is taken:
    /// what decided it and which invocation. A step that cannot be recorded is not taken.
    pub(crate) async fn audit(
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
}

/// `(place, EKS name)` of a recorded home (`production/us-east-1/web`, `hub/eu-west-1/web`);
/// `None` for text this code did not write.
pub(crate) fn parse_home(home: &str) -> Option<(Place, String)> {
    let mut parts = home.splitn(3, '/');
    let (account, region, eks_name) = (parts.next()?, parts.next()?, parts.next()?);
    if account.is_empty() || region.is_empty() || eks_name.is_empty() {
        return None;
    }
    Some((
        Place {
            account: (account != "hub").then(|| account.to_string()),
            region: region.to_string(),
        },
        eks_name.to_string(),
    ))
}

#[cfg(test)]
mod home_tests {
    use super::*;

    #[test]
    fn homes_read_back_as_written() {
        let (place, eks) = parse_home("production/us-east-1/web").expect("home");
        assert_eq!(place.account.as_deref(), Some("production"));
        assert_eq!(place.region, "us-east-1");
        assert_eq!(eks, "web");
        assert_eq!(
            format!("{place}/{eks}"),
            "production/us-east-1/web",
            "Place's Display writes what parse_home reads"
        );
        let (place, _) = parse_home("hub/eu-west-1/staging").expect("home");
        assert_eq!(place, Place::hub("eu-west-1"));
        assert!(parse_home("hub/eu-west-1").is_none());
        assert!(parse_home("hub//x").is_none());
        assert!(parse_home("").is_none());
    }
}
