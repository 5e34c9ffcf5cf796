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

/// Whether `object` (the API's JSON) of kind `kind` is ready; `Err(why)` names what is
/// missing (`1/2 available`, `Ready=False: <message>`).
pub fn readiness(kind: &str, object: &Value) -> std::result::Result<(), String> {
    let status = &object["status"];
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    match kind {
        "Deployment" | "StatefulSet" => {
            let wanted = object["spec"]["replicas"].as_i64().unwrap_or(1);
            let available = match kind {
                "Deployment" => int(&status["availableReplicas"]),
                // A StatefulSet's availableReplicas came with Kubernetes 1.22; readyReplicas before.
                _ => status["availableReplicas"]
                    .as_i64()
                    .unwrap_or_else(|| int(&status["readyReplicas"])),
            };
            if available >= wanted {
                Ok(())
            } else {
                Err(format!("{available}/{wanted} available"))
            }
        }
        "DaemonSet" => {
            let wanted = int(&status["desiredNumberScheduled"]);
            let available = int(&status["numberAvailable"]);
            if available >= wanted && status.get("desiredNumberScheduled").is_some() {
                Ok(())
            } else {
                Err(format!("{available}/{wanted} available"))
            }
        }
        "Service" => {
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
        "Application" if status.get("health").is_some() => {
            match status["health"]["status"].as_str() {
                Some("Healthy") => Ok(()),
                other => Err(format!("health {}", other.unwrap_or("Unknown"))),
            }
        }
        _ => {
            let Some(conditions) = status["conditions"].as_array() else {
                // No status to read (a ConfigMap, a Namespace): present is ready.
                return match status.get("conditions") {
                    None if kind != "Application" => Ok(()),
                    _ => Err("no status yet".into()),
                };
            };
            match conditions.iter().find(|c| c["type"] == "Ready") {
                Some(c) if c["status"] == "True" => Ok(()),
                Some(c) => Err(format!(
                    "Ready={}: {}",
                    c["status"].as_str().unwrap_or("Unknown"),
                    c["message"].as_str().unwrap_or("no message")
                )),
                None => Err("no Ready condition yet".into()),
            }
        }
    }
}

/// The listed objects that are not ready, each as `<Kind> <ns>/<name>: <why>`; empty when
/// all are. An object whose kind the API does not serve yet (its CRD not installed) or
/// that does not exist is not ready; any other API error stops the check.
pub async fn not_ready(client: &kube::Client, objects: &[ReadyObject]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for o in objects {
        if let Err(why) = check_one(client, o).await? {
            out.push(format!("{o}: {why}"));
        }
    }
    Ok(out)
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
            Ok(readiness(&o.kind, &value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployments_and_statefulsets_need_their_replicas_available() {
        let d = |available: i64| json!({"spec": {"replicas": 2}, "status": {"availableReplicas": available}});
        assert_eq!(readiness("Deployment", &d(1)), Err("1/2 available".into()));
        assert_eq!(readiness("Deployment", &d(2)), Ok(()));
        // No status yet: none available; replicas defaults to 1.
        assert_eq!(
            readiness("Deployment", &json!({"spec": {}})),
            Err("0/1 available".into())
        );
        let sts = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        assert_eq!(readiness("StatefulSet", &sts), Ok(()));
        // Scaled to zero on purpose: ready.
        assert_eq!(
            readiness("Deployment", &json!({"spec": {"replicas": 0}})),
            Ok(())
        );
    }

    #[test]
    fn flux_objects_need_ready_true() {
        let k = |status: &str| {
            json!({"status": {"conditions": [
                {"type": "Reconciling", "status": "True"},
                {"type": "Ready", "status": status, "message": "dependency 'flux-system/infra' is not ready"}
            ]}})
        };
        assert_eq!(readiness("Kustomization", &k("True")), Ok(()));
        assert_eq!(
            readiness("Kustomization", &k("False")),
            Err("Ready=False: dependency 'flux-system/infra' is not ready".into())
        );
        assert_eq!(readiness("HelmRelease", &json!({"status": {}})), Ok(()));
        assert_eq!(
            readiness("HelmRelease", &json!({"status": {"conditions": []}})),
            Err("no Ready condition yet".into())
        );
    }

    #[test]
    fn argo_applications_need_healthy_and_services_an_address() {
        let app =
            |h: &str| json!({"status": {"health": {"status": h}, "sync": {"status": "Synced"}}});
        assert_eq!(readiness("Application", &app("Healthy")), Ok(()));
        assert_eq!(
            readiness("Application", &app("Progressing")),
            Err("health Progressing".into())
        );
        assert_eq!(
            readiness("Application", &json!({})),
            Err("no status yet".into())
        );
        let lb = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}});
        assert_eq!(
            readiness("Service", &lb),
            Err("no load balancer address yet".into())
        );
        let lb = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"hostname": "k8s-x.elb.amazonaws.com"}]}}});
        assert_eq!(readiness("Service", &lb), Ok(()));
        assert_eq!(
            readiness("Service", &json!({"spec": {"type": "ClusterIP"}})),
            Ok(())
        );
        let ds = json!({"status": {"desiredNumberScheduled": 3, "numberAvailable": 2}});
        assert_eq!(readiness("DaemonSet", &ds), Err("2/3 available".into()));
    }
}
