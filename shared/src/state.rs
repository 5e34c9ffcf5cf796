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

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    Put, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem, Update,
};
use jiff::{Timestamp, ToSpan};
use serde::Serialize;

use crate::error::{FleetError, Result};
use crate::schedule::{Desired, Override};

mod cache;
mod dns;

/// How long transition history is kept: a year and a month, for year-on-year reports.
const HISTORY_DAYS: i64 = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransitionKind {
    Up,
    Down,
    Failed,
}

impl TransitionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            TransitionKind::Up => "up",
            TransitionKind::Down => "down",
            TransitionKind::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "up" => Some(TransitionKind::Up),
            "down" => Some(TransitionKind::Down),
            "failed" => Some(TransitionKind::Failed),
            _ => None,
        }
    }
}

/// What the table says about a cluster's last completed transition.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecordedState {
    /// `up` or `down`; `None` before the first transition.
    pub phase: Option<Desired>,
    pub since: Option<Timestamp>,
    /// Identifies the cluster incarnation the phase belongs to (its creation time), so a
    /// cluster recreated behind our back is announced again.
    pub generation: Option<String>,
    /// The event for the phase reached the bus.
    pub announced: bool,
    pub backoff_until: Option<Timestamp>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When the current teardown began (bounds the wait for load balancers to go).
    pub teardown_started: Option<Timestamp>,
    /// The last full look (nodegroups, add-ons) that found the cluster steady in this
    /// phase, and the fingerprint of the cluster's config it was checked against.
    pub checked_at: Option<Timestamp>,
    pub checked_config: Option<String>,
    /// The `clientRequestToken` of the fleet's `CreateCluster` for this cluster, written
    /// before the call: the incarnation EKS shows with it is the fleet's own.
    pub creation_token: Option<String>,
    /// The generation (creation time) of the incarnation the fleet created (seen with
    /// its token) or adopted. Once set, the token is spent: the next creation takes a new
    /// one.
    pub owned_generation: Option<String>,
    /// When and by which invocation the incarnation was adopted (`adopt = true`).
    pub adopted_at: Option<Timestamp>,
    pub adopted_by: Option<String>,
}

/// One destructive step or adoption, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// The step as plans and logs describe it (`delete-nodegroups spot`).
    pub step: String,
    /// What decided it: the schedule's reason, an override's, `adopt = true`, a failure.
    pub decided_by: String,
    /// The invocation that took it (Lambda's request id).
    pub request_id: String,
    /// The incarnation acted on (its generation), when known.
    pub generation: String,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterRecord {
    pub state: RecordedState,
    pub over: Option<Override>,
}

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
                    adopted_at: get_ts(item, "adopted_at"),
                    adopted_by: get_s(item, "adopted_by").map(String::from),
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub kind: TransitionKind,
    pub at: Timestamp,
    pub detail: String,
}

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
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        StateStore {
            client,
            table: table.into(),
        }
    }

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

    /// Records that the cluster reached `phase` (generation `generation`) at `at`, once:
    /// returns false when that transition was already recorded (by an earlier tick or a
    /// concurrent one). The phase starts unannounced; see [`Self::mark_announced`].
    pub async fn record_transition(
        &self,
        name: &str,
        phase: Desired,
        generation: &str,
        at: Timestamp,
        detail: &str,
    ) -> Result<bool> {
        let kind = match phase {
            Desired::Up => TransitionKind::Up,
            Desired::Down => TransitionKind::Down,
        };
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(cluster_pk(name)))
            .key("sk", s("state"))
            .update_expression(
                "SET phase = :phase, since = :at, generation = :gen, announced = :no, announcing_at = :at_epoch, attempts = :zero REMOVE backoff_until, last_error, teardown_started, checked_at, checked_config",
            )
            .condition_expression(
                "attribute_not_exists(phase) OR phase <> :phase OR generation <> :gen",
            )
            .expression_attribute_values(":phase", s(phase.to_string()))
            .expression_attribute_values(":at", s(at.to_string()))
            .expression_attribute_values(":gen", s(generation))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":at_epoch", n(at.as_second()))
            .build()
            .map_err(|e| FleetError::Internal(format!("DynamoDB update: {e}")))?;
        let put = self.transition_put(name, kind, at, detail)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await
            .map_err(ddb("TransactWriteItems"));
        condition_held(result)
    }

    fn transition_put(
        &self,
        name: &str,
        kind: TransitionKind,
        at: Timestamp,
        detail: &str,
    ) -> Result<Put> {
        let expires = at
            .checked_add((HISTORY_DAYS * 24).hours())
            .unwrap_or(at)
            .as_second();
        Put::builder()
            .table_name(&self.table)
            .item("pk", s(transitions_pk(name)))
            .item("sk", s(format!("{}#{}", sort_key_time(at), kind.as_str())))
            .item("kind", s(kind.as_str()))
            .item("at", s(at.to_string()))
            .item("detail", s(detail))
            .item("ttl", n(expires))
            .build()
            .map_err(|e| FleetError::Internal(format!("DynamoDB put: {e}")))
    }

    /// Claims the announcement of a phase that was recorded but never announced (its
    /// announcer crashed or could not publish). Only one claimer wins, and only once the
    /// last claim is `stale_after` old, so a tick racing an announcement in flight does not
    /// publish it twice.
    pub async fn claim_announcement(
        &self,
        name: &str,
        phase: Desired,
        generation: &str,
        now: Timestamp,
        stale_after: jiff::Span,
    ) -> Result<bool> {
        let stale = now.checked_sub(stale_after).unwrap_or(now).as_second();
        let result = self
            .update_state(name)
            .update_expression("SET announcing_at = :now")
            .condition_expression(
                "phase = :phase AND generation = :gen AND announced = :no AND (attribute_not_exists(announcing_at) OR announcing_at < :stale)",
            )
            .expression_attribute_values(":now", n(now.as_second()))
            .expression_attribute_values(":phase", s(phase.to_string()))
            .expression_attribute_values(":gen", s(generation))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":stale", n(stale))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(result)
    }

    /// Marks the current phase as announced on the bus. Conditional on the phase and
    /// generation still being the ones announced.
    pub async fn mark_announced(&self, name: &str, phase: Desired, generation: &str) -> Result<()> {
        let result = self
            .update_state(name)
            .update_expression("SET announced = :yes")
            .condition_expression("phase = :phase AND generation = :gen")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":phase", s(phase.to_string()))
            .expression_attribute_values(":gen", s(generation))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        // False: the phase moved on meanwhile, nothing left to mark.
        condition_held(result).map(|_| ())
    }

    /// Records a failed step and backs off until `retry_at`. Returns true when the error
    /// differs from the last one recorded: callers notify humans only then, so a cluster
    /// stuck on one quota error does not page every tick.
    pub async fn record_failure(
        &self,
        name: &str,
        at: Timestamp,
        error: &str,
        retry_at: Timestamp,
        attempts: u32,
    ) -> Result<bool> {
        let out = self
            .update_state(name)
            .update_expression("SET last_error = :err, backoff_until = :until, attempts = :n")
            .expression_attribute_values(":err", s(error))
            .expression_attribute_values(":until", s(retry_at.to_string()))
            .expression_attribute_values(":n", n(attempts as i64))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        let previous = out
            .attributes()
            .and_then(|a| a.get("last_error"))
            .and_then(|v| v.as_s().ok());
        let is_new = previous.map(String::as_str) != Some(error);
        if is_new {
            let put = self.transition_put(name, TransitionKind::Failed, at, error)?;
            let put_result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(put.item))
                .send()
                .await;
            put_result.map_err(ddb("PutItem"))?;
        }
        Ok(is_new)
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

    /// Forgets when a teardown began (the cluster is wanted up again), so that the next
    /// teardown's load-balancer wait counts from its own start. Idempotent.
    pub async fn clear_teardown_started(&self, name: &str) -> Result<()> {
        let result = self
            .update_state(name)
            .update_expression("REMOVE teardown_started")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(result).map(|_| ())
    }

    /// Takes the lease `pk` for `owner` until `until`, unless someone holds an unexpired
    /// one: the conditional write that decides which of two deliveries of an event acts.
    /// A holder that crashed loses the lease when `until` passes.
    pub async fn acquire_lease(
        &self,
        pk: &str,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        self.acquire_ranked_lease(pk, owner, until, now, 0).await
    }

    /// [`acquire_lease`](Self::acquire_lease) where the work has a `rank` (1 and up): an
    /// unexpired lease held, or kept as done, for work of a lower rank is taken over;
    /// the same or a higher rank keeps it. A drain's urgency is its rank (a cordon does
    /// not keep out the spot warning's drain). A lease written before ranks existed (no
    /// `lease_rank`) is never taken over; one taken by [`acquire_lease`](Self::acquire_lease)
    /// has rank 0, so ranked and unranked work must not share a key.
    pub async fn acquire_ranked_lease(
        &self,
        pk: &str,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
        rank: u8,
    ) -> Result<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s("lease"))
            .item("owner", s(owner))
            .item("status", s("running"))
            .item("until", s(until.to_string()))
            .item("until_epoch", n(until.as_second()))
            .item("ttl", n(until.as_second() + 86_400))
            .item("lease_rank", n(i64::from(rank)))
            .condition_expression(
                "attribute_not_exists(pk) OR until_epoch < :now OR lease_rank < :rank",
            )
            .expression_attribute_values(":now", n(now.as_second()))
            .expression_attribute_values(":rank", n(i64::from(rank)))
            // When the condition fails, whose lease it is: ours, if an earlier attempt of
            // this very request was applied and only its response was lost.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let holder = e
                    .as_service_error()
                    .and_then(|se| match se {
                        PutItemError::ConditionalCheckFailedException(c) => c.item(),
                        _ => None,
                    })
                    .and_then(|item| get_s(item, "owner").map(String::from));
                match holder {
                    Some(h) => Ok(h == owner),
                    None => {
                        let e = FleetError::aws("DynamoDB", "PutItem", e);
                        if !e.is_condition_failed() {
                            // Applied with only its answer lost, perhaps: give it back, so
                            // that a retry of this work is not taken for a duplicate.
                            let _ = self.release_lease(pk, owner).await;
                        }
                        condition_held::<()>(Err(e))
                    }
                }
            }
        }
    }

    /// Claims `what` (`dora#digest`, `cost#slack`) for the UTC day of `now`: true for the
    /// first caller that day only, so that a schedule firing twice sends one message.
    pub async fn claim_daily(&self, what: &str, owner: &str, now: Timestamp) -> Result<bool> {
        let day = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let until = now.checked_add(24.hours()).unwrap_or(now);
        self.acquire_lease(&format!("{what}#{day}"), owner, until, now)
            .await
    }

    /// Gives the lease `pk` up at once (deletes it), if `owner` still holds it.
    pub async fn release_lease(&self, pk: &str, owner: &str) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s("lease"))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await
            .map_err(ddb("DeleteItem"));
        // False: it expired and someone else holds it now.
        condition_held(result).map(|_| ())
    }

    /// Marks `owner`'s lease done and keeps it until `until`, so that later deliveries of
    /// the same work are recognised as duplicates until then.
    pub async fn complete_lease(
        &self,
        pk: &str,
        owner: &str,
        until: Timestamp,
        summary: &str,
    ) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s("lease"))
            .update_expression("SET #status = :done, #until = :until, until_epoch = :epoch, summary = :summary, #ttl = :ttl")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":until", s(until.to_string()))
            .expression_attribute_values(":epoch", n(until.as_second()))
            .expression_attribute_values(":summary", s(summary))
            .expression_attribute_values(":ttl", n(until.as_second() + 86_400))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        // False: someone took over an expired lease meanwhile, theirs to finish.
        condition_held(result).map(|_| ())
    }

    /// The `clientRequestToken` for the next `CreateCluster` of `name`: the recorded one
    /// while no incarnation has been seen with it (a creation in flight, or a retry),
    /// else `candidate`, written before the call so that the record, EKS and racing ticks
    /// agree on it (a racer that loses the conditional write takes the winner's token).
    pub async fn creation_token(
        &self,
        name: &str,
        recorded: &RecordedState,
        candidate: &str,
    ) -> Result<String> {
        if let (Some(token), None) = (&recorded.creation_token, &recorded.owned_generation) {
            return Ok(token.clone());
        }
        let mut update = self
            .update_state(name)
            .update_expression(
                "SET creation_token = :token REMOVE owned_generation, adopted_at, adopted_by",
            )
            .expression_attribute_values(":token", s(candidate));
        update = match &recorded.creation_token {
            // Spent: its incarnation was seen; replace it unless a racer already did.
            Some(spent) => update
                .condition_expression("creation_token = :spent")
                .expression_attribute_values(":spent", s(spent)),
            None => update.condition_expression("attribute_not_exists(creation_token)"),
        };
        let result = update.send().await.map_err(ddb("UpdateItem"));
        if condition_held(result)? {
            return Ok(candidate.to_string());
        }
        self.cluster(name)
            .await?
            .state
            .creation_token
            .ok_or_else(|| {
                FleetError::Internal(format!(
                    "cluster `{name}`: no creation token after a racing write"
                ))
            })
    }

    /// Records that the incarnation of `generation` is the fleet's (seen with its creation
    /// token), which spends the token.
    pub async fn mark_owned(&self, name: &str, generation: &str) -> Result<()> {
        self.update_state(name)
            .update_expression("SET owned_generation = :gen")
            .expression_attribute_values(":gen", s(generation))
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }

    /// Adopts the incarnation of `generation` (`adopt = true`). True for the invocation
    /// that adopted it; false when it already was (a racing tick, a redelivery).
    pub async fn adopt(
        &self,
        name: &str,
        generation: &str,
        at: Timestamp,
        by: &str,
    ) -> Result<bool> {
        let result = self
            .update_state(name)
            .update_expression("SET owned_generation = :gen, adopted_at = :at, adopted_by = :by")
            .condition_expression(
                "attribute_not_exists(owned_generation) OR owned_generation <> :gen",
            )
            .expression_attribute_values(":gen", s(generation))
            .expression_attribute_values(":at", s(at.to_string()))
            .expression_attribute_values(":by", s(by))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(result)
    }

    /// Appends to the audit trail of `name` (kept as long as the transition history).
    pub async fn audit(&self, name: &str, entry: &AuditEntry) -> Result<()> {
        let expires = entry
            .at
            .checked_add((HISTORY_DAYS * 24).hours())
            .unwrap_or(entry.at)
            .as_second();
        let verb = entry.step.split_whitespace().next().unwrap_or("step");
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(audit_pk(name)))
            .item(
                "sk",
                s(format!(
                    "{}#{verb}#{}",
                    sort_key_time(entry.at),
                    entry.request_id
                )),
            )
            .item("at", s(entry.at.to_string()))
            .item("step", s(&entry.step))
            .item("decided_by", s(&entry.decided_by))
            .item("request_id", s(&entry.request_id))
            .item("generation", s(&entry.generation))
            .item("ttl", n(expires))
            .send()
            .await
            .map_err(ddb("PutItem"))?;
        Ok(())
    }

    /// The last `limit` entries of the audit trail of `name`, newest first.
    pub async fn audit_trail(&self, name: &str, limit: i32) -> Result<Vec<AuditEntry>> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(audit_pk(name)))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(ddb("Query"))?;
        Ok(page
            .items()
            .iter()
            .filter_map(|item| {
                Some(AuditEntry {
                    at: get_ts(item, "at")?,
                    step: get_s(item, "step")?.to_string(),
                    decided_by: get_s(item, "decided_by").unwrap_or_default().to_string(),
                    request_id: get_s(item, "request_id").unwrap_or_default().to_string(),
                    generation: get_s(item, "generation").unwrap_or_default().to_string(),
                })
            })
            .collect())
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

    /// Transitions of one cluster with `from <= at < to`, oldest first.
    pub async fn transitions(
        &self,
        name: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Transition>> {
        let mut out = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(transitions_pk(name)))
                .expression_attribute_values(":from", s(sort_key_time(from)))
                // `~` sorts after every `#kind` suffix of the same second.
                .expression_attribute_values(":to", s(format!("{}~", sort_key_time(to))))
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(ddb("Query"))?;
            for item in page.items() {
                let (Some(kind), Some(at)) = (
                    get_s(item, "kind").and_then(TransitionKind::parse),
                    get_ts(item, "at"),
                ) else {
                    continue;
                };
                if at >= from && at < to {
                    out.push(Transition {
                        kind,
                        at,
                        detail: get_s(item, "detail").unwrap_or_default().to_string(),
                    });
                }
            }
            start_key = page.last_evaluated_key;
            if start_key.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Creates the table as the SAM template does (on-demand, TTL on `ttl`). For tests,
    /// the demo and local runs; in AWS the stack owns the table.
    pub async fn create_table(&self) -> Result<()> {
        let key = |name: &str, kt: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kt)
                .build()
                .map_err(|e| FleetError::Internal(format!("key schema: {e}")))
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| FleetError::Internal(format!("attribute: {e}")))
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .send()
            .await
            .map_err(ddb("CreateTable"));
        match created {
            Err(e) if e.is_in_use() => return Ok(()),
            other => other?,
        };
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("ttl")
                    .enabled(true)
                    .build()
                    .map_err(|e| FleetError::Internal(format!("ttl: {e}")))?,
            )
            .send()
            .await
            .map_err(ddb("UpdateTimeToLive"))?;
        Ok(())
    }
}

/// Hours a cluster was up within `[from, to)`, from its transitions (oldest first). The
/// phase at `from` is that of the last transition before it (`up_at_start`).
pub fn uptime_hours(
    transitions: &[Transition],
    up_at_start: bool,
    from: Timestamp,
    to: Timestamp,
) -> f64 {
    let mut up_since = up_at_start.then_some(from);
    let mut seconds = 0i64;
    for t in transitions.iter().filter(|t| t.at >= from && t.at < to) {
        match t.kind {
            TransitionKind::Up => {
                up_since.get_or_insert(t.at);
            }
            TransitionKind::Down => {
                if let Some(since) = up_since.take() {
                    seconds += t.at.as_second() - since.as_second();
                }
            }
            TransitionKind::Failed => {}
        }
    }
    if let Some(since) = up_since {
        seconds += to.as_second() - since.as_second();
    }
    seconds as f64 / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: TransitionKind, at: &str) -> Transition {
        Transition {
            kind,
            at: at.parse().expect("ts"),
            detail: String::new(),
        }
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
