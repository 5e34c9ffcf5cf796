//! A request's way in: recorded, faults injected, then its path read as discovery or as
//! a target (kind, namespace, name, subresource) and handed to the store, the Eviction
//! API or the pod delete.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use super::eviction::{delete_pod, evict, pod_key};
use super::faults::injected;
use super::finalizers::schedule_lb_cleanup;
use super::store::dispatch;
use super::{ok, status, Kind, Recorded, Store};

pub(super) struct Target {
    pub(super) kind: Kind,
    pub(super) namespace: String,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
}

/// Answers one request (the lock held throughout).
pub(super) fn respond(
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
    if let Some(response) = injected(s) {
        return response;
    }
    route(s, store, &method, &uri, &content_type, parsed_body)
}

/// Answers a request already recorded (or a controller's, never recorded): discovery, or
/// the target its path names.
pub(super) fn route(
    s: &mut Store,
    store: &Arc<Mutex<Store>>,
    method: &Method,
    uri: &Uri,
    content_type: &str,
    parsed_body: Value,
) -> Response {
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
            if *method == Method::POST {
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
            *method == Method::DELETE,
        ) {
            return delete_pod(s, store, &target.namespace, &name, &parsed_body, &query);
        }
    }
    let service_deleted = match (&target.name, &target.subresource) {
        (Some(name), None) if target.kind.plural == "services" && *method == Method::DELETE => {
            Some((
                String::new(),
                "services".to_string(),
                target.namespace.clone(),
                name.clone(),
            ))
        }
        _ => None,
    };
    let response = dispatch(s, method, target, &query, content_type, parsed_body);
    if let Some(key) = service_deleted {
        if response.status() == StatusCode::OK {
            schedule_lb_cleanup(s, store, key);
        }
    }
    response
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
