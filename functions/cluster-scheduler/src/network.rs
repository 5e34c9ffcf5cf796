//! A tick's networks: each `[[network]]` observed, its record read, its actions
//! ([`crate::network_steps`]) taken and its transitions announced, before the clusters
//! that need it, which learn from it whether their nodes may come up.

use std::collections::HashMap;

use fleet_shared::config::{NetworkConfig, Place};
use fleet_shared::events::{BusEvent, NetworkDown, NetworkReady};
use fleet_shared::runner::Invocation;
use fleet_shared::schedule::Desired;
use fleet_shared::state::model::network_history_key;
use fleet_shared::state::{AuditEntry, ClusterRecord, NetworkRecord};
use fleet_shared::Result;
use jiff::{Timestamp, ToSpan};

use crate::answer::NetworkOutcome;
use crate::network_api;
use crate::network_steps::{self, Announce, NetworkAction, NetworkPlan, NetworkSituation};
use crate::reconcile::creation_token_candidate;

use crate::handler::*;

/// What a cluster's morning waits for: `None` when its nodes may come up (no network,
/// or the network is ready), else why not (`network staging-vpc: NAT gateway … is pending`).
pub type NetworkGate = Option<String>;

impl Scheduler {
    /// Whether network `n` is wanted up at `now` (any of its clusters is), and its
    /// clusters that are wanted down but still recorded up (or down, not yet announced).
    pub(crate) fn network_inputs(
        &self,
        n: &NetworkConfig,
        records: &HashMap<String, ClusterRecord>,
        now: Timestamp,
    ) -> (Desired, Vec<String>) {
        let mut desired = Desired::Down;
        let mut not_down = vec![];
        // Retiring (removed, or moved elsewhere): down, once its clusters are.
        let retiring = self.retiring(n);
        for c in self.config.clusters_of(&n.name) {
            let record = records.get(&c.name).cloned().unwrap_or_default();
            let wanted = c.schedule().decide(now, record.over.as_ref()).desired == Desired::Up;
            if wanted && !retiring {
                desired = Desired::Up;
            } else if holds_the_evening(&record.state) {
                not_down.push(c.name.clone());
            }
        }
        // A cluster the config moved away (to another place or network) while its
        // incarnation still runs where it was (the tick refuses the move): every network
        // of that place keeps what its nodes may route through.
        let here = self.network_place(n);
        for c in &self.config.clusters {
            let Some(record) = records.get(&c.name) else {
                continue;
            };
            let Some(home) = record.state.home.as_deref() else {
                continue;
            };
            let moved_from_here = home != self.home(c)
                && crate::tick::parse_home(home).is_some_and(|(place, _)| place == here);
            if moved_from_here && holds_the_evening(&record.state) && !not_down.contains(&c.name) {
                not_down.push(c.name.clone());
            }
        }
        (desired, not_down)
    }

    /// Observes network `n` and decides its actions (no change made).
    pub(crate) async fn plan_network(
        &self,
        n: &NetworkConfig,
        records: &HashMap<String, ClusterRecord>,
        now: Timestamp,
    ) -> Result<(Desired, NetworkRecord, NetworkPlan)> {
        let (desired, not_down) = self.network_inputs(n, records, now);
        let record = self.store.network(&n.name).await?;
        let recorded: Vec<String> = record.gateways.keys().cloned().collect();
        // A network removed from the config (or moved away) hands the tables other
        // networks of its place list over before its gateways go: it looks at them.
        let other_tables: Vec<String> = if self.retiring(n) {
            let here = self.network_place(n);
            self.config
                .networks
                .iter()
                .filter(|o| self.network_place(o) == here)
                .flat_map(|o| o.route_tables().map(|(_, r)| r.to_string()))
                .collect()
        } else {
            vec![]
        };
        let observed = Box::pin(network_api::observe(
            &self.network_ec2(n),
            n,
            &recorded,
            &other_tables,
        ))
        .await?;
        let plan = network_steps::plan(NetworkSituation {
            config: n,
            desired,
            clusters_not_down: &not_down,
            observed: &observed,
            recorded: &record,
            stack: &self.stack,
            now,
        });
        Ok((desired, record, plan))
    }

    /// Every network's tick (in config order), then those removed from the config that
    /// the fleet still has something of, and each cluster's gate.
    pub(crate) async fn reconcile_networks(
        &self,
        records: &HashMap<String, ClusterRecord>,
        inv: &Invocation,
        stop_at: tokio::time::Instant,
    ) -> (Vec<NetworkOutcome>, HashMap<String, NetworkGate>) {
        let known = match self.known_networks().await {
            Ok(k) => k,
            Err(e) => {
                // Where each network's gateways live is not known this tick: acting
                // could make a moved network's anew and lose the old ones. None is acted
                // on; their clusters' nodes wait a tick.
                let outcomes = self
                    .config
                    .networks
                    .iter()
                    .map(|n| NetworkOutcome {
                        name: n.name.clone(),
                        desired: self.network_inputs(n, records, inv.now).0,
                        actual: "unknown".into(),
                        step: "none".into(),
                        result: StepResult::Failed,
                        ready: false,
                        error: Some(format!(
                            "reading where the fleet's networks live failed: {e}"
                        )),
                        notes: vec![],
                    })
                    .collect::<Vec<_>>();
                let gates = self.gates(&outcomes);
                return (outcomes, gates);
            }
        };
        let known = &known;
        // Every network at once (each in its own place, whose clients time out), none past
        // the tick's deadline: a region in an outage holds back only its own.
        let mut outcomes: Vec<NetworkOutcome> =
            futures::future::join_all(self.config.networks.iter().map(|n| async move {
                match tokio::time::timeout_at(stop_at, self.network_tick(n, records, inv, known))
                    .await
                {
                    Ok(outcome) => outcome,
                    Err(_) => NetworkOutcome {
                        name: n.name.clone(),
                        desired: self.network_inputs(n, records, inv.now).0,
                        actual: "unknown".into(),
                        step: "none".into(),
                        result: StepResult::Skipped,
                        ready: false,
                        error: Some(
                            "out of time before the Lambda deadline; the next tick continues"
                                .into(),
                        ),
                        notes: vec![],
                    },
                }
            }))
            .await;
        let gates = self.gates(&outcomes);
        outcomes.extend(self.retire_removed_networks(known, inv).await);
        (outcomes, gates)
    }

    /// The networks the fleet made something for, and where (see
    /// [`StateStore::known_networks`](fleet_shared::state::StateStore::known_networks)):
    /// a network recorded before places were lives in the hub's region.
    ///
    /// # Errors
    /// The state table's.
    pub(crate) async fn known_networks(&self) -> Result<Vec<(String, Place)>> {
        let hub = Place::hub(self.config.fleet.region.clone());
        Ok(self
            .store
            .known_networks()
            .await?
            .into_iter()
            .map(|(name, place)| (name, place.unwrap_or_else(|| hub.clone())))
            .collect())
    }

    /// Network `n`'s tick. When the config moved it (account or region) and the fleet
    /// still has something of it where it was, that is taken away first, as for a
    /// network removed from the config (once its clusters there are down), and the
    /// network waits; once nothing is left there, it is made where the config says.
    pub(crate) async fn network_tick(
        &self,
        n: &NetworkConfig,
        records: &HashMap<String, ClusterRecord>,
        inv: &Invocation,
        known: &[(String, Place)],
    ) -> NetworkOutcome {
        let was = known
            .iter()
            .find(|(name, _)| *name == n.name)
            .map(|(_, place)| place.clone())
            .filter(|place| *place != self.network_place(n));
        let Some(was) = was else {
            return self.reconcile_network(n, records, inv).await;
        };
        let old = NetworkConfig {
            name: n.name.clone(),
            account: was.account.clone(),
            region: Some(was.region.clone()),
            nat_gateways: vec![],
            adopt_routes: false,
        };
        let moved = format!(
            "the config moved it from {was} to {}: what the fleet made in {was} is taken away first (once its clusters there are down), then it is made anew",
            self.network_place(n)
        );
        // Its clusters there still need it: nothing is taken away (the retiring network
        // lists no gateway, so its plan would delete them at once).
        let (_, not_down) = self.network_inputs(&old, records, inv.now);
        if !not_down.is_empty() {
            return NetworkOutcome {
                name: n.name.clone(),
                desired: Desired::Down,
                actual: format!("moved in the config, still in {was}"),
                step: format!("wait: clusters not down in {was}: {}", not_down.join(", ")),
                result: StepResult::Waiting,
                ready: false,
                error: None,
                notes: vec![moved],
            };
        }
        let mut outcome = self.reconcile_network(&old, records, inv).await;
        outcome.ready = false;
        outcome.notes.push(moved);
        outcome
    }

    /// Where network `n` lives.
    fn network_place(&self, n: &NetworkConfig) -> fleet_shared::config::Place {
        self.config.network_place(n)
    }

    /// `n` is no network of the config: removed from it, or the place it was made in
    /// before the config moved it.
    fn retiring(&self, n: &NetworkConfig) -> bool {
        self.config
            .network(&n.name)
            .is_none_or(|c| self.network_place(c) != self.network_place(n))
    }

    /// The EC2 client of network `n`'s place.
    fn network_ec2(&self, n: &NetworkConfig) -> aws_sdk_ec2::Client {
        self.aws.at(&self.network_place(n)).ec2.clone()
    }

    /// Networks the fleet made something for that the config no longer lists: what it made
    /// is taken away (NAT gateways deleted, addresses released) whatever the time, and the
    /// network forgotten once nothing is left. Their route tables are no longer listed
    /// (neither the config nor IAM lets the fleet touch them): routes to the deleted
    /// gateways stay as blackholes, and people are told so.
    pub(crate) async fn retire_removed_networks(
        &self,
        known: &[(String, Place)],
        inv: &Invocation,
    ) -> Vec<NetworkOutcome> {
        let mut outcomes = vec![];
        for (name, place) in known {
            if self.config.network(name).is_some() {
                continue;
            }
            let name = name.clone();
            let place = place.clone();
            // A spoke removed from the config along with its network: every call fails
            // naming the account (never the hub's credentials), reported each tick until
            // the account is configured again.
            let removed = NetworkConfig {
                name,
                account: place.account,
                region: Some(place.region),
                nat_gateways: vec![],
                adopt_routes: false,
            };
            outcomes.push(self.reconcile_network(&removed, &HashMap::new(), inv).await);
        }
        outcomes
    }

    /// Each cluster's gate from its network's outcome.
    pub(crate) fn gates(&self, outcomes: &[NetworkOutcome]) -> HashMap<String, NetworkGate> {
        let mut gates = HashMap::new();
        for c in &self.config.clusters {
            let Some(net) = &c.network else { continue };
            let gate = match outcomes.iter().find(|o| &o.name == net) {
                Some(o) if o.ready => None,
                Some(o) => Some(format!(
                    "network {net} is not ready: {}",
                    o.error.clone().unwrap_or_else(|| if o.notes.is_empty() {
                        o.step.clone()
                    } else {
                        o.notes.join("; ")
                    })
                )),
                None => Some(format!("network {net} was not looked at")),
            };
            gates.insert(c.name.clone(), gate);
        }
        gates
    }

    /// One network, one tick. Errors end up in the outcome (and back off, as a
    /// cluster's); the network's clusters then wait. A network that has something to do
    /// is acted on under its lease, looked at again once the lease is held.
    pub(crate) async fn reconcile_network(
        &self,
        n: &NetworkConfig,
        records: &HashMap<String, ClusterRecord>,
        inv: &Invocation,
    ) -> NetworkOutcome {
        let now = inv.now;
        let removed = self.retiring(n);
        let mut outcome = NetworkOutcome {
            name: n.name.clone(),
            desired: self.network_inputs(n, records, now).0,
            actual: "unknown".into(),
            step: "none".into(),
            result: StepResult::Failed,
            ready: false,
            error: None,
            notes: vec![],
        };
        let (desired, record, plan) = match self.plan_network(n, records, now).await {
            Ok(p) => p,
            Err(e) => {
                return self
                    .network_error(n, &NetworkRecord::default(), now, outcome, e, true)
                    .await
            }
        };
        outcome.desired = desired;
        outcome.actual = match record.phase {
            Some(p) if record.announced => p.to_string(),
            Some(p) => format!("{p} (not announced yet)"),
            None => "never up".into(),
        };
        if removed {
            let why = if self.config.network(&n.name).is_some() {
                "moved in the config"
            } else {
                "removed from the config"
            };
            outcome.actual = format!("{} ({why})", outcome.actual);
        }
        // What is there serves the nodes whatever this tick does: a network that is up
        // and routed is ready while it backs off or another invocation acts on it.
        let ready_now = desired == Desired::Up && plan.ready_as_seen();
        if let Some(until) = record.backoff_until.filter(|u| *u > now) {
            outcome.ready = ready_now;
            outcome.result = StepResult::Backoff;
            outcome.step = format!("wait: backing off until {until}");
            outcome.error = record.last_error.clone();
            return outcome;
        }
        let has_work = !plan.actions.is_empty() || plan.announce != Announce::None;
        if !has_work {
            if removed && record.gateways.is_empty() && plan.waiting.is_empty() {
                // Nothing of it left: off the list (its history stays for the report).
                if let Err(e) = self.store.forget_network(&n.name).await {
                    tracing::warn!(network = %n.name, error = %e, "forgetting the network failed");
                }
                outcome.step = "forget (removed from the config, nothing left)".into();
                outcome.result = StepResult::Done;
                return outcome;
            }
            let result = if plan.waiting.is_empty() {
                StepResult::Steady
            } else {
                StepResult::Waiting
            };
            return self
                .finish(n, &record, &plan, Ok(result), now, outcome)
                .await;
        }
        let until = inv.budget_ends_at();
        match self
            .store
            .acquire_network_lease(&n.name, &inv.request_id, until, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                outcome.ready = ready_now;
                outcome.result = StepResult::Skipped;
                outcome.step = "wait: another invocation is acting on the network".into();
                outcome.notes = plan.waiting.clone();
                return outcome;
            }
            Err(e) => return self.network_error(n, &record, now, outcome, e, true).await,
        }
        // Under the lease, from what is recorded and seen now: the first look may predate
        // the actions of the invocation that held it.
        let result = match self.plan_network(n, records, now).await {
            Ok((desired, record, plan)) => {
                let taken = Box::pin(self.take(n, &plan, &record, removed, inv)).await;
                Ok((desired, record, plan, taken))
            }
            Err(e) => Err(e),
        };
        if let Err(e) = self
            .store
            .release_network_lease(&n.name, &inv.request_id)
            .await
        {
            // It expires at the end of this invocation's budget anyway.
            tracing::warn!(network = %n.name, error = %e, "releasing the network lease failed");
        }
        match result {
            Ok((desired, record, plan, taken)) => {
                outcome.desired = desired;
                self.finish(n, &record, &plan, taken, now, outcome).await
            }
            Err(e) => self.network_error(n, &record, now, outcome, e, true).await,
        }
    }

    /// The outcome of a network's tick once its plan was taken (or had nothing to take):
    /// errors and failed NAT gateways back off and are told once, route conflicts are
    /// told once, and the backoff is cleared once the network is where it should be.
    async fn finish(
        &self,
        n: &NetworkConfig,
        record: &NetworkRecord,
        plan: &NetworkPlan,
        taken: Result<StepResult>,
        now: Timestamp,
        mut outcome: NetworkOutcome,
    ) -> NetworkOutcome {
        let desired = outcome.desired;
        outcome.step = describe(plan);
        outcome.notes = plan
            .waiting
            .iter()
            .chain(&plan.conflicts)
            .cloned()
            .collect();
        // At info only when something is done or awaited: a steady network does not
        // repeat itself every tick (the log ingestion bill, BENCHMARKS.md section 8).
        if plan.actions.is_empty() && plan.waiting.is_empty() && plan.announce == Announce::None {
            tracing::debug!(network = %n.name, desired = %desired, step = %outcome.step, "reconcile network");
        } else {
            tracing::info!(network = %n.name, desired = %desired, step = %outcome.step, "reconcile network");
        }
        let result = match taken {
            Ok(r) => r,
            Err(e) => return self.network_error(n, record, now, outcome, e, false).await,
        };
        outcome.result = result;
        outcome.ready = desired == Desired::Up && plan.ready;
        // Written only when they changed: a steady tick writes nothing.
        let reported = record.reported_conflicts.as_deref().unwrap_or("");
        if plan.routes_looked && reported != plan.conflicts.join("; ") {
            self.report_conflicts(n, &plan.conflicts).await;
        }
        if !plan.failures.is_empty() {
            // A failed NAT gateway is being replaced; what failed it may fail the next.
            let e = fleet_shared::FleetError::Internal(plan.failures.join("; "));
            return self.network_error(n, record, now, outcome, e, false).await;
        }
        let settled = plan.ready || desired == Desired::Down;
        if record.attempts > 0 && settled {
            if let Err(e) = self.store.clear_network_backoff(&n.name).await {
                tracing::warn!(network = %n.name, error = %e, "clearing backoff failed");
            }
        }
        outcome
    }

    /// Takes the plan's actions in order, then announces.
    async fn take(
        &self,
        n: &NetworkConfig,
        plan: &NetworkPlan,
        record: &NetworkRecord,
        removed: bool,
        inv: &Invocation,
    ) -> Result<StepResult> {
        let name = n.name.as_str();
        let mut route_errors: Vec<fleet_shared::FleetError> = vec![];
        for action in &plan.actions {
            if action.is_destructive() {
                let decided_by = if removed {
                    "the network was removed from the config"
                } else {
                    "every cluster of the network is down (or the gateway failed)"
                };
                let entry = AuditEntry {
                    at: inv.now,
                    step: action.describe(),
                    decided_by: decided_by.into(),
                    request_id: inv.request_id.clone(),
                    generation: String::new(),
                };
                self.store.audit(&network_history_key(name), &entry).await?;
            }
            tracing::info!(network = %name, action = %action.describe(), "network action");
            match self.act(n, action, inv).await {
                Ok(()) => {}
                // One route table refused (not listed in IAM's `NetworkRouteTableIds` yet,
                // a table being deleted) must not keep the others, or the evening's NAT
                // gateway that bills, from their actions: the error is reported after them.
                Err(e) if action.is_route() => {
                    tracing::warn!(network = %name, action = %action.describe(), error = %e, "route action failed");
                    route_errors.push(e);
                }
                Err(e) => return Err(e),
            }
        }
        // The first that backing off will not cure, else the first.
        if let Some(i) = route_errors.iter().position(|e| !e.is_retryable()) {
            return Err(route_errors.swap_remove(i));
        }
        if let Some(e) = route_errors.into_iter().next() {
            return Err(e);
        }
        let region = self.network_place(n).region;
        let announced = match plan.announce {
            Announce::None => false,
            Announce::RecordDown => {
                self.store
                    .record_network_transition(
                        name,
                        Desired::Down,
                        inv.now,
                        inv.now,
                        "down (never up)",
                    )
                    .await?;
                self.store
                    .mark_network_announced(name, Desired::Down)
                    .await?;
                true
            }
            Announce::Up => {
                // Listed (again) once a morning, so that a network up before the list
                // existed is found too if it is removed from the config.
                self.store
                    .remember_network(name, &self.network_place(n))
                    .await?;
                // The ids as recorded after this tick's actions (a found one included).
                let gateways = self.store.network(name).await?.gateways;
                let event = NetworkReady {
                    network: name.to_string(),
                    region,
                    nat_gateways: n
                        .nat_gateways
                        .iter()
                        .filter_map(|g| gateways.get(&g.subnet_id)?.nat_gateway_id.clone())
                        .collect(),
                    route_tables: n.route_tables().map(|(_, r)| r.to_string()).collect(),
                    conflicts: plan.conflicts.clone(),
                    at: inv.now,
                };
                let change = PhaseChange {
                    phase: Desired::Up,
                    since: plan.billing_since.unwrap_or(inv.now).min(inv.now),
                    text: format!(":globe_with_meridians: network `{name}` is up: NAT gateways available, routes in place"),
                };
                self.announce_network(name, record, &event, &change, inv.now)
                    .await?
            }
            Announce::Down => {
                let event = NetworkDown {
                    network: name.to_string(),
                    region,
                    at: inv.now,
                };
                self.announce_network(
                    name,
                    record,
                    &event,
                    &down_change(name, removed, inv.now),
                    inv.now,
                )
                .await?
            }
        };
        Ok(if announced || !plan.actions.is_empty() {
            StepResult::Done
        } else if plan.waiting.is_empty() {
            StepResult::Steady
        } else {
            StepResult::Waiting
        })
    }

    async fn act(&self, n: &NetworkConfig, action: &NetworkAction, inv: &Invocation) -> Result<()> {
        let name = n.name.as_str();
        let ec2 = &self.network_ec2(n);
        match action {
            NetworkAction::RecordFound {
                subnet,
                token,
                allocation_id,
                nat_gateway_id,
            } => {
                if let Some(a) = allocation_id {
                    self.store.record_allocation(name, subnet, token, a).await?;
                }
                if let Some(id) = nat_gateway_id {
                    self.store
                        .record_nat_gateway(name, subnet, token, id, inv.now)
                        .await?;
                }
            }
            NetworkAction::Provision {
                subnet,
                token,
                allocation_id,
            } => {
                let token = match token {
                    Some(t) => t.clone(),
                    None => {
                        let t = creation_token_candidate(
                            &inv.request_id,
                            &format!("{name}/{subnet}"),
                            inv.now,
                        );
                        self.store
                            .remember_network(name, &self.network_place(n))
                            .await?;
                        if !self.store.begin_gateway(name, subnet, &t, inv.now).await? {
                            // Another invocation began it: the next tick reads its record.
                            return Ok(());
                        }
                        t
                    }
                };
                let allocation = match allocation_id {
                    Some(a) => a.clone(),
                    None => {
                        let a = network_api::allocate(ec2, &self.stack, name, &token).await?;
                        self.store
                            .record_allocation(name, subnet, &token, &a)
                            .await?;
                        a
                    }
                };
                let id = network_api::create_nat_gateway(
                    ec2,
                    &self.stack,
                    name,
                    subnet,
                    &allocation,
                    &token,
                )
                .await?;
                self.store
                    .record_nat_gateway(name, subnet, &token, &id, inv.now)
                    .await?;
            }
            NetworkAction::CreateRoute {
                route_table,
                nat_gateway,
            } => network_api::route(ec2, route_table, nat_gateway, false).await?,
            NetworkAction::ReplaceRoute {
                route_table,
                nat_gateway,
                was,
                remember,
            } => {
                if *remember {
                    // Recorded before it is replaced: the evening puts it back.
                    self.store
                        .record_adopted_route(name, route_table, was)
                        .await?;
                }
                network_api::route(ec2, route_table, nat_gateway, true).await?
            }
            NetworkAction::RestoreRoute { route_table, to } => {
                network_api::restore_route(ec2, route_table, to).await?;
                self.store.forget_adopted_route(name, route_table).await?
            }
            NetworkAction::DeleteRoute { route_table, .. } => {
                network_api::delete_route(ec2, route_table).await?
            }
            NetworkAction::DeleteNatGateway { nat_gateway, .. } => {
                network_api::delete_nat_gateway(ec2, nat_gateway).await?
            }
            NetworkAction::ReleaseAddress { allocation_id, .. } => {
                network_api::release(ec2, allocation_id).await?
            }
            NetworkAction::Forget { subnet, token } => {
                self.store.forget_gateway(name, subnet, token).await?
            }
        }
        Ok(())
    }

    /// Records the phase once and publishes its event (at least once, as a cluster's),
    /// then tells Slack `change.text`.
    async fn announce_network<E: BusEvent>(
        &self,
        name: &str,
        record: &NetworkRecord,
        event: &E,
        change: &PhaseChange,
        now: Timestamp,
    ) -> Result<bool> {
        let phase = change.phase;
        let detail = match phase {
            Desired::Up => "ready",
            Desired::Down => "down",
        };
        let recorded = self
            .store
            .record_network_transition(name, phase, change.since, now, detail)
            .await?;
        if !recorded {
            let claimed = record.phase == Some(phase)
                && self
                    .store
                    .claim_network_announcement(name, phase, now, 2.minutes())
                    .await?;
            if !claimed {
                return Ok(false);
            }
        }
        self.bus.publish(event).await?;
        self.store.mark_network_announced(name, phase).await?;
        tracing::info!(network = %name, event = E::DETAIL_TYPE, "published");
        self.notifier.send_or_warn(&change.text).await;
        Ok(true)
    }

    /// Tells people about route conflicts once per distinct set (and when they clear).
    async fn report_conflicts(&self, n: &NetworkConfig, conflicts: &[String]) {
        let text = conflicts.join("; ");
        match self.store.record_conflicts(&n.name, &text).await {
            Ok(true) if !text.is_empty() => {
                tracing::warn!(network = %n.name, conflicts = %text, "route conflicts");
                self.notifier
                    .send_or_warn(&format!(":warning: network `{}`: {text}", n.name))
                    .await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(network = %n.name, error = %e, "recording route conflicts failed")
            }
        }
    }

    /// Retryable errors back off quietly; the rest are recorded once and sent to Slack.
    async fn network_error(
        &self,
        n: &NetworkConfig,
        record: &NetworkRecord,
        now: Timestamp,
        mut outcome: NetworkOutcome,
        e: fleet_shared::FleetError,
        observing: bool,
    ) -> NetworkOutcome {
        let attempts = record.attempts.saturating_add(1);
        let retry_at = now.checked_add(backoff(attempts)).unwrap_or(now);
        outcome.error = Some(e.to_string());
        if observing && e.is_retryable() {
            // Nothing was decided: the next tick looks again.
            tracing::warn!(network = %n.name, error = %e, "observing the network failed");
            outcome.result = StepResult::Backoff;
            return outcome;
        }
        if e.is_retryable() {
            tracing::warn!(network = %n.name, error = %e, %retry_at, "retryable error; backing off");
            outcome.result = StepResult::Backoff;
            if let Err(e) = self
                .store
                .set_network_backoff(&n.name, retry_at, attempts)
                .await
            {
                tracing::error!(network = %n.name, error = %e, "recording backoff failed");
            }
            return outcome;
        }
        tracing::error!(network = %n.name, step = %outcome.step, error = %e, "network step failed");
        outcome.result = StepResult::Failed;
        let is_new = self
            .store
            .record_network_failure(
                &n.name,
                now,
                &e.to_string(),
                &error_key(&e),
                retry_at,
                attempts,
            )
            .await
            .unwrap_or(true);
        if is_new {
            let text = format!(
                ":warning: network `{}`: `{}` failed: {e}. Retrying after {retry_at}.",
                n.name, outcome.step
            );
            self.notifier.send_or_warn(&text).await;
        }
        outcome
    }
}

/// Whether a cluster wanted down still needs its network: one the fleet brought up, is
/// bringing up (its creation began: a token) or owns, until it is recorded down. One the
/// fleet never began, owns or adopted (someone else's of that name) would hold it for ever.
fn holds_the_evening(r: &fleet_shared::state::model::RecordedState) -> bool {
    match r.phase {
        Some(Desired::Up) => true,
        Some(Desired::Down) => !r.announced,
        None => {
            r.creation_token.is_some() || r.owned_generation.is_some() || r.adopted_at.is_some()
        }
    }
}

/// Kinds of ids made anew by every attempt (a subnet's or route table's id is kept: it
/// says where).
const FRESH_IDS: [&str; 4] = ["eipalloc", "eipassoc", "nat", "eni"];

/// What an error is, without what changes on every attempt (EC2's encoded authorization
/// message, request ids, the ids of a fresh address or gateway): people hear of each once.
fn error_key(e: &fleet_shared::FleetError) -> String {
    match e {
        fleet_shared::FleetError::Aws {
            service,
            operation,
            code,
            ..
        } => format!("{service} {operation} {code}"),
        other => other
            .to_string()
            .split_whitespace()
            .map(|w| match w.split_once('-') {
                Some((prefix, id))
                    if FRESH_IDS.contains(&prefix)
                        && id.len() >= 8
                        && id
                            .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                            .chars()
                            .all(|c| c.is_ascii_hexdigit()) =>
                {
                    format!("{prefix}-…")
                }
                _ => w.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// A phase to record and announce: since when (the history's date), and what Slack hears.
struct PhaseChange {
    phase: Desired,
    since: Timestamp,
    text: String,
}

/// The evening's (or a removed network's) phase change.
fn down_change(name: &str, removed: bool, now: Timestamp) -> PhaseChange {
    let text = if removed {
        format!(":wastebasket: network `{name}` was removed from the config: its NAT gateways are deleted and Elastic IPs released; default routes that pointed at them stay as blackholes (the route tables are no longer listed): delete them, or list the tables under another network, whose morning replaces them")
    } else {
        format!(":zzz: network `{name}` is down: NAT gateways deleted, Elastic IPs released")
    };
    PhaseChange {
        phase: Desired::Down,
        since: now,
        text,
    }
}

/// A plan in a line: its actions, else what it waits for, else `none`.
pub fn describe(plan: &NetworkPlan) -> String {
    let mut parts: Vec<String> = plan.actions.iter().map(NetworkAction::describe).collect();
    match plan.announce {
        Announce::Up => parts.push("announce-ready".into()),
        Announce::Down => parts.push("announce-down".into()),
        Announce::RecordDown => parts.push("record-down (never up)".into()),
        Announce::None => {}
    }
    if parts.is_empty() {
        if plan.waiting.is_empty() {
            "none".into()
        } else {
            format!("wait: {}", plan.waiting.join("; "))
        }
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_told_once_whatever_changes_between_attempts() {
        let failed = |alloc: &str| {
            fleet_shared::FleetError::Internal(format!(
                "the NAT gateway in subnet-0abc12345 failed (Resource.AlreadyAssociated: Elastic IP address {alloc} could not be associated); it is replaced after a backoff"
            ))
        };
        assert_eq!(
            error_key(&failed("eipalloc-0123456789abcdef0")),
            error_key(&failed("eipalloc-0fedcba9876543210."))
        );
        assert!(error_key(&failed("eipalloc-0123456789abcdef0")).contains("subnet-0abc12345"));
    }
}
