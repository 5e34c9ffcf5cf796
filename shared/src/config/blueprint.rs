//! `[cluster.blueprint]`: what a cluster is rebuilt from each morning (version, role,
//! subnets, access entries, nodegroups, add-ons, bootstrap manifests), and its checks.

use serde::Deserialize;

use crate::error::{FleetError, Result};

use super::*;

/// `[cluster.blueprint]`: everything `CreateCluster`, `CreateAccessEntry`, `CreateAddon`
/// and `CreateNodegroup` are called with when the cluster is rebuilt.
#[derive(Debug, Clone, Deserialize)]
pub struct Blueprint {
    /// Kubernetes version, `major.minor` (`1.32`).
    pub version: String,
    /// The cluster's IAM role (`arn:aws:iam::<account>:role/<name>`).
    pub role_arn: String,
    /// Subnet ids (`subnet-…`) the control plane's network interfaces go in; at least two
    /// in different Availability Zones (EKS's rule).
    pub subnet_ids: Vec<String>,
    /// Extra security groups (`sg-…`) for the control plane's interfaces.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// Tags on the cluster besides the fleet's own (`fleet:cluster`, `fleet:managed-by`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The API server is reachable from the internet (EKS's default: true).
    #[serde(default = "yes")]
    pub endpoint_public_access: bool,
    /// The API server is reachable from inside the VPC.
    #[serde(default)]
    pub endpoint_private_access: bool,
    /// `[[cluster.blueprint.nodegroup]]`: the managed nodegroups, created in order.
    #[serde(default, rename = "nodegroup")]
    pub nodegroups: Vec<NodegroupBlueprint>,
    /// `[[cluster.blueprint.addon]]`: EKS add-ons.
    #[serde(default, rename = "addon")]
    pub addons: Vec<AddonBlueprint>,
    /// IAM principals given access to the cluster through EKS access entries.
    #[serde(default)]
    pub access: Vec<AccessEntry>,
    /// Manifest sources applied after the nodegroups are up: `s3://bucket/key.yaml` or a
    /// path bundled with the function.
    #[serde(default)]
    pub bootstrap: Vec<String>,
}

/// An EKS access entry with one access policy, cluster-wide.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessEntry {
    /// The IAM role or user given access (`arn:aws:iam::<account>:role/<name>`).
    pub principal_arn: String,
    /// An EKS access policy name, e.g. `AmazonEKSClusterAdminPolicy`.
    pub policy: String,
}

/// The EKS access policies (`aws eks list-access-policies`).
pub const ACCESS_POLICIES: [&str; 6] = [
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSAdminPolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSViewPolicy",
    "AmazonEKSAdminViewPolicy",
    "AmazonEKSAutoNodePolicy",
];

impl AccessEntry {
    /// The policy's ARN in `partition` (`aws`, `aws-cn`, `aws-us-gov`):
    /// `arn:<partition>:eks::aws:cluster-access-policy/<policy>`.
    pub fn policy_arn(&self, partition: &str) -> String {
        format!(
            "arn:{partition}:eks::aws:cluster-access-policy/{}",
            self.policy
        )
    }
}

fn yes() -> bool {
    true
}

/// A nodegroup's EC2 purchasing option, as EKS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CapacityType {
    /// `ON_DEMAND`.
    #[serde(rename = "ON_DEMAND")]
    OnDemand,
    /// `SPOT`: interrupted with two minutes' warning (the spot-drainer's job).
    #[serde(rename = "SPOT")]
    Spot,
}

impl CapacityType {
    /// EKS's word: `ON_DEMAND` or `SPOT`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CapacityType::OnDemand => "ON_DEMAND",
            CapacityType::Spot => "SPOT",
        }
    }
}

/// `[[cluster.blueprint.nodegroup]]`: one managed nodegroup.
#[derive(Debug, Clone, Deserialize)]
pub struct NodegroupBlueprint {
    /// The nodegroup's name in EKS; the fleet acts only on the names its blueprint lists.
    pub name: String,
    /// `ON_DEMAND` (default) or `SPOT`.
    #[serde(default = "on_demand")]
    pub capacity_type: CapacityType,
    /// EC2 instance types (`m6i.large`); several diversify a spot nodegroup.
    pub instance_types: Vec<String>,
    /// The nodes' IAM role.
    pub node_role_arn: String,
    /// Scaling: nodes at least (scale mode sets 0 at night and this back in the morning).
    pub min_size: i32,
    /// Scaling: nodes at most.
    pub max_size: i32,
    /// Scaling: nodes wanted when the nodegroup is created or scaled back up.
    pub desired_size: i32,
    /// Defaults to the cluster's subnets.
    #[serde(default)]
    pub subnet_ids: Option<Vec<String>>,
    /// EKS's AMI type (`AL2023_x86_64_STANDARD`, `BOTTLEROCKET_ARM_64`); EKS's default
    /// when absent.
    #[serde(default)]
    pub ami_type: Option<String>,
    /// Root volume size in GiB; EKS's default (20) when absent.
    #[serde(default)]
    pub disk_size: Option<i32>,
    /// Kubernetes labels on the nodes.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn on_demand() -> CapacityType {
    CapacityType::OnDemand
}

/// Add-ons that nodes need to join and become Ready; installed before the nodegroups.
const NODE_ADDONS: [&str; 3] = ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"];

/// `[[cluster.blueprint.addon]]`: one EKS add-on.
#[derive(Debug, Clone, Deserialize)]
pub struct AddonBlueprint {
    /// The add-on's name (`vpc-cni`, `coredns`, `aws-ebs-csi-driver`).
    pub name: String,
    /// Its version (`v1.19.0-eksbuild.1`); EKS's default for the cluster's version when
    /// absent.
    #[serde(default)]
    pub version: Option<String>,
    /// Its configuration, as the JSON (or YAML) text `CreateAddon` takes.
    #[serde(default)]
    pub configuration_values: Option<String>,
    /// The IAM role its service account assumes (IRSA).
    #[serde(default)]
    pub service_account_role_arn: Option<String>,
    /// Installed before the nodegroups; defaults to true for the add-ons nodes need
    /// (vpc-cni, kube-proxy, eks-pod-identity-agent).
    #[serde(default)]
    pub before_nodes: Option<bool>,
}

impl AddonBlueprint {
    /// Whether it is installed before the nodegroups (`before_nodes`, or its default).
    pub fn is_before_nodes(&self) -> bool {
        self.before_nodes
            .unwrap_or_else(|| NODE_ADDONS.contains(&self.name.as_str()))
    }
}

impl Blueprint {
    pub(super) fn validate(&self, key: &str) -> Result<()> {
        let key = |k: &str| format!("{key}.{k}");
        if self.version.trim().is_empty() {
            return Err(FleetError::config(key("version"), "must not be empty"));
        }
        if !valid_role_arn(&self.role_arn) {
            return Err(FleetError::config(
                key("role_arn"),
                format!(
                    "`{}` is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                    self.role_arn
                ),
            ));
        }
        if self.subnet_ids.len() < 2 {
            return Err(FleetError::config(
                key("subnet_ids"),
                "EKS needs subnets in at least two availability zones",
            ));
        }
        let mut names = HashSet::new();
        for (j, ng) in self.nodegroups.iter().enumerate() {
            let key = |k: &str| key(&format!("nodegroup[{j}].{k}"));
            if ng.name.trim().is_empty() || !names.insert(ng.name.as_str()) {
                return Err(FleetError::config(
                    key("name"),
                    format!("`{}` is empty or used twice", ng.name),
                ));
            }
            if ng.instance_types.is_empty() {
                return Err(FleetError::config(
                    key("instance_types"),
                    "give at least one instance type",
                ));
            }
            if !valid_role_arn(&ng.node_role_arn) {
                return Err(FleetError::config(
                    key("node_role_arn"),
                    format!("`{}` is not an IAM role ARN", ng.node_role_arn),
                ));
            }
            if ng.min_size < 0 || ng.max_size < 1 {
                return Err(FleetError::config(
                    key("max_size"),
                    "sizes must satisfy 0 <= min_size and max_size >= 1",
                ));
            }
            if !(ng.min_size <= ng.desired_size && ng.desired_size <= ng.max_size) {
                return Err(FleetError::config(
                    key("desired_size"),
                    format!(
                        "must lie between min_size ({}) and max_size ({})",
                        ng.min_size, ng.max_size
                    ),
                ));
            }
        }
        for (j, a) in self.access.iter().enumerate() {
            let parts: Vec<&str> = a.principal_arn.splitn(6, ':').collect();
            let is_principal = matches!(parts.as_slice(), ["arn", p, "iam", "", account, resource]
                if p.starts_with("aws") && account.len() == 12
                && (resource.starts_with("role/") || resource.starts_with("user/")));
            if !is_principal {
                return Err(FleetError::config(
                    key(&format!("access[{j}].principal_arn")),
                    format!("`{}` is not an IAM role or user ARN", a.principal_arn),
                ));
            }
            if !ACCESS_POLICIES.contains(&a.policy.as_str()) {
                return Err(FleetError::config(
                    key(&format!("access[{j}].policy")),
                    format!(
                        "unknown access policy `{}`: expected one of {}",
                        a.policy,
                        ACCESS_POLICIES.join(", ")
                    ),
                ));
            }
        }
        for (j, b) in self.bootstrap.iter().enumerate() {
            let bad_s3 = b
                .strip_prefix("s3://")
                .is_some_and(|rest| !matches!(rest.split_once('/'), Some((bucket, k)) if !bucket.is_empty() && !k.is_empty()));
            if b.trim().is_empty() || bad_s3 {
                return Err(FleetError::config(
                    key(&format!("bootstrap[{j}]")),
                    format!("`{b}` is neither s3://bucket/key nor a file path"),
                ));
            }
        }
        let mut addons = HashSet::new();
        for (j, a) in self.addons.iter().enumerate() {
            if !addons.insert(a.name.as_str()) {
                return Err(FleetError::config(
                    key(&format!("addon[{j}].name")),
                    format!("add-on `{}` is listed twice", a.name),
                ));
            }
        }
        Ok(())
    }
}
