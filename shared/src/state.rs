//! The state table (DynamoDB, string keys `pk`/`sk`, TTL attribute `ttl`).
//!
//! Items this module owns:
//!
//! | pk | sk | what |
//! |---|---|---|
//! | `cluster#<name>` | `state` | recorded phase (up/down), its generation, whether it was announced, backoff, last error, last full look; the incarnation the fleet owns (`creation_token`, `owned_generation`, adoption) |
//! | `cluster#<name>` | `override` | manual override, expires at `until` |
//! | `transitions#<name>` | `<RFC3339>#<kind>` | history of up/down/failed: the cost report's uptime |
//! | `audit#<name>` | `<RFC3339>#<step>` | every destructive step and adoption: what decided it, which invocation |
//!
//! Writes that must happen once are conditional, so that two invocations racing on the
//! same tick record a transition once and announce it once.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use jiff::Timestamp;

use crate::error::{FleetError, Result};
use crate::schedule::{Desired, Override};

mod cache;
mod dns;
mod karpenter;
mod leases;
pub mod model;
mod network;
mod ownership;
mod table;
mod transitions;

pub use model::{
    median_took_seconds, network_history_key, uptime_hours, AuditEntry, ClusterRecord,
    NetworkRecord, RecordedGateway, RecordedLimits, RecordedState, Transition, TransitionKind,
};

/// How long transition history is kept: a year and a month, for year-on-year reports.
const HISTORY_DAYS: i64 = 400;

impl ClusterRecord {
    /// Takes in one item of the cluster's partition (`state` or `override`).
    fn absorb(&mut self, item: &HashMap<String, AttributeValue>) {
        match get_s(item, "sk") {
            Some("state") => {
                self.state = RecordedState {
                    phase: parse_desired(get_s(item, "phase")),
                    since: get_ts(item, "since"),
                    generation: get_s(item, "generation").map(String::from),
                    announced: item
                        .get("announced")
                        .and_then(|v| v.as_bool().ok())
                        .copied()
                        .unwrap_or(false),
                    backoff_until: get_ts(item, "backoff_until"),
                    attempts: item
                        .get("attempts")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    last_error: get_s(item, "last_error").map(String::from),
                    teardown_started: get_ts(item, "teardown_started"),
                    checked_at: get_ts(item, "checked_at"),
                    checked_config: get_s(item, "checked_config").map(String::from),
                    creation_token: get_s(item, "creation_token").map(String::from),
                    owned_generation: get_s(item, "owned_generation").map(String::from),
                    home: get_s(item, "home").map(String::from),
                    adopted_at: get_ts(item, "adopted_at"),
                    adopted_by: get_s(item, "adopted_by").map(String::from),
                    nodepool_limits: karpenter::recorded_limits(item),
                    karpenter_drain_started: get_ts(item, "karpenter_drain_started"),
                    rising_since: get_ts(item, "rising_since"),
                    bootstrapped: get_s(item, "bootstrapped")
                        .zip(get_ts(item, "bootstrapped_at"))
                        .map(|(g, at)| (g.to_string(), at)),
                    irsa_issuers: item
                        .get("irsa_issuers")
                        .and_then(|v| v.as_l().ok())
                        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
                        .unwrap_or_default(),
                    oidc_providers: item
                        .get("oidc_providers")
                        .and_then(|v| v.as_ss().ok())
                        .cloned()
                        .unwrap_or_default(),
                }
            }
            Some("override") => {
                let desired = parse_desired(get_s(item, "desired"));
                let until = get_ts(item, "until");
                if let (Some(desired), Some(until)) = (desired, until) {
                    self.over = Some(Override {
                        desired,
                        until,
                        reason: get_s(item, "reason").unwrap_or_default().to_string(),
                        set_at: get_ts(item, "set_at").unwrap_or(until),
                    });
                }
            }
            _ => {}
        }
    }
}

/// The state table (the module's item layout).
#[derive(Clone, Debug)]
pub struct StateStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Sortable UTC timestamp with whole seconds (lexicographic order = time order).
pub fn sort_key_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_ts(item: &HashMap<String, AttributeValue>, k: &str) -> Option<Timestamp> {
    get_s(item, k).and_then(|v| v.parse().ok())
}

fn cluster_pk(name: &str) -> String {
    format!("cluster#{name}")
}

fn transitions_pk(name: &str) -> String {
    format!("transitions#{name}")
}

fn audit_pk(name: &str) -> String {
    format!("audit#{name}")
}

fn ddb<E, R>(
    op: &'static str,
) -> impl FnOnce(aws_smithy_runtime_api::client::result::SdkError<E, R>) -> FleetError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + crate::error::HttpStatus,
{
    FleetError::aws_call("DynamoDB", op)
}

/// A conditional write's outcome: true when it was applied, false when its condition did
/// not hold (another invocation got there first); other errors stay errors.
fn condition_held<T>(result: Result<T>) -> Result<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.is_condition_failed() => Ok(false),
        Err(e) => Err(e),
    }
}

fn parse_desired(v: Option<&str>) -> Option<Desired> {
    match v {
        Some("up") => Some(Desired::Up),
        Some("down") => Some(Desired::Down),
        _ => None,
    }
}

impl StateStore {
    /// The store over the table named `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        StateStore {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The recorded state and the override of one cluster, in one query.
    pub async fn cluster(&self, name: &str) -> Result<ClusterRecord> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(cluster_pk(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb("Query"))?;
        let mut record = ClusterRecord::default();
        for item in out.items() {
            record.absorb(item);
        }
        Ok(record)
    }

    /// The records of many clusters in as few requests as DynamoDB allows (50 clusters,
    /// 100 keys, a request): a tick over 200 clusters reads its state in 4 calls, not 200.
    /// Clusters with nothing recorded get the default record.
    pub async fn clusters(&self, names: &[&str]) -> Result<HashMap<String, ClusterRecord>> {
        let mut records: HashMap<String, ClusterRecord> = names
            .iter()
            .map(|n| (n.to_string(), ClusterRecord::default()))
            .collect();
        for chunk in names.chunks(50) {
            let keys = chunk
                .iter()
                .flat_map(|n| ["state", "override"].map(|sk| (cluster_pk(n), sk)))
                .map(|(pk, sk)| HashMap::from([("pk".to_string(), s(pk)), ("sk".into(), s(sk))]))
                .collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| FleetError::Internal(format!("DynamoDB keys: {e}")))?,
            );
            // Unprocessed keys (throttled partitions) are asked for again, a bounded
            // number of times; the SDK already retried each request itself.
            for _ in 0..5 {
                let Some(keys) = request.take() else { break };
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(ddb("BatchGetItem"))?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let name = get_s(item, "pk").and_then(|pk| pk.strip_prefix("cluster#"));
                    if let Some(record) = name.and_then(|n| records.get_mut(n)) {
                        record.absorb(item);
                    }
                }
                request = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
            }
            if request.is_some() {
                return Err(FleetError::Aws {
                    service: "DynamoDB",
                    operation: "BatchGetItem",
                    code: "UnprocessedKeys".into(),
                    message: "keys still unprocessed after 5 attempts (throttled)".into(),
                    kind: crate::error::AwsErrorKind::Retryable,
                });
            }
        }
        Ok(records)
    }

    /// Records a full look that found the cluster steady, so that the next ticks can
    /// trust the recorded phase on `DescribeCluster` alone (see the scheduler's
    /// `reconcile::trust_recorded`). Only on an existing state row.
    pub async fn mark_checked(&self, name: &str, at: Timestamp, config: &str) -> Result<()> {
        let result = self
            .update_state(name)
            .update_expression("SET checked_at = :at, checked_config = :config")
            .condition_expression("attribute_exists(phase)")
            .expression_attribute_values(":at", s(at.to_string()))
            .expression_attribute_values(":config", s(config))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(result).map(|_| ())
    }

    /// Sets (or replaces) the cluster's override; it expires at `o.until` (TTL).
    pub async fn set_override(&self, name: &str, o: &Override) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(cluster_pk(name)))
            .item("sk", s("override"))
            .item("desired", s(o.desired.to_string()))
            .item("until", s(o.until.to_string()))
            .item("reason", s(&o.reason))
            .item("set_at", s(o.set_at.to_string()))
            // Expired overrides are ignored by the schedule; the TTL only tidies up.
            .item("ttl", n(o.until.as_second() + 86_400))
            .send()
            .await
            .map_err(ddb("PutItem"))?;
        Ok(())
    }

    /// Removes the override; returns the one that was there.
    pub async fn clear_override(&self, name: &str) -> Result<Option<Override>> {
        let before = self.cluster(name).await?.over;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(cluster_pk(name)))
            .key("sk", s("override"))
            .send()
            .await
            .map_err(ddb("DeleteItem"))?;
        Ok(before)
    }

    /// Records when a teardown began, once: later calls keep the first time.
    pub async fn mark_teardown_started(&self, name: &str, at: Timestamp) -> Result<()> {
        let result = self
            .update_state(name)
            .update_expression("SET teardown_started = :at")
            .condition_expression("attribute_not_exists(teardown_started)")
            .expression_attribute_values(":at", s(at.to_string()))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(result).map(|_| ())
    }

    /// Forgets when a teardown began and when its NodeClaims were deleted (the cluster is
    /// wanted up again), so that the next teardown's waits count from its own start.
    /// Idempotent.
    pub async fn clear_teardown_started(&self, name: &str) -> Result<()> {
        let result = self
            .update_state(name)
            .update_expression("REMOVE teardown_started, karpenter_drain_started")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(result).map(|_| ())
    }

    /// An `UpdateItem` on the `state` row of cluster `name`.
    fn update_state(
        &self,
        name: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(cluster_pk(name)))
            .key("sk", s("state"))
    }

    /// Notes the first step towards an up transition (kept if already noted).
    pub async fn mark_rising(&self, name: &str, at: Timestamp) -> Result<()> {
        self.update_state(name)
            .update_expression("SET rising_since = if_not_exists(rising_since, :at)")
            .expression_attribute_values(":at", s(at.to_string()))
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }

    /// Notes that `generation`'s bootstrap was applied at `at` (kept if already noted for
    /// it: the wait for `ready_when` runs from the first time).
    pub async fn mark_bootstrapped(
        &self,
        name: &str,
        generation: &str,
        at: Timestamp,
    ) -> Result<()> {
        let result = self
            .update_state(name)
            .update_expression("SET bootstrapped = :gen, bootstrapped_at = :at")
            .condition_expression("attribute_not_exists(bootstrapped) OR bootstrapped <> :gen")
            .expression_attribute_values(":gen", s(generation))
            .expression_attribute_values(":at", s(at.to_string()))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(result).map(|_| ())
    }

    /// Records `issuers` (oldest first, the current one last) as those the IRSA roles
    /// were moved to.
    pub async fn record_irsa_issuers(&self, name: &str, issuers: &[String]) -> Result<()> {
        self.update_state(name)
            .update_expression("SET irsa_issuers = :list")
            .expression_attribute_values(
                ":list",
                AttributeValue::L(issuers.iter().map(|i| s(i.as_str())).collect()),
            )
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }

    /// Records an OIDC provider the fleet just created for the cluster (a set: adding it
    /// twice is once).
    pub async fn add_oidc_provider(&self, name: &str, arn: &str) -> Result<()> {
        self.update_state(name)
            .update_expression("ADD oidc_providers :arn")
            .expression_attribute_values(":arn", AttributeValue::Ss(vec![arn.to_string()]))
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }

    /// Forgets an OIDC provider once deleted.
    pub async fn forget_oidc_provider(&self, name: &str, arn: &str) -> Result<()> {
        self.update_state(name)
            .update_expression("DELETE oidc_providers :arn")
            .expression_attribute_values(":arn", AttributeValue::Ss(vec![arn.to_string()]))
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }

    /// Forgets the start of a morning that the evening ended before it finished.
    pub async fn clear_rising(&self, name: &str) -> Result<()> {
        self.update_state(name)
            .update_expression("REMOVE rising_since, bootstrapped, bootstrapped_at")
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }

    /// Backs off after a retryable error, without recording a failure.
    pub async fn set_backoff(&self, name: &str, until: Timestamp, attempts: u32) -> Result<()> {
        self.update_state(name)
            .update_expression("SET backoff_until = :until, attempts = :n")
            .expression_attribute_values(":until", s(until.to_string()))
            .expression_attribute_values(":n", n(attempts as i64))
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }

    /// Clears backoff and the last error after a step succeeded.
    pub async fn clear_backoff(&self, name: &str) -> Result<()> {
        self.update_state(name)
            .update_expression("SET attempts = :zero REMOVE backoff_until, last_error")
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: TransitionKind, at: &str) -> Transition {
        Transition {
            took_seconds: None,
            kind,
            at: at.parse().expect("ts"),
            detail: String::new(),
        }
    }

    #[test]
    fn median_rebuild_time_of_the_up_transitions_in_the_period() {
        let up = |at: &str, took: Option<i64>| Transition {
            took_seconds: took,
            ..t(TransitionKind::Up, at)
        };
        let history = vec![
            up("2026-10-30T07:00:00Z", Some(60)),
            up("2026-11-02T07:00:00Z", Some(900)),
            t(TransitionKind::Down, "2026-11-02T19:00:00Z"),
            up("2026-11-03T07:00:00Z", None),
            up("2026-11-04T07:00:00Z", Some(1500)),
            up("2026-11-05T07:00:00Z", Some(1200)),
        ];
        let (from, to) = (
            "2026-11-01T00:00:00Z".parse().expect("ts"),
            "2026-12-01T00:00:00Z".parse().expect("ts"),
        );
        assert_eq!(median_took_seconds(&history, from, to), Some(1200));
        assert_eq!(median_took_seconds(&history[..3], from, to), Some(900));
        assert_eq!(
            median_took_seconds(&history[..5], from, to),
            Some(1200),
            "900 and 1500"
        );
        assert_eq!(median_took_seconds(&history[..1], from, to), None);
    }

    #[test]
    fn uptime_from_transitions() {
        let from: Timestamp = "2026-11-01T00:00:00Z".parse().expect("ts");
        let to: Timestamp = "2026-11-03T00:00:00Z".parse().expect("ts");
        let ts = vec![
            t(TransitionKind::Down, "2026-11-01T02:00:00Z"),
            t(TransitionKind::Up, "2026-11-02T08:00:00Z"),
            t(TransitionKind::Failed, "2026-11-02T09:00:00Z"),
            t(TransitionKind::Up, "2026-11-02T10:00:00Z"),
            t(TransitionKind::Down, "2026-11-02T20:00:00Z"),
        ];
        assert_eq!(uptime_hours(&ts, true, from, to), 2.0 + 12.0);
        assert_eq!(uptime_hours(&ts, false, from, to), 12.0);
        // Still up at the end of the window.
        let open = vec![t(TransitionKind::Up, "2026-11-02T20:00:00Z")];
        assert_eq!(uptime_hours(&open, false, from, to), 4.0);
    }

    #[test]
    fn sort_keys_order_like_time() {
        let a = sort_key_time("2026-11-02T09:00:00Z".parse().expect("ts"));
        let b = sort_key_time("2026-11-02T10:00:00.5Z".parse().expect("ts"));
        assert!(a < b);
        assert_eq!(b, "2026-11-02T10:00:00Z");
    }
}
