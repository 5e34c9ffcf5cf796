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
    /// An incident opened (a GitHub issue with the incident label).
    IncidentOpened {
        /// When it was opened.
        at: Timestamp,
        /// The issue's number.
        issue: u64,
    },
    /// An incident closed: the time to restore service ends here.
    IncidentClosed {
        /// When it was closed.
        at: Timestamp,
        /// The issue's number.
        issue: u64,
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
            | DoraEvent::IncidentClosed { at, .. } => *at,
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
}

/// Services not in the config keep their events here (`<owner>/<repo>`), unreported.
pub fn unassigned(repo: &str) -> String {
    format!("unassigned:{repo}")
}
