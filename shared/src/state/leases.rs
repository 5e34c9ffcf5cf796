//! Leases: one invocation at a time acts on a thing (a node's drain, a daily report),
//! and a finished one keeps later deliveries of the same event out.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use jiff::{Timestamp, ToSpan};

use crate::error::{FleetError, Result};

use super::*;

impl StateStore {
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
}
