//! Seeding a Karpenter cluster: its CRDs, NodePools, EC2NodeClasses and the controller's
//! Deployment, in the shapes of `karpenter.sh/v1` and `karpenter.k8s.aws/v1`.

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::{json, Value};

use crate::fakes::kube::FakeKube;

use super::{
    AWS_API, CONTROLLER_LABEL, CONTROLLER_NAME, CONTROLLER_NAMESPACE, KARPENTER_API,
    NODECLASS_FINALIZER,
};

/// (group, kind, plural) of the three CRDs, all cluster-scoped, version v1.
const CRDS: [(&str, &str, &str); 3] = [
    ("karpenter.sh", "NodePool", "nodepools"),
    ("karpenter.sh", "NodeClaim", "nodeclaims"),
    ("karpenter.k8s.aws", "EC2NodeClass", "ec2nodeclasses"),
];

/// Stores the CRDs of NodePool, NodeClaim (`karpenter.sh/v1`) and EC2NodeClass
/// (`karpenter.k8s.aws/v1`), cluster-scoped, Established at once (installed with the
/// chart, long before the test).
pub fn install_crds(kube: &FakeKube) {
    for (group, kind, plural) in CRDS {
        let name = format!("{plural}.{group}");
        kube.insert(crd(&name, group, kind, plural));
        kube.establish_crd(&name);
    }
}

fn crd(name: &str, group: &str, kind: &str, plural: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "scope": "Cluster",
            "names": {
                "kind": kind,
                "listKind": format!("{kind}List"),
                "plural": plural,
                "singular": kind.to_lowercase(),
                "categories": ["karpenter"],
            },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}},
            }],
        },
    })
}

/// A `karpenter.sh/v1` NodePool, built with [`NodePool::build`].
#[derive(Debug, Clone)]
pub struct NodePool {
    name: String,
    nodeclass: String,
    limits: Option<Value>,
    instance_type: Option<String>,
    capacity_type: String,
    weight: Option<i64>,
}

impl NodePool {
    /// NodePool `name` whose template's `nodeClassRef` is EC2NodeClass `nodeclass`;
    /// on-demand, no limits, no instance-type requirement.
    pub fn new(name: &str, nodeclass: &str) -> NodePool {
        NodePool {
            name: name.to_string(),
            nodeclass: nodeclass.to_string(),
            limits: None,
            instance_type: None,
            capacity_type: "on-demand".to_string(),
            weight: None,
        }
    }

    /// `spec.limits`: a map of resource to quantity, `{"cpu": "100"}` (CPU in cores, or
    /// `m` for millicores; `"0"` launches nothing).
    pub fn limits(mut self, limits: Value) -> NodePool {
        self.limits = Some(limits);
        self
    }

    /// A requirement `node.kubernetes.io/instance-type In [<t>]` (default
    /// [`super::DEFAULT_INSTANCE_TYPE`]).
    pub fn instance_type(mut self, instance_type: &str) -> NodePool {
        self.instance_type = Some(instance_type.to_string());
        self
    }

    /// The `karpenter.sh/capacity-type` requirement: `spot` or `on-demand` (default).
    pub fn capacity_type(mut self, capacity_type: &str) -> NodePool {
        self.capacity_type = capacity_type.to_string();
        self
    }

    /// `spec.weight`: higher NodePools are tried first.
    pub fn weight(mut self, weight: i64) -> NodePool {
        self.weight = Some(weight);
        self
    }

    pub fn build(&self) -> Value {
        let mut requirements = vec![
            json!({"key": "karpenter.sh/capacity-type", "operator": "In", "values": [self.capacity_type]}),
            json!({"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}),
        ];
        if let Some(t) = &self.instance_type {
            requirements.push(
                json!({"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [t]}),
            );
        }
        let mut np = json!({
            "apiVersion": KARPENTER_API,
            "kind": "NodePool",
            "metadata": {"name": self.name},
            "spec": {
                "template": {
                    "metadata": {},
                    "spec": {
                        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": self.nodeclass},
                        "requirements": requirements,
                        "expireAfter": "720h",
                    },
                },
                "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "1m"},
            },
        });
        if let Some(limits) = &self.limits {
            np["spec"]["limits"] = limits.clone();
        }
        if let Some(w) = self.weight {
            np["spec"]["weight"] = json!(w);
        }
        np
    }
}

/// A `karpenter.k8s.aws/v1` EC2NodeClass, built with [`Ec2NodeClass::build`].
#[derive(Debug, Clone)]
pub struct Ec2NodeClass {
    name: String,
    cluster: String,
    role: String,
    tags: BTreeMap<String, String>,
}

impl Ec2NodeClass {
    /// EC2NodeClass `name` of cluster `cluster`, as the getting-started guide writes one:
    /// role `KarpenterNodeRole-<cluster>`, AL2023, subnets and security groups by the tag
    /// `karpenter.sh/discovery=<cluster>`, no `spec.tags`.
    pub fn new(name: &str, cluster: &str) -> Ec2NodeClass {
        Ec2NodeClass {
            name: name.to_string(),
            cluster: cluster.to_string(),
            role: format!("KarpenterNodeRole-{cluster}"),
            tags: BTreeMap::new(),
        }
    }

    /// `spec.role`: the node role put in its instance profile.
    pub fn role(mut self, role: &str) -> Ec2NodeClass {
        self.role = role.to_string();
        self
    }

    /// One of `spec.tags`, put on everything launched for it (`fleet:cluster`, say).
    pub fn tag(mut self, key: &str, value: &str) -> Ec2NodeClass {
        self.tags.insert(key.to_string(), value.to_string());
        self
    }

    pub fn build(&self) -> Value {
        let discovery = json!({"tags": {"karpenter.sh/discovery": self.cluster}});
        let mut class = json!({
            "apiVersion": AWS_API,
            "kind": "EC2NodeClass",
            "metadata": {"name": self.name, "finalizers": [NODECLASS_FINALIZER]},
            "spec": {
                "role": self.role,
                "amiSelectorTerms": [{"alias": "al2023@latest"}],
                "subnetSelectorTerms": [discovery],
                "securityGroupSelectorTerms": [discovery],
            },
        });
        if !self.tags.is_empty() {
            class["spec"]["tags"] = json!(self.tags);
        }
        class
    }
}

/// The controller's Deployment as the Helm chart makes it: `kube-system/karpenter`,
/// labelled `app.kubernetes.io/name=karpenter` (and `app.kubernetes.io/instance`), two
/// replicas, with `status.availableReplicas` and `status.readyReplicas` as given.
pub fn controller_deployment(available: u32, ready: u32) -> Value {
    let labels =
        json!({CONTROLLER_LABEL.0: CONTROLLER_LABEL.1, "app.kubernetes.io/instance": "karpenter"});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": CONTROLLER_NAME, "namespace": CONTROLLER_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "controller", "image": "karpenter/controller:1.8.0"}]},
            },
        },
        "status": {"replicas": 2, "availableReplicas": available, "readyReplicas": ready},
    })
}

/// Sets the stored controller Deployment's `status.availableReplicas` and
/// `status.readyReplicas` (as the Deployment controller would once its pods come or
/// go), out of the request log. Whether the fake controller acts is
/// [`super::FakeKarpenter::set_running`]. Errors when there is no such Deployment.
pub async fn set_controller_replicas(
    kube: &FakeKube,
    available: u32,
    ready: u32,
) -> Result<(), String> {
    let path = format!(
        "/apis/apps/v1/namespaces/{CONTROLLER_NAMESPACE}/deployments/{CONTROLLER_NAME}/status"
    );
    let patch = json!({"status": {"availableReplicas": available, "readyReplicas": ready}});
    let (code, body) = kube
        .controller_request(Method::PATCH, &path, "application/merge-patch+json", patch)
        .await;
    match code {
        200 => Ok(()),
        _ => Err(format!("PATCH {path}: {code} {}", body["message"])),
    }
}
