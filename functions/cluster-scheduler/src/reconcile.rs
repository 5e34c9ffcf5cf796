//! The reconciler's decision: given what should be and what is, the next step.
//!
//! Pure: no I/O, no clock. Every step is idempotent and none waits on EKS; the next tick
//! observes again and takes the step after. That makes the scheduler safe to run twice,
//! late, or concurrently, and lets a 10-20 minute cluster creation span many short ticks.

use fleet_shared::config::{Blueprint, Mode};
use fleet_shared::schedule::Desired;
use fleet_shared::state::RecordedState;
use serde::Serialize;

/// What EKS says about a cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    Absent,
    Present(ObservedCluster),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedCluster {
    /// EKS status: CREATING, ACTIVE, DELETING, FAILED, UPDATING or PENDING.
    pub status: String,
    /// Carries the fleet's managed-by tag. Clusters without it are never touched.
    pub managed: bool,
    /// Identifies this incarnation of the cluster (its creation time).
    pub generation: String,
    pub endpoint: Option<String>,
    pub nodegroups: Vec<ObservedNodegroup>,
    /// Installed add-on names; empty when the blueprint has none (not listed then).
    pub addons: Vec<String>,
    /// Fargate profiles with their status; only listed when tearing down.
    pub fargate_profiles: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedNodegroup {
    pub name: String,
    /// EKS status: CREATING, ACTIVE, UPDATING, DELETING, CREATE_FAILED, DELETE_FAILED, DEGRADED.
    pub status: String,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    /// Health issues EKS reports, `code: message`.
    pub issues: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scaling {
    pub min: i32,
    pub max: i32,
    pub desired: i32,
}

/// The next idempotent step for one cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to do: actual matches desired and was announced.
    Steady,
    /// A cluster of that name exists without the managed-by tag: never touched.
    Foreign,
    /// Something is in progress; look again on a later tick.
    Wait(String),
    CreateCluster,
    CreateAddons(Vec<String>),
    CreateNodegroups(Vec<String>),
    /// Delete nodegroups that failed to create; later ticks recreate them.
    ReplaceFailedNodegroups(Vec<String>),
    ScaleNodegroups(Vec<(String, Scaling)>),
    /// EKS deletes one Fargate profile at a time.
    DeleteFargateProfile(String),
    DeleteNodegroups(Vec<String>),
    /// `failed`: the cluster is in FAILED status and is deleted to be rebuilt.
    DeleteCluster {
        failed: bool,
    },
    /// Record the up transition and publish `Cluster Ready`.
    AnnounceUp,
    /// Record the down transition and publish `Cluster Destroyed`.
    AnnounceDown,
    /// First sight of a cluster that does not exist and should not: record it as down
    /// without an event, since nothing was ever built.
    RecordDown,
}

impl Step {
    /// Short, stable description for plans and logs.
    pub fn describe(&self) -> String {
        match self {
            Step::Steady => "none".into(),
            Step::Foreign => "none: a cluster of this name exists without the fleet:managed-by tag; it is never touched".into(),
            Step::Wait(why) => format!("wait: {why}"),
            Step::CreateCluster => "create-cluster".into(),
            Step::CreateAddons(a) => format!("create-addons {}", a.join(",")),
            Step::CreateNodegroups(n) => format!("create-nodegroups {}", n.join(",")),
            Step::ReplaceFailedNodegroups(n) => format!("delete-failed-nodegroups {}", n.join(",")),
            Step::ScaleNodegroups(n) => format!(
                "scale-nodegroups {}",
                n.iter()
                    .map(|(name, s)| format!("{name}={}/{}/{}", s.min, s.desired, s.max))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Step::DeleteFargateProfile(p) => format!("delete-fargate-profile {p}"),
            Step::DeleteNodegroups(n) => format!("delete-nodegroups {}", n.join(",")),
            Step::DeleteCluster { failed: true } => "delete-cluster (FAILED, rebuilt after)".into(),
            Step::DeleteCluster { failed: false } => "delete-cluster".into(),
            Step::AnnounceUp => "announce-ready".into(),
            Step::AnnounceDown => "announce-destroyed".into(),
            Step::RecordDown => "record-down (never built: nothing to announce)".into(),
        }
    }
}

/// Everything the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    pub desired: Desired,
    pub mode: Mode,
    pub blueprint: &'a Blueprint,
    pub observed: &'a Observed,
    pub recorded: &'a RecordedState,
}

const NODEGROUP_RUNNING: [&str; 2] = ["ACTIVE", "DEGRADED"];

/// Short summary of the observed state for plans and status.
pub fn summarize(observed: &Observed) -> String {
    match observed {
        Observed::Absent => "absent".into(),
        Observed::Present(c) if !c.managed => "foreign".into(),
        Observed::Present(c) => {
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
    }
}

fn is_announced(recorded: &RecordedState, phase: Desired, generation: Option<&str>) -> bool {
    recorded.phase == Some(phase)
        && recorded.announced
        && generation.is_none_or(|g| recorded.generation.as_deref() == Some(g))
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
        Observed::Present(c) if !c.managed => return Step::Foreign,
        Observed::Present(c) => c,
    };
    match (s.desired, cluster.status.as_str()) {
        (_, "DELETING") => Step::Wait("the cluster is being deleted".into()),
        (_, "CREATING" | "PENDING" | "UPDATING") => {
            Step::Wait(format!("the cluster is {}", cluster.status))
        }
        (Desired::Up, "FAILED") => Step::DeleteCluster { failed: true },
        (Desired::Up, _) => bring_up(s, cluster),
        (Desired::Down, _) => match s.mode {
            Mode::Destroy => tear_down(cluster),
            Mode::Scale => scale_down(s, cluster),
        },
    }
}

fn bring_up(s: Situation<'_>, c: &ObservedCluster) -> Step {
    let bp = s.blueprint;
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
        return Step::CreateNodegroups(missing);
    }
    if s.mode == Mode::Scale {
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
    if is_announced(s.recorded, Desired::Up, Some(&c.generation)) {
        Step::Steady
    } else {
        Step::AnnounceUp
    }
}

fn tear_down(c: &ObservedCluster) -> Step {
    if let Some((name, status)) = c.fargate_profiles.iter().find(|(_, st)| st == "DELETING") {
        return Step::Wait(format!("fargate profile {name} is {status}"));
    }
    if let Some((name, _)) = c.fargate_profiles.first() {
        return Step::DeleteFargateProfile(name.clone());
    }
    let deletable: Vec<String> = c
        .nodegroups
        .iter()
        .filter(|n| {
            NODEGROUP_RUNNING.contains(&n.status.as_str())
                || n.status == "CREATE_FAILED"
                || n.status == "DELETE_FAILED"
        })
        .map(|n| n.name.clone())
        .collect();
    if !deletable.is_empty() {
        return Step::DeleteNodegroups(deletable);
    }
    if let Some(n) = c.nodegroups.first() {
        return Step::Wait(format!("nodegroup {} is {}", n.name, n.status));
    }
    Step::DeleteCluster { failed: false }
}

fn scale_down(s: Situation<'_>, c: &ObservedCluster) -> Step {
    if let Some(n) = c
        .nodegroups
        .iter()
        .find(|n| matches!(n.status.as_str(), "CREATING" | "UPDATING" | "DELETING"))
    {
        return Step::Wait(format!("nodegroup {} is {}", n.name, n.status));
    }
    let to_zero: Vec<(String, Scaling)> = c
        .nodegroups
        .iter()
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
    if !to_zero.is_empty() {
        return Step::ScaleNodegroups(to_zero);
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

    fn blueprint(addons: &[&str]) -> Blueprint {
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
            .blueprint
    }

    fn cluster(status: &str, ngs: Vec<ObservedNodegroup>, addons: &[&str]) -> Observed {
        Observed::Present(ObservedCluster {
            status: status.into(),
            managed: true,
            generation: "gen-1".into(),
            endpoint: Some("https://x".into()),
            nodegroups: ngs,
            addons: addons.iter().map(|s| s.to_string()).collect(),
            fargate_profiles: vec![],
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
        bp: &Blueprint,
        observed: &Observed,
        recorded: &RecordedState,
    ) -> Step {
        next_step(Situation {
            desired,
            mode,
            blueprint: bp,
            observed,
            recorded,
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
        assert_eq!(
            step(Down, Destroy, &bp, &with_fargate, &none),
            Step::DeleteFargateProfile("fp-a".into())
        );
        if let Observed::Present(c) = &mut with_fargate {
            c.fargate_profiles[0].1 = "DELETING".into();
        }
        assert_eq!(
            step(Down, Destroy, &bp, &with_fargate, &none),
            Step::Wait("fargate profile fp-a is DELETING".into())
        );
        let cases: Vec<(Observed, Step)> = vec![
            (
                cluster(
                    "ACTIVE",
                    vec![
                        ng("spot", "ACTIVE", 1, 2, 3),
                        ng("extra", "CREATE_FAILED", 0, 0, 1),
                    ],
                    &[],
                ),
                Step::DeleteNodegroups(vec!["spot".into(), "extra".into()]),
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
        let mut foreign = cluster("ACTIVE", vec![ng("spot", "ACTIVE", 1, 2, 3)], &[]);
        if let Observed::Present(c) = &mut foreign {
            c.managed = false;
        }
        for desired in [Desired::Up, Desired::Down] {
            for mode in [Mode::Destroy, Mode::Scale] {
                assert_eq!(
                    step(desired, mode, &bp, &foreign, &RecordedState::default()),
                    Step::Foreign
                );
            }
        }
    }
}
