//! Server-side apply's field management, after structured-merge-diff as the API server
//! runs it (simplified: one merge key per list, no schema beyond the lists below).

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

/// A field path as `managedFields` spells it: `f:<name>` for a field of a map,
/// `k:<key as JSON>` for an item of a list merged by key.
pub(super) type FieldPath = Vec<String>;

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
pub(super) fn merge_key(kind: Option<&str>, path: &[String]) -> Option<&'static str> {
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
pub(super) fn item_element(item: &Value, key: &str) -> String {
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
pub(super) fn record_update(
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
pub(super) fn apply_configuration(
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
