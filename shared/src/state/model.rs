//! The state table's data model: what is recorded about each cluster, as plain types
//! with no AWS SDK in sight, so that pure decisions (the reconciler, the cost report's
//! uptime) can take them. The store that reads and writes them is [`super::StateStore`].

use jiff::Timestamp;
use serde::Serialize;

use crate::schedule::{Desired, Override};

/// What a recorded transition was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransitionKind {
    /// The cluster became ready.
    Up,
    /// The cluster went down (destroyed or scaled to zero).
    Down,
    /// A transition failed in a way a person may need to see.
    Failed,
}

impl TransitionKind {
    /// The word in the table's sort keys: `up`, `down`, `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TransitionKind::Up => "up",
            TransitionKind::Down => "down",
            TransitionKind::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "up" => Some(TransitionKind::Up),
            "down" => Some(TransitionKind::Down),
            "failed" => Some(TransitionKind::Failed),
            _ => None,
        }
    }
}

/// What the table says about a cluster's last completed transition.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecordedState {
    /// `up` or `down`; `None` before the first transition.
    pub phase: Option<Desired>,
    /// When the phase was recorded.
    pub since: Option<Timestamp>,
    /// Identifies the cluster incarnation the phase belongs to (its creation time), so a
    /// cluster recreated behind our back is announced again.
    pub generation: Option<String>,
    /// The event for the phase reached the bus.
    pub announced: bool,
    /// No step before this instant: the backoff after a transient failure.
    pub backoff_until: Option<Timestamp>,
    /// Consecutive failures (the backoff doubles with each: 2, 4, 8, 16, then 30 minutes).
    pub attempts: u32,
    /// The last distinct failure, published once (`Cluster Transition Failed`).
    pub last_error: Option<String>,
    /// When the current teardown began (bounds the wait for load balancers to go).
    pub teardown_started: Option<Timestamp>,
    /// The last full look (nodegroups, add-ons) that found the cluster steady in this
    /// phase, and the fingerprint of the cluster's config it was checked against.
    pub checked_at: Option<Timestamp>,
    /// The config fingerprint `checked_at` was checked against.
    pub checked_config: Option<String>,
    /// The `clientRequestToken` of the fleet's `CreateCluster` for this cluster, written
    /// before the call: the incarnation EKS shows with it is the fleet's own.
    pub creation_token: Option<String>,
    /// The generation (creation time) of the incarnation the fleet created (seen with
    /// its token) or adopted. Once set, the token is spent: the next creation takes a new
    /// one.
    pub owned_generation: Option<String>,
    /// Where that incarnation lives, `<account name or hub>/<region>/<EKS name>`
    /// (`hub/eu-west-1/staging`): written with `owned_generation`. A config that moves the
    /// cluster elsewhere while it still runs here is refused, not obeyed with a second
    /// cluster (the first would bill on, out of the fleet's sight).
    pub home: Option<String>,
    /// When and by which invocation the incarnation was adopted (`adopt = true`).
    pub adopted_at: Option<Timestamp>,
    /// The request id of the invocation that adopted it.
    pub adopted_by: Option<String>,
    /// The `spec.limits` of the Karpenter NodePools the fleet capped this evening, as
    /// they were before; restored in the morning (scale mode) and forgotten on the next
    /// up transition.
    pub nodepool_limits: Option<RecordedLimits>,
    /// When this evening's Karpenter part began (the first tick that looked at
    /// Karpenter's side with the cluster wanted down): bounds every wait for Karpenter,
    /// to drain NodeClaims, finalize EC2NodeClasses or answer at all
    /// (`karpenter.drain_minutes`).
    pub karpenter_drain_started: Option<Timestamp>,
    /// When the first step towards the current up transition was taken (decision time):
    /// `Cluster Ready`'s `took_seconds` counts from it. Forgotten at each transition.
    pub rising_since: Option<Timestamp>,
    /// The generation whose bootstrap (secrets, then manifests) was applied, and when
    /// (decision time): `ready_when` is awaited from then. Forgotten at each transition.
    pub bootstrapped: Option<(String, Timestamp)>,
    /// The OIDC issuers (`oidc.eks.<region>.amazonaws.com/id/<ID>`) the `irsa_roles`
    /// were moved to, oldest first, the current one last (the last seven): the trust
    /// statements the next morning moves are those naming one of them. Kept across
    /// transitions.
    pub irsa_issuers: Vec<String>,
    /// The IAM OIDC providers the fleet created for this cluster (their ARNs), recorded
    /// the moment each is made: every one but the current issuer's is deleted once the
    /// roles have moved off it. A provider that was already there is never recorded.
    pub oidc_providers: Vec<String>,
}

/// NodePool limits recorded before the fleet capped them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecordedLimits {
    /// The cluster incarnation (generation) the NodePools belong to: limits recorded on
    /// an incarnation since destroyed are never applied to a new one.
    pub generation: String,
    /// NodePool name to its `spec.limits` as it was (a map of resource to quantity,
    /// `{"cpu": "100", "memory": "400Gi"}`, kept exactly as the API returned it);
    /// `None`: it had no limits.
    pub limits: std::collections::BTreeMap<String, Option<serde_json::Value>>,
}

/// One destructive step or adoption, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// When the step was taken (decision time).
    pub at: Timestamp,
    /// The step as plans and logs describe it (`delete-nodegroups spot`).
    pub step: String,
    /// What decided it: the schedule's reason, an override's, `adopt = true`, a failure.
    pub decided_by: String,
    /// The invocation that took it (Lambda's request id).
    pub request_id: String,
    /// The incarnation acted on (its generation), when known.
    pub generation: String,
}

/// Everything the table holds about a cluster that a tick reads: its state and its
/// override.
#[derive(Debug, Clone, Default)]
pub struct ClusterRecord {
    /// The recorded state (`sk = state`).
    pub state: RecordedState,
    /// The manual override, if one is set and has not expired (`sk = override`).
    pub over: Option<Override>,
}

/// One entry of a cluster's transition history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// Up, down or failed.
    pub kind: TransitionKind,
    /// When (decision time).
    pub at: Timestamp,
    /// What the scheduler said (`ready, generation 1763882400`, `down (destroyed)`).
    pub detail: String,
    /// For an up transition: seconds from its first step to `Cluster Ready`.
    pub took_seconds: Option<i64>,
}

/// The median `took_seconds` of the up transitions within `[from, to)` (the middle one,
/// or the mean of the two middle ones, rounded down); `None` when none says how long it
/// took.
pub fn median_took_seconds(
    transitions: &[Transition],
    from: Timestamp,
    to: Timestamp,
) -> Option<i64> {
    let mut took: Vec<i64> = transitions
        .iter()
        .filter(|t| t.kind == TransitionKind::Up && t.at >= from && t.at < to)
        .filter_map(|t| t.took_seconds)
        .collect();
    took.sort_unstable();
    let n = took.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(took[n / 2]),
        _ => Some((took[n / 2 - 1] + took[n / 2]) / 2),
    }
}

/// Hours a cluster was up within `[from, to)`, from its transitions (oldest first). The
/// phase at `from` is that of the last transition before it (`up_at_start`).
pub fn uptime_hours(
    transitions: &[Transition],
    up_at_start: bool,
    from: Timestamp,
    to: Timestamp,
) -> f64 {
    let mut up_since = up_at_start.then_some(from);
    let mut seconds = 0i64;
    for t in transitions.iter().filter(|t| t.at >= from && t.at < to) {
        match t.kind {
            TransitionKind::Up => {
                up_since.get_or_insert(t.at);
            }
            TransitionKind::Down => {
                if let Some(since) = up_since.take() {
                    seconds += t.at.as_second() - since.as_second();
                }
            }
            TransitionKind::Failed => {}
        }
    }
    if let Some(since) = up_since {
        seconds += to.as_second() - since.as_second();
    }
    seconds as f64 / 3600.0
}

/// What the table says about a `[[network]]` (`pk = network#<name>`): its last completed
/// transition and the NAT gateways the fleet made for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetworkRecord {
    /// `up` (NAT gateways available, routes in place) or `down` (nothing of it left that
    /// bills by the hour); `None` before the first transition.
    pub phase: Option<Desired>,
    /// When the phase was recorded.
    pub since: Option<Timestamp>,
    /// The event for the phase (`Network Ready`, `Network Down`) reached the bus.
    pub announced: bool,
    /// No step before this instant: the backoff after a failure.
    pub backoff_until: Option<Timestamp>,
    /// Consecutive failures (the backoff doubles with each, as for clusters).
    pub attempts: u32,
    /// The last distinct failure, sent to Slack once.
    pub last_error: Option<String>,
    /// The last distinct set of route conflicts, sent to Slack once.
    pub reported_conflicts: Option<String>,
    /// The fleet's NAT gateways, by the public subnet they are in (`sk = nat#<subnet>`).
    pub gateways: std::collections::BTreeMap<String, RecordedGateway>,
    /// Default routes `adopt_routes` replaced: route table to the target it had before
    /// (`igw-…`, `nat-…`, `tgw-…`, `eni-…`, `pcx-…`), put back in the evening.
    pub adopted_routes: std::collections::BTreeMap<String, String>,
}

/// A NAT gateway the fleet made (or is making): the only one in its subnet it ever
/// deletes, with its Elastic IP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordedGateway {
    /// Written before anything is created: the `ClientToken` of `CreateNatGateway` and
    /// the `fleet:token` tag of the address and the gateway, so that what a crash left
    /// unrecorded is still known as the fleet's.
    pub token: String,
    /// The Elastic IP's allocation id (`eipalloc-…`), once allocated.
    pub allocation_id: Option<String>,
    /// The NAT gateway's id (`nat-…`), once created.
    pub nat_gateway_id: Option<String>,
    /// When the token was written (decision time): the gateway is created in that tick or
    /// a retry of it, and bills from then.
    pub begun_at: Option<Timestamp>,
    /// When the NAT gateway was created (decision time): it bills from then, and a
    /// moment after EC2's reads may not show it yet.
    pub made_at: Option<Timestamp>,
}

/// The key a network's transition history is kept under (`network:<name>`): the cost
/// report reads its hours up with [`uptime_hours`] as a cluster's. Cluster names cannot
/// hold `:`, so the two never meet.
pub fn network_history_key(network: &str) -> String {
    format!("network:{network}")
}
