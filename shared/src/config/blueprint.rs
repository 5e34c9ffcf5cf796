//! `[cluster.blueprint]`: what a cluster is rebuilt from each morning (version, role,
//! subnets, access entries, nodegroups, add-ons, bootstrap manifests), and its checks.

use serde::Deserialize;

use crate::error::{FleetError, Result};

use super::*;

#[derive(Debug, Clone, Deserialize)]
pub struct Blueprint {
    pub version: String,
    pub role_arn: String,
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub endpoint_public_access: bool,
    #[serde(default)]
    pub endpoint_private_access: bool,
    #[serde(default, rename = "nodegroup")]
    pub nodegroups: Vec<NodegroupBlueprint>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CapacityType {
    #[serde(rename = "ON_DEMAND")]
    OnDemand,
    #[serde(rename = "SPOT")]
    Spot,
}

impl CapacityType {
    pub fn as_str(&self) -> &'static str {
        match self {
            CapacityType::OnDemand => "ON_DEMAND",
            CapacityType::Spot => "SPOT",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct NodegroupBlueprint {
    pub name: String,
    #[serde(default = "on_demand")]
    pub capacity_type: CapacityType,
    pub instance_types: Vec<String>,
    pub node_role_arn: String,
    pub min_size: i32,
    pub max_size: i32,
    pub desired_size: i32,
    /// Defaults to the cluster's subnets.
    #[serde(default)]
    pub subnet_ids: Option<Vec<String>>,
    #[serde(default)]
    pub ami_type: Option<String>,
    #[serde(default)]
    pub disk_size: Option<i32>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn on_demand() -> CapacityType {
    CapacityType::OnDemand
}

/// Add-ons that nodes need to join and become Ready; installed before the nodegroups.
const NODE_ADDONS: [&str; 3] = ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"];

#[derive(Debug, Clone, Deserialize)]
pub struct AddonBlueprint {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub configuration_values: Option<String>,
    #[serde(default)]
    pub service_account_role_arn: Option<String>,
    /// Installed before the nodegroups; defaults to true for the add-ons nodes need
    /// (vpc-cni, kube-proxy, eks-pod-identity-agent).
    #[serde(default)]
    pub before_nodes: Option<bool>,
}

impl AddonBlueprint {
    pub fn is_before_nodes(&self) -> bool {
        self.before_nodes
            .unwrap_or_else(|| NODE_ADDONS.contains(&self.name.as_str()))
    }
}

/// A secret in the config: `ssm:<parameter name>` (a SecureString, read at cold start) or,
/// for local runs only, the value itself.
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
