//! The queries a person asks: `plan` (what the schedule wants and what would happen
//! next), `status` (what is recorded), `up` / `down` / `clear` (overrides).

use crate::answer::{
    NetworkPlanRow, NetworkStatusRow, OverrideCleared, OverrideSet, Plan, PlanRow, Status,
    StatusRow,
};
use fleet_shared::config::{ClusterConfig, NetworkConfig};
use fleet_shared::runner::Invocation;
use fleet_shared::schedule::{Decision, Desired, Override};
use fleet_shared::state::{
    median_took_seconds, network_history_key, uptime_hours, Transition, TransitionKind,
};
use fleet_shared::{FleetError, Result};
use jiff::{Timestamp, ToSpan};

use crate::eks::Want;
use crate::reconcile::{next_step, summarize, Observed, ObservedCluster, Situation};
use crate::request::Until;

use crate::handler::*;

impl Scheduler {
    /// The plan at `at` of every cluster, or of `only` (and its network).
    pub(crate) async fn plan(&self, at: Timestamp, only: Option<&str>) -> Result<Plan> {
        let only = only.map(|name| self.cluster(name)).transpose()?;
        let names: Vec<&str> = self
            .config
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let records = if self.config.networks.is_empty() {
            Default::default()
        } else {
            self.store.clusters(&names).await?
        };
        let mut networks = vec![];
        let mut gates = std::collections::HashMap::new();
        let wanted = |n: &&NetworkConfig| only.is_none_or(|c| c.network.as_ref() == Some(&n.name));
        for n in self.config.networks.iter().filter(wanted) {
            let (desired, record, plan) = self.plan_network(n, &records, at).await?;
            for c in self.config.clusters_of(&n.name) {
                let gate = (!plan.ready).then(|| {
                    format!(
                        "network {} is not ready: {}",
                        n.name,
                        crate::network::describe(&plan)
                    )
                });
                gates.insert(c.name.clone(), gate);
            }
            networks.push(NetworkPlanRow {
                name: n.name.clone(),
                desired,
                actual: record
                    .phase
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "never up".into()),
                next_step: crate::network::describe(&plan),
                ready: plan.ready,
                conflicts: plan.conflicts,
            });
        }
        let inputs: Vec<_> = self
            .config
            .clusters
            .iter()
            .map(|c| gates.get(&c.name).cloned().flatten())
            .collect();
        let rows: Vec<Result<PlanRow>> = match only {
            Some(c) => vec![self.plan_one(c, at, gates.remove(&c.name).flatten()).await],
            None => {
                self.each_cluster(inputs, |c, gate| self.plan_one(c, at, gate))
                    .await
            }
        };
        let clusters = rows.into_iter().collect::<Result<Vec<PlanRow>>>()?;
        Ok(Plan {
            at,
            clusters,
            networks,
        })
    }

    /// One cluster's plan; `gate`: why its network is not ready (see
    /// [`crate::network::NetworkGate`]).
    pub(crate) async fn plan_one(
        &self,
        c: &ClusterConfig,
        at: Timestamp,
        gate: Option<String>,
    ) -> Result<PlanRow> {
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
            network_wait: gate.as_deref(),
        });
        let next_step = match record.state.backoff_until.filter(|u| *u > at) {
            Some(until) => format!("wait: backing off until {until}, then {}", step.describe()),
            None => step.describe(),
        };
        Ok(PlanRow {
            name: c.name.clone(),
            desired: decision.desired,
            actual: summarize(&observed),
            next_step,
            reason: decision.reason,
            rule: decision.rule,
            next_change: schedule.next_change(at, record.over.as_ref(), HORIZON_DAYS),
        })
    }

    pub(crate) async fn set_override(
        &self,
        inv: &Invocation,
        name: &str,
        desired: Desired,
        until: Until,
        reason: String,
    ) -> Result<OverrideSet> {
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
        // Who asked, kept with the destructive steps (a Slack click's reason names the
        // person). Best effort: the override is set whatever happens to the trail.
        self.audit_manual(
            inv,
            name,
            format!("override {desired} until {until}"),
            &o.reason,
        )
        .await;
        // Act now rather than on the next tick.
        let outcome = self.reconcile_one(c, inv).await;
        Ok(OverrideSet {
            cluster: name.to_string(),
            over: o,
            reconcile: outcome,
        })
    }

    pub(crate) async fn clear_override(
        &self,
        inv: &Invocation,
        name: &str,
        reason: Option<String>,
    ) -> Result<OverrideCleared> {
        let c = self.cluster(name)?;
        let cleared = self.store.clear_override(name).await?;
        if cleared.is_some() {
            let reason = reason.unwrap_or_else(|| "manual clear".into());
            self.audit_manual(inv, name, "clear override".into(), &reason)
                .await;
        }
        let outcome = self.reconcile_one(c, inv).await;
        Ok(OverrideCleared {
            cluster: name.to_string(),
            cleared: cleared.is_some(),
            over: cleared,
            reconcile: outcome,
        })
    }

    /// Appends a manual action (an override set or cleared) to `name`'s audit trail;
    /// a failure is logged, not returned.
    async fn audit_manual(&self, inv: &Invocation, name: &str, step: String, reason: &str) {
        let entry = fleet_shared::state::AuditEntry {
            at: inv.now,
            step,
            decided_by: reason.to_string(),
            request_id: inv.request_id.clone(),
            generation: String::new(),
        };
        if let Err(e) = self.store.audit(name, &entry).await {
            tracing::warn!(cluster = %name, error = %e, "audit of a manual action failed");
        }
    }

    /// The status at `now` of every cluster, or of `only` (and its network).
    pub(crate) async fn status(&self, now: Timestamp, only: Option<&str>) -> Result<Status> {
        let only = only.map(|name| self.cluster(name)).transpose()?;
        let rows: Vec<Result<StatusRow>> = match only {
            Some(c) => vec![self.status_one(c, now).await],
            None => {
                let inputs = vec![(); self.config.clusters.len()];
                self.each_cluster(inputs, |c, ()| self.status_one(c, now))
                    .await
            }
        };
        let clusters = rows.into_iter().collect::<Result<Vec<StatusRow>>>()?;
        let mut networks = vec![];
        let wanted = |n: &&NetworkConfig| only.is_none_or(|c| c.network.as_ref() == Some(&n.name));
        for n in self.config.networks.iter().filter(wanted) {
            networks.push(self.network_status(n, now).await?);
        }
        Ok(Status {
            at: now,
            clusters,
            networks,
        })
    }

    async fn network_status(&self, n: &NetworkConfig, now: Timestamp) -> Result<NetworkStatusRow> {
        let names: Vec<&str> = self
            .config
            .clusters_of(&n.name)
            .map(|c| c.name.as_str())
            .collect();
        let records = self.store.clusters(&names).await?;
        let (desired, _) = self.network_inputs(n, &records, now);
        let recorded = self.store.network(&n.name).await?;
        let (uptime, last_transitions, _) =
            self.history(&network_history_key(&n.name), now).await?;
        Ok(NetworkStatusRow {
            name: n.name.clone(),
            desired,
            clusters: names.iter().map(|s| s.to_string()).collect(),
            recorded,
            last_transitions,
            uptime_hours_this_month: uptime,
        })
    }

    /// Hours up this month (to the hundredth), the last five transitions of the history
    /// kept under `key`, and the median rebuild time this month.
    async fn history(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<(f64, Vec<Transition>, Option<i64>)> {
        let month_start = month_start(now)?;
        // Look back far enough to know the phase at the start of the month.
        let lookback = month_start
            .checked_sub((40 * 24).hours())
            .unwrap_or(month_start);
        let history = self.store.transitions(key, lookback, now).await?;
        let up_at_start = history
            .iter()
            .rev()
            .find(|t| t.at < month_start && t.kind != TransitionKind::Failed)
            .is_some_and(|t| t.kind == TransitionKind::Up);
        let uptime = uptime_hours(&history, up_at_start, month_start, now);
        let last = history.iter().rev().take(5).cloned().collect();
        let median = median_took_seconds(&history, month_start, now);
        Ok(((uptime * 100.0).round() / 100.0, last, median))
    }

    pub(crate) async fn status_one(&self, c: &ClusterConfig, now: Timestamp) -> Result<StatusRow> {
        let record = self.store.cluster(&c.name).await?;
        let schedule = c.schedule();
        let Decision {
            desired, reason, ..
        } = schedule.decide(now, record.over.as_ref());
        let mut observed = self.at(c).eks.describe(c.eks_name()).await?;
        self.classify(&mut observed, &record.state);
        if let Observed::Present(o) = &mut observed {
            let want = Want {
                addons: false,
                fargate: false,
                access: false,
                pod_identity: false,
            };
            self.at(c).eks.look_inside(c.eks_name(), o, want).await?;
        }
        let audit = self.store.audit_trail(&c.name, 5).await?;
        let (uptime, last_transitions, median_rebuild) = self.history(&c.name, now).await?;
        let over = record.over.clone().filter(|o| o.until > now);
        let (endpoint, certificate_authority) = match &observed {
            Observed::Present(ObservedCluster {
                endpoint, ca_data, ..
            }) => (endpoint.clone(), ca_data.clone()),
            Observed::Absent => (None, None),
        };
        let place = self.config.place(c);
        Ok(StatusRow {
            name: c.name.clone(),
            mode: c.mode,
            protect: c.protect,
            desired,
            reason,
            actual: summarize(&observed),
            eks_name: c.eks_name().to_string(),
            account: place.account,
            region: place.region,
            endpoint,
            certificate_authority,
            next_change: schedule.next_change(now, record.over.as_ref(), HORIZON_DAYS),
            recorded: record.state,
            over,
            last_transitions,
            last_destructive_steps: audit,
            uptime_hours_this_month: uptime,
            median_rebuild_seconds_this_month: median_rebuild,
        })
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
    fn month_start_is_utc_midnight() {
        let t: Timestamp = "2026-11-22T10:42:00Z".parse().expect("ts");
        assert_eq!(month_start(t).ok(), "2026-11-01T00:00:00Z".parse().ok());
    }
}
