//! The transitions of each cluster (up, down, failed): recorded once, announced once,
//! kept as the history the cost report's uptime reads.

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use jiff::{Timestamp, ToSpan};

use crate::error::{FleetError, Result};
use crate::schedule::Desired;

use super::*;

impl StateStore {
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
        self.record_timed_transition(name, phase, generation, at, detail, None)
            .await
    }

    /// [`Self::record_transition`], with how long the transition took (seconds from its
    /// first step, see [`RecordedState::rising_since`]) kept in its history entry.
    pub async fn record_timed_transition(
        &self,
        name: &str,
        phase: Desired,
        generation: &str,
        at: Timestamp,
        detail: &str,
        took_seconds: Option<i64>,
    ) -> Result<bool> {
        let kind = match phase {
            Desired::Up => TransitionKind::Up,
            Desired::Down => TransitionKind::Down,
        };
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(cluster_pk(name)))
            .key("sk", s("state"))
            .update_expression(match phase {
                // The evening's NodePool limits are kept until the morning restores them;
                // an up transition (after the restore) forgets them.
                // A morning's timing and bootstrap belong to that morning.
                Desired::Down => "SET phase = :phase, since = :at, generation = :gen, announced = :no, announcing_at = :at_epoch, attempts = :zero REMOVE backoff_until, last_error, teardown_started, checked_at, checked_config, karpenter_drain_started, rising_since, bootstrapped, bootstrapped_at",
                // The morning's start and bootstrap stay until it is announced (see
                // `mark_announced`): an announcement retried after a lost publish still
                // says how long it took and re-checks `ready_when`, not the bootstrap.
                Desired::Up => "SET phase = :phase, since = :at, generation = :gen, announced = :no, announcing_at = :at_epoch, attempts = :zero REMOVE backoff_until, last_error, teardown_started, checked_at, checked_config, karpenter_drain_started, nodepool_limits, karpenter_generation",
            })
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
        let mut put = self.transition_put(name, kind, at, detail)?;
        if let Some(took) = took_seconds {
            put.item.insert("took_seconds".into(), n(took));
        }
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

    pub(super) fn transition_put(
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
            .update_expression(
                "SET announced = :yes REMOVE rising_since, bootstrapped, bootstrapped_at",
            )
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
                        took_seconds: item
                            .get("took_seconds")
                            .and_then(|v| v.as_n().ok())
                            .and_then(|v| v.parse().ok()),
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
}
