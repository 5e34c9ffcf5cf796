//! EKS adapter: reads a cluster into [`Observed`] and carries out one [`Step`](crate::step::Step)'s calls.
//! No decisions here; see `reconcile.rs`.

use std::collections::HashMap;

use aws_sdk_eks::types::{
    AmiTypes, CapacityTypes, NodegroupScalingConfig, ResolveConflicts, VpcConfigRequest,
};
use fleet_shared::config::{Blueprint, ClusterConfig, CLUSTER_TAG, MANAGED_BY_TAG};
use fleet_shared::{FleetError, Result};
use futures::future::try_join_all;

use crate::observed::ObservedPodIdentity;
use crate::reconcile::{Observed, ObservedCluster, ObservedNodegroup, Scaling};
use crate::step::PodIdentityChange;

#[derive(Clone, Debug)]
pub struct Eks {
    client: aws_sdk_eks::Client,
    /// This fleet's name: the `fleet:managed-by` tag value on what it creates.
    stack: String,
}

/// Which parts of a cluster the decision needs; the rest is not listed (fewer calls).
#[derive(Debug, Clone, Copy)]
pub struct Want {
    pub addons: bool,
    pub fargate: bool,
    pub access: bool,
    /// The Pod Identity associations (with their roles: one describe each).
    pub pod_identity: bool,
}

fn err<E, R>(
    op: &'static str,
) -> impl FnOnce(aws_smithy_runtime_api::client::result::SdkError<E, R>) -> FleetError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + fleet_shared::error::HttpStatus,
{
    FleetError::aws_call("EKS", op)
}

/// Tags on everything the fleet creates: the blueprint's, the cluster tag the cost reporter
/// groups by, and `fleet:managed-by` = this fleet's name (`stack`), which its IAM policy
/// requires on every cluster it acts on.
pub fn fleet_tags(cluster: &str, blueprint: &Blueprint, stack: &str) -> HashMap<String, String> {
    let mut tags: HashMap<String, String> = blueprint.tags.clone().into_iter().collect();
    tags.insert(CLUSTER_TAG.into(), cluster.into());
    tags.insert(MANAGED_BY_TAG.into(), stack.into());
    tags
}

impl Eks {
    pub fn new(client: aws_sdk_eks::Client, stack: impl Into<String>) -> Self {
        Eks {
            client,
            stack: stack.into(),
        }
    }

    /// The cluster itself (status, tags, endpoint, the token that created it) in one call;
    /// no nodegroups or add-ons. Its [`Ownership`](crate::reconcile::Ownership) is the
    /// caller's to decide (it needs the record): until then, `Foreign`.
    pub async fn describe(&self, name: &str) -> Result<Observed> {
        let described = self
            .client
            .describe_cluster()
            .name(name)
            .send()
            .await
            .map_err(err("DescribeCluster"));
        let cluster = match described {
            Err(e) if e.is_not_found() => return Ok(Observed::Absent),
            other => other?.cluster,
        };
        let Some(cluster) = cluster else {
            return Ok(Observed::Absent);
        };
        let managed_by = cluster
            .tags
            .as_ref()
            .and_then(|t| t.get(MANAGED_BY_TAG))
            .cloned();
        let status = cluster
            .status
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "UNKNOWN".into());
        let generation = cluster
            .created_at
            .map(|t| t.secs().to_string())
            .or_else(|| cluster.arn.clone())
            .unwrap_or_default();
        Ok(Observed::Present(ObservedCluster {
            status,
            ownership: crate::reconcile::Ownership::Foreign(managed_by.clone()),
            managed_by,
            request_token: cluster.client_request_token.clone(),
            arn: cluster.arn.clone(),
            generation,
            endpoint: cluster.endpoint.clone(),
            ca_data: cluster
                .certificate_authority
                .as_ref()
                .and_then(|c| c.data.clone()),
            oidc_issuer: cluster
                .identity
                .as_ref()
                .and_then(|i| i.oidc.as_ref())
                .and_then(|o| o.issuer.clone()),
            ..Default::default()
        }))
    }

    /// Nodegroups, and the add-ons, Fargate profiles and access entries `want` asks for.
    pub async fn look_inside(
        &self,
        name: &str,
        observed: &mut ObservedCluster,
        want: Want,
    ) -> Result<()> {
        if observed.ownership != crate::reconcile::Ownership::Ours {
            // Nothing else is read from a cluster that is not ours.
            return Ok(());
        }
        let names = self.nodegroup_names(name).await?;
        observed.nodegroups = try_join_all(names.iter().map(|ng| self.nodegroup(name, ng)))
            .await?
            .into_iter()
            .flatten()
            .collect();
        if want.addons {
            observed.addons = self.addons(name).await?;
        }
        if want.fargate {
            observed.fargate_profiles = self.fargate_profiles(name).await?;
        }
        if want.access && observed.status == "ACTIVE" {
            observed.access_principals = self.access_principals(name).await?;
        }
        if want.pod_identity && observed.status == "ACTIVE" {
            observed.pod_identities = self.pod_identities(name).await?;
        }
        Ok(())
    }

    /// The cluster's Pod Identity associations, each with its role (the list does not
    /// give it: one `DescribePodIdentityAssociation` each).
    async fn pod_identities(&self, cluster: &str) -> Result<Vec<ObservedPodIdentity>> {
        let mut summaries = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_pod_identity_associations()
                .cluster_name(cluster)
                .set_next_token(token)
                .send()
                .await
                .map_err(err("ListPodIdentityAssociations"))?;
            summaries.extend(page.associations.unwrap_or_default());
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        let mut out = Vec::new();
        for s in summaries {
            let Some(id) = s.association_id else { continue };
            let described = self
                .client
                .describe_pod_identity_association()
                .cluster_name(cluster)
                .association_id(&id)
                .send()
                .await
                .map_err(err("DescribePodIdentityAssociation"));
            let association = match described {
                // Deleted between list and describe.
                Err(e) if e.is_not_found() => continue,
                other => other?.association,
            };
            let Some(a) = association else { continue };
            let ours = a
                .tags
                .as_ref()
                .and_then(|t| t.get(MANAGED_BY_TAG))
                .is_some_and(|v| *v == self.stack);
            out.push(ObservedPodIdentity {
                namespace: a.namespace.unwrap_or_default(),
                service_account: a.service_account.unwrap_or_default(),
                association_id: id,
                role_arn: a.role_arn.unwrap_or_default(),
                ours,
            });
        }
        Ok(out)
    }

    /// Creates or updates Pod Identity associations. A create that finds one already there
    /// (a concurrent tick, or a list that lagged) converges: the next look updates it if
    /// its role differs.
    pub async fn associate_pod_identities(
        &self,
        cluster: &ClusterConfig,
        changes: &[PodIdentityChange],
    ) -> Result<()> {
        for change in changes {
            match change {
                PodIdentityChange::Create(p) => {
                    let created = self
                        .client
                        .create_pod_identity_association()
                        .cluster_name(cluster.eks_name())
                        .namespace(&p.namespace)
                        .service_account(&p.service_account)
                        .role_arn(&p.role_arn)
                        .set_tags(Some(fleet_tags(
                            &cluster.name,
                            &cluster.blueprint,
                            &self.stack,
                        )))
                        .send()
                        .await
                        .map_err(err("CreatePodIdentityAssociation"));
                    converge_on_in_use(created)?;
                }
                PodIdentityChange::Update {
                    association_id,
                    role_arn,
                    ..
                } => {
                    self.client
                        .update_pod_identity_association()
                        .cluster_name(cluster.eks_name())
                        .association_id(association_id)
                        .role_arn(role_arn)
                        .send()
                        .await
                        .map_err(err("UpdatePodIdentityAssociation"))?;
                }
            }
        }
        Ok(())
    }

    async fn nodegroup_names(&self, cluster: &str) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_nodegroups()
                .cluster_name(cluster)
                .set_next_token(token)
                .send()
                .await
                .map_err(err("ListNodegroups"))?;
            names.extend(page.nodegroups.unwrap_or_default());
            token = page.next_token;
            if token.is_none() {
                return Ok(names);
            }
        }
    }

    async fn nodegroup(&self, cluster: &str, name: &str) -> Result<Option<ObservedNodegroup>> {
        let out = self
            .client
            .describe_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(name)
            .send()
            .await
            .map_err(err("DescribeNodegroup"));
        let ng = match out {
            // Deleted between list and describe.
            Err(e) if e.is_not_found() => return Ok(None),
            other => other?.nodegroup,
        };
        let Some(ng) = ng else { return Ok(None) };
        let scaling = ng.scaling_config.as_ref();
        Ok(Some(ObservedNodegroup {
            name: name.to_string(),
            status: ng
                .status
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "UNKNOWN".into()),
            min: scaling.and_then(|s| s.min_size).unwrap_or(0),
            max: scaling.and_then(|s| s.max_size).unwrap_or(0),
            desired: scaling.and_then(|s| s.desired_size).unwrap_or(0),
            issues: ng
                .health
                .as_ref()
                .map(|h| {
                    h.issues()
                        .iter()
                        .map(|i| {
                            format!(
                                "{}: {}",
                                i.code.as_ref().map(|c| c.as_str()).unwrap_or("Unknown"),
                                i.message.as_deref().unwrap_or_default()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }

    async fn addons(&self, cluster: &str) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_addons()
                .cluster_name(cluster)
                .set_next_token(token)
                .send()
                .await
                .map_err(err("ListAddons"))?;
            names.extend(page.addons.unwrap_or_default());
            token = page.next_token;
            if token.is_none() {
                return Ok(names);
            }
        }
    }

    async fn access_principals(&self, cluster: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_access_entries()
                .cluster_name(cluster)
                .set_next_token(token)
                .send()
                .await
                .map_err(err("ListAccessEntries"))?;
            out.extend(page.access_entries.unwrap_or_default());
            token = page.next_token;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// An access entry of the blueprint's type for each principal, and its cluster-wide
    /// policy for a `STANDARD` one (EKS refuses policies on the node types). Both calls
    /// are idempotent: an existing entry converges, re-associating a policy is a no-op.
    pub async fn create_access_entries(
        &self,
        cluster: &ClusterConfig,
        principals: &[String],
    ) -> Result<()> {
        for entry in cluster
            .blueprint
            .access
            .iter()
            .filter(|a| principals.contains(&a.principal_arn))
        {
            let created = self
                .client
                .create_access_entry()
                .cluster_name(cluster.eks_name())
                .principal_arn(&entry.principal_arn)
                .r#type(entry.kind.as_str())
                .set_kubernetes_groups(
                    (!entry.kubernetes_groups.is_empty()).then(|| entry.kubernetes_groups.clone()),
                )
                .set_username(entry.username.clone())
                .set_tags(Some(fleet_tags(
                    &cluster.name,
                    &cluster.blueprint,
                    &self.stack,
                )))
                .send()
                .await
                .map_err(err("CreateAccessEntry"));
            converge_on_in_use(created)?;
            let partition = entry.principal_arn.split(':').nth(1).unwrap_or("aws");
            let Some(policy_arn) = entry.policy_arn(partition) else {
                continue;
            };
            self.client
                .associate_access_policy()
                .cluster_name(cluster.eks_name())
                .principal_arn(&entry.principal_arn)
                .policy_arn(policy_arn)
                .access_scope(
                    aws_sdk_eks::types::AccessScope::builder()
                        .r#type(aws_sdk_eks::types::AccessScopeType::Cluster)
                        .build(),
                )
                .send()
                .await
                .map_err(err("AssociateAccessPolicy"))?;
        }
        Ok(())
    }

    async fn fargate_profiles(&self, cluster: &str) -> Result<Vec<(String, String)>> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_fargate_profiles()
                .cluster_name(cluster)
                .set_next_token(token)
                .send()
                .await
                .map_err(err("ListFargateProfiles"))?;
            names.extend(page.fargate_profile_names.unwrap_or_default());
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        let mut out = Vec::new();
        for name in names {
            let described = self
                .client
                .describe_fargate_profile()
                .cluster_name(cluster)
                .fargate_profile_name(&name)
                .send()
                .await
                .map_err(err("DescribeFargateProfile"));
            let status = match described {
                Err(e) if e.is_not_found() => continue,
                other => other?
                    .fargate_profile
                    .and_then(|p| p.status)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "UNKNOWN".into()),
            };
            out.push((name, status));
        }
        Ok(out)
    }

    /// Creates the control plane with `token` as its `clientRequestToken` (recorded first:
    /// it is how the fleet knows the incarnation as its own; EKS makes a retry with the
    /// same token idempotent). Already there (ResourceInUse) counts as done.
    pub async fn create_cluster(&self, cluster: &ClusterConfig, token: &str) -> Result<()> {
        let bp = &cluster.blueprint;
        let vpc = VpcConfigRequest::builder()
            .set_subnet_ids(Some(bp.subnet_ids.clone()))
            .set_security_group_ids(Some(bp.security_group_ids.clone()))
            .endpoint_public_access(bp.endpoint_public_access)
            .endpoint_private_access(bp.endpoint_private_access)
            .build();
        let result = self
            .client
            .create_cluster()
            .name(cluster.eks_name())
            .version(&bp.version)
            .role_arn(&bp.role_arn)
            .resources_vpc_config(vpc)
            // Access entries for the other functions' roles; the scheduler, as creator,
            // is cluster admin.
            .access_config(
                aws_sdk_eks::types::CreateAccessConfigRequest::builder()
                    .authentication_mode(aws_sdk_eks::types::AuthenticationMode::ApiAndConfigMap)
                    .bootstrap_cluster_creator_admin_permissions(true)
                    .build(),
            )
            .set_tags(Some(fleet_tags(&cluster.name, bp, &self.stack)))
            .client_request_token(token)
            .send()
            .await
            .map_err(err("CreateCluster"));
        converge_on_in_use(result)
    }

    pub async fn create_addons(&self, cluster: &ClusterConfig, names: &[String]) -> Result<()> {
        let bp = &cluster.blueprint;
        for addon in bp.addons.iter().filter(|a| names.contains(&a.name)) {
            let result = self
                .client
                .create_addon()
                .cluster_name(cluster.eks_name())
                .addon_name(&addon.name)
                .set_addon_version(addon.version.clone())
                .set_configuration_values(addon.configuration_values.clone())
                .set_service_account_role_arn(addon.service_account_role_arn.clone())
                .resolve_conflicts(ResolveConflicts::Overwrite)
                .set_tags(Some(fleet_tags(&cluster.name, bp, &self.stack)))
                .send()
                .await
                .map_err(err("CreateAddon"));
            converge_on_in_use(result)?;
        }
        Ok(())
    }

    pub async fn create_nodegroups(&self, cluster: &ClusterConfig, names: &[String]) -> Result<()> {
        let bp = &cluster.blueprint;
        for ng in bp.nodegroups.iter().filter(|n| names.contains(&n.name)) {
            let scaling = NodegroupScalingConfig::builder()
                .min_size(ng.min_size)
                .max_size(ng.max_size)
                .desired_size(ng.desired_size)
                .build();
            let result = self
                .client
                .create_nodegroup()
                .cluster_name(cluster.eks_name())
                .nodegroup_name(&ng.name)
                .node_role(&ng.node_role_arn)
                .set_subnets(Some(
                    ng.subnet_ids
                        .clone()
                        .unwrap_or_else(|| bp.subnet_ids.clone()),
                ))
                .scaling_config(scaling)
                .set_instance_types(Some(ng.instance_types.clone()))
                .capacity_type(CapacityTypes::from(ng.capacity_type.as_str()))
                .set_ami_type(ng.ami_type.as_deref().map(AmiTypes::from))
                .set_disk_size(ng.disk_size)
                .set_labels(
                    (!ng.labels.is_empty()).then(|| ng.labels.clone().into_iter().collect()),
                )
                .set_tags(Some(fleet_tags(&cluster.name, bp, &self.stack)))
                .send()
                .await
                .map_err(err("CreateNodegroup"));
            converge_on_in_use(result)?;
        }
        Ok(())
    }

    pub async fn scale_nodegroups(
        &self,
        cluster: &str,
        targets: &[(String, Scaling)],
    ) -> Result<()> {
        for (name, s) in targets {
            let scaling = NodegroupScalingConfig::builder()
                .min_size(s.min)
                .max_size(s.max)
                .desired_size(s.desired)
                .build();
            self.client
                .update_nodegroup_config()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .scaling_config(scaling)
                .send()
                .await
                .map_err(err("UpdateNodegroupConfig"))?;
        }
        Ok(())
    }

    /// Deletes nodegroups; already gone counts as done.
    pub async fn delete_nodegroups(&self, cluster: &str, names: &[String]) -> Result<()> {
        for name in names {
            let result = self
                .client
                .delete_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await
                .map_err(err("DeleteNodegroup"));
            done_on_not_found(result)?;
        }
        Ok(())
    }

    pub async fn delete_cluster(&self, cluster: &str) -> Result<()> {
        let result = self
            .client
            .delete_cluster()
            .name(cluster)
            .send()
            .await
            .map_err(err("DeleteCluster"));
        done_on_not_found(result)
    }
}

fn converge_on_in_use<T>(result: Result<T>) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_in_use() => Ok(()),
        Err(e) => Err(e),
    }
}

fn done_on_not_found<T>(result: Result<T>) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}
