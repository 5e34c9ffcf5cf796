//! The deployed wiring: the cold start, and documents handed to the scheduler by
//! Lambda `Invoke` with `InvocationType=Event`.

use std::sync::Arc;

use aws_sdk_lambda::types::InvocationType;
use fleet_shared::notify::Responder;
use fleet_shared::runner::{Function, Invocation};
use fleet_shared::{FleetError, Result};
use serde_json::Value;

use crate::handler::{Dispatch, SlackCommands};

/// The scheduler, invoked asynchronously by name or ARN (`SCHEDULER_FUNCTION`).
pub struct LambdaDispatch {
    lambda: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaDispatch {
    /// Invokes `function` with `lambda`.
    pub fn new(lambda: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        LambdaDispatch {
            lambda,
            function: function.into(),
        }
    }
}

impl Dispatch for LambdaDispatch {
    async fn dispatch(&self, document: Value) -> Result<()> {
        self.lambda
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(aws_smithy_types::Blob::new(document.to_string()))
            .send()
            .await
            .map_err(|e| FleetError::aws("Lambda", "Invoke", e))?;
        Ok(())
    }
}

/// What is deployed: the function, or, without `[slack]` in the config, one that
/// answers every request 404 (the template deploys it either way; a request then is
/// not a failed invocation, and pages nobody).
pub enum Deployed {
    /// No `[slack]`.
    Unconfigured,
    /// Configured.
    Ready(Box<SlackCommands<LambdaDispatch>>),
}

/// A click's answer goes out within Slack's 3 seconds, the cold start and the hand-off
/// included.
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

impl Function for Deployed {
    async fn cold_start() -> Result<Self> {
        let cold = fleet_shared::startup::cold_start().await?;
        let Some(slack) = cold.config.slack.clone() else {
            tracing::warn!("no [slack] in the fleet config: every request is answered 404");
            return Ok(Deployed::Unconfigured);
        };
        let secret = cold
            .secret("slack.signing_secret", &slack.signing_secret)
            .await?;
        let function = std::env::var("SCHEDULER_FUNCTION")
            .ok()
            .filter(|f| !f.is_empty())
            .ok_or_else(|| {
                FleetError::config(
                    "SCHEDULER_FUNCTION",
                    "missing environment variable: the scheduler's function name or ARN",
                )
            })?;
        let dispatch = LambdaDispatch::new(aws_sdk_lambda::Client::new(&cold.sdk), function);
        let responder = Responder::from_env().with_timeout(RESPONSE_TIMEOUT);
        SlackCommands::new(Arc::new(cold.config), secret, dispatch, responder)
            .map(|f| Deployed::Ready(Box::new(f)))
    }

    async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        match self {
            Deployed::Ready(f) => f.handle(event, inv).await,
            Deployed::Unconfigured => Ok(crate::handler::not_configured()),
        }
    }
}
