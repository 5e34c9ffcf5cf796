//! Publishing to the `fleet` event bus: the only way functions talk to each other.

use serde_json::Value;

use crate::error::{FleetError, Result};

pub const SOURCE_SCHEDULER: &str = "fleet.cluster-scheduler";
pub const SOURCE_DRAINER: &str = "fleet.spot-drainer";

/// Detail types on the `fleet` bus (contract: rules and other functions match on them).
pub mod detail_type {
    pub const CLUSTER_READY: &str = "Cluster Ready";
    pub const CLUSTER_DESTROYED: &str = "Cluster Destroyed";
    pub const CLUSTER_TRANSITION_FAILED: &str = "Cluster Transition Failed";
    pub const NODE_DRAINED: &str = "Node Drained";
}

#[derive(Clone, Debug)]
pub struct EventPublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    source: &'static str,
}

impl EventPublisher {
    pub fn new(
        client: aws_sdk_eventbridge::Client,
        bus: impl Into<String>,
        source: &'static str,
    ) -> Self {
        EventPublisher {
            client,
            bus: bus.into(),
            source,
        }
    }

    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// Puts one event on the bus. A rejected entry is an error, not a silent drop.
    pub async fn publish(&self, detail_type: &str, detail: &Value) -> Result<()> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(self.source)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| FleetError::aws("EventBridge", "PutEvents", e))?;
        if out.failed_entry_count > 0 {
            let (code, message) = out
                .entries()
                .iter()
                .find(|e| e.error_code.is_some())
                .map(|e| {
                    (
                        e.error_code.clone().unwrap_or_default(),
                        e.error_message.clone().unwrap_or_default(),
                    )
                })
                .unwrap_or_default();
            return Err(FleetError::Aws {
                service: "EventBridge",
                operation: "PutEvents",
                kind: crate::error::classify_aws_code(&code, &message),
                code,
                message,
            });
        }
        Ok(())
    }
}
