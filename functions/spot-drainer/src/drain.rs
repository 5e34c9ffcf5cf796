//! The Kubernetes side of a drain: find the node, cordon it, evict its pods tier by tier
//! with the Eviction API, and force-delete (grace clamped) what a budget still holds when
//! time runs out. Decisions come from `plan.rs`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fleet_shared::kube::kube_error;
use fleet_shared::Result;
use futures::future::join_all;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use serde::Serialize;
use serde_json::json;

use crate::event::DrainCause;
use crate::plan::{clamped_grace, must_force, retry_delay_ms, Plan, Skipped, Target};

pub const EXCLUDE_FROM_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The node running `instance_id`, matched on `spec.providerID` (`aws:///<az>/<id>`).
pub async fn find_node(client: &kube::Client, instance_id: &str) -> Result<Option<Node>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let suffix = format!("/{instance_id}");
    Ok(nodes
        .list(&ListParams::default())
        .await
        .map_err(kube_error)?
        .items
        .into_iter()
        .find(|n| {
            n.spec
                .as_ref()
                .and_then(|s| s.provider_id.as_deref())
                .is_some_and(|p| p.ends_with(&suffix))
        }))
}

/// The node's labels (what [`crate::plan::node_action`] reads: Karpenter's
/// `karpenter.sh/nodepool`).
pub fn labels(node: &Node) -> BTreeMap<String, String> {
    node.metadata.labels.clone().unwrap_or_default()
}

/// Labels the node out of external load balancers, taints it for `kind` and cordons it,
/// in one request, so traffic drains away before its pods are evicted.
pub async fn cordon(client: &kube::Client, node: &Node, kind: DrainCause) -> Result<()> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let key = crate::event::taint_key(kind);
    let mut taints: Vec<serde_json::Value> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.key != key)
        .filter_map(|t| serde_json::to_value(t).ok())
        .collect();
    taints.push(json!({"key": key, "value": "true", "effect": "NoSchedule"}));
    let patch = json!({
        "metadata": {"labels": {EXCLUDE_FROM_LB_LABEL: "true"}},
        "spec": {"unschedulable": true, "taints": taints},
    });
    Api::<Node>::all(client.clone())
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_error)?;
    Ok(())
}

pub async fn pods_on(client: &kube::Client, node: &str) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::all(client.clone());
    Ok(pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(kube_error)?
        .items)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    Evicted,
    Gone,
    Forced,
    Pending,
    /// The API server will never evict it: the reason.
    Refused(String),
}

/// The API server's answer (500) when several PodDisruptionBudgets select a pod: the
/// eviction subresource refuses such a pod whatever the budgets allow
/// (`pkg/registry/core/pod/storage/eviction.go`).
const SEVERAL_BUDGETS: &str = "more than one PodDisruptionBudget";

/// A pod the API server refuses to evict, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refused {
    pub pod: String,
    pub reason: String,
}

/// How the pods fared.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub evicted: usize,
    pub forced: usize,
    pub skipped: Vec<Skipped>,
    /// Pods still in place when the drain had to stop (no deadline, budget never allowed).
    pub pending: Vec<String>,
    /// Pods the API server will not evict (several budgets select them): not retried;
    /// with a deadline they are deleted when it is due, like a pod a budget holds.
    pub refused: Vec<Refused>,
}

/// Whole seconds from now until `t`, negative once past. Real time: pods terminate and
/// instances die in real time.
fn seconds_until(t: Instant) -> i64 {
    let now = Instant::now();
    match t.checked_duration_since(now) {
        Some(d) => d.as_secs() as i64,
        None => -(now.duration_since(t).as_secs() as i64),
    }
}

/// Evicts one pod, retrying while a budget refuses, until it is out, the deadline (the
/// instance's termination, a real instant) forces a delete, or `stop_at` (the end of the
/// invocation's own time) is reached.
async fn evict_one(
    client: &kube::Client,
    t: &Target,
    deadline: Option<Instant>,
    stop_at: Instant,
) -> Fate {
    let api: Api<Pod> = Api::namespaced(client.clone(), &t.namespace);
    let mut attempt = 0u32;
    let mut refused: Option<String> = None;
    loop {
        if let Some(d) = deadline {
            let left = seconds_until(d);
            if must_force(left, t.grace_seconds) {
                let grace = clamped_grace(left, t.grace_seconds);
                let params = DeleteParams {
                    grace_period_seconds: Some(grace as u32),
                    preconditions: Some(Preconditions {
                        uid: Some(t.uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                return match api.delete(&t.name, &params).await {
                    Ok(_) => match refused {
                        Some(reason) => {
                            Fate::Refused(format!("{reason}; deleted with the time left"))
                        }
                        None => {
                            tracing::warn!(pod = %t.qualified(), grace, "budget still refuses; deleted with the time left");
                            Fate::Forced
                        }
                    },
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Fate::Gone,
                    Err(e) if refused.is_some() => {
                        tracing::error!(pod = %t.qualified(), error = %e, "forced delete failed");
                        Fate::Refused(refused.unwrap_or_default())
                    }
                    Err(e) => {
                        tracing::error!(pod = %t.qualified(), error = %e, "forced delete failed");
                        Fate::Pending
                    }
                };
            }
        }
        if Instant::now() >= stop_at {
            return match refused {
                Some(reason) => Fate::Refused(reason),
                None => Fate::Pending,
            };
        }
        if let Some(reason) = &refused {
            // Asking again cannot help: wait for the forced delete a deadline brings.
            if deadline.is_none() {
                return Fate::Refused(reason.clone());
            }
            tokio::time::sleep(Duration::from_millis(retry_delay_ms(attempt.min(6)))).await;
            attempt += 1;
            continue;
        }
        match evict(client, t).await {
            Ok(_) => return Fate::Evicted,
            // Gone already, or replaced by a pod of the same name: nothing left to evict.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return Fate::Gone,
            Err(kube::Error::Api(s)) if s.code == 500 && s.message.contains(SEVERAL_BUDGETS) => {
                let budgets = budgets_selecting(client, t).await;
                let reason = format!(
                    "the API server evicts no pod that several PodDisruptionBudgets select ({}); give it one budget",
                    budgets.join(", ")
                );
                tracing::error!(pod = %t.qualified(), %reason, "eviction refused");
                refused = Some(reason);
                continue;
            }
            // 429: a PodDisruptionBudget forbids it now. 5xx, connection errors: the API
            // is struggling. Both: try again shortly.
            Err(e) => {
                tracing::debug!(pod = %t.qualified(), error = %e, attempt, "eviction refused; retrying");
            }
        }
        let mut wait = Duration::from_millis(retry_delay_ms(attempt));
        // Never sleep past the moment a forced delete becomes due.
        if let Some(d) = deadline {
            let keep =
                Duration::from_secs((t.grace_seconds + crate::plan::MARGIN_SECONDS).max(0) as u64);
            let until_force = d
                .saturating_duration_since(Instant::now())
                .saturating_sub(keep);
            // A little past the moment, and never a busy loop.
            wait = wait.min(until_force + Duration::from_millis(50));
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// The names of the PodDisruptionBudgets in the pod's namespace that select it (what the
/// eviction refused without naming); `(could not list budgets: ...)` when the list fails.
async fn budgets_selecting(client: &kube::Client, t: &Target) -> Vec<String> {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use kube::core::{Selector, SelectorExt};
    let api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &t.namespace);
    match api.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter(|pdb| {
                pdb.spec
                    .as_ref()
                    .and_then(|s| s.selector.clone())
                    .and_then(|s| Selector::try_from(s).ok())
                    .is_some_and(|s| s.matches(&t.labels))
            })
            .filter_map(|pdb| pdb.metadata.name)
            .collect(),
        Err(e) => vec![format!("(could not list budgets: {e})")],
    }
}

/// Posts a policy/v1 Eviction with the pod's UID as precondition.
///
/// By hand rather than `Api::evict`: kube 5 serializes its `EvictParams` as
/// `delete_options`, a field the API server ignores, which silently drops the UID
/// precondition (found by the fake API's request log).
async fn evict(client: &kube::Client, t: &Target) -> std::result::Result<(), kube::Error> {
    let body = json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": t.name, "namespace": t.namespace},
        "deleteOptions": {"preconditions": {"uid": t.uid}},
    });
    let request = http::Request::post(format!(
        "/api/v1/namespaces/{}/pods/{}/eviction",
        t.namespace, t.name
    ))
    .header(http::header::CONTENT_TYPE, "application/json")
    .body(serde_json::to_vec(&body).unwrap_or_default())
    .map_err(kube::Error::HttpError)?;
    client
        .request::<serde_json::Value>(request)
        .await
        .map(|_| ())
}

/// Evicts the plan's pods, tier by tier, each tier concurrently.
pub async fn evict_all(
    client: &kube::Client,
    plan: Plan,
    deadline: Option<Instant>,
    stop_at: Instant,
) -> Tally {
    let mut tally = Tally {
        skipped: plan.skipped,
        ..Tally::default()
    };
    for tier in plan.tiers {
        let fates = join_all(tier.iter().map(|t| evict_one(client, t, deadline, stop_at))).await;
        for (t, fate) in tier.iter().zip(fates) {
            match fate {
                Fate::Evicted => tally.evicted += 1,
                Fate::Forced => tally.forced += 1,
                Fate::Gone => {}
                Fate::Pending => tally.pending.push(t.qualified()),
                Fate::Refused(reason) => tally.refused.push(Refused {
                    pod: t.qualified(),
                    reason,
                }),
            }
        }
    }
    tally
}
