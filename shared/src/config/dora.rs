//! `[dora]`: the services whose delivery performance is measured (read by dora-webhook
//! and dora-aggregator).

use serde::Deserialize;

use super::SecretRef;
use crate::error::{FleetError, Result};
use crate::schedule::DayName;

/// `[dora]`.
#[derive(Debug, Clone, Deserialize)]
pub struct DoraConfig {
    /// GitHub webhook secret (HMAC-SHA256 of the body, `X-Hub-Signature-256`).
    pub webhook_secret: SecretRef,
    /// Flux notification-controller `generic-hmac` key; defaults to `webhook_secret`.
    #[serde(default)]
    pub flux_secret: Option<SecretRef>,
    /// Flagger event webhook token (`?token=`), its own value: Flagger sends it in the URL,
    /// where it is logged. Without it `/flagger` answers 404.
    #[serde(default)]
    pub flagger_token: Option<SecretRef>,
    /// Issues carrying this label are incidents.
    #[serde(default = "default_incident_label")]
    pub incident_label: String,
    /// Prometheus Pushgateway base URL; the daily run pushes the metrics there. May be
    /// `ssm:<parameter>` (a URL can carry a password); never printed whole: errors show
    /// the scheme and host only.
    #[serde(default)]
    pub pushgateway_url: Option<SecretRef>,
    /// UTC weekday of the Slack digest (when `fleet.slack_webhook` is set).
    #[serde(default = "default_digest_day")]
    pub digest_day: DayName,
    /// The report window, in days back from now.
    #[serde(default = "default_window")]
    pub window_days: u32,
    /// How far before the window pushes, failures and incidents are read, so that a
    /// commit pushed before the window and deployed inside it still has its lead time.
    #[serde(default = "default_lookback")]
    pub lookback_days: u32,
    /// How long normalized events are kept.
    #[serde(default = "default_retention")]
    pub retention_days: u32,
    /// `[[dora.service]]`: the services measured.
    #[serde(default, rename = "service")]
    pub services: Vec<DoraService>,
}

/// An http(s) URL; the error names the key, not the URL (it may carry a password).
pub fn check_pushgateway_url(url: &str) -> Result<()> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(FleetError::config(
            "dora.pushgateway_url",
            "not an http(s) URL (http://host:9091)",
        ))
    }
}

/// The longest `dora.retention_days` accepted: a century.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

fn default_incident_label() -> String {
    "incident".into()
}
fn default_digest_day() -> DayName {
    DayName(jiff::civil::Weekday::Monday)
}
fn default_window() -> u32 {
    30
}
fn default_lookback() -> u32 {
    90
}
fn default_retention() -> u32 {
    400
}

/// Where a service's deployments come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploySource {
    /// GitHub Actions `workflow_run` events of the deploy workflows.
    WorkflowRun,
    /// GitHub `deployment_status` events of the environment.
    DeploymentStatus,
    /// Flux notification-controller events of one object.
    Flux,
    /// Flagger events of one canary (promotion completed / canary failed).
    Flagger,
}

/// `[[dora.service]]`: one service.
#[derive(Debug, Clone, Deserialize)]
pub struct DoraService {
    /// The service's name in reports and metrics (the `Service` dimension).
    pub name: String,
    /// `owner/name` on GitHub.
    pub repo: String,
    /// The branch whose pushes start lead time (default `main`).
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Where its deployments come from.
    pub deployments_from: DeploySource,
    /// `workflow_run`: the deploy workflows, by path (`.github/workflows/deploy.yml`) or name.
    #[serde(default)]
    pub deploy_workflows: Vec<String>,
    /// The environment deployments go to (default `production`; the `Environment`
    /// dimension, and the GitHub environment for `deployment_status`).
    #[serde(default = "default_environment")]
    pub environment: String,
    /// `flux`: the object whose events are deployments, `Kind/namespace/name`.
    #[serde(default)]
    pub flux_object: Option<String>,
    /// `flagger`: the canary, `namespace/name`.
    #[serde(default)]
    pub flagger_canary: Option<String>,
}

fn default_branch() -> String {
    "main".into()
}
fn default_environment() -> String {
    "production".into()
}

/// `a/b/c`-style names with exactly `n` non-empty parts.
fn has_parts(name: Option<&str>, n: usize) -> bool {
    name.is_some_and(|o| o.split('/').count() == n && o.split('/').all(|p| !p.is_empty()))
}

impl DoraConfig {
    /// The service named `name`, if configured.
    pub fn service(&self, name: &str) -> Option<&DoraService> {
        self.services.iter().find(|s| s.name == name)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.incident_label.trim().is_empty() {
            return Err(FleetError::config(
                "dora.incident_label",
                "must not be empty",
            ));
        }
        // Flagger sends its token in the URL, where it ends in logs: it must not be the
        // GitHub secret, which signs every other delivery.
        if let (Some(SecretRef::Ssm(flagger)), SecretRef::Ssm(github)) =
            (&self.flagger_token, &self.webhook_secret)
        {
            if flagger.trim_start_matches('/') == github.trim_start_matches('/') {
                return Err(FleetError::config(
                    "dora.flagger_token",
                    "must be its own secret, not dora.webhook_secret's parameter (Flagger sends it in the URL, where it is logged)",
                ));
            }
        }
        if let Some(SecretRef::Literal(url)) = &self.pushgateway_url {
            check_pushgateway_url(url.expose())?;
        }
        if self.window_days == 0 {
            return Err(FleetError::config("dora.window_days", "must be at least 1"));
        }
        // Events must outlive every window that reads them; a century is the ceiling.
        let least = u64::from(self.window_days) + u64::from(self.lookback_days);
        if u64::from(self.retention_days) < least || self.retention_days > MAX_RETENTION_DAYS {
            return Err(FleetError::config(
                "dora.retention_days",
                format!(
                    "{} is outside {least}..={MAX_RETENTION_DAYS} (at least window_days + lookback_days)",
                    self.retention_days
                ),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.services.iter().enumerate() {
            let key = |k: &str| format!("dora.service[{i}].{k}");
            if s.name.trim().is_empty() || !names.insert(s.name.as_str()) {
                return Err(FleetError::config(
                    key("name"),
                    format!("`{}` is empty or used twice", s.name),
                ));
            }
            let repo_ok = matches!(s.repo.split_once('/'), Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/'));
            if !repo_ok {
                return Err(FleetError::config(
                    key("repo"),
                    format!("`{}` is not `owner/name`", s.repo),
                ));
            }
            match s.deployments_from {
                DeploySource::WorkflowRun if s.deploy_workflows.is_empty() => {
                    return Err(FleetError::config(
                        key("deploy_workflows"),
                        "missing: name the deploy workflows (e.g. \".github/workflows/deploy.yml\")",
                    ))
                }
                DeploySource::Flux if !has_parts(s.flux_object.as_deref(), 3) =>
                {
                    return Err(FleetError::config(
                        key("flux_object"),
                        "missing or not `Kind/namespace/name` (e.g. \"Kustomization/flux-system/apps\")",
                    ))
                }
                DeploySource::Flagger if !has_parts(s.flagger_canary.as_deref(), 2) =>
                {
                    return Err(FleetError::config(
                        key("flagger_canary"),
                        "missing or not `namespace/name`",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::FleetConfig;
    use crate::FleetError;

    fn key_of(dora: &str) -> String {
        let text =
            format!("[fleet]\nregion = \"eu-west-1\"\n[dora]\nwebhook_secret = \"ssm:/s\"\n{dora}");
        match FleetConfig::parse(&text) {
            Err(FleetError::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_key() {
        let svc = "[[dora.service]]\nname = \"web\"\nrepo = \"org/web\"\n";
        assert_eq!(
            key_of(&format!("{svc}deployments_from = \"workflow_run\"")),
            "dora.service[0].deploy_workflows"
        );
        assert_eq!(
            key_of(&format!(
                "{svc}deployments_from = \"flux\"\nflux_object = \"apps\""
            )),
            "dora.service[0].flux_object"
        );
        assert_eq!(
            key_of(&format!("{svc}deployments_from = \"flagger\"")),
            "dora.service[0].flagger_canary"
        );
        assert_eq!(
            key_of(&format!("{svc}deployments_from = \"argo\"")),
            "dora.service[0].deployments_from"
        );
        assert_eq!(
            key_of("[[dora.service]]\nname = \"web\"\nrepo = \"web\"\ndeployments_from = \"flagger\"\nflagger_canary = \"a/b\""),
            "dora.service[0].repo"
        );
        assert_eq!(key_of("digest_day = \"Caturday\""), "dora.digest_day");
        assert_eq!(key_of("flagger_token = \"ssm:s\""), "dora.flagger_token");
        assert_eq!(key_of("flagger_token = \"ssm:/s\""), "dora.flagger_token");
        // Retention: at least window + lookback (30 + 90 by default), at most a century;
        // 10 000 000 used to panic on every delivery.
        for bad in ["0", "100", "36501", "10000000"] {
            assert_eq!(
                key_of(&format!("retention_days = {bad}")),
                "dora.retention_days"
            );
        }
        assert_eq!(
            key_of("pushgateway_url = \"pushgateway:9091\""),
            "dora.pushgateway_url"
        );
        let ok = FleetConfig::parse(&format!(
            "[fleet]\nregion = \"eu-west-1\"\n[dora]\nwebhook_secret = \"ssm:/s\"\ndigest_day = \"friday\"\n{svc}deployments_from = \"deployment_status\""
        ))
        .expect("valid");
        let dora = ok.dora.expect("dora");
        assert_eq!(dora.services[0].branch, "main");
        assert_eq!(dora.digest_day.0, jiff::civil::Weekday::Friday);
    }
}
