//! Clean teardown: what would be orphaned if the nodegroups went now, and deleting the
//! Services that own load balancers. Deleting a cluster does not delete the load
//! balancers its Services created; they keep billing until someone notices.

use aws_sdk_elasticloadbalancingv2 as elbv2;
use fleet_shared::kube::kube_error;
use fleet_shared::{FleetError, Result};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, ListParams};

use crate::reconcile::TeardownView;

/// Tags the Kubernetes cloud provider and the AWS Load Balancer Controller put on the load
/// balancers they create for a cluster.
pub fn is_tagged_for(cluster: &str, key: &str, value: &str) -> bool {
    key == format!("kubernetes.io/cluster/{cluster}")
        || (key == "elbv2.k8s.aws/cluster" && value == cluster)
}

/// Reads what stands in the way of a clean teardown. An unreachable API is not an error:
/// the teardown goes on and says what it skipped.
pub async fn observe(
    kube: Result<kube::Client>,
    elb: &elbv2::Client,
    cluster: &str,
) -> Result<TeardownView> {
    let (lb_services, terminating_services, lb_ingresses) = match kube {
        Ok(client) => match load_balancer_objects(&client).await {
            Ok(found) => (Ok(found.live), found.terminating, found.ingresses),
            Err(e) => (Err(e.to_string()), vec![], vec![]),
        },
        Err(e) => (Err(e.to_string()), vec![], vec![]),
    };
    // Throttling waits for a later tick; anything else (say, a missing permission) must
    // not keep a cluster billing all night: report it and go on.
    let (load_balancers, problems) = match tagged_load_balancers(elb, cluster).await {
        Ok(lbs) => (lbs, vec![]),
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => (
            vec![],
            vec![format!("could not check for leftover load balancers: {e}")],
        ),
    };
    Ok(TeardownView {
        lb_services,
        terminating_services,
        lb_ingresses,
        load_balancers,
        problems,
    })
}

/// The Kubernetes objects that own load balancers.
struct LoadBalancerObjects {
    /// Services of type LoadBalancer, `namespace/name`.
    live: Vec<String>,
    /// Services of type LoadBalancer with a `deletionTimestamp`, `namespace/name (finalizers)`.
    terminating: Vec<String>,
    /// Ingresses the AWS Load Balancer Controller serves, `namespace/name`.
    ingresses: Vec<String>,
}

async fn load_balancer_objects(client: &kube::Client) -> Result<LoadBalancerObjects> {
    let services: Api<Service> = Api::all(client.clone());
    let (terminating, live): (Vec<Service>, Vec<Service>) = services
        .list(&ListParams::default())
        .await
        .map_err(kube_error)?
        .items
        .into_iter()
        .filter(|s| s.spec.as_ref().and_then(|sp| sp.type_.as_deref()) == Some("LoadBalancer"))
        .partition(|s| s.metadata.deletion_timestamp.is_some());
    let live = live
        .iter()
        .map(|s| qualified(s.metadata.namespace.as_deref(), s.metadata.name.as_deref()))
        .collect();
    let terminating = terminating
        .iter()
        .map(|s| {
            let finalizers = s.metadata.finalizers.clone().unwrap_or_default();
            format!(
                "{} ({})",
                qualified(s.metadata.namespace.as_deref(), s.metadata.name.as_deref()),
                finalizers.join(", ")
            )
        })
        .collect();
    let ingresses: Api<Ingress> = Api::all(client.clone());
    let lb_ingresses = ingresses
        .list(&ListParams::default())
        .await
        .map_err(kube_error)?
        .items
        .into_iter()
        .filter(|i| {
            let class = i
                .spec
                .as_ref()
                .and_then(|s| s.ingress_class_name.as_deref());
            let annotations = i.metadata.annotations.as_ref();
            class == Some("alb")
                || annotations.is_some_and(|a| {
                    a.get("kubernetes.io/ingress.class").map(String::as_str) == Some("alb")
                        || a.keys()
                            .any(|k| k.starts_with("alb.ingress.kubernetes.io/"))
                })
        })
        .map(|i| qualified(i.metadata.namespace.as_deref(), i.metadata.name.as_deref()))
        .collect();
    Ok(LoadBalancerObjects {
        live,
        terminating,
        ingresses: lb_ingresses,
    })
}

fn qualified(ns: Option<&str>, name: Option<&str>) -> String {
    format!("{}/{}", ns.unwrap_or("default"), name.unwrap_or_default())
}

/// ELBv2 load balancers (ALB, NLB) tagged for the cluster, by name.
pub async fn tagged_load_balancers(elb: &elbv2::Client, cluster: &str) -> Result<Vec<String>> {
    let mut lbs = Vec::new();
    let mut marker = None;
    loop {
        let page = elb
            .describe_load_balancers()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| FleetError::aws("ELBv2", "DescribeLoadBalancers", e))?;
        for lb in page.load_balancers() {
            if let (Some(arn), Some(name)) = (&lb.load_balancer_arn, &lb.load_balancer_name) {
                lbs.push((arn.clone(), name.clone()));
            }
        }
        marker = page.next_marker;
        if marker.is_none() {
            break;
        }
    }
    let mut tagged = Vec::new();
    // DescribeTags takes at most 20 ARNs.
    for chunk in lbs.chunks(20) {
        let out = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.iter().map(|(arn, _)| arn.clone()).collect()))
            .send()
            .await
            .map_err(|e| FleetError::aws("ELBv2", "DescribeTags", e))?;
        for desc in out.tag_descriptions() {
            let ours = desc.tags().iter().any(|t| {
                is_tagged_for(
                    cluster,
                    t.key().unwrap_or_default(),
                    t.value().unwrap_or_default(),
                )
            });
            if ours {
                if let Some((_, name)) = chunk
                    .iter()
                    .find(|(arn, _)| Some(arn.as_str()) == desc.resource_arn())
                {
                    tagged.push(name.clone());
                }
            }
        }
    }
    Ok(tagged)
}

/// Deletes Services (`namespace/name`); already gone counts as done. A Service with
/// finalizers stays, terminating, until its controller removes them: the next tick sees it
/// in [`TeardownView::terminating_services`] and does not delete it again. Every Service
/// is tried, whatever the others answer (one whose DELETE an admission webhook refuses
/// must not keep the rest, and their load balancers, alive); the first error is returned.
pub async fn delete_services(client: &kube::Client, services: &[String]) -> Result<()> {
    let mut first_error = None;
    for qualified in services {
        let (ns, name) = qualified.split_once('/').unwrap_or(("default", qualified));
        let api: Api<Service> = Api::namespaced(client.clone(), ns);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                let e = kube_error(e);
                tracing::warn!(service = %qualified, error = %e, "deleting a LoadBalancer Service failed");
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_both_controllers_tags() {
        assert!(is_tagged_for(
            "staging",
            "kubernetes.io/cluster/staging",
            "owned"
        ));
        assert!(is_tagged_for("staging", "elbv2.k8s.aws/cluster", "staging"));
        assert!(!is_tagged_for("staging", "elbv2.k8s.aws/cluster", "prod"));
        assert!(!is_tagged_for(
            "staging",
            "kubernetes.io/cluster/staging-2",
            "owned"
        ));
    }
}
