//! Slack notifications through an incoming webhook. Best effort: a failed notification is
//! logged by the caller and never fails the work it reports on.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Secret;
use crate::error::{FleetError, Result};

/// Posts to a Slack incoming webhook. Cheap to clone: clones share the webhook once read.
///
/// A webhook kept in SSM is read when the first message is sent, not at cold start, and
/// then kept: most invocations send nothing, and a cold start that reads it anyway waits
/// one more SSM round trip (BENCHMARKS.md, section 1). The HTTP client (and its root
/// certificates) is built then too.
#[derive(Clone, Debug)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: Source,
    webhook: tokio::sync::OnceCell<Secret>,
    http: std::sync::OnceLock<reqwest::Client>,
}

#[derive(Debug)]
enum Source {
    None,
    Ready(Secret),
    /// `key` of the config names SSM parameter `parameter`, read on first use.
    Ssm {
        ssm: aws_sdk_ssm::Client,
        key: &'static str,
        parameter: String,
    },
}

impl Notifier {
    /// A notifier posting to `webhook` (disabled without).
    pub fn new(webhook: Option<Secret>) -> Self {
        Notifier::from_source(match webhook {
            Some(w) => Source::Ready(w),
            None => Source::None,
        })
    }

    /// A notifier whose webhook is SSM parameter `parameter` (named by config key `key`
    /// in errors), read with decryption when the first message is sent and checked like
    /// every secret ([`crate::startup::resolve_secret`]). A read that fails fails that
    /// send (naming `key` and the parameter, never a value) and is tried again on the
    /// next one.
    pub fn from_ssm(ssm: aws_sdk_ssm::Client, key: &'static str, parameter: String) -> Self {
        Notifier::from_source(Source::Ssm {
            ssm,
            key,
            parameter,
        })
    }

    fn from_source(source: Source) -> Self {
        Notifier {
            inner: Arc::new(Inner {
                source,
                webhook: tokio::sync::OnceCell::new(),
                http: std::sync::OnceLock::new(),
            }),
        }
    }

    /// A notifier that sends nothing (no `fleet.slack_webhook`).
    pub fn disabled() -> Self {
        Notifier::new(None)
    }

    /// Whether a webhook is configured.
    pub fn enabled(&self) -> bool {
        !matches!(self.inner.source, Source::None)
    }

    /// The webhook URL: at hand, or read from SSM once.
    async fn webhook(&self) -> Result<Option<&Secret>> {
        match &self.inner.source {
            Source::None => Ok(None),
            Source::Ready(w) => Ok(Some(w)),
            Source::Ssm {
                ssm,
                key,
                parameter,
            } => self
                .inner
                .webhook
                .get_or_try_init(|| async {
                    crate::startup::resolve_secret(
                        ssm,
                        key,
                        &crate::config::SecretRef::Ssm(parameter.clone()),
                        true,
                        crate::startup::MIN_SECRET_BYTES,
                    )
                    .await
                })
                .await
                .map(Some),
        }
    }

    /// Reads the webhook now if it is not read yet ([`Notifier::from_ssm`]). A caller
    /// that claims a once-a-day message calls this first, so that a webhook that cannot
    /// be read (throttled, missing) does not use up the day's claim. Errors: as
    /// [`crate::startup::resolve_secret`]'s.
    pub async fn ready(&self) -> Result<()> {
        self.webhook().await.map(|_| ())
    }

    fn http(&self) -> &reqwest::Client {
        self.inner.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default()
        })
    }

    /// [`Notifier::send`], best effort: a failure is logged as a warning (without the
    /// webhook), for callers whose work is done whatever happens to the message.
    pub async fn send_or_warn(&self, text: &str) {
        if let Err(e) = self.send(text).await {
            tracing::warn!(error = %e, "Slack notification failed");
        }
    }

    /// Posts `text`; returns whether a webhook is configured.
    pub async fn send(&self, text: &str) -> Result<bool> {
        self.send_message(&serde_json::json!({ "text": text }))
            .await
    }

    /// Posts `message`, an incoming-webhook body (`text`, and Block Kit `blocks` such as
    /// [`crate::notice::message`]'s); returns whether a webhook is configured. Errors
    /// (`Http`, retryable on 5xx and transport failures) never carry the webhook URL.
    pub async fn send_message(&self, message: &serde_json::Value) -> Result<bool> {
        let Some(url) = self.webhook().await? else {
            return Ok(false);
        };
        post(self.http(), url.expose(), message).await?;
        Ok(true)
    }
}

/// Posts `message` to Slack URL `url`; errors say what failed, never the URL (a webhook
/// or a `response_url` is a credential).
async fn post(http: &reqwest::Client, url: &str, message: &serde_json::Value) -> Result<()> {
    let fail = |message: String, retryable: bool| FleetError::Http {
        api: "Slack",
        message,
        retryable,
    };
    let resp = http
        .post(url)
        .json(message)
        .send()
        .await
        .map_err(|e| fail(e.without_url().to_string(), true))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(format!("HTTP {status}"), status.is_server_error()));
    }
    Ok(())
}

/// Where Slack's `response_url`s live. Only URLs under it are posted to: a document that
/// names another URL could otherwise make a function post fleet state anywhere.
pub const SLACK_RESPONSE_URLS: &str = "https://hooks.slack.com/";

/// Answers a Slack command or button click through its `response_url` (Slack keeps one
/// for 30 minutes and 5 posts). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Responder {
    http: reqwest::Client,
    prefix: String,
}

impl Responder {
    /// A responder for URLs under [`SLACK_RESPONSE_URLS`], or under
    /// `SLACK_RESPONSE_URL_PREFIX` when set (the tests' fake Slack on loopback).
    /// Ignored in Lambda: there only Slack's own URLs are posted to.
    pub fn from_env() -> Self {
        let prefix = std::env::var("SLACK_RESPONSE_URL_PREFIX")
            .ok()
            .filter(|p| !p.is_empty() && !crate::runner::in_lambda())
            .unwrap_or_else(|| SLACK_RESPONSE_URLS.into());
        Responder::new(prefix)
    }

    /// A responder for URLs under `prefix` (`https://hooks.slack.com/`; the tests' fake).
    pub fn new(prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        Responder {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            prefix,
        }
    }

    /// The same, giving Slack at most `timeout` per post (slack-commands answers a
    /// click within Slack's 3 seconds, so it cannot wait 5).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Responder {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
            prefix: self.prefix,
        }
    }

    /// Whether `url` is one this responder posts to.
    pub fn allows(&self, url: &str) -> bool {
        url.starts_with(&self.prefix)
    }

    /// Posts `message` (`text`, `blocks`, `replace_original`, `response_type`) to `url`.
    ///
    /// # Errors
    /// `BadRequest` (`response_url`) for a URL not under the allowed prefix; `Http` when
    /// Slack refuses or cannot be reached (never naming the URL).
    pub async fn post(&self, url: &str, message: &serde_json::Value) -> Result<()> {
        if !self.allows(url) {
            return Err(FleetError::bad_request(
                "response_url",
                format!(
                    "not a Slack response URL (expected one under {})",
                    self.prefix
                ),
            ));
        }
        post(&self.http, url, message).await
    }
}
