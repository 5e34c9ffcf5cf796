//! JSON merge patch (RFC 7386) and strategic merge patch of built-in kinds.

use serde_json::{json, Map, Value};

use super::apply::{item_element, merge_key, FieldPath};

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
pub(super) fn strategic_merge(
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
