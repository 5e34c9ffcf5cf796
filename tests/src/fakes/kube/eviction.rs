//! The Eviction API and PodDisruptionBudgets as the API server's eviction handler and the
//! disruption controller decide, pod deletion, termination and replacement, and what the
//! fake observes of them (budget shortfalls, nodes emptied).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::selectors::labels_match;
use super::{ok, status, Key, Store};

/// Whether a pod counts for a drain: not a mirror pod, not a DaemonSet's.
pub(super) fn drainable(pod: &Value) -> bool {
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
pub(super) fn note_emptied_nodes(s: &mut Store) {
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

pub(super) fn pod_key(ns: &str, name: &str) -> Key {
    (
        String::new(),
        "pods".into(),
        ns.to_string(),
        name.to_string(),
    )
}

pub(super) fn is_terminating(pod: &Value) -> bool {
    !pod["metadata"]["deletionTimestamp"].is_null()
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
pub(super) fn evict(
    s: &mut Store,
    store: &Arc<Mutex<Store>>,
    ns: &str,
    name: &str,
    body: &Value,
) -> Response {
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
pub(super) fn delete_pod(
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
