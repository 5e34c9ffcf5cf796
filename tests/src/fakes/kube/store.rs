//! The objects: get, list, create, JSON merge and strategic merge patch, server-side
//! apply, delete; resource versions, UIDs and the metadata rules of updates.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::apply::{apply_configuration, record_update};
use super::discovery::{after_write, BUILTIN};
use super::eviction::is_terminating;
use super::finalizers::{add_controller_finalizer, has_finalizers, remove_if_released};
use super::patch::{merge_patch, strategic_merge};
use super::routing::Target;
use super::selectors::selector_matches;
use super::{api_version, ok, status, Kind, Store};

impl Store {
    pub(super) fn next_rv(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    pub(super) fn stamp_new(&mut self, obj: &mut Value, k: &Kind, ns: &str) {
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

fn not_found(k: &Kind, name: &str) -> Response {
    let what = if k.group.is_empty() {
        k.plural.clone()
    } else {
        format!("{}.{}", k.plural, k.group)
    };
    status(404, "NotFound", format!("{what} \"{name}\" not found"))
}

pub(super) fn dispatch(
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
            let controlled = (
                api_version(&k),
                k.kind.clone(),
                t.namespace.clone(),
                name.to_string(),
            );
            if s.objects.contains_key(&key(name)) {
                if let Some((left, _)) = s.pending_ready.get_mut(&controlled) {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        let (_, status) = s.pending_ready.remove(&controlled).unwrap_or_default();
                        if let Some(obj) = s.objects.get_mut(&key(name)) {
                            let mut merged = obj["status"].clone();
                            merge_patch(&mut merged, &status);
                            obj["status"] = merged;
                        }
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
