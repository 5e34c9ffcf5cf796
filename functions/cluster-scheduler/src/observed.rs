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
    /// What stands in the way of a clean teardown; only read while nodegroups still run.
    pub teardown: Option<TeardownView>,
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
            teardown: None,
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
