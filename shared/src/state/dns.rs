//! What the DNS updater remembers: which Route53 records the fleet created (Route53 has no
//! comment field to mark them with, as Cloudflare records are marked), and the load
//! balancer hostnames each cluster's records pointed at (so that after a rebuild a record
//! still pointing at the old load balancer is recognised as the fleet's).

use aws_sdk_dynamodb::types::AttributeValue;

use super::{condition_held, ddb, get_s, s, StateStore};
use crate::error::Result;

/// How many past targets of a cluster are remembered.
const TARGET_HISTORY: usize = 10;

fn owner_pk(zone_id: &str) -> String {
    format!("dnsowner#route53#{zone_id}")
}

fn targets_pk(cluster: &str) -> String {
    format!("dns#{cluster}")
}

impl StateStore {
    /// The fleet cluster that owns a Route53 record, if the fleet created or adopted it.
    pub async fn dns_owner(&self, zone_id: &str, name: &str) -> Result<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(owner_pk(zone_id)))
            .key("sk", s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb("GetItem"))?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| get_s(i, "cluster"))
            .map(String::from))
    }

    /// Records that the fleet's `cluster` owns the record `name` in Route53 zone `zone_id`.
    pub async fn set_dns_owner(&self, zone_id: &str, name: &str, cluster: &str) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(owner_pk(zone_id)))
            .item("sk", s(name))
            .item("cluster", s(cluster))
            .send()
            .await
            .map_err(ddb("PutItem"))?;
        Ok(())
    }

    /// Forgets the record, if `cluster` still owns it.
    pub async fn clear_dns_owner(&self, zone_id: &str, name: &str, cluster: &str) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(owner_pk(zone_id)))
            .key("sk", s(name))
            .condition_expression("attribute_not_exists(pk) OR #cluster = :cluster")
            .expression_attribute_names("#cluster", "cluster")
            .expression_attribute_values(":cluster", s(cluster))
            .send()
            .await
            .map_err(ddb("DeleteItem"));
        condition_held(result).map(|_| ())
    }

    /// The hostnames (or addresses) the cluster's records pointed at, newest first.
    pub async fn dns_targets(&self, cluster: &str) -> Result<Vec<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(targets_pk(cluster)))
            .key("sk", s("targets"))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb("GetItem"))?;
        Ok(out
            .item
            .and_then(|mut i| i.remove("targets"))
            .and_then(|v| v.as_l().ok().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_s().ok().cloned())
            .collect())
    }

    /// Puts `target` first in the cluster's target history (a no-op when it is first).
    pub async fn remember_dns_target(&self, cluster: &str, target: &str) -> Result<()> {
        let mut targets = self.dns_targets(cluster).await?;
        if targets.first().map(String::as_str) == Some(target) {
            return Ok(());
        }
        targets.retain(|t| t != target);
        targets.insert(0, target.to_string());
        targets.truncate(TARGET_HISTORY);
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(targets_pk(cluster)))
            .item("sk", s("targets"))
            .item(
                "targets",
                AttributeValue::L(targets.into_iter().map(AttributeValue::S).collect()),
            )
            .send()
            .await
            .map_err(ddb("PutItem"))?;
        Ok(())
    }
}
