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
//!   node held no pod but DaemonSet and mirror pods ([`FakeKube::watch_node_empty`]); a
//!   controller run beside the code under test (the fake Karpenter,
//!   [`crate::fakes::karpenter`]) is answered by the same handlers, out of the log and
//!   of the injected faults;
//! - injectable latency and faults (a status code for the next N requests, or for the
//!   n-th; a connection broken mid-response), and pods deleted between list and evict;
//! - two ways in: [`FakeKube::start`] serves plain HTTP with no authentication (the
//!   `FLEET_KUBE_API_URL` shortcut), [`FakeKube::start_eks`] serves as an EKS cluster's
//!   API does, HTTPS with a CA of its own ([`FakeKube::ca_data`], DescribeCluster's shape)
//!   and every request authenticated by an EKS token checked as aws-iam-authenticator
//!   checks it, then vouched for by moto's STS ([`crate::eks_auth`]); refused requests get
//!   401 Unauthorized ([`FakeKube::rejections`] says why), callers STS named are in
//!   [`FakeKube::authenticated_arns`].
//!
//! The fake's parts, one job a file: this module (the server, the store's shape, the
//! public API), `routing` (a request's path to its target), `store` (get, list,
//! create, patch, delete), `discovery` (built-in kinds, CRDs and their establishment),
//! `apply` (server-side apply's field management), `patch` (JSON merge and strategic
//! merge patches), `selectors` (label and field selectors), `finalizers` (finalizers and
//! the load-balancer controllers), `eviction` (the Eviction API, PodDisruptionBudgets,
//! pod termination), `faults` (injected latency and faults) and `eks` (EKS mode).

mod apply;
mod discovery;
mod eks;
mod eviction;
mod faults;
mod finalizers;
mod patch;
mod routing;
mod selectors;
mod store;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use crate::eks_auth::EksAuthenticator;
use discovery::{after_write, BUILTIN};
use eviction::note_emptied_nodes;
use faults::BrokenConnection;
use finalizers::add_controller_finalizer;
use routing::{respond, route};

pub use patch::merge_patch;
pub use routing::percent_decode;

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
    /// Objects a controller makes ready (`apiVersion`, kind, namespace or "", name):
    /// reads of the object left before it does, and the `status` it then writes.
    pending_ready: HashMap<(String, String, String, String), (u32, Value)>,
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

/// How long the controller takes by default to delete a load balancer and release its
/// Service.
pub const DEFAULT_LB_CLEANUP: Duration = Duration::from_secs(2);

/// How long a replacement pod takes to become Ready by default: an image already on the
/// node and a readiness probe passing after a few periods.
pub const DEFAULT_READY_DELAY: Duration = Duration::from_secs(30);

/// A fault code that is no HTTP status: the connection breaks in the middle of the
/// response (headers sent, the body cut off), as when an API server restarts.
pub const CONNECTION_RESET: u16 = 0;

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

#[derive(Clone)]
pub struct FakeKube {
    pub url: String,
    store: Arc<Mutex<Store>>,
    /// EKS mode: the authenticator and the CA's PEM.
    eks: Option<(Arc<EksAuthenticator>, String)>,
}

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

    /// Plays the controller of one object (Flux's kustomize-controller for a
    /// Kustomization, the Deployment controller and kubelets for a Deployment): after
    /// `reads` reads of the object (GETs that find it; an absent object is not worked on),
    /// `status` is merged into its `status`, and that read already sees it. Until then
    /// the object has whatever status it was stored with (none, for an applied one).
    pub fn ready_after_reads(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        reads: u32,
        status: Value,
    ) {
        let key = (
            api_version.to_string(),
            kind.to_string(),
            namespace.unwrap_or_default().to_string(),
            name.to_string(),
        );
        self.with(|s| s.pending_ready.insert(key, (reads.max(1), status)));
    }

    /// CRDs created from now on become Established after this many reads of them.
    pub fn establish_crds_after_reads(&self, n: u32) {
        self.with(|s| s.establish_after_reads = n)
    }

    /// Marks the stored CRD `name` (`<plural>.<group>`) Established now, whatever
    /// [`Self::establish_crds_after_reads`] says: a CRD installed long before the test.
    pub fn establish_crd(&self, name: &str) {
        self.with(|s| {
            s.pending_crds.remove(name);
            s.establish(name);
        })
    }

    /// A request of a controller the tests run beside the code under test (the fake
    /// Karpenter, [`crate::fakes::karpenter`]), given as a path with its query: answered
    /// as the API answers any client (same routes, same Eviction API and finalizers), but
    /// not recorded in [`Self::requests`] and untouched by injected latency and faults,
    /// which are for the clients under test. Returns the status code and the JSON body
    /// (`Null` when there is none).
    pub(crate) async fn controller_request(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Value,
    ) -> (u16, Value) {
        let Ok(uri) = path.parse::<Uri>() else {
            return (400, Value::Null);
        };
        let response = self.with(|s| {
            let response = route(s, &self.store, &method, &uri, content_type, body);
            note_emptied_nodes(s);
            response
        });
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

fn api_version_matches(k: &Kind, wanted: &str) -> bool {
    wanted == api_version(k)
}
