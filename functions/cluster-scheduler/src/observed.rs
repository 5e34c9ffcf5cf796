//! What the scheduler observed of a cluster (EKS's facts, the teardown's view of its load
//! balancers) and whose it is: the reconciler's input, filled by the adapters.

use fleet_shared::state::model::RecordedState;
use serde::Serialize;

/// What EKS says about a cluster.
// One value per cluster per tick, never stored in bulk: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    Absent,
    Present(ObservedCluster),
}

/// Whose a cluster of a configured name is. Only [`Ownership::Ours`] is ever acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// This incarnation was created by this fleet (EKS shows the `clientRequestToken` the
    /// fleet recorded before its `CreateCluster`) or explicitly adopted (`adopt = true`,
    /// recorded with its generation).
    Ours,
    /// Tagged `fleet:managed-by` with this fleet's name, but an incarnation the fleet
    /// neither created nor adopted (a tag copied from another stack, a cluster made by
    /// hand): reported, never touched.
    NotCreatedByFleet,
    /// Without the `fleet:managed-by` tag, or tagged by another fleet (its name).
    Foreign(Option<String>),
}

/// Decides whose the cluster is, from EKS's facts and the fleet's record (see
/// [`Ownership`]). `stack` is this fleet's name, the value of its `fleet:managed-by` tag.
pub fn ownership(c: &ObservedCluster, recorded: &RecordedState, stack: &str) -> Ownership {
    if c.managed_by.as_deref() != Some(stack) {
        return Ownership::Foreign(c.managed_by.clone());
    }
    let created = c.request_token.is_some() && c.request_token == recorded.creation_token;
    let owned = !c.generation.is_empty()
        && recorded.owned_generation.as_deref() == Some(c.generation.as_str());
    if created || owned {
        Ownership::Ours
    } else {
        Ownership::NotCreatedByFleet
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedCluster {
    /// EKS status: CREATING, ACTIVE, DELETING, FAILED, UPDATING or PENDING.
    pub status: String,
    /// Whose it is (see [`ownership`]); nothing is read from or done to a cluster that is
    /// not [`Ownership::Ours`].
    pub ownership: Ownership,
    /// The value of its `fleet:managed-by` tag.
    pub managed_by: Option<String>,
    /// The `clientRequestToken` of the `CreateCluster` that made it.
    pub request_token: Option<String>,
    pub arn: Option<String>,
    /// Identifies this incarnation of the cluster (its creation time).
    pub generation: String,
    pub endpoint: Option<String>,
    /// `certificateAuthority.data`, for Kubernetes access.
    pub ca_data: Option<String>,
    pub nodegroups: Vec<ObservedNodegroup>,
    /// Installed add-on names; empty when the blueprint has none (not listed then).
    pub addons: Vec<String>,
    /// Fargate profiles with their status; only listed when tearing down.
    pub fargate_profiles: Vec<(String, String)>,
    /// Principals with an access entry; only listed when the blueprint has `access`.
    pub access_principals: Vec<String>,
    /// The cluster's OIDC issuer URL (`https://oidc.eks.<region>.amazonaws.com/id/<ID>`),
    /// new with every incarnation.
    pub oidc_issuer: Option<String>,
    /// Pod Identity associations; only listed when the blueprint has `pod_identity`.
    pub pod_identities: Vec<ObservedPodIdentity>,
    /// What stands in the way of a clean teardown; only read while nodegroups still run.
    pub teardown: Option<TeardownView>,
    /// Karpenter's objects and instances; only read for a cluster with
    /// `[cluster.karpenter]` that is going down, or coming up with limits to restore.
    pub karpenter: Option<KarpenterView>,
}

/// What a quick step (see [`crate::step::Step::is_quick`]) that was taken changed, applied
/// to what was observed and recorded before it, so the next step can be decided in the
/// same tick without reading EKS again.
pub fn reflect(observed: &mut Observed, recorded: &mut RecordedState, step: &crate::step::Step) {
    use crate::step::{PodIdentityChange, Step};
    let Observed::Present(o) = observed else {
        return;
    };
    match step {
        Step::CreateAccessEntries(principals) => {
            o.access_principals.extend(principals.iter().cloned())
        }
        Step::CreateAddons(names) => o.addons.extend(names.iter().cloned()),
        Step::TrustIssuer(issuer) => recorded
            .irsa_issuers
            .extend(crate::irsa::issuer_host_path(issuer)),
        Step::AssociatePodIdentities(changes) => {
            for change in changes {
                match change {
                    PodIdentityChange::Create(p) => o.pod_identities.push(ObservedPodIdentity {
                        namespace: p.namespace.clone(),
                        service_account: p.service_account.clone(),
                        association_id: String::new(),
                        role_arn: p.role_arn.clone(),
                        ours: true,
                    }),
                    PodIdentityChange::Update {
                        association_id,
                        role_arn,
                        ..
                    } => {
                        for seen in o
                            .pod_identities
                            .iter_mut()
                            .filter(|s| s.association_id == *association_id)
                        {
                            seen.role_arn = role_arn.clone();
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// One EKS Pod Identity association as EKS shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedPodIdentity {
    pub namespace: String,
    pub service_account: String,
    /// `a-…`: what an update names.
    pub association_id: String,
    pub role_arn: String,
    /// Tagged `fleet:managed-by` = this fleet: the only ones it updates.
    pub ours: bool,
}

/// What Karpenter has launched for a cluster, and what the fleet sees of its objects.
#[derive(Debug, Clone, PartialEq)]
pub struct KarpenterView {
    /// The Kubernetes side, or why the API could not say.
    pub objects: Result<KarpenterObjects, String>,
    /// EC2 instances Karpenter launched for the cluster (tagged `karpenter.sh/nodepool`
    /// and `eks:eks-cluster-name=<cluster>`) that are pending, running, stopping or
    /// stopped, of the NodePools the fleet manages.
    pub instances: Vec<KarpenterInstance>,
    /// Launch templates Karpenter made for the cluster (tagged `karpenter.sh/nodepool`
    /// and `eks:eks-cluster-name=<cluster>`), by id.
    pub launch_templates: Vec<String>,
}

/// One EC2 instance Karpenter launched.
#[derive(Debug, Clone, PartialEq)]
pub struct KarpenterInstance {
    /// `i-…`.
    pub id: String,
    /// Its `karpenter.sh/nodepool` tag.
    pub nodepool: String,
    /// EC2 state name (`pending`, `running`, …).
    pub state: String,
}

/// The cluster's Karpenter objects (`karpenter.sh/v1`, `karpenter.k8s.aws/v1`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KarpenterObjects {
    /// The NodePools the fleet manages (`karpenter.nodepools`, empty = all).
    pub nodepools: Vec<NodePoolView>,
    /// The NodeClaims of those NodePools (label `karpenter.sh/nodepool`).
    pub nodeclaims: Vec<NodeClaimView>,
    /// EC2NodeClasses that only managed NodePools use (or no NodePool at all).
    pub nodeclasses: Vec<NodeClassView>,
    /// The controller's Deployment (label `app.kubernetes.io/name=karpenter`): `None`
    /// when there is none, else whether a replica is available.
    pub controller_available: Option<bool>,
}

/// A NodePool as the fleet sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePoolView {
    pub name: String,
    /// `spec.limits` exactly as the API returned it (`None`: none).
    pub limits: Option<serde_json::Value>,
}

impl NodePoolView {
    /// Whether its limits stop Karpenter from launching anything (`cpu` is 0).
    pub fn is_capped(&self) -> bool {
        match self.limits.as_ref().and_then(|l| l.get("cpu")) {
            Some(serde_json::Value::String(q)) => is_zero_quantity(q),
            Some(serde_json::Value::Number(n)) => n.as_f64() == Some(0.0),
            _ => false,
        }
    }
}

/// `0`, `0m`, `0.0`, `0k`…: a Kubernetes quantity of zero.
fn is_zero_quantity(q: &str) -> bool {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    !digits.is_empty() && digits.parse::<f64>().is_ok_and(|v| v == 0.0)
}

/// A NodeClaim as the fleet sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeClaimView {
    pub name: String,
    /// Its `karpenter.sh/nodepool` label.
    pub nodepool: String,
    /// It has a `deletionTimestamp`: Karpenter is draining it.
    pub deleting: bool,
}

/// An EC2NodeClass as the fleet sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeClassView {
    pub name: String,
    /// It has a `deletionTimestamp`: Karpenter's finalizer is removing its instance
    /// profile and launch templates.
    pub deleting: bool,
}

/// Load balancers a teardown must not orphan.
#[derive(Debug, Clone, PartialEq)]
pub struct TeardownView {
    /// `namespace/name` of Services of type LoadBalancer not yet deleted, or why the API
    /// could not say.
    pub lb_services: Result<Vec<String>, String>,
    /// Services of type LoadBalancer already deleted but kept by their finalizers
    /// (`namespace/name (finalizer, …)`): the controller that owns the load balancer has
    /// not released them yet (`service.kubernetes.io/load-balancer-cleanup`,
    /// `service.k8s.aws/resources`). Deleting them again would change nothing.
    pub terminating_services: Vec<String>,
    /// Ingresses whose controller provisions load balancers (reported, not deleted).
    pub lb_ingresses: Vec<String>,
    /// ELBv2 load balancers tagged for the cluster.
    pub load_balancers: Vec<String>,
    /// What could not be checked (reported; the teardown goes on).
    pub problems: Vec<String>,
}

impl Default for TeardownView {
    fn default() -> Self {
        TeardownView {
            lb_services: Ok(vec![]),
            terminating_services: vec![],
            lb_ingresses: vec![],
            load_balancers: vec![],
            problems: vec![],
        }
    }
}

impl Default for ObservedCluster {
    fn default() -> Self {
        ObservedCluster {
            status: "ACTIVE".into(),
            ownership: Ownership::Ours,
            managed_by: None,
            request_token: None,
            arn: None,
            generation: String::new(),
            endpoint: None,
            ca_data: None,
            nodegroups: vec![],
            addons: vec![],
            fargate_profiles: vec![],
            access_principals: vec![],
            oidc_issuer: None,
            pod_identities: vec![],
            teardown: None,
            karpenter: None,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_means_cpu_zero() {
        let np = |limits: serde_json::Value| NodePoolView {
            name: "spot".into(),
            limits: Some(limits),
        };
        assert!(np(serde_json::json!({"cpu": "0"})).is_capped());
        assert!(np(serde_json::json!({"cpu": 0})).is_capped());
        assert!(np(serde_json::json!({"cpu": "0m", "memory": "10Gi"})).is_capped());
        assert!(!np(serde_json::json!({"cpu": "100"})).is_capped());
        assert!(!np(serde_json::json!({"memory": "0"})).is_capped());
        assert!(!NodePoolView {
            name: "x".into(),
            limits: None
        }
        .is_capped());
    }
}
