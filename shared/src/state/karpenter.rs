//! What the fleet records about a cluster's Karpenter NodePools: their limits before the
//! evening capped them, and when their NodeClaims were deleted.
//!
//! Layout on the `state` row: `karpenter_generation` (S, the incarnation the limits belong
//! to), `nodepool_limits` (M, NodePool name to the JSON text of its `spec.limits`, `null`
//! when it had none), `karpenter_drain_started` (S, RFC 3339).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;

use crate::error::Result;

use super::*;

/// Reads `nodepool_limits` of a `state` item. An entry that is not JSON (never written by
/// the fleet) is left out, so it is recorded again rather than restored wrong.
pub(super) fn recorded_limits(item: &HashMap<String, AttributeValue>) -> Option<RecordedLimits> {
    let generation = get_s(item, "karpenter_generation")?.to_string();
    let map = item.get("nodepool_limits")?.as_m().ok()?;
    let limits: BTreeMap<String, Option<serde_json::Value>> = map
        .iter()
        .filter_map(|(name, v)| {
            let text = v.as_s().ok()?;
            let value: serde_json::Value = serde_json::from_str(text).ok()?;
            Some((name.clone(), (!value.is_null()).then_some(value)))
        })
        .collect();
    Some(RecordedLimits { generation, limits })
}

impl StateStore {
    /// Records each NodePool's `spec.limits` (`None`: it had none) for incarnation
    /// `generation`, once: a NodePool already recorded for that incarnation keeps its
    /// first value, so a tick that read a NodePool after another tick capped it can never
    /// record the cap as the value to restore. Limits recorded for an earlier incarnation
    /// are dropped first. Idempotent.
    ///
    /// # Errors
    /// DynamoDB failures other than a condition that did not hold.
    pub async fn record_nodepool_limits(
        &self,
        name: &str,
        generation: &str,
        entries: &[(String, Option<serde_json::Value>)],
    ) -> Result<()> {
        let fresh = self
            .update_state(name)
            .update_expression("SET karpenter_generation = :gen, nodepool_limits = :empty")
            .condition_expression(
                "attribute_not_exists(karpenter_generation) OR karpenter_generation <> :gen",
            )
            .expression_attribute_values(":gen", s(generation))
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(fresh)?;
        for (nodepool, limits) in entries {
            let text = match limits {
                Some(v) => v.to_string(),
                None => "null".to_string(),
            };
            let result = self
                .update_state(name)
                .update_expression("SET nodepool_limits.#np = :limits")
                .condition_expression(
                    "karpenter_generation = :gen AND attribute_not_exists(nodepool_limits.#np)",
                )
                .expression_attribute_names("#np", nodepool)
                .expression_attribute_values(":gen", s(generation))
                .expression_attribute_values(":limits", s(text))
                .send()
                .await
                .map_err(ddb("UpdateItem"));
            condition_held(result)?;
        }
        Ok(())
    }

    /// Forgets the recorded NodePool limits (they were restored). Idempotent.
    ///
    /// # Errors
    /// DynamoDB failures.
    pub async fn clear_nodepool_limits(&self, name: &str) -> Result<()> {
        let result = self
            .update_state(name)
            .update_expression("REMOVE nodepool_limits, karpenter_generation")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(result).map(|_| ())
    }

    /// Records when this evening's Karpenter part began; a later call keeps the first
    /// instant (every wait for Karpenter counts from it).
    ///
    /// # Errors
    /// DynamoDB failures other than the instant being recorded already.
    pub async fn mark_karpenter_drain_started(&self, name: &str, at: Timestamp) -> Result<()> {
        let result = self
            .update_state(name)
            .update_expression("SET karpenter_drain_started = :at")
            .condition_expression("attribute_not_exists(karpenter_drain_started)")
            .expression_attribute_values(":at", s(at.to_string()))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(result).map(|_| ())
    }
}
