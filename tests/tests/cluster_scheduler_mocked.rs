//! cluster-scheduler paths moto cannot play: EKS add-ons (moto lacks them), clusters and
//! nodegroups in CREATING or CREATE_FAILED, quota errors and throttling. EKS answers come
//! from aws-smithy-mocks; the state table, the bus and Slack are real (moto, fake Slack).

use aws_sdk_eks::error::ErrorMetadata;
use aws_sdk_eks::operation::create_addon::CreateAddonOutput;
use aws_sdk_eks::operation::create_cluster::CreateClusterError;
use aws_sdk_eks::operation::create_nodegroup::CreateNodegroupOutput;
use aws_sdk_eks::operation::delete_nodegroup::DeleteNodegroupOutput;
use aws_sdk_eks::operation::describe_cluster::{DescribeClusterError, DescribeClusterOutput};
use aws_sdk_eks::operation::describe_nodegroup::DescribeNodegroupOutput;
use aws_sdk_eks::operation::list_addons::ListAddonsOutput;
use aws_sdk_eks::operation::list_nodegroups::ListNodegroupsOutput;
use aws_sdk_eks::types::{
    Cluster, ClusterStatus, Issue, Nodegroup, NodegroupHealth, NodegroupIssueCode,
    NodegroupScalingConfig, NodegroupStatus, ResolveConflicts,
};
use aws_sdk_eks::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::DateTime;
use cluster_scheduler::Scheduler;
use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_tests::fakes::slack::FakeSlack;
use fleet_tests::{sdk, state_table, unique, BusTap};
use jiff::Timestamp;
use serde_json::{json, Value};

fn config_with(bus: &str, names: &[&str], blueprint_extra: &str) -> FleetConfig {
    let mut text = format!("[fleet]\nregion = \"eu-west-1\"\nevent_bus = \"{bus}\"\n");
    for name in names {
        text.push_str(&format!(
            r#"
[[cluster]]
name = "{name}"
uptime = "Mon-Fri 08:00-20:00 Europe/Berlin"
[cluster.blueprint]
version = "1.32"
role_arn = "arn:aws:iam::123456789012:role/eks-cluster"
subnet_ids = ["subnet-a", "subnet-b"]
{blueprint_extra}
[[cluster.blueprint.nodegroup]]
name = "spot"
capacity_type = "SPOT"
instance_types = ["t3.large"]
node_role_arn = "arn:aws:iam::123456789012:role/eks-node"
min_size = 1
max_size = 3
desired_size = 2
[[cluster.blueprint.addon]]
name = "vpc-cni"
[[cluster.blueprint.addon]]
name = "coredns"
version = "v1.11.4-eksbuild.2"
"#
        ));
    }
    FleetConfig::parse(&text).expect("config")
}

struct Fixture {
    scheduler: Scheduler,
    tap: BusTap,
    slack: FakeSlack,
}

async fn fixture(names: &[&str], rules: &[&Rule]) -> Fixture {
    fixture_with(names, rules, "").await
}

async fn fixture_with(names: &[&str], rules: &[&Rule], blueprint_extra: &str) -> Fixture {
    let sdk = sdk();
    let bus = unique("fleet-bus");
    let tap = BusTap::new(&sdk, &bus).await;
    let slack = FakeSlack::start().await;
    let eks: Client = mock_client!(aws_sdk_eks, RuleMode::MatchAny, rules, |c| c
        .retry_config(aws_sdk_eks::config::retry::RetryConfig::disabled()));
    let store = state_table(&sdk).await;
    let mut scheduler = Scheduler::new(
        std::sync::Arc::new(fleet_shared::place::Places::hub_only(&sdk)),
        config_with(&bus, names, blueprint_extra),
        fleet_shared::startup::LOCAL_STACK,
        store.table(),
        Notifier::new(Some(Secret::new(slack.url.clone()))),
        fleet_shared::kube::KubeConnector::new(&sdk, None),
    );
    // EKS answers from the mocked client's rules.
    scheduler.use_eks(eks);
    // As if each cluster's CreateCluster had been sent with MOCK_TOKEN, which the mocked
    // DescribeCluster answers show: the incarnations are the fleet's own.
    for name in names {
        scheduler
            .store
            .creation_token(name, &Default::default(), MOCK_TOKEN)
            .await
            .expect("creation token");
    }
    Fixture {
        scheduler,
        tap,
        slack,
    }
}

const MONDAY_NOON: &str = "2026-11-23T11:00:00Z";

fn at(s: &str) -> Timestamp {
    s.parse().expect("ts")
}

async fn tick(f: &Fixture, when: &str) -> Value {
    f.scheduler
        .handle(json!({"action": "reconcile"}), Invocation::at(at(when)))
        .await
        .expect("handler")
}

/// The error metadata a real EKS error response carries (the code the SDK reads).
fn meta(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).build()
}

/// The `clientRequestToken` the mocked clusters were created with (see `fixture_with`).
const MOCK_TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn active_cluster(name: &str) -> Cluster {
    Cluster::builder()
        .client_request_token(MOCK_TOKEN)
        .name(name)
        .status(ClusterStatus::Active)
        .endpoint(format!("https://{name}.eks.example"))
        .created_at(DateTime::from_secs(1_790_000_000))
        .tags("fleet:managed-by", "infra-fleet")
        .tags("fleet:cluster", name)
        .build()
}

/// EKS answers for a cluster whose nodegroup `spot` is ACTIVE and whose add-ons are in.
fn nodegroup_and_addons_ready() -> [Rule; 3] {
    [
        mock!(Client::list_nodegroups)
            .then_output(|| ListNodegroupsOutput::builder().nodegroups("spot").build()),
        mock!(Client::describe_nodegroup).then_output(|| {
            DescribeNodegroupOutput::builder()
                .nodegroup(nodegroup(NodegroupStatus::Active))
                .build()
        }),
        mock!(Client::list_addons).then_output(|| {
            ListAddonsOutput::builder()
                .addons("vpc-cni")
                .addons("coredns")
                .build()
        }),
    ]
}

fn nodegroup(status: NodegroupStatus) -> Nodegroup {
    Nodegroup::builder()
        .nodegroup_name("spot")
        .status(status)
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(1)
                .max_size(3)
                .desired_size(2)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn add_ons_bracket_the_nodegroups_then_ready_is_published() {
    let name = unique("addons");
    let n = name.clone();
    let describe = mock!(Client::describe_cluster).then_output(move || {
        DescribeClusterOutput::builder()
            .cluster(active_cluster(&n))
            .build()
    });
    // Tick by tick: nodegroups [], [spot], [spot]; add-ons [], [vpc-cni], [vpc-cni, coredns]
    // (the add-on nodes need and the nodegroups go in the same tick).
    let list_ng = mock!(Client::list_nodegroups)
        .sequence()
        .output(|| ListNodegroupsOutput::builder().build())
        .output(|| ListNodegroupsOutput::builder().nodegroups("spot").build())
        .repeatedly()
        .build();
    let list_addons = mock!(Client::list_addons)
        .sequence()
        .output(|| ListAddonsOutput::builder().build())
        .output(|| ListAddonsOutput::builder().addons("vpc-cni").build())
        .output(|| {
            ListAddonsOutput::builder()
                .addons("vpc-cni")
                .addons("coredns")
                .build()
        })
        .repeatedly()
        .build();
    let describe_ng = mock!(Client::describe_nodegroup).then_output(|| {
        DescribeNodegroupOutput::builder()
            .nodegroup(nodegroup(NodegroupStatus::Active))
            .build()
    });
    let n = name.clone();
    let create_vpc_cni = mock!(Client::create_addon)
        .match_requests(move |r| {
            r.cluster_name() == Some(n.as_str())
                && r.addon_name() == Some("vpc-cni")
                && r.resolve_conflicts() == Some(&ResolveConflicts::Overwrite)
                && r.tags()
                    .and_then(|t| t.get("fleet:managed-by"))
                    .map(String::as_str)
                    == Some("infra-fleet")
        })
        .then_output(|| CreateAddonOutput::builder().build());
    let create_coredns = mock!(Client::create_addon)
        .match_requests(|r| {
            r.addon_name() == Some("coredns") && r.addon_version() == Some("v1.11.4-eksbuild.2")
        })
        .then_output(|| CreateAddonOutput::builder().build());
    let create_ng = mock!(Client::create_nodegroup)
        .match_requests(|r| {
            r.nodegroup_name() == Some("spot")
                && r.capacity_type().map(|c| c.as_str()) == Some("SPOT")
                && r.scaling_config().and_then(|s| s.desired_size) == Some(2)
                && r.subnets() == ["subnet-a", "subnet-b"]
        })
        .then_output(|| CreateNodegroupOutput::builder().build());
    let f = fixture(
        &[&name],
        &[
            &describe,
            &list_ng,
            &list_addons,
            &describe_ng,
            &create_vpc_cni,
            &create_coredns,
            &create_ng,
        ],
    )
    .await;

    let steps: Vec<String> = {
        let mut s = Vec::new();
        for _ in 0..4 {
            let r = tick(&f, MONDAY_NOON).await;
            s.push(
                r["clusters"][0]["step"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        s
    };
    assert_eq!(
        steps,
        vec![
            "create-addons vpc-cni; then create-nodegroups spot",
            "create-addons coredns",
            "announce-ready",
            "none"
        ]
    );
    assert_eq!(create_vpc_cni.num_calls(), 1);
    assert_eq!(create_ng.num_calls(), 1);
    assert_eq!(create_coredns.num_calls(), 1);
    let events = f.tap.drain().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail-type"], "Cluster Ready");
    assert_eq!(
        events[0]["detail"]["endpoint"],
        format!("https://{name}.eks.example")
    );
}

#[tokio::test]
async fn a_creating_cluster_is_waited_for_not_blocked_on() {
    let name = unique("creating");
    let n = name.clone();
    let describe = mock!(Client::describe_cluster).then_output(move || {
        let mut c = active_cluster(&n);
        c.status = Some(ClusterStatus::Creating);
        DescribeClusterOutput::builder().cluster(c).build()
    });
    let list_ng =
        mock!(Client::list_nodegroups).then_output(|| ListNodegroupsOutput::builder().build());
    let list_addons =
        mock!(Client::list_addons).then_output(|| ListAddonsOutput::builder().build());
    let f = fixture(&[&name], &[&describe, &list_ng, &list_addons]).await;
    let r = tick(&f, MONDAY_NOON).await;
    assert_eq!(r["clusters"][0]["step"], "wait: the cluster is CREATING");
    assert_eq!(r["clusters"][0]["result"], "waiting");
}

#[tokio::test]
async fn a_quota_error_is_recorded_published_and_sent_once() {
    let name = unique("quota");
    let absent = mock!(Client::describe_cluster).then_error(|| {
        DescribeClusterError::ResourceNotFoundException(
            aws_sdk_eks::types::error::ResourceNotFoundException::builder()
                .meta(meta("ResourceNotFoundException"))
                .message("No cluster found")
                .build(),
        )
    });
    let create = mock!(Client::create_cluster).then_error(|| {
        CreateClusterError::ResourceLimitExceededException(
            aws_sdk_eks::types::error::ResourceLimitExceededException::builder()
                .meta(meta("ResourceLimitExceededException"))
                .message("Cluster limit exceeded for account")
                .build(),
        )
    });
    let f = fixture(&[&name], &[&absent, &create]).await;

    let first = tick(&f, "2026-11-23T07:00:00Z").await;
    let c = &first["clusters"][0];
    assert_eq!(c["result"], "failed");
    assert!(c["error"]
        .as_str()
        .is_some_and(|e| e.contains("ResourceLimitExceededException")));
    let events = f.tap.drain().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail-type"], "Cluster Transition Failed");
    assert_eq!(events[0]["detail"]["step"], "create-cluster");
    assert_eq!(f.slack.texts().len(), 1);
    assert!(
        f.slack.texts()[0].contains("Cluster limit exceeded"),
        "{:?}",
        f.slack.texts()
    );

    // Inside the backoff: no EKS call at all.
    let calls = create.num_calls();
    let second = tick(&f, "2026-11-23T07:01:00Z").await;
    assert_eq!(second["clusters"][0]["result"], "backoff");
    assert_eq!(create.num_calls(), calls);

    // After it: tried again, fails the same way, and humans are not told twice.
    let third = tick(&f, "2026-11-23T07:10:00Z").await;
    assert_eq!(third["clusters"][0]["result"], "failed");
    assert_eq!(create.num_calls(), calls + 1);
    assert!(f.tap.drain().await.is_empty());
    assert_eq!(f.slack.texts().len(), 1);
}

#[tokio::test]
async fn throttling_backs_off_quietly_and_spares_the_other_clusters() {
    let (slow, fine) = (unique("throttled"), unique("fine"));
    let s = slow.clone();
    let throttled = mock!(Client::describe_cluster)
        .match_requests(move |r| r.name() == Some(s.as_str()))
        .then_error(|| {
            DescribeClusterError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
    let (fine_match, fine_out) = (fine.clone(), fine.clone());
    let ok = mock!(Client::describe_cluster)
        .match_requests(move |r| r.name() == Some(fine_match.as_str()))
        .then_output(move || {
            DescribeClusterOutput::builder()
                .cluster(active_cluster(&fine_out))
                .build()
        });
    let [list_ng, describe_ng, list_addons] = nodegroup_and_addons_ready();
    let f = fixture(
        &[&slow, &fine],
        &[&throttled, &ok, &list_ng, &describe_ng, &list_addons],
    )
    .await;
    let r = tick(&f, MONDAY_NOON).await;
    let by_name = |n: &str| {
        r["clusters"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == n).cloned())
            .expect("cluster")
    };
    assert_eq!(by_name(&slow)["result"], "backoff");
    assert!(by_name(&slow)["error"]
        .as_str()
        .is_some_and(|e| e.contains("ThrottlingException")));
    assert_eq!(by_name(&fine)["result"], "done");
    assert_eq!(by_name(&fine)["step"], "announce-ready");
    let events = f.tap.drain().await;
    assert_eq!(
        events.len(),
        1,
        "only the fine cluster's Ready, no failure event"
    );
    assert!(f.slack.texts().is_empty(), "throttling pages nobody");
}

#[tokio::test]
async fn a_create_failed_nodegroup_is_reported_and_replaced() {
    let name = unique("ngfail");
    let n = name.clone();
    let describe = mock!(Client::describe_cluster).then_output(move || {
        DescribeClusterOutput::builder()
            .cluster(active_cluster(&n))
            .build()
    });
    let list_ng = mock!(Client::list_nodegroups)
        .sequence()
        .output(|| ListNodegroupsOutput::builder().nodegroups("spot").build())
        .output(|| ListNodegroupsOutput::builder().build())
        .repeatedly()
        .build();
    let describe_ng = mock!(Client::describe_nodegroup).then_output(|| {
        let mut ng = nodegroup(NodegroupStatus::CreateFailed);
        ng.health = Some(
            NodegroupHealth::builder()
                .issues(
                    Issue::builder()
                        .code(NodegroupIssueCode::AsgInstanceLaunchFailures)
                        .message("Could not launch Spot Instances. InsufficientInstanceCapacity")
                        .build(),
                )
                .build(),
        );
        DescribeNodegroupOutput::builder().nodegroup(ng).build()
    });
    let list_addons = mock!(Client::list_addons)
        .then_output(|| ListAddonsOutput::builder().addons("vpc-cni").build());
    let delete_ng = mock!(Client::delete_nodegroup)
        .match_requests(|r| r.nodegroup_name() == Some("spot"))
        .then_output(|| DeleteNodegroupOutput::builder().build());
    let create_ng =
        mock!(Client::create_nodegroup).then_output(|| CreateNodegroupOutput::builder().build());
    let f = fixture(
        &[&name],
        &[
            &describe,
            &list_ng,
            &describe_ng,
            &list_addons,
            &delete_ng,
            &create_ng,
        ],
    )
    .await;

    let first = tick(&f, "2026-11-23T07:00:00Z").await;
    assert_eq!(
        first["clusters"][0]["step"],
        "delete-failed-nodegroups spot"
    );
    assert_eq!(delete_ng.num_calls(), 1);
    let events = f.tap.drain().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail-type"], "Cluster Transition Failed");
    assert!(events[0]["detail"]["error"]
        .as_str()
        .is_some_and(|e| e.contains("InsufficientInstanceCapacity")));
    assert_eq!(f.slack.texts().len(), 1);

    // After the backoff the nodegroup is gone and gets recreated.
    let later = tick(&f, "2026-11-23T07:30:00Z").await;
    assert_eq!(later["clusters"][0]["step"], "create-nodegroups spot");
    assert_eq!(create_ng.num_calls(), 1);
}

#[tokio::test]
async fn slack_down_never_fails_the_work() {
    let name = unique("slackdown");
    let absent = mock!(Client::describe_cluster).then_error(|| {
        DescribeClusterError::ResourceNotFoundException(
            aws_sdk_eks::types::error::ResourceNotFoundException::builder()
                .meta(meta("ResourceNotFoundException"))
                .build(),
        )
    });
    let create = mock!(Client::create_cluster).then_error(|| {
        CreateClusterError::UnsupportedAvailabilityZoneException(
            aws_sdk_eks::types::error::UnsupportedAvailabilityZoneException::builder()
                .meta(meta("UnsupportedAvailabilityZoneException"))
                .message("us-east-1e has no capacity")
                .build(),
        )
    });
    let f = fixture(&[&name], &[&absent, &create]).await;
    f.slack.fail_with(Some(500));
    let r = tick(&f, "2026-11-23T07:00:00Z").await;
    assert_eq!(r["clusters"][0]["result"], "failed");
    // The failure still reached the bus.
    assert_eq!(f.tap.drain().await.len(), 1);
}

#[tokio::test]
async fn access_entries_are_created_with_their_policy_cluster_wide() {
    use aws_sdk_eks::operation::associate_access_policy::AssociateAccessPolicyOutput;
    use aws_sdk_eks::operation::create_access_entry::{
        CreateAccessEntryError, CreateAccessEntryOutput,
    };
    use aws_sdk_eks::operation::list_access_entries::ListAccessEntriesOutput;
    use aws_sdk_eks::types::AccessScopeType;

    let name = unique("access");
    let n = name.clone();
    let describe = mock!(Client::describe_cluster).then_output(move || {
        DescribeClusterOutput::builder()
            .cluster(active_cluster(&n))
            .build()
    });
    let list_ng =
        mock!(Client::list_nodegroups).then_output(|| ListNodegroupsOutput::builder().build());
    let list_addons =
        mock!(Client::list_addons).then_output(|| ListAddonsOutput::builder().build());
    // The drainer's role already has an entry (a rerun after a crash): it converges.
    let list_access = mock!(Client::list_access_entries)
        .then_output(|| ListAccessEntriesOutput::builder().build());
    let create_dns = mock!(Client::create_access_entry)
        .match_requests(|r| r.principal_arn() == Some("arn:aws:iam::123456789012:role/dns-updater"))
        .then_output(|| CreateAccessEntryOutput::builder().build());
    let create_drainer = mock!(Client::create_access_entry)
        .match_requests(|r| {
            r.principal_arn() == Some("arn:aws:iam::123456789012:role/spot-drainer")
        })
        .then_error(|| {
            CreateAccessEntryError::ResourceInUseException(
                aws_sdk_eks::types::error::ResourceInUseException::builder()
                    .meta(meta("ResourceInUseException"))
                    .message(
                        "The specified access entry resource is already in use on this cluster.",
                    )
                    .build(),
            )
        });
    let associate_view = mock!(Client::associate_access_policy)
        .match_requests(|r| {
            r.principal_arn() == Some("arn:aws:iam::123456789012:role/dns-updater")
                && r.policy_arn()
                    == Some("arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy")
                && r.access_scope().and_then(|s| s.r#type()) == Some(&AccessScopeType::Cluster)
        })
        .then_output(|| AssociateAccessPolicyOutput::builder().build());
    let associate_edit = mock!(Client::associate_access_policy)
        .match_requests(|r| {
            r.principal_arn() == Some("arn:aws:iam::123456789012:role/spot-drainer")
                && r.policy_arn()
                    == Some("arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy")
        })
        .then_output(|| AssociateAccessPolicyOutput::builder().build());
    // A node role: its type, no groups, no user name, and no policy (EKS refuses one).
    let create_node = mock!(Client::create_access_entry)
        .match_requests(|r| {
            r.principal_arn() == Some("arn:aws:iam::123456789012:role/karpenter-node")
                && r.r#type() == Some("EC2_LINUX")
                && r.kubernetes_groups().is_empty()
                && r.username().is_none()
        })
        .then_output(|| CreateAccessEntryOutput::builder().build());
    // The add-ons nodes need, then the nodegroups, follow in the same tick.
    let create_addon = mock!(Client::create_addon)
        .then_output(|| aws_sdk_eks::operation::create_addon::CreateAddonOutput::builder().build());
    let create_nodegroup = mock!(Client::create_nodegroup).then_output(|| {
        aws_sdk_eks::operation::create_nodegroup::CreateNodegroupOutput::builder().build()
    });
    let f = fixture_with(
        &[&name],
        &[
            &describe,
            &list_ng,
            &list_addons,
            &list_access,
            &create_dns,
            &create_drainer,
            &associate_view,
            &associate_edit,
            &create_node,
            &create_addon,
            &create_nodegroup,
        ],
        r#"access = [
  { principal_arn = "arn:aws:iam::123456789012:role/dns-updater", policy = "AmazonEKSViewPolicy" },
  { principal_arn = "arn:aws:iam::123456789012:role/spot-drainer", policy = "AmazonEKSEditPolicy" },
  { principal_arn = "arn:aws:iam::123456789012:role/karpenter-node", type = "EC2_LINUX" },
]"#,
    )
    .await;
    let r = tick(&f, MONDAY_NOON).await;
    assert_eq!(
        r["clusters"][0]["step"],
        "create-access-entries arn:aws:iam::123456789012:role/dns-updater,arn:aws:iam::123456789012:role/spot-drainer,arn:aws:iam::123456789012:role/karpenter-node; then create-addons vpc-cni; then create-nodegroups spot"
    );
    assert_eq!(r["clusters"][0]["result"], "done");
    assert_eq!(create_dns.num_calls(), 1);
    assert_eq!(create_drainer.num_calls(), 1);
    assert_eq!(create_node.num_calls(), 1);
    assert_eq!(associate_view.num_calls(), 1);
    assert_eq!(associate_edit.num_calls(), 1, "and none for the node role");
    assert_eq!(create_addon.num_calls(), 1);
    assert_eq!(create_nodegroup.num_calls(), 1);
}

#[tokio::test]
async fn a_transition_recorded_but_never_published_is_published_once_later() {
    let name = unique("crashed");
    let n = name.clone();
    let describe = mock!(Client::describe_cluster).then_output(move || {
        DescribeClusterOutput::builder()
            .cluster(active_cluster(&n))
            .build()
    });
    let [list_ng, describe_ng, list_addons] = nodegroup_and_addons_ready();
    let f = fixture(&[&name], &[&describe, &list_ng, &describe_ng, &list_addons]).await;
    // A tick recorded Ready at 11:00 and died before publishing.
    let recorded = f
        .scheduler
        .store
        .record_transition(
            &name,
            fleet_shared::schedule::Desired::Up,
            "1790000000",
            at("2026-11-23T11:00:00Z"),
            "ready",
        )
        .await
        .expect("record");
    assert!(recorded);
    // A minute later that announcement might still be in flight: not published twice.
    let soon = tick(&f, "2026-11-23T11:01:00Z").await;
    assert_eq!(soon["clusters"][0]["step"], "announce-ready");
    assert!(f.tap.drain().await.is_empty());
    // Later it is stale: published once, then steady.
    tick(&f, "2026-11-23T11:05:00Z").await;
    tick(&f, "2026-11-23T11:05:00Z").await;
    let events = f.tap.drain().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail-type"], "Cluster Ready");
    assert_eq!(
        tick(&f, "2026-11-23T11:10:00Z").await["clusters"][0]["result"],
        "steady"
    );
}
