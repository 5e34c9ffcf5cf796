//! The scheduler's answers: a tick's outcomes, a plan, a status, an override set or
//! cleared. Every timestamp is RFC 3339 UTC in decision time.

use fleet_shared::config::Mode;
use fleet_shared::schedule::{Desired, Override, Rule};
use fleet_shared::state::model::{AuditEntry, RecordedState, Transition};
use jiff::Timestamp;
use serde::Serialize;

/// How a tick ended for one cluster (`result` in its outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepResult {
    /// The step was taken.
    Done,
    /// Waiting for AWS or Kubernetes to finish something (a cluster CREATING).
    Waiting,
    /// Nothing to do: the cluster is as the schedule wants it.
    Steady,
    /// A transient failure: retried after the backoff, nobody paged.
    Backoff,
    /// A failure a person may need to see: recorded, published, retried later.
    Failed,
    /// Not finished this tick: the invocation's time ran out first; the next tick goes on.
    Skipped,
    /// The cluster is not the fleet's: left alone.
    Foreign,
    /// Tagged as this fleet's but not an incarnation it created or adopted: left alone
    /// (`adopt = true` takes it over).
    NotCreatedByFleet,
    /// Taken over this tick (`adopt = true`).
    Adopted,
}

/// What one tick did for one cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub desired: Desired,
    pub reason: String,
    pub actual: String,
    pub step: String,
    /// How the tick ended for the cluster.
    pub result: StepResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a step had to skip or leave behind.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// `{"action":"reconcile"}` or a scheduled tick: one outcome per cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    /// In config order.
    pub clusters: Vec<Outcome>,
    /// In config order, then networks removed from the config that are still being
    /// taken away; absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkOutcome>,
}

/// `{"action":"plan"}`: what the schedule wants at `at` and the step that would follow.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The instant planned for.
    pub at: Timestamp,
    /// In config order.
    pub clusters: Vec<PlanRow>,
    /// In config order; absent when the config has no `[[network]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkPlanRow>,
}

/// One network's plan.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkPlanRow {
    /// The network's name.
    pub name: String,
    /// Up while any of its clusters is wanted up.
    pub desired: Desired,
    /// The recorded phase.
    pub actual: String,
    /// The actions a tick would take, or what it waits for.
    pub next_step: String,
    /// Ready once those are taken (its clusters' nodes may come up).
    pub ready: bool,
    /// Route conflicts left alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
}

/// One cluster's plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    /// The cluster's name.
    pub name: String,
    /// What the schedule wants.
    pub desired: Desired,
    /// What EKS shows (`ACTIVE, 2 nodegroups`).
    pub actual: String,
    /// The step a tick would take (`wait: backing off until …, then …` in a backoff).
    pub next_step: String,
    /// Why, in words.
    pub reason: String,
    /// The rule that decided.
    pub rule: Rule,
    /// When the desired state next changes, within 40 days.
    pub next_change: Option<Timestamp>,
}

/// `{"action":"up"|"down", …}`: the override set, and the tick it made at once.
#[derive(Debug, Clone, Serialize)]
pub struct OverrideSet {
    /// The cluster's name.
    pub cluster: String,
    /// The override now in force.
    #[serde(rename = "override")]
    pub over: Override,
    /// The cluster's tick, taken at once.
    pub reconcile: Outcome,
}

/// `{"action":"clear", …}`: the override cleared, and the tick it made at once.
#[derive(Debug, Clone, Serialize)]
pub struct OverrideCleared {
    /// The cluster's name.
    pub cluster: String,
    /// Whether there was one.
    pub cleared: bool,
    /// The override that was cleared.
    #[serde(rename = "override")]
    pub over: Option<Override>,
    /// The cluster's tick, taken at once.
    pub reconcile: Outcome,
}

/// `{"action":"status"}`: what is recorded and observed of every cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When it was read.
    pub at: Timestamp,
    /// In config order.
    pub clusters: Vec<StatusRow>,
    /// In config order; absent when the config has no `[[network]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkStatusRow>,
}

/// One network's status.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkStatusRow {
    /// The network's name.
    pub name: String,
    /// Up while any of its clusters is wanted up.
    pub desired: Desired,
    /// The clusters that name it.
    pub clusters: Vec<String>,
    /// The state table's record (phase, the fleet's NAT gateways and Elastic IPs).
    pub recorded: fleet_shared::state::model::NetworkRecord,
    /// The last five transitions, newest first.
    pub last_transitions: Vec<Transition>,
    /// Hours up since the start of the month (UTC), to the hundredth.
    pub uptime_hours_this_month: f64,
}

/// One cluster's status.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    /// The cluster's name.
    pub name: String,
    /// `destroy` or `scale`.
    pub mode: Mode,
    /// `protect = true`.
    pub protect: bool,
    /// What the schedule wants now.
    pub desired: Desired,
    /// Why, in words.
    pub reason: String,
    /// What EKS shows.
    pub actual: String,
    /// The EKS cluster's name (`eks_name`, else the fleet name).
    pub eks_name: String,
    /// The `[[account]]` it lives in; `None`: the hub's own account.
    pub account: Option<String>,
    /// The AWS region it lives in.
    pub region: String,
    /// The API server's URL, while the cluster exists.
    pub endpoint: Option<String>,
    /// The API server's CA bundle (base64 PEM, EKS's `certificateAuthority.data`), while
    /// the cluster exists: with `endpoint`, what a kubeconfig needs.
    pub certificate_authority: Option<String>,
    /// The state table's record.
    pub recorded: RecordedState,
    /// The override in force, if any.
    #[serde(rename = "override")]
    pub over: Option<Override>,
    /// When the desired state next changes, within 40 days.
    pub next_change: Option<Timestamp>,
    /// The last five transitions, newest first.
    pub last_transitions: Vec<Transition>,
    /// The last five destructive steps and adoptions, newest first.
    pub last_destructive_steps: Vec<AuditEntry>,
    /// Hours up since the start of the month (UTC), to the hundredth.
    pub uptime_hours_this_month: f64,
    /// The median time from a morning's first step to `Cluster Ready` this month (UTC),
    /// in seconds; `null` before one was timed.
    pub median_rebuild_seconds_this_month: Option<i64>,
}

/// What one tick did for one `[[network]]`.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkOutcome {
    /// The network's name.
    pub name: String,
    /// Up while any of its clusters is wanted up.
    pub desired: Desired,
    /// The recorded phase (`up`, `down`, `never up`).
    pub actual: String,
    /// The actions taken (`create-nat-gateway subnet-…; create-route rtb-…->nat-…`), or
    /// what it waits for.
    pub step: String,
    /// How the tick ended for the network.
    pub result: StepResult,
    /// Its NAT gateways are available and routes in place: its clusters' nodes may come up.
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it waits for, and route conflicts left alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
