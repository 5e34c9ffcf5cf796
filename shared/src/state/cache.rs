//! Cached answers of paid APIs (Cost Explorer charges per request): one item per
//! question, expiring by TTL.

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;

use super::{ddb, get_s, s, StateStore};
use crate::error::Result;

impl StateStore {
    /// The cached value of `key` under `pk`, if any and not expired.
    pub async fn cached(&self, pk: &str, key: &str, now: Timestamp) -> Result<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb("GetItem"))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        // DynamoDB deletes expired items lazily: check the TTL ourselves.
        let fresh = item
            .get("ttl")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .is_none_or(|ttl| ttl > now.as_second());
        Ok(fresh
            .then(|| get_s(&item, "value").map(String::from))
            .flatten())
    }

    /// Keeps `value` as the answer to `key` under `pk` until `until`.
    pub async fn cache(&self, pk: &str, key: &str, value: &str, until: Timestamp) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(key))
            .item("value", s(value))
            .item("ttl", AttributeValue::N(until.as_second().to_string()))
            .send()
            .await
            .map_err(ddb("PutItem"))?;
        Ok(())
    }
}
