//! Karpenter's side of a cluster, read and acted on: its NodePools, NodeClaims and
//! EC2NodeClasses through the cluster's Kubernetes API, its instances and launch
//! templates through EC2. The decisions are [`crate::karpenter_steps`]'.
//!
//! Kinds: `karpenter.sh/v1` NodePool and NodeClaim, `karpenter.k8s.aws/v1` EC2NodeClass
//! (all cluster-scoped). Tags Karpenter puts on what it launches (karpenter-provider-aws
//! v1, `pkg/providers/instance`, `pkg/providers/launchtemplate`): instances carry
//! `karpenter.sh/nodepool`, `eks:eks-cluster-name=<cluster>` and
//! `kubernetes.io/cluster/<cluster>=owned`, and so do its launch templates (older
//! versions also tagged those `karpenter.k8s.aws/cluster`). The fleet finds both by
//! `eks:eks-cluster-name` and `karpenter.sh/nodepool`: the tags its IAM policy allows
//! the backstop to act on.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::Filter;
use fleet_shared::config::KarpenterConfig;
use fleet_shared::kube::kube_error;
use fleet_shared::{FleetError, Result};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{json, Value};

use crate::observed::{
    KarpenterInstance, KarpenterObjects, KarpenterView, NodeClaimView, NodeClassView, NodePoolView,
};

/// The field manager of the fleet's server-side applies: it owns only the limits it set.
pub const FIELD_MANAGER: &str = "fleet";
/// The label the Karpenter Helm chart puts on the controller's Deployment.
pub const CONTROLLER_LABEL: &str = "app.kubernetes.io/name=karpenter";
/// The label (on NodeClaims and Nodes) and tag (on instances) naming the NodePool.
pub const NODEPOOL_LABEL: &str = "karpenter.sh/nodepool";
/// The tag Karpenter v1 puts on its instances naming the EKS cluster.
pub const CLUSTER_NAME_TAG: &str = "eks:eks-cluster-name";
/// EC2 states of an instance that still exists and may bill (or come back).
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

fn nodepools() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("karpenter.sh", "v1", "NodePool"),
        "nodepools",
    )
}

fn nodeclaims() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim"),
        "nodeclaims",
    )
}

fn nodeclasses() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("karpenter.k8s.aws", "v1", "EC2NodeClass"),
        "ec2nodeclasses",
    )
}

/// Reads Karpenter's side of `cluster`: instances and launch templates of every NodePool
/// when `all` (a destroy-mode cluster takes them all with it), else of the managed ones.
/// An unreachable API is not an error (the view says why, and the backstop still works
/// from EC2); EC2 failures are.
pub async fn observe(
    kube: Result<kube::Client>,
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
    k: &KarpenterConfig,
    all: bool,
) -> Result<KarpenterView> {
    let objects = match kube {
        Ok(client) => read_objects(&client, k).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let every = KarpenterConfig {
        nodepools: vec![],
        ..k.clone()
    };
    let scope = if all { &every } else { k };
    let instances = instances(ec2, cluster, scope).await?;
    let launch_templates = launch_templates(ec2, cluster, scope).await?;
    Ok(KarpenterView {
        objects,
        instances,
        launch_templates,
    })
}

/// Lists a kind; a kind the API does not serve (Karpenter not installed) has none.
async fn list_all(client: &kube::Client, ar: &ApiResource) -> Result<Vec<DynamicObject>> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(vec![]),
        Err(e) => Err(kube_error(e)),
    }
}

fn name_of(o: &DynamicObject) -> String {
    o.metadata.name.clone().unwrap_or_default()
}

async fn read_objects(client: &kube::Client, k: &KarpenterConfig) -> Result<KarpenterObjects> {
    let pools = list_all(client, &nodepools()).await?;
    // EC2NodeClasses that a NodePool the fleet does not manage uses stay.
    let foreign_classes: Vec<String> = pools
        .iter()
        .filter(|p| !k.manages(&name_of(p)))
        .filter_map(|p| node_class_of(&p.data))
        .collect();
    let nodepools = pools
        .iter()
        .filter(|p| k.manages(&name_of(p)))
        .map(|p| NodePoolView {
            name: name_of(p),
            limits: p.data.pointer("/spec/limits").cloned(),
        })
        .collect();
    let nodeclaims = list_all(client, &nodeclaims())
        .await?
        .iter()
        .filter_map(|c| {
            let pool = c.metadata.labels.as_ref()?.get(NODEPOOL_LABEL)?;
            k.manages(pool).then(|| NodeClaimView {
                name: name_of(c),
                nodepool: pool.clone(),
                deleting: c.metadata.deletion_timestamp.is_some(),
            })
        })
        .collect();
    let nodeclasses = list_all(client, &nodeclasses())
        .await?
        .iter()
        .filter(|c| !foreign_classes.contains(&name_of(c)))
        .map(|c| NodeClassView {
            name: name_of(c),
            deleting: c.metadata.deletion_timestamp.is_some(),
        })
        .collect();
    let deployments: Api<Deployment> = Api::all(client.clone());
    let controllers = deployments
        .list(&ListParams::default().labels(CONTROLLER_LABEL))
        .await
        .map_err(kube_error)?
        .items;
    let controller_available = (!controllers.is_empty()).then(|| {
        controllers.iter().any(|d| {
            d.status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0)
                > 0
        })
    });
    Ok(KarpenterObjects {
        nodepools,
        nodeclaims,
        nodeclasses,
        controller_available,
    })
}

/// `spec.template.spec.nodeClassRef.name` of a NodePool.
fn node_class_of(spec: &Value) -> Option<String> {
    spec.pointer("/spec/template/spec/nodeClassRef/name")
        .and_then(Value::as_str)
        .map(String::from)
}

/// The cluster's Karpenter instances that still exist, of the NodePools the fleet
/// manages.
pub async fn instances(
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
    k: &KarpenterConfig,
) -> Result<Vec<KarpenterInstance>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name(format!("tag:{CLUSTER_NAME_TAG}"))
                    .values(cluster)
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("tag-key")
                    .values(NODEPOOL_LABEL)
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
                    .build(),
            )
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| FleetError::aws("EC2", "DescribeInstances", e))?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            let tag = |key: &str| {
                i.tags()
                    .iter()
                    .find(|t| t.key() == Some(key))
                    .and_then(|t| t.value())
            };
            let state = i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_default();
            // The filters again: a page must not widen what the fleet terminates.
            let ours = tag(CLUSTER_NAME_TAG) == Some(cluster);
            if let (true, Some(id), Some(pool)) = (ours, i.instance_id(), tag(NODEPOOL_LABEL)) {
                if k.manages(pool) && LIVE_STATES.contains(&state.as_str()) {
                    found.push(KarpenterInstance {
                        id: id.to_string(),
                        nodepool: pool.to_string(),
                        state,
                    });
                }
            }
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    Ok(found)
}

/// Ids of the launch templates Karpenter made for the cluster (tagged
/// `eks:eks-cluster-name=<cluster>` and `karpenter.sh/nodepool`).
pub async fn launch_templates(
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
    k: &KarpenterConfig,
) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = ec2
            .describe_launch_templates()
            .filters(
                Filter::builder()
                    .name(format!("tag:{CLUSTER_NAME_TAG}"))
                    .values(cluster)
                    .build(),
            )
            .filters(
                Filter::builder()
                    .name("tag-key")
                    .values(NODEPOOL_LABEL)
                    .build(),
            )
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| FleetError::aws("EC2", "DescribeLaunchTemplates", e))?;
        for lt in page.launch_templates() {
            let tag = |key: &str| lt.tags().iter().find(|t| t.key() == Some(key));
            let ours = tag(CLUSTER_NAME_TAG).is_some_and(|t| t.value() == Some(cluster))
                && tag(NODEPOOL_LABEL)
                    .and_then(|t| t.value())
                    .is_some_and(|p| k.manages(p));
            if let (true, Some(id)) = (ours, lt.launch_template_id()) {
                found.push(id.to_string());
            }
        }
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    Ok(found)
}

/// Caps each NodePool: `spec.limits.cpu = "0"` by server-side apply (field manager
/// [`FIELD_MANAGER`], forced: GitOps may own the field; the fleet takes it for the night).
/// A NodePool gone meanwhile is skipped.
pub async fn cap(client: &kube::Client, names: &[String]) -> Result<()> {
    for name in names {
        apply_limits(client, name, Some(&json!({"cpu": "0"}))).await?;
    }
    Ok(())
}

/// Puts back the recorded `cpu` limit, the only field the cap set: the recorded value
/// exactly, or, when there was none, an apply that leaves `spec.limits` out, which removes
/// what the fleet set and nothing else. Other limits (`memory`, …) were never touched and
/// stay with whoever owns them.
pub async fn restore(client: &kube::Client, limits: &[(String, Option<Value>)]) -> Result<()> {
    for (name, value) in limits {
        let cpu = value
            .as_ref()
            .and_then(|l| l.get("cpu"))
            .map(|cpu| json!({ "cpu": cpu }));
        apply_limits(client, name, cpu.as_ref()).await?;
    }
    Ok(())
}

async fn apply_limits(client: &kube::Client, name: &str, limits: Option<&Value>) -> Result<()> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &nodepools());
    // A server-side apply creates what does not exist: never make a NodePool.
    if api.get_opt(name).await.map_err(kube_error)?.is_none() {
        return Ok(());
    }
    let mut body = json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
    });
    if let Some(limits) = limits {
        body["spec"] = json!({ "limits": limits });
    }
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(kube_error)?;
    Ok(())
}

/// Deletes NodeClaims (Karpenter drains and terminates their nodes); gone counts as done.
pub async fn delete_nodeclaims(client: &kube::Client, names: &[String]) -> Result<()> {
    delete_all(client, &nodeclaims(), names).await
}

/// Deletes EC2NodeClasses (Karpenter's finalizer removes their instance profiles and
/// launch templates once no NodeClaim uses them); gone counts as done.
pub async fn delete_nodeclasses(client: &kube::Client, names: &[String]) -> Result<()> {
    delete_all(client, &nodeclasses(), names).await
}

async fn delete_all(client: &kube::Client, ar: &ApiResource, names: &[String]) -> Result<()> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    for name in names {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(kube_error(e)),
        }
    }
    Ok(())
}

/// The backstop: terminates instances and deletes launch templates (IAM allows both only
/// on resources tagged `karpenter.sh/nodepool` and `eks:eks-cluster-name` of a fleet
/// cluster). Already gone counts as done.
pub async fn terminate(
    ec2: &aws_sdk_ec2::Client,
    instances: &[String],
    launch_templates: &[String],
) -> Result<()> {
    // TerminateInstances takes up to 1000 ids per call.
    for chunk in instances.chunks(1000) {
        ec2.terminate_instances()
            .set_instance_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| FleetError::aws("EC2", "TerminateInstances", e))?;
    }
    for id in launch_templates {
        match ec2
            .delete_launch_template()
            .launch_template_id(id)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error().and_then(ProvideErrorMetadata::code)
                    == Some("InvalidLaunchTemplateId.NotFound") => {}
            Err(e) => return Err(FleetError::aws("EC2", "DeleteLaunchTemplate", e)),
        }
    }
    Ok(())
}
