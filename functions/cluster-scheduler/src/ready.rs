//! `ready_when`: whether the objects a platform needs to serve are ready, read after the
//! bootstrap on every tick until they are (or `ready_timeout_minutes` ran out).
//!
//! What "ready" means follows what each kind's own tooling waits for: `kubectl rollout
//! status` for Deployments and StatefulSets (available replicas), `kstatus` for objects
//! with a `Ready` condition (Flux's, Cluster API's), Argo CD's own health for an
//! `Application`, and an ingress address for a `LoadBalancer` Service.

use fleet_shared::config::ReadyObject;
use fleet_shared::kube::kube_error;
use fleet_shared::Result;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::{pinned_kind, Scope};
use serde_json::Value;

/// Groups whose kinds are Kubernetes' own: an object of one without conditions to read
/// (a ConfigMap, a Namespace) is ready once it exists. A custom resource is ready only
/// when its controller says so (a `Ready` condition), so one whose controller has not
/// looked at it yet is not.
fn is_builtin(group: &str) -> bool {
    group.is_empty()
        || group.ends_with(".k8s.io")
        || matches!(group, "apps" | "batch" | "policy" | "autoscaling")
}

/// Whether `object` (the API's JSON) of `group` and `kind` is ready; `Err(why)` names
/// what is missing (`1/2 available`, `Ready=False: <message>`). Every rule first wants
/// the controller to have seen the current spec (`status.observedGeneration` equal to
/// `metadata.generation` when both are there), as kstatus and `kubectl rollout status`
/// do: a Ready status of yesterday's spec is not ready.
pub fn readiness(group: &str, kind: &str, object: &Value) -> std::result::Result<(), String> {
    let status = &object["status"];
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    if let (Some(generation), Some(observed)) = (
        object["metadata"]["generation"].as_i64(),
        status["observedGeneration"].as_i64(),
    ) {
        if observed < generation {
            return Err(format!(
                "generation {generation} not observed yet (status is of {observed})"
            ));
        }
    }
    let condition = |name: &str| {
        status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == name))
    };
    let wanting = |name: &str| match condition(name) {
        Some(c) if c["status"] == "True" => Ok(()),
        Some(c) => Err(format!(
            "{name}={}: {}",
            c["status"].as_str().unwrap_or("Unknown"),
            c["message"].as_str().unwrap_or("no message")
        )),
        None => Err(format!("no {name} condition yet")),
    };
    match (group, kind) {
        ("apps", "Deployment" | "StatefulSet") => {
            let wanted = object["spec"]["replicas"].as_i64().unwrap_or(1);
            // A StatefulSet's availableReplicas came with Kubernetes 1.22; readyReplicas before.
            let available = status["availableReplicas"]
                .as_i64()
                .unwrap_or_else(|| int(&status["readyReplicas"]));
            let updated = status["updatedReplicas"].as_i64().unwrap_or(available);
            if available >= wanted && updated >= wanted {
                Ok(())
            } else if available >= wanted {
                Err(format!("{updated}/{wanted} updated"))
            } else {
                Err(format!("{available}/{wanted} available"))
            }
        }
        ("apps", "DaemonSet") => {
            let wanted = int(&status["desiredNumberScheduled"]);
            let available = int(&status["numberAvailable"]);
            if available >= wanted && status.get("desiredNumberScheduled").is_some() {
                Ok(())
            } else {
                Err(format!("{available}/{wanted} available"))
            }
        }
        ("", "Service") => {
            if object["spec"]["type"] != "LoadBalancer" {
                return Ok(());
            }
            let has_address = status["loadBalancer"]["ingress"]
                .as_array()
                .is_some_and(|i| {
                    i.iter()
                        .any(|e| e.get("hostname").is_some() || e.get("ip").is_some())
                });
            if has_address {
                Ok(())
            } else {
                Err("no load balancer address yet".into())
            }
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => wanting("Established"),
        ("apiregistration.k8s.io", "APIService") => wanting("Available"),
        ("batch", "Job") => wanting("Complete"),
        // Argo CD's own wait (`argocd app wait`): healthy and synced.
        ("argoproj.io", "Application") => {
            match status["health"]["status"].as_str() {
                Some("Healthy") => {}
                other => return Err(format!("health {}", other.unwrap_or("not reported yet"))),
            }
            match status["sync"]["status"].as_str() {
                Some("Synced") | None => Ok(()),
                Some(other) => Err(format!("sync {other}")),
            }
        }
        _ if condition("Ready").is_some() => wanting("Ready"),
        _ if is_builtin(group) && status["conditions"].as_array().is_none_or(|c| c.is_empty()) => {
            Ok(())
        }
        _ => wanting("Ready"),
    }
}

/// The listed objects that are not ready, each as `<Kind> <ns>/<name>: <why>`; empty when
/// all are. An object whose kind the API does not serve yet (its CRD not installed), that
/// does not exist, or that the API fails to answer for (a conversion webhook whose pod
/// is not up yet, a 403) is not ready, with that as why: each is read on its own.
pub async fn not_ready(client: &kube::Client, objects: &[ReadyObject]) -> Vec<String> {
    let mut out = Vec::new();
    for o in objects {
        let why = match check_one(client, o).await {
            Ok(Ok(())) => continue,
            Ok(Err(why)) => why,
            Err(e) => format!("the API answered: {e}"),
        };
        out.push(format!("{o}: {why}"));
    }
    out
}

async fn check_one(
    client: &kube::Client,
    o: &ReadyObject,
) -> Result<std::result::Result<(), String>> {
    let (group, version) = match o.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", o.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &o.kind);
    let (resource, caps) = match pinned_kind(client, &gvk).await {
        Ok(found) => found,
        // The group (a CRD not installed yet) or the kind is not served.
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Ok(Err(format!("the API does not serve {} yet", o.api_version)))
        }
        Err(kube::Error::Discovery(_)) => {
            return Ok(Err(format!(
                "the API does not serve {} {} yet",
                o.api_version, o.kind
            )))
        }
        Err(e) => return Err(kube_error(e)),
    };
    let api: Api<DynamicObject> = match (caps.scope, &o.namespace) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        (Scope::Namespaced, None) => {
            return Ok(Err(format!(
                "{} is namespaced: name it <apiVersion>/<Kind>/<namespace>/<name>",
                o.kind
            )))
        }
        (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
    };
    match api.get_opt(&o.name).await.map_err(kube_error)? {
        None => Ok(Err("not found".into())),
        Some(obj) => {
            let value = serde_json::to_value(&obj).unwrap_or(Value::Null);
            Ok(readiness(group, &o.kind, &value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployments_and_statefulsets_need_their_replicas_available_and_updated() {
        let d = |available: i64, updated: i64| {
            json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
                   "status": {"observedGeneration": 3, "availableReplicas": available, "updatedReplicas": updated}})
        };
        assert_eq!(
            readiness("apps", "Deployment", &d(1, 2)),
            Err("1/2 available".into())
        );
        assert_eq!(
            readiness("apps", "Deployment", &d(2, 1)),
            Err("1/2 updated".into())
        );
        assert_eq!(readiness("apps", "Deployment", &d(2, 2)), Ok(()));
        // No status yet: none available; replicas defaults to 1.
        assert_eq!(
            readiness("apps", "Deployment", &json!({"spec": {}})),
            Err("0/1 available".into())
        );
        let sts = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        assert_eq!(readiness("apps", "StatefulSet", &sts), Ok(()));
        // Scaled to zero on purpose: ready.
        assert_eq!(
            readiness("apps", "Deployment", &json!({"spec": {"replicas": 0}})),
            Ok(())
        );
        // Yesterday's status of an older spec is not today's.
        let stale = json!({"metadata": {"generation": 4}, "spec": {"replicas": 2},
                           "status": {"observedGeneration": 3, "availableReplicas": 2, "updatedReplicas": 2}});
        assert!(readiness("apps", "Deployment", &stale).is_err_and(|e| e.contains("generation 4")));
    }

    #[test]
    fn custom_resources_need_their_controllers_ready_true() {
        let k = |status: &str| {
            json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "conditions": [
                {"type": "Reconciling", "status": "True"},
                {"type": "Ready", "status": status, "message": "dependency 'flux-system/infra' is not ready"}
            ]}})
        };
        let flux = "kustomize.toolkit.fluxcd.io";
        assert_eq!(readiness(flux, "Kustomization", &k("True")), Ok(()));
        assert_eq!(
            readiness(flux, "Kustomization", &k("False")),
            Err("Ready=False: dependency 'flux-system/infra' is not ready".into())
        );
        // Its controller has not looked at it yet (not running): not ready.
        assert_eq!(
            readiness(
                "helm.toolkit.fluxcd.io",
                "HelmRelease",
                &json!({"metadata": {"generation": 1}})
            ),
            Err("no Ready condition yet".into())
        );
        // A Knative Service is not a core Service.
        assert!(readiness("serving.knative.dev", "Service", &json!({})).is_err());
        // Built-in kinds without conditions: existing is ready.
        assert_eq!(readiness("", "ConfigMap", &json!({"data": {}})), Ok(()));
        assert_eq!(
            readiness("", "Namespace", &json!({"status": {"phase": "Active"}})),
            Ok(())
        );
    }

    #[test]
    fn crds_jobs_argo_applications_and_services_by_their_own_rules() {
        let crd = json!({"status": {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]}});
        assert_eq!(
            readiness("apiextensions.k8s.io", "CustomResourceDefinition", &crd),
            Ok(())
        );
        let job = json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(readiness("batch", "Job", &job), Ok(()));
        let app =
            |h: &str, s: &str| json!({"status": {"health": {"status": h}, "sync": {"status": s}}});
        assert_eq!(
            readiness("argoproj.io", "Application", &app("Healthy", "Synced")),
            Ok(())
        );
        assert_eq!(
            readiness("argoproj.io", "Application", &app("Healthy", "OutOfSync")),
            Err("sync OutOfSync".into())
        );
        assert_eq!(
            readiness("argoproj.io", "Application", &app("Progressing", "Synced")),
            Err("health Progressing".into())
        );
        assert_eq!(
            readiness("argoproj.io", "Application", &json!({})),
            Err("health not reported yet".into())
        );
        let lb = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}});
        assert_eq!(
            readiness("", "Service", &lb),
            Err("no load balancer address yet".into())
        );
        let lb = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"hostname": "k8s-x.elb.amazonaws.com"}]}}});
        assert_eq!(readiness("", "Service", &lb), Ok(()));
        assert_eq!(
            readiness("", "Service", &json!({"spec": {"type": "ClusterIP"}})),
            Ok(())
        );
        let ds = json!({"status": {"desiredNumberScheduled": 3, "numberAvailable": 2}});
        assert_eq!(
            readiness("apps", "DaemonSet", &ds),
            Err("2/3 available".into())
        );
    }
}
