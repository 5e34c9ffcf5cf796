//! The scheduler's Kubernetes work against the fake API and moto: the morning bootstrap
//! (Flux from S3 and from a bundled file), and the evening's clean teardown of load
//! balancers.

use cluster_scheduler::bootstrap;
use fleet_tests::fakes::kube::FakeKube;
use fleet_tests::fixtures::scheduler::{cluster_toml, detail_types, outcome, ts, SchedulerFixture};
use fleet_tests::{unique, workspace_root};
use serde_json::json;

const WEEKDAYS: &str = "Mon-Fri 08:00-20:00 Europe/Berlin";

fn fixture_path(name: &str) -> String {
    workspace_root()
        .join("tests/fixtures/bootstrap")
        .join(name)
        .display()
        .to_string()
}

/// Uploads the Flux components to a moto bucket; returns their `s3://` source.
async fn components_in_s3(sdk: &aws_types::SdkConfig) -> String {
    let s3 = aws_sdk_s3::Client::new(sdk);
    let bucket = unique("manifests");
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("bucket");
    let body = std::fs::read(fixture_path("gotk-components.yaml")).expect("fixture");
    s3.put_object()
        .bucket(&bucket)
        .key("flux/gotk-components.yaml")
        .body(body.into())
        .send()
        .await
        .expect("upload");
    format!("s3://{bucket}/flux/gotk-components.yaml")
}

#[tokio::test]
async fn a_rebuild_is_ready_only_after_the_bootstrap_objects_exist() {
    let sdk = fleet_tests::sdk();
    let components = components_in_s3(&sdk).await;
    let table = cluster_toml("destroy", WEEKDAYS, "").replace(
        "[[cluster.blueprint.nodegroup]]\nname = \"spot\"",
        &format!(
            "bootstrap = [\"{components}\", \"{}\"]\n\n[[cluster.blueprint.nodegroup]]\nname = \"spot\"",
            fixture_path("gotk-sync.yaml")
        ),
    );
    let f = SchedulerFixture::start(&[table], None).await;
    let name = f.names[0].clone();
    // CRDs take a moment to be Established, as on a real API server.
    f.kube.establish_crds_after_reads(2);

    let mut steps = Vec::new();
    let mut ready_at = None;
    for (i, at) in ["07:00", "07:05", "07:10", "07:15", "07:20"]
        .iter()
        .enumerate()
    {
        let r = f.tick(ts(&format!("2026-11-23T{at}:00Z"))).await;
        let o = outcome(&r, &name);
        steps.push(format!(
            "{} -> {}",
            o["step"].as_str().unwrap_or_default(),
            o["result"].as_str().unwrap_or_default()
        ));
        if detail_types(&f.tap.drain().await) == vec!["Cluster Ready"] {
            ready_at = Some(i);
        }
    }
    assert_eq!(
        steps,
        vec![
            "create-cluster -> done",
            "create-nodegroups spot,system -> done",
            "bootstrap-then-announce -> waiting",
            "bootstrap-then-announce -> done",
            "none -> steady",
        ]
    );
    assert_eq!(
        ready_at,
        Some(3),
        "Cluster Ready once, after the bootstrap applied"
    );
    for (api, kind, ns, obj) in [
        ("v1", "Namespace", "", "flux-system"),
        ("apps/v1", "Deployment", "flux-system", "source-controller"),
        (
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            "flux-system",
            "flux-system",
        ),
        (
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            "flux-system",
            "flux-system",
        ),
    ] {
        assert!(
            f.kube.get(api, kind, ns, obj).is_some(),
            "{kind} {obj} should exist"
        );
    }

    // What the API received: server-side apply by the `fleet` field manager, CRDs first,
    // then the namespace, then the rest.
    let applies: Vec<_> = f
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    for r in &applies {
        assert!(
            r.content_type.starts_with("application/apply-patch+yaml"),
            "{r:?}"
        );
        assert!(
            r.query.contains("fieldManager=fleet") && r.query.contains("force=true"),
            "{r:?}"
        );
    }
    let first_of = |needle: &str| {
        applies
            .iter()
            .position(|r| r.path.contains(needle))
            .expect(needle)
    };
    let last_crd = applies
        .iter()
        .rposition(|r| r.path.contains("customresourcedefinitions"))
        .expect("crd");
    assert!(first_of("customresourcedefinitions") < first_of("/api/v1/namespaces/flux-system"));
    assert!(last_crd < first_of("/api/v1/namespaces/flux-system"));
    assert!(first_of("/api/v1/namespaces/flux-system") < first_of("serviceaccounts"));
    assert!(first_of("serviceaccounts") < first_of("/namespaces/flux-system/gitrepositories/"));
}

#[tokio::test]
async fn re_applying_the_bootstrap_changes_nothing() {
    let kube = FakeKube::start().await;
    let connector =
        fleet_shared::kube::KubeConnector::new(&fleet_tests::sdk(), Some(kube.url.clone()));
    let client = connector
        .client(&fleet_shared::kube::ClusterAccess {
            name: "c".into(),
            endpoint: String::new(),
            ca_data: None,
            place: fleet_shared::place::Place::hub("eu-west-1"),
        })
        .await
        .expect("client");
    let text = std::fs::read_to_string(fixture_path("gotk-components.yaml")).expect("fixture");
    let manifests = bootstrap::parse("gotk-components.yaml", &text).expect("parse");
    assert_eq!(
        bootstrap::apply(&client, manifests.clone())
            .await
            .expect("apply"),
        bootstrap::Progress::Applied(5)
    );
    let before = kube
        .get("apps/v1", "Deployment", "flux-system", "source-controller")
        .expect("deployment");
    bootstrap::apply(&client, manifests)
        .await
        .expect("apply again");
    let after = kube
        .get("apps/v1", "Deployment", "flux-system", "source-controller")
        .expect("deployment");
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
    assert_eq!(before["metadata"]["uid"], after["metadata"]["uid"]);
}

/// The bootstrap's manifests as server-side apply keeps them: a label and a ConfigMap key
/// the new manifests dropped are removed from the cluster (the `fleet` manager owned them),
/// and `spec.replicas`, which the manifests never set and an HPA-like client scaled with a
/// merge patch, is left alone.
#[tokio::test]
async fn re_applying_the_bootstrap_removes_dropped_fields_and_keeps_other_managers_fields() {
    let kube = FakeKube::start().await;
    let connector =
        fleet_shared::kube::KubeConnector::new(&fleet_tests::sdk(), Some(kube.url.clone()));
    let client = connector
        .client(&fleet_shared::kube::ClusterAccess {
            name: "c".into(),
            endpoint: String::new(),
            ca_data: None,
            place: fleet_shared::place::Place::hub("eu-west-1"),
        })
        .await
        .expect("client");
    let manifests = |extra_label: &str, extra_key: &str| {
        let text = format!(
            r#"
apiVersion: v1
kind: Namespace
metadata:
  name: apps
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: apps
  labels:
    team: platform{extra_label}
data:
  mode: fast{extra_key}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.27
"#
        );
        bootstrap::parse("apps.yaml", &text).expect("parse")
    };
    let first = manifests("\n    tier: web", "\n  legacy: \"yes\"");
    assert_eq!(
        bootstrap::apply(&client, first).await.expect("apply"),
        bootstrap::Progress::Applied(3)
    );
    let cm = kube
        .get("v1", "ConfigMap", "apps", "settings")
        .expect("configmap");
    assert_eq!(cm["metadata"]["labels"]["tier"], "web");
    assert_eq!(cm["data"]["legacy"], "yes");

    // An autoscaler scales the Deployment with a merge patch of its own.
    let scaled = reqwest::Client::new()
        .patch(format!(
            "{}/apis/apps/v1/namespaces/apps/deployments/web?fieldManager=hpa",
            kube.url
        ))
        .header("content-type", "application/merge-patch+json")
        .body(json!({"spec": {"replicas": 3}}).to_string())
        .send()
        .await
        .expect("merge patch");
    assert_eq!(scaled.status().as_u16(), 200);

    assert_eq!(
        bootstrap::apply(&client, manifests("", ""))
            .await
            .expect("apply again"),
        bootstrap::Progress::Applied(3)
    );
    let cm = kube
        .get("v1", "ConfigMap", "apps", "settings")
        .expect("configmap");
    assert_eq!(
        cm["metadata"]["labels"],
        json!({"team": "platform"}),
        "{cm}"
    );
    assert_eq!(cm["data"], json!({"mode": "fast"}));
    let web = kube
        .get("apps/v1", "Deployment", "apps", "web")
        .expect("deployment");
    assert_eq!(web["spec"]["replicas"], 3, "the autoscaler's replicas stay");
    let managers: Vec<(&str, &str)> = web["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or_default(),
                m["operation"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(managers, vec![("fleet", "Apply"), ("hpa", "Update")]);
}

#[tokio::test]
async fn a_bad_manifest_is_named_and_blocks_cluster_ready() {
    let table = cluster_toml("destroy", WEEKDAYS, "").replace(
        "[[cluster.blueprint.nodegroup]]\nname = \"spot\"",
        &format!(
            "bootstrap = [\"{}\"]\n\n[[cluster.blueprint.nodegroup]]\nname = \"spot\"",
            fixture_path("bad-namespace.yaml")
        ),
    );
    let f = SchedulerFixture::start(&[table], None).await;
    let name = f.names[0].clone();
    let ticks = f
        .ticks("2026-11-23T07:00:00Z", "2026-11-23T07:15:00Z")
        .await;
    let third = outcome(&ticks[2], &name);
    assert_eq!(third["result"], "failed");
    let error = third["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("ConfigMap does-not-exist/settings") && error.contains("404"),
        "{error}"
    );
    let events = f.tap.drain().await;
    assert_eq!(detail_types(&events), vec!["Cluster Transition Failed"]);
    assert_eq!(f.slack.texts().len(), 1);
    // Retried on later ticks, and still no Cluster Ready.
    f.ticks("2026-11-23T07:30:00Z", "2026-11-23T08:00:00Z")
        .await;
    assert!(detail_types(&f.tap.drain().await)
        .iter()
        .all(|d| d != "Cluster Ready"));
}

fn seed_ingress(kube: &FakeKube) {
    kube.insert(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingress-nginx"}}),
    );
    kube.insert(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]},
        "status": {"loadBalancer": {"ingress": [{"hostname": "k8s-ingress-abc.elb.eu-west-1.amazonaws.com"}]}}
    }));
    kube.insert(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "metrics", "namespace": "ingress-nginx"},
        "spec": {"type": "ClusterIP", "ports": [{"port": 10254}]}
    }));
    kube.insert(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "api", "namespace": "default"},
        "spec": {"ingressClassName": "alb", "rules": []}
    }));
}

#[tokio::test]
async fn teardown_deletes_load_balancer_services_first_and_waits_for_the_load_balancer() {
    let f = SchedulerFixture::start(&[cluster_toml("destroy", WEEKDAYS, "")], None).await;
    let name = f.names[0].clone();
    f.ticks("2026-11-23T07:00:00Z", "2026-11-23T07:15:00Z")
        .await;
    seed_ingress(&f.kube);
    let lb = fleet_tests::service_load_balancer(&f.sdk, &name).await;
    f.tap.drain().await;

    // 20:00 Berlin: the LoadBalancer Service goes first; the ClusterIP one stays.
    let first = f.tick(ts("2026-11-23T19:00:00Z")).await;
    assert_eq!(
        outcome(&first, &name)["step"],
        "delete-loadbalancer-services ingress-nginx/ingress-nginx-controller"
    );
    // Deleted, and kept by the service controller's finalizer until it has deleted the
    // load balancer.
    let held = f
        .kube
        .get("v1", "Service", "ingress-nginx", "ingress-nginx-controller")
        .unwrap_or_default();
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");
    assert!(f
        .kube
        .get("v1", "Service", "ingress-nginx", "metrics")
        .is_some());
    assert_eq!(
        f.nodegroups(&name).await.len(),
        2,
        "nodegroups wait for the load balancer"
    );

    // The controller has not removed the load balancer yet: wait, without blocking, and
    // without deleting the terminating Service again.
    f.kube.clear_requests();
    let second = f.tick(ts("2026-11-23T19:05:00Z")).await;
    let step = outcome(&second, &name)["step"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        step.starts_with("wait: load balancers still exist"),
        "{step}"
    );
    assert!(
        step.contains("Services kept by their finalizers: ingress-nginx/ingress-nginx-controller (service.kubernetes.io/load-balancer-cleanup)"),
        "{step}"
    );
    assert!(f.kube.requests().iter().all(|r| r.method != "DELETE"));

    // Gone: the teardown goes on, reporting the ALB ingress it cannot delete for you.
    aws_sdk_elasticloadbalancingv2::Client::new(&f.sdk)
        .delete_load_balancer()
        .load_balancer_arn(lb)
        .send()
        .await
        .expect("delete lb");
    assert!(
        f.kube
            .wait_gone(
                "v1",
                "Service",
                "ingress-nginx",
                "ingress-nginx-controller",
                std::time::Duration::from_secs(10)
            )
            .await,
        "the controller releases the Service"
    );
    let third = f.tick(ts("2026-11-23T19:07:00Z")).await;
    let o = outcome(&third, &name);
    assert_eq!(o["step"], "delete-nodegroups spot,system");
    assert!(
        o["notes"][0]
            .as_str()
            .is_some_and(|n| n.contains("default/api")),
        "{o}"
    );
    f.ticks("2026-11-23T19:10:00Z", "2026-11-23T19:30:00Z")
        .await;
    assert!(!f.cluster_exists(&name).await);
    assert_eq!(
        detail_types(&f.tap.drain().await),
        vec!["Cluster Destroyed"]
    );
}

#[tokio::test]
async fn a_load_balancer_that_never_goes_is_waited_for_a_bounded_time_and_reported() {
    let f = SchedulerFixture::start(
        &[cluster_toml(
            "destroy",
            WEEKDAYS,
            "load_balancer_wait_minutes = 10",
        )],
        None,
    )
    .await;
    let name = f.names[0].clone();
    f.ticks("2026-11-23T07:00:00Z", "2026-11-23T07:15:00Z")
        .await;
    seed_ingress(&f.kube);
    let _lb = fleet_tests::service_load_balancer(&f.sdk, &name).await;
    let ticks = f
        .ticks("2026-11-23T19:00:00Z", "2026-11-23T19:15:00Z")
        .await;
    let steps: Vec<&str> = ticks
        .iter()
        .map(|t| outcome(t, &name)["step"].as_str().unwrap_or_default())
        .collect();
    assert!(steps[0].starts_with("delete-loadbalancer-services"));
    assert!(steps[1].starts_with("wait: load balancers still exist"));
    assert_eq!(
        steps[2], "delete-nodegroups spot,system",
        "10 minutes after the teardown began"
    );
    let notes = outcome(&ticks[2], &name)["notes"].to_string();
    assert!(
        notes.contains("left behind after waiting 10 minutes"),
        "{notes}"
    );
    assert!(f.slack.texts().iter().any(|t| t.contains("left behind")));
}

/// The controller never removes the Service's finalizer (say, the AWS Load Balancer
/// Controller lacks a permission): the Service is deleted once, waited for a bounded
/// time, and the teardown goes on, saying what it left.
#[tokio::test]
async fn a_service_its_controller_never_releases_does_not_keep_the_cluster_up() {
    let f = SchedulerFixture::start(
        &[cluster_toml(
            "destroy",
            WEEKDAYS,
            "load_balancer_wait_minutes = 10",
        )],
        None,
    )
    .await;
    let name = f.names[0].clone();
    f.ticks("2026-11-23T07:00:00Z", "2026-11-23T07:15:00Z")
        .await;
    seed_ingress(&f.kube);
    f.kube
        .set_load_balancer_cleanup(fleet_tests::fakes::kube::LoadBalancerCleanup::Never);
    f.kube.clear_requests();
    let ticks = f
        .ticks("2026-11-23T19:00:00Z", "2026-11-23T19:15:00Z")
        .await;
    let steps: Vec<&str> = ticks
        .iter()
        .map(|t| outcome(t, &name)["step"].as_str().unwrap_or_default())
        .collect();
    assert!(
        steps[0].starts_with("delete-loadbalancer-services"),
        "{steps:?}"
    );
    assert!(
        steps[1].starts_with("wait: Services kept by their finalizers"),
        "{steps:?}"
    );
    assert_eq!(steps[2], "delete-nodegroups spot,system", "{steps:?}");
    let deletes = f
        .kube
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 1, "deleted once, not every tick");
    let notes = outcome(&ticks[2], &name)["notes"].to_string();
    assert!(
        notes.contains("kept by their finalizers after waiting 10 minutes")
            && notes.contains("ingress-nginx/ingress-nginx-controller"),
        "{notes}"
    );
    f.ticks("2026-11-23T19:20:00Z", "2026-11-23T19:45:00Z")
        .await;
    assert!(
        !f.cluster_exists(&name).await,
        "the cluster does not run all night"
    );
}

/// An override brings the cluster back up in the middle of a teardown's load-balancer
/// wait: the next evening's wait is a whole one, counted from that evening.
#[tokio::test]
async fn a_teardown_wait_interrupted_by_an_override_starts_afresh_next_evening() {
    let f = SchedulerFixture::start(
        &[cluster_toml(
            "destroy",
            WEEKDAYS,
            "load_balancer_wait_minutes = 10",
        )],
        None,
    )
    .await;
    let name = f.names[0].clone();
    f.ticks("2026-11-23T07:00:00Z", "2026-11-23T07:15:00Z")
        .await;
    seed_ingress(&f.kube);
    f.kube
        .set_load_balancer_cleanup(fleet_tests::fakes::kube::LoadBalancerCleanup::Never);
    let evening = f.tick(ts("2026-11-23T19:00:00Z")).await;
    assert!(outcome(&evening, &name)["step"]
        .as_str()
        .is_some_and(|s| s.starts_with("delete-loadbalancer-services")));
    let up = f
        .call(
            json!({"action": "up", "cluster": name, "until": "2026-11-24T09:00:00Z", "reason": "late release"}),
            ts("2026-11-23T19:05:00Z"),
        )
        .await;
    assert_eq!(up["override"]["desired"], "up");
    // The next evening (the Service still held by its finalizer): the wait counts from
    // 19:00 of that day, not from yesterday's, so the nodegroups are not deleted at once.
    let ticks = f
        .ticks("2026-11-24T19:00:00Z", "2026-11-24T19:05:00Z")
        .await;
    let steps: Vec<&str> = ticks
        .iter()
        .map(|t| outcome(t, &name)["step"].as_str().unwrap_or_default())
        .collect();
    assert!(
        steps
            .iter()
            .all(|s| s.starts_with("wait: Services kept by their finalizers")
                && s.contains("waiting until 2026-11-24T19:10:00Z")),
        "{steps:?}"
    );
}

#[tokio::test]
async fn an_unreachable_api_does_not_stop_the_teardown() {
    // Nothing listens on port 9 of loopback: every Kubernetes call is refused.
    let f = SchedulerFixture::start(
        &[cluster_toml("destroy", WEEKDAYS, "")],
        Some("http://127.0.0.1:9".into()),
    )
    .await;
    let name = f.names[0].clone();
    f.ticks("2026-11-23T07:00:00Z", "2026-11-23T07:15:00Z")
        .await;
    let evening = f.tick(ts("2026-11-23T19:00:00Z")).await;
    let o = outcome(&evening, &name);
    assert_eq!(o["step"], "delete-nodegroups spot,system");
    assert!(
        o["notes"][0]
            .as_str()
            .is_some_and(|n| n.contains("Kubernetes API is unreachable")),
        "{o}"
    );
    f.ticks("2026-11-23T19:05:00Z", "2026-11-23T19:30:00Z")
        .await;
    assert!(!f.cluster_exists(&name).await);
}
