//! `[[network]]`: the NAT gateways private subnets need, up only while a cluster that
//! names the network is up.
//!
//! A NAT gateway bills by the hour ($0.045/h in us-east-1, and $0.005/h for its public
//! IPv4 address; AWS "Amazon VPC pricing", 2026) whether or not anything sends through it:
//! left up all night it costs more than the EKS control plane the fleet takes down. The
//! scheduler creates each one (with a new Elastic IP) before the nodes of the first of
//! its clusters come up and deletes it after the last is down (README, "Networks").

use serde::Deserialize;

use crate::error::{FleetError, Result};

/// `[[network]]`: one VPC's NAT gateways.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NetworkConfig {
    /// The network's name, as clusters' `network` key names it (the same characters as a
    /// cluster name): its state table key and its `fleet:network` tag.
    pub name: String,
    /// The `[[account]]` its VPC is in; absent: the hub's own account.
    #[serde(default)]
    pub account: Option<String>,
    /// The region its VPC is in; absent: `fleet.region`.
    #[serde(default)]
    pub region: Option<String>,
    /// One NAT gateway per entry.
    pub nat_gateways: Vec<NatGatewayConfig>,
    /// Replace a default route that points at something else (an internet gateway,
    /// another NAT gateway, a transit gateway) in the listed route tables. Without it such
    /// a route is a conflict: reported and left alone.
    #[serde(default)]
    pub adopt_routes: bool,
}

/// One NAT gateway: created in a public subnet, with a new Elastic IP, and the default
/// route (`0.0.0.0/0`) of each listed private route table pointed at it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NatGatewayConfig {
    /// The public subnet it is created in (`subnet-…`; its route table routes to an
    /// internet gateway).
    pub subnet_id: String,
    /// The private subnets' route tables (`rtb-…`) whose default route goes through it.
    pub route_table_ids: Vec<String>,
}

impl NetworkConfig {
    /// Every route table the network's NAT gateways route, in config order.
    pub fn route_tables(&self) -> impl Iterator<Item = (&NatGatewayConfig, &str)> {
        self.nat_gateways
            .iter()
            .flat_map(|g| g.route_table_ids.iter().map(move |r| (g, r.as_str())))
    }

    pub(super) fn validate(&self, key: &str) -> Result<()> {
        if !super::valid_cluster_name(&self.name) {
            return Err(FleetError::config(
                format!("{key}.name"),
                format!(
                    "`{}` is not a valid network name (1-100 letters, digits, - and _, starting with a letter or digit)",
                    self.name
                ),
            ));
        }
        if self.nat_gateways.is_empty() {
            return Err(FleetError::config(
                format!("{key}.nat_gateways"),
                "must list at least one NAT gateway ({ subnet_id = \"subnet-…\", route_table_ids = [\"rtb-…\"] })",
            ));
        }
        for (i, g) in self.nat_gateways.iter().enumerate() {
            let gkey = format!("{key}.nat_gateways[{i}]");
            if !is_id(&g.subnet_id, "subnet-") {
                return Err(FleetError::config(
                    format!("{gkey}.subnet_id"),
                    format!("`{}` is not a subnet id (subnet-…)", g.subnet_id),
                ));
            }
            if g.route_table_ids.is_empty() {
                return Err(FleetError::config(
                    format!("{gkey}.route_table_ids"),
                    "must list the private route tables that route through this NAT gateway",
                ));
            }
            for (j, r) in g.route_table_ids.iter().enumerate() {
                if !is_id(r, "rtb-") {
                    return Err(FleetError::config(
                        format!("{gkey}.route_table_ids[{j}]"),
                        format!("`{r}` is not a route table id (rtb-…)"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `subnet-0abc…`: the prefix, then lowercase hex digits (AWS ids; moto's too).
fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    })
}

/// Checks what no single network can: names and route tables unique across networks,
/// a subnet in one entry only, every cluster's `network` a configured one. A network no
/// cluster names is kept down (what the fleet made of it is taken away).
pub(super) fn validate_all(
    networks: &[NetworkConfig],
    clusters: &[super::ClusterConfig],
) -> Result<()> {
    let mut names = std::collections::HashSet::new();
    let mut subnets = std::collections::HashMap::new();
    let mut tables = std::collections::HashMap::new();
    for (i, n) in networks.iter().enumerate() {
        let key = format!("network[{i}]");
        n.validate(&key)?;
        if !names.insert(n.name.as_str()) {
            return Err(FleetError::config(
                format!("{key}.name"),
                format!("network `{}` is configured twice", n.name),
            ));
        }
        for (j, g) in n.nat_gateways.iter().enumerate() {
            let gkey = format!("{key}.nat_gateways[{j}]");
            if let Some(other) = subnets.insert(g.subnet_id.as_str(), gkey.clone()) {
                return Err(FleetError::config(
                    format!("{gkey}.subnet_id"),
                    format!(
                        "subnet `{}` already has a NAT gateway in {other}",
                        g.subnet_id
                    ),
                ));
            }
            for (k, r) in g.route_table_ids.iter().enumerate() {
                let rkey = format!("{gkey}.route_table_ids[{k}]");
                if let Some(other) = tables.insert(r.as_str(), rkey.clone()) {
                    return Err(FleetError::config(
                        rkey,
                        format!("route table `{r}` is already routed in {other}: a route table has one default route"),
                    ));
                }
            }
        }
    }
    for (i, c) in clusters.iter().enumerate() {
        if let Some(net) = &c.network {
            if !names.contains(net.as_str()) {
                let known: Vec<&str> = networks.iter().map(|n| n.name.as_str()).collect();
                return Err(FleetError::config(
                    format!("cluster[{i}].network"),
                    format!(
                        "unknown network `{net}` (configured: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::FleetConfig;

    fn config(network: &str, cluster_network: &str) -> String {
        format!(
            r#"
[fleet]
region = "eu-west-1"

{network}

[[cluster]]
name = "staging"
uptime = "Mon-Fri 08:00-20:00 Europe/Berlin"
{cluster_network}

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

    const NET: &str = r#"
[[network]]
name = "staging-vpc"
nat_gateways = [
  { subnet_id = "subnet-0pub1", route_table_ids = ["rtb-0priv1", "rtb-0priv2"] },
]
"#;

    fn err(text: &str) -> String {
        FleetConfig::parse(text)
            .expect_err("should fail")
            .to_string()
    }

    #[test]
    fn a_network_and_the_cluster_that_needs_it() {
        let c = FleetConfig::parse(&config(NET, "network = \"staging-vpc\"")).expect("parses");
        let n = c.network("staging-vpc").expect("network");
        assert!(!n.adopt_routes);
        assert_eq!(n.route_tables().count(), 2);
        assert_eq!(c.clusters_of("staging-vpc").count(), 1);
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            err(&config(NET, "network = \"prod-vpc\"")),
            "config key `cluster[0].network`: unknown network `prod-vpc` (configured: staging-vpc)"
        );
        // A network no cluster names is kept down: not an error.
        assert!(FleetConfig::parse(&config(NET, "")).is_ok());
        let bad_subnet = NET.replace("subnet-0pub1", "pub1");
        assert!(err(&config(&bad_subnet, "network = \"staging-vpc\""))
            .starts_with("config key `network[0].nat_gateways[0].subnet_id`"));
        let bad_rtb = NET.replace("rtb-0priv2", "0priv2");
        assert!(err(&config(&bad_rtb, "network = \"staging-vpc\""))
            .starts_with("config key `network[0].nat_gateways[0].route_table_ids[1]`"));
        let twice = NET.replace("\"rtb-0priv2\"", "\"rtb-0priv1\"");
        assert!(err(&config(&twice, "network = \"staging-vpc\""))
            .starts_with("config key `network[0].nat_gateways[0].route_table_ids[1]`: route table `rtb-0priv1` is already routed"));
        let unknown = NET.replace(
            "name = \"staging-vpc\"",
            "name = \"staging-vpc\"\nnat = true",
        );
        assert_eq!(
            err(&config(&unknown, "network = \"staging-vpc\"")),
            "config key `network[0].nat`: unknown key"
        );
        let empty = "[[network]]\nname = \"staging-vpc\"\nnat_gateways = []";
        assert!(err(&config(empty, "network = \"staging-vpc\""))
            .starts_with("config key `network[0].nat_gateways`: must list"));
    }
}
