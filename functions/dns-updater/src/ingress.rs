//! The Kubernetes adapter: reads the cluster's ingress Service until its load balancer
//! has an address ([`crate::target`] says what that address means).

use std::time::{Duration, Instant};

use fleet_shared::config::ServiceRef;
use fleet_shared::kube::kube_error;
use fleet_shared::{FleetError, Result};
use k8s_openapi::api::core::v1::Service;
use kube::Api;

use crate::target::{of_service, Target};

/// How often the Service is read again while its load balancer is being provisioned.
const POLL: Duration = Duration::from_secs(5);

/// Reads the ingress Service until it has a load balancer address, or `until` passes.
///
/// # Errors
/// [`FleetError::Pending`] naming what is missing (the Service, or its address) when
/// `until` passes, so that the event is retried; a Kubernetes API error as it came.
pub async fn read_ingress(
    client: &kube::Client,
    service: &ServiceRef,
    until: Instant,
) -> Result<Target> {
    let api: Api<Service> = Api::namespaced(client.clone(), &service.namespace);
    // Real time: the load balancer is provisioned in real time; `until` is a real instant.
    let started = Instant::now();
    loop {
        let found = api.get_opt(&service.name).await.map_err(kube_error)?;
        if let Some(target) = found.as_ref().and_then(of_service) {
            return Ok(target);
        }
        if Instant::now() + POLL > until {
            let waited = started.elapsed().as_secs();
            return Err(FleetError::Pending(match found {
                None => format!("ingress Service {service} does not exist (waited {waited} s)"),
                Some(_) => format!(
                    "ingress Service {service} has no load balancer address yet (waited {waited} s)"
                ),
            }));
        }
        tokio::time::sleep(POLL).await;
    }
}
