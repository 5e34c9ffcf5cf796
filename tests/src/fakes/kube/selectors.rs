//! Label and field selectors: a list's `labelSelector`/`fieldSelector` query, and a
//! `LabelSelector` object (a budget's).

use std::collections::HashMap;

use serde_json::Value;

pub(super) fn selector_matches(obj: &Value, query: &HashMap<String, String>) -> bool {
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

/// A label selector as the API server reads one (`metav1.LabelSelectorAsSelector`): every
/// `matchLabels` pair and every `matchExpressions` requirement must hold; an empty
/// selector (`{}`) matches everything, an absent one (`null`) nothing.
pub(super) fn labels_match(selector: &Value, labels: &Value) -> bool {
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
