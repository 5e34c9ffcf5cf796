//! The steps the reconciler decides ([`crate::reconcile::next_step`]) and the handler
//! carries out ([`crate::execute`]), one per tick per cluster.

use fleet_shared::config::PodIdentity;

use crate::observed::Scaling;

/// One change to the cluster's Pod Identity associations.
#[derive(Debug, Clone, PartialEq)]
pub enum PodIdentityChange {
    /// The blueprint's association, missing from the cluster.
    Create(PodIdentity),
    /// An association of a listed service account with another role.
    Update {
        association_id: String,
        /// `namespace/service_account`, for plans and logs.
        service_account: String,
        role_arn: String,
    },
}

/// The next idempotent step for one cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to do: actual matches desired and was announced.
    Steady,
    /// A cluster of that name exists without this fleet's managed-by tag: never touched.
    Foreign(Option<String>),
    /// Tagged as this fleet's, but not an incarnation it created or adopted: never
    /// touched (set `adopt = true` to take it over).
    NotCreatedByFleet,
    /// `adopt = true` and the cluster is [`Ownership::NotCreatedByFleet`](crate::observed::Ownership::NotCreatedByFleet): record this
    /// incarnation as the fleet's (once; audited and sent to Slack).
    Adopt,
    /// Something is in progress; look again on a later tick.
    Wait(String),
    CreateCluster,
    /// Access entries (with their policy) for principals that lack one.
    CreateAccessEntries(Vec<String>),
    /// IRSA: make the IAM OIDC provider of the cluster's new issuer (the URL) and move
    /// the `irsa_roles`' trust statements from the previous issuer to it.
    TrustIssuer(String),
    /// Pod Identity associations to create or point at their blueprint role.
    AssociatePodIdentities(Vec<PodIdentityChange>),
    CreateAddons(Vec<String>),
    CreateNodegroups(Vec<String>),
    /// Delete nodegroups that failed to create; later ticks recreate them.
    ReplaceFailedNodegroups(Vec<String>),
    ScaleNodegroups(Vec<(String, Scaling)>),
    /// Delete Services of type LoadBalancer so their load balancers are not orphaned.
    DeleteLoadBalancerServices(Vec<String>),
    /// Delete the nodegroups; `notes` report what the teardown had to leave behind.
    /// `services`: LoadBalancer Services still live when the load-balancer wait ended (a
    /// wait of 0 minutes, an API that was unreachable until then, a Service re-created or
    /// whose DELETE failed): deleted once more, best effort, just before, so that none
    /// goes without its DELETE.
    DeleteNodegroups {
        names: Vec<String>,
        notes: Vec<String>,
        services: Vec<String>,
    },
    /// `failed`: the cluster is in FAILED status and is deleted to be rebuilt.
    DeleteCluster {
        failed: bool,
    },
    /// Apply the bootstrap secrets, then the manifests; then (when all applied) await
    /// `ready_when` as [`Step::AwaitReady`] does, in the same tick.
    BootstrapThenAnnounce,
    /// The bootstrap is applied: announce `Cluster Ready` once every `ready_when` object
    /// (`objects`, as plans name them) is ready, or `degraded` from `degraded_after` on
    /// (the bootstrap's time plus `ready_timeout_minutes`).
    AwaitReady {
        objects: Vec<String>,
        degraded_after: jiff::Timestamp,
    },
    /// Record the up transition and publish `Cluster Ready`.
    AnnounceUp,
    /// Karpenter, evening: record the `spec.limits` of the managed NodePools not yet
    /// recorded (`record`: name and limits, `None` for none), then cap those in `cap` to
    /// `cpu: "0"` (server-side apply, field manager `fleet`) so that nothing new launches.
    /// Taken again on every tick that finds a cap undone (GitOps re-applying its
    /// manifests) until the nodegroups that run the controller are down.
    /// `then`: the evening's next step, taken in the same tick, so that GitOps putting
    /// a limit back every few minutes cannot keep the evening from going on.
    CapNodePools {
        record: Vec<(String, Option<serde_json::Value>)>,
        cap: Vec<String>,
        then: Option<Box<Step>>,
    },
    /// Karpenter, evening: delete these NodeClaims; Karpenter drains their nodes
    /// (honouring PodDisruptionBudgets) and terminates their instances.
    DeleteNodeClaims(Vec<String>),
    /// Karpenter, destroy mode: delete these EC2NodeClasses while the controller still
    /// runs, so that its finalizer removes their instance profiles and launch templates.
    DeleteNodeClasses(Vec<String>),
    /// Karpenter's backstop: terminate the cluster's Karpenter instances still running
    /// after the drain wait and delete its launch templates; `notes` say what Karpenter
    /// left to it.
    TerminateKarpenterNodes {
        instances: Vec<String>,
        launch_templates: Vec<String>,
        notes: Vec<String>,
    },
    /// Karpenter, morning: put back the NodePool limits recorded in the evening (the
    /// recorded value exactly, or no limits when there were none).
    RestoreNodePoolLimits(Vec<(String, Option<serde_json::Value>)>),
    /// Record the down transition and publish `Cluster Destroyed`.
    AnnounceDown,
    /// First sight of a cluster that does not exist and should not: record it as down
    /// without an event, since nothing was ever built.
    RecordDown,
}

impl Step {
    /// What the step reports it had to leave behind (the teardown's and the backstop's
    /// notes), for the tick's answer.
    pub fn notes(&self) -> Vec<String> {
        match self {
            Step::DeleteNodegroups { notes, .. } | Step::TerminateKarpenterNodes { notes, .. } => {
                notes.clone()
            }
            Step::CapNodePools {
                then: Some(next), ..
            } => next.notes(),
            _ => vec![],
        }
    }

    /// A morning step that is a few API calls finishing at once (nothing to wait for):
    /// the tick takes the next such step right after it (see `tick`).
    pub fn is_quick(&self) -> bool {
        matches!(
            self,
            Step::CreateAccessEntries(_)
                | Step::TrustIssuer(_)
                | Step::AssociatePodIdentities(_)
                | Step::CreateAddons(_)
        )
    }

    /// Whether the step begins (or goes on with) bringing the cluster up: the first one
    /// taken dates the morning (`Cluster Ready`'s `took_seconds`).
    pub fn is_rise(&self) -> bool {
        match self {
            Step::CreateCluster
            | Step::CreateAccessEntries(_)
            | Step::TrustIssuer(_)
            | Step::AssociatePodIdentities(_)
            | Step::CreateAddons(_)
            | Step::CreateNodegroups(_)
            | Step::RestoreNodePoolLimits(_) => true,
            Step::ScaleNodegroups(targets) => targets.iter().all(|(_, s)| s.desired > 0),
            _ => false,
        }
    }

    /// Whether the step deletes or takes down something: such steps are recorded in the
    /// audit trail (with what decided them) before they are taken.
    pub fn is_destructive(&self) -> bool {
        match self {
            Step::DeleteLoadBalancerServices(_)
            | Step::DeleteNodegroups { .. }
            | Step::DeleteCluster { .. }
            | Step::ReplaceFailedNodegroups(_)
            | Step::CapNodePools { .. }
            | Step::DeleteNodeClaims(_)
            | Step::DeleteNodeClasses(_)
            | Step::TerminateKarpenterNodes { .. } => true,
            Step::ScaleNodegroups(targets) => targets.iter().any(|(_, s)| s.desired == 0),
            _ => false,
        }
    }

    /// Short, stable description for plans and logs.
    pub fn describe(&self) -> String {
        match self {
            Step::Steady => "none".into(),
            Step::Foreign(None) => "none: a cluster of this name exists without the fleet:managed-by tag; it is never touched".into(),
            Step::Foreign(Some(other)) => format!("none: a cluster of this name belongs to another fleet (fleet:managed-by = {other}); it is never touched"),
            Step::NotCreatedByFleet => "none: not-created-by-fleet: tagged as this fleet's, but this fleet neither created nor adopted this incarnation; it is never touched (adopt = true takes it over)".into(),
            Step::Adopt => "adopt (adopt = true)".into(),
            Step::Wait(why) => format!("wait: {why}"),
            Step::CreateCluster => "create-cluster".into(),
            Step::CreateAccessEntries(p) => format!("create-access-entries {}", p.join(",")),
            Step::DeleteLoadBalancerServices(s) => format!("delete-loadbalancer-services {}", s.join(",")),
            Step::BootstrapThenAnnounce => "bootstrap-then-announce".into(),
            Step::AwaitReady {
                objects,
                degraded_after,
            } => format!(
                "await-ready {} (announced degraded from {degraded_after})",
                objects.join(", ")
            ),
            Step::TrustIssuer(issuer) => format!("trust-issuer {issuer}"),
            Step::AssociatePodIdentities(changes) => format!(
                "associate-pod-identities {}",
                changes
                    .iter()
                    .map(|c| match c {
                        PodIdentityChange::Create(p) =>
                            format!("{}/{}", p.namespace, p.service_account),
                        PodIdentityChange::Update { service_account, .. } =>
                            format!("{service_account} (role changed)"),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            ),
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
            Step::DeleteNodegroups { names, .. } => format!("delete-nodegroups {}", names.join(",")),
            Step::DeleteCluster { failed: true } => "delete-cluster (FAILED, rebuilt after)".into(),
            Step::DeleteCluster { failed: false } => "delete-cluster".into(),
            Step::AnnounceUp => "announce-ready".into(),
            Step::AnnounceDown => "announce-destroyed".into(),
            Step::RecordDown => "record-down (never built: nothing to announce)".into(),
            Step::CapNodePools { cap, record, then } => {
                let first = if cap.is_empty() {
                    format!(
                        "record-nodepool-limits {}",
                        record.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(",")
                    )
                } else {
                    format!("cap-nodepools {}", cap.join(","))
                };
                match then {
                    Some(next) => format!("{first}; then {}", next.describe()),
                    None => first,
                }
            }
            Step::DeleteNodeClaims(n) => format!("delete-nodeclaims {}", n.join(",")),
            Step::DeleteNodeClasses(n) => format!("delete-ec2nodeclasses {}", n.join(",")),
            Step::TerminateKarpenterNodes {
                instances,
                launch_templates,
                ..
            } => format!(
                "terminate-karpenter-instances {} delete-launch-templates {}",
                if instances.is_empty() { "none".to_string() } else { instances.join(",") },
                if launch_templates.is_empty() { "none".to_string() } else { launch_templates.join(",") }
            ),
            Step::RestoreNodePoolLimits(n) => format!(
                "restore-nodepool-limits {}",
                n.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(",")
            ),
        }
    }
}
