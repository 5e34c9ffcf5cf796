//! `[dora]`: the services whose delivery performance is measured (read by dora-webhook
//! and dora-aggregator).

use serde::Deserialize;

use super::SecretRef;
use crate::dora::model::Origin;
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
    /// Argo CD and Argo Rollouts notifications' bearer token (`Authorization: Bearer
    /// <token>`, compared in constant time): their webhook service cannot sign bodies.
    /// Without it `/argocd` and `/argo-rollouts` answer 404.
    #[serde(default)]
    pub argocd_token: Option<SecretRef>,
    /// PagerDuty v3 webhook subscription secret (`X-PagerDuty-Signature: v1=<hex
    /// HMAC-SHA256>`). Without it `/pagerduty` answers 404.
    #[serde(default)]
    pub pagerduty_secret: Option<SecretRef>,
    /// GitHub token for the daily redelivery sweep (a fine-grained token with webhooks
    /// read and write on the hooks' repositories or organization).
    #[serde(default)]
    pub github_token: Option<SecretRef>,
    /// `[[dora.github_hook]]`: the webhooks whose failed deliveries the daily sweep asks
    /// GitHub to redeliver (GitHub never redelivers by itself).
    #[serde(default, rename = "github_hook")]
    pub github_hooks: Vec<GitHubHook>,
    /// The GitHub REST API's base URL (GitHub Enterprise Server: `https://<host>/api/v3`).
    #[serde(default = "default_github_api")]
    pub github_api_url: String,
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

/// `[[dora.github_hook]]`: one repository or organization webhook, by its id (the number
/// in the hook's settings URL, `…/settings/hooks/<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GitHubHook {
    /// `owner/name` for a repository webhook.
    #[serde(default)]
    pub repo: Option<String>,
    /// The organization, for an organization webhook.
    #[serde(default)]
    pub org: Option<String>,
    /// The hook's id.
    pub id: u64,
}

impl GitHubHook {
    /// The REST path of the hook's deliveries: `repos/<owner>/<name>/hooks/<id>/deliveries`
    /// or `orgs/<org>/hooks/<id>/deliveries`.
    pub fn deliveries_path(&self) -> String {
        match (&self.repo, &self.org) {
            (Some(repo), _) => format!("repos/{repo}/hooks/{}/deliveries", self.id),
            (None, Some(org)) => format!("orgs/{org}/hooks/{}/deliveries", self.id),
            (None, None) => format!("hooks/{}/deliveries", self.id),
        }
    }
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

fn default_github_api() -> String {
    "https://api.github.com".into()
}
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
    /// Argo CD notifications of one Application (`on-deployed`, `on-sync-failed`,
    /// `on-health-degraded`).
    Argocd,
    /// Argo Rollouts notifications of one Rollout (`on-rollout-completed`,
    /// `on-rollout-aborted`, `on-analysis-run-failed`).
    ArgoRollouts,
}

/// Where an Argo Rollouts deployment's commit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageTag {
    /// The first container image's tag is the commit (7 to 40 hex digits).
    Sha,
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
    /// `argocd`: the Application, `name` or `project/name` (when two projects have an
    /// application of that name). With `argo_rollouts`: the Application that syncs the
    /// Rollout, whose revisions date the Rollout's commits when its image tag does not.
    #[serde(default)]
    pub argocd_app: Option<String>,
    /// `argo_rollouts`: the Rollout, `namespace/name`.
    #[serde(default)]
    pub argo_rollout: Option<String>,
    /// `argo_rollouts`: `"sha"` when the image tag is the commit.
    #[serde(default)]
    pub image_tag: Option<ImageTag>,
    /// The PagerDuty service (its id, e.g. `PF9KMXH`) whose incidents are this service's.
    #[serde(default)]
    pub pagerduty_service: Option<String>,
    /// Only PagerDuty incidents of this priority or higher count (`P1` is the highest);
    /// default every incident.
    #[serde(default)]
    pub pagerduty_min_priority: Option<String>,
}

/// What an event that came through an [`Origin`] is to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// One of its deployments.
    Deployment,
    /// A revision synced for it (Argo Rollouts services: their Application or Flux
    /// object).
    Revision,
    /// Not its.
    None,
}

impl DoraService {
    /// Whether a deployment that came through `origin` is this service's (a branch
    /// origin, a push's, is never a deployment). The webhook
    /// decides with it when an event arrives, the aggregator again for events kept
    /// unassigned, so a service configured later counts what came before.
    pub fn claims(&self, origin: &Origin) -> Claim {
        let yes = |source: DeploySource| {
            if self.deployments_from == source {
                Claim::Deployment
            } else {
                Claim::None
            }
        };
        let revision_or = |source: DeploySource| {
            if self.deployments_from == DeploySource::ArgoRollouts {
                Claim::Revision
            } else {
                yes(source)
            }
        };
        match origin {
            Origin::WorkflowRun { path, name, branch }
                if self.branch == *branch
                    && self
                        .deploy_workflows
                        .iter()
                        .any(|w| w == path || (!name.is_empty() && w == name)) =>
            {
                yes(DeploySource::WorkflowRun)
            }
            Origin::DeploymentStatus { environment } if self.environment == *environment => {
                yes(DeploySource::DeploymentStatus)
            }
            Origin::Flux { object }
                if self
                    .flux_object
                    .as_deref()
                    .is_some_and(|o| o.eq_ignore_ascii_case(object)) =>
            {
                revision_or(DeploySource::Flux)
            }
            Origin::Flagger { canary } if self.flagger_canary.as_deref() == Some(canary) => {
                yes(DeploySource::Flagger)
            }
            Origin::Argocd { project, app }
                if self
                    .argocd_app
                    .as_deref()
                    .is_some_and(|a| match a.split_once('/') {
                        Some((p, n)) => p == project && n == app,
                        None => a == app,
                    }) =>
            {
                revision_or(DeploySource::Argocd)
            }
            Origin::ArgoRollouts { rollout } if self.argo_rollout.as_deref() == Some(rollout) => {
                yes(DeploySource::ArgoRollouts)
            }
            _ => Claim::None,
        }
    }
}

/// The rank of a PagerDuty priority name `P<n>` (`P1` = 1, the highest); `None` for any
/// other name (PagerDuty accounts may rename their priorities).
pub fn priority_rank(name: &str) -> Option<u32> {
    name.strip_prefix('P')
        .or_else(|| name.strip_prefix('p'))
        .filter(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
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
                DeploySource::Argocd
                    if !has_parts(s.argocd_app.as_deref(), 1)
                        && !has_parts(s.argocd_app.as_deref(), 2) =>
                {
                    return Err(FleetError::config(
                        key("argocd_app"),
                        "missing or not `name` or `project/name`",
                    ))
                }
                DeploySource::ArgoRollouts if !has_parts(s.argo_rollout.as_deref(), 2) => {
                    return Err(FleetError::config(
                        key("argo_rollout"),
                        "missing or not `namespace/name`",
                    ))
                }
                _ => {}
            }
            if s.argocd_app.is_some()
                && !has_parts(s.argocd_app.as_deref(), 1)
                && !has_parts(s.argocd_app.as_deref(), 2)
            {
                return Err(FleetError::config(
                    key("argocd_app"),
                    "not `name` or `project/name`",
                ));
            }
            if s.flux_object.is_some() && !has_parts(s.flux_object.as_deref(), 3) {
                return Err(FleetError::config(
                    key("flux_object"),
                    "not `Kind/namespace/name`",
                ));
            }
            if s.image_tag.is_some() && s.deployments_from != DeploySource::ArgoRollouts {
                return Err(FleetError::config(
                    key("image_tag"),
                    "only for deployments_from = \"argo_rollouts\"",
                ));
            }
            let argo = matches!(
                s.deployments_from,
                DeploySource::Argocd | DeploySource::ArgoRollouts
            );
            if argo && self.argocd_token.is_none() {
                return Err(FleetError::config(
                    "dora.argocd_token",
                    format!(
                        "missing: service `{}` is deployed by Argo, whose notifications are checked with it",
                        s.name
                    ),
                ));
            }
            if let Some(pd) = &s.pagerduty_service {
                if pd.is_empty() || !pd.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(FleetError::config(
                        key("pagerduty_service"),
                        format!("`{pd}` is not a PagerDuty service id (e.g. PF9KMXH)"),
                    ));
                }
                if self.pagerduty_secret.is_none() {
                    return Err(FleetError::config(
                        "dora.pagerduty_secret",
                        format!(
                            "missing: service `{}` reads PagerDuty incidents, whose webhooks are checked with it",
                            s.name
                        ),
                    ));
                }
            }
            if let Some(p) = &s.pagerduty_min_priority {
                if s.pagerduty_service.is_none() {
                    return Err(FleetError::config(
                        key("pagerduty_service"),
                        "missing: pagerduty_min_priority filters the incidents of a PagerDuty service",
                    ));
                }
                if priority_rank(p).is_none() {
                    return Err(FleetError::config(
                        key("pagerduty_min_priority"),
                        format!("`{p}` is not a priority `P1`..`P99`"),
                    ));
                }
            }
        }
        for (i, h) in self.github_hooks.iter().enumerate() {
            let key = |k: &str| format!("dora.github_hook[{i}].{k}");
            let repo_ok = h.repo.as_deref().is_some_and(|r| has_parts(Some(r), 2));
            let org_ok = h
                .org
                .as_deref()
                .is_some_and(|o| !o.is_empty() && !o.contains('/'));
            if repo_ok == org_ok || (h.repo.is_some() && h.org.is_some()) {
                return Err(FleetError::config(
                    key("repo"),
                    "give either repo = \"owner/name\" or org = \"name\"",
                ));
            }
            if h.id == 0 {
                return Err(FleetError::config(key("id"), "must be the hook's id"));
            }
        }
        // The token goes there: https, or plain http to this machine only (a test's fake).
        let loopback = self
            .github_api_url
            .strip_prefix("http://")
            .map(|rest| rest.split('/').next().unwrap_or(rest))
            .and_then(|authority| authority.rsplit_once(':'))
            .is_some_and(|(host, port)| {
                ["127.0.0.1", "localhost", "[::1]"].contains(&host)
                    && !port.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
            });
        if !(self.github_api_url.starts_with("https://") || loopback) {
            return Err(FleetError::config(
                "dora.github_api_url",
                "not an https URL (https://api.github.com; GitHub Enterprise Server: https://<host>/api/v3)",
            ));
        }
        if !self.github_hooks.is_empty() && self.github_token.is_none() {
            return Err(FleetError::config(
                "dora.github_token",
                "missing: [[dora.github_hook]] needs a token to list and redeliver deliveries",
            ));
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
        // The token goes to github_api_url: https, or http to this machine only.
        for bad in [
            "http://api.github.com",
            "http://localhost:1@attacker.example/",
            "http://127.0.0.1.attacker.example:80/",
            "ftp://127.0.0.1:21",
        ] {
            assert_eq!(
                key_of(&format!("github_api_url = \"{bad}\"")),
                "dora.github_api_url",
                "{bad}"
            );
        }
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
