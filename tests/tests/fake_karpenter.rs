//! The fake Karpenter itself, against moto and the fake Kubernetes API: what it launches
//! and how it is tagged, provisioning within NodePool limits, termination through the
//! Eviction API (budgets hold), a stopped or stuck controller, the EC2NodeClass finalizer
//! and garbage collection. The fleet's tests rely on these behaviours being Karpenter's.

use std::collections::BTreeMap;
use std::time::Duration;

use fleet_tests::fakes::karpenter::{
    controller_deployment, install_crds, instance_id, instance_profiles, set_controller_replicas,
    Ec2NodeClass, FakeKarpenter, NodePool, AWS_API, DISRUPTED_TAINT, KARPENTER_API, NODEPOOL_LABEL,
    TERMINATION_FINALIZER,
};
use fleet_tests::fakes::kube::FakeKube;
use fleet_tests::{sdk, unique};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// A Karpenter cluster: the CRDs, EC2NodeClass `default` tagged `fleet:cluster`, the
/// given NodePools, the controller's Deployment, and the controller running.
struct Cluster {
    name: String,
    kube: FakeKube,
    ec2: aws_sdk_ec2::Client,
    karpenter: FakeKarpenter,
}

impl Cluster {
    async fn start(nodepools: &[NodePool]) -> Cluster {
        let name = unique("karp");
        let kube = FakeKube::start().await;
        install_crds(&kube);
        kube.insert(
            Ec2NodeClass::new("default", &name)
                .tag("fleet:cluster", &name)
                .build(),
        );
        for np in nodepools {
            kube.insert(np.build());
        }
        kube.insert(controller_deployment(2, 2));
        let ec2 = aws_sdk_ec2::Client::new(&sdk());
        let karpenter = FakeKarpenter::start(&kube, ec2.clone(), &name);
        Cluster {
            name,
            kube,
            ec2,
            karpenter,
        }
    }

    fn get(&self, api: &str, kind: &str, ns: &str, name: &str) -> Option<Value> {
        self.kube.get(api, kind, ns, name)
    }

    fn nodeclaim(&self, name: &str) -> Option<Value> {
        self.get(KARPENTER_API, "NodeClaim", "", name)
    }

    /// Waits (up to [`WAIT`]) until `f` holds; panics naming `what`, with the
    /// controller's events.
    async fn until(&self, what: &str, f: impl Fn(&Cluster) -> bool) {
        let end = std::time::Instant::now() + WAIT;
        while !f(self) {
            assert!(
                std::time::Instant::now() < end,
                "{what}: not within {WAIT:?}; karpenter did: {:#?}",
                self.karpenter.events()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn gone(&self, api: &str, kind: &str, name: &str) {
        let what = format!("{kind} {name} gone");
        self.until(&what, |c| c.get(api, kind, "", name).is_none())
            .await;
    }

    /// A request to the fake API as a client makes it (recorded).
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> u16 {
        let mut request =
            reqwest::Client::new().request(method, format!("{}{path}", self.kube.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request
            .send()
            .await
            .expect("fake kube answers")
            .status()
            .as_u16()
    }

    async fn delete(&self, path: &str) {
        let code = self.api(reqwest::Method::DELETE, path, None).await;
        assert_eq!(code, 200, "DELETE {path}");
    }

    /// The instance of a NodeClaim.
    async fn instance(&self, nodeclaim: &str) -> aws_sdk_ec2::types::Instance {
        let claim = self.nodeclaim(nodeclaim).expect("nodeclaim");
        let id = claim["status"]["providerID"]
            .as_str()
            .and_then(instance_id)
            .expect("provider id");
        self.ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .expect("describe instance")
            .reservations()[0]
            .instances()[0]
            .clone()
    }

    /// The launch templates tagged with this cluster.
    async fn launch_templates(&self) -> Vec<aws_sdk_ec2::types::LaunchTemplate> {
        self.ec2
            .describe_launch_templates()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:eks:eks-cluster-name")
                    .values(&self.name)
                    .build(),
            )
            .send()
            .await
            .expect("describe launch templates")
            .launch_templates()
            .to_vec()
    }

    fn pods_bound(&self, names: &[&str]) -> bool {
        names.iter().all(|n| {
            self.get("v1", "Pod", "default", n)
                .is_some_and(|p| p["spec"]["nodeName"].is_string())
        })
    }
}

fn state(instance: &aws_sdk_ec2::types::Instance) -> String {
    instance
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default()
}

fn tags(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

fn pending_pod(name: &str, nodepool: Option<&str>) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "app"}]},
        "status": {"phase": "Pending"},
    });
    if let Some(np) = nodepool {
        pod["spec"]["nodeSelector"] = json!({NODEPOOL_LABEL: np});
    }
    pod
}

fn running_pod(name: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app"}], "terminationGracePeriodSeconds": 0},
        "status": {"phase": "Running"},
    })
}

/// A launch: the instance, tagged as Karpenter tags it (the class's `spec.tags` among
/// them), its NodeClaim and Node, the class's instance profile and launch template; a
/// class without `fleet:cluster` launches instances without it.
#[tokio::test]
async fn launch_makes_an_instance_a_nodeclaim_and_a_node() {
    let c = Cluster::start(&[
        NodePool::new("default", "default"),
        NodePool::new("plain", "untagged").instance_type("m5.xlarge"),
    ])
    .await;
    c.kube
        .insert(Ec2NodeClass::new("untagged", &c.name).build());
    let name = c.karpenter.launch("default").await.expect("launch");
    assert!(name.starts_with("default-"), "{name}");

    let claim = c.nodeclaim(&name).expect("nodeclaim");
    assert_eq!(claim["metadata"]["labels"][NODEPOOL_LABEL], "default");
    assert_eq!(
        claim["metadata"]["finalizers"],
        json!([TERMINATION_FINALIZER])
    );
    assert_eq!(
        claim["spec"]["nodeClassRef"],
        json!({"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"})
    );
    assert_eq!(claim["status"]["capacity"]["cpu"], "2", "m5.large");
    let provider_id = claim["status"]["providerID"].as_str().expect("provider id");
    assert!(provider_id.starts_with("aws:///eu-west-1"), "{provider_id}");

    let node_name = claim["status"]["nodeName"].as_str().expect("node name");
    let node = c.get("v1", "Node", "", node_name).expect("node");
    assert_eq!(node["spec"]["providerID"], provider_id);
    let labels = &node["metadata"]["labels"];
    assert_eq!(labels[NODEPOOL_LABEL], "default");
    assert_eq!(labels["karpenter.sh/registered"], "true");
    assert_eq!(labels["node.kubernetes.io/instance-type"], "m5.large");

    let instance = c.instance(&name).await;
    assert!(["pending", "running"].contains(&state(&instance).as_str()));
    let t = tags(instance.tags());
    let cluster = c.name.as_str();
    for (k, v) in [
        (format!("kubernetes.io/cluster/{cluster}"), "owned"),
        ("karpenter.sh/nodepool".into(), "default"),
        ("karpenter.sh/nodeclaim".into(), name.as_str()),
        ("eks:eks-cluster-name".into(), cluster),
        ("karpenter.k8s.aws/ec2nodeclass".into(), "default"),
        ("fleet:cluster".into(), cluster),
    ] {
        assert_eq!(t.get(&k).map(String::as_str), Some(v), "tag {k}: {t:?}");
    }

    let templates = c.launch_templates().await;
    assert_eq!(templates.len(), 1);
    let lt = tags(templates[0].tags());
    assert_eq!(
        lt.get("karpenter.k8s.aws/cluster").map(String::as_str),
        Some(cluster)
    );
    assert_eq!(
        lt.get(&format!("kubernetes.io/cluster/{cluster}"))
            .map(String::as_str),
        Some("owned")
    );
    assert_eq!(
        lt.get("karpenter.sh/nodepool").map(String::as_str),
        Some("default")
    );

    c.until("the untagged class's profile", |c| {
        c.get(AWS_API, "EC2NodeClass", "", "untagged")
            .is_some_and(|u| u["status"]["instanceProfile"].is_string())
    })
    .await;
    let profiles = instance_profiles(cluster).await.expect("instance profiles");
    let class = c
        .get(AWS_API, "EC2NodeClass", "", "default")
        .expect("class");
    assert_eq!(profiles.len(), 2, "one per class: {profiles:?}");
    let profile = profiles
        .iter()
        .find(|p| class["status"]["instanceProfile"] == p.name.as_str())
        .expect("the class's profile");
    assert!(profile.name.starts_with(&format!("{cluster}_")));
    let uid = class["metadata"]["uid"].as_str().expect("uid");
    assert_eq!(
        profile.path,
        format!("/karpenter/eu-west-1/{cluster}/{uid}/")
    );
    assert_eq!(profile.roles, vec![format!("KarpenterNodeRole-{cluster}")]);
    assert_eq!(
        profile
            .tags
            .get("karpenter.k8s.aws/ec2nodeclass")
            .map(String::as_str),
        Some("default")
    );
    assert_eq!(
        profile.tags.get("eks:eks-cluster-name").map(String::as_str),
        Some(cluster)
    );

    let plain = c.karpenter.launch("plain").await.expect("launch plain");
    let t = tags(c.instance(&plain).await.tags());
    assert_eq!(
        t.get("karpenter.k8s.aws/ec2nodeclass").map(String::as_str),
        Some("untagged")
    );
    assert!(!t.contains_key("fleet:cluster"), "{t:?}");
    let claim = c.nodeclaim(&plain).expect("plain nodeclaim");
    assert_eq!(claim["status"]["capacity"]["cpu"], "4", "m5.xlarge");
}

/// Pending pods get a node on a NodePool whose CPU limit allows one more; a limit of 0
/// launches nothing; a NodePool without limits takes what the others cannot.
#[tokio::test]
async fn pending_pods_get_a_node_within_the_limits() {
    let c = Cluster::start(&[
        NodePool::new("capped", "default")
            .limits(json!({"cpu": "2"}))
            .weight(10),
        NodePool::new("closed", "default")
            .limits(json!({"cpu": 0}))
            .weight(20),
    ])
    .await;
    c.kube.insert(pending_pod("first", None));
    c.until("first pod bound", |c| c.pods_bound(&["first"]))
        .await;
    let claims = c.kube.list(KARPENTER_API, "NodeClaim");
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0]["metadata"]["labels"][NODEPOOL_LABEL], "capped");
    let pod = c.get("v1", "Pod", "default", "first").expect("pod");
    assert_eq!(pod["spec"]["nodeName"], claims[0]["status"]["nodeName"]);
    assert_eq!(pod["status"]["phase"], "Running");
    c.until("capped counted", |c| {
        c.get(KARPENTER_API, "NodePool", "", "capped")
            .is_some_and(|np| np["status"]["resources"]["cpu"] == "2")
    })
    .await;

    // capped is full (2 + 2 > 2 cores), closed launches nothing.
    c.kube.insert(pending_pod("second", None));
    c.kube.insert(pending_pod("third", Some("closed")));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!c.pods_bound(&["second"]) && !c.pods_bound(&["third"]));
    assert_eq!(c.kube.list(KARPENTER_API, "NodeClaim").len(), 1);

    c.kube.insert(NodePool::new("open", "default").build());
    c.until("second pod bound", |c| c.pods_bound(&["second"]))
        .await;
    assert!(!c.pods_bound(&["third"]), "closed stays closed");
    let pools: Vec<Value> = c
        .kube
        .list(KARPENTER_API, "NodeClaim")
        .iter()
        .map(|nc| nc["metadata"]["labels"][NODEPOOL_LABEL].clone())
        .collect();
    assert_eq!(pools.len(), 2, "{pools:?}");
    assert!(pools.contains(&json!("open")));
}

/// A deleted NodeClaim: its node cordoned, its pods evicted through the Eviction API,
/// which a budget holds (429, tried again); once the budget allows, the pods go, the
/// instance is terminated, the Node and the NodeClaim go.
#[tokio::test]
async fn deleting_a_nodeclaim_honours_budgets_then_terminates() {
    let c = Cluster::start(&[NodePool::new("default", "default")]).await;
    let name = c.karpenter.launch("default").await.expect("launch");
    let node = c.nodeclaim(&name).expect("nodeclaim")["status"]["nodeName"]
        .as_str()
        .expect("node")
        .to_string();
    for pod in ["web-0", "web-1"] {
        c.kube.insert(running_pod(pod, &node));
    }
    c.kube.insert(
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}),
    );

    c.delete(&format!("/apis/karpenter.sh/v1/nodeclaims/{name}"))
        .await;
    c.until("cordoned, eviction refused", |c| {
        let cordoned = c.get("v1", "Node", "", &node).is_some_and(|n| {
            n["spec"]["unschedulable"] == true && n["spec"]["taints"][0]["key"] == DISRUPTED_TAINT
        });
        let refused = c
            .karpenter
            .events()
            .iter()
            .any(|e| e.starts_with("evict default/web-0: 429"));
        cordoned && refused
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(c.nodeclaim(&name).is_some(), "held by the budget");
    assert!(c.get("v1", "Pod", "default", "web-0").is_some());
    assert_eq!(state(&c.instance(&name).await), "running");
    let instance = c.instance(&name).await;

    c.delete("/apis/policy/v1/namespaces/default/poddisruptionbudgets/web")
        .await;
    c.gone(KARPENTER_API, "NodeClaim", &name).await;
    assert!(c.get("v1", "Node", "", &node).is_none());
    assert!(c.get("v1", "Pod", "default", "web-1").is_none());
    let id = instance.instance_id().expect("id");
    let after = c
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("describe");
    assert_eq!(state(&after.reservations()[0].instances()[0]), "terminated");
    let events = c.karpenter.events();
    let evicted = events.iter().position(|e| e == "evict default/web-0");
    let terminated = events.iter().position(|e| e.starts_with("terminate i-"));
    assert!(evicted < terminated && evicted.is_some(), "{events:#?}");
}

/// A stopped controller changes nothing: a deleted NodeClaim stays, its node untouched,
/// its instance running; running again, it finishes.
#[tokio::test]
async fn a_stopped_controller_leaves_a_deleted_nodeclaim() {
    let c = Cluster::start(&[NodePool::new("default", "default")]).await;
    let name = c.karpenter.launch("default").await.expect("launch");
    c.karpenter.set_running(false);
    c.delete(&format!("/apis/karpenter.sh/v1/nodeclaims/{name}"))
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let claim = c.nodeclaim(&name).expect("still there");
    assert!(claim["metadata"]["deletionTimestamp"].is_string());
    let node = claim["status"]["nodeName"].as_str().expect("node");
    assert!(c
        .get("v1", "Node", "", node)
        .is_some_and(|n| n["spec"]["unschedulable"].is_null()));
    assert_eq!(state(&c.instance(&name).await), "running");

    c.karpenter.set_running(true);
    c.gone(KARPENTER_API, "NodeClaim", &name).await;
}

/// A stuck NodeClaim never goes, even once someone else terminated its instance (the
/// scheduler's backstop); the others go.
#[tokio::test]
async fn a_stuck_nodeclaim_never_goes() {
    let c = Cluster::start(&[NodePool::new("default", "default")]).await;
    let stuck = c.karpenter.launch("default").await.expect("launch");
    let other = c.karpenter.launch("default").await.expect("launch");
    c.karpenter.set_stuck(&stuck, true);
    for name in [&stuck, &other] {
        c.delete(&format!("/apis/karpenter.sh/v1/nodeclaims/{name}"))
            .await;
    }
    c.gone(KARPENTER_API, "NodeClaim", &other).await;
    let instance = c.instance(&stuck).await;
    assert_eq!(state(&instance), "running");
    c.ec2
        .terminate_instances()
        .instance_ids(instance.instance_id().expect("id"))
        .send()
        .await
        .expect("terminate");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(c.nodeclaim(&stuck).is_some(), "stuck holds it");

    c.karpenter.set_stuck(&stuck, false);
    c.gone(KARPENTER_API, "NodeClaim", &stuck).await;
}

/// A deleted EC2NodeClass waits for the NodeClaims that use it (and launches nothing
/// more), then its instance profile and launch templates go, then it does.
#[tokio::test]
async fn an_ec2nodeclass_waits_for_its_nodeclaims_then_cleans_up() {
    let c = Cluster::start(&[NodePool::new("default", "default")]).await;
    let name = c.karpenter.launch("default").await.expect("launch");
    assert_eq!(c.launch_templates().await.len(), 1);
    assert_eq!(instance_profiles(&c.name).await.expect("profiles").len(), 1);

    c.delete("/apis/karpenter.k8s.aws/v1/ec2nodeclasses/default")
        .await;
    c.until("waiting", |c| {
        c.karpenter
            .events()
            .contains(&format!("nodeclass default waits for {name}"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let class = c
        .get(AWS_API, "EC2NodeClass", "", "default")
        .expect("class held");
    assert!(class["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(c.launch_templates().await.len(), 1);
    assert_eq!(instance_profiles(&c.name).await.expect("profiles").len(), 1);
    assert!(
        c.karpenter.launch("default").await.is_err(),
        "no launch on a deleted class"
    );

    c.delete(&format!("/apis/karpenter.sh/v1/nodeclaims/{name}"))
        .await;
    c.gone(AWS_API, "EC2NodeClass", "default").await;
    assert!(c.nodeclaim(&name).is_none());
    assert!(c.launch_templates().await.is_empty());
    assert!(instance_profiles(&c.name)
        .await
        .expect("profiles")
        .is_empty());
}

/// Garbage collection: a NodeClaim whose instance someone else terminated is deleted, and
/// goes with its Node; a deleted Node takes its NodeClaim along.
#[tokio::test]
async fn nodeclaims_of_terminated_instances_and_deleted_nodes_go() {
    let c = Cluster::start(&[NodePool::new("default", "default")]).await;
    let name = c.karpenter.launch("default").await.expect("launch");
    let id = c
        .instance(&name)
        .await
        .instance_id()
        .expect("id")
        .to_string();
    c.ec2
        .terminate_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("terminate");
    c.gone(KARPENTER_API, "NodeClaim", &name).await;
    assert!(c
        .karpenter
        .events()
        .iter()
        .any(|e| e.starts_with(&format!("garbage-collect {name}"))));
    assert!(c.kube.list("v1", "Node").is_empty());

    let name = c.karpenter.launch("default").await.expect("launch");
    let node = c.nodeclaim(&name).expect("nodeclaim")["status"]["nodeName"]
        .as_str()
        .expect("node")
        .to_string();
    let id = c
        .instance(&name)
        .await
        .instance_id()
        .expect("id")
        .to_string();
    c.delete(&format!("/api/v1/nodes/{node}")).await;
    c.gone(KARPENTER_API, "NodeClaim", &name).await;
    assert!(c.get("v1", "Node", "", &node).is_none());
    let after = c.ec2.describe_instances().instance_ids(&id).send().await;
    let after = after.expect("describe");
    assert_eq!(state(&after.reservations()[0].instances()[0]), "terminated");
}

/// The controller's Deployment is found by its label, and its replicas set without a
/// trace in the request log.
#[tokio::test]
async fn the_controller_deployment_is_found_by_its_label() {
    let kube = FakeKube::start().await;
    kube.insert(controller_deployment(2, 2));
    let list: Value = reqwest::Client::new()
        .get(format!(
            "{}/apis/apps/v1/deployments?labelSelector=app.kubernetes.io%2Fname%3Dkarpenter",
            kube.url
        ))
        .send()
        .await
        .expect("fake kube answers")
        .json()
        .await
        .expect("json");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["namespace"], "kube-system");
    assert_eq!(items[0]["status"]["availableReplicas"], 2);
    kube.clear_requests();
    set_controller_replicas(&kube, 0, 0).await.expect("set");
    let d = kube
        .get("apps/v1", "Deployment", "kube-system", "karpenter")
        .expect("deployment");
    assert_eq!(d["status"]["availableReplicas"], 0);
    assert_eq!(d["status"]["readyReplicas"], 0);
    assert!(kube.requests().is_empty());
}
