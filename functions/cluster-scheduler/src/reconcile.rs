//! The reconciler's decision: given what should be and what is, the next step.
//!
//! Pure: no I/O, no clock. Every step is idempotent and none waits on EKS; the next tick
//! observes again and takes the step after. That makes the scheduler safe to run twice,
//! late, or concurrently, and lets a 10-20 minute cluster creation span many short ticks.

use fleet_shared::config::{ClusterConfig, KarpenterConfig, Mode};
use fleet_shared::schedule::Desired;
use fleet_shared::state::model::RecordedState;
use jiff::{Timestamp, ToSpan};

pub use crate::observed::{
    ownership, Observed, ObservedCluster, ObservedNodegroup, Ownership, Scaling, TeardownView,
};
pub use crate::step::{PodIdentityChange, Step};

use crate::irsa;
use crate::karpenter_steps::{self, Evening};

/// Everything the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    pub desired: Desired,
    pub cluster: &'a ClusterConfig,
    pub observed: &'a Observed,
    pub recorded: &'a RecordedState,
    pub now: Timestamp,
    /// Why the cluster's `[[network]]` is not ready (its NAT gateways pending, routes
    /// not in place); `None`: ready, or no network. Nodes wait for it.
    pub network_wait: Option<&'a str>,
}

const NODEGROUP_RUNNING: [&str; 2] = ["ACTIVE", "DEGRADED"];

/// A fresh `clientRequestToken` for a `CreateCluster`: unique per invocation, cluster and
/// instant (32 hex characters; EKS takes any string).
pub fn creation_token_candidate(request_id: &str, cluster: &str, now: Timestamp) -> String {
    let a = fnv1a(&format!("{request_id}/{cluster}"));
    let b = fnv1a(&format!("{cluster}@{}/{request_id}", now.as_nanosecond()));
    format!("{a:016x}{b:016x}")
}

/// Short summary of the observed state for plans and status.
pub fn summarize(observed: &Observed) -> String {
    match observed {
        Observed::Absent => "absent".into(),
        Observed::Present(c) => match &c.ownership {
            Ownership::Foreign(_) => "foreign".into(),
            Ownership::NotCreatedByFleet => "not-created-by-fleet".into(),
            Ownership::Ours => observed_text(c),
        },
    }
}

fn observed_text(c: &ObservedCluster) -> String {
    let mut s = c.status.to_lowercase();
    if !c.nodegroups.is_empty() {
        let ngs: Vec<String> = c
            .nodegroups
            .iter()
            .map(|n| format!("{} {} {}/{}-{}", n.name, n.status, n.desired, n.min, n.max))
            .collect();
        s.push_str(&format!(", nodegroups: {}", ngs.join(", ")));
    }
    s
}

fn is_announced(recorded: &RecordedState, phase: Desired, generation: Option<&str>) -> bool {
    recorded.phase == Some(phase)
        && recorded.announced
        && generation.is_none_or(|g| recorded.generation.as_deref() == Some(g))
}

/// How often a steady cluster gets a full look (nodegroups, add-ons); between full looks
/// its recorded phase is trusted on `DescribeCluster` alone. Drift inside a cluster (a
/// nodegroup deleted by hand) is found within this long; a config change at once. An
/// hour, not less: a full look costs about four calls (a list, a describe per nodegroup,
/// the write recording it), so over twelve 5-minute ticks a steady cluster costs about
/// 1.35 calls a tick, inside the 1.5 a thousand-cluster fleet is held to (BENCHMARKS.md,
/// section 6); every 30 minutes it was 1.7.
pub const FULL_LOOK_EVERY_MINUTES: i64 = 60;

/// A stable hash (FNV-1a): the same on every machine and Rust version, so a cluster keeps
/// its slot.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The start of the current full-look period of cluster `name`: periods are
/// [`FULL_LOOK_EVERY_MINUTES`] long and each cluster's are shifted by its own offset, so
/// that a fleet's full looks spread evenly over the ticks instead of falling on one.
pub fn full_look_due_since(name: &str, now: Timestamp) -> Timestamp {
    let period = FULL_LOOK_EVERY_MINUTES * 60;
    let offset = (fnv1a(name) % period as u64) as i64;
    let t = now.as_second();
    let start = (t - offset).div_euclid(period) * period + offset;
    Timestamp::from_second(start).unwrap_or(now)
}

/// What a full look was checked against: the cluster's config, so that a changed
/// blueprint is looked at on the next tick instead of up to half an hour later.
pub fn config_fingerprint(c: &ClusterConfig) -> String {
    use std::hash::{Hash, Hasher};
    // Not persisted beyond a comparison: a Rust upgrade changing the hash only costs
    // one full look.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{c:?}").hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Whether the recorded phase can stand for the cluster without a full look: it was
/// announced for the desired state, a full look found it steady in the current period (see
/// [`full_look_due_since`]) against the same config, nothing failed since, and
/// `DescribeCluster` still shows the same incarnation, ACTIVE. This is what keeps a
/// steady tick at about two AWS calls per cluster instead of five or more.
pub fn trust_recorded(s: &Situation<'_>, described: &Observed, fingerprint: &str) -> bool {
    let r = s.recorded;
    let Observed::Present(c) = described else {
        return false;
    };
    let recent = r
        .checked_at
        .is_some_and(|at| at <= s.now && at >= full_look_due_since(&s.cluster.name, s.now));
    is_announced(r, s.desired, Some(&c.generation))
        && recent
        && r.checked_config.as_deref() == Some(fingerprint)
        && r.attempts == 0
        && c.ownership == Ownership::Ours
        && c.status == "ACTIVE"
        // A destroy-mode cluster that should be down has work to do whatever the record says.
        && !(s.desired == Desired::Down && s.cluster.mode == Mode::Destroy)
        // NodePool limits capped by an evening wait to be restored.
        && !(s.desired == Desired::Up && r.nodepool_limits.is_some())
}

pub fn next_step(s: Situation<'_>) -> Step {
    let cluster = match s.observed {
        Observed::Absent => {
            return match s.desired {
                Desired::Up => Step::CreateCluster,
                Desired::Down if is_announced(s.recorded, Desired::Down, None) => Step::Steady,
                Desired::Down if s.recorded.phase.is_none() => Step::RecordDown,
                Desired::Down => Step::AnnounceDown,
            }
        }
        Observed::Present(c) => match &c.ownership {
            Ownership::Foreign(other) => return Step::Foreign(other.clone()),
            Ownership::NotCreatedByFleet if s.cluster.adopt => return Step::Adopt,
            Ownership::NotCreatedByFleet => return Step::NotCreatedByFleet,
            Ownership::Ours => c,
        },
    };
    match (s.desired, cluster.status.as_str()) {
        (_, "DELETING") => Step::Wait("the cluster is being deleted".into()),
        (_, "CREATING" | "PENDING" | "UPDATING") => {
            Step::Wait(format!("the cluster is {}", cluster.status))
        }
        (Desired::Up, "FAILED") => Step::DeleteCluster { failed: true },
        (Desired::Up, _) => bring_up(s, cluster),
        (Desired::Down, _) => match s.cluster.mode {
            Mode::Destroy => tear_down(s, cluster),
            Mode::Scale => scale_down(s, cluster),
        },
    }
}

fn bring_up(s: Situation<'_>, c: &ObservedCluster) -> Step {
    let bp = &s.cluster.blueprint;
    let missing_access: Vec<String> = bp
        .access
        .iter()
        .filter(|a| !c.access_principals.contains(&a.principal_arn))
        .map(|a| a.principal_arn.clone())
        .collect();
    if !missing_access.is_empty() {
        return Step::CreateAccessEntries(missing_access);
    }
    if let (false, Some(issuer)) = (bp.irsa_roles.is_empty(), c.oidc_issuer.as_deref()) {
        let host = irsa::issuer_host_path(issuer);
        if host.is_some() && s.recorded.irsa_issuers.last() != host.as_ref() {
            return Step::TrustIssuer(issuer.to_string());
        }
    }
    let pod_identity = pod_identity_changes(&bp.pod_identity, &c.pod_identities);
    if !pod_identity.is_empty() {
        return Step::AssociatePodIdentities(pod_identity);
    }
    let missing_addons = |before_nodes: bool| -> Vec<String> {
        bp.addons
            .iter()
            .filter(|a| a.is_before_nodes() == before_nodes && !c.addons.contains(&a.name))
            .map(|a| a.name.clone())
            .collect()
    };
    let node_addons = missing_addons(true);
    if !node_addons.is_empty() {
        return Step::CreateAddons(node_addons);
    }
    let failed: Vec<String> = c
        .nodegroups
        .iter()
        .filter(|n| n.status == "CREATE_FAILED")
        .map(|n| n.name.clone())
        .collect();
    if !failed.is_empty() {
        return Step::ReplaceFailedNodegroups(failed);
    }
    let find = |name: &str| c.nodegroups.iter().find(|n| n.name == name);
    let missing: Vec<String> = bp
        .nodegroups
        .iter()
        .filter(|n| find(&n.name).is_none())
        .map(|n| n.name.clone())
        .collect();
    if !missing.is_empty() {
        if let Some(why) = s.network_wait {
            return Step::Wait(why.to_string());
        }
        return Step::CreateNodegroups(missing);
    }
    if s.cluster.mode == Mode::Scale {
        // Compare min and max only: a cluster autoscaler owns desired between them.
        let to_scale: Vec<(String, Scaling)> = bp
            .nodegroups
            .iter()
            .filter_map(|n| {
                let o = find(&n.name)?;
                let off = o.min != n.min_size || o.max != n.max_size || o.desired < n.min_size;
                (off && NODEGROUP_RUNNING.contains(&o.status.as_str())).then(|| {
                    (
                        n.name.clone(),
                        Scaling {
                            min: n.min_size,
                            max: n.max_size,
                            desired: n.desired_size,
                        },
                    )
                })
            })
            .collect();
        // The nodegroups that run the Karpenter controller come up first.
        let karpenter = s.cluster.karpenter.as_ref();
        let hosts: Vec<(String, Scaling)> = to_scale
            .iter()
            .filter(|(n, _)| karpenter_steps::is_host(karpenter, n))
            .cloned()
            .collect();
        if let (Some(why), false) = (s.network_wait, to_scale.is_empty()) {
            return Step::Wait(why.to_string());
        }
        if !hosts.is_empty() {
            return Step::ScaleNodegroups(hosts);
        }
        if !to_scale.is_empty() {
            return Step::ScaleNodegroups(to_scale);
        }
    }
    if let Some(n) = bp
        .nodegroups
        .iter()
        .filter_map(|n| find(&n.name))
        .find(|o| !NODEGROUP_RUNNING.contains(&o.status.as_str()))
    {
        return Step::Wait(format!("nodegroup {} is {}", n.name, n.status));
    }
    let other_addons = missing_addons(false);
    if !other_addons.is_empty() {
        return Step::CreateAddons(other_addons);
    }
    if let Some(step) = karpenter_steps::restore(s.recorded, c) {
        // Karpenter launches nodes as soon as its limits are back.
        if let Some(why) = s.network_wait {
            return Step::Wait(why.to_string());
        }
        return step;
    }
    let bootstrapped_at = s
        .recorded
        .bootstrapped
        .as_ref()
        .filter(|(g, _)| *g == c.generation)
        .map(|(_, at)| *at);
    let has_bootstrap =
        !(bp.bootstrap.is_empty() && bp.bootstrap_secrets.is_empty() && bp.ready_when.is_empty());
    if is_announced(s.recorded, Desired::Up, Some(&c.generation)) {
        return Step::Steady;
    }
    match bootstrapped_at {
        // The bootstrap also dates the wait for `ready_when`.
        None if has_bootstrap => Step::BootstrapThenAnnounce,
        Some(at) if !bp.ready_when.is_empty() => Step::AwaitReady {
            objects: bp.ready_when.iter().map(|o| o.to_string()).collect(),
            degraded_after: at
                .checked_add((i64::from(bp.ready_timeout_minutes)).minutes())
                .unwrap_or(at),
        },
        _ => Step::AnnounceUp,
    }
}

/// What makes the cluster's Pod Identity associations the blueprint's: those missing
/// created, the fleet's own of a listed service account with another role updated.
/// Associations someone else made (untagged, or another fleet's) are never changed,
/// whatever their service account (see [`pod_identity_conflicts`]).
/// Listed service accounts whose association someone else made with another role: the
/// fleet leaves it (`namespace/service_account: role`), and says so.
pub fn pod_identity_conflicts(
    wanted: &[fleet_shared::config::PodIdentity],
    seen: &[crate::observed::ObservedPodIdentity],
) -> Vec<String> {
    wanted
        .iter()
        .filter_map(|p| {
            seen.iter()
                .find(|o| {
                    o.namespace == p.namespace
                        && o.service_account == p.service_account
                        && o.role_arn != p.role_arn
                        && !o.ours
                })
                .map(|o| format!("{}/{}: {}", o.namespace, o.service_account, o.role_arn))
        })
        .collect()
}

pub fn pod_identity_changes(
    wanted: &[fleet_shared::config::PodIdentity],
    seen: &[crate::observed::ObservedPodIdentity],
) -> Vec<PodIdentityChange> {
    wanted
        .iter()
        .filter_map(|p| {
            match seen
                .iter()
                .find(|o| o.namespace == p.namespace && o.service_account == p.service_account)
            {
                None => Some(PodIdentityChange::Create(p.clone())),
                Some(o) if o.role_arn != p.role_arn && o.ours => Some(PodIdentityChange::Update {
                    association_id: o.association_id.clone(),
                    service_account: format!("{}/{}", p.namespace, p.service_account),
                    role_arn: p.role_arn.clone(),
                }),
                Some(_) => None,
            }
        })
        .collect()
}

/// Whether the blueprint has a nodegroup of that name (the fleet's to scale or delete).
fn bp_has(cluster: &ClusterConfig, name: &str) -> bool {
    cluster.blueprint.nodegroups.iter().any(|b| b.name == name)
}

/// The drain and the backstop (see [`karpenter_steps`]); the cap goes with whatever step
/// comes ([`karpenter_steps::cap_then`]). A cluster whose Karpenter side was not looked at
/// has nothing to act on here.
fn karpenter_evening(s: &Situation<'_>, c: &ObservedCluster, k: &KarpenterConfig) -> Evening {
    let Some(view) = &c.karpenter else {
        return Evening::Done(vec![]);
    };
    karpenter_steps::drain(s.cluster.mode, k, s.recorded, view, s.now)
}

/// The teardown from the Karpenter part on: drain and backstop, then the nodegroups, the
/// controller's last (it finalizes its objects until then).
fn karpenter_teardown(
    s: &Situation<'_>,
    c: &ObservedCluster,
    k: &KarpenterConfig,
    deletable: Vec<String>,
    mut notes: Vec<String>,
    services: Vec<String>,
) -> Step {
    match karpenter_evening(s, c, k) {
        Evening::Act(step) => return step,
        Evening::Done(left) => notes.extend(left),
    }
    let (hosts, others): (Vec<String>, Vec<String>) =
        deletable.into_iter().partition(|n| k.is_host(n));
    let others_left = c
        .nodegroups
        .iter()
        .find(|n| !k.is_host(&n.name) && bp_has(s.cluster, &n.name) && !others.contains(&n.name));
    let names = if !others.is_empty() {
        others
    } else if let Some(n) = others_left {
        return Step::Wait(format!(
            "nodegroup {} is {}; the Karpenter controller's nodegroups go last",
            n.name, n.status
        ));
    } else {
        hosts
    };
    Step::DeleteNodegroups {
        names,
        notes,
        services,
    }
}

/// Nodegroups that exist in EKS but not in the blueprint: someone else's, never deleted or
/// scaled by the fleet.
fn unmanaged_nodegroups<'a>(
    s: &Situation<'_>,
    c: &'a ObservedCluster,
) -> Vec<&'a ObservedNodegroup> {
    c.nodegroups
        .iter()
        .filter(|n| {
            !s.cluster
                .blueprint
                .nodegroups
                .iter()
                .any(|b| b.name == n.name)
        })
        .collect()
}

/// What the teardown leaves in place because the fleet did not make it; the cluster
/// cannot be deleted while any of it exists.
fn left_in_place(s: &Situation<'_>, c: &ObservedCluster) -> Vec<String> {
    let mut left: Vec<String> = unmanaged_nodegroups(s, c)
        .iter()
        .map(|n| format!("unmanaged nodegroup {} left in place", n.name))
        .collect();
    // The blueprint makes no Fargate profiles: every one is someone else's.
    left.extend(
        c.fargate_profiles.iter().map(|(name, _)| {
            format!("fargate profile {name} (not made by the fleet) left in place")
        }),
    );
    left
}

/// Whether a nodegroup in `status` (EKS `NodegroupStatus`) is one a destroy-mode teardown
/// deletes now: running, or failed to create or delete. `CREATING` and `UPDATING` are
/// waited for (EKS refuses to delete them), `DELETING` is already on its way.
pub fn deletable_in_teardown(status: &str) -> bool {
    NODEGROUP_RUNNING.contains(&status) || status == "CREATE_FAILED" || status == "DELETE_FAILED"
}

/// The blueprint's nodegroups a teardown deletes now (see [`deletable_in_teardown`]): the
/// teardown has begun, for its load-balancer wait, when this is first non-empty.
pub fn teardown_deletable(cluster: &ClusterConfig, c: &ObservedCluster) -> Vec<String> {
    c.nodegroups
        .iter()
        .filter(|n| {
            cluster
                .blueprint
                .nodegroups
                .iter()
                .any(|b| b.name == n.name)
        })
        .filter(|n| deletable_in_teardown(&n.status))
        .map(|n| n.name.clone())
        .collect()
}

fn tear_down(s: Situation<'_>, c: &ObservedCluster) -> Step {
    let deletable = teardown_deletable(s.cluster, c);
    if !deletable.is_empty() {
        let mut notes = left_in_place(&s, c);
        let mut live_services = vec![];
        if let Some(t) = &c.teardown {
            // Every wait ends together, `load_balancer_wait_minutes` after the teardown
            // began: a finalizer the controller never removes (its pods already gone, a
            // missing permission), a Service GitOps re-creates or whose DELETE keeps
            // failing must not keep the cluster running all night.
            let minutes = s.cluster.load_balancer_wait_minutes;
            let started = s.recorded.teardown_started.unwrap_or(s.now);
            // Past the largest representable instant: no end (never: no wait at all).
            let deadline = started
                .checked_add((minutes as i64).minutes())
                .unwrap_or(Timestamp::MAX);
            let waited_enough = s.now >= deadline;
            match &t.lb_services {
                Ok(services) if !services.is_empty() && !waited_enough => {
                    return Step::DeleteLoadBalancerServices(services.clone())
                }
                Ok(services) if !services.is_empty() => {
                    live_services = services.clone();
                    notes.push(format!(
                        "LoadBalancer Services still present when the {minutes}-minute wait for load balancers ended (deleted once more now; their load balancers may be left behind): {}",
                        services.join(", ")
                    ))
                }
                Ok(_) => {}
                Err(why) => notes.push(format!(
                    "skipped deleting LoadBalancer Services: the Kubernetes API is unreachable ({why})"
                )),
            }
            let mut waiting = vec![];
            if !t.load_balancers.is_empty() {
                waiting.push(format!(
                    "load balancers still exist: {}",
                    t.load_balancers.join(", ")
                ));
            }
            if !t.terminating_services.is_empty() {
                waiting.push(format!(
                    "Services kept by their finalizers: {}",
                    t.terminating_services.join(", ")
                ));
            }
            if !waiting.is_empty() {
                if !waited_enough {
                    return Step::Wait(format!(
                        "{} (waiting until {deadline})",
                        waiting.join("; ")
                    ));
                }
                if !t.load_balancers.is_empty() {
                    notes.push(format!(
                        "load balancers left behind after waiting {minutes} minutes: {}",
                        t.load_balancers.join(", ")
                    ));
                }
                if !t.terminating_services.is_empty() {
                    notes.push(format!(
                        "Services still kept by their finalizers after waiting {minutes} minutes (their load balancers may be left behind): {}",
                        t.terminating_services.join(", ")
                    ));
                }
            }
            notes.extend(t.problems.iter().cloned());
            if !t.lb_ingresses.is_empty() {
                notes.push(format!(
                    "ingresses whose controller provisions load balancers: {}",
                    t.lb_ingresses.join(", ")
                ));
            }
        }
        if let Some(k) = &s.cluster.karpenter {
            let rest = karpenter_teardown(&s, c, k, deletable, notes, live_services);
            return karpenter_steps::cap_then(s.recorded, c, rest);
        }
        return Step::DeleteNodegroups {
            names: deletable,
            notes,
            services: live_services,
        };
    }
    let unmanaged = unmanaged_nodegroups(&s, c);
    if let Some(n) = c
        .nodegroups
        .iter()
        .find(|n| !unmanaged.iter().any(|u| u.name == n.name))
    {
        return Step::Wait(format!("nodegroup {} is {}", n.name, n.status));
    }
    let left = left_in_place(&s, c);
    if !left.is_empty() {
        return Step::Wait(format!(
            "{}; the cluster cannot be deleted while it exists",
            left.join(", ")
        ));
    }
    // A last look before the cluster goes: an instance Karpenter launched while the
    // controller's nodegroups drained would otherwise outlive it.
    if let Some(view) = c
        .karpenter
        .as_ref()
        .filter(|_| s.cluster.karpenter.is_some())
    {
        let instances: Vec<String> = view.instances.iter().map(|i| i.id.clone()).collect();
        if !instances.is_empty() || !view.launch_templates.is_empty() {
            return Step::TerminateKarpenterNodes {
                notes: (!instances.is_empty())
                    .then(|| {
                        format!(
                            "{} Karpenter instance(s) launched while the nodegroups drained: terminated by the backstop",
                            instances.len()
                        )
                    })
                    .into_iter()
                    .collect(),
                instances,
                launch_templates: view.launch_templates.clone(),
            };
        }
    }
    Step::DeleteCluster { failed: false }
}

fn scale_down(s: Situation<'_>, c: &ObservedCluster) -> Step {
    let rest = scale_down_after_cap(s, c);
    // Karpenter: nothing new launches from here on (checked again every tick, against
    // GitOps putting a limit back, with whatever step comes next).
    if s.cluster.karpenter.is_some() {
        return karpenter_steps::cap_then(s.recorded, c, rest);
    }
    rest
}

fn scale_down_after_cap(s: Situation<'_>, c: &ObservedCluster) -> Step {
    if let Some(n) = c
        .nodegroups
        .iter()
        .find(|n| matches!(n.status.as_str(), "CREATING" | "UPDATING" | "DELETING"))
    {
        return Step::Wait(format!("nodegroup {} is {}", n.name, n.status));
    }
    let karpenter = s.cluster.karpenter.as_ref();
    let to_zero: Vec<(String, Scaling)> = c
        .nodegroups
        .iter()
        // Only the blueprint's: a nodegroup the fleet did not make is not its to scale.
        .filter(|n| bp_has(s.cluster, &n.name))
        .filter(|n| NODEGROUP_RUNNING.contains(&n.status.as_str()) && (n.min > 0 || n.desired > 0))
        .map(|n| {
            (
                n.name.clone(),
                Scaling {
                    min: 0,
                    // EKS requires max >= 1; nothing runs with min and desired at 0.
                    max: n.max.max(1),
                    desired: 0,
                },
            )
        })
        .collect();
    let (hosts, others): (Vec<_>, Vec<_>) = to_zero
        .into_iter()
        .partition(|(n, _)| karpenter_steps::is_host(karpenter, n));
    if !others.is_empty() {
        return Step::ScaleNodegroups(others);
    }
    if let Some(k) = karpenter {
        match karpenter_evening(&s, c, k) {
            Evening::Act(step) => return step,
            // Scale mode reports what is left in the step's notes; nothing to add here.
            Evening::Done(_) => {}
        }
    }
    if !hosts.is_empty() {
        return Step::ScaleNodegroups(hosts);
    }
    if is_announced(s.recorded, Desired::Down, Some(&c.generation)) {
        Step::Steady
    } else {
        Step::AnnounceDown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_shared::config::FleetConfig;

    fn blueprint(addons: &[&str]) -> ClusterConfig {
        let mut text = String::from(
            r#"
[fleet]
region = "eu-west-1"
[[cluster]]
name = "c"
uptime = "Mon-Fri 08:00-20:00 UTC"
[cluster.blueprint]
version = "1.32"
role_arn = "arn:aws:iam::123456789012:role/eks"
subnet_ids = ["subnet-a", "subnet-b"]
[[cluster.blueprint.nodegroup]]
name = "spot"
instance_types = ["t3.large"]
node_role_arn = "arn:aws:iam::123456789012:role/node"
min_size = 1
max_size = 3
desired_size = 2
"#,
        );
        for a in addons {
            text.push_str(&format!("[[cluster.blueprint.addon]]\nname = \"{a}\"\n"));
        }
        FleetConfig::parse(&text)
            .expect("test config")
            .clusters
            .remove(0)
    }

    fn cluster(status: &str, ngs: Vec<ObservedNodegroup>, addons: &[&str]) -> Observed {
        Observed::Present(ObservedCluster {
            status: status.into(),
            generation: "gen-1".into(),
            endpoint: Some("https://x".into()),
            nodegroups: ngs,
            addons: addons.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
    }

    fn ng(name: &str, status: &str, min: i32, desired: i32, max: i32) -> ObservedNodegroup {
        ObservedNodegroup {
            name: name.into(),
            status: status.into(),
            min,
            max,
            desired,
            issues: vec![],
        }
    }

    fn step(
        desired: Desired,
        mode: Mode,
        c: &ClusterConfig,
        observed: &Observed,
        recorded: &RecordedState,
    ) -> Step {
        let mut cluster = c.clone();
        cluster.mode = mode;
        next_step(Situation {
            desired,
            cluster: &cluster,
            observed,
            recorded,
            now: "2026-11-23T19:00:00Z".parse().expect("ts"),
            network_wait: None,
        })
    }

    fn announced(phase: Desired) -> RecordedState {
        RecordedState {
            phase: Some(phase),
            generation: Some("gen-1".into()),
            announced: true,
            ..Default::default()
        }
    }

    /// A blueprint with a `system` nodegroup that runs the Karpenter controller.
    fn karpenter_blueprint() -> ClusterConfig {
        let mut c = blueprint(&[]);
        let mut system = c.blueprint.nodegroups[0].clone();
        system.name = "system".into();
        c.blueprint.nodegroups.push(system);
        c.karpenter = Some(fleet_shared::config::KarpenterConfig {
            host_nodegroups: vec!["system".into()],
            nodepools: vec![],
            drain_minutes: 10,
            interruption: fleet_shared::config::InterruptionHandler::Karpenter,
        });
        c
    }

    fn with_karpenter(
        ngs: Vec<ObservedNodegroup>,
        objects: crate::observed::KarpenterObjects,
    ) -> Observed {
        let Observed::Present(mut c) = cluster("ACTIVE", ngs, &[]) else {
            unreachable!()
        };
        c.teardown = Some(TeardownView::default());
        c.karpenter = Some(crate::observed::KarpenterView {
            objects: Ok(objects),
            instances: vec![],
            launch_templates: vec![],
        });
        Observed::Present(c)
    }

    fn uncapped() -> crate::observed::KarpenterObjects {
        crate::observed::KarpenterObjects {
            nodepools: vec![crate::observed::NodePoolView {
                name: "spot".into(),
                limits: Some(serde_json::json!({"cpu": "100"})),
            }],
            controller_available: Some(true),
            ..Default::default()
        }
    }

    fn capped(
        nodeclaims: Vec<crate::observed::NodeClaimView>,
    ) -> crate::observed::KarpenterObjects {
        crate::observed::KarpenterObjects {
            nodepools: vec![crate::observed::NodePoolView {
                name: "spot".into(),
                limits: Some(serde_json::json!({"cpu": "0"})),
            }],
            nodeclaims,
            controller_available: Some(true),
            ..Default::default()
        }
    }

    fn recorded_cap() -> RecordedState {
        RecordedState {
            nodepool_limits: Some(fleet_shared::state::model::RecordedLimits {
                generation: "gen-1".into(),
                limits: [("spot".to_string(), Some(serde_json::json!({"cpu": "100"})))]
                    .into_iter()
                    .collect(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_karpenter_teardown_caps_drains_then_deletes_the_host_nodegroups_last() {
        use Desired::Down;
        use Mode::Destroy;
        let bp = karpenter_blueprint();
        let running = || {
            vec![
                ng("spot", "ACTIVE", 1, 2, 3),
                ng("system", "ACTIVE", 1, 2, 3),
            ]
        };
        let claim = |deleting| crate::observed::NodeClaimView {
            name: "spot-x1".into(),
            nodepool: "spot".into(),
            deleting,
        };
        let none = RecordedState::default();
        assert!(matches!(
            step(
                Down,
                Destroy,
                &bp,
                &with_karpenter(running(), uncapped()),
                &none
            ),
            Step::CapNodePools { .. }
        ));
        let rec = recorded_cap();
        assert_eq!(
            step(
                Down,
                Destroy,
                &bp,
                &with_karpenter(running(), capped(vec![claim(false)])),
                &rec
            ),
            Step::DeleteNodeClaims(vec!["spot-x1".into()])
        );
        // Every nodegroup still runs while Karpenter drains.
        assert!(matches!(
            step(Down, Destroy, &bp, &with_karpenter(running(), capped(vec![claim(true)])), &RecordedState {
                karpenter_drain_started: Some("2026-11-23T18:55:00Z".parse().expect("ts")),
                ..recorded_cap()
            }),
            Step::Wait(ref w) if w.contains("draining")
        ));
        match step(
            Down,
            Destroy,
            &bp,
            &with_karpenter(running(), capped(vec![])),
            &rec,
        ) {
            Step::DeleteNodegroups { names, .. } => assert_eq!(names, vec!["spot".to_string()]),
            other => panic!("{other:?}"),
        }
        let spot_deleting = vec![
            ng("spot", "DELETING", 1, 2, 3),
            ng("system", "ACTIVE", 1, 2, 3),
        ];
        assert!(matches!(
            step(Down, Destroy, &bp, &with_karpenter(spot_deleting, capped(vec![])), &rec),
            Step::Wait(ref w) if w.contains("go last")
        ));
        match step(
            Down,
            Destroy,
            &bp,
            &with_karpenter(vec![ng("system", "ACTIVE", 1, 2, 3)], capped(vec![])),
            &rec,
        ) {
            Step::DeleteNodegroups { names, .. } => assert_eq!(names, vec!["system".to_string()]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_karpenter_scale_down_caps_first_and_scales_the_host_nodegroups_last() {
        use Desired::Down;
        use Mode::Scale;
        let bp = karpenter_blueprint();
        let running = || {
            vec![
                ng("spot", "ACTIVE", 1, 2, 3),
                ng("system", "ACTIVE", 1, 2, 3),
            ]
        };
        let none = RecordedState::default();
        assert!(matches!(
            step(
                Down,
                Scale,
                &bp,
                &with_karpenter(running(), uncapped()),
                &none
            ),
            Step::CapNodePools { .. }
        ));
        let rec = recorded_cap();
        match step(
            Down,
            Scale,
            &bp,
            &with_karpenter(running(), capped(vec![])),
            &rec,
        ) {
            Step::ScaleNodegroups(t) => assert_eq!(t[0].0, "spot"),
            other => panic!("{other:?}"),
        }
        let spot_zero = || {
            vec![
                ng("spot", "ACTIVE", 0, 0, 3),
                ng("system", "ACTIVE", 1, 2, 3),
            ]
        };
        let claim = crate::observed::NodeClaimView {
            name: "spot-x1".into(),
            nodepool: "spot".into(),
            deleting: false,
        };
        assert_eq!(
            step(
                Down,
                Scale,
                &bp,
                &with_karpenter(spot_zero(), capped(vec![claim])),
                &rec
            ),
            Step::DeleteNodeClaims(vec!["spot-x1".into()])
        );
        match step(
            Down,
            Scale,
            &bp,
            &with_karpenter(spot_zero(), capped(vec![])),
            &rec,
        ) {
            Step::ScaleNodegroups(t) => assert_eq!(
                t,
                vec![(
                    "system".to_string(),
                    Scaling {
                        min: 0,
                        max: 3,
                        desired: 0
                    }
                )]
            ),
            other => panic!("{other:?}"),
        }
        // Flux put the limit back before the host nodegroups went: capped again.
        assert_eq!(
            step(
                Down,
                Scale,
                &bp,
                &with_karpenter(spot_zero(), uncapped()),
                &rec
            ),
            Step::CapNodePools {
                record: vec![],
                cap: vec!["spot".into()],
                // The evening goes on in the same tick.
                then: Some(Box::new(Step::ScaleNodegroups(vec![(
                    "system".to_string(),
                    Scaling {
                        min: 0,
                        max: 3,
                        desired: 0
                    }
                )]))),
            }
        );
    }

    #[test]
    fn a_karpenter_morning_brings_the_host_nodegroups_up_first_then_restores_the_limits() {
        use Desired::Up;
        use Mode::Scale;
        let bp = karpenter_blueprint();
        let rec = RecordedState {
            phase: Some(Desired::Down),
            generation: Some("gen-1".into()),
            announced: true,
            ..recorded_cap()
        };
        let zero = vec![
            ng("spot", "ACTIVE", 0, 0, 3),
            ng("system", "ACTIVE", 0, 0, 3),
        ];
        match step(Up, Scale, &bp, &with_karpenter(zero, capped(vec![])), &rec) {
            Step::ScaleNodegroups(t) => assert_eq!(
                t.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
                vec!["system"]
            ),
            other => panic!("{other:?}"),
        }
        let up = || {
            vec![
                ng("spot", "ACTIVE", 1, 2, 3),
                ng("system", "ACTIVE", 1, 2, 3),
            ]
        };
        let mut waiting = capped(vec![]);
        waiting.controller_available = Some(false);
        assert!(matches!(
            step(Up, Scale, &bp, &with_karpenter(up(), waiting), &rec),
            Step::Wait(ref w) if w.contains("controller")
        ));
        assert_eq!(
            step(Up, Scale, &bp, &with_karpenter(up(), capped(vec![])), &rec),
            Step::RestoreNodePoolLimits(vec![(
                "spot".into(),
                Some(serde_json::json!({"cpu": "100"}))
            )])
        );
        let restored = RecordedState {
            nodepool_limits: None,
            ..rec
        };
        assert_eq!(
            step(Up, Scale, &bp, &with_karpenter(up(), uncapped()), &restored),
            Step::AnnounceUp
        );
    }

    /// The decision table for bringing a cluster up, in the order a morning goes.
    #[test]
    fn morning_in_destroy_mode() {
        use Desired::Up;
        use Mode::Destroy;
        let bp = blueprint(&["vpc-cni", "coredns"]);
        let none = RecordedState::default();
        let cases: Vec<(Observed, Step)> = vec![
            (Observed::Absent, Step::CreateCluster),
            (
                cluster("CREATING", vec![], &[]),
                Step::Wait("the cluster is CREATING".into()),
            ),
            (
                cluster("ACTIVE", vec![], &[]),
                Step::CreateAddons(vec!["vpc-cni".into()]),
            ),
            (
                cluster("ACTIVE", vec![], &["vpc-cni"]),
                Step::CreateNodegroups(vec!["spot".into()]),
            ),
            (
                cluster(
                    "ACTIVE",
                    vec![ng("spot", "CREATING", 1, 2, 3)],
                    &["vpc-cni"],
                ),
                Step::Wait("nodegroup spot is CREATING".into()),
            ),
            (
                cluster(
                    "ACTIVE",
                    vec![ng("spot", "CREATE_FAILED", 1, 2, 3)],
                    &["vpc-cni"],
                ),
                Step::ReplaceFailedNodegroups(vec!["spot".into()]),
            ),
            (
                cluster("ACTIVE", vec![ng("spot", "ACTIVE", 1, 2, 3)], &["vpc-cni"]),
                Step::CreateAddons(vec!["coredns".into()]),
            ),
            (
                cluster(
                    "ACTIVE",
                    vec![ng("spot", "ACTIVE", 1, 2, 3)],
                    &["vpc-cni", "coredns"],
                ),
                Step::AnnounceUp,
            ),
            (
                cluster("FAILED", vec![], &[]),
                Step::DeleteCluster { failed: true },
            ),
            (
                cluster("DELETING", vec![], &[]),
                Step::Wait("the cluster is being deleted".into()),
            ),
        ];
        for (observed, expected) in cases {
            assert_eq!(
                step(Up, Destroy, &bp, &observed, &none),
                expected,
                "{observed:?}"
            );
        }
        let ready = cluster(
            "ACTIVE",
            vec![ng("spot", "ACTIVE", 1, 2, 3)],
            &["vpc-cni", "coredns"],
        );
        assert_eq!(step(Up, Destroy, &bp, &ready, &announced(Up)), Step::Steady);
        // Recreated behind our back: a new generation is announced again.
        let mut old = announced(Up);
        old.generation = Some("gen-0".into());
        assert_eq!(step(Up, Destroy, &bp, &ready, &old), Step::AnnounceUp);
        // Recorded but the event never reached the bus: announce again.
        let mut unannounced = announced(Up);
        unannounced.announced = false;
        assert_eq!(
            step(Up, Destroy, &bp, &ready, &unannounced),
            Step::AnnounceUp
        );
    }

    #[test]
    fn evening_in_destroy_mode() {
        use Desired::Down;
        use Mode::Destroy;
        let bp = blueprint(&[]);
        let none = RecordedState::default();
        let mut with_fargate = cluster("ACTIVE", vec![ng("spot", "ACTIVE", 1, 2, 3)], &[]);
        if let Observed::Present(c) = &mut with_fargate {
            c.fargate_profiles = vec![
                ("fp-a".into(), "ACTIVE".into()),
                ("fp-b".into(), "ACTIVE".into()),
            ];
        }
        // Fargate profiles are never the blueprint's: reported, left, and the cluster
        // waits for them to go.
        let fargate_notes = vec![
            "fargate profile fp-a (not made by the fleet) left in place".to_string(),
            "fargate profile fp-b (not made by the fleet) left in place".to_string(),
        ];
        assert_eq!(
            step(Down, Destroy, &bp, &with_fargate, &none),
            Step::DeleteNodegroups {
                names: vec!["spot".into()],
                notes: fargate_notes.clone(),
                services: vec![],
            }
        );
        if let Observed::Present(c) = &mut with_fargate {
            c.nodegroups.clear();
        }
        assert_eq!(
            step(Down, Destroy, &bp, &with_fargate, &none),
            Step::Wait(format!(
                "{}; the cluster cannot be deleted while it exists",
                fargate_notes.join(", ")
            ))
        );
        let cases: Vec<(Observed, Step)> = vec![
            (
                cluster(
                    "ACTIVE",
                    vec![
                        ng("spot", "ACTIVE", 1, 2, 3),
                        ng("critical", "ACTIVE", 1, 1, 1),
                    ],
                    &[],
                ),
                Step::DeleteNodegroups {
                    names: vec!["spot".into()],
                    notes: vec!["unmanaged nodegroup critical left in place".into()],
                    services: vec![],
                },
            ),
            (
                cluster("ACTIVE", vec![ng("critical", "ACTIVE", 1, 1, 1)], &[]),
                Step::Wait(
                    "unmanaged nodegroup critical left in place; the cluster cannot be deleted while it exists".into(),
                ),
            ),
            (
                cluster("ACTIVE", vec![ng("spot", "CREATE_FAILED", 0, 0, 1)], &[]),
                Step::DeleteNodegroups {
                    names: vec!["spot".into()],
                    notes: vec![],
                    services: vec![],
                },
            ),
            (
                cluster("ACTIVE", vec![ng("spot", "DELETING", 1, 2, 3)], &[]),
                Step::Wait("nodegroup spot is DELETING".into()),
            ),
            (
                cluster("ACTIVE", vec![], &[]),
                Step::DeleteCluster { failed: false },
            ),
            (
                cluster("FAILED", vec![], &[]),
                Step::DeleteCluster { failed: false },
            ),
            (
                cluster("CREATING", vec![], &[]),
                Step::Wait("the cluster is CREATING".into()),
            ),
            (Observed::Absent, Step::RecordDown),
        ];
        for (observed, expected) in cases {
            assert_eq!(
                step(Down, Destroy, &bp, &observed, &none),
                expected,
                "{observed:?}"
            );
        }
        assert_eq!(
            step(Down, Destroy, &bp, &Observed::Absent, &announced(Down)),
            Step::Steady
        );
        let was_up = RecordedState {
            phase: Some(Desired::Up),
            ..announced(Desired::Up)
        };
        assert_eq!(
            step(Down, Destroy, &bp, &Observed::Absent, &was_up),
            Step::AnnounceDown
        );
    }

    #[test]
    fn scale_mode_both_ways() {
        let bp = blueprint(&[]);
        let none = RecordedState::default();
        let up = cluster("ACTIVE", vec![ng("spot", "ACTIVE", 1, 2, 3)], &[]);
        assert_eq!(
            step(Desired::Down, Mode::Scale, &bp, &up, &none),
            Step::ScaleNodegroups(vec![(
                "spot".into(),
                Scaling {
                    min: 0,
                    max: 3,
                    desired: 0
                }
            )])
        );
        let zero = cluster("ACTIVE", vec![ng("spot", "ACTIVE", 0, 0, 3)], &[]);
        assert_eq!(
            step(Desired::Down, Mode::Scale, &bp, &zero, &none),
            Step::AnnounceDown
        );
        assert_eq!(
            step(
                Desired::Down,
                Mode::Scale,
                &bp,
                &zero,
                &announced(Desired::Down)
            ),
            Step::Steady
        );
        assert_eq!(
            step(Desired::Up, Mode::Scale, &bp, &zero, &none),
            Step::ScaleNodegroups(vec![(
                "spot".into(),
                Scaling {
                    min: 1,
                    max: 3,
                    desired: 2
                }
            )])
        );
        let updating = cluster("ACTIVE", vec![ng("spot", "UPDATING", 1, 2, 3)], &[]);
        assert_eq!(
            step(Desired::Up, Mode::Scale, &bp, &updating, &none),
            Step::Wait("nodegroup spot is UPDATING".into())
        );
        // The autoscaler moved desired within bounds: that is still up.
        let autoscaled = cluster("ACTIVE", vec![ng("spot", "ACTIVE", 1, 3, 3)], &[]);
        assert_eq!(
            step(
                Desired::Up,
                Mode::Scale,
                &bp,
                &autoscaled,
                &announced(Desired::Up)
            ),
            Step::Steady
        );
        // A scale-mode cluster that was never built is simply down.
        assert_eq!(
            step(Desired::Down, Mode::Scale, &bp, &Observed::Absent, &none),
            Step::RecordDown
        );
    }

    #[test]
    fn foreign_clusters_are_never_touched() {
        let bp = blueprint(&[]);
        for owner in [None, Some("another-fleet".to_string())] {
            let mut foreign = cluster("ACTIVE", vec![ng("spot", "ACTIVE", 1, 2, 3)], &[]);
            if let Observed::Present(c) = &mut foreign {
                c.ownership = Ownership::Foreign(owner.clone());
            }
            for desired in [Desired::Up, Desired::Down] {
                for mode in [Mode::Destroy, Mode::Scale] {
                    assert_eq!(
                        step(desired, mode, &bp, &foreign, &RecordedState::default()),
                        Step::Foreign(owner.clone())
                    );
                }
            }
        }
    }

    fn described(
        managed_by: Option<&str>,
        token: Option<&str>,
        generation: &str,
    ) -> ObservedCluster {
        ObservedCluster {
            managed_by: managed_by.map(String::from),
            request_token: token.map(String::from),
            generation: generation.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_cluster_is_ours_only_as_the_incarnation_we_created_or_adopted() {
        let ours = "infra-fleet";
        let record = |token: Option<&str>, owned: Option<&str>| RecordedState {
            creation_token: token.map(String::from),
            owned_generation: owned.map(String::from),
            ..Default::default()
        };
        // Created by our token: ours, whether or not its generation was seen yet.
        assert_eq!(
            ownership(
                &described(Some(ours), Some("t1"), "100"),
                &record(Some("t1"), None),
                ours
            ),
            Ownership::Ours
        );
        // Adopted (or seen earlier): the generation is recorded.
        assert_eq!(
            ownership(
                &described(Some(ours), None, "100"),
                &record(None, Some("100")),
                ours
            ),
            Ownership::Ours
        );
        // The audit's reproduction: our tag copied onto a cluster we never made, no record.
        assert_eq!(
            ownership(
                &described(Some(ours), None, "100"),
                &RecordedState::default(),
                ours
            ),
            Ownership::NotCreatedByFleet
        );
        // Recreated behind our back under our tag: another token, another generation.
        assert_eq!(
            ownership(
                &described(Some(ours), Some("t9"), "200"),
                &record(Some("t1"), Some("100")),
                ours
            ),
            Ownership::NotCreatedByFleet
        );
        // No token on either side never matches.
        assert_eq!(
            ownership(
                &described(Some(ours), None, "100"),
                &record(None, None),
                ours
            ),
            Ownership::NotCreatedByFleet
        );
        // Another fleet's tag, or none: foreign, even with our token.
        assert_eq!(
            ownership(
                &described(Some("other"), Some("t1"), "100"),
                &record(Some("t1"), None),
                ours
            ),
            Ownership::Foreign(Some("other".into()))
        );
        assert_eq!(
            ownership(
                &described(None, None, "100"),
                &record(None, Some("100")),
                ours
            ),
            Ownership::Foreign(None)
        );
    }

    #[test]
    fn not_created_by_fleet_is_left_alone_unless_adopted() {
        let mut bp = blueprint(&[]);
        let mut theirs = cluster("ACTIVE", vec![ng("critical", "ACTIVE", 1, 1, 1)], &[]);
        if let Observed::Present(c) = &mut theirs {
            c.ownership = Ownership::NotCreatedByFleet;
        }
        for desired in [Desired::Up, Desired::Down] {
            for mode in [Mode::Destroy, Mode::Scale] {
                assert_eq!(
                    step(desired, mode, &bp, &theirs, &RecordedState::default()),
                    Step::NotCreatedByFleet
                );
            }
        }
        bp.adopt = true;
        assert_eq!(
            step(
                Desired::Down,
                Mode::Destroy,
                &bp,
                &theirs,
                &RecordedState::default()
            ),
            Step::Adopt
        );
        assert!(Step::NotCreatedByFleet
            .describe()
            .starts_with("none: not-created-by-fleet"));
    }

    #[test]
    fn scale_down_leaves_nodegroups_the_blueprint_did_not_make() {
        let bp = blueprint(&[]);
        let observed = cluster(
            "ACTIVE",
            vec![
                ng("spot", "ACTIVE", 1, 2, 3),
                ng("critical", "ACTIVE", 1, 1, 1),
            ],
            &[],
        );
        let Step::ScaleNodegroups(targets) = step(
            Desired::Down,
            Mode::Scale,
            &bp,
            &observed,
            &RecordedState::default(),
        ) else {
            panic!("expected a scale-down");
        };
        let names: Vec<&str> = targets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["spot"]);
    }

    #[test]
    fn destructive_steps_are_the_ones_audited() {
        let zero = Scaling {
            min: 0,
            max: 1,
            desired: 0,
        };
        let up = Scaling {
            min: 1,
            max: 3,
            desired: 2,
        };
        assert!(Step::DeleteCluster { failed: false }.is_destructive());
        assert!(Step::DeleteNodegroups {
            names: vec![],
            notes: vec![],
            services: vec![],
        }
        .is_destructive());
        assert!(Step::ScaleNodegroups(vec![("a".into(), zero)]).is_destructive());
        assert!(!Step::ScaleNodegroups(vec![("a".into(), up)]).is_destructive());
        assert!(!Step::CreateCluster.is_destructive());
        assert!(!Step::Adopt.is_destructive());
        let t = "2026-11-23T07:00:00Z".parse().expect("ts");
        let a = creation_token_candidate("req-1", "staging", t);
        assert_eq!(a.len(), 32);
        assert_ne!(a, creation_token_candidate("req-2", "staging", t));
        assert_ne!(a, creation_token_candidate("req-1", "prod", t));
    }

    fn with_teardown(view: TeardownView) -> Observed {
        let mut o = cluster("ACTIVE", vec![ng("spot", "ACTIVE", 1, 2, 3)], &[]);
        if let Observed::Present(c) = &mut o {
            c.teardown = Some(view);
        }
        o
    }

    #[test]
    fn a_service_kept_by_its_finalizer_is_waited_for_a_bounded_time_not_deleted_again() {
        let c = blueprint(&[]);
        let started = RecordedState {
            teardown_started: Some("2026-11-23T18:55:00Z".parse().expect("ts")),
            ..Default::default()
        };
        let held = with_teardown(TeardownView {
            terminating_services: vec![
                "ingress-nginx/controller (service.kubernetes.io/load-balancer-cleanup)".into(),
            ],
            ..Default::default()
        });
        assert!(matches!(
            step(Desired::Down, Mode::Destroy, &c, &held, &started),
            Step::Wait(w) if w.starts_with("Services kept by their finalizers: ingress-nginx/controller")
                && w.contains("waiting until 2026-11-23T19:05:00Z")
        ));
        // Both waits share one bound.
        let both = with_teardown(TeardownView {
            terminating_services: vec!["a/b (service.k8s.aws/resources)".into()],
            load_balancers: vec!["k8s-a-b".into()],
            ..Default::default()
        });
        assert!(matches!(
            step(Desired::Down, Mode::Destroy, &c, &both, &started),
            Step::Wait(w) if w.starts_with("load balancers still exist: k8s-a-b; Services kept by their finalizers: a/b")
        ));
        let long_ago = RecordedState {
            teardown_started: Some("2026-11-23T18:00:00Z".parse().expect("ts")),
            ..Default::default()
        };
        let Step::DeleteNodegroups { names, notes, .. } =
            step(Desired::Down, Mode::Destroy, &c, &both, &long_ago)
        else {
            panic!("should delete nodegroups after the wait");
        };
        assert_eq!(names, vec!["spot".to_string()]);
        assert!(notes[0].contains("load balancers left behind after waiting 10 minutes: k8s-a-b"));
        assert!(notes[1].contains("kept by their finalizers after waiting 10 minutes"));
        assert!(notes[1].contains("a/b (service.k8s.aws/resources)"));
    }

    #[test]
    fn teardown_deletes_load_balancer_services_then_waits_bounded() {
        let c = blueprint(&[]);
        let started = RecordedState {
            teardown_started: Some("2026-11-23T18:55:00Z".parse().expect("ts")),
            ..Default::default()
        };
        let services = with_teardown(TeardownView {
            lb_services: Ok(vec!["ingress-nginx/controller".into()]),
            load_balancers: vec!["k8s-ingress-abc".into()],
            ..Default::default()
        });
        assert_eq!(
            step(Desired::Down, Mode::Destroy, &c, &services, &started),
            Step::DeleteLoadBalancerServices(vec!["ingress-nginx/controller".into()])
        );
        let lb_left = with_teardown(TeardownView {
            lb_services: Ok(vec![]),
            load_balancers: vec!["k8s-ingress-abc".into()],
            ..Default::default()
        });
        // 5 minutes into a 10-minute wait.
        assert!(matches!(
            step(Desired::Down, Mode::Destroy, &c, &lb_left, &started),
            Step::Wait(w) if w.starts_with("load balancers still exist: k8s-ingress-abc")
        ));
        // Past the wait: go on, and say what was left behind.
        let long_ago = RecordedState {
            teardown_started: Some("2026-11-23T18:00:00Z".parse().expect("ts")),
            ..Default::default()
        };
        let Step::DeleteNodegroups { names, notes, .. } =
            step(Desired::Down, Mode::Destroy, &c, &lb_left, &long_ago)
        else {
            panic!("should delete nodegroups");
        };
        assert_eq!(names, vec!["spot".to_string()]);
        assert!(notes[0].contains("left behind after waiting 10 minutes: k8s-ingress-abc"));
        // Gone: straight on, nothing to report.
        let clean = with_teardown(TeardownView {
            lb_services: Ok(vec![]),
            ..Default::default()
        });
        assert_eq!(
            step(Desired::Down, Mode::Destroy, &c, &clean, &started),
            Step::DeleteNodegroups {
                names: vec!["spot".into()],
                notes: vec![],
                services: vec![],
            }
        );
    }

    #[test]
    fn a_load_balancer_service_that_keeps_coming_back_does_not_keep_the_cluster_up() {
        // GitOps re-creates the ingress Service, or its DELETE keeps failing: deleting it
        // again is right within the wait, and past it the nodegroups go, with a note.
        let c = blueprint(&[]);
        let back = with_teardown(TeardownView {
            lb_services: Ok(vec!["ingress-nginx/controller".into()]),
            ..Default::default()
        });
        let started = RecordedState {
            teardown_started: Some("2026-11-23T18:55:00Z".parse().expect("ts")),
            ..Default::default()
        };
        assert_eq!(
            step(Desired::Down, Mode::Destroy, &c, &back, &started),
            Step::DeleteLoadBalancerServices(vec!["ingress-nginx/controller".into()])
        );
        let long_ago = RecordedState {
            teardown_started: Some("2026-11-23T18:00:00Z".parse().expect("ts")),
            ..Default::default()
        };
        let Step::DeleteNodegroups {
            names,
            notes,
            services,
        } = step(Desired::Down, Mode::Destroy, &c, &back, &long_ago)
        else {
            panic!("should delete nodegroups after the wait");
        };
        assert_eq!(names, vec!["spot".to_string()]);
        // Deleted once more, with the nodegroups: none goes without its DELETE.
        assert_eq!(services, vec!["ingress-nginx/controller".to_string()]);
        assert!(
            notes[0].contains("10-minute wait for load balancers ended"),
            "{notes:?}"
        );
        assert!(notes[0].contains("ingress-nginx/controller"), "{notes:?}");
        // A wait of 0 minutes: the Services are still deleted, in the same step.
        let mut no_wait = blueprint(&[]);
        no_wait.load_balancer_wait_minutes = 0;
        let Step::DeleteNodegroups { services, .. } =
            step(Desired::Down, Mode::Destroy, &no_wait, &back, &started)
        else {
            panic!("no wait: straight to the nodegroups");
        };
        assert_eq!(services, vec!["ingress-nginx/controller".to_string()]);
        // A wait too long to represent has no end, rather than none.
        let mut forever = blueprint(&[]);
        forever.load_balancer_wait_minutes = u32::MAX;
        assert_eq!(
            step(Desired::Down, Mode::Destroy, &forever, &back, &long_ago),
            Step::DeleteLoadBalancerServices(vec!["ingress-nginx/controller".into()])
        );
    }

    #[test]
    fn a_teardown_begins_only_when_a_nodegroup_can_be_deleted() {
        let c = blueprint(&[]);
        for (status, begins) in [
            ("ACTIVE", true),
            ("DEGRADED", true),
            ("CREATE_FAILED", true),
            ("DELETE_FAILED", true),
            ("CREATING", false),
            ("UPDATING", false),
            ("DELETING", false),
        ] {
            let Observed::Present(o) = cluster("ACTIVE", vec![ng("spot", status, 1, 2, 3)], &[])
            else {
                panic!("present");
            };
            assert_eq!(!teardown_deletable(&c, &o).is_empty(), begins, "{status}");
        }
        // Not the blueprint's: never the fleet's to delete.
        let Observed::Present(o) = cluster("ACTIVE", vec![ng("theirs", "ACTIVE", 1, 2, 3)], &[])
        else {
            panic!("present");
        };
        assert!(teardown_deletable(&c, &o).is_empty());
    }

    #[test]
    fn teardown_goes_on_when_the_api_is_unreachable() {
        let c = blueprint(&[]);
        let unreachable = with_teardown(TeardownView {
            lb_services: Err("connection refused".into()),
            ..Default::default()
        });
        let Step::DeleteNodegroups { notes, .. } = step(
            Desired::Down,
            Mode::Destroy,
            &c,
            &unreachable,
            &RecordedState::default(),
        ) else {
            panic!("should go on");
        };
        assert!(notes[0].contains("Kubernetes API is unreachable (connection refused)"));
    }

    #[test]
    fn pod_identity_is_created_and_only_the_fleets_own_associations_are_updated() {
        use crate::observed::ObservedPodIdentity;
        use fleet_shared::config::PodIdentity;
        let want = |ns: &str, sa: &str, role: &str| PodIdentity {
            namespace: ns.into(),
            service_account: sa.into(),
            role_arn: role.into(),
        };
        let seen = |ns: &str, sa: &str, role: &str, ours: bool| ObservedPodIdentity {
            namespace: ns.into(),
            service_account: sa.into(),
            association_id: format!("a-{sa}"),
            role_arn: role.into(),
            ours,
        };
        let wanted = vec![
            want(
                "kube-system",
                "karpenter",
                "arn:aws:iam::123456789012:role/karpenter",
            ),
            want(
                "kube-system",
                "ebs-csi",
                "arn:aws:iam::123456789012:role/ebs",
            ),
            want("apps", "web", "arn:aws:iam::123456789012:role/web"),
            want("apps", "api", "arn:aws:iam::123456789012:role/api"),
        ];
        let observed = vec![
            // As wanted: nothing to do.
            seen(
                "kube-system",
                "karpenter",
                "arn:aws:iam::123456789012:role/karpenter",
                true,
            ),
            // The fleet's, with another role: pointed back.
            seen(
                "kube-system",
                "ebs-csi",
                "arn:aws:iam::123456789012:role/old",
                true,
            ),
            // Someone else's, with another role: left alone, reported.
            seen(
                "apps",
                "web",
                "arn:aws:iam::123456789012:role/theirs",
                false,
            ),
            // Not listed: none of the fleet's business.
            seen("apps", "other", "arn:aws:iam::123456789012:role/x", false),
        ];
        assert_eq!(
            pod_identity_changes(&wanted, &observed),
            vec![
                PodIdentityChange::Update {
                    association_id: "a-ebs-csi".into(),
                    service_account: "kube-system/ebs-csi".into(),
                    role_arn: "arn:aws:iam::123456789012:role/ebs".into(),
                },
                PodIdentityChange::Create(wanted[3].clone()),
            ]
        );
        assert_eq!(
            pod_identity_conflicts(&wanted, &observed),
            vec!["apps/web: arn:aws:iam::123456789012:role/theirs".to_string()]
        );
    }

    #[test]
    fn access_entries_first_and_bootstrap_before_ready() {
        let mut c = blueprint(&[]);
        c.blueprint.access = vec![fleet_shared::config::AccessEntry {
            principal_arn: "arn:aws:iam::123456789012:role/dns-updater".into(),
            kind: Default::default(),
            policy: Some("AmazonEKSViewPolicy".into()),
            kubernetes_groups: vec![],
            username: None,
        }];
        c.blueprint.bootstrap = vec!["manifests/flux.yaml".into()];
        let ready = cluster("ACTIVE", vec![ng("spot", "ACTIVE", 1, 2, 3)], &[]);
        let none = RecordedState::default();
        assert_eq!(
            step(Desired::Up, Mode::Destroy, &c, &ready, &none),
            Step::CreateAccessEntries(vec!["arn:aws:iam::123456789012:role/dns-updater".into()])
        );
        let mut with_access = ready.clone();
        if let Observed::Present(o) = &mut with_access {
            o.access_principals = vec!["arn:aws:iam::123456789012:role/dns-updater".into()];
        }
        assert_eq!(
            step(Desired::Up, Mode::Destroy, &c, &with_access, &none),
            Step::BootstrapThenAnnounce
        );
        assert_eq!(
            step(
                Desired::Up,
                Mode::Destroy,
                &c,
                &with_access,
                &announced(Desired::Up)
            ),
            Step::Steady
        );
    }

    #[test]
    fn teardown_reports_what_it_could_not_check() {
        let c = blueprint(&[]);
        let view = with_teardown(TeardownView {
            problems: vec!["could not check for leftover load balancers: AccessDenied".into()],
            ..Default::default()
        });
        let Step::DeleteNodegroups { notes, .. } = step(
            Desired::Down,
            Mode::Destroy,
            &c,
            &view,
            &RecordedState::default(),
        ) else {
            panic!("should go on");
        };
        assert_eq!(
            notes,
            vec!["could not check for leftover load balancers: AccessDenied".to_string()]
        );
    }

    /// When one `DescribeCluster` may stand for a full look, and every reason it may not.
    #[test]
    fn trusting_the_recorded_phase() {
        let bp = blueprint(&[]);
        let print = config_fingerprint(&bp);
        // 29 minutes into the cluster's current period.
        let now = full_look_due_since(&bp.name, "2026-11-23T19:00:00Z".parse().expect("ts"))
            .checked_add(29.minutes())
            .expect("ts");
        let checked = |minutes_ago: i64| RecordedState {
            checked_at: now.checked_sub(minutes_ago.minutes()).ok(),
            checked_config: Some(print.clone()),
            ..announced(Desired::Up)
        };
        let trust = |desired, mode, recorded: &RecordedState, described: &Observed, print: &str| {
            let mut c = bp.clone();
            c.mode = mode;
            let s = Situation {
                desired,
                cluster: &c,
                observed: described,
                recorded,
                now,
                network_wait: None,
            };
            trust_recorded(&s, described, print)
        };
        let active = cluster("ACTIVE", vec![], &[]);
        use Desired::{Down, Up};
        use Mode::{Destroy, Scale};
        assert!(trust(Up, Destroy, &checked(5), &active, &print));
        assert!(trust(Up, Destroy, &checked(29), &active, &print));
        // Before this period, never checked, or checked in the future (a clock gone wrong).
        assert!(!trust(Up, Destroy, &checked(30), &active, &print));
        assert!(!trust(Up, Destroy, &announced(Up), &active, &print));
        assert!(!trust(Up, Destroy, &checked(-5), &active, &print));
        // The config changed since.
        assert!(!trust(Up, Destroy, &checked(5), &active, "other"));
        // Not announced, another phase, another incarnation.
        let unannounced = RecordedState {
            announced: false,
            ..checked(5)
        };
        assert!(!trust(Up, Destroy, &unannounced, &active, &print));
        assert!(!trust(Down, Scale, &checked(5), &active, &print));
        let recreated = Observed::Present(ObservedCluster {
            generation: "gen-2".into(),
            ..Default::default()
        });
        assert!(!trust(Up, Destroy, &checked(5), &recreated, &print));
        // Not ACTIVE, not ours, gone.
        assert!(!trust(
            Up,
            Destroy,
            &checked(5),
            &cluster("UPDATING", vec![], &[]),
            &print
        ));
        let foreign = Observed::Present(ObservedCluster {
            ownership: Ownership::Foreign(None),
            generation: "gen-1".into(),
            ..Default::default()
        });
        assert!(!trust(Up, Destroy, &checked(5), &foreign, &print));
        assert!(!trust(Up, Destroy, &checked(5), &Observed::Absent, &print));
        // A failure since the look.
        let failing = RecordedState {
            attempts: 1,
            ..checked(5)
        };
        assert!(!trust(Up, Destroy, &failing, &active, &print));
        // Scaled down: trusted; destroy mode and present while down: never.
        let down = RecordedState {
            phase: Some(Down),
            ..checked(5)
        };
        assert!(trust(Down, Scale, &down, &active, &print));
        assert!(!trust(Down, Destroy, &down, &active, &print));
        // Periods are an hour long, and the fleet's spread over them.
        let since = full_look_due_since("staging", now);
        let period = FULL_LOOK_EVERY_MINUTES;
        assert!(since <= now && now < since.checked_add(period.minutes()).expect("ts"));
        let starts: std::collections::BTreeSet<i64> = (0..200)
            .map(|i| full_look_due_since(&format!("cluster-{i}"), now).as_second() % (period * 60))
            .collect();
        assert!(starts.len() > 100, "{} distinct offsets", starts.len());
        // Any change of the config changes the fingerprint.
        let mut bigger = bp.clone();
        bigger.blueprint.nodegroups[0].max_size = 9;
        assert_ne!(config_fingerprint(&bigger), print);
        assert_eq!(config_fingerprint(&bp.clone()), print);
    }
}
