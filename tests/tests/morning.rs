//! The morning brings back a working platform (issue "identities, secrets, readiness"):
//! typed access entries, Pod Identity associations, IRSA trust moved to each new OIDC
//! issuer, Flux's deploy key and SOPS's age key applied before any manifest, and
//! `Cluster Ready` only once the listed objects are ready (or `degraded` after the
//! timeout). moto serves EKS (access entries and Pod Identity through the stand-in in
//! `tests/support/moto_server.py`), IAM, Secrets Manager and SSM; the fake Kubernetes API
//! plays Flux's and the Deployment controller's part (`ready_after_reads`).

use fleet_tests::fakes::kube::FakeKube;
use fleet_tests::fixtures::scheduler::{cluster_toml, detail_types, outcome, ts, SchedulerFixture};
use fleet_tests::{unique, workspace_root};
use serde_json::{json, Value};

const WEEKDAYS: &str = "Mon-Fri 08:00-20:00 Europe/Berlin";
const CANARY: &str = "CANARY-7f3a9c";

fn fixture_path(name: &str) -> String {
    workspace_root()
        .join("tests/fixtures/bootstrap")
        .join(name)
        .display()
        .to_string()
}

/// An IRSA trust policy for `host` (an issuer's host path), with an EC2 statement beside.
fn irsa_trust(host: &str, service_account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole"
            },
            {
                "Effect": "Allow",
                "Principal": {"Federated": format!("arn:aws:iam::123456789012:oidc-provider/{host}")},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    format!("{host}:sub"): format!("system:serviceaccount:{service_account}"),
                    format!("{host}:aud"): "sts.amazonaws.com"
                }}
            }
        ]
    })
}

async fn trust_of(iam: &aws_sdk_iam::Client, role: &str) -> Value {
    let doc = iam
        .get_role()
        .role_name(role)
        .send()
        .await
        .expect("get role")
        .role
        .and_then(|r| r.assume_role_policy_document)
        .expect("trust policy");
    serde_json::from_str(&doc).unwrap_or_else(|_| {
        let decoded = percent_encoding::percent_decode_str(&doc).decode_utf8_lossy();
        serde_json::from_str(&decoded).expect("trust policy JSON")
    })
}

/// The cluster's OIDC issuer URL, as EKS shows it.
async fn issuer_of(eks: &aws_sdk_eks::Client, name: &str) -> String {
    eks.describe_cluster()
        .name(name)
        .send()
        .await
        .expect("cluster")
        .cluster
        .and_then(|c| c.identity)
        .and_then(|i| i.oidc)
        .and_then(|o| o.issuer)
        .expect("issuer")
}

struct Platform {
    f: SchedulerFixture,
    name: String,
    iam: aws_sdk_iam::Client,
    alb_role: String,
    other_role: String,
}

/// A fleet with one cluster whose blueprint has every part of the morning; `ready_when`
/// and its timeout as given.
async fn platform(ready_when: &str) -> Platform {
    let sdk = fleet_tests::sdk();
    let iam = aws_sdk_iam::Client::new(&sdk);
    // The roles, trusting a provider of this region that is gone (the cluster Terraform
    // destroyed before the fleet took over): the fleet never recorded it, so the listed one
    // is moved only once it trusts an issuer the fleet recorded; the other is never touched.
    let old = format!(
        "oidc.eks.eu-west-1.amazonaws.com/id/{}",
        unique("OLD").to_uppercase().replace('-', "")
    );
    let alb_role = unique("alb-controller");
    let other_role = unique("someone-elses");
    for (role, sa) in [
        (&alb_role, "kube-system:aws-load-balancer-controller"),
        (&other_role, "x:y"),
    ] {
        iam.create_role()
            .role_name(role.as_str())
            .assume_role_policy_document(irsa_trust(&old, sa).to_string())
            .send()
            .await
            .expect("role");
    }
    // Flux's deploy key (a JSON object: the Secret's keys) and SOPS's age key (a string).
    let deploy_key = unique("fleet/flux-deploy-key");
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&deploy_key)
        .secret_string(
            json!({"identity": format!("-----BEGIN OPENSSH PRIVATE KEY-----{CANARY}"), "identity.pub": "ssh-ed25519 AAAA", "known_hosts": "github.com ssh-ed25519 AAAA"}).to_string(),
        )
        .send()
        .await
        .expect("secret");
    let age = format!("/{}", unique("fleet/sops-age"));
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&age)
        .value(format!("AGE-SECRET-KEY-1{CANARY}"))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("parameter");
    let extra = format!(
        r#"access = [
  {{ principal_arn = "arn:aws:iam::123456789012:role/fleet-spot-drainer", policy = "AmazonEKSClusterAdminPolicy" }},
  {{ principal_arn = "arn:aws:iam::123456789012:role/karpenter-node", type = "EC2_LINUX" }},
]
pod_identity = [
  {{ namespace = "kube-system", service_account = "karpenter", role_arn = "arn:aws:iam::123456789012:role/karpenter-controller" }},
]
irsa_roles = ["arn:aws:iam::123456789012:role/{alb_role}"]
bootstrap_secrets = [
  {{ namespace = "flux-system", name = "flux-system", from = "secretsmanager:{deploy_key}" }},
  {{ namespace = "flux-system", name = "sops-age", from = "ssm:{age}", key = "age.agekey" }},
]
bootstrap = ["{}", "{}"]
{ready_when}

[[cluster.blueprint.addon]]
name = "eks-pod-identity-agent"

[[cluster.blueprint.nodegroup]]
name = "spot""#,
        fixture_path("gotk-components.yaml"),
        fixture_path("gotk-sync.yaml"),
    );
    let table = cluster_toml("destroy", WEEKDAYS, "")
        .replace("[[cluster.blueprint.nodegroup]]\nname = \"spot\"", &extra);
    let f = SchedulerFixture::start(&[table], None).await;
    let name = f.names[0].clone();
    Platform {
        f,
        name,
        iam,
        alb_role,
        other_role,
    }
}

/// What the ingress controller's Deployment looks like once Flux made it: no replica
/// available yet.
fn seed_ingress_deployment(kube: &FakeKube) {
    kube.insert(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingress-nginx"}}),
    );
    kube.insert(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "ingress-nginx"}},
                 "template": {"metadata": {"labels": {"app": "ingress-nginx"}}, "spec": {"containers": [{"name": "controller", "image": "ingress-nginx/controller:v1.12.0"}]}}},
        "status": {"replicas": 2, "availableReplicas": 0}
    }));
}

/// Ticks every 5 minutes from `from` until `Cluster Ready` (at most `limit` ticks);
/// returns `step -> result` per tick, the ready event's detail and the tick responses.
async fn morning(
    p: &Platform,
    from: &str,
    limit: usize,
) -> (Vec<String>, Option<Value>, Vec<Value>) {
    let mut at = ts(from);
    let mut steps = Vec::new();
    let mut responses = Vec::new();
    for _ in 0..limit {
        let r = p.f.tick(at).await;
        let o = outcome(&r, &p.name);
        steps.push(format!(
            "{} -> {}",
            o["step"].as_str().unwrap_or_default(),
            o["result"].as_str().unwrap_or_default()
        ));
        if let Some(e) = o.get("error") {
            eprintln!("{at}: {e}");
        }
        responses.push(r.clone());
        let events = p.f.tap.drain().await;
        if let Some(e) = events.iter().find(|e| e["detail-type"] == "Cluster Ready") {
            return (steps, Some(e["detail"].clone()), responses);
        }
        assert!(detail_types(&events).iter().all(|d| d != "Cluster Ready"));
        at = at.checked_add(jiff::Span::new().minutes(5)).expect("time");
    }
    (steps, None, responses)
}

fn short(step: &str) -> String {
    step.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
        + " -> "
        + step.rsplit(" -> ").next().unwrap_or_default()
}

#[tokio::test]
async fn a_rebuild_comes_back_with_its_identities_secrets_and_a_platform_that_serves() {
    let p = platform(
        r#"ready_when = [
  "kustomize.toolkit.fluxcd.io/v1/Kustomization/flux-system/flux-system",
  "apps/v1/Deployment/ingress-nginx/ingress-nginx-controller",
]
ready_timeout_minutes = 20"#,
    )
    .await;
    let kube = &p.f.kube;
    kube.establish_crds_after_reads(2);
    seed_ingress_deployment(kube);
    // Flux reconciles its Kustomization after a few looks; the controller's pods come up.
    kube.ready_after_reads(
        "kustomize.toolkit.fluxcd.io/v1", "Kustomization", Some("flux-system"), "flux-system", 2,
        json!({"conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied revision: main@sha1:abc"}]}),
    );
    kube.ready_after_reads(
        "apps/v1",
        "Deployment",
        Some("ingress-nginx"),
        "ingress-nginx-controller",
        3,
        json!({"availableReplicas": 2, "readyReplicas": 2}),
    );

    let (steps, ready, responses) = morning(&p, "2026-11-23T07:00:00Z", 12).await;
    // Once ACTIVE, the identities and the add-on nodes need are quick calls: one tick.
    assert!(
        steps[1].starts_with("create-access-entries ")
            && steps[1]
                .contains("; then trust-issuer https://oidc.eks.eu-west-1.amazonaws.com/id/")
            && steps[1].contains("; then associate-pod-identities kube-system/karpenter")
            && steps[1].contains("; then create-addons eks-pod-identity-agent")
            && steps[1].ends_with("; then create-nodegroups spot,system -> done"),
        "{}",
        steps[1]
    );
    let steps: Vec<String> = steps.iter().map(|s| short(s)).collect();
    assert_eq!(
        steps,
        vec![
            "create-cluster -> done",
            "create-access-entries -> done",
            "bootstrap-then-announce -> waiting",
            "bootstrap-then-announce -> waiting",
            "await-ready -> waiting",
            "await-ready -> done",
        ],
        "the morning's steps"
    );
    let ready = ready.expect("Cluster Ready");
    // From the first step (07:00) to the tick that found everything ready (07:25).
    assert_eq!(ready["took_seconds"], 25 * 60, "{ready}");
    assert!(ready.get("degraded").is_none(), "{ready}");
    // While it waited, the tick named what it waited for.
    let waiting = outcome(&responses[4], &p.name)["step"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        waiting.contains("Kustomization flux-system/flux-system")
            && waiting.contains("Deployment ingress-nginx/ingress-nginx-controller"),
        "{waiting}"
    );

    // Access entries with their types; the node role has no policy.
    let eks = &p.f.eks;
    let node = eks
        .describe_access_entry()
        .cluster_name(&p.name)
        .principal_arn("arn:aws:iam::123456789012:role/karpenter-node")
        .send()
        .await
        .expect("node role entry")
        .access_entry
        .expect("entry");
    assert_eq!(node.r#type.as_deref(), Some("EC2_LINUX"));
    assert_eq!(node.kubernetes_groups(), ["system:nodes"]);
    // Pod Identity.
    let associations = eks
        .list_pod_identity_associations()
        .cluster_name(&p.name)
        .send()
        .await
        .expect("associations")
        .associations
        .unwrap_or_default();
    assert_eq!(associations.len(), 1);
    assert_eq!(
        associations[0].service_account.as_deref(),
        Some("karpenter")
    );

    // IRSA, first morning: the role trusts an issuer the fleet never recorded (the
    // cluster Terraform made): it is not the fleet's to guess, so it stays as it was and
    // Slack says what to add. The new issuer's provider is there, the fleet's.
    let issuer = issuer_of(eks, &p.name).await;
    let host = issuer.trim_start_matches("https://").to_string();
    let before = trust_of(&p.iam, &p.alb_role).await;
    assert!(!before.to_string().contains(&host), "{before}");
    let provider_arn = format!("arn:aws:iam::123456789012:oidc-provider/{host}");
    let told = p.f.slack.texts().join("\n");
    assert!(
        told.contains("trust no earlier issuer of this cluster") && told.contains(&provider_arn),
        "{told}"
    );
    p.iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&provider_arn)
        .send()
        .await
        .expect("the new issuer's provider");
    // The operator adds the statement, once.
    p.iam
        .update_assume_role_policy()
        .role_name(&p.alb_role)
        .policy_document(irsa_trust(&host, "kube-system:aws-load-balancer-controller").to_string())
        .send()
        .await
        .expect("the operator's statement");

    // The secrets went in before the first manifest, and their values went nowhere else.
    let applies: Vec<_> = kube
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    let first_secret = applies
        .iter()
        .position(|r| r.path.contains("/secrets/"))
        .expect("secret applied");
    let first_manifest = applies
        .iter()
        .position(|r| r.path.contains("customresourcedefinitions"))
        .expect("a manifest");
    assert!(first_secret < first_manifest, "secrets before any manifest");
    let secret = kube
        .get("v1", "Secret", "flux-system", "flux-system")
        .expect("deploy key");
    assert!(secret["data"]["identity"].is_string() && secret["data"]["known_hosts"].is_string());
    assert!(kube
        .get("v1", "Secret", "flux-system", "sops-age")
        .expect("age")["data"]["age.agekey"]
        .is_string());
    let said = format!("{responses:?} {:?}", p.f.slack.texts());
    assert!(
        !said.contains(CANARY),
        "a secret value reached a response or Slack"
    );

    // Evening: the cluster goes; its provider stays while the role still names it (IAM
    // refuses a trust policy naming a provider that does not exist).
    p.f.ticks("2026-11-23T19:00:00Z", "2026-11-23T19:30:00Z")
        .await;
    assert!(!p.f.cluster_exists(&p.name).await, "destroyed");
    p.f.tap.drain().await;

    // Next morning: a new issuer; the role moves from the recorded one, its other
    // statement as it was, the other role untouched; then the earlier provider goes. The
    // access entries and the association come back with the new cluster.
    kube.ready_after_reads(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        Some("flux-system"),
        "flux-system",
        1,
        json!({"conditions": [{"type": "Ready", "status": "True"}]}),
    );
    let (_, ready, _) = morning(&p, "2026-11-24T07:00:00Z", 12).await;
    assert!(ready.is_some(), "ready again");
    let issuer2 = issuer_of(eks, &p.name).await;
    let host2 = issuer2.trim_start_matches("https://").to_string();
    assert_ne!(host, host2);
    let trust = trust_of(&p.iam, &p.alb_role).await;
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"],
        "ec2.amazonaws.com"
    );
    assert_eq!(
        trust["Statement"][1]["Principal"]["Federated"],
        format!("arn:aws:iam::123456789012:oidc-provider/{host2}")
    );
    assert_eq!(
        trust["Statement"][1]["Condition"]["StringEquals"][format!("{host2}:sub")],
        "system:serviceaccount:kube-system:aws-load-balancer-controller"
    );
    let other = trust_of(&p.iam, &p.other_role).await;
    assert!(!other.to_string().contains(&host2), "{other}");
    let gone = p
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&provider_arn)
        .send()
        .await;
    assert!(
        gone.is_err(),
        "the earlier issuer's provider, the fleet's, is deleted once moved off"
    );
    let entries = eks
        .list_access_entries()
        .cluster_name(&p.name)
        .send()
        .await
        .expect("entries")
        .access_entries
        .unwrap_or_default();
    assert_eq!(entries.len(), 2, "{entries:?}");
    // The status says how long mornings take: the median of the two.
    let status =
        p.f.call(json!({"action": "status"}), ts("2026-11-24T09:00:00Z"))
            .await;
    let median = outcome(&status, &p.name)["median_rebuild_seconds_this_month"].as_i64();
    assert!(median.is_some_and(|m| m > 0), "{status}");
}

#[tokio::test]
async fn a_platform_that_never_gets_ready_is_announced_degraded_once_after_the_timeout() {
    let p = platform(
        r#"ready_when = ["apps/v1/Deployment/ingress-nginx/ingress-nginx-controller"]
ready_timeout_minutes = 15"#,
    )
    .await;
    seed_ingress_deployment(&p.f.kube);
    let (steps, ready, _) = morning(&p, "2026-11-23T07:00:00Z", 14).await;
    let ready = ready.expect("announced at the timeout");
    // Bootstrapped at 07:10 (the CRDs Established at once); degraded from 07:25.
    assert_eq!(
        steps.last().map(|s| short(s)).as_deref(),
        Some("await-ready -> done"),
        "{steps:?}"
    );
    assert_eq!(ready["at"], "2026-11-23T07:25:00Z", "{ready}");
    assert_eq!(
        ready["degraded"],
        json!(["Deployment ingress-nginx/ingress-nginx-controller: 0/2 available"])
    );
    let degraded: Vec<String> =
        p.f.slack
            .texts()
            .into_iter()
            .filter(|t| t.contains("degraded"))
            .collect();
    assert_eq!(degraded.len(), 1, "{degraded:?}");
    // Once announced, the next ticks are steady and say nothing more.
    p.f.ticks("2026-11-23T07:30:00Z", "2026-11-23T07:45:00Z")
        .await;
    assert!(p.f.tap.drain().await.is_empty());
    let degraded =
        p.f.slack
            .texts()
            .into_iter()
            .filter(|t| t.contains("degraded"))
            .count();
    assert_eq!(degraded, 1);
}

/// The stand-in for what moto lacks (`tests/support/moto_server.py`) refuses what EKS
/// refuses: a second entry for a principal, groups or a policy on a node entry, a
/// second association for a service account, anything on a cluster that is not there.
#[tokio::test]
async fn the_eks_stand_in_refuses_what_eks_refuses() {
    let sdk = fleet_tests::sdk();
    let eks = aws_sdk_eks::Client::new(&sdk);
    let name = unique("standin");
    eks.create_cluster()
        .name(&name)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-0aaa")
                .subnet_ids("subnet-0bbb")
                .build(),
        )
        .send()
        .await
        .expect("cluster");
    let code = |e: &dyn aws_smithy_types::error::metadata::ProvideErrorMetadata| {
        e.code().unwrap_or_default().to_string()
    };
    let node = "arn:aws:iam::123456789012:role/karpenter-node";
    eks.create_access_entry()
        .cluster_name(&name)
        .principal_arn(node)
        .r#type("EC2_LINUX")
        .send()
        .await
        .expect("node entry");
    let again = eks
        .create_access_entry()
        .cluster_name(&name)
        .principal_arn(node)
        .r#type("EC2_LINUX")
        .send()
        .await
        .expect_err("twice");
    assert_eq!(code(&again), "ResourceInUseException");
    let groups = eks
        .create_access_entry()
        .cluster_name(&name)
        .principal_arn("arn:aws:iam::123456789012:role/other-node")
        .r#type("EC2_LINUX")
        .kubernetes_groups("admins")
        .send()
        .await
        .expect_err("groups on a node entry");
    assert_eq!(code(&groups), "InvalidParameterException");
    let policy = eks
        .associate_access_policy()
        .cluster_name(&name)
        .principal_arn(node)
        .policy_arn("arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy")
        .access_scope(
            aws_sdk_eks::types::AccessScope::builder()
                .r#type(aws_sdk_eks::types::AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await
        .expect_err("a policy on a node entry");
    assert_eq!(code(&policy), "InvalidRequestException");
    let associate = || {
        eks.create_pod_identity_association()
            .cluster_name(&name)
            .namespace("kube-system")
            .service_account("karpenter")
            .role_arn("arn:aws:iam::123456789012:role/karpenter-controller")
            .send()
    };
    associate().await.expect("association");
    assert_eq!(
        code(&associate().await.expect_err("twice")),
        "ResourceInUseException"
    );
    let missing = eks
        .list_access_entries()
        .cluster_name(unique("absent"))
        .send()
        .await
        .expect_err("no cluster");
    assert_eq!(code(&missing), "ResourceNotFoundException");
    // They go with the cluster.
    eks.delete_cluster()
        .name(&name)
        .send()
        .await
        .expect("delete");
    eks.create_cluster()
        .name(&name)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-0aaa")
                .subnet_ids("subnet-0bbb")
                .build(),
        )
        .send()
        .await
        .expect("rebuilt");
    let entries = eks
        .list_access_entries()
        .cluster_name(&name)
        .send()
        .await
        .expect("entries")
        .access_entries
        .unwrap_or_default();
    assert!(entries.is_empty(), "{entries:?}");
}
