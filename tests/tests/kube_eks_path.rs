//! The production Kubernetes path, end to end: `KubeConnector::new(sdk, None)` (no
//! `FLEET_KUBE_API_URL` shortcut) makes the EKS token from the SDK's credentials and
//! trusts the cluster CA from DescribeCluster's `certificateAuthority.data`; the fake API
//! in EKS mode serves HTTPS with its own CA and lets a request in only when the token's
//! presigned STS GetCallerIdentity, sent to moto, names the caller.

use aws_sdk_eks::operation::describe_cluster::DescribeClusterOutput;
use aws_sdk_eks::types::{Certificate, Cluster, ClusterStatus};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::kube::{kube_error, ClusterAccess, KubeConnector};
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_shared::FleetError;
use fleet_tests::eks_auth::moto_iam_user;
use fleet_tests::fakes::kube::FakeKube;
use fleet_tests::fakes::slack::FakeSlack;
use fleet_tests::{moto, sdk_with_credentials, state_table, unique, workspace_root};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ListParams, Patch, PatchParams};
use kube::Api;
use serde_json::{json, Value};

/// An EKS-mode fake for a new cluster, the SDK config of a moto IAM user who calls it,
/// and that user's ARN.
async fn cluster() -> (FakeKube, String, aws_types::SdkConfig, String) {
    let name = unique("eks-path");
    let (credentials, arn) = moto_iam_user(&moto().endpoint, &unique("drainer")).await;
    let sdk = sdk_with_credentials(credentials);
    let kube = FakeKube::start_eks(&name, &sdk).await;
    (kube, name, sdk, arn)
}

fn access(kube: &FakeKube, name: &str, ca_data: String) -> ClusterAccess {
    ClusterAccess {
        name: name.to_string(),
        endpoint: kube.url.clone(),
        ca_data: Some(ca_data),
        place: fleet_shared::place::Place {
            account: None,
            region: "eu-west-1".into(),
        },
    }
}

/// Reads and a server-side apply through the production connector: every request went
/// over TLS with the token, and STS (moto) was asked once, naming the SDK's user.
#[tokio::test]
async fn the_production_connector_lists_and_applies_over_tls_with_an_eks_token() {
    let (kube, name, sdk, arn) = cluster().await;
    let connector = KubeConnector::new(&sdk, None);
    let client = connector
        .client(&access(&kube, &name, kube.ca_data()))
        .await
        .expect("client");
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("namespaces over TLS");
    let mut names: Vec<String> = namespaces
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, vec!["default", "kube-system"]);
    let config_maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let applied = config_maps
        .patch(
            "fleet-probe",
            &PatchParams::apply("fleet").force(),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "fleet-probe", "namespace": "default"},
                "data": {"path": "eks"},
            })),
        )
        .await
        .expect("server-side apply over TLS");
    assert_eq!(applied.data.unwrap_or_default()["path"], "eks");
    let stored = kube
        .get("v1", "ConfigMap", "default", "fleet-probe")
        .expect("stored");
    assert_eq!(stored["data"]["path"], "eks");
    assert_eq!(kube.requests().len(), 2, "both requests reached the API");
    assert!(kube.rejections().is_empty(), "{:?}", kube.rejections());
    assert_eq!(kube.authenticated_arns(), vec![arn]);
}

/// A CA that did not sign the server's certificate: the request fails with an error that
/// names the certificate problem (no panic, no request reaches the API).
#[tokio::test]
async fn a_connector_with_the_wrong_ca_fails_with_a_tls_error() {
    let (kube, name, sdk, _) = cluster().await;
    let stranger = FakeKube::start_eks("stranger", &sdk).await;
    let connector = KubeConnector::new(&sdk, None);
    let client = connector
        .client(&access(&kube, &name, stranger.ca_data()))
        .await
        .expect("a client is built; TLS is checked on connect");
    let err = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .expect_err("untrusted certificate");
    let err = kube_error(err);
    let FleetError::Kube {
        status, message, ..
    } = &err
    else {
        panic!("not a Kubernetes error: {err:?}");
    };
    assert_eq!(*status, 0, "{err}");
    assert!(
        message.contains("certificate") && message.contains("UnknownIssuer"),
        "the message names the certificate problem: {message}"
    );
    assert!(kube.requests().is_empty());
    assert!(kube.authenticated_arns().is_empty());
}

/// A token for another cluster (DescribeCluster named one cluster, the endpoint is
/// another's): the API answers 401 Unauthorized, and the connector says so.
#[tokio::test]
async fn a_token_for_another_cluster_is_unauthorized() {
    let (kube, _, sdk, _) = cluster().await;
    let connector = KubeConnector::new(&sdk, None);
    let client = connector
        .client(&access(&kube, "another-cluster", kube.ca_data()))
        .await
        .expect("client");
    let err = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .expect_err("401");
    match kube_error(err) {
        FleetError::Kube { status, reason, .. } => {
            assert_eq!((status, reason.as_str()), (401, "Unauthorized"))
        }
        other => panic!("{other:?}"),
    }
    assert!(kube.rejections()[0].contains("SignatureDoesNotMatch"));
}

/// The spot-drainer's handler, as deployed: EKS's DescribeCluster (here a mocked EKS
/// client) gives the fake's endpoint and CA, the handler's connector has no local URL,
/// and the drain (list nodes, cordon, evict) goes over TLS with the EKS token.
#[tokio::test]
async fn the_spot_drainer_drains_through_the_production_path() {
    let (kube, name, sdk, arn) = cluster().await;
    const INSTANCE: &str = "i-1234567890abcdef0";
    const NODE: &str = "ip-10-0-1-23.eu-west-1.compute.internal";
    kube.insert(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE},
        "spec": {"providerID": format!("aws:///eu-west-1b/{INSTANCE}")}
    }));
    kube.insert(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "default",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs"}]},
        "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "nginx"}], "terminationGracePeriodSeconds": 1},
        "status": {"phase": "Running"}
    }));
    let (n, endpoint, ca) = (name.clone(), kube.url.clone(), kube.ca_data());
    let describe = mock!(aws_sdk_eks::Client::describe_cluster).then_output(move || {
        DescribeClusterOutput::builder()
            .cluster(
                Cluster::builder()
                    .name(&n)
                    .status(ClusterStatus::Active)
                    .endpoint(&endpoint)
                    .certificate_authority(Certificate::builder().data(&ca).build())
                    .build(),
            )
            .build()
    });
    let eks = mock_client!(aws_sdk_eks, RuleMode::MatchAny, &[&describe]);
    let bus = unique("fleet-bus");
    let config = format!(
        r#"
[fleet]
region = "eu-west-1"
event_bus = "{bus}"
[[cluster]]
name = "{name}"
uptime = "daily 00:00-24:00 UTC"
[cluster.blueprint]
version = "1.32"
role_arn = "arn:aws:iam::123456789012:role/eks-cluster"
subnet_ids = ["subnet-a", "subnet-b"]
"#
    );
    let slack = FakeSlack::start().await;
    let store = state_table(&sdk).await;
    let mut drainer = spot_drainer::Drainer::new(
        std::sync::Arc::new(fleet_shared::place::Places::hub_only(&sdk)),
        FleetConfig::parse(&config).expect("config"),
        store.table(),
        Notifier::new(Some(Secret::new(slack.url.clone()))),
        KubeConnector::new(&sdk, None),
    );
    // DescribeCluster from the mocked client: the fake's endpoint and CA.
    drainer.eks = fleet_shared::place::PerPlace::new(
        std::sync::Arc::new(fleet_shared::place::Places::hub_only(&sdk)),
        move |_| eks.clone(),
    );
    let path = workspace_root().join("events/spot-interruption.json");
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
    event["time"] = json!(jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string());
    event["id"] = json!(unique("event"));
    let report = drainer
        .handle(event, Invocation::at(jiff::Timestamp::now()))
        .await
        .expect("handler");
    assert_eq!(report["status"], "drained", "{report}");
    assert_eq!(report["cluster"], name.as_str());
    assert_eq!(report["evicted"], 1, "{report}");
    let node = kube.get("v1", "Node", "", NODE).expect("node");
    assert_eq!(node["spec"]["unschedulable"], true);
    assert!(kube
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path.ends_with("/pods/web-1/eviction")));
    assert!(kube.rejections().is_empty(), "{:?}", kube.rejections());
    assert_eq!(kube.authenticated_arns(), vec![arn]);
}
