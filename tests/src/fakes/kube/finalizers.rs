//! Finalizers, and the controllers that own a LoadBalancer Service's: the finalizer they
//! add on create, and its removal after the Service's DELETE.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::eviction::is_terminating;
use super::{Key, LoadBalancerCleanup, Store, AWS_LB_FINALIZER, LB_CLEANUP_FINALIZER};

/// The finalizer of the controller that provisions this Service's load balancer: the
/// cloud provider's service controller for a LoadBalancer Service without a
/// `loadBalancerClass`, the AWS Load Balancer Controller for `service.k8s.aws/nlb`, none
/// for other classes (their controllers are not modelled) or other Service types.
pub(super) fn controller_finalizer(obj: &Value) -> Option<&'static str> {
    if obj["kind"] != "Service" || obj["spec"]["type"] != "LoadBalancer" {
        return None;
    }
    match obj["spec"]["loadBalancerClass"].as_str() {
        None => Some(LB_CLEANUP_FINALIZER),
        Some("service.k8s.aws/nlb") => Some(AWS_LB_FINALIZER),
        Some(_) => None,
    }
}

/// The controller adds its finalizer before it provisions anything (unless the Service is
/// already being deleted: no finalizer may be added then).
pub(super) fn add_controller_finalizer(obj: &mut Value) {
    let Some(finalizer) = controller_finalizer(obj) else {
        return;
    };
    if is_terminating(obj) {
        return;
    }
    let list = &mut obj["metadata"]["finalizers"];
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(items) = list.as_array_mut() {
        if !items.iter().any(|f| f == finalizer) {
            items.push(json!(finalizer));
        }
    }
}

pub(super) fn has_finalizers(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

/// A terminating object whose last finalizer went is removed, as the garbage collector
/// does once `metadata.finalizers` is empty.
pub(super) fn remove_if_released(s: &mut Store, key: &Key) -> bool {
    let released = s
        .objects
        .get(key)
        .is_some_and(|o| is_terminating(o) && !has_finalizers(o));
    if released {
        s.objects.remove(key);
    }
    released
}

/// After a Service's DELETE: its load-balancer controller deletes the load balancer and
/// then removes its finalizer, by [`LoadBalancerCleanup`].
pub(super) fn schedule_lb_cleanup(s: &Store, store: &Arc<Mutex<Store>>, key: Key) {
    let Some(obj) = s.objects.get(&key) else {
        return;
    };
    let Some(finalizer) = controller_finalizer(obj) else {
        return;
    };
    let LoadBalancerCleanup::After(delay) = s.lb_cleanup else {
        return;
    };
    let store = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let Ok(mut s) = store.lock() else { return };
        let rv = s.next_rv();
        if let Some(obj) = s.objects.get_mut(&key) {
            if let Some(items) = obj["metadata"]["finalizers"].as_array_mut() {
                items.retain(|f| f != finalizer);
            }
            obj["metadata"]["resourceVersion"] = json!(rv);
        }
        remove_if_released(&mut s, &key);
    });
}
