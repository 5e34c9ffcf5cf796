//! The aggregator's handler: read each service's window (plus the lookback), compute,
//! and on the daily run publish to CloudWatch, the Pushgateway and the weekly digest.

use std::sync::Arc;

use aws_sdk_cloudwatch::types::StandardUnit;
use fleet_shared::aws::SdkConfig;
use fleet_shared::config::{
    Claim, CloudWatchMetrics, DeploySource, DoraConfig, DoraService, ImageTag, Secret,
};
use fleet_shared::dora::{unassigned, DoraEvent, DoraStore, Origin, Outcome, StoredEvent};
use fleet_shared::metrics as custom_metrics;
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_shared::startup::{cold_start, table_name};
use fleet_shared::state::StateStore;
use fleet_shared::{FleetError, Result};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::metrics::{tally, History, Metrics, Tally, Window};
use crate::redeliver::{sweep, GitHubApi, Sweep};
use crate::request::{parse, Request};

/// CloudWatch namespace of the DORA metrics.
pub const METRICS_NAMESPACE: &str = "Fleet/DORA";

pub struct Aggregator {
    pub dora: Arc<DoraConfig>,
    pub store: DoraStore,
    /// For the once-a-day digest marker.
    pub state: StateStore,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// `metrics.cloudwatch`: which of the DORA metrics go to CloudWatch (the cold start
    /// sets it from the config; `summary` otherwise).
    pub metrics_level: CloudWatchMetrics,
    pub notifier: Notifier,
    pub http: reqwest::Client,
    /// `dora.pushgateway_url`, resolved (it may live in SSM).
    pub pushgateway: Option<Secret>,
    /// The redelivery sweep's GitHub API (`dora.github_token` set).
    pub github: Option<GitHubApi>,
}

/// One service's (or all services') metrics: `{"name", "environment", …metrics}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceReport {
    /// The service's name in `[dora]`, or `all`.
    pub name: String,
    pub environment: String,
    #[serde(flatten)]
    pub metrics: Metrics,
}

fn days(n: u32) -> SignedDuration {
    SignedDuration::from_hours(i64::from(n) * 24)
}

impl Aggregator {
    pub async fn from_cold_start() -> Result<Self> {
        let cold = cold_start().await?;
        let dora = cold
            .config
            .dora
            .clone()
            .ok_or_else(|| FleetError::config("dora", "missing: the [dora] section"))?;
        let table = table_name()?;
        // Both in one SSM round trip.
        cold.prefetch([
            cold.config.fleet.slack_webhook.as_ref(),
            dora.pushgateway_url.as_ref(),
            dora.github_token.as_ref(),
        ])
        .await;
        let notifier = cold.notifier().await?;
        let pushgateway = match &dora.pushgateway_url {
            Some(url) => {
                let url = cold.maybe_secret("dora.pushgateway_url", url).await?;
                fleet_shared::config::check_pushgateway_url(url.expose())?;
                Some(url)
            }
            None => None,
        };
        let github = match &dora.github_token {
            Some(t) => Some(cold.secret("dora.github_token", t).await?),
            None => None,
        };
        let mut aggregator = Aggregator::new(&cold.sdk, dora, table, notifier, pushgateway)?;
        aggregator.metrics_level = cold.config.metrics.cloudwatch;
        if let Some(token) = github {
            aggregator = aggregator.with_github_token(token);
        }
        Ok(aggregator)
    }

    /// An aggregator with its AWS clients built from `sdk`, DORA events and the digest's
    /// daily claim in the state table `table`, metrics pushed to `pushgateway` when set.
    /// The cold start and the tests build it here.
    ///
    /// # Errors
    /// The HTTP client for the Pushgateway cannot be built (no TLS backend).
    pub fn new(
        sdk: &SdkConfig,
        dora: DoraConfig,
        table: impl Into<String>,
        notifier: Notifier,
        pushgateway: Option<Secret>,
    ) -> Result<Self> {
        let table = table.into();
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        Ok(Aggregator {
            pushgateway,
            store: DoraStore::new(dynamodb.clone(), table.clone(), dora.retention_days),
            state: StateStore::new(dynamodb, table),
            dora: Arc::new(dora),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            metrics_level: CloudWatchMetrics::default(),
            github: None,
            notifier,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| FleetError::Internal(format!("HTTP client: {e}")))?,
        })
    }

    /// The redelivery sweep on, with `token`, against `dora.github_api_url`.
    pub fn with_github_token(mut self, token: Secret) -> Self {
        self.github = Some(GitHubApi::new(
            self.http.clone(),
            &self.dora.github_api_url,
            token,
        ));
        self
    }

    /// The redelivery sweep of the configured hooks (`None`: no hooks or no token),
    /// within the invocation's real time left.
    pub async fn redeliver(&self, inv: &Invocation) -> Option<Sweep> {
        let api = self.github.as_ref()?;
        if self.dora.github_hooks.is_empty() {
            return None;
        }
        Some(sweep(api, &self.store, &self.dora.github_hooks, inv).await)
    }

    pub async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        match parse(&event)? {
            Request::Daily => {
                let window = Window {
                    from: inv
                        .now
                        .checked_sub(days(self.dora.window_days))
                        .unwrap_or(inv.now),
                    to: inv.now,
                };
                let (reports, all) = self.compute(None, window).await?;
                self.publish(&reports, &all, &window, &inv).await;
                let mut report = render(&window, &reports, &all);
                // After the metrics are out: a long sweep never holds them back.
                report.redelivery = self.redeliver(&inv).await;
                fleet_shared::runner::respond(report)
            }
            Request::Report { service, from, to } => {
                let to = to.unwrap_or(inv.now);
                let from =
                    from.unwrap_or(to.checked_sub(days(self.dora.window_days)).unwrap_or(to));
                if from >= to {
                    return Err(FleetError::bad_request(
                        "from",
                        format!("{from} is not before {to}"),
                    ));
                }
                if let Some(name) = &service {
                    if self.dora.service(name).is_none() {
                        return Err(FleetError::bad_request(
                            "service",
                            format!("`{name}` is not a service in [dora]"),
                        ));
                    }
                }
                let window = Window { from, to };
                let (reports, all) = self.compute(service.as_deref(), window).await?;
                fleet_shared::runner::respond(render(&window, &reports, &all))
            }
        }
    }

    /// The metrics of every service (or one), and of all of them together.
    pub async fn compute(
        &self,
        only: Option<&str>,
        window: Window,
    ) -> Result<(Vec<ServiceReport>, ServiceReport)> {
        let read_from = window
            .from
            .checked_sub(days(self.dora.lookback_days))
            .unwrap_or(window.from);
        let services: Vec<&DoraService> = self
            .dora
            .services
            .iter()
            .filter(|s| only.is_none_or(|n| n == s.name))
            .collect();
        let mut reports = Vec::new();
        let mut total = Tally::default();
        for s in services {
            let mut items = self.store.items(&s.name, read_from, window.to).await?;
            for partition in unassigned_partitions(s) {
                let kept = self.store.items(&partition, read_from, window.to).await?;
                items.extend(kept.into_iter().filter_map(|item| claim(s, item)));
            }
            let t = tally(&History::new(service_events(s, items)), &window);
            total.add(t.clone());
            reports.push(ServiceReport {
                name: s.name.clone(),
                environment: s.environment.clone(),
                metrics: t.metrics(&window),
            });
        }
        let all = ServiceReport {
            name: "all".into(),
            environment: "all".into(),
            metrics: total.metrics(&window),
        };
        Ok((reports, all))
    }

    /// CloudWatch, the Pushgateway and the weekly digest: best effort, each logged.
    async fn publish(
        &self,
        reports: &[ServiceReport],
        all: &ServiceReport,
        window: &Window,
        inv: &Invocation,
    ) {
        if let Err(e) = self
            .put_metrics(reports.iter().chain(std::iter::once(all)))
            .await
        {
            tracing::error!(error = %e, "DORA metrics not sent to CloudWatch");
        }
        if let Some(url) = &self.pushgateway {
            if let Err(e) = self
                .push(url.expose(), reports.iter().chain(std::iter::once(all)))
                .await
            {
                tracing::error!(error = %e, "DORA metrics not pushed");
            }
        }
        let today = inv.now.to_zoned(jiff::tz::TimeZone::UTC).date();
        if self.notifier.enabled() && today.weekday() == self.dora.digest_day.0 {
            // One digest a day, however often the schedule fires; the webhook read first,
            // so that one that cannot be read does not use up the day's claim.
            let ready = self.notifier.ready().await;
            if let Err(e) = &ready {
                tracing::warn!(error = %e, "Slack webhook unavailable; digest not sent, the day's claim left for a later run");
            }
            if ready.is_ok() {
                match self
                    .state
                    .claim_daily("dora#digest", &inv.request_id, inv.now)
                    .await
                {
                    Ok(true) => {
                        if let Err(e) = self.notifier.send(&digest(reports, all, window)).await {
                            tracing::warn!(error = %e, "DORA digest not sent");
                        }
                    }
                    Ok(false) => tracing::info!("the digest went out already today"),
                    Err(e) => {
                        tracing::warn!(error = %e, "digest marker unavailable; digest skipped")
                    }
                }
            }
        }
    }

    async fn put_metrics<'a>(
        &self,
        reports: impl Iterator<Item = &'a ServiceReport>,
    ) -> Result<()> {
        let mut data = Vec::new();
        for r in reports {
            let dims = [
                ("Service", r.name.as_str()),
                ("Environment", r.environment.as_str()),
            ];
            let m = &r.metrics;
            let mut put = |name: &str, value: Option<f64>, unit: StandardUnit| {
                if let Some(v) = value {
                    data.push(custom_metrics::datum(name, v, unit, &dims));
                }
            };
            put(
                "Deployments",
                Some(m.deployments as f64),
                StandardUnit::Count,
            );
            put(
                "FailedDeployments",
                Some(m.failed_deployments as f64),
                StandardUnit::Count,
            );
            put(
                "DeploymentFrequencyPerDay",
                Some(m.deployment_frequency_per_day),
                StandardUnit::None,
            );
            put(
                "LeadTimeHours",
                m.lead_time_hours.as_ref().map(|l| l.median),
                StandardUnit::None,
            );
            put(
                "ChangeFailureRate",
                m.change_failure_rate,
                StandardUnit::None,
            );
            put(
                "RecoveryTimeHours",
                m.recovery_time_hours.as_ref().map(|r| r.median),
                StandardUnit::None,
            );
            put("ReworkRate", m.rework_rate, StandardUnit::None);
        }
        custom_metrics::put(
            &self.cloudwatch,
            self.metrics_level,
            METRICS_NAMESPACE,
            data,
        )
        .await
    }

    /// Replaces the `fleet_dora` group on the Pushgateway (a PUT is idempotent).
    async fn push<'a>(
        &self,
        url: &str,
        reports: impl Iterator<Item = &'a ServiceReport>,
    ) -> Result<()> {
        let body = exposition(reports);
        let response = self
            .http
            .put(format!(
                "{}/metrics/job/fleet_dora",
                url.trim_end_matches('/')
            ))
            .header("content-type", "text/plain; version=0.0.4")
            .body(body)
            .send()
            .await
            .map_err(|e| FleetError::Http {
                api: "Pushgateway",
                // Without the URL: it may carry a password.
                message: e.without_url().to_string(),
                retryable: true,
            })?;
        if !response.status().is_success() {
            return Err(FleetError::Http {
                api: "Pushgateway",
                message: format!("HTTP {}", response.status()),
                retryable: response.status().is_server_error(),
            });
        }
        Ok(())
    }
}

/// The `unassigned:` partitions a service may claim events from: its repository's, and
/// those of the senders that name no repository it takes deployments or revisions from.
pub fn unassigned_partitions(s: &DoraService) -> Vec<String> {
    let mut out = vec![unassigned(&s.repo)];
    // Kept as GitHub spells the repository before partitions were lowercase.
    let as_spelled = format!("unassigned:{}", s.repo);
    if !out.contains(&as_spelled) {
        out.push(as_spelled);
    }
    let mut sender = |name: &str| {
        let p = unassigned(name);
        if !out.contains(&p) {
            out.push(p);
        }
    };
    match s.deployments_from {
        DeploySource::Flux => sender("flux"),
        DeploySource::Flagger => sender("flagger"),
        DeploySource::Argocd => sender("argocd"),
        DeploySource::ArgoRollouts => sender("argo-rollouts"),
        DeploySource::WorkflowRun | DeploySource::DeploymentStatus => {}
    }
    if s.deployments_from == DeploySource::ArgoRollouts {
        if s.argocd_app.is_some() {
            sender("argocd");
        }
        if s.flux_object.is_some() {
            sender("flux");
        }
    }
    out
}

/// What an unassigned item is to the service: a deployment it now claims (by the
/// origin kept with it), a revision, a repository's push, pull request or incident; or
/// nothing. A deployment kept without an origin (stored before origins were) is never
/// claimed.
pub fn claim(s: &DoraService, item: StoredEvent) -> Option<StoredEvent> {
    match &item.origin {
        Some(Origin::Branch { branch }) => (*branch == s.branch).then_some(item),
        Some(origin) => match s.claims(origin) {
            Claim::Deployment => Some(item),
            Claim::Revision => item.event.as_revision().map(|event| StoredEvent {
                key: format!("revision:{}", item.key),
                event,
                origin: None,
            }),
            Claim::None => None,
        },
        None => match item.event {
            DoraEvent::Deployment { .. } | DoraEvent::Revision { .. } => None,
            _ => Some(item),
        },
    }
}

/// A service's events, each fact once: the same fact may be in its partition and, from
/// before it was configured, in an unassigned one. A fact is its semantic key and time
/// (an issue closed, reopened and closed again has two closes of one key; Argo CD
/// syncing a revision again after a rollback, a second deployment of one key), except
/// for Argo Rollouts notifications, dated on arrival, where the key alone is (a resend
/// comes later; a rollback is a new Rollout revision): the earliest is kept. A
/// deployment reported both succeeded and failed at one instant and commit (Argo CD:
/// Healthy, then Degraded within the hour, both dated by the sync) failed.
/// An Argo Rollouts service without `image_tag = "sha"` does not read commits from tags.
pub fn service_events(s: &DoraService, mut items: Vec<StoredEvent>) -> Vec<DoraEvent> {
    items.sort_by_key(|i| i.event.at());
    let tags_are_commits = s.image_tag == Some(ImageTag::Sha);
    let rollouts = s.deployments_from == DeploySource::ArgoRollouts;
    let mut seen = std::collections::HashSet::new();
    let mut events = items
        .into_iter()
        .filter(|i| {
            let at = (!i.key.starts_with(ARRIVAL_DATED)).then(|| i.event.at());
            seen.insert((i.key.clone(), at))
        })
        .map(|i| match i.event {
            DoraEvent::Deployment { at, outcome, .. } if rollouts && !tags_are_commits => {
                DoraEvent::Deployment {
                    at,
                    outcome,
                    sha: None,
                }
            }
            other => other,
        })
        .collect::<Vec<_>>();
    let failed: std::collections::HashSet<(Timestamp, Option<String>)> = events
        .iter()
        .filter_map(|e| match e {
            DoraEvent::Deployment {
                at,
                outcome: Outcome::Failure,
                sha,
            } => Some((*at, sha.clone())),
            _ => None,
        })
        .collect();
    events.retain(|e| match e {
        DoraEvent::Deployment {
            at,
            outcome: Outcome::Success,
            sha,
        } => !failed.contains(&(*at, sha.clone())),
        _ => true,
    });
    events
}

/// The key prefix of deployments dated when they arrive (Argo Rollouts notifications
/// without `at`): deduplicated by key alone.
const ARRIVAL_DATED: &str = "deploy:argo-rollouts:";

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Reads one gauge's value from the metrics (none: not exported).
type Gauge = fn(&Metrics) -> Option<f64>;

/// The Prometheus text format of the reports' gauges.
pub fn exposition<'a>(reports: impl Iterator<Item = &'a ServiceReport>) -> String {
    let reports: Vec<&ServiceReport> = reports.collect();
    let gauges: [(&str, Gauge); 6] = [
        ("fleet_dora_deployments", |m| Some(m.deployments as f64)),
        ("fleet_dora_deployment_frequency_per_day", |m| {
            Some(m.deployment_frequency_per_day)
        }),
        ("fleet_dora_lead_time_hours", |m| {
            m.lead_time_hours.as_ref().map(|l| l.median)
        }),
        ("fleet_dora_change_failure_rate", |m| m.change_failure_rate),
        ("fleet_dora_recovery_time_hours", |m| {
            m.recovery_time_hours.as_ref().map(|r| r.median)
        }),
        ("fleet_dora_rework_rate", |m| m.rework_rate),
    ];
    let mut out = String::new();
    for (name, get) in gauges {
        out.push_str(&format!("# TYPE {name} gauge\n"));
        for r in &reports {
            if let Some(v) = get(&r.metrics) {
                out.push_str(&format!(
                    "{name}{{service=\"{}\",environment=\"{}\"}} {v}\n",
                    label(&r.name),
                    label(&r.environment)
                ));
            }
        }
    }
    out
}

/// The DORA report: the aggregator's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoraReport {
    pub window: WindowSpan,
    /// One per configured service, in config order.
    pub services: Vec<ServiceReport>,
    /// Every service together (`name` = `all`).
    pub all: ServiceReport,
    /// The daily run's redelivery sweep (absent without `[[dora.github_hook]]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redelivery: Option<Sweep>,
}

/// The window a report covers: `[from, to)`, and its length in days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowSpan {
    pub from: Timestamp,
    pub to: Timestamp,
    pub days: f64,
}

/// The report of a window: `{"window", "services": [...], "all"}`.
pub fn render(window: &Window, reports: &[ServiceReport], all: &ServiceReport) -> DoraReport {
    DoraReport {
        window: WindowSpan {
            from: window.from,
            to: window.to,
            days: window.days(),
        },
        services: reports.to_vec(),
        all: all.clone(),
        redelivery: None,
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.0} %", x * 100.0))
        .unwrap_or_else(|| "no data".into())
}

fn hrs(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1} h"))
        .unwrap_or_else(|| "no data".into())
}

/// The weekly Slack digest.
pub fn digest(reports: &[ServiceReport], all: &ServiceReport, window: &Window) -> String {
    let mut lines = vec![format!(
        ":bar_chart: DORA, {} to {}",
        window.from.strftime("%Y-%m-%d"),
        window.to.strftime("%Y-%m-%d")
    )];
    for r in reports.iter().chain(std::iter::once(all)) {
        let m = &r.metrics;
        let l = m.levels;
        lines.push(format!(
            "• *{}*: {:.2}/day ({}), lead time {} ({}), change failure rate {} ({}), recovery {} ({}), rework {}",
            r.name,
            m.deployment_frequency_per_day,
            l.deployment_frequency.as_str(),
            hrs(m.lead_time_hours.as_ref().map(|l| l.median)),
            l.lead_time.as_str(),
            pct(m.change_failure_rate),
            l.change_failure_rate.as_str(),
            hrs(m.recovery_time_hours.as_ref().map(|r| r.median)),
            l.recovery_time.as_str(),
            pct(m.rework_rate),
        ));
    }
    lines.join("\n")
}

impl fleet_shared::runner::Function for Aggregator {
    async fn cold_start() -> Result<Self> {
        Aggregator::from_cold_start().await
    }

    async fn handle(&self, event: Value, inv: Invocation) -> Result<Value> {
        Aggregator::handle(self, event, inv).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_shared::dora::model::{IncidentSource, Outcome};

    fn service(toml: &str) -> DoraService {
        let text = format!(
            "[fleet]\nregion = \"eu-west-1\"\n[dora]\nwebhook_secret = \"s\"\nargocd_token = \"t\"\n[[dora.service]]\nname = \"svc\"\nrepo = \"your-org/svc\"\n{toml}"
        );
        let config = fleet_shared::config::FleetConfig::parse(&text).expect("config");
        config.dora.expect("dora").services[0].clone()
    }

    fn at(t: &str) -> Timestamp {
        t.parse().expect("time")
    }

    fn item(key: &str, event: DoraEvent, origin: Option<Origin>) -> StoredEvent {
        StoredEvent {
            key: key.into(),
            event,
            origin,
        }
    }

    fn deployment(t: &str, sha: Option<&str>) -> DoraEvent {
        DoraEvent::Deployment {
            at: at(t),
            outcome: Outcome::Success,
            sha: sha.map(str::to_string),
        }
    }

    #[test]
    fn unassigned_events_are_claimed_by_what_the_service_names_now() {
        let release = service("branch = \"release\"\ndeployments_from = \"workflow_run\"\ndeploy_workflows = [\"deploy\"]");
        let push = |branch: &str| {
            item(
                "push:x",
                DoraEvent::Push {
                    at: at("2026-11-02T09:00:00Z"),
                    head: "x".into(),
                    commits: vec![],
                },
                Some(Origin::Branch {
                    branch: branch.into(),
                }),
            )
        };
        assert!(claim(&release, push("main")).is_none());
        assert!(claim(&release, push("release")).is_some());
        let run = |path: &str| {
            item(
                "deploy:workflow_run:1:1",
                deployment("2026-11-02T10:00:00Z", Some("x")),
                Some(Origin::WorkflowRun {
                    path: path.into(),
                    name: "deploy".into(),
                    branch: "release".into(),
                }),
            )
        };
        assert!(claim(&release, run(".github/workflows/deploy.yml")).is_some());
        // A deployment kept without an origin cannot be told apart: never claimed.
        let bare = item("deploy:x", deployment("2026-11-02T10:00:00Z", None), None);
        assert!(claim(&release, bare).is_none());
        // An Argo Rollouts service takes its Application's deployments as revisions.
        let rollouts = service("deployments_from = \"argo_rollouts\"\nargo_rollout = \"prod/api\"\nargocd_app = \"api\"");
        let synced = item(
            "deploy:argocd:default/api:x:Success",
            deployment("2026-11-02T10:00:00Z", Some("x")),
            Some(Origin::Argocd {
                project: "default".into(),
                app: "api".into(),
            }),
        );
        let claimed = claim(&rollouts, synced).expect("a revision");
        assert!(matches!(claimed.event, DoraEvent::Revision { .. }));
        assert_eq!(claimed.key, "revision:deploy:argocd:default/api:x:Success");
        assert!(unassigned_partitions(&rollouts).contains(&"unassigned:argocd".to_string()));
    }

    #[test]
    fn each_fact_once() {
        let rollouts = service("deployments_from = \"argo_rollouts\"\nargo_rollout = \"prod/api\"");
        let closed = |t: &str| DoraEvent::IncidentClosed {
            at: at(t),
            issue: 4,
            source: IncidentSource::GitHub,
        };
        let events = service_events(
            &rollouts,
            vec![
                // The same notification twice, dated on arrival: the earliest.
                item(
                    "deploy:argo-rollouts:prod/api:7:Success",
                    deployment("2026-11-02T10:01:00Z", Some("abcdef0")),
                    None,
                ),
                item(
                    "deploy:argo-rollouts:prod/api:7:Success",
                    deployment("2026-11-02T10:00:00Z", Some("abcdef0")),
                    None,
                ),
                // An issue closed, reopened and closed again: both closes.
                item("incident:4:closed", closed("2026-11-03T10:00:00Z"), None),
                item("incident:4:closed", closed("2026-11-04T10:00:00Z"), None),
                item("incident:4:closed", closed("2026-11-04T10:00:00Z"), None),
            ],
        );
        assert_eq!(events.len(), 3);
        // Without image_tag = "sha", a tag is not read as the commit.
        assert_eq!(events[0], deployment("2026-11-02T10:00:00Z", None));

        let argocd = service("deployments_from = \"argocd\"\nargocd_app = \"shop\"");
        let failed = DoraEvent::Deployment {
            at: at("2026-11-02T10:00:00Z"),
            outcome: Outcome::Failure,
            sha: Some("w".into()),
        };
        let events = service_events(
            &argocd,
            vec![
                // Synced W, Healthy then Degraded within the hour: one failed deployment.
                item(
                    "deploy:argocd:default/shop:w:Success",
                    deployment("2026-11-02T10:00:00Z", Some("w")),
                    None,
                ),
                item("deploy:argocd:default/shop:w:Failure", failed.clone(), None),
                // Rolled back to W two days later: a deployment again.
                item(
                    "deploy:argocd:default/shop:w:Success",
                    deployment("2026-11-04T10:00:00Z", Some("w")),
                    None,
                ),
            ],
        );
        assert_eq!(
            events,
            vec![failed, deployment("2026-11-04T10:00:00Z", Some("w"))]
        );
    }
}
