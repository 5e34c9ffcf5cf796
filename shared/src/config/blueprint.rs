//! `[cluster.blueprint]`: what a cluster is rebuilt from each morning (version, role,
//! subnets, access entries, Pod Identity associations, IRSA roles, nodegroups, add-ons,
//! bootstrap secrets and manifests, what "ready" means), and its checks.

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
    /// EKS Pod Identity associations, created once the cluster is ACTIVE (they belong to
    /// the cluster and go with it). Needs the `eks-pod-identity-agent` add-on.
    #[serde(default)]
    pub pod_identity: Vec<PodIdentity>,
    /// IAM roles used through IRSA: their trust statements that name this cluster's
    /// previous OIDC issuer are moved to each new cluster's issuer (see the README,
    /// "Identities").
    #[serde(default)]
    pub irsa_roles: Vec<String>,
    /// Kubernetes Secrets applied before any manifest (Flux's deploy key, SOPS's age key).
    #[serde(default)]
    pub bootstrap_secrets: Vec<BootstrapSecret>,
    /// Objects that must be ready before `Cluster Ready` is published
    /// (`<apiVersion>/<Kind>/<namespace>/<name>`, see [`ReadyObject`]).
    #[serde(default)]
    pub ready_when: Vec<ReadyObject>,
    /// How long `Cluster Ready` waits for `ready_when` after the bootstrap, in minutes;
    /// past it the cluster is announced `degraded` (default 20).
    #[serde(default = "twenty")]
    pub ready_timeout_minutes: u32,
}

fn twenty() -> u32 {
    20
}

/// An EKS access entry (`CreateAccessEntry`), with one access policy cluster-wide for the
/// `STANDARD` type.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessEntry {
    /// The IAM role or user given access (`arn:aws:iam::<account>:role/<name>`).
    pub principal_arn: String,
    /// The entry's type (EKS's `type`): `STANDARD` by default.
    #[serde(default, rename = "type")]
    pub kind: AccessEntryType,
    /// An EKS access policy name, e.g. `AmazonEKSClusterAdminPolicy`: required for
    /// `STANDARD`, refused for the other types (EKS associates none with them).
    #[serde(default)]
    pub policy: Option<String>,
    /// Kubernetes groups the principal is put in (`STANDARD` only; RBAC binds them).
    #[serde(default)]
    pub kubernetes_groups: Vec<String>,
    /// The Kubernetes user name (`STANDARD` only; EKS derives one when absent).
    #[serde(default)]
    pub username: Option<String>,
}

/// An access entry's type, as EKS names it (`CreateAccessEntry`'s `type`). A node role
/// needs `EC2_LINUX` (or `EC2_WINDOWS`) to join: EKS then puts its nodes in
/// `system:nodes` itself, and refuses policies, groups and user names for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum AccessEntryType {
    /// `STANDARD`: a person or a workload, given an access policy.
    #[default]
    #[serde(rename = "STANDARD")]
    Standard,
    /// `EC2_LINUX`: the IAM role of Linux nodes (self-managed or Karpenter's).
    #[serde(rename = "EC2_LINUX")]
    Ec2Linux,
    /// `EC2_WINDOWS`: the IAM role of Windows nodes.
    #[serde(rename = "EC2_WINDOWS")]
    Ec2Windows,
    /// `FARGATE_LINUX`: a Fargate pod execution role.
    #[serde(rename = "FARGATE_LINUX")]
    FargateLinux,
    /// `EC2`: the node role of EKS Auto Mode's custom NodeClasses.
    #[serde(rename = "EC2")]
    Ec2,
}

impl AccessEntryType {
    /// EKS's word for it.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccessEntryType::Standard => "STANDARD",
            AccessEntryType::Ec2Linux => "EC2_LINUX",
            AccessEntryType::Ec2Windows => "EC2_WINDOWS",
            AccessEntryType::FargateLinux => "FARGATE_LINUX",
            AccessEntryType::Ec2 => "EC2",
        }
    }
}

/// `pod_identity = [{ namespace, service_account, role_arn }]`: one EKS Pod Identity
/// association (`CreatePodIdentityAssociation`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PodIdentity {
    /// The service account's namespace (`kube-system`).
    pub namespace: String,
    /// The service account's name (`karpenter`).
    pub service_account: String,
    /// The IAM role its pods get (its trust names `pods.eks.amazonaws.com`).
    pub role_arn: String,
}

/// `bootstrap_secrets = [{ namespace, name, from, key }]`: a Kubernetes Secret made from a
/// Secrets Manager secret or an SSM SecureString each morning.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BootstrapSecret {
    /// The Secret's namespace (created if missing, as Flux's own bootstrap does).
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
    /// `secretsmanager:<name or ARN>` or `ssm:<parameter name>`.
    pub from: String,
    /// The Secret's key for a value that is a plain string (a JSON object's own keys are
    /// used as they are).
    #[serde(default)]
    pub key: Option<String>,
}

/// Where a bootstrap secret's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource<'a> {
    /// `secretsmanager:<id>`: `GetSecretValue`'s `SecretString`.
    SecretsManager(&'a str),
    /// `ssm:<name>`: `GetParameter` with decryption.
    Ssm(&'a str),
}

impl BootstrapSecret {
    /// Where its value comes from; `None` when `from` has neither prefix (refused at
    /// validation).
    pub fn source(&self) -> Option<SecretSource<'_>> {
        if let Some(id) = self.from.strip_prefix("secretsmanager:") {
            return (!id.trim().is_empty()).then_some(SecretSource::SecretsManager(id));
        }
        let name = self.from.strip_prefix("ssm:")?;
        (!name.trim().is_empty() && !name.starts_with("arn:")).then_some(SecretSource::Ssm(name))
    }
}

/// One `ready_when` entry: `<apiVersion>/<Kind>/<namespace>/<name>` for a namespaced
/// object (`apps/v1/Deployment/ingress-nginx/ingress-nginx-controller`,
/// `v1/Service/ingress-nginx/ingress-nginx-controller`), `<apiVersion>/<Kind>/<name>` for
/// a cluster-scoped one (`apiextensions.k8s.io/v1/CustomResourceDefinition/x.example.com`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ReadyObject {
    /// `apps/v1`, `v1`, `kustomize.toolkit.fluxcd.io/v1`.
    pub api_version: String,
    /// `Deployment`, `Kustomization`, `Service`.
    pub kind: String,
    /// `None` for a cluster-scoped object.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
}

/// A core API version (`v1`, `v1beta1`): the only apiVersion without a group.
fn is_core_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let tail = &rest[digits..];
    digits > 0
        && (tail.is_empty()
            || ["alpha", "beta"].iter().any(|p| {
                tail.strip_prefix(p)
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            }))
}

impl TryFrom<String> for ReadyObject {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            format!("`{s}` is not <apiVersion>/<Kind>/<namespace>/<name> (or <apiVersion>/<Kind>/<name> for a cluster-scoped object)")
        };
        if parts.iter().any(|p| p.trim().is_empty()) {
            return Err(bad());
        }
        let (api_version, rest) = match parts.as_slice() {
            [v, rest @ ..] if is_core_version(v) => (v.to_string(), rest),
            [g, v, rest @ ..] if is_core_version(v) => (format!("{g}/{v}"), rest),
            _ => return Err(bad()),
        };
        let (kind, namespace, name) = match rest {
            [kind, ns, name] => (kind, Some(ns.to_string()), name),
            [kind, name] => (kind, None, name),
            _ => return Err(bad()),
        };
        if !kind.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(format!("{}: the kind `{kind}` must start with a capital letter, as Kubernetes writes kinds", bad()));
        }
        Ok(ReadyObject {
            api_version,
            kind: kind.to_string(),
            namespace,
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for ReadyObject {
    /// `Deployment ingress-nginx/ingress-nginx-controller`: how plans and events name it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A namespace's name: an RFC 1123 label (lower case letters, digits, `-`; at most 63).
fn is_namespace(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_k8s_name(s)
}

/// A Kubernetes object name (RFC 1123 subdomain, at most 253 characters).
fn is_k8s_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A Secret's data key: `[-._a-zA-Z0-9]+` (Kubernetes' rule for ConfigMap and Secret keys).
pub fn is_secret_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
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
    /// `arn:<partition>:eks::aws:cluster-access-policy/<policy>`; `None` for an entry with
    /// no policy (the non-`STANDARD` types).
    pub fn policy_arn(&self, partition: &str) -> Option<String> {
        self.policy
            .as_ref()
            .map(|p| format!("arn:{partition}:eks::aws:cluster-access-policy/{p}"))
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
        let mut principals = HashSet::new();
        for (j, a) in self.access.iter().enumerate() {
            let key_j = key(&format!("access[{j}]"));
            let key = |k: &str| key(&format!("access[{j}].{k}"));
            let parts: Vec<&str> = a.principal_arn.splitn(6, ':').collect();
            let is_principal = matches!(parts.as_slice(), ["arn", p, "iam", "", account, resource]
                if p.starts_with("aws") && account.len() == 12
                && (resource.starts_with("role/") || resource.starts_with("user/")));
            if !is_principal {
                return Err(FleetError::config(
                    key("principal_arn"),
                    format!("`{}` is not an IAM role or user ARN", a.principal_arn),
                ));
            }
            if !principals.insert(a.principal_arn.as_str()) {
                return Err(FleetError::config(
                    key("principal_arn"),
                    format!(
                        "`{}` is listed twice (EKS keeps one access entry per principal)",
                        a.principal_arn
                    ),
                ));
            }
            match (a.kind, &a.policy) {
                (AccessEntryType::Standard, None) => {
                    return Err(FleetError::config(
                        key_j,
                        format!(
                            "a STANDARD access entry (the default type) needs a policy: one of {}; a node role takes a type such as EC2_LINUX instead",
                            ACCESS_POLICIES.join(", ")
                        ),
                    ))
                }
                (AccessEntryType::Standard, Some(p)) if !ACCESS_POLICIES.contains(&p.as_str()) => {
                    return Err(FleetError::config(
                        key("policy"),
                        format!(
                            "unknown access policy `{p}`: expected one of {}",
                            ACCESS_POLICIES.join(", ")
                        ),
                    ))
                }
                (AccessEntryType::Standard, Some(_)) => {}
                (other, policy) => {
                    let refused = if policy.is_some() {
                        Some("policy")
                    } else if !a.kubernetes_groups.is_empty() {
                        Some("kubernetes_groups")
                    } else if a.username.is_some() {
                        Some("username")
                    } else {
                        None
                    };
                    if let Some(k) = refused {
                        return Err(FleetError::config(
                            key(k),
                            format!("an access entry of type {} takes no {k} (EKS gives its nodes their groups itself); only STANDARD entries do", other.as_str()),
                        ));
                    }
                }
            }
            if let Some(g) = a
                .kubernetes_groups
                .iter()
                .find(|g| g.trim().is_empty() || g.starts_with("system:"))
            {
                return Err(FleetError::config(
                    key("kubernetes_groups"),
                    format!("`{g}`: a group must not be empty, and EKS refuses groups that start with system:"),
                ));
            }
            if a.username.as_deref().is_some_and(|u| u.trim().is_empty()) {
                return Err(FleetError::config(
                    key("username"),
                    "must not be empty when given",
                ));
            }
        }
        let mut associations = HashSet::new();
        for (j, p) in self.pod_identity.iter().enumerate() {
            let key = |k: &str| key(&format!("pod_identity[{j}].{k}"));
            for (k, v, ok) in [
                ("namespace", &p.namespace, is_namespace(&p.namespace)),
                (
                    "service_account",
                    &p.service_account,
                    is_k8s_name(&p.service_account),
                ),
            ] {
                if !ok {
                    return Err(FleetError::config(
                        key(k),
                        format!("`{v}` is not a Kubernetes name"),
                    ));
                }
            }
            if !valid_role_arn(&p.role_arn) {
                return Err(FleetError::config(
                    key("role_arn"),
                    format!("`{}` is not an IAM role ARN", p.role_arn),
                ));
            }
            if !associations.insert((p.namespace.as_str(), p.service_account.as_str())) {
                return Err(FleetError::config(
                    key("service_account"),
                    format!(
                        "{}/{} is listed twice (EKS allows one association per service account)",
                        p.namespace, p.service_account
                    ),
                ));
            }
        }
        if !self.pod_identity.is_empty()
            && !self
                .addons
                .iter()
                .any(|a| a.name == "eks-pod-identity-agent")
        {
            return Err(FleetError::config(
                key("pod_identity"),
                "Pod Identity needs the eks-pod-identity-agent add-on: add [[cluster.blueprint.addon]] name = \"eks-pod-identity-agent\"",
            ));
        }
        let mut roles = HashSet::new();
        for (j, r) in self.irsa_roles.iter().enumerate() {
            if !valid_role_arn(r) || !roles.insert(r.as_str()) {
                return Err(FleetError::config(
                    key(&format!("irsa_roles[{j}]")),
                    format!("`{r}` is not an IAM role ARN, or is listed twice"),
                ));
            }
        }
        let mut secrets = HashSet::new();
        for (j, b) in self.bootstrap_secrets.iter().enumerate() {
            let key = |k: &str| key(&format!("bootstrap_secrets[{j}].{k}"));
            for (k, v, ok) in [
                ("namespace", &b.namespace, is_namespace(&b.namespace)),
                ("name", &b.name, is_k8s_name(&b.name)),
            ] {
                if !ok {
                    return Err(FleetError::config(
                        key(k),
                        format!("`{v}` is not a Kubernetes name"),
                    ));
                }
            }
            if b.source().is_none() {
                return Err(FleetError::config(
                    key("from"),
                    format!(
                        "`{}` is neither secretsmanager:<name or ARN> nor ssm:<parameter name>",
                        b.from
                    ),
                ));
            }
            if let Some(k) = b.key.as_deref().filter(|k| !is_secret_key(k)) {
                return Err(FleetError::config(
                    key("key"),
                    format!("`{k}` is not a Secret key (letters, digits, '-', '_', '.')"),
                ));
            }
            if !secrets.insert((b.namespace.as_str(), b.name.as_str())) {
                return Err(FleetError::config(
                    key("name"),
                    format!("the Secret {}/{} is listed twice", b.namespace, b.name),
                ));
            }
        }
        if self.ready_timeout_minutes == 0 || self.ready_timeout_minutes > 24 * 60 {
            return Err(FleetError::config(
                key("ready_timeout_minutes"),
                "must be between 1 and 1440 minutes",
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn blueprint(extra: &str) -> Result<Blueprint> {
        let text = format!(
            "version = \"1.35\"\nrole_arn = \"arn:aws:iam::123456789012:role/eks\"\nsubnet_ids = [\"subnet-a\", \"subnet-b\"]\n{extra}"
        );
        let bp: Blueprint = toml::from_str(&text)
            .map_err(|e| FleetError::config("blueprint", e.message().to_string()))?;
        bp.validate("blueprint").map(|_| bp)
    }

    fn refused(extra: &str) -> String {
        match blueprint(extra) {
            Ok(_) => panic!("accepted: {extra}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn access_entries_have_types_and_only_standard_ones_take_a_policy() {
        let bp = blueprint(
            r#"access = [
  { principal_arn = "arn:aws:iam::123456789012:role/fleet-spot-drainer", policy = "AmazonEKSClusterAdminPolicy" },
  { principal_arn = "arn:aws:iam::123456789012:role/karpenter-node", type = "EC2_LINUX" },
  { principal_arn = "arn:aws:iam::123456789012:role/dev", policy = "AmazonEKSViewPolicy", kubernetes_groups = ["devs"], username = "dev" },
]"#,
        )
        .expect("valid");
        assert_eq!(bp.access[0].kind, AccessEntryType::Standard);
        assert_eq!(bp.access[1].kind, AccessEntryType::Ec2Linux);
        assert_eq!(bp.access[1].policy_arn("aws"), None);
        assert_eq!(
            bp.access[0].policy_arn("aws").as_deref(),
            Some("arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
        );
        let e = refused(
            r#"access = [{ principal_arn = "arn:aws:iam::123456789012:role/n", type = "EC2_LINUX", policy = "AmazonEKSViewPolicy" }]"#,
        );
        assert!(
            e.contains("blueprint.access[0].policy")
                && e.contains("type EC2_LINUX takes no policy"),
            "{e}"
        );
        let e = refused(
            r#"access = [{ principal_arn = "arn:aws:iam::123456789012:role/n", type = "FARGATE_LINUX", kubernetes_groups = ["x"] }]"#,
        );
        assert!(e.contains("blueprint.access[0].kubernetes_groups"), "{e}");
        let e = refused(r#"access = [{ principal_arn = "arn:aws:iam::123456789012:role/n" }]"#);
        assert!(
            e.contains("`blueprint.access[0]`") && e.contains("needs a policy"),
            "{e}"
        );
        let e = refused(
            r#"access = [{ principal_arn = "arn:aws:iam::123456789012:role/n", type = "LINUX" }]"#,
        );
        assert!(e.contains("unknown variant `LINUX`"), "{e}");
        let e = refused(
            r#"access = [{ principal_arn = "arn:aws:iam::123456789012:role/n", policy = "AmazonEKSViewPolicy", kubernetes_groups = ["system:masters"] }]"#,
        );
        assert!(
            e.contains("kubernetes_groups") && e.contains("system:"),
            "{e}"
        );
        let twice = r#"access = [
  { principal_arn = "arn:aws:iam::123456789012:role/n", type = "EC2_LINUX" },
  { principal_arn = "arn:aws:iam::123456789012:role/n", type = "EC2_LINUX" },
]"#;
        assert!(refused(twice).contains("access[1].principal_arn"));
    }

    #[test]
    fn pod_identity_needs_its_agent_and_one_association_per_service_account() {
        let ok = r#"pod_identity = [{ namespace = "kube-system", service_account = "karpenter", role_arn = "arn:aws:iam::123456789012:role/karpenter-controller" }]
[[addon]]
name = "eks-pod-identity-agent""#;
        assert_eq!(blueprint(ok).expect("valid").pod_identity.len(), 1);
        let e = refused(
            r#"pod_identity = [{ namespace = "kube-system", service_account = "karpenter", role_arn = "arn:aws:iam::123456789012:role/k" }]"#,
        );
        assert!(
            e.contains("blueprint.pod_identity") && e.contains("eks-pod-identity-agent"),
            "{e}"
        );
        let e = refused(&ok.replace("kube-system", "Kube_System"));
        assert!(e.contains("pod_identity[0].namespace"), "{e}");
        let e = refused(&ok.replace("kube-system", "kube.system"));
        assert!(
            e.contains("pod_identity[0].namespace"),
            "a namespace is a label: {e}"
        );
        let e = refused(&ok.replace("role/karpenter-controller", "role/path/"));
        assert!(e.contains("pod_identity[0].role_arn"), "{e}");
        let e = refused(&ok.replace("role/karpenter-controller", "user/k"));
        assert!(e.contains("pod_identity[0].role_arn"), "{e}");
    }

    #[test]
    fn irsa_roles_bootstrap_secrets_and_timeout_are_checked() {
        let e = refused(
            r#"irsa_roles = ["arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/a"]"#,
        );
        assert!(e.contains("irsa_roles[1]"), "{e}");
        let ok = r#"bootstrap_secrets = [
  { namespace = "flux-system", name = "flux-system", from = "secretsmanager:fleet/flux-deploy-key" },
  { namespace = "flux-system", name = "sops-age", from = "ssm:/fleet/sops-age-key", key = "age.agekey" },
]"#;
        let bp = blueprint(ok).expect("valid");
        assert_eq!(
            bp.bootstrap_secrets[0].source(),
            Some(SecretSource::SecretsManager("fleet/flux-deploy-key"))
        );
        assert_eq!(
            bp.bootstrap_secrets[1].source(),
            Some(SecretSource::Ssm("/fleet/sops-age-key"))
        );
        assert_eq!(bp.ready_timeout_minutes, 20);
        let e = refused(&ok.replace("secretsmanager:fleet", "vault:fleet"));
        assert!(e.contains("bootstrap_secrets[0].from"), "{e}");
        let e = refused(&ok.replace("age.agekey", "age key"));
        assert!(e.contains("bootstrap_secrets[1].key"), "{e}");
        let e = refused(&ok.replace("sops-age", "flux-system"));
        assert!(
            e.contains("bootstrap_secrets[1].name") && e.contains("twice"),
            "{e}"
        );
        assert!(refused("ready_timeout_minutes = 0").contains("ready_timeout_minutes"));
    }

    #[test]
    fn ready_when_names_objects_by_api_version_kind_namespace_and_name() {
        let bp = blueprint(
            r#"ready_when = [
  "kustomize.toolkit.fluxcd.io/v1/Kustomization/flux-system/apps",
  "apps/v1/Deployment/ingress-nginx/ingress-nginx-controller",
  "v1/Service/ingress-nginx/ingress-nginx-controller",
  "apiextensions.k8s.io/v1/CustomResourceDefinition/nodepools.karpenter.sh",
  "v1/Namespace/flux-system",
]"#,
        )
        .expect("valid");
        let r = &bp.ready_when;
        assert_eq!(r[0].api_version, "kustomize.toolkit.fluxcd.io/v1");
        assert_eq!(r[0].to_string(), "Kustomization flux-system/apps");
        assert_eq!(
            (r[1].api_version.as_str(), r[1].kind.as_str()),
            ("apps/v1", "Deployment")
        );
        assert_eq!(
            (r[2].api_version.as_str(), r[2].namespace.as_deref()),
            ("v1", Some("ingress-nginx"))
        );
        assert_eq!(
            (r[3].namespace.as_deref(), r[3].name.as_str()),
            (None, "nodepools.karpenter.sh")
        );
        assert_eq!(
            (r[4].kind.as_str(), r[4].namespace.as_deref()),
            ("Namespace", None)
        );
        for bad in [
            "apps/Deployment/x/y",
            "apps/v1/deployment/x/y",
            "v1//x/y",
            "Deployment/x",
            "a/b/c/d/e/f",
        ] {
            let e = refused(&format!("ready_when = [\"{bad}\"]"));
            assert!(
                e.contains(&format!("`{bad}`")) && e.contains("<apiVersion>/<Kind>"),
                "{bad}: {e}"
            );
        }
        assert!(
            is_core_version("v1")
                && is_core_version("v1beta1")
                && !is_core_version("v")
                && !is_core_version("apps")
        );
    }
}
