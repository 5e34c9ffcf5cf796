//! Webhook payloads -> normalized DORA events, per configured service. Pure functions.
//!
//! Every event gets a semantic key (the delivery id aside), so the same fact arriving
//! twice, through a redelivery or through an organization hook and a repository hook,
//! is stored once.

use fleet_shared::config::{priority_rank, Claim, DoraConfig, DoraService};
use fleet_shared::dora::model::{
    unassigned, Commit, DoraEvent, IncidentSource, Origin, Outcome, ServiceEvent,
};
use jiff::Timestamp;
use serde_json::Value;

/// What a payload means for the DORA metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalized {
    Events(Vec<ServiceEvent>),
    /// A deployment no service claims, kept under `unassigned:` so that a service
    /// configured later counts it; the reason says what it came through.
    Unassigned(Vec<ServiceEvent>, String),
    /// Valid, but nothing to store; the reason says why.
    Ignored(String),
}

/// A payload that is not what its event type promises.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed(pub String);

type Normalize = Result<Normalized, Malformed>;

fn field<'a>(v: &'a Value, pointer: &str) -> Result<&'a Value, Malformed> {
    v.pointer(pointer).filter(|x| !x.is_null()).ok_or_else(|| {
        Malformed(format!(
            "`{}` is missing",
            pointer.trim_start_matches('/').replace('/', ".")
        ))
    })
}

fn text<'a>(v: &'a Value, pointer: &str) -> Result<&'a str, Malformed> {
    field(v, pointer)?.as_str().ok_or_else(|| {
        Malformed(format!(
            "`{}` is not a string",
            pointer.trim_start_matches('/').replace('/', ".")
        ))
    })
}

fn time(v: &Value, pointer: &str) -> Result<Timestamp, Malformed> {
    let name = pointer.trim_start_matches('/').replace('/', ".");
    match field(v, pointer)? {
        Value::String(s) => s
            .parse()
            .map_err(|_| Malformed(format!("`{name}` is not an RFC 3339 time"))),
        // GitHub gives `repository.pushed_at` in seconds since the epoch on push events.
        Value::Number(n) => n
            .as_i64()
            .and_then(|s| Timestamp::from_second(s).ok())
            .ok_or_else(|| Malformed(format!("`{name}` is not a time"))),
        _ => Err(Malformed(format!("`{name}` is not a time"))),
    }
}

fn id(v: &Value, pointer: &str) -> Result<u64, Malformed> {
    field(v, pointer)?.as_u64().ok_or_else(|| {
        Malformed(format!(
            "`{}` is not a number",
            pointer.trim_start_matches('/').replace('/', ".")
        ))
    })
}

fn events(list: Vec<ServiceEvent>, none: impl FnOnce() -> String) -> Normalized {
    if list.is_empty() {
        Normalized::Ignored(none())
    } else {
        Normalized::Events(list)
    }
}

/// The configured services of a repository; events of repositories not configured are
/// kept under `unassigned:<repo>` (not reported) so that a service added later has them.
fn services_of<'a>(dora: &'a DoraConfig, repo: &str) -> Vec<&'a DoraService> {
    dora.services
        .iter()
        .filter(|s| s.repo.eq_ignore_ascii_case(repo))
        .collect()
}

/// A GitHub webhook (`X-GitHub-Event: <event>`).
pub fn github(event: &str, payload: &Value, dora: &DoraConfig) -> Normalize {
    if !matches!(
        event,
        "push" | "workflow_run" | "deployment_status" | "issues" | "pull_request"
    ) {
        return Ok(Normalized::Ignored(format!(
            "GitHub `{event}` events are not used for DORA metrics"
        )));
    }
    let repo = text(payload, "/repository/full_name")?;
    let services = services_of(dora, repo);
    match event {
        "push" => push(payload, repo, &services),
        "workflow_run" => workflow_run(payload, repo, &services),
        "deployment_status" => deployment_status(payload, repo, &services),
        "issues" => issues(payload, repo, &services, &dora.incident_label),
        _ => pull_request(payload, repo, &services),
    }
}

fn push(payload: &Value, repo: &str, services: &[&DoraService]) -> Normalize {
    let git_ref = text(payload, "/ref")?;
    if payload["deleted"].as_bool() == Some(true) {
        return Ok(Normalized::Ignored("a branch deletion".into()));
    }
    let head = text(payload, "/after")?.to_string();
    let at = time(payload, "/repository/pushed_at")
        .or_else(|_| time(payload, "/head_commit/timestamp"))?;
    let commits = field(payload, "/commits")?
        .as_array()
        .ok_or_else(|| Malformed("`commits` is not a list".into()))?
        .iter()
        .map(|c| {
            Ok(Commit {
                sha: text(c, "/id")?.to_string(),
                at: time(c, "/timestamp")?,
            })
        })
        .collect::<Result<Vec<_>, Malformed>>()?;
    let event = DoraEvent::Push {
        at,
        head: head.clone(),
        commits,
    };
    let key = format!("push:{head}");
    let mut out: Vec<ServiceEvent> = services
        .iter()
        .filter(|s| git_ref == format!("refs/heads/{}", s.branch))
        .map(|s| per_service(s, &key, &event))
        .collect();
    if services.is_empty() {
        let default = payload["repository"]["default_branch"]
            .as_str()
            .unwrap_or("main");
        if git_ref == format!("refs/heads/{default}") {
            out.push(ServiceEvent {
                service: unassigned(repo),
                key,
                event,
                origin: Some(Origin::Branch {
                    branch: default.to_string(),
                }),
            });
        }
    }
    Ok(events(out, || {
        format!("`{git_ref}` is not a service's branch")
    }))
}

fn workflow_run(payload: &Value, repo: &str, services: &[&DoraService]) -> Normalize {
    if payload["action"] != "completed" {
        return Ok(Normalized::Ignored("workflow run not completed yet".into()));
    }
    let run = field(payload, "/workflow_run")?;
    let outcome = match run["conclusion"].as_str() {
        Some("success") => Outcome::Success,
        Some("failure" | "timed_out") => Outcome::Failure,
        other => {
            return Ok(Normalized::Ignored(format!(
                "conclusion {} is neither a success nor a failure",
                other.unwrap_or("null")
            )))
        }
    };
    let path = run["path"].as_str().unwrap_or_default();
    // Reusable workflows report `path@ref`.
    let path = path.split('@').next().unwrap_or(path);
    let name = run["name"].as_str().unwrap_or_default();
    let branch = run["head_branch"].as_str().unwrap_or_default();
    let event = DoraEvent::Deployment {
        at: time(run, "/updated_at")?,
        outcome,
        sha: Some(text(run, "/head_sha")?.to_string()),
    };
    let key = format!(
        "deploy:workflow_run:{}:{}",
        id(run, "/id")?,
        run["run_attempt"].as_u64().unwrap_or(1)
    );
    let origin = Origin::WorkflowRun {
        path: path.to_string(),
        name: name.to_string(),
        branch: branch.to_string(),
    };
    let what = format!(
        "workflow `{}` on `{branch}` is not a service's deploy workflow",
        if path.is_empty() { name } else { path }
    );
    // A repository no service names: its CI runs are not kept (an organization hook
    // would store every repository's).
    if services.is_empty() {
        return Ok(Normalized::Ignored(what));
    }
    Ok(claimed(
        services.iter().copied(),
        origin,
        &key,
        event,
        &unassigned(repo),
        what,
    ))
}

fn deployment_status(payload: &Value, repo: &str, services: &[&DoraService]) -> Normalize {
    let status = field(payload, "/deployment_status")?;
    let outcome = match text(status, "/state")? {
        "success" => Outcome::Success,
        "failure" | "error" => Outcome::Failure,
        other => {
            return Ok(Normalized::Ignored(format!(
                "deployment state `{other}` is not final"
            )))
        }
    };
    let environment = text(status, "/environment")?;
    let event = DoraEvent::Deployment {
        at: time(status, "/created_at")?,
        outcome,
        sha: Some(text(payload, "/deployment/sha")?.to_string()),
    };
    let key = format!("deploy:deployment_status:{}", id(status, "/id")?);
    let what = format!("environment `{environment}` is not a service's");
    let origin = Origin::DeploymentStatus {
        environment: environment.to_string(),
    };
    Ok(claimed(
        services.iter().copied(),
        origin,
        &key,
        event,
        &unassigned(repo),
        what,
    ))
}

fn issues(payload: &Value, repo: &str, services: &[&DoraService], label: &str) -> Normalize {
    let action = text(payload, "/action")?;
    let issue = field(payload, "/issue")?;
    let labelled = issue["labels"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x["name"].as_str() == Some(label)))
        || payload["label"]["name"].as_str() == Some(label);
    if !labelled {
        return Ok(Normalized::Ignored(format!(
            "the issue is not labelled `{label}`"
        )));
    }
    let number = id(issue, "/id")?;
    let (event, key) = match action {
        "opened" | "labeled" | "reopened" => (
            DoraEvent::IncidentOpened {
                at: time(issue, "/created_at")?,
                issue: number,
                source: IncidentSource::GitHub,
            },
            format!("incident:{number}:opened"),
        ),
        "closed" => (
            DoraEvent::IncidentClosed {
                at: time(issue, "/closed_at")?,
                issue: number,
                source: IncidentSource::GitHub,
            },
            format!("incident:{number}:closed"),
        ),
        other => {
            return Ok(Normalized::Ignored(format!(
                "issue action `{other}` does not open or close an incident"
            )))
        }
    };
    Ok(Normalized::Events(for_services(
        services, repo, key, event, None,
    )))
}

fn pull_request(payload: &Value, repo: &str, services: &[&DoraService]) -> Normalize {
    let pr = field(payload, "/pull_request")?;
    if payload["action"] != "closed" || pr["merged"].as_bool() != Some(true) {
        return Ok(Normalized::Ignored(
            "only merged pull requests matter".into(),
        ));
    }
    let base = text(pr, "/base/ref")?;
    let event = DoraEvent::MergedPullRequest {
        at: time(pr, "/merged_at")?,
        merge_commit: text(pr, "/merge_commit_sha")?.to_string(),
        started: time(pr, "/created_at")?,
    };
    let key = format!("pr:{}", id(pr, "/id")?);
    let on_branch: Vec<&DoraService> = services
        .iter()
        .copied()
        .filter(|s| s.branch == base)
        .collect();
    if on_branch.is_empty() && !services.is_empty() {
        return Ok(Normalized::Ignored(format!(
            "`{base}` is not a service's branch"
        )));
    }
    let origin = Origin::Branch {
        branch: base.to_string(),
    };
    Ok(Normalized::Events(for_services(
        &on_branch,
        repo,
        key,
        event,
        Some(origin),
    )))
}

/// The event as stored for one configured service.
fn per_service(s: &DoraService, key: &str, event: &DoraEvent) -> ServiceEvent {
    ServiceEvent {
        service: s.name.clone(),
        key: key.to_string(),
        event: event.clone(),
        origin: None,
    }
}

/// A deployment for every service that claims it (for an Argo Rollouts service taking
/// its commits from this Application or Flux object, the synced revision), or, when
/// none does, kept under `partition` with its origin, so that a service configured later
/// counts it (`what` says why nobody claimed it).
fn claimed<'a>(
    services: impl IntoIterator<Item = &'a DoraService>,
    origin: Origin,
    key: &str,
    event: DoraEvent,
    partition: &str,
    what: String,
) -> Normalized {
    let mut out = Vec::new();
    let mut claimed = false;
    for s in services {
        match s.claims(&origin) {
            Claim::Deployment => {
                claimed = true;
                out.push(per_service(s, key, &event));
            }
            Claim::Revision => {
                claimed = true;
                if let Some(revision) = event.as_revision() {
                    out.push(per_service(s, &format!("revision:{key}"), &revision));
                }
            }
            Claim::None => {}
        }
    }
    if claimed {
        return events(out, || format!("{what}: nothing to count"));
    }
    let reason = format!(
        "{what}; kept under `{partition}`, so that a service configured for it later counts it"
    );
    Normalized::Unassigned(
        vec![ServiceEvent {
            service: partition.to_string(),
            key: key.to_string(),
            event,
            origin: Some(origin),
        }],
        reason,
    )
}

/// The event for each of the repository's services, or, when it has none, kept under
/// `unassigned:<repo>` with `origin` (a pull request's base branch).
fn for_services(
    services: &[&DoraService],
    repo: &str,
    key: String,
    event: DoraEvent,
    origin: Option<Origin>,
) -> Vec<ServiceEvent> {
    if services.is_empty() {
        return vec![ServiceEvent {
            service: unassigned(repo),
            key,
            event,
            origin,
        }];
    }
    services
        .iter()
        .map(|s| per_service(s, &key, &event))
        .collect()
}

/// The commit of a Flux revision: `main@sha1:<sha>`, `main/<sha>` or `<sha>`.
fn flux_sha(revision: &str) -> Option<String> {
    let tail = revision
        .rsplit_once("sha1:")
        .map(|(_, s)| s)
        .or_else(|| revision.rsplit_once('/').map(|(_, s)| s))
        .unwrap_or(revision);
    (tail.len() == 40 && tail.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| tail.to_ascii_lowercase())
}

/// A Flux notification-controller event (generic-hmac provider).
pub fn flux(payload: &Value, dora: &DoraConfig) -> Normalize {
    let obj = field(payload, "/involvedObject")?;
    let object = format!(
        "{}/{}/{}",
        text(obj, "/kind")?,
        text(obj, "/namespace")?,
        text(obj, "/name")?
    );
    let severity = text(payload, "/severity")?;
    let reason = payload["reason"].as_str().unwrap_or_default();
    let Some(revision) = payload["metadata"]["revision"]
        .as_str()
        .filter(|r| !r.is_empty())
    else {
        return Ok(Normalized::Ignored(
            "a Flux event without a revision".into(),
        ));
    };
    let outcome = match severity {
        "info" if reason.ends_with("Succeeded") => Outcome::Success,
        "error" => Outcome::Failure,
        _ => {
            return Ok(Normalized::Ignored(format!(
                "Flux `{severity}` event `{reason}` is not a finished deployment"
            )))
        }
    };
    let event = DoraEvent::Deployment {
        at: time(payload, "/timestamp")?,
        outcome,
        sha: flux_sha(revision),
    };
    let key = format!("deploy:flux:{object}:{revision}:{severity}");
    let what = format!("`{object}` is not a service's Flux object");
    Ok(claimed(
        &dora.services,
        Origin::Flux { object },
        &key,
        event,
        &unassigned("flux"),
        what,
    ))
}

/// The first instant a Flagger timestamp may name: milliseconds before this are not a
/// Flagger event's (seconds read as milliseconds land in January 1970).
const FLAGGER_EPOCH_MS: i64 = 946_684_800_000; // 2000-01-01T00:00:00Z

/// The messages Flagger records when a canary's rollout ends (`pkg/controller/
/// scheduler.go`): "Promotion completed! Scaling down <name>.<namespace>", "Canary failed!
/// Scaling down <name>.<namespace>", and since v1.44 "Promotion of <name>.<namespace>
/// failed, primary not ready" (which is never followed by "Canary failed!"). The phase
/// sent with them depends on the version: up to v1.41 "Promotion completed!" comes with
/// `Finalising` (or `Progressing` when the analysis is skipped), from v1.42 with
/// `Succeeded`; so the message decides, not the phase. Flagger's event webhook also
/// sends every other event it records with the canary's current phase (`Succeeded`
/// again each interval while a canary is suspended, `Failed` with "Rolling back..."):
/// those are not deployments.
fn flagger_outcome(message: &str) -> Option<Outcome> {
    if message.starts_with("Promotion completed!") {
        Some(Outcome::Success)
    } else if message.starts_with("Canary failed!")
        || (message.starts_with("Promotion of ") && message.contains(" failed"))
    {
        Some(Outcome::Failure)
    } else {
        None
    }
}

/// A Flagger `event` webhook: `{"name","namespace","phase","checksum"?,"metadata":
/// {"eventMessage","eventType","timestamp"}}`, `timestamp` a string of milliseconds since
/// the epoch (Flagger's `CanaryWebhookPayload`). The deployment is dated by that
/// timestamp; its semantic key is the canary, phase, timestamp and checksum, so
/// Flagger's retry of the same post is stored once.
pub fn flagger(payload: &Value, dora: &DoraConfig) -> Normalize {
    let canary = format!(
        "{}/{}",
        text(payload, "/namespace")?,
        text(payload, "/name")?
    );
    let phase = text(payload, "/phase")?;
    let message = payload
        .pointer("/metadata/eventMessage")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(outcome) = flagger_outcome(message) else {
        return Ok(Normalized::Ignored(format!(
            "canary `{canary}` ({phase}): `{message}` is not the end of a rollout"
        )));
    };
    let millis = text(payload, "/metadata/timestamp")?;
    let at = millis
        .parse::<i64>()
        .ok()
        .filter(|ms| *ms >= FLAGGER_EPOCH_MS)
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .ok_or_else(|| {
            Malformed(format!(
                "`metadata.timestamp` is not milliseconds since the epoch (Flagger sends e.g. \"1795428000000\"): `{millis}`"
            ))
        })?;
    let event = DoraEvent::Deployment {
        at,
        outcome,
        sha: None,
    };
    let checksum = payload
        .get("checksum")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty());
    let key = match checksum {
        Some(c) => format!(
            "deploy:flagger:{canary}:{outcome:?}:{}:{c}",
            at.as_millisecond()
        ),
        None => format!(
            "deploy:flagger:{canary}:{outcome:?}:{}",
            at.as_millisecond()
        ),
    };
    let what = format!("canary `{canary}` is not a service's");
    Ok(claimed(
        &dora.services,
        Origin::Flagger { canary },
        &key,
        event,
        &unassigned("flagger"),
        what,
    ))
}

/// What Go's text/template writes for a field the object does not have: Argo's
/// notification templates render missing fields so.
const NO_VALUE: &str = "<no value>";

/// A template field, `None` when empty or not rendered (`<no value>`).
fn rendered<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != NO_VALUE)
}

fn rendered_text<'a>(v: &'a Value, pointer: &str) -> Result<&'a str, Malformed> {
    rendered(v, pointer).ok_or_else(|| {
        Malformed(format!(
            "`{}` is missing or was not rendered (`{NO_VALUE}`): check the template",
            pointer.trim_start_matches('/')
        ))
    })
}

/// A full commit sha (40 hex digits), lowercase.
fn full_sha(revision: &str) -> Option<String> {
    (revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| revision.to_ascii_lowercase())
}

/// How soon after its sync an Application's degradation is that sync's failure: later,
/// something else broke (a node, a dependency), not the deployment.
pub const DEGRADED_WITHIN: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// An Argo CD notification (the README's `argocd-notifications-cm` template):
/// `{"event":"deployed|sync-failed|health-degraded","app","project","repo","revision",
/// "phase","health","finished_at"}`. `deployed` (`on-deployed`: operation Succeeded and
/// health Healthy, once per revision) is a successful deployment; `sync-failed`, and
/// `health-degraded` arriving (`received`) within [`DEGRADED_WITHIN`] of a sync, are failed
/// ones; all are dated by the operation's `finishedAt`. The semantic key is the
/// application, revision and outcome, so Argo CD's resends, and a sync that fails and
/// then degrades, are stored once (a revision not rendered: its `finishedAt` instead).
/// Kept under `unassigned:argocd` when no service names the application.
pub fn argocd(payload: &Value, dora: &DoraConfig, received: Timestamp) -> Normalize {
    let word = text(payload, "/event")?;
    let app = rendered_text(payload, "/app")?;
    let project = rendered(payload, "/project").unwrap_or("default");
    let phase = rendered(payload, "/phase").unwrap_or("none");
    let outcome = match word {
        "deployed" if phase == "Succeeded" => Outcome::Success,
        "deployed" => {
            return Ok(Normalized::Ignored(format!(
                "`deployed` for `{project}/{app}` with operation phase `{phase}`, not Succeeded (check the on-deployed trigger)"
            )))
        }
        "sync-failed" => Outcome::Failure,
        "health-degraded" if matches!(phase, "Succeeded" | "Failed" | "Error") => {
            Outcome::Failure
        }
        "health-degraded" => {
            return Ok(Normalized::Ignored(format!(
                "`{project}/{app}` degraded with no finished sync (phase `{phase}`): not a deployment"
            )))
        }
        other => {
            return Ok(Normalized::Ignored(format!(
                "Argo CD event `{other}` is not deployed, sync-failed or health-degraded"
            )))
        }
    };
    let revision = rendered(payload, "/revision");
    let finished = rendered_text(payload, "/finished_at")?;
    let at = finished
        .parse::<Timestamp>()
        .map_err(|_| Malformed("`finished_at` is not an RFC 3339 time".into()))?;
    if word == "health-degraded" && received.duration_since(at) > DEGRADED_WITHIN {
        return Ok(Normalized::Ignored(format!(
            "`{project}/{app}` degraded more than an hour after its sync ({finished}): not a failed deployment"
        )));
    }
    let event = DoraEvent::Deployment {
        at,
        outcome,
        sha: revision.and_then(full_sha),
    };
    let key = format!(
        "deploy:argocd:{project}/{app}:{}:{outcome:?}",
        revision.unwrap_or(finished)
    );
    let what = format!("Application `{project}/{app}` is not a service's");
    let origin = Origin::Argocd {
        project: project.to_string(),
        app: app.to_string(),
    };
    Ok(claimed(
        &dora.services,
        origin,
        &key,
        event,
        &unassigned("argocd"),
        what,
    ))
}

/// The commit in an image's tag (`registry/app:3f2c1e0`, or `sha-3f2c1e0` as
/// docker/metadata-action tags it; 7 to 40 hex digits), lowercase.
pub fn image_tag_sha(image: &str) -> Option<String> {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    let (_, tag) = last.split_once(':')?;
    let tag = tag.strip_prefix("sha-").unwrap_or(tag);
    ((7..=40).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| tag.to_ascii_lowercase())
}

/// An Argo Rollouts notification (the README's template): `{"event":"completed|aborted|
/// analysis-failed","rollout","namespace","revision","phase","abort","message","image",
/// "at"?}`. The event word decides, not the phase: a notification may carry a stale
/// Rollout (argo-rollouts #3535). Dated by `at` (the template renders sprig's `now`),
/// else when it arrived (`received`). The semantic key is the Rollout, its revision
/// (`rollout.argoproj.io/revision`) and the outcome, so a notification sent twice, or an
/// analysis that fails and aborts the rollout (two notifications), is counted once. The image tag's commit is kept when it looks like one; the aggregator
/// uses it only for services with `image_tag = "sha"`.
pub fn argo_rollouts(payload: &Value, dora: &DoraConfig, received: Timestamp) -> Normalize {
    let word = text(payload, "/event")?;
    let rollout = format!(
        "{}/{}",
        rendered_text(payload, "/namespace")?,
        rendered_text(payload, "/rollout")?
    );
    let outcome = match word {
        "completed" => Outcome::Success,
        "aborted" | "analysis-failed" => Outcome::Failure,
        other => {
            return Ok(Normalized::Ignored(format!(
                "Argo Rollouts event `{other}` is not completed, aborted or analysis-failed"
            )))
        }
    };
    let revision = rendered_text(payload, "/revision")?;
    let at = match rendered(payload, "/at") {
        Some(t) => t
            .parse::<Timestamp>()
            .map_err(|_| Malformed("`at` is not an RFC 3339 time".into()))?,
        None => received,
    };
    let event = DoraEvent::Deployment {
        at,
        outcome,
        sha: rendered(payload, "/image").and_then(image_tag_sha),
    };
    let key = format!("deploy:argo-rollouts:{rollout}:{revision}:{outcome:?}");
    let what = format!("Rollout `{rollout}` is not a service's");
    Ok(claimed(
        &dora.services,
        Origin::ArgoRollouts { rollout },
        &key,
        event,
        &unassigned("argo-rollouts"),
        what,
    ))
}

/// A PagerDuty v3 webhook: `{"event":{"id","event_type","occurred_at","data":{"number",
/// "created_at","service":{"id"},"priority":{"summary"}|null}}}`. `incident.triggered`,
/// `incident.reopened` and `incident.priority_updated` open the incident (dated by its
/// `created_at`; one key, so they are stored once), `incident.resolved` closes it (dated
/// by `occurred_at`, keyed by the event id: a reopened incident resolved again closes
/// later). Mapped to the services whose `pagerduty_service` is the incident's service;
/// an opening below a service's `pagerduty_min_priority` is not counted (a priority
/// raised later opens it then). Incidents of other PagerDuty services are ignored.
pub fn pagerduty(payload: &Value, dora: &DoraConfig) -> Normalize {
    let event = field(payload, "/event")?;
    let kind = text(event, "/event_type")?;
    let opens = match kind {
        "incident.triggered" | "incident.reopened" | "incident.priority_updated" => true,
        "incident.resolved" => false,
        "pagey.ping" => return Ok(Normalized::Ignored("PagerDuty's ping".into())),
        other => {
            return Ok(Normalized::Ignored(format!(
                "PagerDuty `{other}` neither opens nor resolves an incident"
            )))
        }
    };
    let data = field(event, "/data")?;
    let number = id(data, "/number")?;
    let service_id = text(data, "/service/id")?;
    let priority = data.pointer("/priority/summary").and_then(Value::as_str);
    let services: Vec<&DoraService> = dora
        .services
        .iter()
        .filter(|s| s.pagerduty_service.as_deref() == Some(service_id))
        .collect();
    if services.is_empty() {
        return Ok(Normalized::Ignored(format!(
            "PagerDuty service `{service_id}` is not a service's pagerduty_service"
        )));
    }
    let (event_out, key, counted): (DoraEvent, String, Vec<&DoraService>) = if opens {
        let counted = services
            .iter()
            .copied()
            .filter(|s| priority_passes(s.pagerduty_min_priority.as_deref(), priority))
            .collect();
        (
            DoraEvent::IncidentOpened {
                at: time(data, "/created_at")?,
                issue: number,
                source: IncidentSource::PagerDuty,
            },
            format!("incident:pagerduty:{number}:opened"),
            counted,
        )
    } else {
        let event_id = text(event, "/id")?;
        (
            DoraEvent::IncidentClosed {
                at: time(event, "/occurred_at")?,
                issue: number,
                source: IncidentSource::PagerDuty,
            },
            format!("incident:pagerduty:{number}:resolved:{event_id}"),
            services,
        )
    };
    Ok(events(
        counted
            .iter()
            .map(|s| per_service(s, &key, &event_out))
            .collect(),
        || {
            format!(
                "incident #{number}'s priority {} is below the services' pagerduty_min_priority",
                priority.unwrap_or("(none)")
            )
        },
    ))
}

/// Whether an incident of `priority` counts for a service with `min` (`P2`: P1 and P2).
/// Without a minimum every incident counts; with one, an incident without a priority,
/// or of a priority not named `P<n>`, does not.
fn priority_passes(min: Option<&str>, priority: Option<&str>) -> bool {
    match (
        min.and_then(priority_rank),
        priority.and_then(priority_rank),
    ) {
        (None, _) => true,
        (Some(min), Some(p)) => p <= min,
        (Some(_), None) => false,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The message decides, whatever phase a Flagger version sends with it.
    #[test]
    fn flagger_rollout_ends() {
        assert_eq!(
            flagger_outcome("Promotion completed! Scaling down podinfo.test"),
            Some(Outcome::Success)
        );
        assert_eq!(
            flagger_outcome("Canary failed! Scaling down podinfo.test"),
            Some(Outcome::Failure)
        );
        assert_eq!(
            flagger_outcome("Promotion of podinfo.test failed, primary not ready"),
            Some(Outcome::Failure)
        );
        for other in [
            "skipping canary run as object is suspended",
            "Rolling back podinfo.test failed checks threshold reached 5",
            "Advance podinfo.test canary weight 10",
            "",
        ] {
            assert_eq!(flagger_outcome(other), None, "{other}");
        }
    }

    #[test]
    fn flux_revisions() {
        let sha = "a".repeat(40);
        assert_eq!(flux_sha(&format!("main@sha1:{sha}")), Some(sha.clone()));
        assert_eq!(flux_sha(&format!("main/{sha}")), Some(sha.clone()));
        assert_eq!(flux_sha("v1.2.3@sha256:abcd"), None);
    }

    // The public functions on the payload shapes the senders use: GitHub's (the sample
    // events in `events/` and `@octokit/webhooks-examples`), Flux's notification-controller
    // and Flagger's event webhook (milliseconds timestamps, as case 13 sends them).

    use serde_json::json;

    const FLEET_REPO: &str = "your-org/infra-fleet";
    const HEAD: &str = "9f2c1e0b7a6d5c4b3a2918f7e6d5c4b3a2918f7e";
    const FLUX_SHA: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";

    /// One service per deployment source, as `[[dora.service]]` entries configure them.
    fn config() -> DoraConfig {
        serde_json::from_value(json!({
            "webhook_secret": "test-secret",
            "service": [
                {"name": "fleet", "repo": FLEET_REPO, "deployments_from": "workflow_run",
                 "deploy_workflows": [".github/workflows/deploy.yml", "release"]},
                {"name": "hello", "repo": "Codertocat/Hello-World", "branch": "master",
                 "deployments_from": "deployment_status"},
                {"name": "apps", "repo": "your-org/apps", "deployments_from": "flux",
                 "flux_object": "Kustomization/flux-system/apps"},
                {"name": "podinfo", "repo": "your-org/podinfo", "deployments_from": "flagger",
                 "flagger_canary": "test/podinfo"}
            ]
        }))
        .expect("a DoraConfig")
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("a time")
    }

    fn stored(n: Normalize) -> Vec<ServiceEvent> {
        match n {
            Ok(Normalized::Events(events)) => events,
            other => panic!("expected events, got {other:?}"),
        }
    }

    fn ignored(n: Normalize) -> String {
        match n {
            Ok(Normalized::Ignored(reason)) => reason,
            other => panic!("expected an ignored payload, got {other:?}"),
        }
    }

    fn kept_events(n: Normalize) -> (Vec<ServiceEvent>, String) {
        match n {
            Ok(Normalized::Unassigned(events, reason)) => (events, reason),
            other => panic!("expected an unassigned deployment, got {other:?}"),
        }
    }

    fn kept(n: Normalize) -> String {
        kept_events(n).1
    }

    fn malformed(n: Normalize) -> String {
        match n {
            Err(Malformed(message)) => message,
            other => panic!("expected a malformed payload, got {other:?}"),
        }
    }

    /// `events/dora-github-push.json`'s body, the fields that matter: `pushed_at` in
    /// seconds since the epoch, as GitHub sends it on push events.
    fn push() -> Value {
        json!({
            "ref": "refs/heads/main",
            "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "after": HEAD,
            "created": true, "deleted": false, "forced": false,
            "repository": {"full_name": FLEET_REPO, "default_branch": "main",
                           "pushed_at": 1795420800, "created_at": 1557933565},
            "commits": [
                {"id": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d", "distinct": true,
                 "message": "Retry the drain on 429", "timestamp": "2026-11-23T07:10:00Z"},
                {"id": HEAD, "distinct": true, "message": "Bump the load harness",
                 "timestamp": "2026-11-23T07:40:00Z"}
            ],
            "head_commit": {"id": HEAD, "timestamp": "2026-11-23T07:40:00Z"}
        })
    }

    /// `events/dora-github-workflow-run.json`'s body, the fields that matter.
    fn workflow_run() -> Value {
        json!({
            "action": "completed",
            "repository": {"full_name": FLEET_REPO},
            "workflow_run": {
                "id": 11820000001_u64, "name": "deploy", "path": ".github/workflows/deploy.yml",
                "head_branch": "main", "head_sha": HEAD, "run_attempt": 1,
                "status": "completed", "conclusion": "success",
                "run_started_at": "2026-11-23T08:05:00Z", "updated_at": "2026-11-23T09:00:00Z"
            }
        })
    }

    /// `@octokit/webhooks-examples`' `deployment_status` (`created`, state `success`).
    fn deployment_status(state: &str, environment: &str) -> Value {
        json!({
            "action": "created",
            "repository": {"full_name": "Codertocat/Hello-World"},
            "deployment": {"id": 145988746, "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
                           "ref": "master", "environment": environment},
            "deployment_status": {"id": 209916254, "state": state, "environment": environment,
                                  "created_at": "2019-05-15T15:20:55Z"}
        })
    }

    /// `@octokit/webhooks-examples`' `issues` shape, labelled `labels`.
    fn issue(action: &str, labels: &[&str]) -> Value {
        let labels: Vec<Value> = labels.iter().map(|l| json!({"name": l})).collect();
        json!({
            "action": action,
            "repository": {"full_name": "Codertocat/Hello-World"},
            "issue": {"id": 444500041_u64, "number": 1, "state": "open", "labels": labels,
                      "created_at": "2019-05-15T15:20:18Z", "closed_at": null}
        })
    }

    /// A notification-controller event for the `apps` Kustomization.
    fn flux_event(severity: &str, reason: &str) -> Value {
        json!({
            "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": "apps",
                               "uid": "1", "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
            "severity": severity, "timestamp": "2026-11-23T08:00:00Z",
            "message": "Reconciliation finished in 1.2s", "reason": reason,
            "metadata": {"revision": format!("main@sha1:{FLUX_SHA}")},
            "reportingController": "kustomize-controller"
        })
    }

    /// Case 13's Flagger post (`tests/fixtures/cases/13-flagger-ms-timestamp`).
    fn flagger_event(phase: &str, message: &str) -> Value {
        json!({
            "name": "podinfo", "namespace": "test", "phase": phase,
            "metadata": {"eventMessage": message, "eventType": "Normal",
                         "timestamp": "1795428000000"}
        })
    }

    #[test]
    fn a_push_to_a_services_branch_is_its_commits() {
        let events = stored(github("push", &push(), &config()));
        assert_eq!(
            events,
            vec![ServiceEvent {
                service: "fleet".into(),
                key: format!("push:{HEAD}"),
                event: DoraEvent::Push {
                    // `repository.pushed_at`, seconds since the epoch.
                    at: ts("2026-11-23T08:00:00Z"),
                    head: HEAD.into(),
                    commits: vec![
                        Commit {
                            sha: "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d".into(),
                            at: ts("2026-11-23T07:10:00Z"),
                        },
                        Commit {
                            sha: HEAD.into(),
                            at: ts("2026-11-23T07:40:00Z"),
                        },
                    ],
                },
                origin: None,
            }]
        );
        // Without `pushed_at`, the head commit dates the push.
        let mut payload = push();
        payload["repository"]
            .as_object_mut()
            .map(|r| r.remove("pushed_at"));
        match &stored(github("push", &payload, &config()))[0].event {
            DoraEvent::Push { at, .. } => assert_eq!(*at, ts("2026-11-23T07:40:00Z")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pushes_elsewhere_are_ignored_or_kept_unassigned() {
        let mut feature = push();
        feature["ref"] = json!("refs/heads/feature");
        assert_eq!(
            ignored(github("push", &feature, &config())),
            "`refs/heads/feature` is not a service's branch"
        );
        let mut deletion = push();
        deletion["deleted"] = json!(true);
        assert_eq!(
            ignored(github("push", &deletion, &config())),
            "a branch deletion"
        );
        // A repository no service names: its default branch is kept for later.
        let mut other = push();
        other["repository"]["full_name"] = json!("your-org/unknown");
        let events = stored(github("push", &other, &config()));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].service, unassigned("your-org/unknown"));
        assert_eq!(events[0].key, format!("push:{HEAD}"));
        other["ref"] = json!("refs/heads/feature");
        assert!(matches!(
            github("push", &other, &config()),
            Ok(Normalized::Ignored(_))
        ));
    }

    #[test]
    fn a_malformed_push_says_what_is_wrong() {
        let mut no_head = push();
        no_head.as_object_mut().map(|p| p.remove("after"));
        assert_eq!(
            malformed(github("push", &no_head, &config())),
            "`after` is missing"
        );
        let mut commits = push();
        commits["commits"] = json!("two");
        assert_eq!(
            malformed(github("push", &commits, &config())),
            "`commits` is not a list"
        );
        let mut when = push();
        when["commits"][1]["timestamp"] = json!("yesterday");
        assert_eq!(
            malformed(github("push", &when, &config())),
            "`timestamp` is not an RFC 3339 time"
        );
        let mut repo = push();
        repo.as_object_mut().map(|p| p.remove("repository"));
        assert_eq!(
            malformed(github("push", &repo, &config())),
            "`repository.full_name` is missing"
        );
    }

    #[test]
    fn github_events_without_a_dora_meaning_are_ignored() {
        assert_eq!(
            ignored(github("star", &json!({"action": "created"}), &config())),
            "GitHub `star` events are not used for DORA metrics"
        );
        // Before the repository is read: a ping has none that matters.
        assert!(matches!(
            github("ping", &json!({}), &config()),
            Ok(Normalized::Ignored(_))
        ));
    }

    #[test]
    fn a_completed_deploy_workflow_run_is_a_deployment() {
        let events = stored(github("workflow_run", &workflow_run(), &config()));
        assert_eq!(
            events,
            vec![ServiceEvent {
                service: "fleet".into(),
                key: "deploy:workflow_run:11820000001:1".into(),
                event: DoraEvent::Deployment {
                    at: ts("2026-11-23T09:00:00Z"),
                    outcome: Outcome::Success,
                    sha: Some(HEAD.into()),
                },
                origin: None,
            }]
        );
        // A rerun is another deployment; failures and time-outs are failed ones.
        let mut rerun = workflow_run();
        rerun["workflow_run"]["run_attempt"] = json!(2);
        rerun["workflow_run"]["conclusion"] = json!("timed_out");
        let events = stored(github("workflow_run", &rerun, &config()));
        assert_eq!(events[0].key, "deploy:workflow_run:11820000001:2");
        assert!(matches!(
            events[0].event,
            DoraEvent::Deployment {
                outcome: Outcome::Failure,
                ..
            }
        ));
        // A reusable workflow's `path@ref`, and a workflow named rather than pathed.
        let mut reusable = workflow_run();
        reusable["workflow_run"]["path"] = json!(".github/workflows/deploy.yml@refs/heads/main");
        assert_eq!(
            stored(github("workflow_run", &reusable, &config())).len(),
            1
        );
        let mut named = workflow_run();
        named["workflow_run"]["path"] = json!(".github/workflows/other.yml");
        named["workflow_run"]["name"] = json!("release");
        assert_eq!(stored(github("workflow_run", &named, &config())).len(), 1);
    }

    #[test]
    fn other_workflow_runs_are_ignored() {
        let mut running = workflow_run();
        running["action"] = json!("in_progress");
        assert_eq!(
            ignored(github("workflow_run", &running, &config())),
            "workflow run not completed yet"
        );
        let mut cancelled = workflow_run();
        cancelled["workflow_run"]["conclusion"] = json!("cancelled");
        assert_eq!(
            ignored(github("workflow_run", &cancelled, &config())),
            "conclusion cancelled is neither a success nor a failure"
        );
        let mut ci = workflow_run();
        ci["workflow_run"]["path"] = json!(".github/workflows/ci.yml");
        ci["workflow_run"]["name"] = json!("ci");
        // Of a configured repository: kept unassigned (a service may claim it later).
        assert_eq!(
            kept(github("workflow_run", &ci, &config())),
            "workflow `.github/workflows/ci.yml` on `main` is not a service's deploy workflow; kept under `unassigned:your-org/infra-fleet`, so that a service configured for it later counts it"
        );
        let mut branch = workflow_run();
        branch["workflow_run"]["head_branch"] = json!("feature");
        assert!(matches!(
            github("workflow_run", &branch, &config()),
            Ok(Normalized::Unassigned(..))
        ));
        // Of a repository no service names: not kept.
        let mut foreign = workflow_run();
        foreign["repository"]["full_name"] = json!("your-org/unknown");
        assert!(ignored(github("workflow_run", &foreign, &config())).contains("deploy workflow"));
        let mut no_id = workflow_run();
        no_id["workflow_run"]["id"] = json!("11820000001");
        assert_eq!(
            malformed(github("workflow_run", &no_id, &config())),
            "`id` is not a number"
        );
    }

    #[test]
    fn a_final_deployment_status_is_a_deployment() {
        let events = stored(github(
            "deployment_status",
            &deployment_status("success", "production"),
            &config(),
        ));
        assert_eq!(
            events,
            vec![ServiceEvent {
                service: "hello".into(),
                key: "deploy:deployment_status:209916254".into(),
                event: DoraEvent::Deployment {
                    at: ts("2019-05-15T15:20:55Z"),
                    outcome: Outcome::Success,
                    sha: Some("f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into()),
                },
                origin: None,
            }]
        );
        for failed in ["failure", "error"] {
            let events = stored(github(
                "deployment_status",
                &deployment_status(failed, "production"),
                &config(),
            ));
            assert!(
                matches!(
                    events[0].event,
                    DoraEvent::Deployment {
                        outcome: Outcome::Failure,
                        ..
                    }
                ),
                "{failed}"
            );
        }
        // A repository no service names keeps it unassigned.
        let mut other = deployment_status("success", "production");
        other["repository"]["full_name"] = json!("your-org/unknown");
        let (events, _) = kept_events(github("deployment_status", &other, &config()));
        assert_eq!(events[0].service, unassigned("your-org/unknown"));
    }

    #[test]
    fn unfinished_or_foreign_deployment_statuses_are_ignored() {
        // The example's other shape: `in_progress` to `github-pages`.
        assert_eq!(
            ignored(github(
                "deployment_status",
                &deployment_status("in_progress", "github-pages"),
                &config()
            )),
            "deployment state `in_progress` is not final"
        );
        assert!(kept(github(
            "deployment_status",
            &deployment_status("success", "staging"),
            &config()
        ))
        .starts_with("environment `staging` is not a service's; kept under `unassigned:codertocat/hello-world`"));
        let mut no_sha = deployment_status("success", "production");
        no_sha["deployment"]
            .as_object_mut()
            .map(|d| d.remove("sha"));
        assert_eq!(
            malformed(github("deployment_status", &no_sha, &config())),
            "`deployment.sha` is missing"
        );
    }

    #[test]
    fn labelled_issues_open_and_close_incidents() {
        let opened = stored(github("issues", &issue("opened", &["incident"]), &config()));
        assert_eq!(
            opened,
            vec![ServiceEvent {
                service: "hello".into(),
                key: "incident:444500041:opened".into(),
                event: DoraEvent::IncidentOpened {
                    at: ts("2019-05-15T15:20:18Z"),
                    issue: 444500041,
                    source: IncidentSource::GitHub,
                },
                origin: None,
            }]
        );
        // Labelled afterwards: the label comes with the event; reopened opens again.
        let mut labeled = issue("labeled", &["bug"]);
        labeled["label"] = json!({"name": "incident"});
        assert_eq!(
            stored(github("issues", &labeled, &config()))[0].key,
            "incident:444500041:opened"
        );
        assert_eq!(
            stored(github(
                "issues",
                &issue("reopened", &["incident"]),
                &config()
            ))[0]
                .key,
            "incident:444500041:opened"
        );
        let mut closed = issue("closed", &["bug", "incident"]);
        closed["issue"]["closed_at"] = json!("2019-05-15T17:00:00Z");
        assert_eq!(
            stored(github("issues", &closed, &config()))[0].event,
            DoraEvent::IncidentClosed {
                at: ts("2019-05-15T17:00:00Z"),
                issue: 444500041,
                source: IncidentSource::GitHub,
            }
        );
    }

    #[test]
    fn other_issues_are_ignored_or_malformed() {
        // The examples' own label is `bug`.
        assert_eq!(
            ignored(github("issues", &issue("opened", &["bug"]), &config())),
            "the issue is not labelled `incident`"
        );
        assert_eq!(
            ignored(github("issues", &issue("edited", &["incident"]), &config())),
            "issue action `edited` does not open or close an incident"
        );
        assert_eq!(
            malformed(github("issues", &issue("closed", &["incident"]), &config())),
            "`closed_at` is missing"
        );
    }

    #[test]
    fn merged_pull_requests_only() {
        let pr = |action: &str, merged: bool, base: &str| {
            json!({
                "action": action,
                "repository": {"full_name": FLEET_REPO},
                "pull_request": {"id": 279147437, "merged": merged, "base": {"ref": base},
                                 "created_at": "2026-11-22T16:00:00Z",
                                 "merged_at": "2026-11-23T07:40:00Z",
                                 "merge_commit_sha": HEAD}
            })
        };
        assert_eq!(
            stored(github(
                "pull_request",
                &pr("closed", true, "main"),
                &config()
            ))[0]
                .event,
            DoraEvent::MergedPullRequest {
                at: ts("2026-11-23T07:40:00Z"),
                merge_commit: HEAD.into(),
                started: ts("2026-11-22T16:00:00Z"),
            }
        );
        assert_eq!(
            ignored(github(
                "pull_request",
                &pr("closed", false, "main"),
                &config()
            )),
            "only merged pull requests matter"
        );
        assert_eq!(
            ignored(github(
                "pull_request",
                &pr("closed", true, "develop"),
                &config()
            )),
            "`develop` is not a service's branch"
        );
    }

    #[test]
    fn a_flux_reconciliation_is_a_deployment_of_its_revision() {
        let events = stored(flux(
            &flux_event("info", "ReconciliationSucceeded"),
            &config(),
        ));
        assert_eq!(
            events,
            vec![ServiceEvent {
                service: "apps".into(),
                key: format!(
                    "deploy:flux:Kustomization/flux-system/apps:main@sha1:{FLUX_SHA}:info"
                ),
                event: DoraEvent::Deployment {
                    at: ts("2026-11-23T08:00:00Z"),
                    outcome: Outcome::Success,
                    sha: Some(FLUX_SHA.into()),
                },
                origin: None,
            }]
        );
        let failed = stored(flux(&flux_event("error", "HealthCheckFailed"), &config()));
        assert!(matches!(
            failed[0].event,
            DoraEvent::Deployment {
                outcome: Outcome::Failure,
                ..
            }
        ));
        // The object's name is matched whatever its case; an OCI digest names no commit.
        let mut oci = flux_event("info", "ReconciliationSucceeded");
        oci["involvedObject"]["kind"] = json!("kustomization");
        oci["metadata"]["revision"] = json!("v1.2.3@sha256:abcd");
        match &stored(flux(&oci, &config()))[0].event {
            DoraEvent::Deployment { sha, .. } => assert_eq!(*sha, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_flux_events_are_ignored_or_malformed() {
        assert_eq!(
            ignored(flux(&flux_event("info", "Progressing"), &config())),
            "Flux `info` event `Progressing` is not a finished deployment"
        );
        let mut no_revision = flux_event("info", "ReconciliationSucceeded");
        no_revision["metadata"] = json!({});
        assert_eq!(
            ignored(flux(&no_revision, &config())),
            "a Flux event without a revision"
        );
        let mut other = flux_event("info", "ReconciliationSucceeded");
        other["involvedObject"]["name"] = json!("infra");
        assert!(kept(flux(&other, &config()))
            .starts_with("`Kustomization/flux-system/infra` is not a service's Flux object; kept under `unassigned:flux`"));
        let mut no_object = flux_event("info", "ReconciliationSucceeded");
        no_object
            .as_object_mut()
            .map(|e| e.remove("involvedObject"));
        assert_eq!(
            malformed(flux(&no_object, &config())),
            "`involvedObject` is missing"
        );
    }

    #[test]
    fn a_flagger_promotion_is_dated_by_its_millisecond_timestamp() {
        let promoted = flagger_event(
            "Succeeded",
            "Promotion completed! Scaling down podinfo.test",
        );
        let events = stored(flagger(&promoted, &config()));
        assert_eq!(
            events,
            vec![ServiceEvent {
                service: "podinfo".into(),
                key: "deploy:flagger:test/podinfo:Success:1795428000000".into(),
                event: DoraEvent::Deployment {
                    at: ts("2026-11-23T10:00:00Z"),
                    outcome: Outcome::Success,
                    sha: None,
                },
                origin: None,
            }]
        );
        // Flagger up to v1.41 sends the promotion with `Finalising`: the same key.
        let finalising = flagger_event(
            "Finalising",
            "Promotion completed! Scaling down podinfo.test",
        );
        assert_eq!(
            stored(flagger(&finalising, &config()))[0].key,
            events[0].key
        );
        // A checksum tells rollouts of the same instant apart.
        let mut checksum = promoted.clone();
        checksum["checksum"] = json!("6d5f4c");
        assert_eq!(
            stored(flagger(&checksum, &config()))[0].key,
            "deploy:flagger:test/podinfo:Success:1795428000000:6d5f4c"
        );
        let failed = flagger_event("Failed", "Canary failed! Scaling down podinfo.test");
        assert!(matches!(
            stored(flagger(&failed, &config()))[0].event,
            DoraEvent::Deployment {
                outcome: Outcome::Failure,
                ..
            }
        ));
    }

    #[test]
    fn other_flagger_events_are_ignored_and_bad_timestamps_refused() {
        // Suspended: `Succeeded` again each interval, with another message.
        let suspended = flagger_event("Succeeded", "skipping canary run as object is suspended");
        assert_eq!(
            ignored(flagger(&suspended, &config())),
            "canary `test/podinfo` (Succeeded): `skipping canary run as object is suspended` is not the end of a rollout"
        );
        let mut elsewhere = flagger_event(
            "Succeeded",
            "Promotion completed! Scaling down podinfo.prod",
        );
        elsewhere["namespace"] = json!("prod");
        assert!(kept(flagger(&elsewhere, &config())).starts_with(
            "canary `prod/podinfo` is not a service's; kept under `unassigned:flagger`"
        ));
        // Seconds read as milliseconds, words, a number instead of Flagger's string.
        for bad in [
            json!("1795428000"),
            json!("yesterday"),
            json!(1795428000000_i64),
        ] {
            let mut event = flagger_event("Succeeded", "Promotion completed!");
            event["metadata"]["timestamp"] = bad.clone();
            let message = malformed(flagger(&event, &config()));
            assert!(message.contains("metadata.timestamp"), "{bad}: {message}");
        }
        let mut missing = flagger_event("Succeeded", "Promotion completed!");
        missing["metadata"]
            .as_object_mut()
            .map(|m| m.remove("timestamp"));
        assert_eq!(
            malformed(flagger(&missing, &config())),
            "`metadata.timestamp` is missing"
        );
    }

    // Argo CD, Argo Rollouts and PagerDuty: the bodies the README's templates render for
    // real objects, and PagerDuty's v3 example.

    /// When the notifications arrive: minutes after the syncs they report.
    fn received() -> Timestamp {
        ts("2026-11-23T09:05:00Z")
    }

    fn argo_config() -> DoraConfig {
        serde_json::from_value(json!({
            "webhook_secret": "s", "argocd_token": "t", "pagerduty_secret": "p",
            "service": [
                {"name": "shop", "repo": "your-org/shop", "deployments_from": "argocd",
                 "argocd_app": "shop", "pagerduty_service": "PF9KMXH",
                 "pagerduty_min_priority": "P2"},
                {"name": "api", "repo": "your-org/api", "deployments_from": "argo_rollouts",
                 "argo_rollout": "prod/api", "argocd_app": "platform/api", "image_tag": "sha"}
            ]
        }))
        .expect("a DoraConfig")
    }

    /// `argocd-notifications-cm`'s template rendered for a synced, healthy Application.
    fn argocd_body(word: &str, app: &str, phase: &str) -> Value {
        json!({"event": word, "app": app, "project": "default",
               "repo": "https://github.com/your-org/shop.git",
               "revision": HEAD, "phase": phase, "health": "Healthy",
               "finished_at": "2026-11-23T09:00:00Z"})
    }

    #[test]
    fn argocd_deployments() {
        let events = stored(argocd(
            &argocd_body("deployed", "shop", "Succeeded"),
            &argo_config(),
            received(),
        ));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].service, "shop");
        assert_eq!(
            events[0].key,
            format!("deploy:argocd:default/shop:{HEAD}:Success")
        );
        assert_eq!(
            events[0].event,
            DoraEvent::Deployment {
                at: ts("2026-11-23T09:00:00Z"),
                outcome: Outcome::Success,
                sha: Some(HEAD.into())
            }
        );
        let failed = stored(argocd(
            &argocd_body("sync-failed", "shop", "Failed"),
            &argo_config(),
            received(),
        ));
        assert!(matches!(
            failed[0].event,
            DoraEvent::Deployment {
                outcome: Outcome::Failure,
                ..
            }
        ));
        // Degraded soon after a successful sync: a failure, the same as a failed sync of
        // that revision (one failed deployment, however many notifications).
        let degraded = stored(argocd(
            &argocd_body("health-degraded", "shop", "Succeeded"),
            &argo_config(),
            received(),
        ));
        assert_eq!(degraded[0].key, failed[0].key);
        assert!(degraded[0].key.ends_with(":Failure"));
        // Degraded days later: something else broke, not the deployment.
        assert!(ignored(argocd(
            &argocd_body("health-degraded", "shop", "Succeeded"),
            &argo_config(),
            ts("2026-11-26T09:00:00Z"),
        ))
        .contains("more than an hour"));
        // Degraded while a sync runs (no finishedAt yet): not a deployment's end.
        assert!(ignored(argocd(
            &argocd_body("health-degraded", "shop", "Running"),
            &argo_config(),
            received(),
        ))
        .contains("Running"));
        // A revision not rendered (a multi-source application): each sync keyed by its
        // finishedAt, not all of them one.
        let mut multi = argocd_body("deployed", "shop", "Succeeded");
        multi["revision"] = json!("<no value>");
        let first = stored(argocd(&multi, &argo_config(), received()));
        multi["finished_at"] = json!("2026-11-23T09:02:00Z");
        let second = stored(argocd(&multi, &argo_config(), received()));
        assert_ne!(first[0].key, second[0].key);
        // Missing fields render `<no value>`; a Helm chart's revision is no commit.
        let mut helm = argocd_body("deployed", "shop", "Succeeded");
        helm["revision"] = json!("1.4.2");
        assert!(matches!(
            &stored(argocd(&helm, &argo_config(), received()))[0].event,
            DoraEvent::Deployment { sha: None, .. }
        ));
        let mut unrendered = argocd_body("deployed", "shop", "Succeeded");
        unrendered["finished_at"] = json!("<no value>");
        assert!(malformed(argocd(&unrendered, &argo_config(), received())).contains("finished_at"));
        assert!(ignored(argocd(
            &argocd_body("deployed", "shop", "Running"),
            &argo_config(),
            received()
        ))
        .contains("Running"));
        assert!(ignored(argocd(
            &argocd_body("created", "shop", "Succeeded"),
            &argo_config(),
            received()
        ))
        .contains("created"));
        // The Application that syncs a Rollout gives that service a revision.
        let mut api = argocd_body("deployed", "api", "Succeeded");
        api["project"] = json!("platform");
        let events = stored(argocd(&api, &argo_config(), received()));
        assert_eq!(events[0].service, "api");
        assert!(matches!(events[0].event, DoraEvent::Revision { .. }));
        // An application nobody claims, of a configured repository: kept, 202.
        match argocd(
            &argocd_body("deployed", "other", "Succeeded"),
            &argo_config(),
            received(),
        ) {
            Ok(Normalized::Unassigned(events, reason)) => {
                assert_eq!(events[0].service, "unassigned:argocd");
                assert!(events[0].origin.is_some());
                assert!(reason.contains("unassigned:argocd"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn argo_rollouts_deployments() {
        let body = |word: &str, phase: &str| {
            json!({"event": word, "rollout": "api", "namespace": "prod", "revision": "7",
                   "phase": phase, "abort": "false", "message": "",
                   "image": "ghcr.io/your-org/api:9f2c1e0", "at": "2026-11-23T10:00:00Z"})
        };
        let events = stored(argo_rollouts(
            &body("completed", "Healthy"),
            &argo_config(),
            ts("2026-11-23T10:00:05Z"),
        ));
        assert_eq!(events[0].key, "deploy:argo-rollouts:prod/api:7:Success");
        assert_eq!(
            events[0].event,
            DoraEvent::Deployment {
                at: ts("2026-11-23T10:00:00Z"),
                outcome: Outcome::Success,
                sha: Some("9f2c1e0".into())
            }
        );
        // A stale object: the event word decides, not the phase.
        let aborted = stored(argo_rollouts(
            &body("aborted", "Paused"),
            &argo_config(),
            ts("2026-11-23T10:00:05Z"),
        ));
        assert!(matches!(
            aborted[0].event,
            DoraEvent::Deployment {
                outcome: Outcome::Failure,
                ..
            }
        ));
        // Without `at`, dated on arrival. A failed analysis also aborts the rollout: the
        // two notifications are one failed deployment.
        let mut undated = body("analysis-failed", "Degraded");
        undated.as_object_mut().map(|o| o.remove("at"));
        assert_eq!(
            stored(argo_rollouts(
                &undated,
                &argo_config(),
                ts("2026-11-23T10:07:00Z")
            ))[0]
                .key,
            aborted[0].key
        );
        let events = stored(argo_rollouts(
            &undated,
            &argo_config(),
            ts("2026-11-23T10:07:00Z"),
        ));
        assert_eq!(events[0].event.at(), ts("2026-11-23T10:07:00Z"));
        let mut no_revision = body("completed", "Healthy");
        no_revision["revision"] = json!("<no value>");
        assert!(malformed(argo_rollouts(
            &no_revision,
            &argo_config(),
            ts("2026-11-23T10:00:00Z")
        ))
        .contains("revision"));
        assert!(ignored(argo_rollouts(
            &body("paused", "Paused"),
            &argo_config(),
            ts("2026-11-23T10:00:00Z")
        ))
        .contains("paused"));
        assert_eq!(
            image_tag_sha("registry:5000/api:ABCDEF0@sha256:00"),
            Some("abcdef0".into())
        );
        assert_eq!(image_tag_sha("api:v1.2.3"), None);
        assert_eq!(
            image_tag_sha("ghcr.io/o/api:sha-9f2c1e0"),
            Some("9f2c1e0".into())
        );
        assert_eq!(image_tag_sha("registry:5000/api"), None);
    }

    /// PagerDuty's v3 `incident.triggered` example (developer docs, "Webhooks v3
    /// Overview"), its service and priority set to the config's.
    fn pagerduty_event(kind: &str, priority: Option<&str>) -> Value {
        json!({"event": {
            "id": "01DEN2SFUXJCW4VOBEQW3OGQ3B", "event_type": kind, "resource_type": "incident",
            "occurred_at": "2026-11-23T11:45:22.169Z",
            "agent": {"html_url": "https://acme.pagerduty.com/users/PLH1HKV", "id": "PLH1HKV",
                      "self": "https://api.pagerduty.com/users/PLH1HKV", "summary": "Tenex Engineer",
                      "type": "user_reference"},
            "client": null,
            "data": {"id": "PGR0VU2", "type": "incident", "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                     "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2", "number": 2,
                     "status": "triggered", "incident_key": "d3640fbd41094207a1c11e58e46b1662",
                     "created_at": "2026-11-23T10:45:22Z", "title": "A little bump in the road",
                     "service": {"html_url": "https://acme.pagerduty.com/services/PF9KMXH", "id": "PF9KMXH",
                                 "self": "https://api.pagerduty.com/services/PF9KMXH", "summary": "API Service",
                                 "type": "service_reference"},
                     "assignees": [], "escalation_policy": null, "teams": [],
                     "priority": priority.map(|p| json!({"id": "PSO75BM", "summary": p, "type": "priority_reference"})),
                     "urgency": "high", "conference_bridge": null, "resolve_reason": null}
        }})
    }

    #[test]
    fn pagerduty_incidents() {
        let opened = stored(pagerduty(
            &pagerduty_event("incident.triggered", Some("P1")),
            &argo_config(),
        ));
        assert_eq!(opened[0].service, "shop");
        assert_eq!(opened[0].key, "incident:pagerduty:2:opened");
        assert_eq!(
            opened[0].event,
            DoraEvent::IncidentOpened {
                at: ts("2026-11-23T10:45:22Z"),
                issue: 2,
                source: IncidentSource::PagerDuty
            }
        );
        // Below the service's minimum, or without a priority: not counted until raised.
        assert!(ignored(pagerduty(
            &pagerduty_event("incident.triggered", Some("P3")),
            &argo_config()
        ))
        .contains("P3"));
        assert!(ignored(pagerduty(
            &pagerduty_event("incident.triggered", None),
            &argo_config()
        ))
        .contains("(none)"));
        let raised = stored(pagerduty(
            &pagerduty_event("incident.priority_updated", Some("P2")),
            &argo_config(),
        ));
        assert_eq!(raised[0].key, "incident:pagerduty:2:opened");
        let resolved = stored(pagerduty(
            &pagerduty_event("incident.resolved", Some("P3")),
            &argo_config(),
        ));
        assert_eq!(
            resolved[0].key,
            "incident:pagerduty:2:resolved:01DEN2SFUXJCW4VOBEQW3OGQ3B"
        );
        assert_eq!(
            resolved[0].event.at(),
            "2026-11-23T11:45:22.169Z".parse::<Timestamp>().expect("t")
        );
        assert!(ignored(pagerduty(
            &pagerduty_event("incident.acknowledged", Some("P1")),
            &argo_config()
        ))
        .contains("acknowledged"));
        let mut other = pagerduty_event("incident.triggered", Some("P1"));
        other["event"]["data"]["service"]["id"] = json!("PXXXXXX");
        assert!(ignored(pagerduty(&other, &argo_config())).contains("PXXXXXX"));
        let mut broken = pagerduty_event("incident.triggered", Some("P1"));
        broken["event"]["data"]["number"] = json!("two");
        assert!(malformed(pagerduty(&broken, &argo_config())).contains("number"));
    }

    #[test]
    fn deployments_of_a_configured_repository_are_kept_unassigned() {
        let mut other_workflow = workflow_run();
        other_workflow["workflow_run"]["path"] = json!(".github/workflows/ci.yml");
        other_workflow["workflow_run"]["name"] = json!("ci");
        match github("workflow_run", &other_workflow, &config()) {
            Ok(Normalized::Unassigned(events, _)) => {
                assert_eq!(events[0].service, format!("unassigned:{FLEET_REPO}"));
                assert_eq!(
                    events[0].origin,
                    Some(Origin::WorkflowRun {
                        path: ".github/workflows/ci.yml".into(),
                        name: "ci".into(),
                        branch: "main".into()
                    })
                );
            }
            other => panic!("{other:?}"),
        }
        match github(
            "deployment_status",
            &deployment_status("success", "staging"),
            &config(),
        ) {
            Ok(Normalized::Unassigned(events, _)) => {
                assert_eq!(events[0].service, "unassigned:codertocat/hello-world");
            }
            other => panic!("{other:?}"),
        }
    }
}
