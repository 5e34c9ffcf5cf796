//! Cold start: the environment, the fleet config and its secrets, read once.

use aws_config::SdkConfig;

use crate::aws::{in_region, read_parameter, sdk_config_from_env};
use crate::config::{FleetConfig, Secret, SecretRef};
use crate::error::{FleetError, Result};

/// What every function reads before it handles its first event.
pub struct ColdStart {
    /// SDK config in the fleet's region.
    pub sdk: SdkConfig,
    pub config: FleetConfig,
    pub ssm: aws_sdk_ssm::Client,
}

fn env(name: &str) -> Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| FleetError::config(name, "environment variable is not set"))
}

/// `FLEET_TABLE`, the state table's name.
pub fn table_name() -> Result<String> {
    env("FLEET_TABLE")
}

/// Reads `FLEET_CONFIG` (a path, or `ssm:<parameter>`) and validates it.
pub async fn cold_start() -> Result<ColdStart> {
    let source = env("FLEET_CONFIG")?;
    let base = sdk_config_from_env().await;
    let ssm = aws_sdk_ssm::Client::new(&base);
    let text = match source.strip_prefix("ssm:") {
        Some(name) => read_parameter(&ssm, name).await.map_err(|e| {
            FleetError::config("FLEET_CONFIG", format!("cannot read {source}: {e}"))
        })?,
        None => std::fs::read_to_string(&source).map_err(|e| {
            FleetError::config("FLEET_CONFIG", format!("cannot read {source}: {e}"))
        })?,
    };
    let config = FleetConfig::parse(&text)?;
    let sdk = in_region(&base, &config.fleet.region);
    Ok(ColdStart { sdk, config, ssm })
}

impl ColdStart {
    /// The Slack notifier, with the webhook from `fleet.slack_webhook` (disabled without).
    pub async fn notifier(&self) -> Result<crate::notify::Notifier> {
        let webhook = match &self.config.fleet.slack_webhook {
            Some(r) => Some(resolve_secret(&self.ssm, "fleet.slack_webhook", r).await?),
            None => None,
        };
        Ok(crate::notify::Notifier::new(webhook))
    }

    /// The publisher on the fleet bus, as `source`.
    pub fn publisher(&self, source: &'static str) -> crate::bus::EventPublisher {
        crate::bus::EventPublisher::new(
            aws_sdk_eventbridge::Client::new(&self.sdk),
            self.config.fleet.event_bus.clone(),
            source,
        )
    }
}

/// Resolves a secret reference from the config; `key` names it in errors.
pub async fn resolve_secret(
    ssm: &aws_sdk_ssm::Client,
    key: &str,
    secret: &SecretRef,
) -> Result<Secret> {
    match secret {
        SecretRef::Literal(s) => Ok(s.clone()),
        SecretRef::Ssm(name) => read_parameter(ssm, name)
            .await
            .map(Secret::new)
            .map_err(|e| FleetError::config(key, format!("cannot read ssm:{name}: {e}"))),
    }
}
