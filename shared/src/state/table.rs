//! Creating the state table (local runs and tests; SAM creates it in AWS).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};

use crate::error::{FleetError, Result};

use super::*;

impl StateStore {
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
