//! The Function URL handler: Slack's signature first (401 otherwise), then the request,
//! who may act, and the decision ([`crate::command`]); the scheduler's document handed on
//! without waiting ([`Dispatch`]), so that Slack has its answer well inside 3 seconds.
//! The scheduler posts the outcome to the request's `response_url` itself.

use std::future::Future;
use std::sync::Arc;

use aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use fleet_shared::config::{FleetConfig, Secret, SlackConfig};
use fleet_shared::notify::Responder;
use fleet_shared::runner::Invocation;
use fleet_shared::{FleetError, Result};
use serde_json::{json, Value};

use crate::command::{self, Decision};
use crate::request::{self, SlackRequest};
use crate::signature;

/// The largest body accepted: Slack's are a few kilobytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Hands a scheduler document on without waiting for its answer.
pub trait Dispatch: Send + Sync + 'static {
    /// Sends `document` to the scheduler (in Lambda: an `Event` invocation, which Lambda
    /// queues and retries while the scheduler, one at a time, is busy).
    ///
    /// # Errors
    /// The document could not be handed on (the person is told so).
    fn dispatch(&self, document: Value) -> impl Future<Output = Result<()>> + Send;
}

/// The function: the fleet config, its `[slack]`, the signing secret, and where
/// documents go.
pub struct SlackCommands<D> {
    config: Arc<FleetConfig>,
    slack: SlackConfig,
    secret: Secret,
    dispatch: D,
    responder: Responder,
}

fn respond(status: i64, body: Option<Value>) -> Value {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = status;
    response.headers = headers;
    response.body = body.map(|b| b.to_string());
    serde_json::to_value(response).unwrap_or_else(|_| json!({"statusCode": 500}))
}

fn reject(status: i64, reason: impl std::fmt::Display) -> Value {
    let reason = reason.to_string();
    tracing::info!(status, %reason, "request rejected");
    respond(status, Some(json!({"error": reason})))
}

/// The answer of a deployment without `[slack]`: 404, saying so.
pub fn not_configured() -> Value {
    respond(
        404,
        Some(
            json!({"error": "slack-commands is not configured: the fleet config has no [slack] section"}),
        ),
    )
}

/// An ephemeral answer to a slash command (only the person who typed it sees it).
fn ephemeral(text: String) -> Value {
    respond(
        200,
        Some(json!({"response_type": "ephemeral", "text": text})),
    )
}

impl<D: Dispatch> SlackCommands<D> {
    /// The function for `config` (which must have `[slack]`), checking requests with
    /// `secret`, handing documents to `dispatch`, answering clicks through `responder`.
    ///
    /// # Errors
    /// Config error naming `slack` when the config has no `[slack]`.
    pub fn new(
        config: Arc<FleetConfig>,
        secret: Secret,
        dispatch: D,
        responder: Responder,
    ) -> Result<Self> {
        let slack = config.slack.clone().ok_or_else(|| {
            FleetError::config(
                "slack",
                "missing: the [slack] section (signing_secret, allowed_users, allowed_channels)",
            )
        })?;
        Ok(SlackCommands {
            config,
            slack,
            secret,
            dispatch,
            responder,
        })
    }

    /// Serves one Function URL request. Never an `Err` for what the caller sent: the
    /// answer is an HTTP status (401 unsigned, 400 malformed, 405 not a POST, 413 too
    /// large, else 200 with what Slack shows).
    pub async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        // Slack's timestamp is on the real clock; the decision (is a button stale?) is
        // made at the invocation's time.
        self.handle_at(event, inv, jiff::Timestamp::now().as_second())
            .await
    }

    /// [`Self::handle`] with the real clock's `real_now` (Unix seconds) given.
    pub async fn handle_at(&self, event: Value, inv: Invocation, real_now: i64) -> Result<Value> {
        let request: LambdaFunctionUrlRequest = match serde_json::from_value(event) {
            Ok(r) => r,
            Err(e) => return Ok(reject(400, format!("not a Function URL request: {e}"))),
        };
        let method = request
            .request_context
            .http
            .method
            .as_deref()
            .unwrap_or("POST");
        if method != "POST" {
            return Ok(reject(405, format!("{method} is not allowed; Slack POSTs")));
        }
        let body = match fleet_shared::request::function_url_body(
            request.body.as_deref(),
            request.is_base64_encoded,
            MAX_BODY,
        ) {
            Ok(b) => b,
            Err((status, reason)) => return Ok(reject(status, reason)),
        };
        let single = |name: &str| {
            let mut values = request.headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (Some(v), None) => v.to_str().ok(),
                _ => None,
            }
        };
        if let Err(e) = signature::verify(
            self.secret.expose().as_bytes(),
            single(signature::TIMESTAMP),
            single(signature::SIGNATURE),
            &body,
            real_now,
        ) {
            return Ok(reject(401, e));
        }
        let slack_request = match request::parse(&body) {
            Ok(r) => r,
            Err(e) => return Ok(reject(400, e)),
        };
        match slack_request {
            SlackRequest::Slash(cmd) => Ok(self.slash(cmd).await),
            SlackRequest::Click(click) => Ok(self.click(click, &inv).await),
        }
    }

    async fn slash(&self, cmd: request::SlashCommand) -> Value {
        if !command::allowed(&self.slack, &cmd.user_id, Some(&cmd.channel_id)) {
            tracing::info!(user = %cmd.user_id, channel = %cmd.channel_id, "slash command refused: not allowed");
            return ephemeral(command::not_allowed(&cmd.user_id));
        }
        if !self.responder.allows(&cmd.response_url) {
            return reject(400, "response_url is not a Slack response URL");
        }
        match command::slash(&self.config, &cmd) {
            Decision::Answer(text) => ephemeral(text),
            Decision::Dispatch { mut document, ack } => {
                document["reply_to"] = json!({"url": cmd.response_url, "replace_original": false});
                tracing::info!(user = %cmd.user_id, action = %document["action"], "slash command handed to the scheduler");
                match self.dispatch.dispatch(document).await {
                    Ok(()) => ephemeral(ack),
                    Err(e) => {
                        tracing::warn!(error = %e, "hand-off to the scheduler failed");
                        ephemeral(format!(":warning: The scheduler could not be reached ({e}). Nothing was changed; try again."))
                    }
                }
            }
        }
    }

    /// A click is answered 200 with no body at once; what it did goes through its
    /// `response_url`: the notice replaced (who asked, then what happened), or a
    /// refusal only the clicker sees.
    async fn click(&self, click: request::BlockActions, inv: &Invocation) -> Value {
        let url = click.response_url.clone();
        if !self.responder.allows(&url) {
            return reject(400, "response_url is not a Slack response URL");
        }
        let channel = click.channel.as_ref().map(|c| c.id.as_str());
        let (message, document) = if !command::allowed(&self.slack, &click.user.id, channel) {
            tracing::info!(user = %click.user.id, "click refused: not allowed");
            let text = command::not_allowed(&click.user.id);
            (
                json!({"response_type": "ephemeral", "replace_original": false, "text": text}),
                None,
            )
        } else {
            match command::click(&self.config, &click, inv.now) {
                Decision::Answer(text) => (json!({"replace_original": true, "text": text}), None),
                Decision::Dispatch { mut document, ack } => {
                    document["reply_to"] = json!({"url": url, "replace_original": true});
                    (
                        json!({"replace_original": true, "text": ack}),
                        Some(document),
                    )
                }
            }
        };
        // Who asked goes up first: the scheduler's answer, posted to the same URL,
        // must come after it, not be covered by it.
        if let Err(e) = self.responder.post(&url, &message).await {
            tracing::warn!(error = %e, "answer to the click failed");
        }
        if let Some(document) = document {
            tracing::info!(user = %click.user.id, action = %document["action"], "button handed to the scheduler");
            if let Err(e) = self.dispatch.dispatch(document).await {
                tracing::warn!(error = %e, "hand-off to the scheduler failed");
                let warning = json!({"replace_original": true,
                    "text": format!(":warning: The scheduler could not be reached ({e}). Nothing was changed; use `/fleet` to try again.")});
                if let Err(e) = self.responder.post(&url, &warning).await {
                    tracing::warn!(error = %e, "answer to the click failed");
                }
            }
        }
        respond(200, None)
    }
}
