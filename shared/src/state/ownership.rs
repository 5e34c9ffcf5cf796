//! What the fleet owns: the creation token of the incarnation it builds, adoption, and
//! the audit trail of every destructive step.

use jiff::{Timestamp, ToSpan};

use crate::error::{FleetError, Result};

use super::*;

impl StateStore {
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
    pub async fn mark_owned(&self, name: &str, generation: &str, home: &str) -> Result<()> {
        self.update_state(name)
            .update_expression("SET owned_generation = :gen, home = :home")
            .expression_attribute_values(":gen", s(generation))
            .expression_attribute_values(":home", s(home))
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }

    /// Forgets where the owned incarnation lived: it is gone from there (see
    /// [`RecordedState::home`](crate::state::RecordedState::home)).
    pub async fn forget_home(&self, name: &str) -> Result<()> {
        self.update_state(name)
            .update_expression("REMOVE home")
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
        home: &str,
        at: Timestamp,
        by: &str,
    ) -> Result<bool> {
        let result = self
            .update_state(name)
            .update_expression(
                "SET owned_generation = :gen, home = :home, adopted_at = :at, adopted_by = :by",
            )
            .expression_attribute_values(":home", s(home))
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
}
