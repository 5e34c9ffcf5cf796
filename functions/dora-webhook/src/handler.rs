//! The webhook's handler: a Function URL request in, an HTTP answer out. Bad input is
//! always a 4xx with a reason (never a 500); only storage failures answer 500.

use std::sync::Arc;

use aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use fleet_shared::aws::SdkConfig;
use fleet_shared::config::{DoraConfig, Secret};
use fleet_shared::dora::DoraStore;
use fleet_shared::runner::Invocation;
use fleet_shared::startup::{cold_start, table_name};
use fleet_shared::{FleetError, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::normalize::{self, Normalized};
use crate::signature::{verify_bearer, verify_pagerduty, verify_sha256, verify_token};

/// The largest body accepted (GitHub caps payloads at 25 MB; ours are far smaller).
pub const MAX_BODY: usize = 1024 * 1024;

/// The longest semantic key stored: a sort key is at most 1024 bytes in DynamoDB, and
/// keys carry names from the payload (an application, a revision, an event id).
pub const MAX_KEY: usize = 512;

/// The secrets requests are checked with, read once at cold start.
pub struct Secrets {
    pub github: Secret,
    pub flux: Secret,
    /// `None`: no `dora.flagger_token`, and `/flagger` answers 404.
    pub flagger: Option<Secret>,
    /// `None`: no `dora.argocd_token`, and `/argocd` and `/argo-rollouts` answer 404.
    pub argocd: Option<Secret>,
    /// `None`: no `dora.pagerduty_secret`, and `/pagerduty` answers 404.
    pub pagerduty: Option<Secret>,
}

pub struct Webhook {
    pub dora: Arc<DoraConfig>,
    pub store: DoraStore,
    pub secrets: Secrets,
}

/// Which sender a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    GitHub,
    Flux,
    Flagger,
    Argocd,
    ArgoRollouts,
    PagerDuty,
}

/// The body of every answer (`status` says which).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Reply {
    /// GitHub's `ping` when a webhook is created.
    Pong,
    /// Not signed, not JSON, too large, missing a header: not stored, GitHub shows it.
    Rejected {
        /// What is wrong, naming the header or field.
        reason: String,
    },
    /// Valid, but not an event of a configured service (202: not retried).
    Ignored {
        /// Why.
        reason: String,
    },
    /// A deployment no service claims, kept under `unassigned:` so that a service
    /// configured for it later counts it (202).
    Unassigned {
        /// What it came through, and where it is kept.
        reason: String,
        /// Stored now (0: stored before).
        stored: usize,
    },
    /// Storage failed: 500, the sender redelivers.
    Error {
        /// What to do.
        reason: String,
    },
    /// A GitHub delivery id seen before: nothing stored again.
    #[serde(rename = "duplicate")]
    DuplicateDelivery {
        /// The `X-GitHub-Delivery` id.
        delivery: String,
    },
    /// The events stored (`stored`), or all of them seen before (`duplicate`).
    #[serde(untagged)]
    Stored(Stored),
}

/// What a delivery stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stored {
    /// `stored`, or `duplicate` when every event was stored before.
    pub status: &'static str,
    /// Events stored now.
    pub stored: usize,
    /// Events stored before (their semantic keys).
    pub duplicates: usize,
    /// The service of each event, in order.
    pub services: Vec<String>,
}

fn respond(status: i64, body: Reply) -> Value {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = status;
    response.headers = headers;
    response.body = Some(serde_json::to_string(&body).unwrap_or_default());
    serde_json::to_value(response).unwrap_or_else(|_| json!({"statusCode": 500}))
}

fn reject(status: i64, reason: impl std::fmt::Display) -> Value {
    let reason = reason.to_string();
    tracing::info!(status, %reason, "request rejected");
    respond(status, Reply::Rejected { reason })
}

impl Webhook {
    pub async fn from_cold_start() -> Result<Self> {
        let cold = cold_start().await?;
        let dora = cold
            .config
            .dora
            .clone()
            .ok_or_else(|| FleetError::config("dora", "missing: the [dora] section"))?;
        // The three secrets in one SSM round trip.
        cold.prefetch([
            Some(&dora.webhook_secret),
            dora.flux_secret.as_ref(),
            dora.flagger_token.as_ref(),
            dora.argocd_token.as_ref(),
            dora.pagerduty_secret.as_ref(),
        ])
        .await;
        let github = cold
            .secret("dora.webhook_secret", &dora.webhook_secret)
            .await?;
        let flux = match &dora.flux_secret {
            Some(s) => cold.secret("dora.flux_secret", s).await?,
            None => github.clone(),
        };
        // Never the GitHub secret: Flagger sends its token in the URL, where it ends up in
        // proxies' and load balancers' logs. Without one of its own, /flagger is off.
        let flagger = match &dora.flagger_token {
            Some(s) => Some(cold.secret("dora.flagger_token", s).await?),
            None => None,
        };
        let argocd = match &dora.argocd_token {
            Some(s) => Some(cold.secret("dora.argocd_token", s).await?),
            None => None,
        };
        let pagerduty = match &dora.pagerduty_secret {
            Some(s) => Some(cold.secret("dora.pagerduty_secret", s).await?),
            None => None,
        };
        let secrets = Secrets {
            github,
            flux,
            flagger,
            argocd,
            pagerduty,
        };
        Ok(Webhook::new(&cold.sdk, dora, table_name()?, secrets))
    }

    /// A webhook storing DORA events in the state table `table`, checking deliveries
    /// with `secrets`. The cold start and the tests build it here.
    pub fn new(
        sdk: &SdkConfig,
        dora: DoraConfig,
        table: impl Into<String>,
        secrets: Secrets,
    ) -> Self {
        Webhook {
            store: DoraStore::new(
                aws_sdk_dynamodb::Client::new(sdk),
                table,
                dora.retention_days,
            ),
            dora: Arc::new(dora),
            secrets,
        }
    }

    /// Never an `Err` for anything the caller sent: the answer is an HTTP status.
    pub async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
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
            return Ok(reject(
                405,
                format!("{method} is not allowed; webhooks are POSTed"),
            ));
        }
        let body = match body_bytes(&request) {
            Ok(b) => b,
            Err((status, reason)) => return Ok(reject(status, reason)),
        };
        let headers = &request.headers;
        let values = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect()
        };
        // `<DoraWebhookUrl>/argocd` has two slashes (the output ends in one): both mean
        // the same route.
        let path = match request.raw_path.as_deref().unwrap_or("/").trim_matches('/') {
            "" => String::new(),
            p => format!("/{p}"),
        };
        let path = path.as_str();
        let sender = match path {
            "/github" => Sender::GitHub,
            "/flux" => Sender::Flux,
            "/flagger" => Sender::Flagger,
            "/argocd" => Sender::Argocd,
            "/argo-rollouts" => Sender::ArgoRollouts,
            "/pagerduty" => Sender::PagerDuty,
            "" if headers.contains_key("x-github-event") => Sender::GitHub,
            other => {
                return Ok(reject(
                    404,
                    format!("unknown path `{other}`: POST to /github, /flux, /flagger, /argocd, /argo-rollouts or /pagerduty"),
                ))
            }
        };
        let authenticated = match sender {
            Sender::GitHub => verify_sha256(
                "X-Hub-Signature-256",
                &values("x-hub-signature-256"),
                self.secrets.github.expose().as_bytes(),
                &body,
            ),
            Sender::Flux => verify_sha256(
                "X-Signature",
                &values("x-signature"),
                self.secrets.flux.expose().as_bytes(),
                &body,
            ),
            Sender::Flagger => match &self.secrets.flagger {
                Some(token) => verify_token(
                    "token",
                    request
                        .query_string_parameters
                        .get("token")
                        .map(String::as_str),
                    token.expose().as_bytes(),
                ),
                None => {
                    return Ok(reject(
                        404,
                        "/flagger is off: set dora.flagger_token (its own secret) to receive Flagger events",
                    ))
                }
            },
            Sender::Argocd | Sender::ArgoRollouts => match &self.secrets.argocd {
                Some(token) => verify_bearer(&values("authorization"), token.expose().as_bytes()),
                None => {
                    return Ok(reject(
                        404,
                        format!("{path} is off: set dora.argocd_token to receive Argo notifications"),
                    ))
                }
            },
            Sender::PagerDuty => match &self.secrets.pagerduty {
                Some(secret) => verify_pagerduty(
                    &values("x-pagerduty-signature"),
                    secret.expose().as_bytes(),
                    &body,
                ),
                None => {
                    return Ok(reject(
                        404,
                        "/pagerduty is off: set dora.pagerduty_secret to receive PagerDuty webhooks",
                    ))
                }
            },
        };
        if let Err(why) = authenticated {
            return Ok(reject(401, why));
        }
        let payload: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return Ok(reject(400, format!("the body is not JSON: {e}"))),
        };
        let (normalized, delivery) = match sender {
            Sender::GitHub => {
                let [event] = values("x-github-event")[..] else {
                    return Ok(reject(400, "exactly one X-GitHub-Event header is needed"));
                };
                if event == "ping" {
                    return Ok(respond(200, Reply::Pong));
                }
                // GitHub's delivery ids are GUIDs; anything else is processed without a
                // redelivery marker (the semantic keys still catch duplicates).
                let delivery = values("x-github-delivery")
                    .first()
                    .filter(|d| is_delivery_id(d))
                    .map(|d| d.to_string());
                (normalize::github(event, &payload, &self.dora), delivery)
            }
            Sender::Flux => (normalize::flux(&payload, &self.dora), None),
            Sender::Flagger => (normalize::flagger(&payload, &self.dora), None),
            Sender::Argocd => (normalize::argocd(&payload, &self.dora, inv.now), None),
            Sender::ArgoRollouts => (
                normalize::argo_rollouts(&payload, &self.dora, inv.now),
                None,
            ),
            Sender::PagerDuty => (normalize::pagerduty(&payload, &self.dora), None),
        };
        let (events, unassigned) = match normalized {
            Err(e) => return Ok(reject(400, e.0)),
            Ok(Normalized::Ignored(reason)) => {
                tracing::info!(%reason, "ignored");
                return Ok(respond(202, Reply::Ignored { reason }));
            }
            Ok(Normalized::Events(events)) => (events, None),
            Ok(Normalized::Unassigned(events, reason)) => (events, Some(reason)),
        };
        if events.iter().any(|e| e.key.len() > MAX_KEY) {
            return Ok(reject(
                400,
                format!("a name or revision in the payload is too long (its event's key is over {MAX_KEY} bytes)"),
            ));
        }
        match self.store_all(&events, delivery.as_deref(), inv).await {
            Ok(Reply::Stored(stored)) if unassigned.is_some() => {
                let reason = unassigned.unwrap_or_default();
                tracing::info!(%reason, "kept unassigned");
                Ok(respond(
                    202,
                    Reply::Unassigned {
                        reason,
                        stored: stored.stored,
                    },
                ))
            }
            Ok(body) => Ok(respond(200, body)),
            Err(e) => {
                tracing::error!(error = %e, "storing webhook events failed");
                Ok(respond(
                    500,
                    Reply::Error {
                        reason: "storage unavailable; redeliver later".into(),
                    },
                ))
            }
        }
    }

    async fn store_all(
        &self,
        events: &[fleet_shared::dora::ServiceEvent],
        delivery: Option<&str>,
        inv: Invocation,
    ) -> Result<Reply> {
        if let Some(d) = delivery {
            if self.store.delivery_seen(d).await? {
                return Ok(Reply::DuplicateDelivery {
                    delivery: d.to_string(),
                });
            }
        }
        let mut stored = 0;
        for e in events {
            if self.store.put(e).await? {
                stored += 1;
            }
        }
        if let Some(d) = delivery {
            self.store.mark_delivery(d, inv.now).await?;
        }
        Ok(Reply::Stored(Stored {
            status: if stored == 0 { "duplicate" } else { "stored" },
            stored,
            duplicates: events.len() - stored,
            services: events.iter().map(|e| e.service.clone()).collect(),
        }))
    }
}

/// A GUID-shaped `X-GitHub-Delivery` (hex digits and dashes, at most 64 characters): the
/// only kind stored as a redelivery marker (a table key).
pub fn is_delivery_id(value: &str) -> bool {
    (1..=64).contains(&value.len()) && value.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The raw body, decoded from base64 when the flag says so; 413 past [`MAX_BODY`].
fn body_bytes(request: &LambdaFunctionUrlRequest) -> std::result::Result<Vec<u8>, (i64, String)> {
    fleet_shared::request::function_url_body(
        request.body.as_deref(),
        request.is_base64_encoded,
        MAX_BODY,
    )
}

impl fleet_shared::runner::Function for Webhook {
    async fn cold_start() -> Result<Self> {
        Webhook::from_cold_start().await
    }

    async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        Webhook::handle(self, event, inv).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_guid_shaped_delivery_ids_become_markers() {
        assert!(is_delivery_id("0c9d5a80-c9e2-11f0-8a1e-4e2a7d5e6f01"));
        assert!(!is_delivery_id(""));
        assert!(!is_delivery_id(&"a".repeat(65)));
        assert!(!is_delivery_id("dora#digest#2026-11-23"));
        assert!(!is_delivery_id("../../etc"));
        assert!(!is_delivery_id("0c9d5a80 c9e2"));
    }
}
