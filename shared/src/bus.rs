//! Publishing to the `fleet` event bus: the only way functions talk to each other. What
//! may be published is in [`crate::events`].

use crate::error::{FleetError, Result};
use crate::events::BusEvent;

/// Puts [`crate::events`] on one EventBridge bus.
#[derive(Clone, Debug)]
pub struct EventPublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventPublisher {
    /// A publisher to the bus named `bus` (`fleet`).
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        EventPublisher {
            client,
            bus: bus.into(),
        }
    }

    /// The bus's name.
    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// Puts one event on the bus, with its type's `source` and `detail-type`.
    ///
    /// # Errors
    /// The `PutEvents` call failing, or EventBridge rejecting the entry (an error, not a
    /// silent drop), or the event failing to serialize.
    pub async fn publish<E: BusEvent>(&self, event: &E) -> Result<()> {
        let detail = serde_json::to_string(event)
            .map_err(|e| FleetError::Internal(format!("{}: {e}", E::DETAIL_TYPE)))?;
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(E::SOURCE)
            .detail_type(E::DETAIL_TYPE)
            .detail(detail)
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
