//! Normalized DORA events as plain types: what dora-webhook's normalizer produces and
//! dora-aggregator's metrics read, with no store in sight. [`super::DoraStore`] keeps them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A commit pushed to a service's branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub sha: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DoraEvent {
    /// Commits reaching the branch; `head` is the branch's sha after the push.
    Push {
        at: Timestamp,
        head: String,
        commits: Vec<Commit>,
    },
    /// A deployment that finished at `at`.
    Deployment {
        at: Timestamp,
        outcome: Outcome,
        /// The deployed commit, when the source says (Flagger does not).
        sha: Option<String>,
    },
    /// A pull request merged into the branch: its merge commit (a squash merge's only
    /// commit on the branch) starts when the pull request started.
    MergedPullRequest {
        at: Timestamp,
        merge_commit: String,
        started: Timestamp,
    },
    IncidentOpened {
        at: Timestamp,
        issue: u64,
    },
    IncidentClosed {
        at: Timestamp,
        issue: u64,
    },
}

impl DoraEvent {
    pub fn at(&self) -> Timestamp {
        match self {
            DoraEvent::Push { at, .. }
            | DoraEvent::Deployment { at, .. }
            | DoraEvent::MergedPullRequest { at, .. }
            | DoraEvent::IncidentOpened { at, .. }
            | DoraEvent::IncidentClosed { at, .. } => *at,
        }
    }
}

/// An event for one service, with its semantic key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEvent {
    pub service: String,
    pub key: String,
    pub event: DoraEvent,
}

/// Services not in the config keep their events here (`<owner>/<repo>`), unreported.
pub fn unassigned(repo: &str) -> String {
    format!("unassigned:{repo}")
}
