//! Slack notifications through an incoming webhook. Best effort: a failed notification is
//! logged by the caller and never fails the work it reports on.

use std::time::Duration;

use crate::config::Secret;
use crate::error::{FleetError, Result};

#[derive(Clone, Debug)]
pub struct Notifier {
    webhook: Option<Secret>,
    http: reqwest::Client,
}

impl Notifier {
    pub fn new(webhook: Option<Secret>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Notifier { webhook, http }
    }

    pub fn disabled() -> Self {
        Notifier::new(None)
    }

    /// Whether a webhook is configured.
    pub fn enabled(&self) -> bool {
        self.webhook.is_some()
    }

    /// Posts `text`; returns whether a webhook is configured.
    pub async fn send(&self, text: &str) -> Result<bool> {
        let Some(url) = &self.webhook else {
            return Ok(false);
        };
        // The webhook URL is the secret: strip it from any error before it can be logged.
        let fail = |message: String, retryable: bool| FleetError::Http {
            api: "Slack",
            message,
            retryable,
        };
        let resp = self
            .http
            .post(url.expose())
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string(), true))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}"), status.is_server_error()));
        }
        Ok(true)
    }
}
