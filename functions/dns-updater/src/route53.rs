//! The Route53 adapter: read the record sets of one name, apply one change batch, wait
//! for INSYNC. Throttling and `PriorRequestNotComplete` are retried with backoff by the
//! SDK's standard retry strategy (both are in its throttling list); the client gets more
//! attempts than the default because Route53 allows five requests a second per account.

use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_sdk_route53::types::{
    AliasTarget, Change as SdkChange, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord,
    ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;
use fleet_shared::{FleetError, Result};

use crate::plan::{already_applied, Alias, R53Op, RecordSet};

/// Record sets read from the start name: enough for every type one name can have.
const LIST_MAX_ITEMS: i32 = 20;
const INSYNC_POLL: Duration = Duration::from_secs(5);
const MAX_ATTEMPTS: u32 = 6;

#[derive(Debug, Clone)]
pub struct Route53 {
    client: Client,
}

fn built(what: &str, e: impl std::fmt::Display) -> FleetError {
    FleetError::Internal(format!("building the Route53 {what}: {e}"))
}

/// Route53 lists names with a trailing dot and octal escapes (`\052` for `*`).
fn unescape(name: &str) -> String {
    name.replace("\\052", "*")
}

fn from_sdk(s: &ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: unescape(s.name()),
        record_type: s.r#type().as_str().to_string(),
        ttl: s.ttl(),
        values: s
            .resource_records()
            .iter()
            .map(|r| r.value().to_string())
            .collect(),
        alias: s.alias_target().map(|a| Alias {
            zone_id: a.hosted_zone_id().to_string(),
            dns_name: a.dns_name().to_string(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
        set_identifier: s.set_identifier().map(String::from),
    }
}

fn to_sdk(set: &RecordSet) -> Result<ResourceRecordSet> {
    let mut b = ResourceRecordSet::builder()
        .name(&set.name)
        .r#type(RrType::from(set.record_type.as_str()));
    match &set.alias {
        Some(a) => {
            b = b.alias_target(
                AliasTarget::builder()
                    .hosted_zone_id(&a.zone_id)
                    .dns_name(&a.dns_name)
                    .evaluate_target_health(a.evaluate_target_health)
                    .build()
                    .map_err(|e| built("alias target", e))?,
            );
        }
        None => {
            b = b.set_ttl(set.ttl);
            for v in &set.values {
                b = b.resource_records(
                    ResourceRecord::builder()
                        .value(v)
                        .build()
                        .map_err(|e| built("record value", e))?,
                );
            }
        }
    }
    if let Some(id) = &set.set_identifier {
        b = b.set_identifier(id);
    }
    b.build().map_err(|e| built("record set", e))
}

impl Route53 {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        // More attempts than the SDK's default (Route53 throttles at 5 requests a second
        // per account), with the backoff the config already has.
        let retry = sdk
            .retry_config()
            .cloned()
            .unwrap_or_else(RetryConfig::standard)
            .with_max_attempts(MAX_ATTEMPTS);
        let config = aws_sdk_route53::config::Builder::from(sdk)
            .retry_config(retry)
            .build();
        Route53 {
            client: Client::from_conf(config),
        }
    }

    /// Around a client built elsewhere (tests count its calls).
    pub fn from_client(client: Client) -> Self {
        Route53 { client }
    }

    /// The record sets named `name` (all types), in one call.
    pub async fn records_at(&self, zone_id: &str, name: &str) -> Result<Vec<RecordSet>> {
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(name)
            .max_items(LIST_MAX_ITEMS)
            .send()
            .await
            .map_err(FleetError::aws_call("Route53", "ListResourceRecordSets"))?;
        Ok(out
            .resource_record_sets()
            .iter()
            .map(from_sdk)
            .filter(|s| fleet_shared::config::normalize_name(&s.name) == name)
            .collect())
    }

    /// Applies the batch atomically; returns the change id, or `None` when Route53 refused
    /// it because it was already in effect (a retry of a change whose answer was lost).
    pub async fn change(
        &self,
        zone_id: &str,
        batch: &[(R53Op, RecordSet)],
        comment: &str,
    ) -> Result<Option<String>> {
        let mut changes = Vec::with_capacity(batch.len());
        for (op, set) in batch {
            let action = match op {
                R53Op::Create => ChangeAction::Create,
                R53Op::Upsert => ChangeAction::Upsert,
                R53Op::Delete => ChangeAction::Delete,
            };
            changes.push(
                SdkChange::builder()
                    .action(action)
                    .resource_record_set(to_sdk(set)?)
                    .build()
                    .map_err(|e| built("change", e))?,
            );
        }
        let change_batch = ChangeBatch::builder()
            .comment(comment)
            .set_changes(Some(changes))
            .build()
            .map_err(|e| built("change batch", e))?;
        let sent = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(change_batch)
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                let refused = e.as_service_error().and_then(|se| se.meta().code())
                    == Some("InvalidChangeBatch");
                let e = FleetError::aws("Route53", "ChangeResourceRecordSets", e);
                if !refused {
                    return Err(e);
                }
                let mut names: Vec<String> = batch
                    .iter()
                    .map(|(_, set)| fleet_shared::config::normalize_name(&set.name))
                    .collect();
                names.dedup();
                let mut now = Vec::new();
                for name in names {
                    now.extend(self.records_at(zone_id, &name).await?);
                }
                return if already_applied(batch, &now) {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        Ok(out.change_info().map(|c| c.id().to_string()))
    }

    /// Waits until the change is INSYNC or `until` passes; true when it is in sync.
    pub async fn wait_insync(&self, change_id: &str, until: Instant) -> Result<bool> {
        loop {
            let out = self
                .client
                .get_change()
                .id(change_id)
                .send()
                .await
                .map_err(FleetError::aws_call("Route53", "GetChange"))?;
            if out.change_info().map(|c| c.status()) == Some(&ChangeStatus::Insync) {
                return Ok(true);
            }
            // Real time: Route53 propagates in real time; `until` is a real instant.
            if Instant::now() + INSYNC_POLL > until {
                return Ok(false);
            }
            tokio::time::sleep(INSYNC_POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_sets_round_trip() {
        let set = RecordSet {
            name: "*.apps.example.com".into(),
            record_type: "CNAME".into(),
            ttl: Some(60),
            values: vec!["lb.example.net".into()],
            alias: None,
            set_identifier: None,
        };
        let sdk = to_sdk(&set).expect("builds");
        assert_eq!(from_sdk(&sdk), set);
        assert_eq!(unescape("\\052.apps.example.com."), "*.apps.example.com.");
    }
}
