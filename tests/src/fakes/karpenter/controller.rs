//! The controller's loop and what it does in a poll: EC2NodeClasses (instance profile,
//! finalizer), provisioning and launching, garbage collection, termination, NodePool
//! counters. Every change goes through the fake API's own handlers
//! ([`FakeKube::controller_request`]) and moto.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::Method;
use serde_json::{json, Value};

use super::aws::{Aws, Launched, IMAGE};
use super::{
    instance_id, lock, Names, AWS_API, DEFAULT_INSTANCE_TYPE, DISRUPTED_TAINT, GC_EVERY,
    KARPENTER_API, NODECLAIM_TAG, NODECLASS_FINALIZER, NODECLASS_LABEL, NODEPOOL_LABEL, POLL,
    TERMINATION_FINALIZER,
};
use crate::fakes::kube::FakeKube;

/// The error a step stops with once the controller is stopped (not recorded).
const STOPPED: &str = "controller stopped";

/// The controller's state, shared by its task and its handle.
pub(super) struct Shared {
    pub(super) kube: FakeKube,
    pub(super) aws: Aws,
    pub(super) running: AtomicBool,
    pub(super) stuck: Names,
    pub(super) events: Mutex<Vec<String>>,
    /// Held while instance profiles and launch templates are made (a test's launch and
    /// the loop's may run at once).
    creating: tokio::sync::Mutex<()>,
}

/// What a launch made.
pub(super) struct Launch {
    pub(super) nodeclaim: String,
    pub(super) node: String,
}

/// What a NodePool launches.
#[derive(Clone)]
struct Plan {
    nodepool: Value,
    nodeclass: Value,
    instance_type: String,
    spot: bool,
    /// vCPUs (cores) and memory (MiB) of the instance type.
    cpu: i64,
    memory_mib: i64,
}

/// Polls every [`POLL`] while running, garbage collection every [`GC_EVERY`].
pub(super) async fn run(shared: Arc<Shared>) {
    let mut last_gc: Option<Instant> = None;
    loop {
        tokio::time::sleep(POLL).await;
        if !shared.active() {
            continue;
        }
        let gc = last_gc.is_none_or(|t| t.elapsed() >= GC_EVERY);
        if gc {
            last_gc = Some(Instant::now());
        }
        shared.poll(gc).await;
    }
}

impl Shared {
    pub(super) fn new(
        kube: FakeKube,
        ec2: aws_sdk_ec2::Client,
        cluster: &str,
        iam_endpoint: String,
    ) -> Shared {
        Shared {
            kube,
            aws: Aws::new(ec2, cluster, iam_endpoint),
            running: AtomicBool::new(true),
            stuck: Default::default(),
            events: Default::default(),
            creating: Default::default(),
        }
    }

    fn active(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Checked before every change the loop makes: a stopped controller changes nothing.
    fn go(&self) -> Result<(), String> {
        if self.active() {
            Ok(())
        } else {
            Err(STOPPED.into())
        }
    }

    fn note(&self, line: String) {
        lock(&self.events).push(line)
    }

    /// Records a line unless it is there already (what repeats every poll).
    fn note_once(&self, line: String) {
        let mut events = lock(&self.events);
        if !events.contains(&line) {
            events.push(line);
        }
    }

    fn fail(&self, error: String) {
        if error != STOPPED {
            self.note_once(format!("error: {error}"));
        }
    }

    async fn poll(&self, gc: bool) {
        if let Err(e) = self.reconcile_nodeclasses().await {
            self.fail(e);
        }
        if let Err(e) = self.provision().await {
            self.fail(e);
        }
        if gc {
            if let Err(e) = self.collect_garbage().await {
                self.fail(e);
            }
        }
        if let Err(e) = self.terminate().await {
            self.fail(e);
        }
        if let Err(e) = self.count().await {
            self.fail(e);
        }
    }

    // --- requests to the fake API ---

    async fn call(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        let content_type = if method == Method::PATCH {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        self.kube
            .controller_request(method, path, content_type, body)
            .await
    }

    async fn create(&self, collection: &str, obj: Value) -> Result<(), String> {
        match self.call(Method::POST, collection, obj).await {
            (200 | 201, _) => Ok(()),
            (code, body) => Err(format!("POST {collection}: {code} {}", body["message"])),
        }
    }

    /// A JSON merge patch.
    async fn patch(&self, path: &str, patch: Value) -> Result<(), String> {
        match self.call(Method::PATCH, path, patch).await {
            (200, _) => Ok(()),
            (code, body) => Err(format!("PATCH {path}: {code} {}", body["message"])),
        }
    }

    /// A delete; one already gone is fine.
    async fn delete(&self, path: &str) -> Result<(), String> {
        match self.call(Method::DELETE, path, Value::Null).await {
            (200 | 202 | 404, _) => Ok(()),
            (code, body) => Err(format!("DELETE {path}: {code} {}", body["message"])),
        }
    }

    async fn remove_finalizer(
        &self,
        path: &str,
        obj: &Value,
        finalizer: &str,
    ) -> Result<(), String> {
        let rest: Vec<&Value> = finalizers(obj).filter(|f| *f != finalizer).collect();
        self.patch(path, json!({"metadata": {"finalizers": rest}}))
            .await
    }

    // --- EC2NodeClasses ---

    /// Each class: a finalizer and an instance profile while it lives, its cleanup once
    /// deleted.
    async fn reconcile_nodeclasses(&self) -> Result<(), String> {
        for class in self.kube.list(AWS_API, "EC2NodeClass") {
            let name = name_of(&class);
            if is_deleting(&class) {
                if has_finalizer(&class, NODECLASS_FINALIZER) {
                    self.finalize_nodeclass(&class).await?;
                }
                continue;
            }
            if !has_finalizer(&class, NODECLASS_FINALIZER) {
                self.go()?;
                let mut all: Vec<&Value> = finalizers(&class).collect();
                let ours = json!(NODECLASS_FINALIZER);
                all.push(&ours);
                self.patch(
                    &nodeclass_path(name),
                    json!({"metadata": {"finalizers": all}}),
                )
                .await?;
            }
            if status_profile(&class).is_none() {
                self.go()?;
                self.instance_profile(name).await?;
            }
        }
        Ok(())
    }

    /// The class's instance profile, created (and recorded in its status) when it has
    /// none.
    async fn instance_profile(&self, class: &str) -> Result<String, String> {
        let _creating = self.creating.lock().await;
        self.instance_profile_locked(class).await
    }

    async fn instance_profile_locked(&self, class_name: &str) -> Result<String, String> {
        let class = self
            .kube
            .get(AWS_API, "EC2NodeClass", "", class_name)
            .ok_or_else(|| format!("no EC2NodeClass {class_name}"))?;
        if let Some(profile) = status_profile(&class) {
            if self.aws.profile_exists(profile).await? {
                return Ok(profile.to_string());
            }
        }
        let mut tags = string_map(&class["spec"]["tags"]);
        tags.insert(
            format!("kubernetes.io/cluster/{}", self.aws.cluster),
            "owned".into(),
        );
        tags.insert("eks:eks-cluster-name".into(), self.aws.cluster.clone());
        tags.insert(NODECLASS_LABEL.into(), class_name.into());
        tags.insert(
            "topology.kubernetes.io/region".into(),
            self.aws.region.clone(),
        );
        let uid = class["metadata"]["uid"].as_str().unwrap_or_default();
        let role = class["spec"]["role"].as_str().unwrap_or_default();
        let profile = self
            .aws
            .create_profile(class_name, uid, role, &tags)
            .await?;
        let status = json!({"status": {
            "instanceProfile": profile,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
        }});
        self.patch(&format!("{}/status", nodeclass_path(class_name)), status)
            .await?;
        self.note(format!("instance profile {profile} for {class_name}"));
        Ok(profile)
    }

    /// A deleted class: once no NodeClaim uses it, its instance profiles, then its launch
    /// templates, then its finalizer.
    async fn finalize_nodeclass(&self, class: &Value) -> Result<(), String> {
        let name = name_of(class);
        let users: Vec<String> = self
            .kube
            .list(KARPENTER_API, "NodeClaim")
            .iter()
            .filter(|c| c["spec"]["nodeClassRef"]["name"] == name)
            .map(|c| name_of(c).to_string())
            .collect();
        if !users.is_empty() {
            self.note_once(format!("nodeclass {name} waits for {}", users.join(", ")));
            return Ok(());
        }
        self.go()?;
        let uid = class["metadata"]["uid"].as_str().unwrap_or_default();
        let profiles = self.aws.delete_profiles(uid, status_profile(class)).await?;
        let templates = self.aws.delete_launch_templates(name).await?;
        self.go()?;
        self.remove_finalizer(&nodeclass_path(name), class, NODECLASS_FINALIZER)
            .await?;
        self.note(format!(
            "finalize nodeclass {name}: instance profiles [{}], launch templates [{}]",
            profiles.join(", "),
            templates.join(", ")
        ));
        Ok(())
    }

    // --- launching ---

    /// What NodePool `nodepool` would launch now: refused while it or its class is being
    /// deleted, or when either is missing.
    async fn plan(&self, nodepool: &str) -> Result<Plan, String> {
        let np = self
            .kube
            .get(KARPENTER_API, "NodePool", "", nodepool)
            .filter(|np| !is_deleting(np))
            .ok_or_else(|| format!("no NodePool {nodepool} (or it is being deleted)"))?;
        let class_name = np["spec"]["template"]["spec"]["nodeClassRef"]["name"]
            .as_str()
            .ok_or_else(|| format!("NodePool {nodepool} has no nodeClassRef"))?;
        let class = self
            .kube
            .get(AWS_API, "EC2NodeClass", "", class_name)
            .filter(|c| !is_deleting(c))
            .ok_or_else(|| format!("no EC2NodeClass {class_name} (or it is being deleted)"))?;
        let instance_type = requirement(&np, "node.kubernetes.io/instance-type")
            .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_string());
        let spot = requirement(&np, "karpenter.sh/capacity-type").as_deref() == Some("spot");
        let (cpu, memory_mib) = self.aws.shape(&instance_type).await;
        Ok(Plan {
            nodepool: np,
            nodeclass: class,
            instance_type,
            spot,
            cpu,
            memory_mib,
        })
    }

    pub(super) async fn launch(&self, nodepool: &str) -> Result<Launch, String> {
        let plan = self.plan(nodepool).await?;
        self.execute(&plan).await
    }

    /// Instance profile and launch template, the instance, then its NodeClaim and Node
    /// (the instance terminated again when those cannot be made).
    async fn execute(&self, plan: &Plan) -> Result<Launch, String> {
        let np = name_of(&plan.nodepool);
        let class = name_of(&plan.nodeclass);
        let mut tags =
            self.aws
                .instance_tags(&string_map(&plan.nodeclass["spec"]["tags"]), np, class);
        let (profile, template) = {
            let _creating = self.creating.lock().await;
            let profile = self.instance_profile_locked(class).await?;
            let template = self
                .aws
                .ensure_launch_template(class, np, &profile, &tags)
                .await?;
            (profile, template)
        };
        let nodeclaim = nodeclaim_name(np);
        tags.insert(NODECLAIM_TAG.into(), nodeclaim.clone());
        let launched = self
            .aws
            .run_instance(&template, &profile, &plan.instance_type, plan.spot, &tags)
            .await?;
        if let Err(e) = self.register(plan, &nodeclaim, &launched).await {
            let _ = self.aws.terminate(&launched.id).await;
            return Err(e);
        }
        self.note(format!(
            "launch {nodeclaim}: {} {} node {}",
            launched.id, plan.instance_type, launched.node_name
        ));
        Ok(Launch {
            nodeclaim,
            node: launched.node_name,
        })
    }

    /// The NodeClaim (created, then its status as the lifecycle controller writes it) and
    /// the Node its kubelet registers.
    async fn register(&self, plan: &Plan, name: &str, launched: &Launched) -> Result<(), String> {
        let provider_id = format!("aws:///{}/{}", launched.zone, launched.id);
        let labels = claim_labels(plan, &launched.zone);
        let np = &plan.nodepool;
        let claim = json!({
            "apiVersion": KARPENTER_API,
            "kind": "NodeClaim",
            "metadata": {
                "name": name,
                "labels": labels,
                "finalizers": [TERMINATION_FINALIZER],
                "ownerReferences": [{
                    "apiVersion": KARPENTER_API, "kind": "NodePool", "name": name_of(np),
                    "uid": np["metadata"]["uid"], "blockOwnerDeletion": true,
                }],
            },
            "spec": {
                "nodeClassRef": np["spec"]["template"]["spec"]["nodeClassRef"],
                "requirements": np["spec"]["template"]["spec"]["requirements"],
                "expireAfter": np["spec"]["template"]["spec"]["expireAfter"],
                "resources": {"requests": {}},
            },
        });
        self.create("/apis/karpenter.sh/v1/nodeclaims", claim)
            .await?;
        let capacity = capacity(plan);
        let conditions: Vec<Value> = ["Launched", "Registered", "Initialized", "Ready"]
            .iter()
            .map(|t| json!({"type": t, "status": "True", "reason": t, "lastTransitionTime": "2026-11-23T07:00:00Z"}))
            .collect();
        let status = json!({"status": {
            "providerID": provider_id, "nodeName": launched.node_name, "imageID": IMAGE,
            "capacity": capacity, "allocatable": capacity, "conditions": conditions,
        }});
        self.patch(&format!("{}/status", nodeclaim_path(name)), status)
            .await?;
        let mut node_labels = labels;
        for (k, v) in [
            ("karpenter.sh/registered", "true"),
            ("karpenter.sh/initialized", "true"),
            ("kubernetes.io/hostname", launched.node_name.as_str()),
            ("kubernetes.io/os", "linux"),
        ] {
            node_labels[k] = json!(v);
        }
        let node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": launched.node_name, "labels": node_labels, "finalizers": [TERMINATION_FINALIZER]},
            "spec": {"providerID": provider_id},
            "status": {
                "capacity": capacity, "allocatable": capacity,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            },
        });
        self.create("/api/v1/nodes", node).await
    }

    // --- provisioning ---

    /// Pending pods: one new NodeClaim per NodePool that takes some of them, and those
    /// pods bound to its node.
    async fn provision(&self) -> Result<(), String> {
        let pending: Vec<Value> = self
            .kube
            .list("v1", "Pod")
            .into_iter()
            .filter(is_pending)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let open = self.open_pools().await;
        let mut batches: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for pod in pending {
            let wanted = pod["spec"]["nodeSelector"][NODEPOOL_LABEL].as_str();
            let pool = open
                .iter()
                .find(|(name, _)| wanted.is_none_or(|w| w == name.as_str()));
            if let Some((name, _)) = pool {
                batches.entry(name.clone()).or_default().push(pod);
            }
        }
        for (pool, pods) in batches {
            let Some((_, plan)) = open.iter().find(|(name, _)| *name == pool) else {
                continue;
            };
            self.go()?;
            let launch = self.execute(plan).await?;
            for pod in pods {
                self.go()?;
                self.bind(&pod, &launch.node).await?;
            }
        }
        Ok(())
    }

    /// The NodePools that can launch a node now, highest `spec.weight` first, then by
    /// name: not being deleted, their class there, their limit not reached.
    async fn open_pools(&self) -> Vec<(String, Plan)> {
        let claims = self.kube.list(KARPENTER_API, "NodeClaim");
        let mut pools = self.kube.list(KARPENTER_API, "NodePool");
        pools.sort_by_key(|np| {
            let weight = np["spec"]["weight"].as_i64().unwrap_or(0);
            (-weight, name_of(np).to_string())
        });
        let mut open = Vec::new();
        for np in pools {
            let name = name_of(&np).to_string();
            let Ok(plan) = self.plan(&name).await else {
                continue;
            };
            if within_limit(&np, &claims, plan.cpu * 1000) {
                open.push((name, plan));
            }
        }
        open
    }

    /// Binds a pod to a node, Running and Ready (kube-scheduler's and the kubelet's part).
    async fn bind(&self, pod: &Value, node: &str) -> Result<(), String> {
        let (ns, name) = (namespace_of(pod), name_of(pod));
        let patch = json!({
            "spec": {"nodeName": node},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        });
        self.patch(&pod_path(ns, name), patch).await?;
        self.note(format!("bind {ns}/{name} to {node}"));
        Ok(())
    }

    // --- garbage collection ---

    /// NodeClaims whose instance is gone, or whose NodePool is, are deleted. NodeClaims
    /// are listed before instances: one launched in between has its instance listed.
    async fn collect_garbage(&self) -> Result<(), String> {
        let claims: Vec<Value> = self
            .kube
            .list(KARPENTER_API, "NodeClaim")
            .into_iter()
            .filter(|c| !is_deleting(c))
            .collect();
        if claims.is_empty() {
            return Ok(());
        }
        let pools: BTreeSet<String> = self
            .kube
            .list(KARPENTER_API, "NodePool")
            .iter()
            .map(|np| name_of(np).to_string())
            .collect();
        let live = self.aws.live_instances().await?;
        for claim in &claims {
            let instance = claim["status"]["providerID"].as_str().and_then(instance_id);
            let pool = claim["metadata"]["labels"][NODEPOOL_LABEL]
                .as_str()
                .unwrap_or_default();
            let reason = match instance {
                Some(id) if !live.contains(id) => Some(format!("instance {id} is gone")),
                _ if !pools.contains(pool) => Some(format!("NodePool {pool} is gone")),
                _ => None,
            };
            if let Some(reason) = reason {
                self.go()?;
                let name = name_of(claim);
                self.delete(&nodeclaim_path(name)).await?;
                self.note(format!("garbage-collect {name}: {reason}"));
            }
        }
        Ok(())
    }

    // --- termination ---

    /// Deleted Nodes take their NodeClaims; deleted NodeClaims are drained and terminated.
    async fn terminate(&self) -> Result<(), String> {
        let claims = self.kube.list(KARPENTER_API, "NodeClaim");
        for node in self.kube.list("v1", "Node") {
            if !is_deleting(&node) || !has_finalizer(&node, TERMINATION_FINALIZER) {
                continue;
            }
            let provider_id = &node["spec"]["providerID"];
            let claim = claims
                .iter()
                .find(|c| c["status"]["providerID"] == *provider_id && !is_deleting(c));
            if let Some(claim) = claim {
                self.go()?;
                self.delete(&nodeclaim_path(name_of(claim))).await?;
                self.note(format!(
                    "delete {} of deleted node {}",
                    name_of(claim),
                    name_of(&node)
                ));
            }
        }
        for claim in self.kube.list(KARPENTER_API, "NodeClaim") {
            if !is_deleting(&claim) || !has_finalizer(&claim, TERMINATION_FINALIZER) {
                continue;
            }
            let stuck = lock(&self.stuck).contains(name_of(&claim));
            if stuck {
                continue;
            }
            match self.finalize_nodeclaim(&claim).await {
                Err(e) if e == STOPPED => return Err(e),
                Err(e) => self.fail(e),
                Ok(()) => {}
            }
        }
        Ok(())
    }

    /// A deleted NodeClaim: drain its node while the instance runs, terminate the
    /// instance, remove the node, then the finalizer.
    async fn finalize_nodeclaim(&self, claim: &Value) -> Result<(), String> {
        let name = name_of(claim);
        let node = self.node_of(claim);
        if let Some(id) = claim["status"]["providerID"].as_str().and_then(instance_id) {
            let state = self.aws.instance_state(id).await?;
            if Aws::is_live(state.as_deref()) {
                if let Some(node) = &node {
                    if !self.drain(node).await? {
                        return Ok(());
                    }
                }
                self.go()?;
                self.aws.terminate(id).await?;
                self.note(format!("terminate {id} of {name}"));
            }
        }
        if let Some(node) = &node {
            self.release_node(node).await?;
        }
        self.go()?;
        self.remove_finalizer(&nodeclaim_path(name), claim, TERMINATION_FINALIZER)
            .await?;
        self.note(format!("finalize nodeclaim {name}"));
        Ok(())
    }

    /// A NodeClaim's Node: by `status.nodeName`, else by provider id.
    fn node_of(&self, claim: &Value) -> Option<Value> {
        if let Some(node) = claim["status"]["nodeName"]
            .as_str()
            .and_then(|n| self.kube.get("v1", "Node", "", n))
        {
            return Some(node);
        }
        let provider_id = claim["status"]["providerID"].as_str()?;
        self.kube
            .list("v1", "Node")
            .into_iter()
            .find(|n| n["spec"]["providerID"] == provider_id)
    }

    /// Cordons the node and evicts its pods; whether none is left.
    async fn drain(&self, node: &Value) -> Result<bool, String> {
        self.cordon(node).await?;
        let node_name = name_of(node);
        for pod in self.pods_on(node_name).iter().filter(|p| !is_deleting(p)) {
            self.go()?;
            self.evict(pod).await;
        }
        Ok(self.pods_on(node_name).is_empty())
    }

    /// Pods a drain waits for on a node: not a DaemonSet's, not mirror pods.
    fn pods_on(&self, node: &str) -> Vec<Value> {
        self.kube
            .list("v1", "Pod")
            .into_iter()
            .filter(|p| p["spec"]["nodeName"] == node && drainable(p))
            .collect()
    }

    /// `spec.unschedulable` and the `karpenter.sh/disrupted:NoSchedule` taint.
    async fn cordon(&self, node: &Value) -> Result<(), String> {
        let mut taints: Vec<Value> = node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let tainted = taints.iter().any(|t| t["key"] == DISRUPTED_TAINT);
        if tainted && node["spec"]["unschedulable"] == true {
            return Ok(());
        }
        if !tainted {
            taints.push(json!({"key": DISRUPTED_TAINT, "effect": "NoSchedule"}));
        }
        self.go()?;
        let name = name_of(node);
        self.patch(
            &node_path(name),
            json!({"spec": {"unschedulable": true, "taints": taints}}),
        )
        .await?;
        self.note(format!("cordon {name}"));
        Ok(())
    }

    /// One eviction through the Eviction API; a refusal is noted (once) and tried again
    /// next poll.
    async fn evict(&self, pod: &Value) {
        let (ns, name) = (namespace_of(pod), name_of(pod));
        let body = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}});
        let path = format!("{}/eviction", pod_path(ns, name));
        match self.call(Method::POST, &path, body).await {
            (200 | 201, _) => self.note(format!("evict {ns}/{name}")),
            (404, _) => {}
            (code, body) => self.note_once(format!(
                "evict {ns}/{name}: {code} {}",
                body["message"].as_str().unwrap_or_default()
            )),
        }
    }

    /// The Node deleted, the pods left on it with it, its finalizer removed.
    async fn release_node(&self, node: &Value) -> Result<(), String> {
        let name = name_of(node);
        self.go()?;
        if !is_deleting(node) {
            self.delete(&node_path(name)).await?;
        }
        let left = self
            .kube
            .list("v1", "Pod")
            .into_iter()
            .filter(|p| p["spec"]["nodeName"] == name);
        for pod in left {
            let path = pod_path(namespace_of(&pod), name_of(&pod));
            self.delete(&format!("{path}?gracePeriodSeconds=0")).await?;
        }
        if let Some(current) = self.kube.get("v1", "Node", "", name) {
            self.remove_finalizer(&node_path(name), &current, TERMINATION_FINALIZER)
                .await?;
        }
        self.note(format!("delete node {name}"));
        Ok(())
    }

    // --- counters ---

    /// Each NodePool's `status.resources`: CPU, memory and nodes of its NodeClaims.
    async fn count(&self) -> Result<(), String> {
        let claims = self.kube.list(KARPENTER_API, "NodeClaim");
        for np in self.kube.list(KARPENTER_API, "NodePool") {
            if is_deleting(&np) {
                continue;
            }
            let name = name_of(&np);
            let mine: Vec<&Value> = claims
                .iter()
                .filter(|c| c["metadata"]["labels"][NODEPOOL_LABEL] == name)
                .collect();
            let cpu: i64 = mine
                .iter()
                .filter_map(|c| cpu_millis(&c["status"]["capacity"]["cpu"]))
                .sum();
            let memory: i64 = mine
                .iter()
                .filter_map(|c| c["status"]["capacity"]["memory"].as_str())
                .filter_map(|m| m.strip_suffix("Mi")?.parse::<i64>().ok())
                .sum();
            let resources = json!({
                "cpu": format_millis(cpu), "memory": format!("{memory}Mi"), "nodes": mine.len().to_string(),
            });
            if np["status"]["resources"] != resources {
                self.go()?;
                self.patch(
                    &format!("{}/status", nodepool_path(name)),
                    json!({"status": {"resources": resources}}),
                )
                .await?;
            }
        }
        Ok(())
    }
}

// --- objects ---

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

fn namespace_of(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or("default")
}

fn is_deleting(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

fn finalizers(obj: &Value) -> impl Iterator<Item = &Value> {
    obj["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
}

fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
    finalizers(obj).any(|f| f == finalizer)
}

fn status_profile(class: &Value) -> Option<&str> {
    class["status"]["instanceProfile"]
        .as_str()
        .filter(|p| !p.is_empty())
}

/// A JSON map of strings (`spec.tags`), others left out.
fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// The first value of a NodePool's `In` requirement on `key`.
fn requirement(np: &Value, key: &str) -> Option<String> {
    np["spec"]["template"]["spec"]["requirements"]
        .as_array()?
        .iter()
        .find(|r| r["key"] == key && r["operator"] == "In")?["values"][0]
        .as_str()
        .map(String::from)
}

fn claim_labels(plan: &Plan, zone: &str) -> Value {
    json!({
        NODEPOOL_LABEL: name_of(&plan.nodepool),
        NODECLASS_LABEL: name_of(&plan.nodeclass),
        "node.kubernetes.io/instance-type": plan.instance_type,
        "karpenter.sh/capacity-type": if plan.spot { "spot" } else { "on-demand" },
        "topology.kubernetes.io/zone": zone,
        "kubernetes.io/arch": "amd64",
    })
}

/// `cpu` in cores, `memory` in MiB (`<n>Mi`), `pods` as the VPC CNI allows on a small
/// instance.
fn capacity(plan: &Plan) -> Value {
    json!({"cpu": plan.cpu.to_string(), "memory": format!("{}Mi", plan.memory_mib), "pods": "29"})
}

/// Waiting for a node: no `spec.nodeName`, not terminating, Pending, not a DaemonSet's.
fn is_pending(pod: &Value) -> bool {
    let unbound = pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    unbound && !is_deleting(pod) && phase == "Pending" && !owned_by(pod, "DaemonSet")
}

fn owned_by(pod: &Value, kind: &str) -> bool {
    pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| o.iter().any(|r| r["kind"] == kind))
}

/// What a drain evicts: not a DaemonSet's pod, not a mirror pod.
fn drainable(pod: &Value) -> bool {
    let mirror = pod["metadata"]["annotations"]
        .get("kubernetes.io/config.mirror")
        .is_some();
    !mirror && !owned_by(pod, "DaemonSet")
}

/// Whether one more node of `new_millis` CPU keeps NodePool `np` within
/// `spec.limits.cpu`, counting every NodeClaim of it.
fn within_limit(np: &Value, claims: &[Value], new_millis: i64) -> bool {
    let Some(limit) = np["spec"]["limits"].get("cpu") else {
        return true;
    };
    let limit = cpu_millis(limit).unwrap_or(0);
    let name = name_of(np);
    let used: i64 = claims
        .iter()
        .filter(|c| c["metadata"]["labels"][NODEPOOL_LABEL] == name)
        .filter_map(|c| cpu_millis(&c["status"]["capacity"]["cpu"]))
        .sum();
    used + new_millis <= limit
}

/// A CPU quantity in millicores: a number or a string of cores (`"2"`, `"1.5"`) or
/// millicores (`"500m"`).
fn cpu_millis(v: &Value) -> Option<i64> {
    let cores = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => match s.strip_suffix('m') {
            Some(m) => return m.parse().ok(),
            None => s.parse().ok()?,
        },
        _ => return None,
    };
    Some((cores * 1000.0).round() as i64)
}

fn format_millis(m: i64) -> String {
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

/// `<nodepool>-<5 letters>`, as `generateName` makes it (the API server's alphabet).
fn nodeclaim_name(nodepool: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    static N: AtomicU64 = AtomicU64::new(0);
    let seed = N.fetch_add(1, Ordering::Relaxed) * 7919 + u64::from(std::process::id());
    let suffix: String = (0..5)
        .map(|i| ALPHABET[((seed / 27u64.pow(i)) % 27) as usize] as char)
        .collect();
    format!("{nodepool}-{suffix}")
}

fn nodeclaim_path(name: &str) -> String {
    format!("/apis/karpenter.sh/v1/nodeclaims/{name}")
}

fn nodepool_path(name: &str) -> String {
    format!("/apis/karpenter.sh/v1/nodepools/{name}")
}

fn nodeclass_path(name: &str) -> String {
    format!("/apis/karpenter.k8s.aws/v1/ec2nodeclasses/{name}")
}

fn node_path(name: &str) -> String {
    format!("/api/v1/nodes/{name}")
}

fn pod_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/pods/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities() {
        assert_eq!(cpu_millis(&json!("100")), Some(100_000));
        assert_eq!(cpu_millis(&json!(0)), Some(0));
        assert_eq!(cpu_millis(&json!("500m")), Some(500));
        assert_eq!(cpu_millis(&json!("1.5")), Some(1500));
        assert_eq!(cpu_millis(&json!("lots")), None);
        assert_eq!(format_millis(4000), "4");
        assert_eq!(format_millis(2500), "2500m");
    }

    #[test]
    fn limits_count_every_nodeclaim_of_the_pool() {
        let np = |limits: Value| json!({"metadata": {"name": "a"}, "spec": {"limits": limits}});
        let claim = |pool: &str| json!({"metadata": {"labels": {NODEPOOL_LABEL: pool}}, "status": {"capacity": {"cpu": "2"}}});
        let claims = vec![claim("a"), claim("b")];
        assert!(within_limit(&np(json!({"cpu": "4"})), &claims, 2000));
        assert!(!within_limit(&np(json!({"cpu": "3"})), &claims, 2000));
        assert!(!within_limit(&np(json!({"cpu": 0})), &[], 2000));
        assert!(!within_limit(&np(json!({"cpu": "bad"})), &[], 2000));
        assert!(within_limit(&np(json!({"memory": "1Gi"})), &claims, 2000));
        let unlimited = json!({"metadata": {"name": "a"}, "spec": {}});
        assert!(within_limit(&unlimited, &claims, 2000));
    }

    #[test]
    fn nodeclaim_names_are_generated_names() {
        let a = nodeclaim_name("default");
        let b = nodeclaim_name("default");
        assert_ne!(a, b);
        assert!(a.starts_with("default-") && a.len() == "default-".len() + 5);
    }
}
