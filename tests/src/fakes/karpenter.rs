//! A fake Karpenter: the controller of karpenter-provider-aws v1 (`karpenter.sh/v1`,
//! `karpenter.k8s.aws/v1`), played against a [`FakeKube`] and moto, so that the fleet's
//! handling of Karpenter clusters (issue #20) is tested on the objects and the AWS
//! resources a real controller leaves. Shapes and rules follow kubernetes-sigs/karpenter
//! (core) and aws/karpenter-provider-aws (the AWS provider); the file each comes from is
//! named where it is played.
//!
//! Seeding ([`install_crds`], [`NodePool`], [`Ec2NodeClass`], [`controller_deployment`]):
//! the three CRDs, cluster-scoped and Established; a NodePool whose
//! `spec.template.spec.nodeClassRef` names an EC2NodeClass, with optional `spec.limits`;
//! an EC2NodeClass with the controller's finalizer `karpenter.k8s.aws/termination`; the
//! controller's Deployment (`kube-system/karpenter`, labelled
//! `app.kubernetes.io/name=karpenter`, the Helm chart's label, by which the scheduler
//! finds it), its available and ready replicas set by the test.
//!
//! The controller ([`FakeKarpenter::start`]) polls every [`POLL`] in a background task
//! and does, in each poll:
//!
//! - EC2NodeClasses: adds the finalizer if missing, creates the instance profile
//!   (`<cluster>_<number>`, path `/karpenter/<region>/<cluster>/<nodeclass uid>/`, the
//!   class's `spec.tags` plus `kubernetes.io/cluster/<cluster>=owned`,
//!   `eks:eks-cluster-name`, `karpenter.k8s.aws/ec2nodeclass` and
//!   `topology.kubernetes.io/region`, the node role `spec.role` in it) and records it in
//!   `status.instanceProfile` (`controllers/nodeclass/instanceprofile.go`). One being
//!   deleted waits until no NodeClaim's `spec.nodeClassRef` names it, then deletes its
//!   instance profiles (role removed first), then its launch templates (found by the tags
//!   `eks:eks-cluster-name` and `karpenter.k8s.aws/ec2nodeclass`), then removes its
//!   finalizer (`controllers/nodeclass/controller.go`, `finalize`);
//! - provisioning: pods with no `spec.nodeName`, not terminating, not a DaemonSet's, get
//!   one new NodeClaim per NodePool per poll, on the NodePool their `nodeSelector`
//!   `karpenter.sh/nodepool` names, else the first by `spec.weight` (highest) then name
//!   whose limit allows it; then they are bound to its node (`spec.nodeName`, Running and
//!   Ready: the fake plays kube-scheduler and the kubelet too). A NodePool's limit is
//!   `spec.limits.cpu` (a quantity: `"100"`, `100`, `"500m"`): the CPU capacity of all its
//!   NodeClaims, terminating ones included, plus the new one's must stay within it
//!   (`provisioning/scheduling`, `filterByRemainingResources`); `"0"` or `0` launches
//!   nothing, no limits is unlimited, an unreadable quantity counts as 0. Limits hold for
//!   provisioning only: [`FakeKarpenter::launch`], a test's seed, ignores them;
//! - launching ([`FakeKarpenter::launch`]): the instance profile as above; a launch
//!   template per EC2NodeClass and NodePool (`karpenter.k8s.aws/<number>`, tagged for the
//!   launch-template resource with the instance's tags below but the NodeClaim's, and
//!   `karpenter.k8s.aws/cluster=<cluster>`, the tag of Karpenter before v1, which a
//!   cleanup must still find); one instance by RunInstances with that template, the
//!   profile, the NodePool's instance type (`node.kubernetes.io/instance-type`
//!   requirement, else [`DEFAULT_INSTANCE_TYPE`]) and capacity type
//!   (`karpenter.sh/capacity-type`, `spot` or on-demand), tagged as
//!   `utils.GetTags` tags it: the class's `spec.tags` (so `fleet:cluster` is on the
//!   instance only when the class carries it), then `kubernetes.io/cluster/<cluster>=owned`,
//!   `karpenter.sh/nodepool`, `eks:eks-cluster-name`, `karpenter.k8s.aws/ec2nodeclass`,
//!   and `karpenter.sh/nodeclaim` (which the real tagging controller adds just after
//!   registration); a NodeClaim `<nodepool>-<5 letters>` (labels `karpenter.sh/nodepool`,
//!   `karpenter.k8s.aws/ec2nodeclass`, instance type, capacity type and zone; finalizer
//!   `karpenter.sh/termination`; owned by its NodePool; `spec.nodeClassRef`;
//!   `status.providerID` `aws:///<zone>/<instance id>`, `status.nodeName`,
//!   `status.capacity` `cpu` in cores and `memory` in `Mi`, from DescribeInstanceTypes,
//!   conditions Launched, Registered, Initialized and Ready); its Node, named by the
//!   instance's private DNS name (same `spec.providerID`, labels `karpenter.sh/nodepool`,
//!   `karpenter.sh/registered=true`, `karpenter.sh/initialized=true`,
//!   `node.kubernetes.io/instance-type`, the zone; the finalizer
//!   `karpenter.sh/termination`; Ready);
//! - termination of a NodeClaim with `deletionTimestamp` (core's
//!   `controllers/node/termination`): while its instance runs, the Node is cordoned
//!   (`spec.unschedulable` and the taint `karpenter.sh/disrupted:NoSchedule`) and its pods
//!   (not DaemonSet or mirror pods) evicted through the fake's Eviction API, so budgets
//!   hold: a 429 is tried again next poll, and the drain is over once no such pod is left
//!   on the node (terminating ones go after their grace period); then TerminateInstances,
//!   then the Node goes (with the pods left on it, as the pod garbage collector takes
//!   them), then the finalizer, and the NodeClaim with it. An instance already gone (its
//!   kubelet with it) skips the drain. A Node deleted by someone has its NodeClaim
//!   deleted, as the node termination controller does first. A NodeClaim marked
//!   [`FakeKarpenter::set_stuck`] is never finalized, whatever happens to its instance;
//! - garbage collection (core's `nodeclaim/garbagecollection`, every [`GC_EVERY`]): a
//!   NodeClaim not being deleted whose instance is no longer pending, running, stopping or
//!   stopped (terminated by someone else) is deleted, and then terminated as above; one
//!   whose NodePool is gone is deleted too (its owner reference, the Kubernetes garbage
//!   collector's cascade). The real one also waits for the Node to stop reporting Ready;
//!   the fake does not model the kubelet's heartbeat;
//! - NodePools' `status.resources` (`cpu`, `memory`, `nodes`), summed over their
//!   NodeClaims (core's `nodepool/counter`).
//!
//! [`FakeKarpenter::set_running`]`(false)` plays a controller that is gone: nothing at
//! all happens until it runs again (its Deployment is left as it is: see
//! [`set_controller_replicas`]). Its requests to the fake API are answered as any
//! client's but are not in [`FakeKube::requests`] and meet no injected fault: the log and
//! the faults are the code under test's. What it did is in [`FakeKarpenter::events`].
//!
//! Where moto falls short, and what the fake does instead:
//!
//! - IAM: `ListInstanceProfileTags`, `TagInstanceProfile` and `UntagInstanceProfile` are
//!   not implemented: an instance profile's tags are given at CreateInstanceProfile and
//!   read with GetInstanceProfile or ListInstanceProfiles (which carry `Tags`);
//!   ListInstanceProfiles ignores `PathPrefix` (every profile comes back: filter by path
//!   yourself) and pages nothing. The fake speaks IAM's Query protocol to the test
//!   binary's moto ([`crate::moto`]) directly, as [`crate::eks_auth::moto_iam_user`] does,
//!   so the tests need no IAM client; [`instance_profiles`] reads them back. The node role
//!   is created when missing (the cluster's infrastructure code would have made it), since
//!   moto's AddRoleToInstanceProfile wants it to exist;
//! - the Resource Groups Tagging API does not list instance profiles or launch templates
//!   (instances, it does);
//! - CreateFleet of type `instant` (Karpenter's launch call) fails in moto without
//!   explicit instance-type overrides: the fake launches with RunInstances and the launch
//!   template. moto applies the template's image but not its instance profile, so the
//!   profile is given to RunInstances too;
//! - TerminateInstances is immediate (no `shutting-down`), and terminated instances stay
//!   listed by DescribeInstances (EC2 drops them after about an hour).

mod aws;
mod controller;
mod seed;
mod xml;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fakes::kube::FakeKube;

pub use aws::{instance_profiles, InstanceProfile};
pub use seed::{
    controller_deployment, install_crds, set_controller_replicas, Ec2NodeClass, NodePool,
};

/// `apiVersion` of NodePool and NodeClaim.
pub const KARPENTER_API: &str = "karpenter.sh/v1";
/// `apiVersion` of EC2NodeClass.
pub const AWS_API: &str = "karpenter.k8s.aws/v1";
/// The finalizer Karpenter puts on NodeClaims and Nodes (`karpenter.sh/termination`).
pub const TERMINATION_FINALIZER: &str = "karpenter.sh/termination";
/// The finalizer the EC2NodeClass controller puts on EC2NodeClasses.
pub const NODECLASS_FINALIZER: &str = "karpenter.k8s.aws/termination";
/// The NodePool label (and tag) of a NodeClaim, its Node and its instance.
pub const NODEPOOL_LABEL: &str = "karpenter.sh/nodepool";
/// The EC2NodeClass label (and tag).
pub const NODECLASS_LABEL: &str = "karpenter.k8s.aws/ec2nodeclass";
/// The NodeClaim tag of an instance.
pub const NODECLAIM_TAG: &str = "karpenter.sh/nodeclaim";
/// The taint (effect NoSchedule) on a Node being drained.
pub const DISRUPTED_TAINT: &str = "karpenter.sh/disrupted";
/// Namespace, name and label (key, value) of the controller's Deployment.
pub const CONTROLLER_NAMESPACE: &str = "kube-system";
pub const CONTROLLER_NAME: &str = "karpenter";
pub const CONTROLLER_LABEL: (&str, &str) = ("app.kubernetes.io/name", "karpenter");
/// The instance type of a NodePool without an instance-type requirement.
pub const DEFAULT_INSTANCE_TYPE: &str = "m5.large";
/// How often the controller looks at the cluster.
pub const POLL: Duration = Duration::from_millis(50);
/// How often garbage collection runs (the real one: every 2 minutes).
pub const GC_EVERY: Duration = Duration::from_millis(500);

/// The controller of one cluster, running until dropped or [`Self::stop`]ped.
pub struct FakeKarpenter {
    shared: Arc<controller::Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeKarpenter {
    /// Starts the controller of cluster `cluster` (the name in its tags and IAM paths)
    /// against `kube` and, for EC2, `ec2`; IAM is the test binary's moto. Needs a tokio
    /// runtime (the test's).
    pub fn start(kube: &FakeKube, ec2: aws_sdk_ec2::Client, cluster: &str) -> FakeKarpenter {
        Self::start_on(kube, ec2, cluster, crate::moto().endpoint.clone())
    }

    /// [`Self::start`] with IAM at `iam_endpoint` (the moto `ec2` talks to): for a
    /// process with a moto of its own, such as the demo.
    pub fn start_on(
        kube: &FakeKube,
        ec2: aws_sdk_ec2::Client,
        cluster: &str,
        iam_endpoint: String,
    ) -> FakeKarpenter {
        let shared = Arc::new(controller::Shared::new(
            kube.clone(),
            ec2,
            cluster,
            iam_endpoint,
        ));
        let task = tokio::spawn(controller::run(shared.clone()));
        FakeKarpenter { shared, task }
    }

    /// Launches a node for NodePool `nodepool` as provisioning does, but whatever its
    /// limits say (a test's seed): instance, NodeClaim and Node, with the instance profile
    /// and launch template first. Returns the NodeClaim's name. Works while stopped too.
    pub async fn launch(&self, nodepool: &str) -> Result<String, String> {
        self.shared.launch(nodepool).await.map(|l| l.nodeclaim)
    }

    /// Whether the controller acts (default yes); `false` plays it gone: from the moment
    /// this returns, it changes nothing, until `true` again.
    pub fn set_running(&self, running: bool) {
        self.shared.running.store(running, Ordering::SeqCst)
    }

    /// Marks NodeClaim `nodeclaim` stuck (or no longer): once deleted, it is never
    /// drained, its instance never terminated and its finalizer never removed, as with a
    /// controller that cannot finish (the case the scheduler's backstop is for).
    pub fn set_stuck(&self, nodeclaim: &str, stuck: bool) {
        let mut set = lock(&self.shared.stuck);
        if stuck {
            set.insert(nodeclaim.to_string());
        } else {
            set.remove(nodeclaim);
        }
    }

    /// Stops the controller for good (as dropping it does).
    pub fn stop(&self) {
        self.task.abort()
    }

    /// What it did, in order, one line each (`launch ...`, `evict ns/pod: 429`,
    /// `terminate i-...`, `error: ...`).
    pub fn events(&self) -> Vec<String> {
        lock(&self.shared.events).clone()
    }

    /// The cluster it runs for.
    pub fn cluster(&self) -> &str {
        &self.shared.aws.cluster
    }
}

impl Drop for FakeKarpenter {
    fn drop(&mut self) {
        self.task.abort()
    }
}

/// The instance id of a provider id `aws:///<zone>/<instance id>` (the last segment).
pub fn instance_id(provider_id: &str) -> Option<&str> {
    provider_id
        .strip_prefix("aws:///")
        .and_then(|rest| rest.rsplit('/').next())
        .filter(|id| id.starts_with("i-"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Names = Mutex<BTreeSet<String>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_of_provider_ids() {
        assert_eq!(
            instance_id("aws:///eu-west-1a/i-0123456789abcdef0"),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(instance_id("aws:///eu-west-1a/"), None);
        assert_eq!(instance_id("gce://p/z/i-1"), None);
    }
}
