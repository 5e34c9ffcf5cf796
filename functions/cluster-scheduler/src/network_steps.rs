//! A `[[network]]`'s next actions: its NAT gateways up before the nodes of the first of
//! its clusters, down after the last of them (README, "Networks").
//!
//! Pure: no I/O, no clock. Every action is idempotent and none waits on EC2; the next
//! tick observes again. A NAT gateway takes minutes to become `available` and a minute or
//! more to be `deleted`, so a network's morning and evening span ticks as a cluster's do.
//! Only what the fleet recorded (or finds by the token it recorded before creating it) is
//! deleted; a default route that points elsewhere is a conflict, never replaced unless
//! `adopt_routes = true`.

use fleet_shared::config::NetworkConfig;
use fleet_shared::schedule::Desired;
use fleet_shared::state::model::{NetworkRecord, RecordedGateway};
use serde::Serialize;

/// What EC2 shows of a network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedNetwork {
    /// NAT gateways in the configured public subnets, whoever made them, in any state
    /// EC2 still shows (`deleted` ones for about an hour).
    pub nat_gateways: Vec<ObservedNat>,
    /// Elastic IPs tagged `fleet:network=<name>`.
    pub addresses: Vec<ObservedAddress>,
    /// The configured route tables that exist, with their default route.
    pub route_tables: Vec<ObservedRouteTable>,
}

/// One NAT gateway.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedNat {
    /// `nat-…`.
    pub id: String,
    pub subnet_id: String,
    /// `pending`, `available`, `deleting`, `deleted` or `failed`.
    pub state: String,
    /// The allocation ids of its Elastic IPs.
    pub allocation_ids: Vec<String>,
    /// Its `fleet:token` tag.
    pub token: Option<String>,
    /// Its `fleet:managed-by` tag.
    pub managed_by: Option<String>,
    /// Its `fleet:network` tag.
    pub network: Option<String>,
    /// `failureCode: failureMessage` of a `failed` gateway.
    pub failure: Option<String>,
}

/// One Elastic IP.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedAddress {
    /// `eipalloc-…`.
    pub allocation_id: String,
    /// Set while it is associated (with a NAT gateway's network interface).
    pub association_id: Option<String>,
    /// Its `fleet:token` tag.
    pub token: Option<String>,
    /// Its `fleet:managed-by` tag.
    pub managed_by: Option<String>,
}

/// A route table and its default route (`0.0.0.0/0`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedRouteTable {
    /// `rtb-…`.
    pub id: String,
    /// The default route's target, if it has one.
    pub default_route: Option<DefaultRoute>,
}

/// Where a default route points.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultRoute {
    /// The target's id (`nat-…`, `igw-…`, `tgw-…`, `eni-…`, …).
    pub target: String,
    /// The target is gone (`blackhole`): nothing goes through it.
    pub blackhole: bool,
}

/// One idempotent action of a network's tick, in the order taken.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum NetworkAction {
    /// Record ids found by the recorded token's tag (a crash after the create and before
    /// the record).
    RecordFound {
        subnet: String,
        token: String,
        allocation_id: Option<String>,
        nat_gateway_id: Option<String>,
    },
    /// Make the subnet's NAT gateway: write a token (if none), allocate an Elastic IP (if
    /// none), create the NAT gateway with it; each recorded as made.
    Provision {
        subnet: String,
        token: Option<String>,
        allocation_id: Option<String>,
    },
    CreateRoute {
        route_table: String,
        nat_gateway: String,
    },
    /// Point a default route that goes elsewhere at the fleet's NAT gateway (a blackhole
    /// left by one of the fleet's, or `adopt_routes = true`).
    ReplaceRoute {
        route_table: String,
        nat_gateway: String,
        was: String,
        /// Someone else's working route, adopted: `was` is recorded first and put back
        /// in the evening.
        remember: bool,
    },
    /// Put an adopted route back as it was (`to`: its old target), then forget it.
    RestoreRoute {
        route_table: String,
        to: String,
    },
    DeleteRoute {
        route_table: String,
        nat_gateway: String,
    },
    DeleteNatGateway {
        subnet: String,
        nat_gateway: String,
    },
    ReleaseAddress {
        subnet: String,
        allocation_id: String,
    },
    /// The subnet's gateway and address are gone: forget them (the next morning makes a
    /// new one with a new token).
    Forget {
        subnet: String,
        token: String,
    },
}

impl NetworkPlan {
    /// Ready as things are, before this tick's actions: gateways available and no route
    /// still to create or replace (what a tick that does not act, backing off or leaving
    /// it to another invocation, may let the nodes through on).
    pub fn ready_as_seen(&self) -> bool {
        self.ready
            && !self.actions.iter().any(|a| {
                matches!(
                    a,
                    NetworkAction::CreateRoute { .. } | NetworkAction::ReplaceRoute { .. }
                )
            })
    }
}

impl NetworkAction {
    /// Whether it deletes or replaces something (audited before it is taken).
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            NetworkAction::ReplaceRoute { .. }
                | NetworkAction::RestoreRoute { .. }
                | NetworkAction::DeleteRoute { .. }
                | NetworkAction::DeleteNatGateway { .. }
                | NetworkAction::ReleaseAddress { .. }
        )
    }

    /// Whether it changes a route (one route table's failure does not stop the rest).
    pub fn is_route(&self) -> bool {
        matches!(
            self,
            NetworkAction::CreateRoute { .. }
                | NetworkAction::ReplaceRoute { .. }
                | NetworkAction::RestoreRoute { .. }
                | NetworkAction::DeleteRoute { .. }
        )
    }

    /// Short description for plans and logs (`create-route rtb-1->nat-2`).
    pub fn describe(&self) -> String {
        match self {
            NetworkAction::RecordFound { subnet, .. } => format!("record-found {subnet}"),
            NetworkAction::Provision { subnet, .. } => format!("create-nat-gateway {subnet}"),
            NetworkAction::CreateRoute {
                route_table,
                nat_gateway,
            } => {
                format!("create-route {route_table}->{nat_gateway}")
            }
            NetworkAction::ReplaceRoute {
                route_table,
                nat_gateway,
                was,
                ..
            } => {
                format!("replace-route {route_table}->{nat_gateway} (was {was})")
            }
            NetworkAction::RestoreRoute { route_table, to } => {
                format!("restore-route {route_table}->{to}")
            }
            NetworkAction::DeleteRoute { route_table, .. } => format!("delete-route {route_table}"),
            NetworkAction::DeleteNatGateway { nat_gateway, .. } => {
                format!("delete-nat-gateway {nat_gateway}")
            }
            NetworkAction::ReleaseAddress { allocation_id, .. } => {
                format!("release-address {allocation_id}")
            }
            NetworkAction::Forget { subnet, .. } => format!("forget {subnet}"),
        }
    }
}

/// What the network's phase calls for once the actions are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Announce {
    /// Nothing (steady, or not there yet).
    None,
    /// Record `up` and publish `Network Ready`.
    Up,
    /// Record `down` and publish `Network Down`.
    Down,
    /// Record `down` without an event: nothing was ever made.
    RecordDown,
}

/// A network's tick: the actions, what is waited for, the conflicts found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkPlan {
    pub actions: Vec<NetworkAction>,
    /// Why the network is not where it should be yet, when it is not.
    pub waiting: Vec<String>,
    /// Default routes that point elsewhere, left alone (`rtb-… -> igw-…`).
    pub conflicts: Vec<String>,
    pub announce: Announce,
    /// Up and usable once the actions are taken: every NAT gateway `available` and the
    /// routes in place (conflicting routes aside). Gates the nodes of its clusters.
    pub ready: bool,
    /// A listed route table does not exist (the morning waits for a person).
    #[serde(skip)]
    pub missing_route_table: bool,
    /// NAT gateways EC2 reports `failed`, one line each without the gateway's id
    /// (`subnet-…: Gateway.NotAttached: …`), so that the same cause repeated by every
    /// replacement reads the same: recorded as a failure (backoff, Slack once).
    pub failures: Vec<String>,
    /// When the network began to bill this morning: when its earliest NAT gateway in use
    /// was begun, in decision time (the `up` transition is dated so, for the cost
    /// report's hours).
    #[serde(skip)]
    pub billing_since: Option<jiff::Timestamp>,
    /// Every listed route table was looked at (the gateways were available, or the
    /// evening's clusters were down): only then do `conflicts` say all there is.
    #[serde(skip)]
    pub routes_looked: bool,
}

/// Everything a network's decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct NetworkSituation<'a> {
    pub config: &'a NetworkConfig,
    /// Up while any cluster naming it is wanted up.
    pub desired: Desired,
    /// The clusters naming it that are wanted down but not yet recorded down: the
    /// evening waits for them.
    pub clusters_not_down: &'a [String],
    pub observed: &'a ObservedNetwork,
    pub recorded: &'a NetworkRecord,
    /// This fleet's `fleet:managed-by` value.
    pub stack: &'a str,
    /// The instant the tick decides at (decision time, as `begun_at`).
    pub now: jiff::Timestamp,
}

const LIVE: [&str; 2] = ["pending", "available"];

/// The fleet's NAT gateway of a recorded gateway: by its recorded id, or by the token's
/// tag; the newest live one if several (a create retried after a lost answer makes one
/// with the same token, which EC2 returns as the same gateway).
fn our_nat<'a>(
    s: &NetworkSituation<'a>,
    subnet: &str,
    r: &RecordedGateway,
) -> Option<&'a ObservedNat> {
    let ours = |n: &&ObservedNat| {
        n.subnet_id == subnet
            && (r.nat_gateway_id.as_deref() == Some(n.id.as_str())
                || n.token.as_deref() == Some(r.token.as_str()))
    };
    let mut found: Vec<&ObservedNat> = s.observed.nat_gateways.iter().filter(ours).collect();
    // Live before failed before deleting before deleted.
    let rank = |n: &ObservedNat| match n.state.as_str() {
        "available" | "pending" => 0,
        "failed" => 1,
        "deleting" => 2,
        _ => 3,
    };
    found.sort_by_key(|n| rank(n));
    found.first().copied()
}

/// The fleet's Elastic IP of a recorded gateway: the recorded one, else the first with
/// the token's tag (the others a retried allocation left are extras, released).
fn our_address<'a>(s: &NetworkSituation<'a>, r: &RecordedGateway) -> Option<&'a ObservedAddress> {
    let recorded = s
        .observed
        .addresses
        .iter()
        .find(|a| r.allocation_id.as_deref() == Some(a.allocation_id.as_str()));
    recorded.or_else(|| {
        s.observed
            .addresses
            .iter()
            .find(|a| a.token.as_deref() == Some(r.token.as_str()))
    })
}

/// How long a recorded NAT gateway EC2 does not show yet is taken for one being made:
/// EC2's reads are eventually consistent (a gateway created a moment ago may be missing
/// from DescribeNatGateways), while one that existed stays shown, `deleted`, for about an
/// hour. Past this, a gateway missing is gone.
const UNSEEN_GRACE_MINUTES: i64 = 15;

/// A recorded gateway EC2 does not show, begun so recently that it may just not be
/// visible yet: not taken for gone (forgetting it would leave it billing, unrecorded).
fn unseen_yet(s: &NetworkSituation<'_>, r: &RecordedGateway) -> bool {
    let Some(id) = r.nat_gateway_id.as_deref() else {
        return false;
    };
    let shown = s.observed.nat_gateways.iter().any(|n| n.id == id);
    let recent = r.made_at.or(r.begun_at).is_some_and(|b| {
        s.now.duration_since(b) < jiff::SignedDuration::from_mins(UNSEEN_GRACE_MINUTES)
    });
    !shown && recent
}

/// A NAT gateway made by this fleet (its `fleet:managed-by` tag; for this network or
/// another of its networks, whichever incarnation), or recorded by this network.
fn made_by_fleet(s: &NetworkSituation<'_>, nat_id: &str) -> bool {
    s.observed
        .nat_gateways
        .iter()
        .any(|n| n.id == nat_id && n.managed_by.as_deref() == Some(s.stack))
        || s.recorded
            .gateways
            .values()
            .any(|g| g.nat_gateway_id.as_deref() == Some(nat_id))
}

/// The network's next actions (see the module docs).
pub fn plan(s: NetworkSituation<'_>) -> NetworkPlan {
    let mut p = NetworkPlan {
        actions: vec![],
        waiting: vec![],
        conflicts: vec![],
        announce: Announce::None,
        ready: false,
        missing_route_table: false,
        failures: vec![],
        billing_since: None,
        routes_looked: false,
    };
    for g in &s.config.nat_gateways {
        if let Some(r) = s.recorded.gateways.get(&g.subnet_id) {
            let nat = our_nat(&s, &g.subnet_id, r);
            let address = our_address(&s, r);
            let found_nat = nat
                .filter(|n| r.nat_gateway_id.is_none() && LIVE.contains(&n.state.as_str()))
                .map(|n| n.id.clone());
            let found_address = address
                .filter(|_| r.allocation_id.is_none())
                .map(|a| a.allocation_id.clone());
            if found_nat.is_some() || found_address.is_some() {
                p.actions.push(NetworkAction::RecordFound {
                    subnet: g.subnet_id.clone(),
                    token: r.token.clone(),
                    allocation_id: found_address,
                    nat_gateway_id: found_nat,
                });
            }
            // AllocateAddress is not idempotent: an answer lost and retried (by the SDK or
            // a later tick) leaves more than one address with the token. The extras are
            // the fleet's and bill by the hour: released.
            let kept = address.map(|a| a.allocation_id.as_str());
            for extra in s.observed.addresses.iter().filter(|a| {
                a.token.as_deref() == Some(r.token.as_str())
                    && Some(a.allocation_id.as_str()) != kept
                    && a.association_id.is_none()
            }) {
                p.actions.push(NetworkAction::ReleaseAddress {
                    subnet: g.subnet_id.clone(),
                    allocation_id: extra.allocation_id.clone(),
                });
            }
        }
    }
    match s.desired {
        Desired::Up => morning(&s, &mut p),
        Desired::Down => evening(&s, &mut p),
    }
    // A gateway the fleet made in a subnet the config no longer lists (moved to another
    // zone, an entry removed): its NAT gateway and address are taken away whatever the
    // clusters want; in the day only once no listed route table routes through it (the
    // listed gateway takes its routes over first, so the nodes keep their egress).
    for (subnet, r) in &s.recorded.gateways {
        if s.config.nat_gateways.iter().any(|g| &g.subnet_id == subnet) {
            continue;
        }
        let nat = our_nat(&s, subnet, r);
        // Route tables (observed: this network's, and for a network removed from the
        // config the tables other networks list) still routed through it.
        let carrying: Vec<&str> = match nat {
            Some(n) if LIVE.contains(&n.state.as_str()) => s
                .observed
                .route_tables
                .iter()
                .filter(|t| t.default_route.as_ref().is_some_and(|d| d.target == n.id))
                .map(|t| t.id.as_str())
                .collect(),
            _ => vec![],
        };
        let own: Vec<&str> = s.config.route_tables().map(|(_, r)| r).collect();
        // Kept while its clusters may run (the day, or an evening still waiting for them),
        // and while a table another network lists routes through it: that network takes
        // the route over (replaced in its morning, deleted in its evening).
        let keep = !carrying.is_empty()
            && (s.desired == Desired::Up
                || !s.clusters_not_down.is_empty()
                || carrying.iter().any(|t| !own.contains(t)));
        if !keep {
            retire(&s, &mut p, subnet, r, nat, our_address(&s, r));
        } else if let Some(n) = nat {
            p.waiting.push(format!(
                "NAT gateway {} in {subnet} (no longer listed) still carries {}; deleted once the listed gateway takes its routes",
                n.id,
                carrying.join(", ")
            ));
        }
    }
    // Addresses the fleet allocated for this network that no record knows (a retried
    // allocation whose record was forgotten meanwhile): unattached, they only bill.
    let tokens: Vec<&str> = s
        .recorded
        .gateways
        .values()
        .map(|g| g.token.as_str())
        .collect();
    for a in &s.observed.addresses {
        let stray = a.managed_by.as_deref() == Some(s.stack)
            && a.association_id.is_none()
            && !a.token.as_deref().is_some_and(|t| tokens.contains(&t))
            && !p.actions.iter().any(|x| {
                matches!(x, NetworkAction::ReleaseAddress { allocation_id, .. } if *allocation_id == a.allocation_id)
            });
        if stray {
            p.actions.push(NetworkAction::ReleaseAddress {
                subnet: String::new(),
                allocation_id: a.allocation_id.clone(),
            });
        }
    }
    p
}

fn morning(s: &NetworkSituation<'_>, p: &mut NetworkPlan) {
    let mut all_available = true;
    let mut routes = vec![];
    for g in &s.config.nat_gateways {
        let subnet = &g.subnet_id;
        let Some(r) = s.recorded.gateways.get(subnet) else {
            p.actions.push(NetworkAction::Provision {
                subnet: subnet.clone(),
                token: None,
                allocation_id: None,
            });
            all_available = false;
            continue;
        };
        let address = our_address(s, r);
        match our_nat(s, subnet, r) {
            Some(n) if n.state == "available" => {
                p.billing_since = match (p.billing_since, r.made_at.or(r.begun_at)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                for rtb in &g.route_table_ids {
                    route_up(s, p, &mut routes, rtb, &n.id);
                }
            }
            Some(n) if n.state == "pending" => {
                all_available = false;
                p.waiting.push(format!("NAT gateway {} is pending", n.id));
            }
            Some(n) if n.state == "failed" => {
                // Deleted, its address released and forgotten: the next tick makes a new
                // one with a fresh address (the old one may be what failed). The cause
                // (often the subnet's: no route to an internet gateway, no free address)
                // may fail the next one too: it backs off and is told once.
                all_available = false;
                let why = n.failure.as_deref().unwrap_or("no reason given");
                p.waiting
                    .push(format!("NAT gateway {} failed ({why}); replacing it", n.id));
                p.failures.push(format!(
                    "the NAT gateway in {subnet} failed ({why}); it is replaced after a backoff"
                ));
                retire(s, p, subnet, r, Some(n), address);
            }
            Some(n) if n.state == "deleting" => {
                all_available = false;
                p.waiting
                    .push(format!("NAT gateway {} is being deleted", n.id));
            }
            None if unseen_yet(s, r) => {
                all_available = false;
                p.waiting.push(format!(
                    "NAT gateway {} is not shown by EC2 yet",
                    r.nat_gateway_id.as_deref().unwrap_or_default()
                ));
            }
            // Never made (a token written, then a crash or a failed create), or deleted.
            nat => {
                all_available = false;
                let made = r.nat_gateway_id.is_some() || nat.is_some();
                if made {
                    // A token is spent once its gateway existed: release and forget, then
                    // make a new one.
                    retire(s, p, subnet, r, None, address);
                } else {
                    p.actions.push(NetworkAction::Provision {
                        subnet: subnet.clone(),
                        token: Some(r.token.clone()),
                        allocation_id: address.map(|a| a.allocation_id.clone()),
                    });
                }
            }
        }
    }
    p.actions.extend(routes);
    p.routes_looked = all_available;
    p.ready = all_available && !p.missing_route_table;
    if p.ready {
        let announced = s.recorded.phase == Some(Desired::Up) && s.recorded.announced;
        if !announced {
            p.announce = Announce::Up;
        }
    }
}

/// A default route that is not the fleet's, in the same words morning and evening (people
/// are told once per distinct set).
fn conflict(rtb: &str, d: &DefaultRoute) -> String {
    format!(
        "{rtb}: default route -> {}{} is not the fleet's; left alone (adopt_routes = true replaces it)",
        d.target,
        if d.blackhole { " (blackhole)" } else { "" }
    )
}

/// The morning's route for one route table: created, replaced (a blackhole of the
/// fleet's, or `adopt_routes`), or a conflict.
fn route_up(
    s: &NetworkSituation<'_>,
    p: &mut NetworkPlan,
    routes: &mut Vec<NetworkAction>,
    rtb: &str,
    nat: &str,
) {
    let Some(table) = s.observed.route_tables.iter().find(|t| t.id == rtb) else {
        // Nodes behind it would have no egress: the morning waits (a typo or a table
        // deleted is for a person to fix).
        p.waiting.push(format!(
            "{rtb}: route table not found; its nodes would have no egress"
        ));
        p.missing_route_table = true;
        return;
    };
    match &table.default_route {
        None => routes.push(NetworkAction::CreateRoute {
            route_table: rtb.into(),
            nat_gateway: nat.into(),
        }),
        Some(d) if d.target == nat => {}
        // A route to a NAT gateway that is gone carries nothing and never will again (a
        // deleted NAT gateway does not come back; a firewall's or an attachment's
        // blackhole may, and stays a conflict), and a route to another of the fleet's
        // gateways (one being moved away from, another network's) is the fleet's.
        Some(d)
            if (d.blackhole && d.target.starts_with("nat-"))
                || made_by_fleet(s, &d.target)
                || s.config.adopt_routes =>
        {
            let ours = (d.blackhole && d.target.starts_with("nat-")) || made_by_fleet(s, &d.target);
            routes.push(NetworkAction::ReplaceRoute {
                route_table: rtb.into(),
                nat_gateway: nat.into(),
                was: d.target.clone(),
                remember: !ours && !d.blackhole,
            })
        }
        Some(d) => p.conflicts.push(conflict(rtb, d)),
    }
}

/// Takes a gateway's remains away in order: its NAT gateway deleted, then (once it is
/// deleted and the address disassociated) the address released, then the record forgotten.
fn retire(
    s: &NetworkSituation<'_>,
    p: &mut NetworkPlan,
    subnet: &str,
    r: &RecordedGateway,
    nat: Option<&ObservedNat>,
    address: Option<&ObservedAddress>,
) {
    let _ = s;
    if let Some(n) = nat {
        match n.state.as_str() {
            "deleted" => {}
            "deleting" => {
                p.waiting
                    .push(format!("NAT gateway {} is being deleted", n.id));
                return;
            }
            _ => {
                p.actions.push(NetworkAction::DeleteNatGateway {
                    subnet: subnet.into(),
                    nat_gateway: n.id.clone(),
                });
                p.waiting.push(format!(
                    "NAT gateway {} deleted; waiting for it to go",
                    n.id
                ));
                return;
            }
        }
    }
    match address {
        Some(a) if a.association_id.is_some() => p.waiting.push(format!(
            "Elastic IP {} is still associated; released once its NAT gateway is gone",
            a.allocation_id
        )),
        Some(a) => {
            p.actions.push(NetworkAction::ReleaseAddress {
                subnet: subnet.into(),
                allocation_id: a.allocation_id.clone(),
            });
            p.actions.push(NetworkAction::Forget {
                subnet: subnet.into(),
                token: r.token.clone(),
            });
        }
        None => p.actions.push(NetworkAction::Forget {
            subnet: subnet.into(),
            token: r.token.clone(),
        }),
    }
}

fn evening(s: &NetworkSituation<'_>, p: &mut NetworkPlan) {
    if !s.clusters_not_down.is_empty() {
        p.waiting.push(format!(
            "waiting for {} to be down",
            s.clusters_not_down.join(", ")
        ));
        return;
    }
    p.routes_looked = true;
    for g in &s.config.nat_gateways {
        let subnet = &g.subnet_id;
        let nat = s
            .recorded
            .gateways
            .get(subnet)
            .and_then(|r| our_nat(s, subnet, r));
        // Routes first: a route to a deleted NAT gateway is a blackhole that would stay.
        // Any route to one of the fleet's gateways goes (a gateway being moved away from
        // included); a blackhole is left (it carries nothing; the morning replaces it).
        for rtb in &g.route_table_ids {
            let Some(table) = s.observed.route_tables.iter().find(|t| t.id == *rtb) else {
                continue;
            };
            let adopted = s.recorded.adopted_routes.get(rtb);
            match &table.default_route {
                Some(d)
                    if nat.is_some_and(|n| n.id == d.target)
                        || made_by_fleet(s, &d.target)
                        || adopted.is_some_and(|was| *was == d.target) =>
                {
                    p.actions.push(match adopted {
                        // Adopted in the morning: given back as it was.
                        Some(was) => NetworkAction::RestoreRoute {
                            route_table: rtb.clone(),
                            to: was.clone(),
                        },
                        None => NetworkAction::DeleteRoute {
                            route_table: rtb.clone(),
                            nat_gateway: d.target.clone(),
                        },
                    })
                }
                Some(d) if d.blackhole => {}
                Some(d) => p.conflicts.push(conflict(rtb, d)),
                None => {}
            }
        }
        match s.recorded.gateways.get(subnet) {
            Some(r) if nat.is_none() && unseen_yet(s, r) => p.waiting.push(format!(
                "NAT gateway {} is not shown by EC2 yet",
                r.nat_gateway_id.as_deref().unwrap_or_default()
            )),
            Some(r) => retire(s, p, subnet, r, nat, our_address(s, r)),
            None => {}
        }
    }
    // Nothing left once every recorded gateway is forgotten (now or before).
    let forgotten = p
        .actions
        .iter()
        .filter(|a| matches!(a, NetworkAction::Forget { .. }))
        .count();
    let nothing_left = forgotten == s.recorded.gateways.len();
    if nothing_left && !(s.recorded.phase == Some(Desired::Down) && s.recorded.announced) {
        p.announce = if s.recorded.phase.is_none() {
            Announce::RecordDown
        } else {
            Announce::Down
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_shared::config::NatGatewayConfig;

    fn config(adopt_routes: bool) -> NetworkConfig {
        NetworkConfig {
            name: "vpc".into(),
            account: None,
            region: None,
            nat_gateways: vec![NatGatewayConfig {
                subnet_id: "subnet-pub".into(),
                route_table_ids: vec!["rtb-a".into(), "rtb-b".into()],
            }],
            adopt_routes,
        }
    }

    fn gateway(alloc: Option<&str>, nat: Option<&str>) -> NetworkRecord {
        let mut r = NetworkRecord::default();
        r.gateways.insert(
            "subnet-pub".into(),
            RecordedGateway {
                token: "tok".into(),
                allocation_id: alloc.map(String::from),
                nat_gateway_id: nat.map(String::from),
                begun_at: None,
                made_at: None,
            },
        );
        r
    }

    fn nat(id: &str, state: &str) -> ObservedNat {
        ObservedNat {
            id: id.into(),
            subnet_id: "subnet-pub".into(),
            state: state.into(),
            allocation_ids: vec!["eipalloc-1".into()],
            token: Some("tok".into()),
            managed_by: Some("fleet".into()),
            network: Some("vpc".into()),
            failure: None,
        }
    }

    fn address(associated: bool) -> ObservedAddress {
        ObservedAddress {
            allocation_id: "eipalloc-1".into(),
            association_id: associated.then(|| "eipassoc-1".into()),
            token: Some("tok".into()),
            managed_by: Some("fleet".into()),
        }
    }

    fn table(id: &str, target: Option<&str>) -> ObservedRouteTable {
        ObservedRouteTable {
            id: id.into(),
            default_route: target.map(|t| DefaultRoute {
                target: t.into(),
                blackhole: false,
            }),
        }
    }

    fn run(
        c: &NetworkConfig,
        desired: Desired,
        not_down: &[String],
        o: &ObservedNetwork,
        r: &NetworkRecord,
    ) -> NetworkPlan {
        plan(NetworkSituation {
            config: c,
            desired,
            clusters_not_down: not_down,
            observed: o,
            recorded: r,
            stack: "fleet",
            now: "2026-11-23T12:00:00Z".parse().expect("ts"),
        })
    }

    #[test]
    fn the_morning_makes_the_gateway_then_routes_then_announces() {
        let c = config(false);
        let p = run(
            &c,
            Desired::Up,
            &[],
            &ObservedNetwork::default(),
            &NetworkRecord::default(),
        );
        assert_eq!(
            p.actions,
            vec![NetworkAction::Provision {
                subnet: "subnet-pub".into(),
                token: None,
                allocation_id: None
            }]
        );
        assert!(!p.ready);
        let r = gateway(Some("eipalloc-1"), Some("nat-1"));
        let pending = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "pending")],
            addresses: vec![address(true)],
            route_tables: vec![table("rtb-a", None), table("rtb-b", None)],
        };
        let p = run(&c, Desired::Up, &[], &pending, &r);
        assert!(p.actions.is_empty() && !p.ready, "{p:?}");
        let available = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "available")],
            ..pending.clone()
        };
        let p = run(&c, Desired::Up, &[], &available, &r);
        assert_eq!(p.actions.len(), 2);
        assert!(p.ready);
        assert_eq!(p.announce, Announce::Up);
        let routed = ObservedNetwork {
            route_tables: vec![table("rtb-a", Some("nat-1")), table("rtb-b", Some("nat-1"))],
            ..available
        };
        let mut announced = r.clone();
        announced.phase = Some(Desired::Up);
        announced.announced = true;
        let p = run(&c, Desired::Up, &[], &routed, &announced);
        assert!(p.actions.is_empty() && p.ready && p.announce == Announce::None);
    }

    #[test]
    fn someone_elses_route_is_a_conflict_unless_adopted() {
        let r = gateway(Some("eipalloc-1"), Some("nat-1"));
        let o = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "available")],
            addresses: vec![address(true)],
            route_tables: vec![table("rtb-a", Some("igw-9")), table("rtb-b", None)],
        };
        let p = run(&config(false), Desired::Up, &[], &o, &r);
        assert_eq!(p.actions.len(), 1, "only rtb-b: {p:?}");
        assert!(p.conflicts[0].starts_with("rtb-a: default route -> igw-9"));
        assert!(
            p.ready,
            "a conflict is reported, it does not hold the morning"
        );
        let p = run(&config(true), Desired::Up, &[], &o, &r);
        assert!(p.actions.contains(&NetworkAction::ReplaceRoute {
            route_table: "rtb-a".into(),
            nat_gateway: "nat-1".into(),
            was: "igw-9".into(),
            remember: true,
        }));
        assert!(p.conflicts.is_empty());
        // In the evening the other route is left alone.
        let mut down = o.clone();
        down.nat_gateways[0].state = "available".into();
        let p = run(&config(false), Desired::Down, &[], &down, &r);
        assert!(!p
            .actions
            .iter()
            .any(|a| matches!(a, NetworkAction::DeleteRoute { route_table, .. } if route_table == "rtb-a")));
    }

    #[test]
    fn the_evening_waits_for_every_cluster_then_takes_all_away() {
        let r = gateway(Some("eipalloc-1"), Some("nat-1"));
        let up = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "available")],
            addresses: vec![address(true)],
            route_tables: vec![table("rtb-a", Some("nat-1")), table("rtb-b", Some("nat-1"))],
        };
        let p = run(&config(false), Desired::Down, &["b".into()], &up, &r);
        assert!(p.actions.is_empty());
        assert_eq!(p.waiting, vec!["waiting for b to be down".to_string()]);
        let p = run(&config(false), Desired::Down, &[], &up, &r);
        let names: Vec<String> = p.actions.iter().map(|a| a.describe()).collect();
        assert_eq!(
            names,
            vec![
                "delete-route rtb-a",
                "delete-route rtb-b",
                "delete-nat-gateway nat-1"
            ]
        );
        let deleting = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "deleting")],
            route_tables: vec![table("rtb-a", None), table("rtb-b", None)],
            ..up.clone()
        };
        let p = run(&config(false), Desired::Down, &[], &deleting, &r);
        assert!(p.actions.is_empty() && p.announce == Announce::None);
        let deleted = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "deleted")],
            addresses: vec![address(false)],
            ..deleting
        };
        let p = run(&config(false), Desired::Down, &[], &deleted, &r);
        let names: Vec<String> = p.actions.iter().map(|a| a.describe()).collect();
        assert_eq!(
            names,
            vec!["release-address eipalloc-1", "forget subnet-pub"]
        );
        let gone = NetworkRecord {
            phase: Some(Desired::Up),
            ..Default::default()
        };
        let p = run(
            &config(false),
            Desired::Down,
            &[],
            &ObservedNetwork::default(),
            &gone,
        );
        assert_eq!(p.announce, Announce::Down);
    }

    #[test]
    fn a_failed_gateway_is_replaced_with_a_fresh_address() {
        let r = gateway(Some("eipalloc-1"), Some("nat-1"));
        let mut failed = nat("nat-1", "failed");
        failed.failure = Some("Gateway.NotAttached: no internet gateway".into());
        let o = ObservedNetwork {
            nat_gateways: vec![failed],
            addresses: vec![address(false)],
            route_tables: vec![],
        };
        let p = run(&config(false), Desired::Up, &[], &o, &r);
        assert_eq!(p.actions[0].describe(), "delete-nat-gateway nat-1");
        // The cause, without the gateway's id: the replacement failing the same way
        // reads the same (told once, backing off longer each time).
        assert_eq!(
            p.failures,
            vec!["the NAT gateway in subnet-pub failed (Gateway.NotAttached: no internet gateway); it is replaced after a backoff"]
        );
        let mut o2 = o.clone();
        o2.nat_gateways[0].state = "deleted".into();
        let p = run(&config(false), Desired::Up, &[], &o2, &r);
        let names: Vec<String> = p.actions.iter().map(|a| a.describe()).collect();
        assert_eq!(
            names,
            vec!["release-address eipalloc-1", "forget subnet-pub"]
        );
        assert!(p.failures.is_empty());
    }

    #[test]
    fn a_missing_route_table_holds_the_morning() {
        let r = gateway(Some("eipalloc-1"), Some("nat-1"));
        let o = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "available")],
            addresses: vec![address(true)],
            route_tables: vec![table("rtb-a", Some("nat-1"))],
        };
        let p = run(&config(false), Desired::Up, &[], &o, &r);
        assert!(!p.ready, "rtb-b does not exist: {p:?}");
        assert!(p.waiting[0].starts_with("rtb-b: route table not found"));
    }

    #[test]
    fn a_gateway_in_a_subnet_no_longer_listed_is_taken_away() {
        let mut r = gateway(Some("eipalloc-1"), Some("nat-1"));
        let old = r.gateways.remove("subnet-pub").expect("gateway");
        r.gateways.insert("subnet-old".into(), old);
        let mut moved = nat("nat-1", "available");
        moved.subnet_id = "subnet-old".into();
        let o = ObservedNetwork {
            nat_gateways: vec![moved],
            addresses: vec![address(true)],
            route_tables: vec![],
        };
        let p = run(&config(false), Desired::Up, &[], &o, &r);
        assert!(
            p.actions
                .iter()
                .any(|a| a.describe() == "delete-nat-gateway nat-1"),
            "{p:?}"
        );
    }

    #[test]
    fn addresses_a_retried_allocation_left_are_released() {
        let r = gateway(None, None);
        let extra = ObservedAddress {
            allocation_id: "eipalloc-2".into(),
            ..address(false)
        };
        let o = ObservedNetwork {
            addresses: vec![address(false), extra],
            ..Default::default()
        };
        let p = run(&config(false), Desired::Up, &[], &o, &r);
        let names: Vec<String> = p.actions.iter().map(|a| a.describe()).collect();
        assert_eq!(
            names,
            vec![
                "record-found subnet-pub",
                "release-address eipalloc-2",
                "create-nat-gateway subnet-pub"
            ]
        );
    }

    #[test]
    fn what_a_crash_left_unrecorded_is_found_by_its_token() {
        let r = gateway(None, None);
        let o = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "pending")],
            addresses: vec![address(true)],
            route_tables: vec![],
        };
        let p = run(&config(false), Desired::Up, &[], &o, &r);
        assert_eq!(
            p.actions[0],
            NetworkAction::RecordFound {
                subnet: "subnet-pub".into(),
                token: "tok".into(),
                allocation_id: Some("eipalloc-1".into()),
                nat_gateway_id: Some("nat-1".into())
            }
        );
        // Someone else's NAT gateway in the subnet is never the fleet's.
        let mut theirs = nat("nat-9", "available");
        theirs.token = None;
        theirs.managed_by = None;
        let o = ObservedNetwork {
            nat_gateways: vec![theirs],
            ..Default::default()
        };
        let p = run(
            &config(false),
            Desired::Down,
            &[],
            &o,
            &gateway(Some("eipalloc-1"), Some("nat-1")),
        );
        assert!(
            !p.actions.iter().any(|a| a.describe().contains("nat-9")),
            "{p:?}"
        );
    }

    #[test]
    fn a_blackhole_to_a_nat_gateway_is_replaced_whoever_made_it() {
        let r = gateway(Some("eipalloc-1"), Some("nat-1"));
        let mut hole = table("rtb-a", Some("nat-gone"));
        if let Some(d) = hole.default_route.as_mut() {
            d.blackhole = true;
        }
        let o = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "available")],
            addresses: vec![address(true)],
            route_tables: vec![hole, table("rtb-b", Some("eni-firewall"))],
        };
        let mut o = o;
        if let Some(d) = o.route_tables[1].default_route.as_mut() {
            d.blackhole = true;
        }
        let p = run(&config(false), Desired::Up, &[], &o, &r);
        let names: Vec<String> = p.actions.iter().map(|a| a.describe()).collect();
        assert_eq!(names, vec!["replace-route rtb-a->nat-1 (was nat-gone)"]);
        // A firewall's (or an attachment's) blackhole may come back: a conflict.
        assert_eq!(p.conflicts.len(), 1, "{:?}", p.conflicts);
        assert!(p.conflicts[0].contains("eni-firewall (blackhole)"));
        assert!(!p.ready_as_seen(), "a route still to replace");
    }

    #[test]
    fn a_gateway_moved_to_another_subnet_hands_its_routes_over_before_it_goes() {
        // The entry moved from subnet-pub to subnet-new; the old gateway still carries
        // both route tables.
        let moved = NetworkConfig {
            nat_gateways: vec![NatGatewayConfig {
                subnet_id: "subnet-new".into(),
                route_table_ids: vec!["rtb-a".into(), "rtb-b".into()],
            }],
            ..config(false)
        };
        let mut r = gateway(Some("eipalloc-1"), Some("nat-1"));
        let new = RecordedGateway {
            token: "tok2".into(),
            allocation_id: Some("eipalloc-2".into()),
            nat_gateway_id: Some("nat-2".into()),
            begun_at: None,
            made_at: None,
        };
        r.gateways.insert("subnet-new".into(), new);
        let new_nat = |state: &str| ObservedNat {
            id: "nat-2".into(),
            subnet_id: "subnet-new".into(),
            token: Some("tok2".into()),
            ..nat("nat-2", state)
        };
        let routes =
            |target: &str| vec![table("rtb-a", Some(target)), table("rtb-b", Some(target))];
        // The new one pending: the old one keeps its routes and stays.
        let o = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "available"), new_nat("pending")],
            addresses: vec![address(true)],
            route_tables: routes("nat-1"),
        };
        let p = run(&moved, Desired::Up, &[], &o, &r);
        assert!(p.actions.is_empty(), "{p:?}");
        assert!(p
            .waiting
            .iter()
            .any(|w| w.contains("still carries rtb-a, rtb-b")));
        // The new one available: the routes move to it, the old one still waits.
        let o = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "available"), new_nat("available")],
            ..o
        };
        let p = run(&moved, Desired::Up, &[], &o, &r);
        let names: Vec<String> = p.actions.iter().map(|a| a.describe()).collect();
        assert_eq!(
            names,
            vec![
                "replace-route rtb-a->nat-2 (was nat-1)",
                "replace-route rtb-b->nat-2 (was nat-1)"
            ]
        );
        assert!(p.ready);
        // Routed through the new one: the old one goes.
        let o = ObservedNetwork {
            route_tables: routes("nat-2"),
            ..o
        };
        let p = run(&moved, Desired::Up, &[], &o, &r);
        let names: Vec<String> = p.actions.iter().map(|a| a.describe()).collect();
        assert_eq!(names, vec!["delete-nat-gateway nat-1"]);
    }

    #[test]
    fn an_address_the_fleet_allocated_that_no_record_knows_is_released() {
        let stray = ObservedAddress {
            allocation_id: "eipalloc-9".into(),
            token: Some("forgotten".into()),
            ..address(false)
        };
        let someone_elses = ObservedAddress {
            allocation_id: "eipalloc-8".into(),
            managed_by: Some("another-stack".into()),
            ..stray.clone()
        };
        let o = ObservedNetwork {
            addresses: vec![stray, someone_elses],
            ..Default::default()
        };
        let down = NetworkRecord {
            phase: Some(Desired::Down),
            announced: true,
            ..Default::default()
        };
        let p = run(&config(false), Desired::Down, &[], &o, &down);
        let names: Vec<String> = p.actions.iter().map(|a| a.describe()).collect();
        assert_eq!(names, vec!["release-address eipalloc-9"]);
    }

    #[test]
    fn the_network_bills_from_when_its_gateway_was_begun() {
        let mut r = gateway(Some("eipalloc-1"), Some("nat-1"));
        let begun: jiff::Timestamp = "2026-11-23T07:00:00Z".parse().expect("ts");
        if let Some(g) = r.gateways.get_mut("subnet-pub") {
            g.begun_at = Some(begun);
        }
        let o = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "available")],
            addresses: vec![address(true)],
            route_tables: vec![table("rtb-a", Some("nat-1")), table("rtb-b", Some("nat-1"))],
        };
        let p = run(&config(false), Desired::Up, &[], &o, &r);
        assert_eq!(p.announce, Announce::Up);
        assert_eq!(p.billing_since, Some(begun));
    }

    #[test]
    fn a_gateway_ec2_does_not_show_yet_is_not_taken_for_gone() {
        let mut r = gateway(Some("eipalloc-1"), Some("nat-1"));
        let o = ObservedNetwork {
            addresses: vec![address(false)],
            ..Default::default()
        };
        // Begun two minutes before: EC2's reads may lag; wait, morning and evening.
        if let Some(g) = r.gateways.get_mut("subnet-pub") {
            g.begun_at = Some("2026-11-23T11:58:00Z".parse().expect("ts"));
        }
        for desired in [Desired::Up, Desired::Down] {
            let p = run(&config(false), desired, &[], &o, &r);
            assert!(p.actions.is_empty(), "{p:?}");
            assert!(p.waiting.iter().any(|w| w.contains("not shown by EC2 yet")));
        }
        // An hour before: it would be shown (deleted ones are, for an hour): it is gone.
        if let Some(g) = r.gateways.get_mut("subnet-pub") {
            g.begun_at = Some("2026-11-23T11:00:00Z".parse().expect("ts"));
        }
        let p = run(&config(false), Desired::Up, &[], &o, &r);
        let names: Vec<String> = p.actions.iter().map(|a| a.describe()).collect();
        assert_eq!(
            names,
            vec!["release-address eipalloc-1", "forget subnet-pub"]
        );
    }

    #[test]
    fn a_gateway_no_longer_listed_keeps_its_routes_until_the_evening_s_clusters_are_down() {
        let moved = NetworkConfig {
            nat_gateways: vec![NatGatewayConfig {
                subnet_id: "subnet-new".into(),
                route_table_ids: vec!["rtb-a".into(), "rtb-b".into()],
            }],
            ..config(false)
        };
        let r = gateway(Some("eipalloc-1"), Some("nat-1"));
        let o = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "available")],
            addresses: vec![address(true)],
            route_tables: vec![table("rtb-a", Some("nat-1")), table("rtb-b", Some("nat-1"))],
        };
        let p = run(&moved, Desired::Down, &["staging".to_string()], &o, &r);
        assert!(p.actions.is_empty(), "{p:?}");
        // The clusters down: the routes go first, then the gateway (as a listed one's).
        let p = run(&moved, Desired::Down, &[], &o, &r);
        let names: Vec<String> = p.actions.iter().map(|a| a.describe()).collect();
        assert_eq!(
            names,
            vec![
                "delete-route rtb-a",
                "delete-route rtb-b",
                "delete-nat-gateway nat-1"
            ]
        );
    }

    #[test]
    fn an_adopted_route_is_given_back_in_the_evening() {
        let mut r = gateway(Some("eipalloc-1"), Some("nat-1"));
        r.adopted_routes.insert("rtb-a".into(), "igw-9".into());
        let o = ObservedNetwork {
            nat_gateways: vec![nat("nat-1", "available")],
            addresses: vec![address(true)],
            route_tables: vec![table("rtb-a", Some("nat-1")), table("rtb-b", Some("nat-1"))],
        };
        let p = run(&config(true), Desired::Down, &[], &o, &r);
        let names: Vec<String> = p.actions.iter().map(|a| a.describe()).collect();
        assert_eq!(
            names,
            vec![
                "restore-route rtb-a->igw-9",
                "delete-route rtb-b",
                "delete-nat-gateway nat-1"
            ]
        );
        // Put back but not yet forgotten (a crash): put back again, harmlessly.
        let o = ObservedNetwork {
            route_tables: vec![table("rtb-a", Some("igw-9")), table("rtb-b", None)],
            ..o
        };
        let p = run(&config(true), Desired::Down, &[], &o, &r);
        assert_eq!(p.actions[0].describe(), "restore-route rtb-a->igw-9");
    }
}
