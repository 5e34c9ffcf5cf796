//! The fleet config: what users write (see `infra/fleet.example.toml`).
//!
//! Loaded once per cold start from a file or an SSM parameter. Every error names the key
//! (`cluster[0].blueprint.nodegroup[1].max_size`), and everything is validated before any
//! function acts on it. Unknown keys are errors: a tool that deletes infrastructure must
//! not guess what a misplaced `protect = true` meant (TOML puts a key written after a
//! `[table]` header into that table), so the error says where a key of that name belongs.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use jiff::tz::TimeZone;
use serde::Deserialize;

use crate::error::{FleetError, Result};
use crate::schedule::{ClusterSchedule, Holiday, Uptime};

mod cost;
mod dns;
mod dora;
pub use cost::{CostConfig, CostMetric};
pub use dns::{
    cloudflare_marker, is_hostname, normalize_name, DnsConfig, DnsProvider, DnsRecordConfig,
    OnDestroy, ServiceRef, CLOUDFLARE_COMMENT_MAX,
};
pub use dora::{check_pushgateway_url, DeploySource, DoraConfig, DoraService};

/// Tag key carried by every resource the fleet creates: the cluster it belongs to. The cost
/// reporter groups by it.
pub const CLUSTER_TAG: &str = "fleet:cluster";
/// Tag that names the fleet (its stack) that created a cluster: clusters without it, or
/// with another fleet's name, are never touched (see `startup::stack_name`).
pub const MANAGED_BY_TAG: &str = "fleet:managed-by";

#[derive(Debug, Clone, Deserialize)]
pub struct FleetConfig {
    pub fleet: FleetSection,
    #[serde(default, rename = "cluster")]
    pub clusters: Vec<ClusterConfig>,
    /// The services whose DORA metrics are measured.
    #[serde(default)]
    pub dora: Option<DoraConfig>,
    /// What the cost reporter reads.
    #[serde(default)]
    pub cost: Option<CostConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FleetSection {
    pub region: String,
    #[serde(default = "default_event_bus")]
    pub event_bus: String,
    #[serde(default)]
    pub slack_webhook: Option<SecretRef>,
    #[serde(default)]
    pub cloudflare_api_token: Option<SecretRef>,
}

fn default_event_bus() -> String {
    "fleet".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Nodegroups and the cluster are deleted; rebuilt from the blueprint.
    Destroy,
    /// Nodegroups go to zero; the control plane stays.
    Scale,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClusterConfig {
    pub name: String,
    #[serde(default = "default_mode")]
    pub mode: Mode,
    #[serde(default)]
    pub uptime: Option<Uptime>,
    #[serde(default)]
    pub holidays: Vec<Holiday>,
    /// The zone holidays are local to; defaults to the zone of the first uptime spec.
    #[serde(default)]
    pub timezone: Option<ZoneName>,
    #[serde(default)]
    pub protect: bool,
    /// Take over an existing cluster of this name that carries this fleet's
    /// `fleet:managed-by` tag but was not created by it: recorded (when, by which
    /// invocation, which incarnation), audited and sent to Slack once; from then on the
    /// schedule acts on it. Without it such a cluster is `not-created-by-fleet`, untouched.
    #[serde(default)]
    pub adopt: bool,
    pub blueprint: Blueprint,
    /// How long a teardown waits for the load balancers of deleted LoadBalancer
    /// Services to disappear before it goes on (and reports them as left behind).
    #[serde(default = "default_lb_wait")]
    pub load_balancer_wait_minutes: u32,
    /// What a spot rebalance recommendation does to a node: `drain` (default) or only
    /// `cordon`. Interruptions and retirements always drain.
    #[serde(default)]
    pub rebalance: RebalanceAction,
    /// The DNS records that follow the cluster's ingress (the DNS updater).
    #[serde(default)]
    pub dns: Option<DnsConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RebalanceAction {
    Cordon,
    #[default]
    Drain,
}

fn default_lb_wait() -> u32 {
    10
}

fn default_mode() -> Mode {
    Mode::Destroy
}

/// An IANA time zone name, checked at load.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct ZoneName(pub String, #[serde(skip)] pub Option<TimeZone>);

impl TryFrom<String> for ZoneName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        let tz = TimeZone::get(&name)
            .map_err(|_| format!("unknown time zone `{name}` (expected an IANA name)"))?;
        Ok(ZoneName(name, Some(tz)))
    }
}

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
#[derive(Clone, Deserialize)]
#[serde(from = "String")]
pub enum SecretRef {
    Ssm(String),
    Literal(Secret),
}

impl From<String> for SecretRef {
    fn from(s: String) -> Self {
        match s.strip_prefix("ssm:") {
            Some(name) => SecretRef::Ssm(name.to_string()),
            None => SecretRef::Literal(Secret(s)),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Ssm(name) => write!(f, "ssm:{name}"),
            SecretRef::Literal(_) => f.write_str("[redacted]"),
        }
    }
}

/// A secret value. It prints as `[redacted]` everywhere; only `expose` gives the value, at
/// the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FleetConfig {
    /// Parses and validates the TOML text of a fleet config.
    ///
    /// Errors: [`FleetError::Config`] naming the key; for an unknown key, where a key of
    /// that name is known at an enclosing level (`cluster[0].blueprint.protect: unknown
    /// key; did you mean cluster[0].protect?`).
    pub fn parse(text: &str) -> Result<Self> {
        let (config, unknown) = deserialize(text)?;
        if let Some(first) = unknown.first() {
            let doc: toml::Table = toml::from_str(text).unwrap_or_default();
            let mut message = unknown_key(&doc, first);
            for other in &unknown[1..] {
                message.push_str(&format!(
                    "; also `{}`: {}",
                    key_name(other),
                    unknown_key(&doc, other)
                ));
            }
            return Err(FleetError::config(key_name(first), message));
        }
        config.validate()?;
        Ok(config)
    }

    pub fn cluster(&self, name: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.name == name)
    }

    fn validate(&self) -> Result<()> {
        if self.fleet.region.trim().is_empty() {
            return Err(FleetError::config("fleet.region", "must not be empty"));
        }
        if self.fleet.event_bus.trim().is_empty() {
            return Err(FleetError::config("fleet.event_bus", "must not be empty"));
        }
        if let Some(dora) = &self.dora {
            dora.validate()?;
        }
        if let Some(cost) = &self.cost {
            cost.validate()?;
        }
        let mut names = HashSet::new();
        for (i, c) in self.clusters.iter().enumerate() {
            let key = |k: &str| format!("cluster[{i}].{k}");
            if !valid_cluster_name(&c.name) {
                return Err(FleetError::config(
                    key("name"),
                    format!("`{}` is not a valid EKS cluster name (1-100 letters, digits, - and _, starting with a letter or digit)", c.name),
                ));
            }
            if !names.insert(c.name.as_str()) {
                return Err(FleetError::config(
                    key("name"),
                    format!("cluster `{}` is configured twice", c.name),
                ));
            }
            if c.uptime.is_none() && !c.protect {
                return Err(FleetError::config(
                    key("uptime"),
                    "missing: give a spec such as \"Mon-Fri 08:00-20:00 Europe/Berlin\" (or protect = true)",
                ));
            }
            c.blueprint.validate(&key("blueprint"))?;
            if let Some(dns) = &c.dns {
                dns.validate(&key("dns"))?;
                // The ownership marker goes in each Cloudflare record's comment, which
                // Cloudflare limits to 100 characters (Free plan; "Record attributes").
                let marker = cloudflare_marker(&c.name);
                if dns.uses(DnsProvider::Cloudflare) && marker.len() > CLOUDFLARE_COMMENT_MAX {
                    return Err(FleetError::config(
                        key("name"),
                        format!(
                            "a cluster with Cloudflare records may have a name of at most {} characters: its records carry the comment `{marker}`, and Cloudflare keeps at most {} characters",
                            CLOUDFLARE_COMMENT_MAX - cloudflare_marker("").len(),
                            CLOUDFLARE_COMMENT_MAX
                        ),
                    ));
                }
                if dns.uses(DnsProvider::Cloudflare) && self.fleet.cloudflare_api_token.is_none() {
                    return Err(FleetError::config(
                        "fleet.cloudflare_api_token",
                        format!(
                            "missing: cluster `{}` has Cloudflare records (give ssm:<parameter>)",
                            c.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl ClusterConfig {
    /// The inputs of the schedule decision.
    pub fn schedule(&self) -> ClusterSchedule {
        let holiday_zone = self
            .timezone
            .as_ref()
            .and_then(|z| z.1.clone())
            .or_else(|| {
                self.uptime
                    .as_ref()
                    .and_then(|u| u.0.first())
                    .map(|s| s.zone().clone())
            })
            .unwrap_or(TimeZone::UTC);
        ClusterSchedule {
            uptime: self.uptime.clone(),
            holidays: self.holidays.clone(),
            holiday_zone,
            protect: self.protect,
        }
    }
}

fn valid_cluster_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 100
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource.strip_prefix("role/").is_some_and(|r| !r.is_empty()))
}

impl Blueprint {
    fn validate(&self, key: &str) -> Result<()> {
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

/// One step of a key's path: a table key or an array index.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// The config and the paths of the keys nobody reads.
fn deserialize(text: &str) -> Result<(FleetConfig, Vec<Vec<Segment>>)> {
    let mut unknown = Vec::new();
    let de = toml::Deserializer::parse(text)
        .map_err(|e| FleetError::config("(file)", format!("not valid TOML: {}", e.message())))?;
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(segments(&path));
    let ignored = serde_ignored::Deserializer::new(de, &mut on_unknown);
    let config: FleetConfig = serde_path_to_error::deserialize(ignored).map_err(|e| {
        let key = e.path().to_string();
        FleetError::config(key, e.into_inner().message().to_string())
    })?;
    Ok((config, unknown))
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Segment> {
    use serde_ignored::Path;
    match path {
        Path::Root => vec![],
        Path::Seq { parent, index } => {
            let mut s = segments(parent);
            s.push(Segment::Index(*index));
            s
        }
        Path::Map { parent, key } => {
            let mut s = segments(parent);
            s.push(Segment::Key(key.clone()));
            s
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments(parent),
    }
}

/// `cluster[0].blueprint.protect`: the form every config error names keys in.
fn key_name(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Key(k) if out.is_empty() => out.push_str(k),
            Segment::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The table at `path` in `doc`, if there is one.
fn table_at<'a>(doc: &'a mut toml::Table, path: &[Segment]) -> Option<&'a mut toml::Table> {
    let mut value: Option<&mut toml::Value> = None;
    let mut table = Some(doc);
    for s in path {
        let next = match (s, table.take(), value.take()) {
            (Segment::Key(k), Some(t), _) => t.get_mut(k),
            (Segment::Index(i), None, Some(toml::Value::Array(a))) => a.get_mut(*i),
            _ => None,
        }?;
        match next {
            toml::Value::Table(t) => table = Some(t),
            other => value = Some(other),
        }
    }
    table
}

/// "unknown key", and where a key of that name would be read: the nearest enclosing
/// table where the same key, with the same value, is not unknown. Found by parsing a copy
/// with the key moved there, so the structs themselves are the list of known keys.
fn unknown_key(doc: &toml::Table, path: &[Segment]) -> String {
    let (Some(Segment::Key(key)), Some(value)) = (path.last(), value_at(doc, path)) else {
        return "unknown key".into();
    };
    for level in (0..path.len().saturating_sub(1)).rev() {
        let enclosing = &path[..level];
        let mut copy = doc.clone();
        let Some(table) = table_at(&mut copy, enclosing) else {
            continue;
        };
        table.entry(key.clone()).or_insert(value.clone());
        let mut moved = enclosing.to_vec();
        moved.push(Segment::Key(key.clone()));
        let known = match toml::to_string(&copy)
            .map_err(|_| ())
            .map(|t| deserialize(&t))
        {
            Ok(Ok((_, unknown))) => !unknown.contains(&moved),
            // A type error there still means the key is read there.
            Ok(Err(FleetError::Config { key: k, .. })) => k == key_name(&moved),
            _ => false,
        };
        if known {
            return format!(
                "unknown key; did you mean {}? (in TOML a key after a [table] header belongs to that table: write it above the header)",
                key_name(&moved)
            );
        }
    }
    "unknown key".into()
}

fn value_at(doc: &toml::Table, path: &[Segment]) -> Option<toml::Value> {
    let (Segment::Key(key), parent) = path.split_last()? else {
        return None;
    };
    let mut copy = doc.clone();
    table_at(&mut copy, parent)?.get(key).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const EXAMPLE: &str = include_str!("../../infra/fleet.example.toml");

    #[test]
    fn example_config_parses() {
        let c = FleetConfig::parse(EXAMPLE).expect("example parses");
        assert_eq!(c.fleet.event_bus, "fleet");
        assert!(c.clusters.len() >= 2);
    }

    fn minimal(extra_cluster: &str) -> String {
        format!(
            r#"
[fleet]
region = "eu-west-1"

[[cluster]]
name = "staging"
uptime = "Mon-Fri 08:00-20:00 Europe/Berlin"
{extra_cluster}

[cluster.blueprint]
version = "1.32"
role_arn = "arn:aws:iam::123456789012:role/eks-cluster"
subnet_ids = ["subnet-a", "subnet-b"]

[[cluster.blueprint.nodegroup]]
name = "spot"
instance_types = ["t3.large"]
node_role_arn = "arn:aws:iam::123456789012:role/eks-node"
min_size = 1
max_size = 3
desired_size = 2
"#
        )
    }

    fn err(text: &str) -> String {
        FleetConfig::parse(text)
            .expect_err("should fail")
            .to_string()
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            err(&minimal("mode = \"pause\"")),
            "config key `cluster[0].mode`: unknown variant `pause`, expected `destroy` or `scale`"
        );
        assert!(err(&minimal("holidays = [\"2026-13-01\"]"))
            .starts_with("config key `cluster[0].holidays[0]`: bad date"));
        assert!(err(&minimal("protect = \"yes\""))
            .starts_with("config key `cluster[0].protect`: invalid type"));
        let bad_uptime = minimal("").replace("Mon-Fri 08:00", "Mon-Fri 8:00");
        assert!(err(&bad_uptime).starts_with("config key `cluster[0].uptime`: bad time `8:00`"));
        let no_region = minimal("").replace("region = \"eu-west-1\"", "");
        assert_eq!(
            err(&no_region),
            "config key `fleet`: missing field `region`"
        );
        let bad_size = minimal("").replace("desired_size = 2", "desired_size = 7");
        assert!(err(&bad_size)
            .starts_with("config key `cluster[0].blueprint.nodegroup[0].desired_size`"));
        let bad_arn =
            minimal("").replace("arn:aws:iam::123456789012:role/eks-cluster", "eks-cluster");
        assert!(err(&bad_arn).starts_with("config key `cluster[0].blueprint.role_arn`"));
        assert!(err("not toml [").starts_with("config key `(file)`: not valid TOML"));
        let bad_policy = minimal("").replace(
            "[[cluster.blueprint.nodegroup]]",
            "access = [{ principal_arn = \"arn:aws:iam::123456789012:role/dns\", policy = \"Admin\" }]\nbootstrap = [\"s3://bucket-only\"]\n[[cluster.blueprint.nodegroup]]",
        );
        assert!(err(&bad_policy).starts_with(
            "config key `cluster[0].blueprint.access[0].policy`: unknown access policy `Admin`"
        ));
        let bad_source =
            bad_policy.replace("policy = \"Admin\"", "policy = \"AmazonEKSViewPolicy\"");
        assert!(err(&bad_source).starts_with("config key `cluster[0].blueprint.bootstrap[0]`"));
    }

    #[test]
    fn unknown_keys_are_errors_that_say_where_the_key_belongs() {
        assert_eq!(
            err(&minimal("colour = \"blue\"")),
            "config key `cluster[0].colour`: unknown key"
        );
        // `protect = true` written after `[cluster.blueprint]` lands in the blueprint.
        let misplaced = minimal("").replace(
            "subnet_ids = [\"subnet-a\", \"subnet-b\"]",
            "subnet_ids = [\"subnet-a\", \"subnet-b\"]\nprotect = true",
        );
        assert!(
            err(&misplaced).starts_with(
                "config key `cluster[0].blueprint.protect`: unknown key; did you mean cluster[0].protect?"
            ),
            "{}",
            err(&misplaced)
        );
        // Deeper: a nodegroup key under the nodegroup's table is known; `mode` is a
        // cluster's, two levels up.
        let deep = minimal("").replace("desired_size = 2", "desired_size = 2\nmode = \"scale\"");
        assert!(
            err(&deep).contains("did you mean cluster[0].mode?"),
            "{}",
            err(&deep)
        );
        // Top level: `region` belongs to [fleet]; not an enclosing table, so no guess.
        let top = format!("region = \"x\"\n{}", minimal(""));
        assert_eq!(err(&top), "config key `region`: unknown key");
        // Several: all named, the first as the key.
        let two = minimal("colour = \"blue\"\nflavour = 1");
        assert_eq!(
            err(&two),
            "config key `cluster[0].colour`: unknown key; also `cluster[0].flavour`: unknown key"
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = SecretRef::from("hooks.example/T000/B000/XXXX".to_string());
        assert_eq!(format!("{s:?}"), "[redacted]");
        let s = SecretRef::from("ssm:/fleet/slack".to_string());
        assert_eq!(format!("{s:?}"), "ssm:/fleet/slack");
        assert_eq!(Secret::new("x".into()).to_string(), "[redacted]");
    }

    #[test]
    fn holiday_zone_defaults_to_first_spec() {
        let c = FleetConfig::parse(&minimal("")).expect("parses");
        let s = c.clusters[0].schedule();
        assert_eq!(s.holiday_zone.iana_name(), Some("Europe/Berlin"));
    }

    #[test]
    fn node_addons_go_first() {
        let a = |n: &str| AddonBlueprint {
            name: n.into(),
            version: None,
            configuration_values: None,
            service_account_role_arn: None,
            before_nodes: None,
        };
        assert!(a("vpc-cni").is_before_nodes());
        assert!(!a("coredns").is_before_nodes());
    }
}
