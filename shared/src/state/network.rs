//! The records of `[[network]]`s: the phase (with its transitions, kept under
//! [`network_history_key`] for the cost report) and the NAT gateways the fleet made.
//!
//! | pk | sk | what |
//! |---|---|---|
//! | `network#<name>` | `state` | phase (up/down), announced, backoff, last error, last conflicts reported |
//! | `network#<name>` | `nat#<subnet>` | the fleet's NAT gateway in that subnet: `token`, `begun_at`, `allocation_id`, `nat_gateway_id`, `made_at` |
//! | `network#<name>` | `route#<route table>` | a default route `adopt_routes` replaced: its target before (`was`), put back in the evening |
//! | `network#<name>` | `lease` | the invocation acting on the network now (see [`StateStore::acquire_lease`]) |
//! | `network#` | `<name>` | a network the fleet made something for: a network removed from the config is found here and taken away |
//! | `transitions#network:<name>` | `<RFC3339>#<kind>` | history of up/down/failed |

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use jiff::Timestamp;

use crate::config::Place;
use crate::error::{FleetError, Result};
use crate::schedule::Desired;

use super::model::{network_history_key, NetworkRecord, RecordedGateway};
use super::*;

fn network_pk(name: &str) -> String {
    format!("network#{name}")
}

/// The partition listing the networks the fleet made something for: `network#` with no
/// name (a network's name is never empty), inside the scheduler's `network#*` keys.
const KNOWN_NETWORKS_PK: &str = "network#";

fn nat_sk(subnet: &str) -> String {
    format!("nat#{subnet}")
}

impl StateStore {
    /// Everything recorded about network `name`, in one consistent query.
    pub async fn network(&self, name: &str) -> Result<NetworkRecord> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(network_pk(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb("Query"))?;
        let mut record = NetworkRecord::default();
        for item in out.items() {
            match get_s(item, "sk") {
                Some("state") => {
                    record.phase = parse_desired(get_s(item, "phase"));
                    record.since = get_ts(item, "since");
                    record.announced = item
                        .get("announced")
                        .and_then(|v| v.as_bool().ok())
                        .copied()
                        .unwrap_or(false);
                    record.backoff_until = get_ts(item, "backoff_until");
                    record.attempts = item
                        .get("attempts")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    record.last_error = get_s(item, "last_error").map(String::from);
                    record.reported_conflicts = get_s(item, "reported_conflicts").map(String::from);
                }
                Some(sk) if sk.starts_with("route#") => {
                    if let (Some(rtb), Some(was)) = (sk.strip_prefix("route#"), get_s(item, "was"))
                    {
                        record
                            .adopted_routes
                            .insert(rtb.to_string(), was.to_string());
                    }
                }
                Some(sk) => {
                    let (Some(subnet), Some(token)) =
                        (sk.strip_prefix("nat#"), get_s(item, "token"))
                    else {
                        continue;
                    };
                    record.gateways.insert(
                        subnet.to_string(),
                        RecordedGateway {
                            token: token.to_string(),
                            allocation_id: get_s(item, "allocation_id").map(String::from),
                            nat_gateway_id: get_s(item, "nat_gateway_id").map(String::from),
                            begun_at: get_ts(item, "begun_at"),
                            made_at: get_ts(item, "made_at"),
                        },
                    );
                }
                None => {}
            }
        }
        Ok(record)
    }

    /// Takes network `name`'s lease for `owner` until `until` (decision time): one
    /// invocation at a time acts on a network (a tick and a manual action, a schedule that
    /// fired twice). False when another holds it.
    pub async fn acquire_network_lease(
        &self,
        name: &str,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        self.acquire_lease(&network_pk(name), owner, until, now)
            .await
    }

    /// Gives network `name`'s lease back, if `owner` still holds it.
    pub async fn release_network_lease(&self, name: &str, owner: &str) -> Result<()> {
        self.release_lease(&network_pk(name), owner).await
    }

    /// Records that the default route of `route_table` pointed at `was` before the fleet
    /// replaced it (`adopt_routes`), before it does: the first one recorded is kept (a
    /// retry must not record the fleet's own gateway as what was there).
    pub async fn record_adopted_route(
        &self,
        name: &str,
        route_table: &str,
        was: &str,
    ) -> Result<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(network_pk(name)))
            .item("sk", s(format!("route#{route_table}")))
            .item("was", s(was))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(ddb("PutItem"));
        condition_held(result).map(|_| ())
    }

    /// Forgets the adopted route of `route_table`: put back (or its old target is gone).
    pub async fn forget_adopted_route(&self, name: &str, route_table: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(network_pk(name)))
            .key("sk", s(format!("route#{route_table}")))
            .send()
            .await
            .map_err(ddb("DeleteItem"))?;
        Ok(())
    }

    /// Lists network `name` among those the fleet made something for (idempotent): written
    /// before its first gateway's token, so that the network is found and taken away if it
    /// is removed from the config, where it lives (`place`: a spoke's account name and
    /// the region).
    pub async fn remember_network(&self, name: &str, place: &Place) -> Result<()> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(KNOWN_NETWORKS_PK))
            .item("sk", s(name))
            .item("region", s(&place.region));
        if let Some(account) = &place.account {
            put = put.item("account", s(account));
        }
        put.send().await.map_err(ddb("PutItem"))?;
        Ok(())
    }

    /// The networks the fleet made something for and has not forgotten: name and place
    /// (`None` for one listed before places were recorded: the hub's region then).
    pub async fn known_networks(&self) -> Result<Vec<(String, Option<Place>)>> {
        let mut names = vec![];
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(KNOWN_NETWORKS_PK))
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(ddb("Query"))?;
            names.extend(page.items().iter().filter_map(|i| {
                let name = get_s(i, "sk")?.to_string();
                let place = get_s(i, "region").map(|region| Place {
                    account: get_s(i, "account").map(String::from),
                    region: region.to_string(),
                });
                Some((name, place))
            }));
        }
        Ok(names)
    }

    /// Takes network `name` off the list of [`Self::known_networks`]: removed from the
    /// config and nothing of it left. Its history stays (the cost report reads it).
    pub async fn forget_network(&self, name: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(KNOWN_NETWORKS_PK))
            .key("sk", s(name))
            .send()
            .await
            .map_err(ddb("DeleteItem"))?;
        Ok(())
    }

    /// Writes the token of a NAT gateway about to be made in `subnet`, before anything is
    /// created. Returns false when one is already recorded there (a concurrent tick): the
    /// caller makes nothing and the next tick reads the record.
    pub async fn begin_gateway(
        &self,
        network: &str,
        subnet: &str,
        token: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(network_pk(network)))
            .item("sk", s(nat_sk(subnet)))
            .item("token", s(token))
            .item("begun_at", s(now.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(ddb("PutItem"));
        condition_held(result)
    }

    /// Records the Elastic IP allocated for the gateway of `token`.
    pub async fn record_allocation(
        &self,
        network: &str,
        subnet: &str,
        token: &str,
        allocation_id: &str,
    ) -> Result<()> {
        self.update_gateway(network, subnet, token, "allocation_id", allocation_id)
            .await
    }

    /// Records the NAT gateway created (or found) with `token`, made at `now` (decision
    /// time): it bills from then, and EC2 may not show it for a moment.
    pub async fn record_nat_gateway(
        &self,
        network: &str,
        subnet: &str,
        token: &str,
        nat_gateway_id: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.update_gateway(network, subnet, token, "nat_gateway_id", nat_gateway_id)
            .await?;
        self.update_gateway(network, subnet, token, "made_at", &now.to_string())
            .await
    }

    async fn update_gateway(
        &self,
        network: &str,
        subnet: &str,
        token: &str,
        field: &str,
        value: &str,
    ) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(network_pk(network)))
            .key("sk", s(nat_sk(subnet)))
            .update_expression("SET #f = :v")
            .condition_expression("#token = :token")
            .expression_attribute_names("#f", field)
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":v", s(value))
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        // The gateway was forgotten meanwhile (another invocation, past its lease): what
        // this one made is not recorded, so it stops before making more.
        if condition_held(result)? {
            Ok(())
        } else {
            Err(FleetError::Pending(format!(
                "the record of network `{network}`'s NAT gateway in {subnet} changed while this invocation made it; the next tick looks again"
            )))
        }
    }

    /// Forgets the gateway of `token` in `subnet`: its NAT gateway is deleted and its
    /// address released (or it failed and is made again with a new token).
    pub async fn forget_gateway(&self, network: &str, subnet: &str, token: &str) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(network_pk(network)))
            .key("sk", s(nat_sk(subnet)))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map_err(ddb("DeleteItem"));
        condition_held(result).map(|_| ())
    }

    fn update_network(
        &self,
        name: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(network_pk(name)))
            .key("sk", s("state"))
    }

    /// Records that network `name` reached `phase`, once, with its history entry dated
    /// `since` (when it began to bill: its first NAT gateway's creation for `up`), decided
    /// at `now`: false when that phase was already the recorded one. Starts unannounced.
    pub async fn record_network_transition(
        &self,
        name: &str,
        phase: Desired,
        since: Timestamp,
        now: Timestamp,
        detail: &str,
    ) -> Result<bool> {
        let kind = match phase {
            Desired::Up => TransitionKind::Up,
            Desired::Down => TransitionKind::Down,
        };
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(network_pk(name)))
            .key("sk", s("state"))
            .update_expression("SET phase = :phase, since = :at, announced = :no, announcing_at = :at_epoch, attempts = :zero REMOVE backoff_until, last_error")
            .condition_expression("attribute_not_exists(phase) OR phase <> :phase")
            .expression_attribute_values(":phase", s(phase.to_string()))
            .expression_attribute_values(":at", s(since.to_string()))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":at_epoch", n(now.as_second()))
            .build()
            .map_err(|e| FleetError::Internal(format!("DynamoDB update: {e}")))?;
        let put = self.transition_put(&network_history_key(name), kind, since, detail)?;
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

    /// Claims the announcement of a phase recorded but not announced (its announcer
    /// failed to publish): one claimer, once the last claim is `stale_after` old.
    pub async fn claim_network_announcement(
        &self,
        name: &str,
        phase: Desired,
        now: Timestamp,
        stale_after: jiff::Span,
    ) -> Result<bool> {
        let stale = now.checked_sub(stale_after).unwrap_or(now).as_second();
        let result = self
            .update_network(name)
            .update_expression("SET announcing_at = :now")
            .condition_expression(
                "phase = :phase AND announced = :no AND (attribute_not_exists(announcing_at) OR announcing_at < :stale)",
            )
            .expression_attribute_values(":now", n(now.as_second()))
            .expression_attribute_values(":phase", s(phase.to_string()))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":stale", n(stale))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(result)
    }

    /// Marks the network's current phase as announced (if it is still `phase`).
    pub async fn mark_network_announced(&self, name: &str, phase: Desired) -> Result<()> {
        let result = self
            .update_network(name)
            .update_expression("SET announced = :yes")
            .condition_expression("phase = :phase")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":phase", s(phase.to_string()))
            .send()
            .await
            .map_err(ddb("UpdateItem"));
        condition_held(result).map(|_| ())
    }

    /// Backs off after a retryable error, without recording a failure.
    pub async fn set_network_backoff(
        &self,
        name: &str,
        until: Timestamp,
        attempts: u32,
    ) -> Result<()> {
        self.update_network(name)
            .update_expression("SET backoff_until = :until, attempts = :n")
            .expression_attribute_values(":until", s(until.to_string()))
            .expression_attribute_values(":n", n(attempts as i64))
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }

    /// Clears the backoff and the last error after a step succeeded.
    pub async fn clear_network_backoff(&self, name: &str) -> Result<()> {
        self.update_network(name)
            .update_expression(
                "SET attempts = :zero REMOVE backoff_until, last_error, last_error_key",
            )
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        Ok(())
    }

    /// Records a failed step and backs off until `retry_at`; true when the error's `key`
    /// (what it is, without what changes on every attempt: request ids, a fresh
    /// address's id) differs from the last one's: only then are people told.
    pub async fn record_network_failure(
        &self,
        name: &str,
        at: Timestamp,
        error: &str,
        key: &str,
        retry_at: Timestamp,
        attempts: u32,
    ) -> Result<bool> {
        let out = self
            .update_network(name)
            .update_expression(
                "SET last_error = :err, last_error_key = :key, backoff_until = :until, attempts = :n",
            )
            .expression_attribute_values(":err", s(error))
            .expression_attribute_values(":key", s(key))
            .expression_attribute_values(":until", s(retry_at.to_string()))
            .expression_attribute_values(":n", n(attempts as i64))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        let previous = out
            .attributes()
            .and_then(|a| a.get("last_error_key"))
            .and_then(|v| v.as_s().ok());
        let is_new = previous.map(String::as_str) != Some(key);
        if is_new {
            let put = self.transition_put(
                &network_history_key(name),
                TransitionKind::Failed,
                at,
                error,
            )?;
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(put.item))
                .send()
                .await
                .map_err(ddb("PutItem"))?;
        }
        Ok(is_new)
    }

    /// Records the route conflicts last reported (`""`: none); true when they differ from
    /// the ones recorded, so that people hear of a conflict once, not every tick.
    pub async fn record_conflicts(&self, name: &str, conflicts: &str) -> Result<bool> {
        let out = self
            .update_network(name)
            .update_expression("SET reported_conflicts = :c")
            .expression_attribute_values(":c", s(conflicts))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(ddb("UpdateItem"))?;
        let previous = out
            .attributes()
            .and_then(|a| a.get("reported_conflicts"))
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            .unwrap_or("");
        Ok(previous != conflicts)
    }
}
