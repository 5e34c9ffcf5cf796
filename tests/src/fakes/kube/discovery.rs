//! What the API serves: the built-in kinds, the kinds of Established CRDs, and the
//! discovery documents that list them.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Kind, Store};

pub(super) const BUILTIN: &[(&str, &str, &str, &str, bool)] = &[
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

impl Store {
    pub(super) fn kind_by_plural(&self, group: &str, version: &str, plural: &str) -> Option<Kind> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
            .cloned()
    }

    pub(super) fn discovery(&self, group: &str, version: &str) -> Option<Value> {
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

    pub(super) fn groups(&self) -> Value {
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
    pub(super) fn establish(&mut self, name: &str) {
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
}

pub(super) fn after_write(s: &mut Store, k: &Kind, name: &str, created: bool) {
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
