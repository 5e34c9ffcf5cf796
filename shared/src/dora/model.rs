//! Normalized DORA events as plain types: what dora-webhook's normalizer produces and
//! dora-aggregator's metrics read, with no store in sight. [`super::DoraStore`] keeps them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A commit pushed to a service's branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The commit's sha (40 hex digits).
    pub sha: String,
    /// When it was committed (the author's timestamp the sender gives).
    pub at: Timestamp,
}

/// How a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It reached production (`success`).
    Success,
    /// It failed or was rolled back (`failure`): counts toward the change failure rate.
    Failure,
}

/// One normalized event; stored as JSON tagged by `kind` (`push`, `deployment`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DoraEvent {
    /// Commits reaching the branch; `head` is the branch's sha after the push.
    Push {
        /// When the push happened.
        at: Timestamp,
        /// The branch's sha after the push.
        head: String,
        /// The commits the push brought, oldest first.
        commits: Vec<Commit>,
    },
    /// A deployment that finished at `at`.
    Deployment {
        /// When it finished.
        at: Timestamp,
        /// How it ended.
        outcome: Outcome,
        /// The deployed commit, when the source says (Flagger does not).
        sha: Option<String>,
    },
    /// A pull request merged into the branch: its merge commit (a squash merge's only
    /// commit on the branch) starts when the pull request started.
    MergedPullRequest {
        /// When it was merged.
        at: Timestamp,
        /// The merge commit's sha on the branch.
        merge_commit: String,
        /// When the pull request was opened: the lead time's start for the merge commit.
        started: Timestamp,
    },
    /// An incident opened (a GitHub issue with the incident label, a PagerDuty incident).
    IncidentOpened {
        /// When it was opened.
        at: Timestamp,
        /// The GitHub issue's id, or the PagerDuty incident's number.
        issue: u64,
        /// Where it was recorded (absent in events stored before PagerDuty: GitHub).
        #[serde(default)]
        source: IncidentSource,
    },
    /// An incident closed: the time to restore service ends here.
    IncidentClosed {
        /// When it was closed.
        at: Timestamp,
        /// The GitHub issue's id, or the PagerDuty incident's number.
        issue: u64,
        /// Where it was recorded.
        #[serde(default)]
        source: IncidentSource,
    },
    /// A revision Argo CD or Flux synced for a service deployed by Argo Rollouts: not a
    /// deployment; the Rollout's next deployment without a commit of its own deployed it.
    Revision {
        /// When the sync finished.
        at: Timestamp,
        /// The synced commit.
        sha: String,
    },
}

/// Where an incident was recorded.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IncidentSource {
    /// A GitHub issue with `dora.incident_label`.
    #[default]
    GitHub,
    /// A PagerDuty incident of the service's `pagerduty_service`.
    PagerDuty,
}

impl IncidentSource {
    /// `github` or `pagerduty`, as in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            IncidentSource::GitHub => "github",
            IncidentSource::PagerDuty => "pagerduty",
        }
    }
}

/// What a deployment came through (which workflow, environment, object, application or
/// rollout), or a push's branch. Kept with events no service claims, so that a service configured
/// later claims them when its report is computed ([`crate::config::DoraService::claims`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Origin {
    /// A GitHub Actions run.
    WorkflowRun {
        /// The workflow's path (`.github/workflows/deploy.yml`).
        path: String,
        /// The workflow's name.
        name: String,
        /// The run's branch.
        branch: String,
    },
    /// A GitHub deployment status.
    DeploymentStatus {
        /// Its environment.
        environment: String,
    },
    /// A Flux object's event.
    Flux {
        /// `Kind/namespace/name`.
        object: String,
    },
    /// A Flagger canary's event.
    Flagger {
        /// `namespace/name`.
        canary: String,
    },
    /// An Argo CD Application's notification.
    Argocd {
        /// Its project.
        project: String,
        /// Its name.
        app: String,
    },
    /// An Argo Rollouts Rollout's notification.
    ArgoRollouts {
        /// `namespace/name`.
        rollout: String,
    },
    /// A push or merged pull request of a repository no service named then: its branch
    /// (a service configured later counts it only if that is its branch).
    Branch {
        /// The pushed branch, or the pull request's base.
        branch: String,
    },
}

impl DoraEvent {
    /// When the event happened (every kind has one).
    pub fn at(&self) -> Timestamp {
        match self {
            DoraEvent::Push { at, .. }
            | DoraEvent::Deployment { at, .. }
            | DoraEvent::MergedPullRequest { at, .. }
            | DoraEvent::IncidentOpened { at, .. }
            | DoraEvent::IncidentClosed { at, .. }
            | DoraEvent::Revision { at, .. } => *at,
        }
    }

    /// A successful deployment of a known commit as a synced revision (what an Argo
    /// Rollouts service keeps of its Application's or Flux object's deployments).
    pub fn as_revision(&self) -> Option<DoraEvent> {
        match self {
            DoraEvent::Deployment {
                at,
                outcome: Outcome::Success,
                sha: Some(sha),
            } => Some(DoraEvent::Revision {
                at: *at,
                sha: sha.clone(),
            }),
            _ => None,
        }
    }
}

/// An event for one service, with its semantic key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEvent {
    /// The service's name in `[dora]`, or [`unassigned`] for a repository not in it.
    pub service: String,
    /// The event's semantic identity (a redelivery lands on the same key): the sender,
    /// what happened and its id (`github:push:<head>`).
    pub key: String,
    /// The event.
    pub event: DoraEvent,
    /// What a deployment came through, stored with those no service claimed (`None`
    /// otherwise).
    pub origin: Option<Origin>,
}

/// Events no service claims keep their place here, so that a service configured later
/// counts them: `unassigned:<owner>/<repo>` (lowercase) for a repository's, or
/// `unassigned:<sender>` (`flux`, `flagger`, `argocd`, `argo-rollouts`) for senders that
/// name no repository.
pub fn unassigned(repo: &str) -> String {
    format!("unassigned:{}", repo.to_ascii_lowercase())
}
