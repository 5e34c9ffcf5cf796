//! Carrying out one [`Step`]: the EKS call, the Kubernetes teardown or bootstrap, the
//! announcement of a finished transition on the bus.

use fleet_shared::config::{ClusterConfig, Mode};
use fleet_shared::events::{BusEvent, ClusterDestroyed, ClusterReady};
use fleet_shared::runner::Invocation;
use fleet_shared::schedule::Desired;
use fleet_shared::state::ClusterRecord;
use fleet_shared::Result;
use jiff::{Timestamp, ToSpan};

use crate::bootstrap;
use crate::eks::fleet_tags;
use crate::reconcile::{creation_token_candidate, Observed, ObservedCluster, Step};
use crate::{irsa, karpenter_api, ready, teardown};

use crate::handler::*;

impl Scheduler {
    /// Carries out one step. Returns the outcome's `result`. `reason` is what the schedule
    /// (or an override) decided, for the audit trail.
    pub(crate) async fn execute(
        &self,
        c: &ClusterConfig,
        step: &Step,
        observed: &Observed,
        record: &ClusterRecord,
        inv: &Invocation,
        reason: &str,
    ) -> Result<StepResult> {
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
            Step::Steady => Ok(StepResult::Steady),
            Step::Foreign(other) => {
                tracing::warn!(cluster = %name, managed_by = ?other, "a cluster of this name is not this fleet's (fleet:managed-by); not touching it");
                Ok(StepResult::Foreign)
            }
            Step::NotCreatedByFleet => {
                tracing::warn!(cluster = %name, "tagged as this fleet's, but not an incarnation it created or adopted; not touching it (adopt = true takes it over)");
                Ok(StepResult::NotCreatedByFleet)
            }
            Step::Adopt => {
                let Observed::Present(o) = observed else {
                    return Ok(StepResult::Waiting);
                };
                if !self
                    .store
                    .adopt(name, &o.generation, &self.home(c), now, &inv.request_id)
                    .await?
                {
                    return Ok(StepResult::Steady);
                }
                self.audit(c, step, observed, inv, "adopt = true").await?;
                let text = format!(
                    ":handshake: cluster `{name}` adopted (adopt = true): {} (created {}) is now this fleet's; the schedule acts on it from now on",
                    o.arn.as_deref().unwrap_or("the existing cluster"),
                    o.generation
                );
                self.notifier.send_or_warn(&text).await;
                tracing::warn!(cluster = %name, arn = ?o.arn, generation = %o.generation, "adopted");
                Ok(StepResult::Adopted)
            }
            Step::Wait(_) => Ok(StepResult::Waiting),
            Step::CreateCluster => {
                let candidate = creation_token_candidate(&inv.request_id, name, now);
                let token = self
                    .store
                    .creation_token(name, &record.state, &candidate)
                    .await?;
                self.at(c)
                    .eks
                    .create_cluster(c, &token)
                    .await
                    .map(|_| StepResult::Done)
            }
            Step::CreateAddons(names) => self
                .at(c)
                .eks
                .create_addons(c, names)
                .await
                .map(|_| StepResult::Done),
            Step::CreateNodegroups(names) => self
                .at(c)
                .eks
                .create_nodegroups(c, names)
                .await
                .map(|_| StepResult::Done),
            Step::ScaleNodegroups(targets) => self
                .at(c)
                .eks
                .scale_nodegroups(c.eks_name(), targets)
                .await
                .map(|_| StepResult::Done),
            Step::DeleteNodegroups {
                names,
                notes,
                services,
            } => {
                let mut notes = notes.clone();
                if let (false, Observed::Present(o)) = (services.is_empty(), observed) {
                    let deleted = match self.kube.client(&self.access(c, o)).await {
                        Ok(client) => teardown::delete_services(&client, services).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = deleted {
                        notes.push(format!("deleting the LoadBalancer Services failed: {e}"));
                    }
                }
                self.at(c)
                    .eks
                    .delete_nodegroups(c.eks_name(), names)
                    .await?;
                if !notes.is_empty() {
                    let text = format!(":warning: cluster `{name}` teardown: {}", notes.join("; "));
                    self.notifier.send_or_warn(&text).await;
                    tracing::warn!(cluster = %name, notes = ?notes, "teardown left something behind");
                }
                Ok(StepResult::Done)
            }
            Step::CreateAccessEntries(principals) => self
                .at(c)
                .eks
                .create_access_entries(c, principals)
                .await
                .map(|_| StepResult::Done),
            Step::DeleteLoadBalancerServices(services) => {
                let Observed::Present(o) = observed else {
                    return Ok(StepResult::Waiting);
                };
                let client = self.kube.client(&self.access(c, o)).await?;
                teardown::delete_services(&client, services).await?;
                Ok(StepResult::Done)
            }
            Step::TrustIssuer(issuer) => {
                let Observed::Present(o) = observed else {
                    return Ok(StepResult::Waiting);
                };
                // Boxed, as the other large arms: the step's future is as large as its
                // largest arm, and every tick's stack pays for it.
                Box::pin(self.trust_issuer(c, o, issuer, record))
                    .await
                    .map(|_| StepResult::Done)
            }
            Step::AssociatePodIdentities(changes) => {
                Box::pin(self.at(c).eks.associate_pod_identities(c, changes))
                    .await
                    .map(|_| StepResult::Done)
            }
            Step::BootstrapThenAnnounce => {
                let Observed::Present(o) = observed else {
                    return Ok(StepResult::Waiting);
                };
                // Every value is read before anything is applied: a missing secret
                // stops the morning before Flux starts without its key.
                let mut secrets = Vec::new();
                // Named as the config names keys (`cluster[0].blueprint...`).
                let cluster_key = self.config.cluster_key(c);
                for (j, entry) in c.blueprint.bootstrap_secrets.iter().enumerate() {
                    let key = format!("{cluster_key}.blueprint.bootstrap_secrets[{j}]");
                    let value = Box::pin(bootstrap::read_secret(
                        &self.secrets,
                        &self.ssm,
                        entry,
                        &key,
                    ))
                    .await?;
                    secrets.push(bootstrap::secret_object(entry, &key, &value)?);
                }
                let mut manifests = Vec::new();
                for source in &c.blueprint.bootstrap {
                    let text = bootstrap::load(&self.s3, source).await?;
                    manifests.extend(bootstrap::parse(source, &text)?);
                }
                let client = self.kube.client(&self.access(c, o)).await?;
                if !secrets.is_empty() {
                    Box::pin(bootstrap::apply_secrets(&client, &secrets)).await?;
                    tracing::info!(cluster = %name, secrets = secrets.len(), "bootstrap secrets applied");
                }
                match bootstrap::apply(&client, manifests).await? {
                    bootstrap::Progress::WaitingForCrds(pending) => {
                        tracing::info!(cluster = %name, crds = ?pending, "waiting for CRDs to be Established");
                        Ok(StepResult::Waiting)
                    }
                    bootstrap::Progress::Applied(n) => {
                        tracing::info!(cluster = %name, documents = n, "bootstrap applied");
                        self.store
                            .mark_bootstrapped(name, &o.generation, now)
                            .await?;
                        if c.blueprint.ready_when.is_empty() {
                            return Box::pin(self.announce_up(c, o, record, now, vec![])).await;
                        }
                        let minutes = i64::from(c.blueprint.ready_timeout_minutes);
                        let degraded_after = now.checked_add(minutes.minutes()).unwrap_or(now);
                        Box::pin(self.await_ready(c, o, &client, record, now, degraded_after)).await
                    }
                }
            }
            Step::AwaitReady { degraded_after, .. } => {
                let Observed::Present(o) = observed else {
                    return Ok(StepResult::Waiting);
                };
                match self.kube.client(&self.access(c, o)).await {
                    Ok(client) => {
                        Box::pin(self.await_ready(c, o, &client, record, now, *degraded_after))
                            .await
                    }
                    // The API never answering is itself what the timeout reports.
                    Err(e) if now >= *degraded_after => {
                        let why = c
                            .blueprint
                            .ready_when
                            .iter()
                            .map(|r| format!("{r}: the API did not answer ({e})"))
                            .collect();
                        Box::pin(self.announce_up(c, o, record, now, why)).await
                    }
                    Err(e) => Err(e),
                }
            }
            Step::DeleteCluster { failed: false } => self
                .at(c)
                .eks
                .delete_cluster(c.eks_name())
                .await
                .map(|_| StepResult::Done),
            Step::DeleteCluster { failed: true } => {
                self.at(c).eks.delete_cluster(c.eks_name()).await?;
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
                self.at(c)
                    .eks
                    .delete_nodegroups(c.eks_name(), names)
                    .await?;
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
                Observed::Present(o) => Box::pin(self.announce_up(c, o, record, now, vec![])).await,
                Observed::Absent => Ok(StepResult::Waiting),
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
                let event = ClusterDestroyed {
                    cluster: name.to_string(),
                    region: self.config.place(c).region,
                    mode: c.mode,
                    at: now,
                };
                let announced = self
                    .announce(c, Desired::Down, &generation, record, &event, now, None)
                    .await?;
                // Destroyed: no incarnation lives anywhere, and the config may move the
                // cluster (even out of the deploy's regions) before the morning.
                if matches!(observed, Observed::Absent) && record.state.home.is_some() {
                    self.store.forget_home(&c.name).await?;
                }
                Ok(announced)
            }
            Step::CapNodePools {
                record: entries,
                cap,
                then,
            } => {
                let Observed::Present(o) = observed else {
                    return Ok(StepResult::Waiting);
                };
                // Recorded before capped: a cap is never taken without the value to restore.
                if !entries.is_empty() {
                    self.store
                        .record_nodepool_limits(name, &o.generation, entries)
                        .await?;
                }
                if !cap.is_empty() {
                    let client = self.kube.client(&self.access(c, o)).await?;
                    Box::pin(karpenter_api::cap(&client, cap)).await?;
                }
                match then {
                    // The evening's next step, in the same tick (see `Step::CapNodePools`).
                    Some(next) => {
                        Box::pin(self.execute(c, next, observed, record, inv, reason)).await
                    }
                    None => Ok(StepResult::Done),
                }
            }
            Step::DeleteNodeClaims(names) | Step::DeleteNodeClasses(names) => {
                let Observed::Present(o) = observed else {
                    return Ok(StepResult::Waiting);
                };
                let client = self.kube.client(&self.access(c, o)).await?;
                match step {
                    Step::DeleteNodeClaims(_) => {
                        Box::pin(karpenter_api::delete_nodeclaims(&client, names)).await?
                    }
                    _ => Box::pin(karpenter_api::delete_nodeclasses(&client, names)).await?,
                }
                Ok(StepResult::Done)
            }
            Step::TerminateKarpenterNodes {
                instances,
                launch_templates,
                notes,
            } => {
                Box::pin(karpenter_api::terminate(
                    &self.at(c).ec2,
                    instances,
                    launch_templates,
                ))
                .await?;
                if !notes.is_empty() {
                    let text =
                        format!(":warning: cluster `{name}` Karpenter: {}", notes.join("; "));
                    self.notifier.send_or_warn(&text).await;
                    tracing::warn!(cluster = %name, notes = ?notes, "Karpenter left something to the backstop");
                }
                Ok(StepResult::Done)
            }
            Step::RestoreNodePoolLimits(limits) => {
                let Observed::Present(o) = observed else {
                    return Ok(StepResult::Waiting);
                };
                let client = self.kube.client(&self.access(c, o)).await?;
                Box::pin(karpenter_api::restore(&client, limits)).await?;
                self.store.clear_nodepool_limits(name).await?;
                Ok(StepResult::Done)
            }
            Step::RecordDown => {
                self.store
                    .record_transition(&c.name, Desired::Down, "none", now, "down (never built)")
                    .await?;
                self.store
                    .mark_announced(&c.name, Desired::Down, "none")
                    .await?;
                Ok(StepResult::Done)
            }
        }
    }

    /// Announces `Cluster Ready` once `ready_when` is met, or with what is not ready from
    /// `degraded_after` on; else waits for a later tick.
    async fn await_ready(
        &self,
        c: &ClusterConfig,
        o: &ObservedCluster,
        client: &kube::Client,
        record: &ClusterRecord,
        now: Timestamp,
        degraded_after: Timestamp,
    ) -> Result<StepResult> {
        let not_ready = ready::not_ready(client, &c.blueprint.ready_when).await;
        if not_ready.is_empty() || now >= degraded_after {
            return self.announce_up(c, o, record, now, not_ready).await;
        }
        tracing::info!(cluster = %c.name, not_ready = ?not_ready, %degraded_after, "waiting for ready_when");
        Ok(StepResult::Waiting)
    }

    /// Records the up transition and publishes `Cluster Ready` (with `degraded`, the
    /// `ready_when` objects not ready at the timeout, and Slack hears it once).
    pub(crate) async fn announce_up(
        &self,
        c: &ClusterConfig,
        o: &ObservedCluster,
        record: &ClusterRecord,
        now: Timestamp,
        degraded: Vec<String>,
    ) -> Result<StepResult> {
        let took_seconds = record
            .state
            .rising_since
            .filter(|since| *since <= now)
            .map(|since| now.as_second() - since.as_second());
        let event = ClusterReady {
            cluster: c.name.clone(),
            endpoint: o.endpoint.clone().unwrap_or_default(),
            region: self.config.place(c).region,
            mode: c.mode,
            generation: o.generation.clone(),
            at: now,
            took_seconds,
            degraded: degraded.clone(),
        };
        let result = self
            .announce(
                c,
                Desired::Up,
                &o.generation,
                record,
                &event,
                now,
                took_seconds,
            )
            .await?;
        if result == StepResult::Done && !degraded.is_empty() {
            let text = format!(
                ":warning: cluster `{}` is up but degraded after {} minutes: {}",
                c.name,
                c.blueprint.ready_timeout_minutes,
                degraded.join("; ")
            );
            Box::pin(self.notifier.send_or_warn(&text)).await;
            tracing::warn!(cluster = %c.name, degraded = ?degraded, "announced degraded");
        }
        Ok(result)
    }

    /// IRSA for a new issuer: its IAM OIDC provider made (or found; one the fleet made is
    /// recorded at once), each `irsa_roles` role's statements for one of this cluster's
    /// earlier issuers (recorded) moved to it, the issuer recorded, then the providers the
    /// fleet made for earlier issuers deleted: only now does no listed role name them. (At
    /// teardown they would still be named by the roles, and IAM refuses a trust policy
    /// naming a provider that does not exist: a shared role could then no longer be
    /// rewritten by the other clusters.) A role IAM refuses to read or change (gone,
    /// access denied) is reported to Slack and the others go on; a retryable error
    /// retries the whole step.
    async fn trust_issuer(
        &self,
        c: &ClusterConfig,
        o: &ObservedCluster,
        issuer: &str,
        record: &ClusterRecord,
    ) -> Result<()> {
        let bp = &c.blueprint;
        let host = irsa::issuer_host_path(issuer).ok_or_else(|| {
            fleet_shared::FleetError::Internal(format!(
                "OIDC issuer `{issuer}` is not an https URL"
            ))
        })?;
        // The provider lives in the cluster's account (its ARN says which).
        let arn = o.arn.as_deref().unwrap_or_default();
        let parts: Vec<&str> = arn.split(':').collect();
        let (partition, account) = match parts.as_slice() {
            ["arn", p, "eks", _, a, ..] => (*p, *a),
            _ => {
                return Err(fleet_shared::FleetError::Internal(format!(
                    "cluster `{}` has no ARN to take its account from",
                    c.name
                )))
            }
        };
        let tags = fleet_tags(&c.name, bp, &self.stack);
        let provider = self
            .at(c)
            .iam
            .ensure_provider(issuer, account, partition, &self.stack, &tags)
            .await?;
        if provider.made_by_fleet && !record.state.oidc_providers.contains(&provider.arn) {
            self.store.add_oidc_provider(&c.name, &provider.arn).await?;
        }
        let earlier: Vec<&String> = record
            .state
            .irsa_issuers
            .iter()
            .filter(|i| **i != host)
            .collect();
        let mut problems = Vec::new();
        let mut untouched = Vec::new();
        {
            let _one_at_a_time = self.irsa_lock.lock().await;
            for role_arn in &bp.irsa_roles {
                let Some(role) = irsa::role_name(role_arn) else {
                    problems.push(format!("{role_arn}: no role name"));
                    continue;
                };
                let moved = async {
                    let policy = self.at(c).iam.trust_policy(role).await?;
                    let stale = |h: &str| earlier.iter().any(|e| e.as_str() == h);
                    match irsa::rewrite_trust(&policy, &stale, &host, &provider.arn) {
                        Some(rewritten) => self
                            .at(c)
                            .iam
                            .update_trust(role, &rewritten)
                            .await
                            .map(|_| true),
                        None => Ok(irsa::referenced_host_paths(&policy).contains(&host)),
                    }
                };
                match moved.await {
                    Ok(true) => {
                        tracing::info!(cluster = %c.name, role = %role_arn, issuer = %host, "IRSA trust on the new issuer")
                    }
                    Ok(false) => untouched.push(role_arn.clone()),
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(e) => problems.push(format!("{role_arn}: {e}")),
                }
            }
        }
        let mut lines = Vec::new();
        if !untouched.is_empty() {
            lines.push(format!(
                "IRSA roles {} trust no earlier issuer of this cluster: add a statement for {} once, the fleet moves it every morning after (README, \"Identities, secrets and readiness\")",
                untouched.join(", "),
                provider.arn
            ));
        }
        if !problems.is_empty() {
            lines.push(format!(
                "IRSA roles left as they were: {}",
                problems.join("; ")
            ));
        }
        if !lines.is_empty() {
            let text = format!(":warning: cluster `{}`: {}", c.name, lines.join(". "));
            self.notifier.send_or_warn(&text).await;
            tracing::warn!(cluster = %c.name, untouched = ?untouched, problems = ?problems, "IRSA roles not moved");
        }
        let mut issuers: Vec<String> = earlier.into_iter().cloned().collect();
        issuers.push(host);
        let keep = issuers.len().saturating_sub(7);
        self.store
            .record_irsa_issuers(&c.name, &issuers[keep..])
            .await?;
        // arn:<partition>:iam::<account>:oidc-provider/…
        let account_of = |arn: &str| arn.split(':').nth(4).map(String::from);
        for old in record
            .state
            .oidc_providers
            .iter()
            .filter(|a| **a != provider.arn)
        {
            if account_of(old) != account_of(&provider.arn) {
                // Made in the account the cluster lived in before the config moved it:
                // out of this place's reach. Forgotten, and people told.
                let text = format!(
                    ":warning: cluster `{}` moved accounts: the OIDC provider {old} the fleet made for it before is left where it is; delete it there",
                    c.name
                );
                self.notifier.send_or_warn(&text).await;
                self.store.forget_oidc_provider(&c.name, old).await?;
                continue;
            }
            self.at(c).iam.delete_provider(old).await?;
            self.store.forget_oidc_provider(&c.name, old).await?;
            tracing::info!(cluster = %c.name, provider = %old, "the earlier issuer's OIDC provider deleted");
        }
        Ok(())
    }

    pub(crate) async fn fail_and_continue(
        &self,
        c: &ClusterConfig,
        step: &Step,
        error: &str,
        record: &ClusterRecord,
        now: Timestamp,
    ) -> Result<StepResult> {
        let attempts = record.state.attempts.saturating_add(1);
        let retry_at = now.checked_add(backoff(attempts)).unwrap_or(now);
        self.report_failure(c, &step.describe(), error, now, retry_at, attempts)
            .await;
        Ok(StepResult::Failed)
    }

    /// Records the transition once, then publishes its event. If publishing fails the
    /// phase stays unannounced and the next tick publishes again: at least once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn announce<E: BusEvent>(
        &self,
        c: &ClusterConfig,
        phase: Desired,
        generation: &str,
        record: &ClusterRecord,
        event: &E,
        now: Timestamp,
        took_seconds: Option<i64>,
    ) -> Result<StepResult> {
        let detail_text = match phase {
            Desired::Up => format!("ready, generation {generation}"),
            Desired::Down => format!("down ({})", mode_name(c.mode)),
        };
        let recorded = self
            .store
            .record_timed_transition(&c.name, phase, generation, now, &detail_text, took_seconds)
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
                return Ok(StepResult::Steady);
            }
        }
        self.bus.publish(event).await?;
        self.store
            .mark_announced(&c.name, phase, generation)
            .await?;
        tracing::info!(cluster = %c.name, event = E::DETAIL_TYPE, "published");
        Ok(StepResult::Done)
    }
}

pub(crate) fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Destroy => "destroyed",
        Mode::Scale => "scaled to zero",
    }
}

pub(crate) fn failed_nodegroup_issues(o: &ObservedCluster, names: &[String]) -> String {
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
