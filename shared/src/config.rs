//! The fleet config: what users write (see `infra/fleet.example.toml`).
//!
//! Loaded once per cold start from a file or an SSM parameter. Every error names the key
//! (`cluster[0].blueprint.nodegroup[1].max_size`), and everything is validated before any
//! function acts on it. Unknown keys are errors: a tool that deletes infrastructure must
//! not guess what a misplaced `protect = true` meant (TOML puts a key written after a
//! `[table]` header into that table), so the error says where a key of that name belongs.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::tz::TimeZone;
use serde::Deserialize;

use crate::error::{FleetError, Result};
use crate::schedule::{ClusterSchedule, Holiday, Uptime};

mod account;
mod blueprint;
mod cost;
mod deployed;
mod dns;
mod dora;
mod karpenter;
mod keys;
mod metrics;
mod network;
mod secret;
mod slack;
pub use account::{partition_of, AccountConfig, Place};
pub use blueprint::{
    is_secret_key, AccessEntry, AccessEntryType, AddonBlueprint, Blueprint, BootstrapSecret,
    CapacityType, NodegroupBlueprint, PodIdentity, ReadyObject, SecretSource, ACCESS_POLICIES,
};
pub use cost::{CostConfig, CostMetric};
pub use deployed::{check_deployed, secret_keys};
pub use dns::{
    cloudflare_marker, is_hostname, normalize_name, DnsConfig, DnsProvider, DnsRecordConfig,
    OnDestroy, ServiceRef, CLOUDFLARE_COMMENT_MAX,
};
pub use dora::{
    check_pushgateway_url, priority_rank, Claim, DeploySource, DoraConfig, DoraService, GitHubHook,
    ImageTag,
};
pub use karpenter::{InterruptionHandler, KarpenterConfig};
use keys::{deserialize, key_name, unknown_key};
pub use metrics::{CloudWatchMetrics, MetricsConfig};
pub use network::{NatGatewayConfig, NetworkConfig};
pub use secret::{Secret, SecretRef};
pub use slack::SlackConfig;

/// Tag key carried by every resource the fleet creates: the cluster it belongs to. The cost
/// reporter groups by it.
pub const CLUSTER_TAG: &str = "fleet:cluster";
/// Tag that names the fleet (its stack) that created a cluster: clusters without it, or
/// with another fleet's name, are never touched (see `startup::stack_name`).
pub const MANAGED_BY_TAG: &str = "fleet:managed-by";
/// Tag carried by the NAT gateways and Elastic IPs the fleet creates: the `[[network]]`
/// they belong to. The cost reporter groups by it.
pub const NETWORK_TAG: &str = "fleet:network";

/// The fleet config (TOML, stored in SSM; the README's "Config reference"). Unknown keys
/// are errors ([`FleetConfig::parse`]).
#[derive(Debug, Clone, Deserialize)]
pub struct FleetConfig {
    /// `[fleet]`.
    pub fleet: FleetSection,
    /// `[[account]]`: spoke accounts, reached by assuming their role.
    #[serde(default, rename = "account")]
    pub accounts: Vec<AccountConfig>,
    /// `[[cluster]]`, in order; names are unique.
    #[serde(default, rename = "cluster")]
    pub clusters: Vec<ClusterConfig>,
    /// `[[network]]`: NAT gateways that follow the clusters that name them.
    #[serde(default, rename = "network")]
    pub networks: Vec<NetworkConfig>,
    /// The services whose DORA metrics are measured.
    #[serde(default)]
    pub dora: Option<DoraConfig>,
    /// What the cost reporter reads.
    #[serde(default)]
    pub cost: Option<CostConfig>,
    /// `[metrics]`: which CloudWatch custom metrics are sent (default: the summary).
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[slack]`: the `/fleet` command and the notice's buttons (`slack-commands`).
    #[serde(default)]
    pub slack: Option<SlackConfig>,
}

/// `[fleet]`: what every function shares.
#[derive(Debug, Clone, Deserialize)]
pub struct FleetSection {
    /// The hub's region (`eu-west-1`): where the state table, the fleet bus and the
    /// functions are, and the default region of every cluster and network.
    pub region: String,
    /// The EventBridge bus the functions talk on (default `fleet`).
    #[serde(default = "default_event_bus")]
    pub event_bus: String,
    /// Slack incoming webhook URL (`ssm:` in a deployed config); no Slack without it.
    #[serde(default)]
    pub slack_webhook: Option<SecretRef>,
    /// Cloudflare API token with DNS edit on the zones (`ssm:`); needed only when a
    /// record uses Cloudflare.
    #[serde(default)]
    pub cloudflare_api_token: Option<SecretRef>,
}

fn default_event_bus() -> String {
    "fleet".into()
}

/// How a cluster goes down at night (`destroy` or `scale` in the config and events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Nodegroups and the cluster are deleted; rebuilt from the blueprint.
    Destroy,
    /// Nodegroups go to zero; the control plane stays.
    Scale,
}

/// `[[cluster]]`: one cluster, its schedule and its blueprint.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterConfig {
    /// The cluster's name in the fleet (1-100 characters: letters, digits, `-`, `_`;
    /// starts with a letter or digit): the state table's key, the `fleet:cluster` tag, the
    /// name every report and command uses; unique across accounts and regions.
    pub name: String,
    /// The EKS cluster's own name, when it differs from `name` (the same EKS name in two
    /// accounts or regions, under two fleet names); absent: `name`. Every EKS call and the
    /// Kubernetes token use it.
    #[serde(default)]
    pub eks_name: Option<String>,
    /// The `[[account]]` it lives in; absent: the hub's own account.
    #[serde(default)]
    pub account: Option<String>,
    /// The region it lives in; absent: `fleet.region`.
    #[serde(default)]
    pub region: Option<String>,
    /// `destroy` (default) or `scale`.
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// When it is up (`Mon-Fri 08:00-20:00 Europe/Berlin`, several allowed); absent:
    /// always up.
    #[serde(default)]
    pub uptime: Option<Uptime>,
    /// Local dates (`2026-12-24`, `2026-12-24..2026-12-31`) it is down all day.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
    /// The zone holidays are local to; defaults to the zone of the first uptime spec.
    #[serde(default)]
    pub timezone: Option<ZoneName>,
    /// Never taken down, whatever the schedule or an override says.
    #[serde(default)]
    pub protect: bool,
    /// Take over an existing cluster of this name that carries this fleet's
    /// `fleet:managed-by` tag but was not created by it: recorded (when, by which
    /// invocation, which incarnation), audited and sent to Slack once; from then on the
    /// schedule acts on it. Without it such a cluster is `not-created-by-fleet`, untouched.
    #[serde(default)]
    pub adopt: bool,
    /// What the cluster is rebuilt from.
    pub blueprint: Blueprint,
    /// How long a teardown waits for the load balancers of deleted LoadBalancer
    /// Services to disappear before it goes on (and reports them as left behind).
    #[serde(default = "default_lb_wait")]
    pub load_balancer_wait_minutes: u32,
    /// Minutes before a scheduled down transition that Slack (`fleet.slack_webhook`) is
    /// told, once, with buttons to keep it up or tear it down now (default 30, at most
    /// [`MAX_NOTIFY_MINUTES`]; 0: no notice). Protected clusters get none.
    #[serde(default = "default_notify_before_down")]
    pub notify_before_down_minutes: u32,
    /// What a spot rebalance recommendation does to a node: `drain` (default) or only
    /// `cordon`. Interruptions and retirements always drain.
    #[serde(default)]
    pub rebalance: RebalanceAction,
    /// The DNS records that follow the cluster's ingress (the DNS updater).
    #[serde(default)]
    pub dns: Option<DnsConfig>,
    /// `[cluster.karpenter]`: present when Karpenter launches (some of) its nodes.
    #[serde(default)]
    pub karpenter: Option<KarpenterConfig>,
    /// The `[[network]]` whose NAT gateways this cluster's nodes need: up before its
    /// nodes come up, down after it (and every other cluster naming it) is down.
    #[serde(default)]
    pub network: Option<String>,
}

/// What a rebalance recommendation does to a node (`rebalance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RebalanceAction {
    /// Cordon only: no new pods; the running ones stay until a warning comes.
    Cordon,
    /// Cordon and drain (default).
    #[default]
    Drain,
}

fn default_lb_wait() -> u32 {
    10
}

fn default_notify_before_down() -> u32 {
    30
}

/// The shortest `notify_before_down_minutes` but 0: the template's default tick
/// (`TickRate`, `rate(5 minutes)`); a shorter one could fall between two ticks.
pub const MIN_NOTIFY_MINUTES: u32 = 5;

/// The longest `notify_before_down_minutes`: 12 hours. A notice posted earlier than that
/// is noise, and its buttons outlive Slack's 30-minute `response_url`s by hours anyway.
pub const MAX_NOTIFY_MINUTES: u32 = 720;

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

    /// The cluster named `name`, if the config has it.
    pub fn cluster(&self, name: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.name == name)
    }

    fn validate(&self) -> Result<()> {
        if self.fleet.region.trim().is_empty() {
            return Err(FleetError::config("fleet.region", "must not be empty"));
        }
        if partition_of(&self.fleet.region).is_none() {
            return Err(FleetError::config(
                "fleet.region",
                format!(
                    "`{}` is not an AWS region name (such as `eu-west-1`)",
                    self.fleet.region
                ),
            ));
        }
        account::validate_accounts(&self.accounts, &self.fleet.region)?;
        if self.fleet.event_bus.trim().is_empty() {
            return Err(FleetError::config("fleet.event_bus", "must not be empty"));
        }
        if let Some(dora) = &self.dora {
            dora.validate()?;
        }
        if let Some(slack) = &self.slack {
            slack.validate()?;
        }
        if let Some(cost) = &self.cost {
            cost.validate()?;
            if let Some(name) = cost.account.as_ref().filter(|a| self.account(a).is_none()) {
                return Err(FleetError::config(
                    "cost.account",
                    format!("unknown account `{name}`: give an [[account]] name (leave it out to read the hub's own bill)"),
                ));
            }
        }
        let mut names = HashSet::new();
        let mut eks_clusters = HashMap::new();
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
            if c.eks_name
                .as_deref()
                .is_some_and(|n| !valid_cluster_name(n))
            {
                return Err(FleetError::config(
                    key("eks_name"),
                    format!("`{}` is not a valid EKS cluster name (1-100 letters, digits, - and _, starting with a letter or digit)", c.eks_name()),
                ));
            }
            let place = account::resolve_place(
                &format!("cluster[{i}]"),
                c.account.as_deref(),
                c.region.as_deref(),
                &self.accounts,
                &self.fleet.region,
            )?;
            // One EKS cluster, one fleet entry: two schedules on one cluster would fight.
            if let Some(other) =
                eks_clusters.insert((place.clone(), c.eks_name().to_string()), c.name.as_str())
            {
                return Err(FleetError::config(
                    key(if c.eks_name.is_some() { "eks_name" } else { "name" }),
                    format!(
                        "EKS cluster `{}` in {} is already configured as cluster `{other}`: give one of them an eks_name of its own",
                        c.eks_name(),
                        place
                    ),
                ));
            }
            if let Some(spoke) = place.account.as_deref().and_then(|a| self.account(a)) {
                // EKS takes cluster and node roles of the cluster's own account only.
                let roles =
                    std::iter::once(("blueprint.role_arn".to_string(), &c.blueprint.role_arn))
                        .chain(c.blueprint.nodegroups.iter().enumerate().map(|(n, g)| {
                            (
                                format!("blueprint.nodegroup[{n}].node_role_arn"),
                                &g.node_role_arn,
                            )
                        }));
                for (role_key, arn) in roles {
                    let role_account = arn.split(':').nth(4).unwrap_or_default();
                    if role_account != spoke.account_id() {
                        return Err(FleetError::config(
                            key(&role_key),
                            format!(
                                "the cluster is in account `{}` ({}), this role in {role_account}: EKS needs a role of the cluster's own account",
                                spoke.name,
                                spoke.account_id()
                            ),
                        ));
                    }
                }
            }
            if (1..MIN_NOTIFY_MINUTES).contains(&c.notify_before_down_minutes) {
                return Err(FleetError::config(
                    key("notify_before_down_minutes"),
                    format!(
                        "{} minutes is shorter than the scheduler's tick (5 minutes by default): no tick might fall in it, and no notice go out. Give 0 (off) or at least {MIN_NOTIFY_MINUTES}, and at least the stack's TickRate",
                        c.notify_before_down_minutes
                    ),
                ));
            }
            if c.notify_before_down_minutes > MAX_NOTIFY_MINUTES {
                return Err(FleetError::config(
                    key("notify_before_down_minutes"),
                    format!(
                        "{} is more than {MAX_NOTIFY_MINUTES} (12 hours); 0 turns the notice off",
                        c.notify_before_down_minutes
                    ),
                ));
            }
            if c.uptime.is_none() && !c.protect {
                return Err(FleetError::config(
                    key("uptime"),
                    "missing: give a spec such as \"Mon-Fri 08:00-20:00 Europe/Berlin\" (or protect = true)",
                ));
            }
            c.blueprint.validate(&key("blueprint"))?;
            if let Some(k) = &c.karpenter {
                k.validate(&key("karpenter"), &c.blueprint)?;
            }
            if let Some(dns) = &c.dns {
                dns.validate(&key("dns"))?;
                for (j, r) in dns.records.iter().enumerate() {
                    if let Some(name) = r
                        .zone_account
                        .as_ref()
                        .filter(|a| self.account(a).is_none())
                    {
                        return Err(FleetError::config(
                            key(&format!("dns.record[{j}].zone_account")),
                            format!("unknown account `{name}`: give an [[account]] name (leave it out for the hub's own zones)"),
                        ));
                    }
                }
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
        network::validate_all(&self.networks, &self.clusters)?;
        for (i, n) in self.networks.iter().enumerate() {
            let place = account::resolve_place(
                &format!("network[{i}]"),
                n.account.as_deref(),
                n.region.as_deref(),
                &self.accounts,
                &self.fleet.region,
            )?;
            for (j, c) in self.clusters.iter().enumerate() {
                if c.network.as_deref() == Some(n.name.as_str()) && self.place(c) != place {
                    return Err(FleetError::config(
                        format!("cluster[{j}].network"),
                        format!(
                            "network `{}` is in {place}, cluster `{}` in {}: a cluster's nodes route through NAT gateways of its own VPC (give the network the cluster's account and region)",
                            n.name,
                            c.name,
                            self.place(c)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The spoke account named `name`, if the config has it.
    pub fn account(&self, name: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Cluster `c`'s table as config keys name it: `cluster[2]`.
    pub fn cluster_key(&self, c: &ClusterConfig) -> String {
        let i = self
            .clusters
            .iter()
            .position(|x| x.name == c.name)
            .unwrap_or_default();
        format!("cluster[{i}]")
    }

    /// Where cluster `c` lives (checked at load: its account is configured).
    pub fn place(&self, c: &ClusterConfig) -> Place {
        Place {
            account: c.account.clone(),
            region: c
                .region
                .clone()
                .unwrap_or_else(|| self.fleet.region.clone()),
        }
    }

    /// Where network `n` lives.
    pub fn network_place(&self, n: &NetworkConfig) -> Place {
        Place {
            account: n.account.clone(),
            region: n
                .region
                .clone()
                .unwrap_or_else(|| self.fleet.region.clone()),
        }
    }

    /// The clusters that live in account `account_id` (12 digits, as an EventBridge
    /// event's `account` gives it) and `region`. A hub cluster matches `hub_account_id`
    /// when the caller knows the hub's id, else any account that is no spoke's (a
    /// single-account fleet's events name its own account).
    pub fn clusters_at<'a>(
        &'a self,
        account_id: &'a str,
        region: &'a str,
        hub_account_id: Option<&'a str>,
    ) -> impl Iterator<Item = &'a ClusterConfig> {
        self.clusters.iter().filter(move |c| {
            let place = self.place(c);
            place.region == region
                && match place.account.as_deref().and_then(|a| self.account(a)) {
                    Some(spoke) => spoke.account_id() == account_id,
                    None => match hub_account_id {
                        Some(hub) => hub == account_id,
                        None => !self.accounts.iter().any(|a| a.account_id() == account_id),
                    },
                }
        })
    }

    /// The network named `name`, if the config has it.
    pub fn network(&self, name: &str) -> Option<&NetworkConfig> {
        self.networks.iter().find(|n| n.name == name)
    }

    /// The clusters that name network `name`.
    pub fn clusters_of<'a>(&'a self, network: &'a str) -> impl Iterator<Item = &'a ClusterConfig> {
        self.clusters
            .iter()
            .filter(move |c| c.network.as_deref() == Some(network))
    }
}

impl ClusterConfig {
    /// The name EKS knows the cluster by: `eks_name`, else `name`.
    pub fn eks_name(&self) -> &str {
        self.eks_name.as_deref().unwrap_or(&self.name)
    }

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
        && resource.strip_prefix("role/").is_some_and(|r| !r.is_empty() && !r.ends_with('/')))
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
    fn metrics_default_to_the_summary_and_name_their_key() {
        let c = FleetConfig::parse(&minimal("")).expect("parses");
        assert_eq!(c.metrics.cloudwatch, CloudWatchMetrics::Summary);
        for (text, want) in [
            ("summary", CloudWatchMetrics::Summary),
            ("detailed", CloudWatchMetrics::Detailed),
            ("off", CloudWatchMetrics::Off),
        ] {
            let c = FleetConfig::parse(&format!(
                "{}\n[metrics]\ncloudwatch = \"{text}\"\n",
                minimal("")
            ))
            .expect("parses");
            assert_eq!(c.metrics.cloudwatch, want);
        }
        assert_eq!(
            err(&format!("{}\n[metrics]\ncloudwatch = \"all\"\n", minimal(""))),
            "config key `metrics.cloudwatch`: unknown variant `all`, expected one of `summary`, `detailed`, `off`"
        );
        assert!(
            err(&format!("{}\n[metrics]\nnamespace = \"x\"\n", minimal("")))
                .starts_with("config key `metrics.namespace`: unknown key")
        );
    }

    #[test]
    fn the_notice_lead_time_and_the_slack_section_are_checked() {
        let c = FleetConfig::parse(&minimal("")).expect("parses");
        assert_eq!(c.clusters[0].notify_before_down_minutes, 30);
        assert!(FleetConfig::parse(&minimal("notify_before_down_minutes = 0")).is_ok());
        assert!(err(&minimal("notify_before_down_minutes = 3")).starts_with(
            "config key `cluster[0].notify_before_down_minutes`: 3 minutes is shorter"
        ));
        assert!(
            err(&minimal("notify_before_down_minutes = 721")).starts_with(
                "config key `cluster[0].notify_before_down_minutes`: 721 is more than 720"
            )
        );
        let slack = |body: &str| {
            format!(
                "{}\n[slack]\nsigning_secret = \"ssm:/s\"\n{body}\n",
                minimal("")
            )
        };
        assert!(FleetConfig::parse(&slack("allowed_users = [\"U012ABCDEF\"]")).is_ok());
        assert!(err(&slack("")).starts_with(
            "config key `slack.allowed_users`: give allowed_users or allowed_channels"
        ));
        assert!(err(&slack(
            "allowed_users = [\"U012ABCDEF\"]\nallowed_teams = []"
        ))
        .starts_with("config key `slack.allowed_teams`: unknown key"));
        let deployed = slack("allowed_users = [\"U012ABCDEF\"]")
            .replace("ssm:/s", "written-out-secret-value-0123456789");
        let e = check_deployed(&deployed).expect_err("a written-out secret");
        assert!(e.contains("slack.signing_secret"), "{e}");
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
        let bad_ready = minimal("").replace(
            "[[cluster.blueprint.nodegroup]]",
            "ready_when = [\"apps/v1/Deployment/x/y\", \"Deployment/x\"]\n[[cluster.blueprint.nodegroup]]",
        );
        assert!(
            err(&bad_ready).starts_with("config key `cluster[0].blueprint.ready_when[1]`"),
            "{}",
            err(&bad_ready)
        );
        let bad_type = minimal("").replace(
            "[[cluster.blueprint.nodegroup]]",
            "access = [{ principal_arn = \"arn:aws:iam::123456789012:role/n\", type = \"LINUX\" }]\n[[cluster.blueprint.nodegroup]]",
        );
        assert!(
            err(&bad_type).starts_with("config key `cluster[0].blueprint.access[0].type`"),
            "{}",
            err(&bad_type)
        );
    }

    #[test]
    fn accounts_and_regions_are_checked_and_name_their_key() {
        let spoke = "\n[[account]]\nname = \"production\"\nrole_arn = \"arn:aws:iam::222233334444:role/fleet-spoke\"\n";
        let in_spoke = |extra: &str| {
            format!("{}{spoke}", minimal(extra)).replace("123456789012", "222233334444")
        };
        let c = FleetConfig::parse(&in_spoke(
            "account = \"production\"\nregion = \"us-east-1\"",
        ))
        .expect("a spoke cluster");
        assert_eq!(
            c.place(&c.clusters[0]),
            Place {
                account: Some("production".into()),
                region: "us-east-1".into()
            }
        );
        assert_eq!(c.clusters_at("222233334444", "us-east-1", None).count(), 1);
        assert_eq!(c.clusters_at("222233334444", "eu-west-1", None).count(), 0);
        assert_eq!(c.clusters_at("123456789012", "us-east-1", None).count(), 0);
        // A hub cluster matches any account that is no spoke's.
        let hub = FleetConfig::parse(&format!("{}{spoke}", minimal(""))).expect("hub cluster");
        assert_eq!(
            hub.clusters_at("123456789012", "eu-west-1", None).count(),
            1
        );
        assert_eq!(
            hub.clusters_at("222233334444", "eu-west-1", None).count(),
            0
        );
        for (text, key, says) in [
            (
                in_spoke("account = \"prod\""),
                "cluster[0].account",
                "unknown account `prod`: configured are production",
            ),
            (
                minimal("account = \"production\""),
                "cluster[0].account",
                "no [[account]] is configured",
            ),
            (
                in_spoke("region = \"us-east\""),
                "cluster[0].region",
                "not an AWS region name",
            ),
            (
                in_spoke("region = \"cn-north-1\""),
                "cluster[0].region",
                "partition aws-cn",
            ),
            (
                format!("{}{spoke}", minimal("account = \"production\"")),
                "cluster[0].blueprint.role_arn",
                "EKS needs a role of the cluster's own account",
            ),
            (
                format!("{}{spoke}{spoke}", minimal("")),
                "account[1].name",
                "configured twice",
            ),
            (
                format!("{}{}", minimal(""), spoke.replace("production", "hub")),
                "account[0].name",
                "the fleet's own account",
            ),
            (
                format!(
                    "{}{}",
                    minimal(""),
                    spoke.replace("fleet-spoke", &"r".repeat(55))
                ),
                "account[0].role_arn",
                "longer than 54",
            ),
            (
                format!(
                    "{}{}",
                    minimal(""),
                    spoke.replace("arn:aws:", "arn:aws-cn:")
                ),
                "account[0].role_arn",
                "partition aws-cn",
            ),
            (
                minimal("").replace("region = \"eu-west-1\"", "region = \"europe\""),
                "fleet.region",
                "not an AWS region name",
            ),
        ] {
            let e = err(&text);
            assert!(e.starts_with(&format!("config key `{key}`")), "{key}: {e}");
            assert!(e.contains(says), "{key}: {e}");
        }
        let two_ids = format!(
            "{}{spoke}{}",
            minimal(""),
            spoke
                .replace("name = \"production\"", "name = \"other\"")
                .replace("fleet-spoke", "other")
        );
        assert!(err(&two_ids).contains("already configured as `production`"));
    }

    #[test]
    fn one_eks_name_in_two_places_takes_two_fleet_names() {
        // The second cluster: `staging`'s table again under another fleet name.
        let twice = |first: &str, second: &str| {
            let two = minimal(second);
            let other = two[two.find("[[cluster]]").expect("cluster")..]
                .replace("\nname = \"staging\"", "\nname = \"staging-use1\"");
            format!("{}{other}", minimal(first))
        };
        let c = FleetConfig::parse(&twice(
            "eks_name = \"web\"",
            "eks_name = \"web\"\nregion = \"us-east-1\"",
        ))
        .expect("one EKS name in two regions");
        assert_eq!(c.clusters[0].eks_name(), "web");
        assert_eq!(c.clusters[1].eks_name(), "web");
        assert_eq!(c.clusters[1].name, "staging-use1");
        let c = FleetConfig::parse(&minimal("")).expect("no eks_name");
        assert_eq!(c.clusters[0].eks_name(), "staging");
        // One EKS cluster configured twice: two schedules would fight over it.
        let e = err(&twice("eks_name = \"web\"", "eks_name = \"web\""));
        assert!(
            e.starts_with("config key `cluster[1].eks_name`: EKS cluster `web` in hub/eu-west-1 is already configured as cluster `staging`"),
            "{e}"
        );
        let e = err(&twice("", "eks_name = \"staging\""));
        assert!(e.starts_with("config key `cluster[1].eks_name`"), "{e}");
        let e = err(&minimal("eks_name = \"-web\""));
        assert!(
            e.starts_with(
                "config key `cluster[0].eks_name`: `-web` is not a valid EKS cluster name"
            ),
            "{e}"
        );
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
