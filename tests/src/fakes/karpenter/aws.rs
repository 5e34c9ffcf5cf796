//! The AWS side of the fake Karpenter, on moto: instance profiles (IAM's Query protocol,
//! spoken directly), launch templates and instances (the EC2 client).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    Filter, IamInstanceProfileSpecification, InstanceMarketOptionsRequest, InstanceType,
    LaunchTemplateSpecification, MarketType, RequestLaunchTemplateData, ResourceType, Tag,
    TagSpecification,
};
use reqwest::Url;

use super::xml::{children, error_code, path, text};
use super::{NODECLASS_LABEL, NODEPOOL_LABEL};

/// The instance states in which Karpenter's cloud provider still lists an instance
/// (`providers/instance`, `instanceStateFilter`).
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// The image of the fake's launch templates (moto accepts any).
pub(super) const IMAGE: &str = "ami-0fa4e00000000a1c2";

/// An instance profile as IAM (moto) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceProfile {
    pub name: String,
    pub path: String,
    /// Role names in it.
    pub roles: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// An instance just launched.
#[derive(Debug, Clone)]
pub(super) struct Launched {
    pub(super) id: String,
    pub(super) zone: String,
    /// Its private DNS name: its Node's name.
    pub(super) node_name: String,
}

/// One cluster's AWS, as its controller sees it.
pub(super) struct Aws {
    pub(super) ec2: aws_sdk_ec2::Client,
    pub(super) cluster: String,
    pub(super) region: String,
    iam_endpoint: String,
    http: reqwest::Client,
    /// DescribeInstanceTypes answers: type -> (vCPUs, MiB).
    shapes: std::sync::Mutex<HashMap<String, (i64, i64)>>,
}

impl Aws {
    pub(super) fn new(ec2: aws_sdk_ec2::Client, cluster: &str, iam_endpoint: String) -> Aws {
        let region = ec2
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| crate::REGION.to_string());
        Aws {
            ec2,
            cluster: cluster.to_string(),
            region,
            iam_endpoint,
            http: reqwest::Client::new(),
            shapes: Default::default(),
        }
    }

    /// The tags Karpenter puts on an instance (and its launch template), after the
    /// class's own `spec.tags` (`utils.GetTags`: the static ones win).
    pub(super) fn instance_tags(
        &self,
        class_tags: &BTreeMap<String, String>,
        nodepool: &str,
        nodeclass: &str,
    ) -> BTreeMap<String, String> {
        let mut tags = class_tags.clone();
        tags.insert(
            format!("kubernetes.io/cluster/{}", self.cluster),
            "owned".into(),
        );
        tags.insert(NODEPOOL_LABEL.into(), nodepool.into());
        tags.insert("eks:eks-cluster-name".into(), self.cluster.clone());
        tags.insert(NODECLASS_LABEL.into(), nodeclass.into());
        tags
    }

    /// (vCPUs, memory in MiB) of an instance type, from DescribeInstanceTypes (2 vCPUs
    /// and 8 GiB when moto does not know it).
    pub(super) async fn shape(&self, instance_type: &str) -> (i64, i64) {
        let cached = super::lock(&self.shapes).get(instance_type).copied();
        if let Some(shape) = cached {
            return shape;
        }
        let answer = self
            .ec2
            .describe_instance_types()
            .instance_types(InstanceType::from(instance_type))
            .send()
            .await;
        let shape = answer
            .ok()
            .and_then(|o| o.instance_types.unwrap_or_default().into_iter().next())
            .map(|t| {
                let cpu = t.v_cpu_info.and_then(|c| c.default_v_cpus).unwrap_or(2);
                let mib = t.memory_info.and_then(|m| m.size_in_mib).unwrap_or(8192);
                (i64::from(cpu), mib)
            })
            .unwrap_or((2, 8192));
        super::lock(&self.shapes).insert(instance_type.to_string(), shape);
        shape
    }

    // --- IAM ---

    /// One IAM Query call; the answer's body, or `Action: code` when IAM refused.
    async fn iam(&self, action: &str, params: &[(String, String)]) -> Result<String, String> {
        let mut all = vec![
            ("Action".to_string(), action.to_string()),
            ("Version".to_string(), "2010-05-08".to_string()),
        ];
        all.extend_from_slice(params);
        let form = Url::parse_with_params("http://form/", &all).map_err(|e| e.to_string())?;
        let response = self
            .http
            .post(&self.iam_endpoint)
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=ANOTREAL/20260101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.query().unwrap_or_default().to_string())
            .send()
            .await
            .map_err(|e| format!("IAM {action}: {e}"))?;
        let ok = response.status().is_success();
        let body = response
            .text()
            .await
            .map_err(|e| format!("IAM {action}: {e}"))?;
        match (ok, error_code(&body)) {
            (true, None) => Ok(body),
            (_, code) => Err(format!(
                "IAM {action}: {}",
                code.unwrap_or_else(|| body.chars().take(200).collect())
            )),
        }
    }

    /// The IAM path of a class's instance profiles
    /// (`instanceprofile.FormatPath("karpenter", region, cluster, uid)`).
    pub(super) fn profile_path(&self, nodeclass_uid: &str) -> String {
        format!(
            "/karpenter/{}/{}/{nodeclass_uid}/",
            self.region, self.cluster
        )
    }

    /// Whether instance profile `name` exists.
    pub(super) async fn profile_exists(&self, name: &str) -> Result<bool, String> {
        let params = [("InstanceProfileName".to_string(), name.to_string())];
        match self.iam("GetInstanceProfile", &params).await {
            Ok(_) => Ok(true),
            Err(e) if e.ends_with("NoSuchEntity") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a class's instance profile with `role` in it (the role created first if
    /// moto has none of that name); returns its name, `<cluster>_<number>`
    /// (`EC2NodeClass.InstanceProfileName`: a hash of region, class name and a fresh
    /// UUID).
    pub(super) async fn create_profile(
        &self,
        nodeclass: &str,
        nodeclass_uid: &str,
        role: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, String> {
        let name = format!(
            "{}_{}",
            self.cluster,
            fresh_number(&[&self.region, nodeclass])
        );
        let mut params = vec![
            ("InstanceProfileName".to_string(), name.clone()),
            ("Path".to_string(), self.profile_path(nodeclass_uid)),
        ];
        for (i, (k, v)) in tags.iter().enumerate() {
            params.push((format!("Tags.member.{}.Key", i + 1), k.clone()));
            params.push((format!("Tags.member.{}.Value", i + 1), v.clone()));
        }
        self.iam("CreateInstanceProfile", &params).await?;
        self.ensure_role(role).await?;
        let add = [
            ("InstanceProfileName".to_string(), name.clone()),
            ("RoleName".to_string(), role.to_string()),
        ];
        self.iam("AddRoleToInstanceProfile", &add).await?;
        Ok(name)
    }

    /// The node role, created (trusting EC2) when moto has none of that name.
    async fn ensure_role(&self, role: &str) -> Result<(), String> {
        let name = [("RoleName".to_string(), role.to_string())];
        match self.iam("GetRole", &name).await {
            Ok(_) => Ok(()),
            Err(e) if e.ends_with("NoSuchEntity") => {
                let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
                let params = [
                    ("RoleName".to_string(), role.to_string()),
                    ("AssumeRolePolicyDocument".to_string(), policy.to_string()),
                ];
                self.iam("CreateRole", &params).await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes every instance profile under a class's path, and `also` (its
    /// `status.instanceProfile`), each role removed first, as
    /// `cleanupManagedInstanceProfiles` does; returns the names deleted.
    pub(super) async fn delete_profiles(
        &self,
        nodeclass_uid: &str,
        also: Option<&str>,
    ) -> Result<Vec<String>, String> {
        let path = self.profile_path(nodeclass_uid);
        let mut deleted = Vec::new();
        for profile in list_profiles(self).await? {
            if profile.path != path && Some(profile.name.as_str()) != also {
                continue;
            }
            for role in &profile.roles {
                let params = [
                    ("InstanceProfileName".to_string(), profile.name.clone()),
                    ("RoleName".to_string(), role.clone()),
                ];
                self.iam("RemoveRoleFromInstanceProfile", &params).await?;
            }
            let params = [("InstanceProfileName".to_string(), profile.name.clone())];
            self.iam("DeleteInstanceProfile", &params).await?;
            deleted.push(profile.name);
        }
        Ok(deleted)
    }

    // --- EC2 ---

    /// The launch template of a class and NodePool, created when missing; its name.
    pub(super) async fn ensure_launch_template(
        &self,
        nodeclass: &str,
        nodepool: &str,
        profile: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, String> {
        let name = format!(
            "karpenter.k8s.aws/{}",
            stable_number(&[&self.cluster, nodeclass, nodepool])
        );
        let mut tags = tags.clone();
        tags.insert("karpenter.k8s.aws/cluster".into(), self.cluster.clone());
        let data = RequestLaunchTemplateData::builder()
            .image_id(IMAGE)
            .iam_instance_profile(
                aws_sdk_ec2::types::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name(profile)
                    .build(),
            )
            .build();
        let created = self
            .ec2
            .create_launch_template()
            .launch_template_name(&name)
            .launch_template_data(data)
            .tag_specifications(tag_spec(ResourceType::LaunchTemplate, &tags))
            .send()
            .await;
        match created {
            Ok(_) => Ok(name),
            Err(e) if e.code() == Some("InvalidLaunchTemplateName.AlreadyExistsException") => {
                Ok(name)
            }
            Err(e) => Err(format!("EC2 CreateLaunchTemplate {name}: {}", detail(&e))),
        }
    }

    /// Deletes a class's launch templates (`launchtemplate.DeleteAll`: those tagged
    /// with the cluster and the class); returns their names.
    pub(super) async fn delete_launch_templates(
        &self,
        nodeclass: &str,
    ) -> Result<Vec<String>, String> {
        let found = self
            .ec2
            .describe_launch_templates()
            .filters(filter("tag:eks:eks-cluster-name", &[&self.cluster]))
            .filters(filter(&format!("tag:{NODECLASS_LABEL}"), &[nodeclass]))
            .send()
            .await
            .map_err(|e| format!("EC2 DescribeLaunchTemplates: {}", detail(&e)))?;
        let names: Vec<String> = found
            .launch_templates()
            .iter()
            .filter_map(|t| t.launch_template_name.clone())
            .collect();
        for name in &names {
            self.ec2
                .delete_launch_template()
                .launch_template_name(name)
                .send()
                .await
                .map_err(|e| format!("EC2 DeleteLaunchTemplate {name}: {}", detail(&e)))?;
        }
        Ok(names)
    }

    /// Launches one instance from a launch template.
    pub(super) async fn run_instance(
        &self,
        launch_template: &str,
        profile: &str,
        instance_type: &str,
        spot: bool,
        tags: &BTreeMap<String, String>,
    ) -> Result<Launched, String> {
        let mut run = self
            .ec2
            .run_instances()
            .min_count(1)
            .max_count(1)
            .instance_type(InstanceType::from(instance_type))
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(launch_template)
                    .version("$Latest")
                    .build(),
            )
            .iam_instance_profile(
                IamInstanceProfileSpecification::builder()
                    .name(profile)
                    .build(),
            )
            .tag_specifications(tag_spec(ResourceType::Instance, tags));
        if spot {
            run = run.instance_market_options(
                InstanceMarketOptionsRequest::builder()
                    .market_type(MarketType::Spot)
                    .build(),
            );
        }
        let out = run
            .send()
            .await
            .map_err(|e| format!("EC2 RunInstances: {}", detail(&e)))?;
        let instance = out
            .instances()
            .first()
            .ok_or("EC2 RunInstances: no instance")?;
        let id = instance.instance_id().ok_or("EC2 RunInstances: no id")?;
        let zone = instance
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default();
        let node_name = instance
            .private_dns_name()
            .filter(|n| !n.is_empty())
            .map(String::from)
            .unwrap_or_else(|| format!("{id}.{}.compute.internal", self.region));
        Ok(Launched {
            id: id.to_string(),
            zone: zone.to_string(),
            node_name,
        })
    }

    /// An instance's state name; `None` when EC2 does not know it.
    pub(super) async fn instance_state(&self, id: &str) -> Result<Option<String>, String> {
        let out = self.ec2.describe_instances().instance_ids(id).send().await;
        match out {
            Ok(o) => Ok(o
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .find(|i| i.instance_id() == Some(id))
                .and_then(|i| i.state())
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())),
            Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => Ok(None),
            Err(e) => Err(format!("EC2 DescribeInstances {id}: {}", detail(&e))),
        }
    }

    /// Whether an instance state counts as live for Karpenter.
    pub(super) fn is_live(state: Option<&str>) -> bool {
        state.is_some_and(|s| LIVE_STATES.contains(&s))
    }

    /// The ids of the cluster's Karpenter instances still live (`providers/instance`,
    /// `List`: tag keys `karpenter.sh/nodepool` and `karpenter.k8s.aws/ec2nodeclass`, tag
    /// `eks:eks-cluster-name`, a live state).
    pub(super) async fn live_instances(&self) -> Result<BTreeSet<String>, String> {
        let mut ids = BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .ec2
                .describe_instances()
                .filters(filter("tag-key", &[NODEPOOL_LABEL]))
                .filters(filter("tag-key", &[NODECLASS_LABEL]))
                .filters(filter("tag:eks:eks-cluster-name", &[&self.cluster]))
                .filters(filter("instance-state-name", &LIVE_STATES))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| format!("EC2 DescribeInstances: {}", detail(&e)))?;
            ids.extend(
                out.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter_map(|i| i.instance_id().map(String::from)),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(ids),
            }
        }
    }

    pub(super) async fn terminate(&self, id: &str) -> Result<(), String> {
        self.ec2
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("EC2 TerminateInstances {id}: {}", detail(&e)))
    }
}

/// Every instance profile in moto, as ListInstanceProfiles gives them.
async fn list_profiles(aws: &Aws) -> Result<Vec<InstanceProfile>, String> {
    let params = [("MaxItems".to_string(), "1000".to_string())];
    let body = aws.iam("ListInstanceProfiles", &params).await?;
    let list = path(
        &body,
        &[
            "ListInstanceProfilesResponse",
            "ListInstanceProfilesResult",
            "InstanceProfiles",
        ],
    )
    .unwrap_or_default();
    Ok(children(list, "member")
        .into_iter()
        .map(profile_of)
        .collect())
}

fn profile_of(member: &str) -> InstanceProfile {
    let members = |tag: &str| {
        path(member, &[tag])
            .map(|l| children(l, "member"))
            .unwrap_or_default()
    };
    InstanceProfile {
        name: text(member, "InstanceProfileName").unwrap_or_default(),
        path: text(member, "Path").unwrap_or_default(),
        roles: members("Roles")
            .into_iter()
            .filter_map(|r| text(r, "RoleName"))
            .collect(),
        tags: members("Tags")
            .into_iter()
            .filter_map(|t| Some((text(t, "Key")?, text(t, "Value")?)))
            .collect(),
    }
}

/// The instance profiles of cluster `cluster` in the test binary's moto: those tagged
/// `kubernetes.io/cluster/<cluster>=owned`, as Karpenter tags them, sorted by name.
pub async fn instance_profiles(cluster: &str) -> Result<Vec<InstanceProfile>, String> {
    let aws = Aws::new(
        aws_sdk_ec2::Client::new(&crate::sdk()),
        cluster,
        crate::moto().endpoint.clone(),
    );
    let key = format!("kubernetes.io/cluster/{cluster}");
    let mut out: Vec<InstanceProfile> = list_profiles(&aws)
        .await?
        .into_iter()
        .filter(|p| p.tags.get(&key).is_some_and(|v| v == "owned"))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

fn tag_spec(resource: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// An SDK error's code and message, or its display.
fn detail<E: ProvideErrorMetadata + std::fmt::Display>(e: &E) -> String {
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// A number from `parts` alone (the same parts, the same number in this process).
fn stable_number(parts: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// A number from `parts` and a counter: new at each call, as a UUID makes it.
fn fresh_number(parts: &[&str]) -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    N.fetch_add(1, Ordering::Relaxed).hash(&mut h);
    std::process::id().hash(&mut h);
    h.finish()
}
