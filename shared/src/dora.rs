//! Normalized DORA events: what dora-webhook stores and dora-aggregator reads.
//!
//! One item per event per service in the state table: `pk = dora#<service>`,
//! `sk = <RFC 3339 time>#<key>`, so a service's window is one range query, and `key` is
//! the event's semantic identity (a redelivery, or the same event through another hook,
//! lands on the same item and is stored once).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;

use crate::error::{FleetError, Result};
use crate::state::sort_key_time;

pub mod model;

pub use model::{unassigned, Commit, DoraEvent, IncidentSource, Origin, Outcome, ServiceEvent};

fn pk(service: &str) -> String {
    format!("dora#{service}")
}

/// An item read back: the event, its semantic key and, for an unassigned deployment,
/// what it came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The semantic key (`push:<head>`, `deploy:…`).
    pub key: String,
    /// The event.
    pub event: DoraEvent,
    /// What it came through, when stored unassigned.
    pub origin: Option<Origin>,
}

/// The DORA events in the state table (the module's item layout).
#[derive(Clone, Debug)]
pub struct DoraStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention_days: i64,
}

/// How long delivery ids are remembered: GitHub lets people redeliver for a while.
const DELIVERY_DAYS: i64 = 30;

impl DoraStore {
    /// The store in `table`, keeping events `retention_days` (their TTL).
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        retention_days: u32,
    ) -> Self {
        DoraStore {
            client,
            table: table.into(),
            retention_days: i64::from(retention_days),
        }
    }

    /// Stores the event unless it is already there; true when it was new.
    pub async fn put(&self, e: &ServiceEvent) -> Result<bool> {
        let body = serde_json::to_string(&e.event)
            .map_err(|err| FleetError::Internal(format!("encoding an event: {err}")))?;
        // Whole seconds, saturating: never a panic whatever the config says (it is
        // validated to at most 36500 days anyway).
        let at = e.event.at();
        let ttl = at
            .as_second()
            .saturating_add(self.retention_days.saturating_mul(86_400));
        let mut put = self.client.put_item();
        if let Some(origin) = &e.origin {
            let origin = serde_json::to_string(origin)
                .map_err(|err| FleetError::Internal(format!("encoding an origin: {err}")))?;
            put = put.item("o", AttributeValue::S(origin));
        }
        let result = put
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk(&e.service)))
            .item(
                "sk",
                AttributeValue::S(format!("{}#{}", sort_key_time(at), e.key)),
            )
            .item("e", AttributeValue::S(body))
            .item("ttl", AttributeValue::N(ttl.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(FleetError::aws_call("DynamoDB", "PutItem"));
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether a delivery id was seen already.
    pub async fn delivery_seen(&self, delivery: &str) -> Result<bool> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("dora#delivery#{delivery}")))
            .key("sk", AttributeValue::S("delivery".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(FleetError::aws_call("DynamoDB", "GetItem"))?;
        Ok(out.item.is_some())
    }

    /// Remembers a delivery id (after its events are stored, so a failure in between
    /// leaves the redelivery able to store them).
    pub async fn mark_delivery(&self, delivery: &str, now: Timestamp) -> Result<()> {
        let ttl = now.as_second() + DELIVERY_DAYS * 86_400;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("dora#delivery#{delivery}")))
            .item("sk", AttributeValue::S("delivery".into()))
            .item("ttl", AttributeValue::N(ttl.to_string()))
            .send()
            .await
            .map_err(FleetError::aws_call("DynamoDB", "PutItem"))?;
        Ok(())
    }

    /// Claims the redelivery of a GitHub delivery (`guid`) for the sweep: true when no
    /// live claim is there. The claim lasts an hour until [`DoraStore::confirm_redelivery`]
    /// keeps it 30 days (a sweep cut off between claim and answer leaves none behind for
    /// long). An expired claim DynamoDB has not deleted yet counts as none.
    pub async fn claim_redelivery(&self, guid: &str, now: Timestamp) -> Result<bool> {
        let ttl = now.as_second() + 3_600;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("dora#redeliver#{guid}")))
            .item("sk", AttributeValue::S("redeliver".into()))
            .item("ttl", AttributeValue::N(ttl.to_string()))
            .condition_expression("attribute_not_exists(pk) OR #ttl < :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", AttributeValue::N(now.as_second().to_string()))
            .send()
            .await
            .map_err(FleetError::aws_call("DynamoDB", "PutItem"));
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Keeps a claim 30 days: GitHub accepted the redelivery.
    pub async fn confirm_redelivery(&self, guid: &str, now: Timestamp) -> Result<()> {
        let ttl = now.as_second() + DELIVERY_DAYS * 86_400;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("dora#redeliver#{guid}")))
            .item("sk", AttributeValue::S("redeliver".into()))
            .item("ttl", AttributeValue::N(ttl.to_string()))
            .send()
            .await
            .map_err(FleetError::aws_call("DynamoDB", "PutItem"))?;
        Ok(())
    }

    /// Gives a claim back (GitHub refused the redelivery: the next sweep tries again).
    pub async fn release_redelivery(&self, guid: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("dora#redeliver#{guid}")))
            .key("sk", AttributeValue::S("redeliver".into()))
            .send()
            .await
            .map_err(FleetError::aws_call("DynamoDB", "DeleteItem"))?;
        Ok(())
    }

    /// A service's events with `from <= time < to`, oldest first, in one paginated query.
    pub async fn events(
        &self,
        service: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<DoraEvent>> {
        Ok(self
            .items(service, from, to)
            .await?
            .into_iter()
            .map(|i| i.event)
            .collect())
    }

    /// The items of a partition (a service's, or an [`unassigned`] one) with
    /// `from <= time < to`, oldest first, with their keys and origins.
    pub async fn items(
        &self,
        service: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", AttributeValue::S(pk(service)))
                .expression_attribute_values(":from", AttributeValue::S(sort_key_time(from)))
                // `#` sorts before every key character: this ends just before `to`.
                .expression_attribute_values(
                    ":to",
                    AttributeValue::S(format!("{}#", sort_key_time(to))),
                )
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(FleetError::aws_call("DynamoDB", "Query"))?;
            for item in page.items() {
                let Some(body) = item.get("e").and_then(|v| v.as_s().ok()) else {
                    continue;
                };
                let key = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| sk.split_once('#'))
                    .map(|(_, key)| key.to_string())
                    .unwrap_or_default();
                let origin = item
                    .get("o")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|o| serde_json::from_str::<Origin>(o).ok());
                match serde_json::from_str::<DoraEvent>(body) {
                    Ok(event) if event.at() < to => out.push(StoredEvent { key, event, origin }),
                    Ok(_) => {}
                    // An item written by a newer version: skipped, not fatal.
                    Err(err) => tracing::warn!(error = %err, "unreadable DORA event skipped"),
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}
