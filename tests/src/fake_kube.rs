//! A fake Kubernetes API server. No real API server can run on these machines; this one
//! keeps the semantics the functions depend on, and records every request so tests can
//! assert on what a real API would have received:
//!
//! - discovery (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`): built-in kinds,
//!   plus the kinds of every CustomResourceDefinition once it is Established; `/api/v1`
//!   also lists the `pods/eviction` subresource (kind policy/v1 `Eviction`), which
//!   kubectl's drain looks for before it evicts;
//! - server-side apply (`PATCH` with `application/apply-patch+yaml`, `fieldManager`
//!   required) with field management as the API server's structured-merge-diff does it:
//!   `metadata.managedFields` records, per manager and operation (`Apply`, or `Update`
//!   for creates and merge patches, manager from `fieldManager`, else `unknown`), the
//!   fields it owns in the real `fieldsV1` shape. An apply removes the fields its manager
//!   applied before and no longer applies (unless another manager owns them too), then
//!   merges the configuration in: maps field by field, lists of built-in kinds with a
//!   merge key item by item (`containers`, `initContainers`, `volumes`, `env`,
//!   `imagePullSecrets` by `name`, container `ports` by `containerPort`, a Service's
//!   `spec.ports` by `port`, `volumeMounts` by `mountPath`, `conditions` by `type`), every
//!   other list (and every list of a custom resource) replaced whole. Applying a value
//!   different from one another manager owns is a 409 Conflict naming the field and the
//!   manager, unless `force=true`, which takes the field over; an update takes the fields
//!   it changes without conflict. The stored object is returned, and `resourceVersion`
//!   is left alone when nothing changed (re-applying is a no-op). Simplified: one merge
//!   key per list (the real ones also key on `protocol`), no schema beyond those lists,
//!   `status` applied like any field;
//! - namespaced objects need their Namespace (404 otherwise), custom resources need their
//!   CRD Established (404 otherwise); CRDs become Established after a configurable
//!   number of reads;
//! - get, list (label and field selectors of the form `k=v`), create (409 when it
//!   exists), JSON merge patch, strategic merge patch of built-in kinds (keyed lists by
//!   their merge key, `metadata.finalizers` as a set, the `$patch`, `$retainKeys`,
//!   `$deleteFromPrimitiveList` directives; 415 for a custom resource, as the API server
//!   answers), delete (404 when gone; a Namespace takes its objects);
//! - finalizers: DELETE of an object with `metadata.finalizers` sets `deletionTimestamp`
//!   and answers 200 with the object, which stays until a patch or a controller removes
//!   the last one. A Service of type LoadBalancer gets its controller's finalizer
//!   (`service.kubernetes.io/load-balancer-cleanup`, or `service.k8s.aws/resources` for
//!   the `service.k8s.aws/nlb` class) when it is created; after its DELETE the controller
//!   removes it after [`DEFAULT_LB_CLEANUP`], or never
//!   ([`FakeKube::set_load_balancer_cleanup`]);
//! - the Eviction API as the API server's eviction handler and the disruption controller
//!   decide (`pkg/registry/core/pod/storage/eviction.go`, `pkg/controller/disruption`):
//!   a budget's selector with `matchLabels` and `matchExpressions` (In, NotIn, Exists,
//!   DoesNotExist; an empty selector covers the namespace), `minAvailable` and
//!   `maxUnavailable` as numbers or percentages of the expected pods (rounded up, both),
//!   only Ready pods counted healthy; the body a policy/v1 or policy/v1beta1 Eviction
//!   naming the pod (400 otherwise); 429 while a budget forbids it, 500 when more than
//!   one budget covers the pod, a Pending, Succeeded, Failed or terminating pod evicted
//!   without consulting a budget, a running pod that is not Ready by its budget's
//!   `unhealthyPodEvictionPolicy` (`IfHealthyBudget`, the default, or `AlwaysAllow`);
//!   409 on a UID precondition mismatch, 404 for a pod already gone. An evicted or
//!   deleted pod is terminating for its grace period (`gracePeriodSeconds` honoured),
//!   then goes; a pod owned by a ReplicaSet or StatefulSet gets its replacement on
//!   another node at once, as the controller makes it, Ready only after the ready delay
//!   (default 30 s, [`FakeKube::set_ready_delay`]). A Running pod seeded without
//!   conditions is seeded Ready, as its kubelet would have reported it;
//! - a request log with each answer's status ([`FakeKube::requests`]), and the instant a
//!   node held no pod but DaemonSet and mirror pods ([`FakeKube::watch_node_empty`]);
//! - injectable latency and faults (a status code for the next N requests, or for the
//!   n-th; a connection broken mid-response), and pods deleted between list and evict;
//! - two ways in: [`FakeKube::start`] serves plain HTTP with no authentication (the
//!   `FLEET_KUBE_API_URL` shortcut), [`FakeKube::start_eks`] serves as an EKS cluster's
//!   API does, HTTPS with a CA of its own ([`FakeKube::ca_data`], DescribeCluster's shape)
//!   and every request authenticated by an EKS token checked as aws-iam-authenticator
//!   checks it, then vouched for by moto's STS ([`crate::eks_auth`]); refused requests get
//!   401 Unauthorized ([`FakeKube::rejections`] says why), callers STS named are in
//!   [`FakeKube::authenticated_arns`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};

use crate::eks_auth::EksAuthenticator;

#[derive(Debug, Clone)]
struct Kind {
    group: String,
    version: String,
    kind: String,
    plural: String,
    namespaced: bool,
}

/// One request as the API received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When the request arrived (after the injected latency; it is answered at once).
    pub at: std::time::Instant,
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
    /// The HTTP status it was answered with; `None` when the connection was broken
    /// mid-response ([`CONNECTION_RESET`]).
    pub status: Option<u16>,
}

type Key = (String, String, String, String); // group, plural, namespace ("" = cluster), name

#[derive(Default)]
struct Store {
    kinds: Vec<Kind>,
    objects: BTreeMap<Key, Value>,
    requests: Vec<Recorded>,
    latency: Duration,
    faults: VecDeque<u16>,
    establish_after_reads: u32,
    pending_crds: HashMap<String, u32>,
    resource_version: u64,
    uid: u64,
    /// Play the ReplicaSet: a terminated pod with an owner comes back on another node.
    replace_evicted: bool,
    /// (requests left before it, the fault) for [`FakeKube::fail_request`].
    fault_at: Option<(usize, u16)>,
    /// `namespace/name` of pods someone deletes just before their eviction arrives.
    vanish_before_evict: Vec<String>,
    /// How long a replacement pod takes to become Ready.
    ready_delay: Duration,
    /// What the load-balancer controllers do with a deleted Service's finalizer.
    lb_cleanup: LoadBalancerCleanup,
    /// Per budget (`namespace/name`), the most it has been below its desired healthy
    /// count just after a disruption.
    shortfall: BTreeMap<String, i64>,
    /// The same, just after evictions only (deletions bypass budgets by design).
    eviction_shortfall: BTreeMap<String, i64>,
    /// Nodes watched by [`FakeKube::watch_node_empty`], with the instant each was first
    /// seen empty.
    emptied: BTreeMap<String, Option<std::time::Instant>>,
}

/// The finalizer the service controller (cloud provider) puts on a Service of type
/// LoadBalancer before it provisions the load balancer, and removes once it is deleted.
pub const LB_CLEANUP_FINALIZER: &str = "service.kubernetes.io/load-balancer-cleanup";
/// The AWS Load Balancer Controller's finalizer, on Services whose `loadBalancerClass` is
/// `service.k8s.aws/nlb`.
pub const AWS_LB_FINALIZER: &str = "service.k8s.aws/resources";

/// What the controller that owns a Service's load balancer does once the Service is
/// deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancerCleanup {
    /// Deletes the load balancer, then removes its finalizer this long after the DELETE.
    After(Duration),
    /// Never removes it (the controller's pods are gone, or it lacks a permission): the
    /// Service stays terminating.
    Never,
}

impl Default for LoadBalancerCleanup {
    fn default() -> Self {
        LoadBalancerCleanup::After(DEFAULT_LB_CLEANUP)
    }
}

/// The finalizer of the controller that provisions this Service's load balancer: the
/// cloud provider's service controller for a LoadBalancer Service without a
/// `loadBalancerClass`, the AWS Load Balancer Controller for `service.k8s.aws/nlb`, none
/// for other classes (their controllers are not modelled) or other Service types.
fn controller_finalizer(obj: &Value) -> Option<&'static str> {
    if obj["kind"] != "Service" || obj["spec"]["type"] != "LoadBalancer" {
        return None;
    }
    match obj["spec"]["loadBalancerClass"].as_str() {
        None => Some(LB_CLEANUP_FINALIZER),
        Some("service.k8s.aws/nlb") => Some(AWS_LB_FINALIZER),
        Some(_) => None,
    }
}

/// The controller adds its finalizer before it provisions anything (unless the Service is
/// already being deleted: no finalizer may be added then).
fn add_controller_finalizer(obj: &mut Value) {
    let Some(finalizer) = controller_finalizer(obj) else {
        return;
    };
    if is_terminating(obj) {
        return;
    }
    let list = &mut obj["metadata"]["finalizers"];
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(items) = list.as_array_mut() {
        if !items.iter().any(|f| f == finalizer) {
            items.push(json!(finalizer));
        }
    }
}

fn has_finalizers(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

/// A terminating object whose last finalizer went is removed, as the garbage collector
/// does once `metadata.finalizers` is empty.
fn remove_if_released(s: &mut Store, key: &Key) -> bool {
    let released = s
        .objects
        .get(key)
        .is_some_and(|o| is_terminating(o) && !has_finalizers(o));
    if released {
        s.objects.remove(key);
    }
    released
}

/// After a Service's DELETE: its load-balancer controller deletes the load balancer and
/// then removes its finalizer, by [`LoadBalancerCleanup`].
fn schedule_lb_cleanup(s: &Store, store: &Arc<Mutex<Store>>, key: Key) {
    let Some(obj) = s.objects.get(&key) else {
        return;
    };
    let Some(finalizer) = controller_finalizer(obj) else {
        return;
    };
    let LoadBalancerCleanup::After(delay) = s.lb_cleanup else {
        return;
    };
    let store = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let Ok(mut s) = store.lock() else { return };
        let rv = s.next_rv();
        if let Some(obj) = s.objects.get_mut(&key) {
            if let Some(items) = obj["metadata"]["finalizers"].as_array_mut() {
                items.retain(|f| f != finalizer);
            }
            obj["metadata"]["resourceVersion"] = json!(rv);
        }
        remove_if_released(&mut s, &key);
    });
}

/// How long the controller takes by default to delete a load balancer and release its
/// Service.
pub const DEFAULT_LB_CLEANUP: Duration = Duration::from_secs(2);

/// How long a replacement pod takes to become Ready by default: an image already on the
/// node and a readiness probe passing after a few periods.
pub const DEFAULT_READY_DELAY: Duration = Duration::from_secs(30);

/// A fault code that is no HTTP status: the connection breaks in the middle of the
/// response (headers sent, the body cut off), as when an API server restarts.
pub const CONNECTION_RESET: u16 = 0;

const BUILTIN: &[(&str, &str, &str, &str, bool)] = &[
    ("", "v1", "Namespace", "namespaces", false),
    ("", "v1", "Node", "nodes", false),
    ("", "v1", "Pod", "pods", true),
    ("", "v1", "Service", "services", true),
    ("", "v1", "ConfigMap", "configmaps", true),
    ("", "v1", "Secret", "secrets", true),
    ("", "v1", "ServiceAccount", "serviceaccounts", true),
    ("apps", "v1", "Deployment", "deployments", true),
    ("apps", "v1", "DaemonSet", "daemonsets", true),
    ("apps", "v1", "StatefulSet", "statefulsets", true),
    ("apps", "v1", "ReplicaSet", "replicasets", true),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", true),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
];

fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn api_version(k: &Kind) -> String {
    if k.group.is_empty() {
        k.version.clone()
    } else {
        format!("{}/{}", k.group, k.version)
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Lists of built-in kinds whose items are plain values merged as a set by a strategic
/// merge patch (`patchStrategy: merge` without a key): `metadata.finalizers`.
fn merges_values(path: &[String]) -> bool {
    path == ["f:metadata", "f:finalizers"]
}

/// A strategic merge patch (`application/strategic-merge-patch+json`) of a built-in kind,
/// as apimachinery's `strategicpatch` applies one: maps merge field by field (`null`
/// removes), lists with a merge key merge item by item ([`merge_key`]; an item with
/// `"$patch": "delete"` removes its match, a `{"$patch": "replace"}` item makes the list
/// the patch's), `metadata.finalizers` merges as a set, other lists are replaced. The
/// directives `$patch` (`replace`, `delete`, `merge`) on a map, `$retainKeys` and
/// `$deleteFromPrimitiveList/<field>` are honoured; `$setElementOrder/<field>` only
/// orders items and is ignored (items keep their order). Any other `$` key is an error,
/// as the real one refuses unknown directives. Simplified: one merge key per list, the
/// lists [`merge_key`] knows.
fn strategic_merge(
    kind: Option<&str>,
    target: &mut Value,
    patch: &Value,
    path: &mut FieldPath,
) -> Result<(), String> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    let plain = |m: &Map<String, Value>| -> Value {
        Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = plain(p);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("Unknown patch type: {other}")),
    }
    if !target.is_object() {
        *target = json!({});
    }
    let Value::Object(t) = target else {
        return Ok(());
    };
    for (key, value) in p {
        if let Some(directive) = key.strip_prefix('$') {
            if let Some(field) = directive.strip_prefix("deleteFromPrimitiveList/") {
                let gone: Vec<&Value> = value.as_array().into_iter().flatten().collect();
                if let Some(items) = t.get_mut(field).and_then(Value::as_array_mut) {
                    items.retain(|i| !gone.contains(&i));
                }
            } else if !(directive == "patch"
                || directive == "retainKeys"
                || directive.starts_with("setElementOrder/"))
            {
                return Err(format!(
                    "unknown directive in a strategic merge patch: {key}"
                ));
            }
            continue;
        }
        if value.is_null() {
            t.remove(key);
            continue;
        }
        path.push(format!("f:{key}"));
        let slot = t.entry(key.clone()).or_insert(Value::Null);
        match value {
            Value::Object(_) => strategic_merge(kind, slot, value, path)?,
            Value::Array(items) => {
                if let Some(mk) = merge_key(kind, path) {
                    merge_keyed_list(kind, slot, items, mk, path)?;
                } else if merges_values(path) {
                    let list = slot.as_array().cloned().unwrap_or_default();
                    let mut merged = list;
                    for i in items {
                        if !merged.contains(i) {
                            merged.push(i.clone());
                        }
                    }
                    *slot = Value::Array(merged);
                } else {
                    *slot = value.clone();
                }
            }
            _ => *slot = value.clone(),
        }
        if slot.is_null() {
            t.remove(key);
        }
        path.pop();
    }
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        t.retain(|k, _| keep.iter().any(|r| r == k));
    }
    Ok(())
}

/// A strategic merge of a list whose items merge by the field `key`.
fn merge_keyed_list(
    kind: Option<&str>,
    slot: &mut Value,
    items: &[Value],
    key: &str,
    path: &mut FieldPath,
) -> Result<(), String> {
    if items.iter().any(|i| i["$patch"] == "replace") {
        *slot = Value::Array(
            items
                .iter()
                .filter(|i| i["$patch"] != "replace")
                .cloned()
                .collect(),
        );
        return Ok(());
    }
    if !slot.is_array() {
        *slot = json!([]);
    }
    let Value::Array(list) = slot else {
        return Ok(());
    };
    for item in items {
        if item.get(key).is_none() {
            return Err(format!(
                "map: {item} does not contain declared merge key: {key}"
            ));
        }
        let at = list.iter().position(|i| i.get(key) == item.get(key));
        if item["$patch"] == "delete" {
            if let Some(at) = at {
                list.remove(at);
            }
            continue;
        }
        path.push(item_element(item, key));
        match at {
            Some(at) => strategic_merge(kind, &mut list[at], item, path)?,
            None => {
                let mut fresh = json!({});
                strategic_merge(kind, &mut fresh, item, path)?;
                list.push(fresh);
            }
        }
        path.pop();
    }
    Ok(())
}

fn selector_matches(obj: &Value, query: &HashMap<String, String>) -> bool {
    let pairs = |key: &str| -> Vec<(String, String)> {
        query
            .get(key)
            .map(|s| {
                s.split(',')
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, v)| (k.trim_end_matches('=').to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let labels_ok = pairs("labelSelector")
        .iter()
        .all(|(k, v)| obj["metadata"]["labels"][k].as_str() == Some(v.as_str()));
    let fields_ok = pairs("fieldSelector").iter().all(|(k, v)| {
        let mut cur = obj;
        for part in k.split('.') {
            cur = &cur[part];
        }
        cur.as_str() == Some(v.as_str())
    });
    labels_ok && fields_ok
}

impl Store {
    fn kind_by_plural(&self, group: &str, version: &str, plural: &str) -> Option<Kind> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
            .cloned()
    }

    fn next_rv(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    fn discovery(&self, group: &str, version: &str) -> Option<Value> {
        let mut resources: Vec<Value> = self
            .kinds
            .iter()
            .filter(|k| k.group == group && k.version == version)
            .map(|k| {
                json!({"name": k.plural, "singularName": k.kind.to_lowercase(), "namespaced": k.namespaced,
                       "kind": k.kind, "verbs": ["create","delete","get","list","patch","update","watch"]})
            })
            .collect();
        if group.is_empty() && version == "v1" {
            // The eviction subresource, as the API server lists it: its kind is
            // policy/v1 Eviction (a v1beta1 body is accepted too, see `evict`). kubectl's
            // drain evicts only when it finds this entry (drain.go `CheckEvictionSupport`:
            // name `pods/eviction`, kind `Eviction`), and deletes otherwise.
            resources.push(
                json!({"name": "pods/eviction", "singularName": "", "namespaced": true,
                "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}),
            );
        }
        if resources.is_empty() {
            return None;
        }
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        )
    }

    fn groups(&self) -> Value {
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for k in self.kinds.iter().filter(|k| !k.group.is_empty()) {
            let versions = seen.entry(k.group.clone()).or_default();
            if !versions.contains(&k.version) {
                versions.push(k.version.clone());
            }
        }
        let groups: Vec<Value> = seen
            .into_iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                    .collect();
                json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// Marks a CRD Established and makes its kinds discoverable.
    fn establish(&mut self, name: &str) {
        let key = (
            "apiextensions.k8s.io".to_string(),
            "customresourcedefinitions".to_string(),
            String::new(),
            name.to_string(),
        );
        let Some(crd) = self.objects.get_mut(&key) else {
            return;
        };
        crd["status"]["conditions"] = json!([
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}
        ]);
        let spec = crd["spec"].clone();
        let group = spec["group"].as_str().unwrap_or_default().to_string();
        let namespaced = spec["scope"].as_str() == Some("Namespaced");
        for v in spec["versions"].as_array().into_iter().flatten() {
            let kind = Kind {
                group: group.clone(),
                version: v["name"].as_str().unwrap_or_default().to_string(),
                kind: spec["names"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                plural: spec["names"]["plural"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                namespaced,
            };
            if self
                .kind_by_plural(&kind.group, &kind.version, &kind.plural)
                .is_none()
            {
                self.kinds.push(kind);
            }
        }
    }

    fn stamp_new(&mut self, obj: &mut Value, k: &Kind, ns: &str) {
        self.uid += 1;
        let rv = self.next_rv();
        let meta = &mut obj["metadata"];
        meta["uid"] = json!(format!("uid-{:08}", self.uid));
        meta["resourceVersion"] = json!(rv);
        meta["creationTimestamp"] = json!("2026-11-23T07:00:00Z");
        if k.namespaced {
            meta["namespace"] = json!(ns);
        }
        obj["apiVersion"] = json!(api_version(k));
        obj["kind"] = json!(k.kind);
    }
}

#[derive(Clone)]
pub struct FakeKube {
    pub url: String,
    store: Arc<Mutex<Store>>,
    /// EKS mode: the authenticator and the CA's PEM.
    eks: Option<(Arc<EksAuthenticator>, String)>,
}

struct Target {
    kind: Kind,
    namespace: String,
    name: Option<String>,
    subresource: Option<String>,
}

/// Marks a response whose connection is broken on purpose ([`CONNECTION_RESET`]).
#[derive(Clone, Copy)]
struct BrokenConnection;

async fn handle(
    State(store): State<Arc<Mutex<Store>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = store.lock().map(|s| s.latency).unwrap_or_default();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let Ok(mut s) = store.lock() else {
        return status(500, "InternalError", "lock".into());
    };
    // The whole answer is made under the lock, so the request recorded at `i` is this one.
    let i = s.requests.len();
    let response = respond(&mut s, &store, method, uri, headers, body);
    let code = (response.extensions().get::<BrokenConnection>().is_none())
        .then(|| response.status().as_u16());
    if let Some(r) = s.requests.get_mut(i) {
        r.status = code;
    }
    note_emptied_nodes(&mut s);
    response
}

/// Whether a pod counts for a drain: not a mirror pod, not a DaemonSet's.
fn drainable(pod: &Value) -> bool {
    let mirror = pod["metadata"]["annotations"]
        .get("kubernetes.io/config.mirror")
        .is_some();
    let daemon = pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| o.iter().any(|r| r["kind"] == "DaemonSet"));
    !mirror && !daemon
}

/// Records, for each watched node not yet empty, whether it is now: no pod left on it
/// but DaemonSet and mirror pods (a terminating pod is still there).
fn note_emptied_nodes(s: &mut Store) {
    if s.emptied.values().all(Option::is_some) {
        return;
    }
    let occupied: BTreeSet<String> = s
        .objects
        .iter()
        .filter(|((g, p, _, _), pod)| g.is_empty() && p == "pods" && drainable(pod))
        .filter_map(|(_, pod)| pod["spec"]["nodeName"].as_str().map(str::to_string))
        .collect();
    let now = std::time::Instant::now();
    for (node, at) in s.emptied.iter_mut() {
        if at.is_none() && !occupied.contains(node) {
            *at = Some(now);
        }
    }
}

/// Answers one request (the lock held throughout).
fn respond(
    s: &mut Store,
    store: &Arc<Mutex<Store>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let parsed_body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .or_else(|_| serde_saphyr::from_slice::<Value>(&body))
            .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()))
    };
    s.requests.push(Recorded {
        at: std::time::Instant::now(),
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        content_type: content_type.clone(),
        body: parsed_body.clone(),
        status: None,
    });
    let scheduled = match s.fault_at {
        Some((0, code)) => {
            s.fault_at = None;
            Some(code)
        }
        Some((n, code)) => {
            s.fault_at = Some((n - 1, code));
            None
        }
        None => None,
    };
    if scheduled == Some(CONNECTION_RESET) {
        let broken = futures::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset (injected)",
            ))
        });
        let mut response = (
            StatusCode::OK,
            [("content-type", "application/json")],
            axum::body::Body::from_stream(broken),
        )
            .into_response();
        response.extensions_mut().insert(BrokenConnection);
        return response;
    }
    if let Some(code) = scheduled.or_else(|| s.faults.pop_front()) {
        let reason = match code {
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            _ => "Injected",
        };
        return status(code, reason, format!("injected fault {code}"));
    }
    let query: HashMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    let segments: Vec<&str> = uri.path().split('/').filter(|p| !p.is_empty()).collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api"] => {
            return ok(
                json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
            )
        }
        ["apis"] => return ok(s.groups()),
        ["version"] => {
            return ok(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake"}))
        }
        ["api", v, rest @ ..] => ("".to_string(), v.to_string(), rest.to_vec()),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest.to_vec()),
        _ => {
            return status(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
            )
        }
    };
    if rest.is_empty() {
        return match (method.as_str(), s.discovery(&group, &version)) {
            ("GET", Some(d)) => ok(d),
            _ => status(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
            ),
        };
    }
    let owned = |x: Option<&&str>| x.map(|v| v.to_string());
    let (namespace, plural, name, sub) = match rest.as_slice() {
        // `/api/v1/namespaces/<name>` is the Namespace object itself.
        ["namespaces", name] => (
            String::new(),
            "namespaces".to_string(),
            Some(name.to_string()),
            None,
        ),
        ["namespaces", name, "status"] => (
            String::new(),
            "namespaces".to_string(),
            Some(name.to_string()),
            Some("status".to_string()),
        ),
        ["namespaces", ns, plural, more @ ..] => (
            ns.to_string(),
            plural.to_string(),
            owned(more.first()),
            owned(more.get(1)),
        ),
        [plural, more @ ..] => (
            String::new(),
            plural.to_string(),
            owned(more.first()),
            owned(more.get(1)),
        ),
        [] => {
            return status(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
            )
        }
    };
    let Some(kind) = s.kind_by_plural(&group, &version, &plural) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
        );
    };
    let target = Target {
        kind,
        namespace,
        name,
        subresource: sub,
    };
    if target.kind.plural == "pods" {
        if let (Some(name), Some("eviction")) = (target.name.clone(), target.subresource.as_deref())
        {
            if method == Method::POST {
                let qualified = format!("{}/{name}", target.namespace);
                if let Some(i) = s.vanish_before_evict.iter().position(|p| *p == qualified) {
                    s.vanish_before_evict.remove(i);
                    s.objects.remove(&pod_key(&target.namespace, &name));
                }
                return evict(s, store, &target.namespace, &name, &parsed_body);
            }
        }
        if let (Some(name), None, true) = (
            target.name.clone(),
            target.subresource.as_ref(),
            method == Method::DELETE,
        ) {
            return delete_pod(s, store, &target.namespace, &name, &parsed_body, &query);
        }
    }
    let service_deleted = match (&target.name, &target.subresource) {
        (Some(name), None) if target.kind.plural == "services" && method == Method::DELETE => {
            Some((
                String::new(),
                "services".to_string(),
                target.namespace.clone(),
                name.clone(),
            ))
        }
        _ => None,
    };
    let response = dispatch(s, &method, target, &query, &content_type, parsed_body);
    if let Some(key) = service_deleted {
        if response.status() == StatusCode::OK {
            schedule_lb_cleanup(s, store, key);
        }
    }
    response
}

fn pod_key(ns: &str, name: &str) -> Key {
    (
        String::new(),
        "pods".into(),
        ns.to_string(),
        name.to_string(),
    )
}

fn is_terminating(pod: &Value) -> bool {
    !pod["metadata"]["deletionTimestamp"].is_null()
}

/// A label selector as the API server reads one (`metav1.LabelSelectorAsSelector`): every
/// `matchLabels` pair and every `matchExpressions` requirement must hold; an empty
/// selector (`{}`) matches everything, an absent one (`null`) nothing.
fn labels_match(selector: &Value, labels: &Value) -> bool {
    let Some(sel) = selector.as_object() else {
        return false;
    };
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let pairs = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.iter().all(|(k, v)| label(k) == v.as_str()));
    let expressions = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(|exprs| {
            exprs.iter().all(|e| {
                let key = e["key"].as_str().unwrap_or_default();
                let values: Vec<&str> = e["values"]
                    .as_array()
                    .map(|v| v.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match e["operator"].as_str() {
                    Some("In") => label(key).is_some_and(|v| values.contains(&v)),
                    Some("NotIn") => label(key).is_none_or(|v| !values.contains(&v)),
                    Some("Exists") => label(key).is_some(),
                    Some("DoesNotExist") => label(key).is_none(),
                    _ => false,
                }
            })
        });
    pairs && expressions
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// A percentage of `expected` or a number; percentages round up (the disruption
/// controller's `GetScaledValueFromIntOrPercent(..., true)` for both fields).
fn scaled(v: &Value, expected: i64) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            (pct / 100.0 * expected as f64).ceil() as i64
        }
        _ => 0,
    }
}

/// (current healthy, desired healthy) of a budget over the pods its selector covers: the
/// expected pods are those not terminating (the controller's replicas, whose replacement
/// for a terminating pod exists at once); healthy ones are also Ready.
fn budget_health(pdb: &Value, covered: &[&Value]) -> (i64, i64) {
    let live: Vec<&&Value> = covered.iter().filter(|p| !is_terminating(p)).collect();
    let expected = live.len() as i64;
    let healthy = live.iter().filter(|p| is_ready(p)).count() as i64;
    let spec = &pdb["spec"];
    let desired = if !spec["minAvailable"].is_null() {
        scaled(&spec["minAvailable"], expected)
    } else if !spec["maxUnavailable"].is_null() {
        (expected - scaled(&spec["maxUnavailable"], expected)).max(0)
    } else {
        0
    };
    (healthy, desired)
}

fn uid_precondition_fails(pod: &Value, options: &Value) -> bool {
    options["preconditions"]["uid"]
        .as_str()
        .is_some_and(|uid| pod["metadata"]["uid"].as_str() != Some(uid))
}

/// What the API server's update path makes of a patched object's metadata: one that is
/// not an object, or a renamed object, is refused (422 Invalid, as `ValidateObjectMeta`
/// and `ValidateObjectMetaUpdate` do); `deletionTimestamp` and
/// `deletionGracePeriodSeconds` stay as they were (`rest.BeforeUpdate` resets them: only
/// a DELETE sets them, and nothing clears them).
fn settle_metadata(before: &Value, after: &mut Value) -> Result<(), String> {
    if !after["metadata"].is_object() {
        return Err("metadata: Invalid value: must be an object".into());
    }
    for field in ["name", "namespace"] {
        let was = &before["metadata"][field];
        if was.is_string() && after["metadata"][field] != *was {
            return Err(format!(
                "metadata.{field}: Invalid value: {}: field is immutable",
                after["metadata"][field]
            ));
        }
    }
    if let Some(meta) = after["metadata"].as_object_mut() {
        for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
            match before["metadata"].get(field) {
                Some(v) => {
                    meta.insert(field.to_string(), v.clone());
                }
                None => {
                    meta.remove(field);
                }
            }
        }
    }
    Ok(())
}

/// Marks a pod terminating; it disappears after its grace period. A pod owned by a
/// ReplicaSet or StatefulSet gets its replacement on another node at once (the
/// controller sees one replica fewer as soon as the pod terminates), Ready after the
/// ready delay.
fn terminate(
    s: &mut Store,
    store: &Arc<Mutex<Store>>,
    ns: &str,
    name: &str,
    grace: i64,
    evicted: bool,
) {
    let Some(pod) = s.objects.get_mut(&pod_key(ns, name)) else {
        return;
    };
    if is_terminating(pod) {
        // Deleted again (a forced delete after an eviction): a shorter grace period
        // brings the end forward; the replacement exists already.
        remove_after(store, ns, name, grace);
        return;
    }
    pod["metadata"]["deletionTimestamp"] = json!("2026-11-23T10:00:00Z");
    pod["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
    let owned = pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| {
            o.iter()
                .any(|r| r["kind"] == "ReplicaSet" || r["kind"] == "StatefulSet")
        });
    let labels = pod["metadata"]["labels"].clone();
    let mut replacement = pod.clone();
    if owned && s.replace_evicted {
        s.uid += 1;
        let new_name = format!("{name}-r{}", s.uid);
        replacement["metadata"]["name"] = json!(new_name);
        replacement["metadata"]["uid"] = json!(format!("uid-{:08}", s.uid));
        replacement["metadata"].as_object_mut().map(|m| {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds")
        });
        replacement["spec"]["nodeName"] = json!("replacement-node");
        replacement["status"] =
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]});
        s.objects.insert(pod_key(ns, &new_name), replacement);
        let (store, ns, delay) = (store.clone(), ns.to_string(), s.ready_delay);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Ok(mut s) = store.lock() else { return };
            if let Some(p) = s.objects.get_mut(&pod_key(&ns, &new_name)) {
                p["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
            }
        });
    }
    record_shortfall(s, ns, &labels, evicted);
    remove_after(store, ns, name, grace);
}

/// After a disruption: how far below its desired healthy count each budget over the pod
/// now is, the worst kept per budget (see [`FakeKube::budget_shortfall`]).
fn record_shortfall(s: &mut Store, ns: &str, labels: &Value, evicted: bool) {
    let pods: Vec<Value> = s
        .objects
        .iter()
        .filter(|((g, p, n, _), _)| g.is_empty() && p == "pods" && n == ns)
        .map(|(_, v)| v.clone())
        .collect();
    let mut worst = vec![];
    for ((g, p, n, name), pdb) in &s.objects {
        if g != "policy" || p != "poddisruptionbudgets" || n != ns {
            continue;
        }
        if !labels_match(&pdb["spec"]["selector"], labels) {
            continue;
        }
        let covered: Vec<&Value> = pods
            .iter()
            .filter(|p| labels_match(&pdb["spec"]["selector"], &p["metadata"]["labels"]))
            .collect();
        let (healthy, desired) = budget_health(pdb, &covered);
        worst.push((format!("{ns}/{name}"), desired - healthy));
    }
    for (budget, shortfall) in worst {
        if evicted {
            let entry = s
                .eviction_shortfall
                .entry(budget.clone())
                .or_insert(i64::MIN);
            *entry = (*entry).max(shortfall);
        }
        let entry = s.shortfall.entry(budget).or_insert(i64::MIN);
        *entry = (*entry).max(shortfall);
    }
}

/// EKS mode: a request goes on only with a token STS vouches for; else 401, as the API
/// server answers (the reason is kept for [`FakeKube::rejections`], not told the client).
async fn authenticate(
    State(auth): State<Arc<EksAuthenticator>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match auth.authenticate(header.as_deref()).await {
        Ok(_) => next.run(request).await,
        Err(_) => status(401, "Unauthorized", "Unauthorized".into()),
    }
}

/// The pod goes when its grace period (seconds) is over.
fn remove_after(store: &Arc<Mutex<Store>>, ns: &str, name: &str, grace: i64) {
    let store = store.clone();
    let (ns, name) = (ns.to_string(), name.to_string());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(grace.max(0) as u64)).await;
        if let Ok(mut s) = store.lock() {
            s.objects.remove(&pod_key(&ns, &name));
            note_emptied_nodes(&mut s);
        }
    });
}

/// Why the API server refuses an Eviction body with 400 BadRequest, if it does. The
/// subresource decodes a policy/v1 or a policy/v1beta1 Eviction (it accepts both since
/// Kubernetes 1.22; a missing `apiVersion` and `kind` default to the endpoint's, policy/v1
/// Eviction); `metadata.name` must be the pod's (eviction.go `Create`: "name in URL does
/// not match name in Eviction object"), and a namespace given must be the URL's (the
/// create handler's `EnsureObjectNamespaceMatchesRequestNamespace`). kubectl up to 1.21
/// sends policy/v1beta1 whatever version discovery prefers: its typed v1beta1 client's
/// encoder stamps the Go type's own version over the one drain.go `EvictPod` sets.
fn eviction_body_error(ns: &str, name: &str, body: &Value) -> Option<String> {
    let Some(obj) = body.as_object() else {
        return Some("the body of an eviction must be an Eviction object".into());
    };
    let field = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let defaulted = api_version.is_empty() && kind.is_empty();
    if !defaulted {
        let known = matches!(api_version, "policy/v1" | "policy/v1beta1") && kind == "Eviction";
        if !known {
            return Some(format!(
                "the eviction subresource takes a policy/v1 or policy/v1beta1 Eviction, not {api_version} {kind}"
            ));
        }
    }
    if body["metadata"]["name"].as_str() != Some(name) {
        return Some("name in URL does not match name in Eviction object".into());
    }
    match body["metadata"]["namespace"].as_str() {
        Some(n) if !n.is_empty() && n != ns => Some(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ),
        _ => None,
    }
}

/// The Eviction API with PodDisruptionBudget semantics: 429 while a budget forbids it.
fn evict(s: &mut Store, store: &Arc<Mutex<Store>>, ns: &str, name: &str, body: &Value) -> Response {
    if let Some(message) = eviction_body_error(ns, name, body) {
        return status(400, "BadRequest", message);
    }
    let Some(pod) = s.objects.get(&pod_key(ns, name)).cloned() else {
        return status(404, "NotFound", format!("pods \"{name}\" not found"));
    };
    if uid_precondition_fails(&pod, &body["deleteOptions"]) {
        return status(
            409,
            "Conflict",
            format!("Precondition failed: UID in precondition does not match the pod {name}"),
        );
    }
    // A pod that is Pending, finished or already terminating goes without a budget's say
    // (eviction.go: `canIgnorePDB`).
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    let ignores_budgets =
        is_terminating(&pod) || matches!(phase, "Pending" | "Succeeded" | "Failed");
    if !ignores_budgets {
        let labels = &pod["metadata"]["labels"];
        let pods: Vec<Value> = s
            .objects
            .iter()
            .filter(|((g, p, n, _), _)| g.is_empty() && p == "pods" && n == ns)
            .map(|(_, v)| v.clone())
            .collect();
        let budgets: Vec<&Value> = s
            .objects
            .iter()
            .filter(|((g, p, n, _), _)| g == "policy" && p == "poddisruptionbudgets" && n == ns)
            .map(|(_, pdb)| pdb)
            .filter(|pdb| labels_match(&pdb["spec"]["selector"], labels))
            .collect();
        if budgets.len() > 1 {
            return status(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".into(),
            );
        }
        if let Some(pdb) = budgets.first() {
            let covered: Vec<&Value> = pods
                .iter()
                .filter(|p| labels_match(&pdb["spec"]["selector"], &p["metadata"]["labels"]))
                .collect();
            let (healthy, desired) = budget_health(pdb, &covered);
            let allowed = if is_ready(&pod) {
                healthy - desired >= 1
            } else {
                // An unready pod costs the budget nothing: evicted while the budget is
                // met, or always with `AlwaysAllow`.
                pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow" || healthy >= desired
            };
            if !allowed {
                return status(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.".into(),
                );
            }
        }
    }
    if !is_terminating(&pod) {
        let grace = pod["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30);
        terminate(s, store, ns, name, grace, true);
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201})),
    )
        .into_response()
}

/// Pod delete: honours the UID precondition and `gracePeriodSeconds` (query or body).
fn delete_pod(
    s: &mut Store,
    store: &Arc<Mutex<Store>>,
    ns: &str,
    name: &str,
    body: &Value,
    query: &HashMap<String, String>,
) -> Response {
    let Some(pod) = s.objects.get(&pod_key(ns, name)).cloned() else {
        return status(404, "NotFound", format!("pods \"{name}\" not found"));
    };
    if uid_precondition_fails(&pod, body) {
        return status(
            409,
            "Conflict",
            format!("Precondition failed: UID in precondition does not match the pod {name}"),
        );
    }
    let grace = body["gracePeriodSeconds"]
        .as_i64()
        .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok()))
        .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30);
    terminate(s, store, ns, name, grace, false);
    let mut out = s.objects.get(&pod_key(ns, name)).cloned().unwrap_or(pod);
    out["kind"] = json!("Pod");
    ok(out)
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn not_found(k: &Kind, name: &str) -> Response {
    let what = if k.group.is_empty() {
        k.plural.clone()
    } else {
        format!("{}.{}", k.plural, k.group)
    };
    status(404, "NotFound", format!("{what} \"{name}\" not found"))
}

fn dispatch(
    s: &mut Store,
    method: &Method,
    t: Target,
    query: &HashMap<String, String>,
    content_type: &str,
    body: Value,
) -> Response {
    let k = t.kind.clone();
    if k.namespaced && !t.namespace.is_empty() && method != Method::GET && method != Method::DELETE
    {
        let ns_key = (
            String::new(),
            "namespaces".to_string(),
            String::new(),
            t.namespace.clone(),
        );
        if !s.objects.contains_key(&ns_key) {
            return status(
                404,
                "NotFound",
                format!("namespaces \"{}\" not found", t.namespace),
            );
        }
    }
    let key = |name: &str| {
        (
            k.group.clone(),
            k.plural.clone(),
            if k.namespaced {
                t.namespace.clone()
            } else {
                String::new()
            },
            name.to_string(),
        )
    };
    // Built-in kinds merge their lists by key; a custom resource's lists are atomic.
    let builtin = BUILTIN.iter().any(|b| b.0 == k.group && b.2 == k.kind);
    let schema = builtin.then_some(k.kind.as_str());
    // Who a create or a merge patch is recorded as in `managedFields`.
    let updater = query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .cloned()
        .unwrap_or_else(|| "unknown".to_string());
    match (method.as_str(), t.name.as_deref()) {
        ("GET", None) => {
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|((g, p, ns, _), _)| {
                    *g == k.group
                        && *p == k.plural
                        && (t.namespace.is_empty() || *ns == t.namespace)
                })
                .map(|(_, v)| v.clone())
                .filter(|v| selector_matches(v, query))
                .collect();
            let rv = s.resource_version.to_string();
            ok(
                json!({"kind": format!("{}List", k.kind), "apiVersion": api_version(&k), "metadata": {"resourceVersion": rv}, "items": items}),
            )
        }
        ("GET", Some(name)) => {
            if k.plural == "customresourcedefinitions" {
                if let Some(left) = s.pending_crds.get_mut(name) {
                    if *left <= 1 {
                        s.pending_crds.remove(name);
                        s.establish(name);
                    } else {
                        *left -= 1;
                    }
                }
            }
            match s.objects.get(&key(name)) {
                Some(obj) => ok(obj.clone()),
                None => not_found(&k, name),
            }
        }
        ("POST", None) => {
            let Some(name) = body["metadata"]["name"].as_str().map(String::from) else {
                return status(422, "Invalid", "metadata.name: Required value".into());
            };
            if s.objects.contains_key(&key(&name)) {
                return status(
                    409,
                    "AlreadyExists",
                    format!("{} \"{name}\" already exists", k.plural),
                );
            }
            let mut obj = body;
            if let Some(m) = obj["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
            record_update(schema, &json!({}), &mut obj, &updater, &api_version(&k));
            s.stamp_new(&mut obj, &k, &t.namespace);
            add_controller_finalizer(&mut obj);
            s.objects.insert(key(&name), obj.clone());
            after_write(s, &k, &name, true);
            (StatusCode::CREATED, axum::Json(obj)).into_response()
        }
        ("PATCH", Some(name))
            if t.subresource.is_none() || t.subresource.as_deref() == Some("status") =>
        {
            let existing = s.objects.get(&key(name)).cloned();
            if content_type.starts_with("application/apply-patch") {
                if query.get("fieldManager").is_none_or(|m| m.is_empty()) {
                    return status(
                        400,
                        "BadRequest",
                        "PATCH with apply-patch requires fieldManager".into(),
                    );
                }
                if body["kind"].as_str() != Some(k.kind.as_str())
                    || body["apiVersion"].as_str() != Some(api_version(&k).as_str())
                {
                    return status(
                        400,
                        "BadRequest",
                        format!("apply body must be {} {}", api_version(&k), k.kind),
                    );
                }
                if body["metadata"]["name"].as_str() != Some(name) {
                    return status(
                        400,
                        "BadRequest",
                        "metadata.name does not match the path".into(),
                    );
                }
                let manager = query.get("fieldManager").cloned().unwrap_or_default();
                let force = query.get("force").is_some_and(|f| f == "true");
                let mut config = body;
                if let Some(m) = config.get_mut("metadata").and_then(Value::as_object_mut) {
                    for field in [
                        "resourceVersion",
                        "uid",
                        "managedFields",
                        "creationTimestamp",
                    ] {
                        m.remove(field);
                    }
                }
                let created = existing.is_none();
                let before = existing.unwrap_or_else(|| json!({}));
                let mut obj = before.clone();
                if let Err(message) = apply_configuration(
                    schema,
                    &mut obj,
                    &config,
                    &manager,
                    force,
                    &api_version(&k),
                ) {
                    return status(409, "Conflict", message);
                }
                if let Err(message) = settle_metadata(&before, &mut obj) {
                    return status(422, "Invalid", message);
                }
                add_controller_finalizer(&mut obj);
                if created {
                    s.stamp_new(&mut obj, &k, &t.namespace);
                } else if obj != before {
                    obj["metadata"]["resourceVersion"] = json!(s.next_rv());
                }
                s.objects.insert(key(name), obj.clone());
                remove_if_released(s, &key(name));
                after_write(s, &k, name, created);
                let code = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                (code, axum::Json(obj)).into_response()
            } else if content_type.starts_with("application/merge-patch+json")
                || content_type.starts_with("application/strategic-merge-patch+json")
            {
                let strategic = content_type.starts_with("application/strategic-merge-patch");
                if strategic && schema.is_none() {
                    // The API server has no patch strategy for a custom resource's fields.
                    return status(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
                    );
                }
                let Some(mut obj) = existing else {
                    return not_found(&k, name);
                };
                let before = obj.clone();
                if strategic {
                    if let Err(message) = strategic_merge(schema, &mut obj, &body, &mut Vec::new())
                    {
                        return status(400, "BadRequest", message);
                    }
                } else {
                    merge_patch(&mut obj, &body);
                }
                if let Err(message) = settle_metadata(&before, &mut obj) {
                    return status(422, "Invalid", message);
                }
                record_update(schema, &before, &mut obj, &updater, &api_version(&k));
                obj["metadata"]["resourceVersion"] = json!(s.next_rv());
                s.objects.insert(key(name), obj.clone());
                remove_if_released(s, &key(name));
                ok(obj)
            } else {
                status(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format: {content_type}"),
                )
            }
        }
        ("DELETE", Some(name)) if s.objects.get(&key(name)).is_some_and(has_finalizers) => {
            // Finalizers hold it: marked for deletion, answered 200 with the object
            // (the API server's `BeforeDelete` path), gone once they are removed.
            let rv = s.next_rv();
            let Some(obj) = s.objects.get_mut(&key(name)) else {
                return not_found(&k, name);
            };
            if !is_terminating(obj) {
                obj["metadata"]["deletionTimestamp"] = json!("2026-11-23T10:00:00Z");
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                obj["metadata"]["resourceVersion"] = json!(rv);
            }
            ok(obj.clone())
        }
        ("DELETE", Some(name)) => match s.objects.remove(&key(name)) {
            Some(obj) => {
                if k.plural == "namespaces" {
                    s.objects.retain(|(_, _, ns, _), _| ns != name);
                }
                ok(
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name, "kind": k.plural, "uid": obj["metadata"]["uid"]}}),
                )
            }
            None => not_found(&k, name),
        },
        _ => status(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported here"),
        ),
    }
}

fn after_write(s: &mut Store, k: &Kind, name: &str, created: bool) {
    if k.plural != "customresourcedefinitions" || !created {
        return;
    }
    if s.establish_after_reads == 0 {
        s.establish(name);
    } else {
        let n = s.establish_after_reads;
        s.pending_crds.insert(name.to_string(), n);
    }
}

impl FakeKube {
    fn new_store() -> Arc<Mutex<Store>> {
        let store = Store {
            kinds: BUILTIN
                .iter()
                .map(|(g, v, k, p, n)| Kind {
                    group: g.to_string(),
                    version: v.to_string(),
                    kind: k.to_string(),
                    plural: p.to_string(),
                    namespaced: *n,
                })
                .collect(),
            replace_evicted: true,
            ready_delay: DEFAULT_READY_DELAY,
            lb_cleanup: LoadBalancerCleanup::After(DEFAULT_LB_CLEANUP),
            ..Default::default()
        };
        Arc::new(Mutex::new(store))
    }

    fn seeded(self) -> FakeKube {
        for ns in ["default", "kube-system"] {
            self.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        }
        self
    }

    /// Serves plain HTTP, unauthenticated, on a free loopback port for as long as the
    /// current tokio runtime lives (the `FLEET_KUBE_API_URL` shortcut's server).
    pub async fn start() -> FakeKube {
        let store = Self::new_store();
        let app = Router::new().fallback(handle).with_state(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake kube");
        let addr = listener.local_addr().expect("fake kube address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeKube {
            url: format!("http://{addr}"),
            store,
            eks: None,
        }
        .seeded()
    }

    /// Serves as EKS cluster `cluster`'s API would: HTTPS with a certificate from a CA of
    /// its own ([`FakeKube::ca_data`]), and every request authenticated by an EKS token
    /// checked as aws-iam-authenticator checks it, STS being the one `sdk` names (moto).
    /// The keys STS knows are `sdk`'s credentials (see [`crate::eks_auth`]).
    pub async fn start_eks(cluster: &str, sdk: &aws_types::SdkConfig) -> FakeKube {
        use aws_credential_types::provider::ProvideCredentials;
        let endpoint = sdk
            .endpoint_url()
            .expect("an SDK config naming moto's endpoint");
        let credentials = sdk
            .credentials_provider()
            .expect("credentials")
            .provide_credentials()
            .await
            .expect("credentials");
        let auth = Arc::new(EksAuthenticator::new(cluster, endpoint, &[credentials]));
        let certs = crate::eks_auth::serving_certs(&format!("fake-kube-ca-{cluster}"));
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            certs.cert_pem.into_bytes(),
            certs.key_pem.into_bytes(),
        )
        .await
        .expect("TLS configuration");
        let store = Self::new_store();
        let app = Router::new()
            .fallback(handle)
            .with_state(store.clone())
            .layer(axum::middleware::from_fn_with_state(
                auth.clone(),
                authenticate,
            ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake kube");
        let addr = listener.local_addr().expect("fake kube address");
        let server = axum_server::tls_rustls::from_tcp_rustls(listener, tls).expect("TLS server");
        tokio::spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        });
        FakeKube {
            url: format!("https://{addr}"),
            store,
            eks: Some((auth, certs.ca_pem)),
        }
        .seeded()
    }

    fn authenticator(&self) -> &EksAuthenticator {
        &self.eks.as_ref().expect("FakeKube::start_eks").0
    }

    /// EKS mode: the CA as DescribeCluster's `certificateAuthority.data` gives it (base64
    /// of the PEM).
    pub fn ca_data(&self) -> String {
        crate::eks_auth::ca_data(&self.eks.as_ref().expect("FakeKube::start_eks").1)
    }

    /// EKS mode: the ARN of each caller STS vouched for, once per token verified.
    pub fn authenticated_arns(&self) -> Vec<String> {
        self.authenticator().authenticated_arns()
    }

    /// EKS mode: why each refused request got its 401, in order.
    pub fn rejections(&self) -> Vec<String> {
        self.authenticator().rejections()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut guard = self.store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Stores an object as if created through the API (for seeding state).
    pub fn insert(&self, mut obj: Value) {
        self.with(|s| {
            let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
            let kind_name = obj["kind"].as_str().unwrap_or_default().to_string();
            let Some(k) = s
                .kinds
                .iter()
                .find(|k| api_version_matches(k, &api_version) && k.kind == kind_name)
                .cloned()
            else {
                panic!("fake kube: unknown kind {api_version} {kind_name}");
            };
            let ns = obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            s.stamp_new(&mut obj, &k, &ns);
            // Seeded as running: its kubelet has reported it Ready.
            if k.kind == "Pod"
                && obj["status"]["phase"] == "Running"
                && obj["status"]["conditions"].is_null()
            {
                obj["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
            }
            add_controller_finalizer(&mut obj);
            let ns_key = if k.namespaced { ns } else { String::new() };
            s.objects.insert(
                (k.group.clone(), k.plural.clone(), ns_key, name.clone()),
                obj,
            );
            after_write(s, &k, &name, true);
        })
    }

    /// The stored object, if any.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        self.with(|s| {
            let k = s
                .kinds
                .iter()
                .find(|k| api_version_matches(k, api_version) && k.kind == kind)?
                .clone();
            let ns = if k.namespaced {
                namespace.to_string()
            } else {
                String::new()
            };
            s.objects
                .get(&(k.group, k.plural, ns, name.to_string()))
                .cloned()
        })
    }

    /// Every stored object of a kind.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        self.with(|s| {
            let Some(k) = s
                .kinds
                .iter()
                .find(|k| api_version_matches(k, api_version) && k.kind == kind)
                .cloned()
            else {
                return vec![];
            };
            s.objects
                .iter()
                .filter(|((g, p, _, _), _)| *g == k.group && *p == k.plural)
                .map(|(_, v)| v.clone())
                .collect()
        })
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|s| s.requests.clone())
    }

    pub fn clear_requests(&self) {
        self.with(|s| s.requests.clear())
    }

    /// Every request waits this long first.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency)
    }

    /// The next `n` requests fail with `code`.
    pub fn fail_next(&self, n: usize, code: u16) {
        self.with(|s| s.faults.extend(std::iter::repeat_n(code, n)))
    }

    /// The `n`-th request from now (1 = the next) fails with `code`, or breaks off
    /// mid-response with [`CONNECTION_RESET`].
    pub fn fail_request(&self, n: usize, code: u16) {
        self.with(|s| s.fault_at = Some((n.saturating_sub(1), code)))
    }

    /// Whether the fault set with [`Self::fail_request`] has happened.
    pub fn fault_pending(&self) -> bool {
        self.store
            .lock()
            .map(|s| s.fault_at.is_some())
            .unwrap_or(false)
    }

    /// `namespace/name` is deleted by someone else just before its eviction arrives (the
    /// drainer listed it, then it went).
    pub fn vanish_before_evict(&self, pod: &str) {
        self.with(|s| s.vanish_before_evict.push(pod.to_string()))
    }

    /// How long a replacement pod takes to become Ready (default [`DEFAULT_READY_DELAY`]).
    pub fn set_ready_delay(&self, delay: Duration) {
        self.with(|s| s.ready_delay = delay)
    }

    /// Whether terminated pods with an owner are replaced on another node (default yes).
    pub fn replace_evicted_pods(&self, on: bool) {
        self.with(|s| s.replace_evicted = on)
    }

    /// What the load-balancer controllers do with a deleted Service's finalizer (default
    /// [`LoadBalancerCleanup::After`] [`DEFAULT_LB_CLEANUP`]).
    pub fn set_load_balancer_cleanup(&self, cleanup: LoadBalancerCleanup) {
        self.with(|s| s.lb_cleanup = cleanup)
    }

    /// [`Self::budget_shortfall`] counting evictions only: what the Eviction API let
    /// through (a delete, forced or not, bypasses every budget by design).
    pub fn eviction_shortfall(&self, budget: &str) -> Option<i64> {
        self.with(|s| s.eviction_shortfall.get(budget).copied())
    }

    /// The worst a budget (`namespace/name`) has been just after one of its pods was
    /// evicted or deleted: its desired healthy count minus the Ready pods left (`None`:
    /// no pod it covers was disrupted). Above 0, more pods were down than it allows.
    pub fn budget_shortfall(&self, budget: &str) -> Option<i64> {
        self.with(|s| s.shortfall.get(budget).copied())
    }

    /// From now on, records the first instant `node` holds no pod but DaemonSet and
    /// mirror pods (terminating pods still count: they are on it until they go). If it
    /// is empty already, that is now. Read it with [`Self::node_emptied_at`].
    pub fn watch_node_empty(&self, node: &str) {
        self.with(|s| {
            s.emptied.insert(node.to_string(), None);
            note_emptied_nodes(s);
        })
    }

    /// When the node watched with [`Self::watch_node_empty`] was first seen empty; `None`
    /// while it is not (or is not watched).
    pub fn node_emptied_at(&self, node: &str) -> Option<std::time::Instant> {
        self.with(|s| s.emptied.get(node).copied().flatten())
    }

    /// Waits (real time, up to `timeout`) until the object is gone; whether it went.
    pub async fn wait_gone(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> bool {
        let until = std::time::Instant::now() + timeout;
        while self.get(api_version, kind, namespace, name).is_some() {
            if std::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    /// CRDs created from now on become Established after this many reads of them.
    pub fn establish_crds_after_reads(&self, n: u32) {
        self.with(|s| s.establish_after_reads = n)
    }
}

fn api_version_matches(k: &Kind, wanted: &str) -> bool {
    wanted == api_version(k)
}

// Server-side apply's field management, after structured-merge-diff as the API server
// runs it (simplified: one merge key per list, no schema beyond the lists below).

/// A field path as `managedFields` spells it: `f:<name>` for a field of a map,
/// `k:<key as JSON>` for an item of a list merged by key.
type FieldPath = Vec<String>;
type FieldSet = BTreeSet<FieldPath>;

/// Fields of `metadata` the API server sets; they belong to no manager.
const SERVER_SET: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

/// The key by which the list at `path` of a built-in `kind` merges (its
/// `patchMergeKey`), or `None` when it is atomic: replaced whole. Every list of a custom
/// resource (`kind` `None`) is atomic.
fn merge_key(kind: Option<&str>, path: &[String]) -> Option<&'static str> {
    let kind = kind?;
    Some(match path.last()?.strip_prefix("f:")? {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "ports" if kind == "Service" && path.len() == 2 => "port",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "conditions" => "type",
        _ => return None,
    })
}

/// The merge key of this list when every item has it; a list without items, or with an
/// item lacking the key, is treated as atomic.
fn keyed(kind: Option<&str>, path: &[String], items: &[Value]) -> Option<&'static str> {
    let key = merge_key(kind, path)?;
    (!items.is_empty() && items.iter().all(|i| i.get(key).is_some())).then_some(key)
}

/// The path element of a keyed list's item: `k:{"name":"app"}`.
fn item_element(item: &Value, key: &str) -> String {
    format!("k:{}", json!({ key: item[key] }))
}

/// Whether `item` is the one a `k:` path element names.
fn is_item(item: &Value, element: &str) -> bool {
    let Some(Ok(Value::Object(key))) = element
        .strip_prefix("k:")
        .map(serde_json::from_str::<Value>)
    else {
        return false;
    };
    key.iter().all(|(f, v)| item.get(f) == Some(v))
}

/// The fields a configuration sets, as structured-merge-diff counts them: every leaf (a
/// scalar, an atomic list, an empty map) and every item of a keyed list. `apiVersion`,
/// `kind` and the fields the server sets are nobody's.
fn field_set(kind: Option<&str>, v: &Value) -> FieldSet {
    fn walk(kind: Option<&str>, v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    let server_set = match path.as_slice() {
                        [] => k == "apiVersion" || k == "kind",
                        [meta] => meta == "f:metadata" && SERVER_SET.contains(&k.as_str()),
                        _ => false,
                    };
                    if !server_set {
                        path.push(format!("f:{k}"));
                        walk(kind, child, path, out);
                        path.pop();
                    }
                }
            }
            Value::Array(items) if keyed(kind, path, items).is_some() => {
                let key = keyed(kind, path, items).unwrap_or_default();
                for item in items {
                    path.push(item_element(item, key));
                    out.insert(path.clone());
                    walk(kind, item, path, out);
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        }
    }
    let mut out = FieldSet::new();
    walk(kind, v, &mut Vec::new(), &mut out);
    out
}

/// The value at `path`, if the object has it.
fn get_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |v, element| match element.strip_prefix("f:") {
            Some(field) => v.get(field),
            None => v.as_array()?.iter().find(|i| is_item(i, element)),
        })
}

/// Removes the field or list item at `path`, and the maps that removal leaves empty.
fn remove_at(v: &mut Value, path: &[String]) {
    let Some((element, rest)) = path.split_first() else {
        return;
    };
    if !rest.is_empty() {
        let child = match element.strip_prefix("f:") {
            Some(field) => v.get_mut(field),
            None => v
                .as_array_mut()
                .and_then(|items| items.iter_mut().find(|i| is_item(i, element))),
        };
        let Some(child) = child else { return };
        remove_at(child, rest);
        if child.as_object().is_none_or(|m| !m.is_empty()) {
            return;
        }
    }
    match (element.strip_prefix("f:"), v) {
        (Some(field), Value::Object(m)) => {
            m.remove(field);
        }
        (None, Value::Array(items)) => items.retain(|i| !is_item(i, element)),
        _ => {}
    }
}

/// Merges an applied configuration into the object: maps field by field, keyed lists
/// item by item (new items appended), anything else replaced; `null` removes a field.
fn merge_applied(kind: Option<&str>, target: &mut Value, config: &Value, path: &mut FieldPath) {
    match (config, &mut *target) {
        (Value::Object(c), _) => {
            if !target.is_object() {
                *target = json!({});
            }
            let Value::Object(t) = target else { return };
            for (k, v) in c {
                if v.is_null() {
                    t.remove(k);
                    continue;
                }
                path.push(format!("f:{k}"));
                merge_applied(kind, t.entry(k.clone()).or_insert(Value::Null), v, path);
                path.pop();
            }
        }
        (Value::Array(items), Value::Array(t)) if keyed(kind, path, items).is_some() => {
            let key = keyed(kind, path, items).unwrap_or_default();
            for item in items {
                let element = item_element(item, key);
                path.push(element.clone());
                match t.iter_mut().find(|i| is_item(i, &element)) {
                    Some(existing) => merge_applied(kind, existing, item, path),
                    None => t.push(item.clone()),
                }
                path.pop();
            }
        }
        (other, _) => *target = other.clone(),
    }
}

/// A path as the API server names it in a conflict: `.spec.containers[name="app"].image`.
fn display_path(path: &[String]) -> String {
    path.iter()
        .map(|element| match element.strip_prefix("f:") {
            Some(field) => format!(".{field}"),
            None => {
                let key: Map<String, Value> = element
                    .strip_prefix("k:")
                    .and_then(|k| serde_json::from_str(k).ok())
                    .unwrap_or_default();
                let key: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", key.join(","))
            }
        })
        .collect()
}

/// One entry of `metadata.managedFields`.
struct Managed {
    manager: String,
    operation: String,
    fields: FieldSet,
}

/// `fieldsV1` as the API server writes it: nested `f:`/`k:` maps, `{}` for a leaf, and
/// `".": {}` for a member that also has members below it (a list item).
fn fields_v1(set: &FieldSet) -> Value {
    fn tidy(v: &mut Value) {
        if let Value::Object(m) = v {
            if m.len() == 1 && m.contains_key(".") {
                m.clear();
            }
            m.values_mut().for_each(tidy);
        }
    }
    let mut root = json!({});
    for path in set {
        let node = path.iter().fold(&mut root, |node, element| {
            node.as_object_mut()
                .map(|m| m.entry(element.clone()).or_insert(json!({})))
                .expect("fieldsV1 nodes are maps")
        });
        node["."] = json!({});
    }
    tidy(&mut root);
    root
}

/// The field set a `fieldsV1` value stands for (the inverse of [`fields_v1`]).
fn parse_fields_v1(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    if !path.is_empty() && (m.is_empty() || m.contains_key(".")) {
        out.insert(path.clone());
    }
    for (element, child) in m.iter().filter(|(k, _)| *k != ".") {
        path.push(element.clone());
        parse_fields_v1(child, path, out);
        path.pop();
    }
}

/// The object's field managers, each with the fields it owns that the object still has.
fn read_managed(obj: &Value) -> Vec<Managed> {
    let entries = obj["metadata"]["managedFields"].as_array();
    entries
        .into_iter()
        .flatten()
        .map(|e| {
            let mut fields = FieldSet::new();
            parse_fields_v1(&e["fieldsV1"], &mut Vec::new(), &mut fields);
            fields.retain(|p| get_at(obj, p).is_some());
            Managed {
                manager: e["manager"].as_str().unwrap_or_default().to_string(),
                operation: e["operation"].as_str().unwrap_or_default().to_string(),
                fields,
            }
        })
        .collect()
}

/// Writes `metadata.managedFields`, dropping managers left without a field.
fn write_managed(obj: &mut Value, managed: Vec<Managed>, api_version: &str) {
    let entries: Vec<Value> = managed
        .into_iter()
        .map(|mut m| {
            m.fields.retain(|p| get_at(obj, p).is_some());
            m
        })
        .filter(|m| !m.fields.is_empty())
        .map(|m| {
            json!({"manager": m.manager, "operation": m.operation, "apiVersion": api_version,
                "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&m.fields)})
        })
        .collect();
    match obj["metadata"].as_object_mut() {
        Some(meta) if entries.is_empty() => {
            meta.remove("managedFields");
        }
        Some(meta) => {
            meta.insert("managedFields".into(), Value::Array(entries));
        }
        None => {}
    }
}

/// Ownership after an update (a create or a merge patch) by `manager`: it takes the
/// fields whose value it changed (and the list items it added) from whoever owned them;
/// updates never conflict.
fn record_update(
    kind: Option<&str>,
    before: &Value,
    after: &mut Value,
    manager: &str,
    api_version: &str,
) {
    let mut managed = read_managed(before);
    let changed: FieldSet = field_set(kind, after)
        .into_iter()
        .filter(|p| match p.last() {
            Some(e) if e.starts_with("k:") => get_at(before, p).is_none(),
            _ => get_at(before, p) != get_at(after, p),
        })
        .collect();
    for m in &mut managed {
        m.fields.retain(|p| !changed.contains(p));
    }
    match managed
        .iter_mut()
        .find(|m| m.manager == manager && m.operation == "Update")
    {
        Some(m) => m.fields.extend(changed),
        None => managed.push(Managed {
            manager: manager.to_string(),
            operation: "Update".into(),
            fields: changed,
        }),
    }
    write_managed(after, managed, api_version);
}

/// Server-side apply of `config` by `manager` onto `obj` (`{}` for a new object). The
/// fields it owned before and no longer sets are removed unless another manager owns
/// them too (a list item stays while another manager owns a field of it), then the
/// configuration is merged in and the manager owns exactly its fields. A field another
/// manager owns with a different value is a conflict: `Err` names them all, unless
/// `force`, which takes them over.
fn apply_configuration(
    kind: Option<&str>,
    obj: &mut Value,
    config: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
) -> Result<(), String> {
    let mut managed = read_managed(obj);
    let applied = field_set(kind, config);
    let is_mine = |m: &Managed| m.manager == manager && m.operation == "Apply";
    let mut conflicts = Vec::new();
    for m in managed.iter_mut().filter(|m| !is_mine(m)) {
        let lost: Vec<FieldPath> = m
            .fields
            .intersection(&applied)
            .filter(|p| !p.last().is_some_and(|e| e.starts_with("k:")))
            .filter(|p| get_at(obj, p) != get_at(config, p))
            .cloned()
            .collect();
        for p in lost {
            conflicts.push(format!(
                "conflict with {:?}: {}",
                m.manager,
                display_path(&p)
            ));
            m.fields.remove(&p);
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(format!(
            "Apply failed with {} conflict{}: {}",
            conflicts.len(),
            if conflicts.len() == 1 { "" } else { "s" },
            conflicts.join("; ")
        ));
    }
    let others: FieldSet = managed
        .iter()
        .filter(|m| !is_mine(m))
        .flat_map(|m| m.fields.iter().cloned())
        .collect();
    let mine = managed
        .iter()
        .find(|m| is_mine(m))
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    for path in mine.difference(&applied).filter(|p| !others.contains(*p)) {
        let another_owns_below = others.iter().any(|o| o.starts_with(path));
        // A key field goes with its item, never alone.
        let is_key_field = matches!(path.as_slice(), [.., item, field]
            if item.starts_with("k:") && field.strip_prefix("f:").is_some_and(|f| item.contains(&format!("\"{f}\""))));
        if !another_owns_below && !is_key_field {
            remove_at(obj, path);
        }
    }
    merge_applied(kind, obj, config, &mut Vec::new());
    match managed.iter_mut().find(|m| is_mine(m)) {
        Some(m) => m.fields = applied,
        None => managed.push(Managed {
            manager: manager.to_string(),
            operation: "Apply".into(),
            fields: applied,
        }),
    }
    write_managed(obj, managed, api_version);
    Ok(())
}
