//! What Karpenter leaves in the account, and whether its instances carry the cost tag.
//! Pure: which cluster a resource is Karpenter's for, from the tags and names Karpenter
//! gives it; the adapter in `leftovers.rs` reads them.
//!
//! Karpenter's nodes are not in any nodegroup: deleting the nodegroups and the control
//! plane leaves them running and billing (karpenter-provider-aws #1955, #1134), with their
//! launch templates and instance profiles beside them. The tags and names below are
//! Karpenter's own (karpenter-provider-aws v1: `pkg/apis/v1/labels.go`,
//! `pkg/utils/utils.go` `GetTags`, `pkg/apis/v1/ec2nodeclass.go`).

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::inputs::Leftover;

/// On every instance Karpenter launches: its NodePool.
pub const NODEPOOL_TAG: &str = "karpenter.sh/nodepool";
/// On Karpenter's instances, launch templates (since v1.1) and instance profiles: the
/// cluster's name.
pub const CLUSTER_NAME_TAG: &str = "eks:eks-cluster-name";
/// On the same: the EC2NodeClass they were made from.
pub const NODECLASS_TAG: &str = "karpenter.k8s.aws/ec2nodeclass";
/// On launch templates before Karpenter v1.1 (dropped by karpenter-provider-aws #7379):
/// the cluster's name.
pub const LEGACY_LAUNCH_TEMPLATE_TAG: &str = "karpenter.k8s.aws/cluster";
/// On instance profiles: the region of the cluster that made them (IAM is global, so a
/// cluster of the same name in another region names its profiles the same way).
pub const REGION_TAG: &str = "topology.kubernetes.io/region";

/// `kubernetes.io/cluster/<cluster>`, `owned` on everything Karpenter makes.
pub fn cluster_key(cluster: &str) -> String {
    format!("kubernetes.io/cluster/{cluster}")
}

/// The cluster of `clusters` a Karpenter instance belongs to: it carries
/// [`NODEPOOL_TAG`], and [`CLUSTER_NAME_TAG`] names the cluster or
/// `kubernetes.io/cluster/<cluster>` is among its keys.
pub fn instance_cluster(tags: &BTreeMap<String, String>, clusters: &[String]) -> Option<String> {
    if !tags.contains_key(NODEPOOL_TAG) {
        return None;
    }
    clusters
        .iter()
        .find(|c| tags.get(CLUSTER_NAME_TAG) == Some(*c) || tags.contains_key(&cluster_key(c)))
        .cloned()
}

/// The cluster of `clusters` a launch template is Karpenter's for: tagged
/// [`LEGACY_LAUNCH_TEMPLATE_TAG`]` = <cluster>` (before v1.1), or [`CLUSTER_NAME_TAG`]
/// `= <cluster>` with a [`NODECLASS_TAG`] (v1.1 on; the filter Karpenter itself deletes
/// its launch templates by). A launch template EKS made for a managed nodegroup has no
/// EC2NodeClass tag.
pub fn launch_template_cluster(
    tags: &BTreeMap<String, String>,
    clusters: &[String],
) -> Option<String> {
    clusters
        .iter()
        .find(|c| {
            tags.get(LEGACY_LAUNCH_TEMPLATE_TAG) == Some(*c)
                || (tags.get(CLUSTER_NAME_TAG) == Some(*c) && tags.contains_key(NODECLASS_TAG))
        })
        .cloned()
}

/// The cluster of `clusters` whose instance profile `name` would be: Karpenter names
/// them `<cluster>_<decimal hash>` (`EC2NodeClass.InstanceProfileName`). The name alone
/// is not proof: [`instance_profile_confirmed`] reads the tags.
pub fn instance_profile_candidate(name: &str, clusters: &[String]) -> Option<String> {
    clusters
        .iter()
        .find(|c| {
            name.strip_prefix(c.as_str())
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|hash| !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_digit()))
        })
        .cloned()
}

/// Whether an instance profile's tags make it Karpenter's for `cluster` in `region`:
/// `kubernetes.io/cluster/<cluster> = owned`, and no [`REGION_TAG`] naming another region
/// (profiles of Karpenter versions without that tag are taken as this region's).
pub fn instance_profile_confirmed(
    tags: &BTreeMap<String, String>,
    cluster: &str,
    region: &str,
) -> bool {
    tags.get(&cluster_key(cluster)).map(String::as_str) == Some("owned")
        && tags.get(REGION_TAG).is_none_or(|r| r == region)
}

/// A running or pending instance Karpenter launched for a fleet cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct KarpenterInstance {
    pub id: String,
    pub cluster: String,
    /// Its `arn:<partition>:ec2:<region>:<owner>:instance/<id>`.
    pub arn: String,
    /// `m6i.large`, ….
    pub instance_type: String,
    /// A spot instance (`InstanceLifecycle` `spot`), rather than on-demand.
    pub spot: bool,
    pub launched: Option<Timestamp>,
    pub tags: BTreeMap<String, String>,
}

/// vCPUs of an instance type, from its size: `large` 2, `xlarge` 4, `<n>xlarge` 4n,
/// `medium` and smaller 1 (t-family sizes have 2, Graviton `medium` 1: the estimate errs
/// low). `None` for `metal` and names without a size.
pub fn vcpus(instance_type: &str) -> Option<f64> {
    let (_, size) = instance_type.split_once('.')?;
    match size {
        "nano" | "micro" | "small" | "medium" => Some(1.0),
        "large" => Some(2.0),
        "xlarge" => Some(4.0),
        _ => {
            let n: f64 = size.strip_suffix("xlarge")?.parse().ok()?;
            Some(4.0 * n)
        }
    }
}

/// A Karpenter instance of a cluster that is down, as a leftover: aged from its launch,
/// priced at `vcpu_hour_usd` per vCPU-hour (a general-purpose on-demand estimate; 0 when
/// the size is unknown).
pub fn instance_leftover(i: &KarpenterInstance, vcpu_hour_usd: f64, now: Timestamp) -> Leftover {
    let nodepool = i.tags.get(NODEPOOL_TAG).map(String::as_str).unwrap_or("");
    let vcpus = vcpus(&i.instance_type);
    let lifecycle = if i.spot { "spot" } else { "on-demand" };
    let estimate = match vcpus {
        Some(n) => format!("{n} vCPU priced at the general-purpose on-demand rate, an estimate"),
        None => "size unknown, not priced".to_string(),
    };
    Leftover {
        cluster: i.cluster.clone(),
        kind: "karpenter-instance".into(),
        id: i.id.clone(),
        arn: i.arn.clone(),
        age_days: i
            .launched
            .map(|t| now.duration_since(t).as_secs_f64() / 86_400.0),
        daily_cost_usd: vcpus.map_or(0.0, |n| n * vcpu_hour_usd * 24.0),
        detail: format!(
            "{} {lifecycle}, NodePool `{nodepool}` ({estimate})",
            i.instance_type
        ),
    }
}

/// The Karpenter instances of one cluster with `[cluster.karpenter]`, and which of them
/// lack the cost-allocation tag with the cluster's name.
#[derive(Debug, Clone, PartialEq)]
pub struct KarpenterTagging {
    pub cluster: String,
    /// Running or pending Karpenter instances of the cluster.
    pub instances: usize,
    /// Their ids without `<cost tag> = <cluster>`: Cost Explorer attributes their spend to
    /// no fleet cluster (or to another one).
    pub untagged: Vec<String>,
}

/// Per cluster of `karpenter_clusters`, its instances among `instances` and those not
/// tagged `cluster_tag = <cluster>`; clusters without Karpenter instances are left out.
pub fn tagging(
    instances: &[KarpenterInstance],
    karpenter_clusters: &[String],
    cluster_tag: &str,
) -> Vec<KarpenterTagging> {
    karpenter_clusters
        .iter()
        .filter_map(|c| {
            let of: Vec<&KarpenterInstance> =
                instances.iter().filter(|i| &i.cluster == c).collect();
            (!of.is_empty()).then(|| KarpenterTagging {
                cluster: c.clone(),
                instances: of.len(),
                untagged: of
                    .iter()
                    .filter(|i| i.tags.get(cluster_tag) != Some(c))
                    .map(|i| i.id.clone())
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn clusters() -> Vec<String> {
        vec!["staging".into(), "staging_x".into()]
    }

    #[test]
    fn karpenter_instances_by_either_cluster_tag() {
        let c = clusters();
        let by_name = tags(&[(NODEPOOL_TAG, "spot"), (CLUSTER_NAME_TAG, "staging")]);
        assert_eq!(instance_cluster(&by_name, &c), Some("staging".into()));
        let by_key = tags(&[
            (NODEPOOL_TAG, "spot"),
            ("kubernetes.io/cluster/staging_x", "owned"),
        ]);
        assert_eq!(instance_cluster(&by_key, &c), Some("staging_x".into()));
        // A nodegroup's instance of the cluster: not Karpenter's.
        let nodegroup = tags(&[(CLUSTER_NAME_TAG, "staging"), ("eks:nodegroup-name", "a")]);
        assert_eq!(instance_cluster(&nodegroup, &c), None);
        // Another cluster's Karpenter node.
        let other = tags(&[(NODEPOOL_TAG, "spot"), (CLUSTER_NAME_TAG, "prod")]);
        assert_eq!(instance_cluster(&other, &c), None);
    }

    #[test]
    fn launch_templates_before_and_since_karpenter_1_1() {
        let c = clusters();
        let legacy = tags(&[(LEGACY_LAUNCH_TEMPLATE_TAG, "staging")]);
        assert_eq!(launch_template_cluster(&legacy, &c), Some("staging".into()));
        let v1 = tags(&[
            (CLUSTER_NAME_TAG, "staging"),
            (NODECLASS_TAG, "default"),
            (NODEPOOL_TAG, "spot"),
        ]);
        assert_eq!(launch_template_cluster(&v1, &c), Some("staging".into()));
        // A managed nodegroup's launch template names the cluster, no EC2NodeClass.
        let eks = tags(&[(CLUSTER_NAME_TAG, "staging")]);
        assert_eq!(launch_template_cluster(&eks, &c), None);
        let other = tags(&[(LEGACY_LAUNCH_TEMPLATE_TAG, "prod")]);
        assert_eq!(launch_template_cluster(&other, &c), None);
    }

    #[test]
    fn instance_profiles_by_name_then_tags() {
        let c = clusters();
        assert_eq!(
            instance_profile_candidate("staging_4820136178492046587", &c),
            Some("staging".into())
        );
        // `staging_x_1` is cluster staging_x's, not staging's with hash `x_1`.
        assert_eq!(
            instance_profile_candidate("staging_x_1", &c),
            Some("staging_x".into())
        );
        for name in [
            "staging",
            "staging_",
            "staging-1",
            "stagingX_1",
            "eks-node-role",
        ] {
            assert_eq!(instance_profile_candidate(name, &c), None, "{name}");
        }
        let owned = tags(&[("kubernetes.io/cluster/staging", "owned")]);
        assert!(instance_profile_confirmed(&owned, "staging", "eu-west-1"));
        let here = tags(&[
            ("kubernetes.io/cluster/staging", "owned"),
            (REGION_TAG, "eu-west-1"),
        ]);
        assert!(instance_profile_confirmed(&here, "staging", "eu-west-1"));
        let elsewhere = tags(&[
            ("kubernetes.io/cluster/staging", "owned"),
            (REGION_TAG, "us-east-1"),
        ]);
        assert!(!instance_profile_confirmed(
            &elsewhere,
            "staging",
            "eu-west-1"
        ));
        let shared = tags(&[("kubernetes.io/cluster/staging", "shared")]);
        assert!(!instance_profile_confirmed(&shared, "staging", "eu-west-1"));
        assert!(!instance_profile_confirmed(
            &tags(&[]),
            "staging",
            "eu-west-1"
        ));
    }

    #[test]
    fn vcpus_from_the_size() {
        let cases = [
            ("m6i.large", Some(2.0)),
            ("c7g.medium", Some(1.0)),
            ("r6i.xlarge", Some(4.0)),
            ("m5.24xlarge", Some(96.0)),
            ("m7i.metal-48xl", None),
            ("c6i.metal", None),
            ("weird", None),
        ];
        for (t, want) in cases {
            assert_eq!(vcpus(t), want, "{t}");
        }
    }

    fn instance(id: &str, cluster: &str, extra: &[(&str, &str)]) -> KarpenterInstance {
        let mut t = tags(&[(NODEPOOL_TAG, "spot"), (CLUSTER_NAME_TAG, cluster)]);
        t.extend(tags(extra));
        KarpenterInstance {
            id: id.into(),
            cluster: cluster.into(),
            arn: format!("arn:aws:ec2:eu-west-1:123456789012:instance/{id}"),
            instance_type: "m6i.large".into(),
            spot: true,
            launched: Some("2026-11-20T20:00:00Z".parse().expect("time")),
            tags: t,
        }
    }

    #[test]
    fn a_leftover_instance_is_aged_and_priced_by_its_vcpus() {
        let now: Timestamp = "2026-11-23T08:00:00Z".parse().expect("now");
        let l = instance_leftover(&instance("i-1", "staging", &[]), 0.048, now);
        assert_eq!(l.kind, "karpenter-instance");
        assert_eq!(l.age_days, Some(2.5));
        // 2 vCPU × $0.048 × 24 h
        assert!((l.daily_cost_usd - 2.304).abs() < 1e-9, "{l:?}");
        assert_eq!(
            l.detail,
            "m6i.large spot, NodePool `spot` (2 vCPU priced at the general-purpose on-demand rate, an estimate)"
        );
    }

    #[test]
    fn untagged_instances_per_karpenter_cluster() {
        let instances = [
            instance("i-1", "staging", &[("fleet:cluster", "staging")]),
            instance("i-2", "staging", &[]),
            instance("i-3", "staging", &[("fleet:cluster", "prod")]),
            instance("i-4", "other", &[]),
        ];
        let t = tagging(
            &instances,
            &["staging".into(), "quiet".into()],
            "fleet:cluster",
        );
        assert_eq!(
            t,
            vec![KarpenterTagging {
                cluster: "staging".into(),
                instances: 3,
                untagged: vec!["i-2".into(), "i-3".into()],
            }]
        );
    }
}
