//! Webhook payloads -> normalized DORA events, per configured service. Pure functions.
//!
//! Every event gets a semantic key (the delivery id aside), so the same fact arriving
//! twice, through a redelivery or through an organization hook and a repository hook,
//! is stored once.

use fleet_shared::config::{DeploySource, DoraConfig, DoraService};
use fleet_shared::dora::model::{unassigned, Commit, DoraEvent, Outcome, ServiceEvent};
use jiff::Timestamp;
use serde_json::Value;

/// What a payload means for the DORA metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalized {
    Events(Vec<ServiceEvent>),
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
        "workflow_run" => workflow_run(payload, &services),
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
            });
        }
    }
    Ok(events(out, || {
        format!("`{git_ref}` is not a service's branch")
    }))
}

fn workflow_run(payload: &Value, services: &[&DoraService]) -> Normalize {
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
    let out = services
        .iter()
        .filter(|s| {
            s.deployments_from == DeploySource::WorkflowRun
                && s.branch == branch
                && s.deploy_workflows
                    .iter()
                    .any(|w| w == path || (!name.is_empty() && w == name))
        })
        .map(|s| per_service(s, &key, &event))
        .collect();
    Ok(events(out, || {
        format!(
            "workflow `{}` on `{branch}` is not a service's deploy workflow",
            if path.is_empty() { name } else { path }
        )
    }))
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
    let mut out: Vec<ServiceEvent> = services
        .iter()
        .filter(|s| {
            s.deployments_from == DeploySource::DeploymentStatus && s.environment == environment
        })
        .map(|s| per_service(s, &key, &event))
        .collect();
    if services.is_empty() {
        out.push(ServiceEvent {
            service: unassigned(repo),
            key,
            event,
        });
    }
    Ok(events(out, || {
        format!("environment `{environment}` is not a service's")
    }))
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
            },
            format!("incident:{number}:opened"),
        ),
        "closed" => (
            DoraEvent::IncidentClosed {
                at: time(issue, "/closed_at")?,
                issue: number,
            },
            format!("incident:{number}:closed"),
        ),
        other => {
            return Ok(Normalized::Ignored(format!(
                "issue action `{other}` does not open or close an incident"
            )))
        }
    };
    Ok(Normalized::Events(for_services(services, repo, key, event)))
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
    Ok(Normalized::Events(for_services(
        &on_branch, repo, key, event,
    )))
}

/// The event as stored for one configured service.
fn per_service(s: &DoraService, key: &str, event: &DoraEvent) -> ServiceEvent {
    ServiceEvent {
        service: s.name.clone(),
        key: key.to_string(),
        event: event.clone(),
    }
}

fn for_services(
    services: &[&DoraService],
    repo: &str,
    key: String,
    event: DoraEvent,
) -> Vec<ServiceEvent> {
    if services.is_empty() {
        return vec![ServiceEvent {
            service: unassigned(repo),
            key,
            event,
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
    let out = dora
        .services
        .iter()
        .filter(|s| {
            s.deployments_from == DeploySource::Flux
                && s.flux_object
                    .as_deref()
                    .is_some_and(|o| o.eq_ignore_ascii_case(&object))
        })
        .map(|s| per_service(s, &key, &event))
        .collect();
    Ok(events(out, || {
        format!("`{object}` is not a service's Flux object")
    }))
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
    let out = dora
        .services
        .iter()
        .filter(|s| {
            s.deployments_from == DeploySource::Flagger
                && s.flagger_canary.as_deref() == Some(canary.as_str())
        })
        .map(|s| per_service(s, &key, &event))
        .collect();
    Ok(events(out, || {
        format!("canary `{canary}` is not a service's")
    }))
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
}
