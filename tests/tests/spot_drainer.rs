//! spot-drainer against the fake Kubernetes API (nodes, pods, PodDisruptionBudgets, the
//! Eviction API) and moto (EKS, the state table, the bus, CloudWatch).

use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::kube::KubeConnector;
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_tests::fakes::kube::FakeKube;
use fleet_tests::fakes::slack::FakeSlack;
use fleet_tests::{sdk, state_table, unique, workspace_root, BusTap};
use jiff::{Timestamp, ToSpan};
use serde_json::{json, Value};
use spot_drainer::Drainer;

const INSTANCE: &str = "i-1234567890abcdef0";
const NODE: &str = "ip-10-0-1-23.eu-west-1.compute.internal";

struct Fixture {
    drainer: Drainer,
    kube: FakeKube,
    tap: BusTap,
    slack: FakeSlack,
    cloudwatch: aws_sdk_cloudwatch::Client,
    cluster: String,
}

async fn fixture(cluster_extra: &str) -> Fixture {
    fixture_with(|cluster, bus| {
        format!(
            r#"
[fleet]
region = "eu-west-1"
event_bus = "{bus}"
[[cluster]]
name = "{cluster}"
uptime = "daily 00:00-24:00 UTC"
{cluster_extra}
[cluster.blueprint]
version = "1.32"
role_arn = "arn:aws:iam::123456789012:role/eks-cluster"
subnet_ids = ["subnet-a", "subnet-b"]
"#
        )
    })
    .await
}

/// A case from the field (`tests/fixtures/cases/<case>/fleet.toml`) with its cluster
/// `staging` and bus `fleet` given this test's own names.
async fn case_fixture(case: &str) -> Fixture {
    let text = std::fs::read_to_string(case_path(case, "fleet.toml")).expect("case config");
    fixture_with(|cluster, bus| {
        text.replace("name = \"staging\"", &format!("name = \"{cluster}\""))
            .replace("event_bus = \"fleet\"", &format!("event_bus = \"{bus}\""))
    })
    .await
}

fn case_path(case: &str, file: &str) -> std::path::PathBuf {
    workspace_root()
        .join("tests/fixtures/cases")
        .join(case)
        .join(file)
}

/// A case's event, with `__NOW__` replaced by `now`.
fn case_event(case: &str, file: &str, now: Timestamp) -> Value {
    let text = std::fs::read_to_string(case_path(case, file)).expect("case event");
    let now = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    serde_json::from_str(&text.replace("__NOW__", &now)).expect("case json")
}

async fn fixture_with(config: impl FnOnce(&str, &str) -> String) -> Fixture {
    let sdk = sdk();
    let bus = unique("fleet-bus");
    let tap = BusTap::new(&sdk, &bus).await;
    let cluster = unique("spot");
    let eks = aws_sdk_eks::Client::new(&sdk);
    fleet_tests::active_cluster(&eks, &cluster).await;
    let text = config(&cluster, &bus);
    let kube = FakeKube::start().await;
    let slack = FakeSlack::start().await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    let store = state_table(&sdk).await;
    let drainer = Drainer::new(
        std::sync::Arc::new(fleet_shared::place::Places::hub_only(&sdk)),
        FleetConfig::parse(&text).expect("config"),
        store.table(),
        Notifier::new(Some(Secret::new(slack.url.clone()))),
        KubeConnector::new(&sdk, Some(kube.url.clone())),
    );
    Fixture {
        drainer,
        kube,
        tap,
        slack,
        cloudwatch,
        cluster,
    }
}

fn pod(name: &str, ns: &str, extra: Value) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {}},
        "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "nginx"}], "terminationGracePeriodSeconds": 1},
        "status": {"phase": "Running"}
    });
    fleet_tests::fakes::kube::merge_patch(&mut p, &extra);
    p
}

fn owned_by(kind: &str) -> Value {
    json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": "owner", "uid": "o"}]}})
}

/// A node with three web pods behind a budget, a critical CoreDNS pod, a DaemonSet pod
/// and a mirror pod.
fn seed_node(kube: &FakeKube, budget: Value, web_grace: i64) {
    kube.insert(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
        "spec": {"providerID": format!("aws:///eu-west-1b/{INSTANCE}"), "taints": [{"key": "existing", "effect": "PreferNoSchedule"}]}
    }));
    kube.insert(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "other"}, "spec": {"providerID": "aws:///eu-west-1a/i-0fffffffffffffff0"}}));
    kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    for i in 1..=3 {
        let mut extra = owned_by("ReplicaSet");
        fleet_tests::fakes::kube::merge_patch(
            &mut extra,
            &json!({"metadata": {"labels": {"app": "web"}}, "spec": {"terminationGracePeriodSeconds": web_grace}}),
        );
        kube.insert(pod(&format!("web-{i}"), "shop", extra));
    }
    let mut coredns = owned_by("ReplicaSet");
    fleet_tests::fakes::kube::merge_patch(
        &mut coredns,
        &json!({"spec": {"priorityClassName": "system-cluster-critical"}}),
    );
    kube.insert(pod("coredns-1", "kube-system", coredns));
    kube.insert(pod("aws-node-x", "kube-system", owned_by("DaemonSet")));
    kube.insert(pod(
        "kube-proxy-static",
        "kube-system",
        json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "abc"}}}),
    ));
    let mut pdb = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}}
    });
    fleet_tests::fakes::kube::merge_patch(&mut pdb, &json!({"spec": budget}));
    kube.insert(pdb);
}

fn sample(name: &str) -> Value {
    let path = workspace_root().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json")
}

/// The spot warning, as if it arrived `ago` seconds before now, with a fresh id.
fn interruption(ago: i64) -> Value {
    let mut ev = sample("spot-interruption.json");
    let at = Timestamp::now().checked_sub(ago.seconds()).expect("time");
    ev["time"] = json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    ev["id"] = json!(unique("event"));
    ev
}

async fn handle(f: &Fixture, ev: Value) -> Value {
    f.drainer
        .handle(ev, Invocation::at(Timestamp::now()))
        .await
        .expect("handler")
}

/// Pods on the node that are not terminating (no `deletionTimestamp`): what a drain
/// has not evicted.
fn pods_not_evicted(kube: &FakeKube) -> usize {
    kube.list("v1", "Pod")
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == NODE)
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .count()
}

fn pods_left_on_node(kube: &FakeKube) -> Vec<String> {
    let mut names: Vec<String> = kube
        .list("v1", "Pod")
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == NODE)
        .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_budget_allowing_one_at_a_time_drains_fully_before_the_deadline() {
    let f = fixture("").await;
    seed_node(&f.kube, json!({"maxUnavailable": 1}), 1);
    let report = handle(&f, interruption(0)).await;
    assert_eq!(report["status"], "drained");
    assert_eq!(report["cluster"], f.cluster.as_str());
    assert_eq!(report["node"], NODE);
    assert_eq!(report["evicted"], 4, "{report}");
    assert_eq!(report["forced"], 0);
    assert_eq!(report["pending"], json!([]));
    let skipped: Vec<&str> = report["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .filter_map(|s| s["reason"].as_str())
        .collect();
    assert_eq!(skipped.len(), 2);
    assert!(skipped.contains(&"DaemonSet pod") && skipped.contains(&"mirror pod"));
    // DaemonSet and mirror pods untouched; every other pod gone or terminating.
    for p in f
        .kube
        .list("v1", "Pod")
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == NODE)
    {
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        let terminating = !p["metadata"]["deletionTimestamp"].is_null();
        let untouchable = name == "aws-node-x" || name == "kube-proxy-static";
        assert_eq!(terminating, !untouchable, "{name}");
    }
    // Cordoned, tainted and out of external load balancers; the old taint kept.
    let node = f.kube.get("v1", "Node", "", NODE).expect("node");
    assert_eq!(node["spec"]["unschedulable"], true);
    assert_eq!(
        node["metadata"]["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"],
        "true"
    );
    let taints: Vec<&str> = node["spec"]["taints"]
        .as_array()
        .expect("taints")
        .iter()
        .filter_map(|t| t["key"].as_str())
        .collect();
    assert_eq!(taints, vec!["existing", "fleet/spot-interruption"]);
    // The cordon was the first write, before any eviction.
    let writes: Vec<_> = f
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert_eq!(writes[0].method, "PATCH");
    assert!(writes[0].path.ends_with(&format!("/nodes/{NODE}")));
    // The budget was honoured: some evictions were refused and retried.
    let evictions = f
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/eviction"))
        .count();
    assert!(evictions > 4, "{evictions} eviction requests");
    // Every eviction carried the pod's UID as a precondition.
    assert!(f
        .kube
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/eviction"))
        .all(|r| r.body["deleteOptions"]["preconditions"]["uid"].is_string()));

    let events = f.tap.drain().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail-type"], "Node Drained");
    assert_eq!(events[0]["detail"]["evicted"], 4);
    assert_eq!(f.slack.texts().len(), 1);
    let metrics = f
        .cloudwatch
        .list_metrics()
        .namespace("Fleet/SpotDrainer")
        .send()
        .await
        .expect("metrics");
    let names: Vec<&str> = metrics
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    // `[metrics] cloudwatch = "summary"` (the default): what the dashboard reads, not
    // `DrainDuration` (sent with "detailed").
    for m in ["PodsEvicted", "PodsForced"] {
        assert!(names.contains(&m), "{m} in {names:?}");
    }
    assert!(!names.contains(&"DrainDuration"), "{names:?}");
}

#[tokio::test]
async fn a_budget_that_never_allows_ends_in_clamped_force_deletes_before_the_deadline() {
    let f = fixture("").await;
    seed_node(&f.kube, json!({"minAvailable": 3}), 30);
    // The warning came 100 s ago: 20 s left, less than a 30 s grace period.
    let ev = interruption(100);
    let deadline: Timestamp = ev["time"]
        .as_str()
        .expect("time")
        .parse::<Timestamp>()
        .expect("ts")
        .checked_add(120.seconds())
        .expect("deadline");
    let report = handle(&f, ev).await;
    assert!(Timestamp::now() < deadline, "finished before the deadline");
    assert_eq!(report["forced"], 3, "{report}");
    assert_eq!(report["evicted"], 1, "coredns has no budget");
    let deletes: Vec<_> = f
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("/pods/web-"))
        .collect();
    assert_eq!(deletes.len(), 3);
    for d in deletes {
        let grace = d.body["gracePeriodSeconds"].as_i64().expect("grace");
        assert!(
            (1..=15).contains(&grace),
            "grace {grace} clamped to the time left"
        );
        assert!(d.body["preconditions"]["uid"].is_string());
    }
    for p in ["web-1", "web-2", "web-3"] {
        let pod = f
            .kube
            .get("v1", "Pod", "shop", p)
            .expect("still terminating");
        assert!(!pod["metadata"]["deletionTimestamp"].is_null());
    }
}

#[tokio::test]
async fn duplicate_deliveries_drain_once() {
    let f = fixture("").await;
    seed_node(&f.kube, json!({"maxUnavailable": 3}), 1);
    let ev = interruption(0);
    let (a, b) = tokio::join!(handle(&f, ev.clone()), handle(&f, ev.clone()));
    let statuses = [
        a["status"].as_str().unwrap_or_default(),
        b["status"].as_str().unwrap_or_default(),
    ];
    assert!(
        statuses.contains(&"drained") && statuses.contains(&"duplicate"),
        "{statuses:?}"
    );
    // Redelivered later, and a second warning for the same instance within its deadline.
    assert_eq!(handle(&f, ev).await["status"], "duplicate");
    assert_eq!(handle(&f, interruption(0)).await["status"], "duplicate");
    assert_eq!(f.tap.drain().await.len(), 1);
}

#[tokio::test]
async fn an_instance_of_no_fleet_cluster_is_acknowledged_once() {
    let f = fixture("").await;
    seed_node(&f.kube, json!({"maxUnavailable": 1}), 1);
    let mut ev = interruption(0);
    ev["detail"]["instance-id"] = json!("i-0aaaaaaaaaaaaaaa1");
    let r = handle(&f, ev).await;
    assert_eq!(r["status"], "not-ours");
    assert!(f.tap.drain().await.is_empty());
    assert_eq!(pods_left_on_node(&f.kube).len(), 6, "nothing touched");
}

#[tokio::test]
async fn dry_run_plans_and_changes_nothing() {
    let f = fixture("").await;
    seed_node(&f.kube, json!({"maxUnavailable": 1}), 1);
    let r = handle(&f, sample("spot-drain-dry-run.json")).await;
    assert_eq!(r["status"], "dry-run");
    assert_eq!(
        r["would_evict"],
        json!([
            "shop/web-1",
            "shop/web-2",
            "shop/web-3",
            "kube-system/coredns-1"
        ])
    );
    assert!(
        f.kube.requests().iter().all(|r| r.method == "GET"),
        "dry run only reads"
    );
    assert!(f.tap.drain().await.is_empty());
}

#[tokio::test]
async fn every_sample_event_is_handled() {
    // A rebalance recommendation only cordons where the cluster says so.
    let f = fixture("rebalance = \"cordon\"").await;
    seed_node(&f.kube, json!({"maxUnavailable": 3}), 1);
    let r = handle(&f, sample("spot-rebalance.json")).await;
    assert_eq!(r["status"], "cordoned");
    assert_eq!(r["evicted"], 0);
    assert_eq!(
        f.kube.get("v1", "Node", "", NODE).expect("node")["spec"]["unschedulable"],
        true
    );
    assert_eq!(pods_left_on_node(&f.kube).len(), 6);

    for (file, expected) in [
        ("instance-state-change.json", "drained"),
        ("health-scheduled-change.json", "drained"),
        ("spot-drain-manual.json", "drained"),
    ] {
        let f = fixture("").await;
        seed_node(&f.kube, json!({"maxUnavailable": 3}), 1);
        let mut ev = sample(file);
        if ev.get("time").is_some() {
            ev["time"] = json!(Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        let r = handle(&f, ev).await;
        assert_eq!(r["status"], expected, "{file}: {r}");
    }
}

#[tokio::test]
async fn unsupported_events_are_rejected_and_change_nothing() {
    let f = fixture("").await;
    seed_node(&f.kube, json!({"maxUnavailable": 1}), 1);
    let err = f
        .drainer
        .handle(json!({"source": "aws.s3", "detail-type": "Object Created", "id": "x", "time": "2026-11-23T10:00:00Z", "detail": {}}), Invocation::at(Timestamp::now()))
        .await
        .expect_err("rejected");
    assert!(err
        .to_string()
        .contains("not an event this function handles"));
    assert!(f.kube.requests().is_empty());
}

/// Case 01: a rebalance recommendation cordons (the cluster says `cordon`); the spot
/// interruption warning for the same instance a minute later still drains before its
/// deadline: a weaker event's lease never makes a stronger one a duplicate.
#[tokio::test]
async fn a_spot_warning_after_a_cordon_only_rebalance_drains() {
    let case = "01-rebalance-cordon-then-itn";
    let f = case_fixture(case).await;
    seed_node(&f.kube, json!({"maxUnavailable": 3}), 1);
    let start = Timestamp::now();
    let r = handle(&f, case_event(case, "1-rebalance.json", start)).await;
    assert_eq!(r["status"], "cordoned", "{r}");
    assert_eq!(pods_left_on_node(&f.kube).len(), 6);
    // The same rebalance again is a duplicate.
    let again = handle(&f, case_event(case, "1-rebalance.json", start)).await;
    assert_eq!(again["status"], "duplicate", "{again}");

    let warned = Timestamp::now();
    let r = handle(&f, case_event(case, "2-interruption.json", warned)).await;
    assert_eq!(r["status"], "drained", "{r}");
    assert_eq!(r["event"], "spot-interruption");
    assert_eq!(r["evicted"], 4, "{r}");
    assert!(
        Timestamp::now() < warned.checked_add(120.seconds()).expect("deadline"),
        "drained within the warning's two minutes"
    );
    // Only the DaemonSet and mirror pods are left (the others gone or terminating).
    assert_eq!(pods_not_evicted(&f.kube), 2);
    // Weaker or equal events after the drain stay duplicates.
    for file in ["2-interruption.json", "1-rebalance.json"] {
        let r = handle(&f, case_event(case, file, Timestamp::now())).await;
        assert_eq!(r["status"], "duplicate", "{file}: {r}");
    }
}

/// The same escalation from a no-deadline drain: a Health scheduled change drained the
/// node; a state change to `stopping` (a deadline) takes the lease over; a manual drain
/// (no deadline) after that is a duplicate.
#[tokio::test]
async fn a_deadline_event_takes_over_a_no_deadline_drain() {
    let f = fixture("").await;
    seed_node(&f.kube, json!({"maxUnavailable": 3}), 1);
    let mut health = sample("health-scheduled-change.json");
    health["time"] = json!(Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    let r = handle(&f, health).await;
    assert_eq!(r["status"], "drained", "{r}");
    assert_eq!(
        r["event_type_code"],
        "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
    );
    let mut stopping = sample("instance-state-change.json");
    stopping["time"] = json!(Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    stopping["detail"]["state"] = json!("stopping");
    let r = handle(&f, stopping).await;
    assert_eq!(r["status"], "drained", "{r}");
    assert_eq!(r["event"], "state-change");
    let r = handle(&f, sample("spot-drain-manual.json")).await;
    assert_eq!(r["status"], "duplicate", "{r}");
}

/// Case 02: a Health scheduled change for a Dedicated Host is acknowledged and ignored,
/// not an error; the node is untouched.
#[tokio::test]
async fn a_health_event_for_a_dedicated_host_is_ignored() {
    let case = "02-health-dedicated-host-entity";
    let f = case_fixture(case).await;
    seed_node(&f.kube, json!({"maxUnavailable": 3}), 1);
    let r = handle(&f, case_event(case, "health-host.json", Timestamp::now())).await;
    assert_eq!(r["status"], "ignored", "{r}");
    let reason = r["reason"].as_str().expect("reason");
    assert!(
        reason.contains("h-0a1b2c3d4e5f60718: not an EC2 instance")
            && reason.contains("AWS_EC2_DEDICATED_HOST_NETWORK_MAINTENANCE_SCHEDULED"),
        "{reason}"
    );
    assert!(f.kube.requests().is_empty());
}

/// Entities that are not instances are skipped one by one; the instance in the same
/// event drains, and the answer says what was skipped.
#[tokio::test]
async fn a_health_event_drains_its_instances_and_skips_the_rest() {
    let f = fixture("").await;
    seed_node(&f.kube, json!({"maxUnavailable": 3}), 1);
    let mut ev = sample("health-scheduled-change.json");
    ev["time"] = json!(Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    ev["detail"]["statusCode"] = json!("upcoming");
    ev["detail"]["affectedEntities"] = json!([
        {"entityValue": "h-0a1b2c3d4e5f60718"},
        {"entityValue": "UNKNOWN"},
        {"entityValue": INSTANCE, "status": "PENDING"},
        {"entityValue": "i-0fffffffffffffff0", "status": "RESOLVED"}
    ]);
    let r = handle(&f, ev).await;
    assert_eq!(r["instances"][0]["status"], "drained", "{r}");
    assert_eq!(r["instances"][0]["instance_id"], INSTANCE);
    assert_eq!(r["instances"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        r["skipped_entities"],
        json!([
            "h-0a1b2c3d4e5f60718: not an EC2 instance",
            "UNKNOWN: not an EC2 instance",
            "i-0fffffffffffffff0: RESOLVED"
        ])
    );
    assert_eq!(pods_not_evicted(&f.kube), 2);
}

/// Case 03: a closed Health event (its entity RESOLVED) for an instance that runs again
/// is ignored; the node keeps its pods and stays schedulable.
#[tokio::test]
async fn a_closed_health_event_is_ignored() {
    let case = "03-health-closed-status";
    let f = case_fixture(case).await;
    seed_node(&f.kube, json!({"maxUnavailable": 3}), 1);
    let r = handle(&f, case_event(case, "health-closed.json", Timestamp::now())).await;
    assert_eq!(r["status"], "ignored", "{r}");
    assert!(
        r["reason"]
            .as_str()
            .is_some_and(|s| s.contains("is closed")),
        "{r}"
    );
    assert!(f.kube.requests().is_empty());
    // Open, with the entity resolved: ignored too. Public (no entities): ignored.
    let mut open = case_event(case, "health-closed.json", Timestamp::now());
    open["detail"]["statusCode"] = json!("open");
    assert_eq!(handle(&f, open.clone()).await["status"], "ignored");
    open["detail"]
        .as_object_mut()
        .expect("detail")
        .remove("affectedEntities");
    let r = handle(&f, open).await;
    assert_eq!(r["status"], "ignored");
    assert!(
        r["reason"]
            .as_str()
            .is_some_and(|s| s.contains("public event")),
        "{r}"
    );
    assert!(f.kube.requests().is_empty());
    assert_eq!(pods_left_on_node(&f.kube).len(), 6);
}

/// Two PodDisruptionBudgets select the web pods: the API server evicts none of them (500,
/// "more than one PodDisruptionBudget"). The drainer does not retry that blindly: each
/// is reported as refused, naming both budgets, and the rest of the node drains.
#[tokio::test]
async fn pods_under_two_budgets_are_reported_not_retried() {
    let f = fixture("").await;
    seed_node(&f.kube, json!({"maxUnavailable": 3}), 1);
    f.kube.insert(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-extra", "namespace": "shop"},
        "spec": {"maxUnavailable": 1, "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}}
    }));
    let r = handle(&f, sample("spot-drain-manual.json")).await;
    assert_eq!(r["status"], "drained", "{r}");
    assert_eq!(r["evicted"], 1, "coredns: {r}");
    let refused = r["refused"].as_array().expect("refused");
    assert_eq!(refused.len(), 3, "{r}");
    for p in refused {
        let reason = p["reason"].as_str().expect("reason");
        assert!(reason.contains("web, web-extra"), "{reason}");
    }
    // One eviction request per web pod: refused once, not retried.
    let web_evictions = f
        .kube
        .requests()
        .iter()
        .filter(|q| q.path.contains("/namespaces/shop/pods/web-") && q.path.ends_with("/eviction"))
        .count();
    assert_eq!(web_evictions, 3);
    assert!(f.slack.texts().iter().any(|t| t.contains("not evicted")));
}

/// The node of [`seed_node`] as Karpenter launches it: labelled with its NodePool and
/// EC2NodeClass, in no nodegroup.
fn seed_karpenter_node(kube: &FakeKube) {
    seed_node(kube, json!({"maxUnavailable": 3}), 1);
    kube.insert(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE, "labels": {
            "kubernetes.io/hostname": NODE,
            "karpenter.sh/nodepool": "spot",
            "karpenter.sh/capacity-type": "spot",
            "karpenter.k8s.aws/ec2nodeclass": "default"
        }},
        "spec": {"providerID": format!("aws:///eu-west-1b/{INSTANCE}")}
    }));
}

/// A sample event timed now, with a fresh id.
fn sample_now(name: &str) -> Value {
    let mut ev = sample(name);
    ev["time"] = json!(Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    ev["id"] = json!(unique("event"));
    ev
}

/// `[cluster.karpenter]` with its default `interruption = "karpenter"`: a spot warning, a
/// Health scheduled change and a state change for a node Karpenter launched are
/// acknowledged as `karpenter-owned`, saying why, and nothing is written to the cluster
/// (the fake API's request log holds reads only), published or posted.
#[tokio::test]
async fn karpenter_mode_leaves_the_interruptions_of_karpenters_nodes_to_it() {
    let f = fixture("[cluster.karpenter]").await;
    seed_karpenter_node(&f.kube);
    for (ev, event) in [
        (interruption(0), "spot-interruption"),
        (
            sample_now("health-scheduled-change.json"),
            "scheduled-change",
        ),
        (sample_now("instance-state-change.json"), "state-change"),
    ] {
        let r = handle(&f, ev).await;
        assert_eq!(r["status"], "karpenter-owned", "{r}");
        assert_eq!(r["event"], event);
        assert_eq!(r["node"], NODE);
        assert_eq!(r["cluster"], f.cluster.as_str());
        assert_eq!(r["instance_id"], INSTANCE);
        assert_eq!(r["nodepool"], "spot");
        assert_eq!(
            r["reason"],
            "Karpenter's interruption queue handles its nodes (interruption = \"karpenter\")"
        );
    }
    let writes: Vec<String> = f
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "written: {writes:?}");
    let node = f.kube.get("v1", "Node", "", NODE).expect("node");
    assert!(node["spec"]["unschedulable"].is_null(), "{node}");
    assert_eq!(pods_not_evicted(&f.kube), 6);
    assert!(f.tap.drain().await.is_empty(), "no Node Drained");
    assert!(f.slack.texts().is_empty());

    // A Health event naming the Karpenter node and a nodegroup's node: the one is
    // Karpenter's, the other drains.
    let mut health = sample_now("health-scheduled-change.json");
    health["detail"]["affectedEntities"] = json!([
        {"entityValue": INSTANCE},
        {"entityValue": "i-0fffffffffffffff0"}
    ]);
    let r = handle(&f, health).await;
    assert_eq!(r["instances"][0]["status"], "karpenter-owned", "{r}");
    assert_eq!(r["instances"][1]["status"], "drained", "{r}");
    assert_eq!(r["instances"][1]["node"], "other");
    assert_eq!(
        pods_not_evicted(&f.kube),
        6,
        "the Karpenter node's pods stay"
    );
    let events = f.tap.drain().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["node"], "other");
}

/// Karpenter does not act on rebalance recommendations (karpenter-provider-aws #2813):
/// in `karpenter` mode they follow the cluster's `rebalance` for its nodes too. A
/// nodegroup's node of such a cluster is the drainer's for every event.
#[tokio::test]
async fn karpenter_mode_still_acts_on_rebalance_recommendations() {
    let f =
        fixture("rebalance = \"cordon\"\n[cluster.karpenter]\ninterruption = \"karpenter\"").await;
    seed_karpenter_node(&f.kube);
    let r = handle(&f, sample_now("spot-rebalance.json")).await;
    assert_eq!(r["status"], "cordoned", "{r}");
    assert_eq!(
        f.kube.get("v1", "Node", "", NODE).expect("node")["spec"]["unschedulable"],
        true
    );
    assert_eq!(pods_not_evicted(&f.kube), 6);

    let f = fixture("[cluster.karpenter]").await;
    seed_karpenter_node(&f.kube);
    let r = handle(&f, sample_now("spot-rebalance.json")).await;
    assert_eq!(r["status"], "drained", "{r}");
    assert_eq!(r["evicted"], 4, "{r}");
    assert_eq!(f.tap.drain().await.len(), 1);

    let f = fixture("[cluster.karpenter]").await;
    seed_node(&f.kube, json!({"maxUnavailable": 3}), 1);
    let r = handle(&f, interruption(0)).await;
    assert_eq!(r["status"], "drained", "a nodegroup's node: {r}");
}

/// `interruption = "fleet"`, or no `[cluster.karpenter]`: Karpenter's nodes are drained
/// like any other, for a spot warning, a Health scheduled change and a rebalance
/// recommendation.
#[tokio::test]
async fn fleet_mode_drains_karpenters_nodes_like_any_other() {
    for extra in ["[cluster.karpenter]\ninterruption = \"fleet\"", ""] {
        for ev in [
            interruption(0),
            sample_now("health-scheduled-change.json"),
            sample_now("spot-rebalance.json"),
        ] {
            let f = fixture(extra).await;
            seed_karpenter_node(&f.kube);
            let what = format!("{extra:?}, {}", ev["detail-type"]);
            let r = handle(&f, ev).await;
            assert_eq!(r["status"], "drained", "{what}: {r}");
            assert_eq!(r["evicted"], 4, "{what}: {r}");
            assert_eq!(pods_not_evicted(&f.kube), 2, "{what}");
            assert_eq!(f.tap.drain().await.len(), 1, "{what}");
        }
    }
}
