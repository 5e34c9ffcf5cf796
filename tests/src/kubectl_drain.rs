//! The reference drain for the benchmark: `kubectl drain --ignore-daemonsets
//! --delete-emptydir-data` from Debian 12's `kubernetes-client` package (kubectl 1.20.2,
//! the drain helper AWS Node Termination Handler uses; `make bench` installs it as
//! `.venv/bin/kubectl`), run against a [`FakeKube`] and timed from the fake's side.
//!
//! kubectl runs as it ships: its client-side rate limiting (client-go's default 5
//! requests/s, burst 10, for the clientset; kubectl's discovery client its own) is part
//! of what is measured. It reads nothing of the user's: a kubeconfig of its own naming the
//! fake's plain-HTTP URL, a discovery cache in a fresh directory, `HOME` pointing there,
//! and no other environment (no `KUBECONFIG`, no proxy variables).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::fakes::kube::{merge_patch, FakeKube};

/// The crowded node's name (an EC2 private DNS name, as EKS names nodes).
pub const CROWDED_NODE: &str = "ip-10-0-9-99.eu-west-1.compute.internal";
/// The EC2 instance behind [`CROWDED_NODE`] (its `spec.providerID` names it).
pub const CROWDED_INSTANCE: &str = "i-0b0b0b0b0b0b0b0b0";
/// How many of the crowded node's pods a drain must evict (the ReplicaSet's).
pub const CROWDED_EVICTABLE: usize = 98;

/// The environment variable naming the kubectl to run instead of `.venv/bin/kubectl`.
pub const KUBECTL_ENV: &str = "FLEET_KUBECTL";

/// The kubectl the comparison runs: `$FLEET_KUBECTL`, else `.venv/bin/kubectl` of the
/// workspace (`make bench` installs Debian's there). Never one found on `PATH`.
pub fn kubectl_path() -> PathBuf {
    std::env::var_os(KUBECTL_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join(".venv/bin/kubectl"))
}

/// What one `kubectl drain` did, timed from the instant its process was started.
#[derive(Debug)]
pub struct KubectlDrain {
    /// When the fake answered 201 to the last eviction of the drainable pods found on the
    /// node at the start (each pod's first accepted eviction counts); `None` unless every
    /// one of them had an eviction accepted.
    pub every_eviction_accepted: Option<Duration>,
    /// When the node first held no pod but DaemonSet and mirror pods (the fake's store,
    /// [`FakeKube::watch_node_empty`]); `None` if not before kubectl exited.
    pub node_empty: Option<Duration>,
    /// How kubectl exited.
    pub exit: ExitStatus,
    /// From the start to kubectl's exit.
    pub elapsed: Duration,
    /// How many of the drainable pods found at the start had an eviction accepted (201).
    pub evictions_accepted: usize,
    /// Eviction requests kubectl sent (accepted, refused with 429, or anything else).
    pub eviction_requests: usize,
    /// Every API request the fake received while kubectl ran (kubectl's, discovery
    /// included, when nothing else speaks to the fake).
    pub requests: usize,
    /// The last 4000 bytes of kubectl's standard error.
    pub stderr_tail: String,
}

/// Tail kept of kubectl's standard error.
const STDERR_TAIL: usize = 4000;

/// Seeds `kube` with the benchmark's crowded node, [`CROWDED_NODE`]: 110 running pods,
/// all Ready, each with `terminationGracePeriodSeconds` = `grace_seconds`: 10 DaemonSet
/// pods (`kube-system/ds-<i>`, each of its own DaemonSet `ds-<i>`, which exists), 2
/// mirror pods (`kube-system/static-<i>`, annotated `kubernetes.io/config.mirror`) and
/// [`CROWDED_EVICTABLE`] pods of the ReplicaSet `shop/web` (`shop/web-<i>`, label
/// `app=web`). With `pdb`, the PodDisruptionBudget `shop/web` (policy/v1,
/// `maxUnavailable: 1` over `app=web`) covers those.
///
/// Owner references are as the controllers write them (`controller: true`,
/// `blockOwnerDeletion: true`, the owner's UID): kubectl's drain filters go by the
/// controller reference (`metav1.GetControllerOf`), and look the DaemonSet up (a pod
/// whose DaemonSet is missing is an error without `--force`).
pub fn crowded_node(kube: &FakeKube, grace_seconds: u32, pdb: bool) {
    kube.insert(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": CROWDED_NODE},
        "spec": {"providerID": format!("aws:///eu-west-1a/{CROWDED_INSTANCE}")}}),
    );
    kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    if pdb {
        kube.insert(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}));
    }
    // The owner, stored, and a controller reference to it.
    let owner = |kind: &str, name: &str, ns: &str, replicas: Option<usize>| -> Value {
        let mut spec = json!({"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}});
        if let Some(r) = replicas {
            spec["replicas"] = json!(r);
        }
        kube.insert(json!({"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": ns}, "spec": spec}));
        let uid = kube
            .get("apps/v1", kind, ns, name)
            .map(|o| o["metadata"]["uid"].clone())
            .unwrap_or(Value::Null);
        json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid,
            "controller": true, "blockOwnerDeletion": true}])
    };
    let pod = |name: String, ns: &str, meta: Value| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"nodeName": CROWDED_NODE, "terminationGracePeriodSeconds": grace_seconds,
                "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running"}});
        merge_patch(&mut p, &json!({"metadata": meta}));
        p
    };
    for i in 0..10 {
        let name = format!("ds-{i}");
        let refs = owner("DaemonSet", &name, "kube-system", None);
        kube.insert(pod(
            name.clone(),
            "kube-system",
            json!({"labels": {"app": name}, "ownerReferences": refs}),
        ));
    }
    for i in 0..2 {
        kube.insert(pod(
            format!("static-{i}"),
            "kube-system",
            json!({"annotations": {"kubernetes.io/config.mirror": "x"}}),
        ));
    }
    let refs = owner("ReplicaSet", "web", "shop", Some(CROWDED_EVICTABLE));
    for i in 0..CROWDED_EVICTABLE {
        kube.insert(pod(
            format!("web-{i}"),
            "shop",
            json!({"labels": {"app": "web"}, "ownerReferences": refs}),
        ));
    }
}

/// A directory of its own under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "fleet-kubectl-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A kubeconfig naming only the fake's URL, as the current context, no credentials.
fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\n\
         users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
         current-context: fake\n"
    )
}

/// The `namespace/name` of the drainable pods on `node` now (not DaemonSet, not mirror).
fn drainable_pods(kube: &FakeKube, node: &str) -> Vec<(String, String)> {
    kube.list("v1", "Pod")
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == node)
        .filter(|p| {
            p["metadata"]["annotations"]
                .get("kubernetes.io/config.mirror")
                .is_none()
        })
        .filter(|p| {
            !p["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| o.iter().any(|r| r["kind"] == "DaemonSet"))
        })
        .map(|p| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&p["metadata"]["namespace"]), s(&p["metadata"]["name"]))
        })
        .collect()
}

/// Runs `kubectl drain <node> --ignore-daemonsets --delete-emptydir-data
/// --timeout=<timeout>s` (whole seconds, at least 1) with `kubectl` against `kube`'s
/// plain-HTTP URL ([`FakeKube::start`]; not the EKS mode) and times it from the instant
/// the process was started, from the fake's records: its request log with each answer's
/// status, and [`FakeKube::watch_node_empty`]. Waits for kubectl to exit, killing it 30 s
/// after `timeout` (then `Err`).
///
/// `Err` when kubectl cannot be started, its temporary files cannot be written, or it had
/// to be killed; a drain that fails is an `Ok` with kubectl's non-zero `exit`.
pub async fn kubectl_drain(
    kube: &FakeKube,
    kubectl: &Path,
    node: &str,
    timeout: Duration,
) -> Result<KubectlDrain, String> {
    if !kube.url.starts_with("http://") {
        return Err(format!(
            "kubectl_drain needs the fake's plain-HTTP mode, not {}",
            kube.url
        ));
    }
    let scratch = Scratch::new()?;
    let config = scratch.0.join("kubeconfig");
    std::fs::write(&config, kubeconfig(&kube.url))
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let targets = drainable_pods(kube, node);
    kube.watch_node_empty(node);
    let seconds = timeout.as_secs().max(1);
    let mut command = tokio::process::Command::new(kubectl);
    command
        .arg("--kubeconfig")
        .arg(&config)
        .arg("--cache-dir")
        .arg(scratch.0.join("cache"))
        .args([
            "drain",
            node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            &format!("--timeout={seconds}s"),
        ])
        .env_clear()
        .env("HOME", &scratch.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let t0 = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", kubectl.display()))?;
    let mut stderr = child.stderr.take();
    let read_stderr = async {
        let mut out = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut out).await;
        }
        out
    };
    let limit = Duration::from_secs(seconds) + Duration::from_secs(30);
    let (exit, err) = match tokio::time::timeout(limit, async {
        tokio::join!(child.wait(), read_stderr)
    })
    .await
    {
        Ok((Ok(exit), err)) => (exit, err),
        Ok((Err(e), _)) => return Err(format!("waiting for kubectl: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            return Err(format!(
                "kubectl drain still running {} s after its --timeout: killed",
                limit.as_secs() - seconds
            ));
        }
    };
    let ended = Instant::now();
    let requests: Vec<_> = kube
        .requests()
        .into_iter()
        .filter(|r| r.at >= t0 && r.at <= ended)
        .collect();
    let evictions: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/eviction"))
        .collect();
    let mut accepted = std::collections::BTreeMap::new();
    for r in evictions.iter().filter(|r| r.status == Some(201)) {
        // /api/v1/namespaces/<ns>/pods/<name>/eviction
        let parts: Vec<&str> = r.path.split('/').collect();
        if let [.., "namespaces", ns, "pods", name, "eviction"] = parts.as_slice() {
            accepted
                .entry((ns.to_string(), name.to_string()))
                .or_insert(r.at);
        }
    }
    let accepted_targets: Vec<Instant> = targets
        .iter()
        .filter_map(|t| accepted.get(t).copied())
        .collect();
    let every_eviction_accepted = (accepted_targets.len() == targets.len())
        .then(|| accepted_targets.iter().max().copied())
        .flatten()
        .map(|at| at.duration_since(t0));
    let node_empty = kube
        .node_emptied_at(node)
        .filter(|at| *at <= ended)
        .map(|at| at.saturating_duration_since(t0));
    let text = String::from_utf8_lossy(&err);
    let cut = text
        .char_indices()
        .map(|(i, _)| i)
        .find(|i| text.len() - i <= STDERR_TAIL)
        .unwrap_or(text.len());
    Ok(KubectlDrain {
        every_eviction_accepted,
        node_empty,
        exit,
        elapsed: ended.duration_since(t0),
        evictions_accepted: accepted_targets.len(),
        eviction_requests: evictions.len(),
        requests: requests.len(),
        stderr_tail: text[cut..].to_string(),
    })
}
