//! What teardown left behind: resources still tagged for a cluster that is down, found
//! with the Resource Groups Tagging API, aged and priced with their own services'
//! describe calls; and what Karpenter left (its instances, launch templates and
//! instance profiles), found by the tags and names Karpenter gives them
//! (`karpenter.rs` decides whose they are).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, InstanceLifecycleType};
use aws_sdk_resourcegroupstagging::types::TagFilter;
use fleet_shared::{FleetError, Result};
use jiff::Timestamp;

use crate::karpenter::{self, KarpenterInstance};

/// The resource types looked for.
pub const RESOURCE_TYPES: [&str; 5] = [
    "elasticloadbalancing:loadbalancer",
    "ec2:volume",
    "ec2:elastic-ip",
    "ec2:natgateway",
    "ec2:network-interface",
];

/// On-demand prices (USD, us-east-1; other regions differ by a few percent), used to
/// estimate what a leftover costs a day. Last checked: 2026-11-22.
pub mod price {
    /// Per GB-month, by EBS volume type.
    pub fn ebs_gb_month(volume_type: &str) -> f64 {
        match volume_type {
            "gp3" => 0.08,
            "gp2" => 0.10,
            "io1" | "io2" => 0.125,
            "st1" => 0.045,
            "sc1" => 0.015,
            _ => 0.05,
        }
    }
    pub const ALB_HOUR: f64 = 0.0225;
    pub const NLB_HOUR: f64 = 0.0225;
    pub const CLB_HOUR: f64 = 0.025;
    pub const NAT_HOUR: f64 = 0.045;
    /// A public IPv4 address (an Elastic IP, or one on an ENI).
    pub const PUBLIC_IPV4_HOUR: f64 = 0.005;
    pub const DAYS_PER_MONTH: f64 = 30.4;
    /// Per vCPU-hour of a general-purpose on-demand instance: m6i.large's $0.096 an
    /// hour for 2 vCPU (its price since m6i's launch; not part of the check dated
    /// above). What a leftover Karpenter instance is estimated at from its size:
    /// compute-optimized, Graviton and spot instances bill less, memory-optimized and
    /// GPU ones more.
    pub const GENERAL_PURPOSE_VCPU_HOUR: f64 = 0.048;
}

pub use crate::report::Leftover;

/// A tagged resource: its ARN and the cluster it is tagged for.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged {
    pub arn: String,
    pub cluster: String,
}

/// A cluster by both its names: the fleet's (the cost tag's value) and EKS's (what
/// Kubernetes, the load balancer controller and Karpenter tag with). A network is
/// `network:<name>` both ways.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub name: String,
    pub eks_name: String,
}

/// The fleet name of the cluster of `down` a resource's tags name, by any of the three
/// tags.
pub fn cluster_of(
    tags: &BTreeMap<String, String>,
    cluster_tag: &str,
    down: &[Named],
) -> Option<String> {
    down.iter()
        .find(|c| {
            tags.get(cluster_tag) == Some(&c.name)
                || tags.get("elbv2.k8s.aws/cluster") == Some(&c.eks_name)
                || tags.contains_key(&format!("kubernetes.io/cluster/{}", c.eks_name))
        })
        .map(|c| c.name.clone())
}

pub struct Finder {
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// Karpenter's instance profiles (IAM is global: any region's client).
    pub iam: aws_sdk_iam::Client,
}

/// An EC2 resource's tags as a map.
fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn timestamp(t: Option<&aws_sdk_ec2::primitives::DateTime>) -> Option<Timestamp> {
    Timestamp::from_second(t?.secs()).ok()
}

fn age(created: Option<&aws_sdk_ec2::primitives::DateTime>, now: Timestamp) -> Option<f64> {
    let t = Timestamp::from_second(created?.secs()).ok()?;
    Some(now.duration_since(t).as_secs_f64() / 86_400.0)
}

impl Finder {
    /// Resources tagged for any of the `down` clusters.
    pub async fn tagged(&self, cluster_tag: &str, down: &[Named]) -> Result<Vec<Tagged>> {
        if down.is_empty() {
            return Ok(vec![]);
        }
        let mut filters: Vec<TagFilter> = down
            .iter()
            .map(|c| {
                TagFilter::builder()
                    .key(format!("kubernetes.io/cluster/{}", c.eks_name))
                    .build()
            })
            .collect();
        filters.push(
            TagFilter::builder()
                .key("elbv2.k8s.aws/cluster")
                .set_values(Some(down.iter().map(|c| c.eks_name.clone()).collect()))
                .build(),
        );
        filters.push(
            TagFilter::builder()
                .key(cluster_tag)
                .set_values(Some(down.iter().map(|c| c.name.clone()).collect()))
                .build(),
        );
        let mut found: BTreeMap<String, String> = BTreeMap::new();
        // One filter per request: filters in one request must all match.
        for filter in filters {
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .tagging
                    .get_resources()
                    .tag_filters(filter.clone())
                    .set_resource_type_filters(Some(
                        RESOURCE_TYPES.iter().map(|s| s.to_string()).collect(),
                    ))
                    .set_pagination_token(token.take())
                    .send()
                    .await
                    .map_err(FleetError::aws_call(
                        "ResourceGroupsTagging",
                        "GetResources",
                    ))?;
                for r in out.resource_tag_mapping_list() {
                    let tags: BTreeMap<String, String> = r
                        .tags()
                        .iter()
                        .map(|t| (t.key().to_string(), t.value().to_string()))
                        .collect();
                    if let (Some(arn), Some(cluster)) =
                        (r.resource_arn(), cluster_of(&tags, cluster_tag, down))
                    {
                        found.entry(arn.to_string()).or_insert(cluster);
                    }
                }
                match out.pagination_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        Ok(found
            .into_iter()
            .map(|(arn, cluster)| Tagged { arn, cluster })
            .collect())
    }

    /// Ages and prices the tagged resources; ones already gone (a deleted NAT gateway,
    /// a released address) are dropped.
    pub async fn describe(&self, tagged: &[Tagged], now: Timestamp) -> Result<Vec<Leftover>> {
        let mut out = Vec::new();
        for t in tagged {
            let Some((service_type, id)) = split_arn(&t.arn) else {
                continue;
            };
            let leftover =
                |kind: &str, age_days: Option<f64>, daily: f64, detail: String| Leftover {
                    cluster: t.cluster.clone(),
                    kind: kind.to_string(),
                    id: id.to_string(),
                    arn: t.arn.clone(),
                    age_days,
                    daily_cost_usd: daily,
                    detail,
                };
            match service_type.as_str() {
                "ec2:volume" => {
                    let r = self.ec2.describe_volumes().volume_ids(id).send().await;
                    let Some(v) = ok_or_gone(r, "DescribeVolumes")?
                        .and_then(|o| o.volumes.and_then(|v| v.into_iter().next()))
                    else {
                        continue;
                    };
                    let size = v.size().unwrap_or(0) as f64;
                    let vt = v
                        .volume_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default();
                    let state = v
                        .state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    let daily = size * price::ebs_gb_month(&vt) / price::DAYS_PER_MONTH;
                    out.push(leftover(
                        "ebs-volume",
                        age(v.create_time(), now),
                        daily,
                        format!("{size} GiB {vt}, {state}"),
                    ));
                }
                "ec2:natgateway" => {
                    let r = self
                        .ec2
                        .describe_nat_gateways()
                        .nat_gateway_ids(id)
                        .send()
                        .await;
                    let Some(n) = ok_or_gone(r, "DescribeNatGateways")?
                        .and_then(|o| o.nat_gateways.and_then(|v| v.into_iter().next()))
                    else {
                        continue;
                    };
                    let state = n
                        .state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    // A failed NAT gateway never bills (EC2 pricing: per hour a gateway is
                    // provisioned and available); its Elastic IP is listed on its own.
                    if matches!(state.as_str(), "deleted" | "deleting" | "failed") {
                        continue;
                    }
                    out.push(leftover(
                        "nat-gateway",
                        age(n.create_time(), now),
                        price::NAT_HOUR * 24.0,
                        state,
                    ));
                }
                "ec2:elastic-ip" => {
                    let r = self
                        .ec2
                        .describe_addresses()
                        .allocation_ids(id)
                        .send()
                        .await;
                    let Some(a) = ok_or_gone(r, "DescribeAddresses")?
                        .and_then(|o| o.addresses.and_then(|v| v.into_iter().next()))
                    else {
                        continue;
                    };
                    let ip = a.public_ip().unwrap_or_default().to_string();
                    out.push(leftover(
                        "elastic-ip",
                        None,
                        price::PUBLIC_IPV4_HOUR * 24.0,
                        ip,
                    ));
                }
                "ec2:network-interface" => {
                    let r = self
                        .ec2
                        .describe_network_interfaces()
                        .network_interface_ids(id)
                        .send()
                        .await;
                    let Some(n) = ok_or_gone(r, "DescribeNetworkInterfaces")?
                        .and_then(|o| o.network_interfaces.and_then(|v| v.into_iter().next()))
                    else {
                        continue;
                    };
                    let public = n.association().and_then(|a| a.public_ip()).is_some();
                    let status = n
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    let daily = if public {
                        price::PUBLIC_IPV4_HOUR * 24.0
                    } else {
                        0.0
                    };
                    out.push(leftover("network-interface", None, daily, status));
                }
                "elasticloadbalancing:loadbalancer" => {
                    let r = self
                        .elb
                        .describe_load_balancers()
                        .load_balancer_arns(&t.arn)
                        .send()
                        .await;
                    let lb = match r {
                        Ok(o) => o.load_balancers.and_then(|v| v.into_iter().next()),
                        Err(e) => {
                            let e = FleetError::aws("ELBv2", "DescribeLoadBalancers", e);
                            if e.aws_kind().is_some()
                                && e.to_string().contains("LoadBalancerNotFound")
                            {
                                None
                            } else {
                                return Err(e);
                            }
                        }
                    };
                    let Some(lb) = lb else { continue };
                    let kind = lb
                        .r#type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default();
                    let hourly = if kind == "network" {
                        price::NLB_HOUR
                    } else {
                        price::ALB_HOUR
                    };
                    let created = lb
                        .created_time()
                        .and_then(|c| Timestamp::from_second(c.secs()).ok());
                    let age_days = created.map(|c| now.duration_since(c).as_secs_f64() / 86_400.0);
                    out.push(leftover(
                        &format!("load-balancer ({kind})"),
                        age_days,
                        hourly * 24.0,
                        lb.dns_name().unwrap_or_default().to_string(),
                    ));
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

impl Finder {
    /// The running and pending instances Karpenter launched for any of `clusters`, in
    /// `region`: one DescribeInstances (paginated) for all of them, by Karpenter's
    /// NodePool tag; whose they are, from their cluster tags.
    pub async fn karpenter_instances(
        &self,
        clusters: &[String],
        region: &str,
    ) -> Result<Vec<KarpenterInstance>> {
        if clusters.is_empty() {
            return Ok(vec![]);
        }
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .ec2
                .describe_instances()
                .filters(
                    Filter::builder()
                        .name("tag-key")
                        .values(karpenter::NODEPOOL_TAG)
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name("instance-state-name")
                        .values("pending")
                        .values("running")
                        .build(),
                )
                .set_next_token(token.take())
                .send()
                .await
                .map_err(FleetError::aws_call("EC2", "DescribeInstances"))?;
            for reservation in page.reservations() {
                let owner = reservation.owner_id().unwrap_or_default();
                for i in reservation.instances() {
                    let tags = ec2_tags(i.tags());
                    let (Some(id), Some(cluster)) = (
                        i.instance_id(),
                        karpenter::instance_cluster(&tags, clusters),
                    ) else {
                        continue;
                    };
                    found.push(KarpenterInstance {
                        id: id.to_string(),
                        cluster,
                        arn: format!(
                            "arn:{}:ec2:{region}:{owner}:instance/{id}",
                            partition(region)
                        ),
                        instance_type: i
                            .instance_type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                        spot: i.instance_lifecycle() == Some(&InstanceLifecycleType::Spot),
                        launched: timestamp(i.launch_time()),
                        tags,
                    });
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(found)
    }

    /// Karpenter's launch templates of the `down` clusters, in `region`: those tagged
    /// `karpenter.k8s.aws/cluster=<cluster>` (before Karpenter v1.1), and those tagged
    /// `eks:eks-cluster-name=<cluster>` with an EC2NodeClass tag (the filter Karpenter
    /// itself deletes them by since): one DescribeLaunchTemplates (paginated) each, as
    /// filters of one request must all match. They cost nothing but outlive the cluster
    /// (Karpenter deletes them only with their EC2NodeClass).
    pub async fn karpenter_launch_templates(
        &self,
        down: &[String],
        region: &str,
        now: Timestamp,
    ) -> Result<Vec<Leftover>> {
        if down.is_empty() {
            return Ok(vec![]);
        }
        let by_tag = |key: &str| {
            Filter::builder()
                .name(format!("tag:{key}"))
                .set_values(Some(down.to_vec()))
                .build()
        };
        let queries = [
            vec![by_tag(karpenter::LEGACY_LAUNCH_TEMPLATE_TAG)],
            vec![
                by_tag(karpenter::CLUSTER_NAME_TAG),
                Filter::builder()
                    .name("tag-key")
                    .values(karpenter::NODECLASS_TAG)
                    .build(),
            ],
        ];
        // By id: a template of Karpenter v1.0 carries both tags.
        let mut found: BTreeMap<String, Leftover> = BTreeMap::new();
        for filters in queries {
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .ec2
                    .describe_launch_templates()
                    .set_filters(Some(filters.clone()))
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(FleetError::aws_call("EC2", "DescribeLaunchTemplates"))?;
                for lt in page.launch_templates() {
                    let tags = ec2_tags(lt.tags());
                    let (Some(id), Some(cluster)) = (
                        lt.launch_template_id(),
                        karpenter::launch_template_cluster(&tags, down),
                    ) else {
                        continue;
                    };
                    // The account is the creator's (`CreatedBy` is its ARN).
                    let arn = lt
                        .created_by()
                        .and_then(|by| by.split(':').nth(4))
                        .filter(|account| !account.is_empty())
                        .map(|account| {
                            format!(
                                "arn:{}:ec2:{region}:{account}:launch-template/{id}",
                                partition(region)
                            )
                        })
                        .unwrap_or_default();
                    found.insert(
                        id.to_string(),
                        Leftover {
                            cluster,
                            kind: "karpenter-launch-template".into(),
                            id: id.to_string(),
                            arn,
                            age_days: age(lt.create_time(), now),
                            daily_cost_usd: 0.0,
                            detail: lt.launch_template_name().unwrap_or_default().to_string(),
                        },
                    );
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        Ok(found.into_values().collect())
    }

    /// Karpenter's instance profiles of the `down` clusters: IAM lists every profile of
    /// the account (names cannot be filtered server-side); those named
    /// `<cluster>_<hash>` have their tags read (ListInstanceProfileTags, since listing
    /// returns none) and count when tagged `kubernetes.io/cluster/<cluster>=owned` for
    /// `region`. They cost nothing, but keep their role attached and count against the
    /// account's instance-profile quota.
    pub async fn karpenter_instance_profiles(
        &self,
        down: &[String],
        region: &str,
        now: Timestamp,
    ) -> Result<Vec<Leftover>> {
        if down.is_empty() {
            return Ok(vec![]);
        }
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .iam
                .list_instance_profiles()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(FleetError::aws_call("IAM", "ListInstanceProfiles"))?;
            for p in page.instance_profiles() {
                let name = p.instance_profile_name();
                let Some(cluster) = karpenter::instance_profile_candidate(name, down) else {
                    continue;
                };
                let Some(tags) = self.instance_profile_tags(name).await? else {
                    continue;
                };
                if !karpenter::instance_profile_confirmed(&tags, &cluster, region) {
                    continue;
                }
                let roles: Vec<&str> = p.roles().iter().map(|r| r.role_name()).collect();
                let created = Timestamp::from_second(p.create_date().secs()).ok();
                out.push(Leftover {
                    cluster,
                    kind: "karpenter-instance-profile".into(),
                    id: name.to_string(),
                    arn: p.arn().to_string(),
                    age_days: created.map(|c| now.duration_since(c).as_secs_f64() / 86_400.0),
                    daily_cost_usd: 0.0,
                    detail: match roles.as_slice() {
                        [] => format!("path {}, no role", p.path()),
                        _ => format!("path {}, role {}", p.path(), roles.join(", ")),
                    },
                });
            }
            match page.marker() {
                Some(m) if page.is_truncated() && !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// An instance profile's tags; `None` when it went meanwhile.
    async fn instance_profile_tags(&self, name: &str) -> Result<Option<BTreeMap<String, String>>> {
        let mut tags = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let page = match self
                .iam
                .list_instance_profile_tags()
                .instance_profile_name(name)
                .set_marker(marker.take())
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    return match FleetError::aws("IAM", "ListInstanceProfileTags", e) {
                        FleetError::Aws { code, .. } if code == "NoSuchEntity" => Ok(None),
                        e => Err(e),
                    }
                }
            };
            tags.extend(
                page.tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string())),
            );
            match page.marker() {
                Some(m) if page.is_truncated() && !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(Some(tags))
    }
}

/// The ARN partition of `region`: `aws-cn` for China, `aws-us-gov` for GovCloud,
/// else `aws`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Treats "does not exist" answers as gone.
fn ok_or_gone<T, E>(
    r: std::result::Result<
        T,
        aws_sdk_ec2::error::SdkError<E, aws_sdk_ec2::config::http::HttpResponse>,
    >,
    op: &'static str,
) -> Result<Option<T>>
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let e = FleetError::aws("EC2", op, e);
            match &e {
                FleetError::Aws { code, .. } if code.contains("NotFound") => Ok(None),
                _ => Err(e),
            }
        }
    }
}

/// `("ec2:volume", "vol-1")` from `arn:aws:ec2:eu-west-1:123:volume/vol-1`; load
/// balancers keep their whole ARN as the id's source (`app/name/hash`).
pub fn split_arn(arn: &str) -> Option<(String, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, service, _, _, resource] = parts.as_slice() else {
        return None;
    };
    let (kind, id) = resource.split_once('/')?;
    let kind = match (*service, kind) {
        ("ec2", "elastic-ip") => "elastic-ip",
        ("ec2", k) => k,
        ("elasticloadbalancing", "loadbalancer") => "loadbalancer",
        _ => return None,
    };
    Some((format!("{service}:{kind}"), id))
}

impl Finder {
    /// NAT gateways in the VPCs of `clusters` (the fleet's clusters at this finder's
    /// place: their blueprint subnets, and the public subnets of their `[[network]]`s)
    /// that lack the cost tag `cluster_tag`: nobody schedules them, so they bill around
    /// the clock. One leftover each (`nat-gateway (not scheduled)`), named for the first
    /// fleet cluster in its VPC.
    ///
    /// # Errors
    /// EC2's (`DescribeSubnets`, `DescribeNatGateways`).
    pub async fn unscheduled_nat_gateways(
        &self,
        config: &fleet_shared::config::FleetConfig,
        clusters: &[&fleet_shared::config::ClusterConfig],
        cluster_tag: &str,
        now: Timestamp,
    ) -> Result<Vec<Leftover>> {
        // Subnet id -> the first cluster that names it (directly or through its network).
        let mut subnets: BTreeMap<String, String> = BTreeMap::new();
        for c in clusters {
            let network = c.network.as_deref().and_then(|n| config.network(n));
            let ids = c.blueprint.subnet_ids.iter().chain(
                network
                    .into_iter()
                    .flat_map(|n| n.nat_gateways.iter().map(|g| &g.subnet_id)),
            );
            for id in ids {
                subnets.entry(id.clone()).or_insert_with(|| c.name.clone());
            }
        }
        if subnets.is_empty() {
            return Ok(vec![]);
        }
        // A filter, not SubnetIds: a subnet that no longer exists must not fail the rest.
        let mut vpcs: BTreeMap<String, String> = BTreeMap::new();
        let described = self
            .ec2
            .describe_subnets()
            .filters(
                Filter::builder()
                    .name("subnet-id")
                    .set_values(Some(subnets.keys().cloned().collect()))
                    .build(),
            )
            .send()
            .await
            .map_err(FleetError::aws_call("EC2", "DescribeSubnets"))?;
        for s in described.subnets() {
            if let (Some(vpc), Some(id)) = (s.vpc_id(), s.subnet_id()) {
                if let Some(cluster) = subnets.get(id) {
                    vpcs.entry(vpc.to_string())
                        .or_insert_with(|| cluster.clone());
                }
            }
        }
        if vpcs.is_empty() {
            return Ok(vec![]);
        }
        let mut out = vec![];
        let mut pages = self
            .ec2
            .describe_nat_gateways()
            .filter(
                Filter::builder()
                    .name("vpc-id")
                    .set_values(Some(vpcs.keys().cloned().collect()))
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(FleetError::aws_call("EC2", "DescribeNatGateways"))?;
            for n in page.nat_gateways() {
                let state = n.state().map(|s| s.as_str()).unwrap_or_default();
                if !matches!(state, "pending" | "available") {
                    continue;
                }
                // The fleet's own carry the cost tag (and fleet:network; a custom
                // cost tag does not reach them).
                let scheduled = n.tags().iter().any(|t| {
                    t.key() == Some(cluster_tag)
                        || t.key() == Some(fleet_shared::config::NETWORK_TAG)
                });
                if scheduled {
                    continue;
                }
                let vpc = n.vpc_id().unwrap_or_default();
                let monthly = price::NAT_HOUR * 24.0 * price::DAYS_PER_MONTH;
                out.push(Leftover {
                    cluster: vpcs.get(vpc).cloned().unwrap_or_default(),
                    kind: "nat-gateway (not scheduled)".into(),
                    id: n.nat_gateway_id().unwrap_or_default().to_string(),
                    arn: String::new(),
                    age_days: age(n.create_time(), now),
                    daily_cost_usd: price::NAT_HOUR * 24.0,
                    detail: format!(
                        "not scheduled by the fleet: ${monthly:.2}/month (in {vpc}, without `{cluster_tag}`; a [[network]] puts it on the schedule)"
                    ),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        assert_eq!(
            split_arn("arn:aws:ec2:eu-west-1:123456789012:volume/vol-0abc"),
            Some(("ec2:volume".to_string(), "vol-0abc"))
        );
        assert_eq!(
            split_arn(
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/k8s-x/0123"
            ),
            Some((
                "elasticloadbalancing:loadbalancer".to_string(),
                "net/k8s-x/0123"
            ))
        );
        assert_eq!(split_arn("arn:aws:s3:::bucket"), None);
    }

    #[test]
    fn partitions() {
        assert_eq!(partition("eu-west-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }

    #[test]
    fn tags_name_the_cluster() {
        let down = vec![Named {
            name: "staging".into(),
            eks_name: "staging".into(),
        }];
        let tags = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert_eq!(
            cluster_of(
                &tags("kubernetes.io/cluster/staging", "owned"),
                "fleet:cluster",
                &down
            ),
            Some("staging".into())
        );
        assert_eq!(
            cluster_of(
                &tags("elbv2.k8s.aws/cluster", "staging"),
                "fleet:cluster",
                &down
            ),
            Some("staging".into())
        );
        assert_eq!(
            cluster_of(&tags("fleet:cluster", "staging"), "fleet:cluster", &down),
            Some("staging".into())
        );
        assert_eq!(
            cluster_of(&tags("fleet:cluster", "prod"), "fleet:cluster", &down),
            None
        );
        // Another EKS name: Kubernetes' and the controller's tags carry it, the cost tag
        // the fleet name; the answer is the fleet name.
        let down = vec![Named {
            name: "web-prod".into(),
            eks_name: "web".into(),
        }];
        for (key, value) in [
            ("kubernetes.io/cluster/web", "owned"),
            ("elbv2.k8s.aws/cluster", "web"),
            ("fleet:cluster", "web-prod"),
        ] {
            assert_eq!(
                cluster_of(&tags(key, value), "fleet:cluster", &down),
                Some("web-prod".into()),
                "{key}"
            );
        }
        assert_eq!(
            cluster_of(&tags("fleet:cluster", "web"), "fleet:cluster", &down),
            None
        );
    }
}
