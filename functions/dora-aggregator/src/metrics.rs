//! The DORA metrics of one service (or several together) over a window: pure functions
//! over normalized events. The definitions are the README's; each rule has a test below.

use std::collections::{HashMap, HashSet};

use fleet_shared::dora::model::{DoraEvent, IncidentSource, Outcome};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Window {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }

    pub fn days(&self) -> f64 {
        self.to.duration_since(self.from).as_secs_f64() / 86_400.0
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Deploy {
    at: Timestamp,
    success: bool,
    sha: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Push {
    at: Timestamp,
    /// (sha, commit time), first pushes of each commit only.
    commits: Vec<(String, Timestamp)>,
}

#[derive(Debug, Clone, PartialEq)]
struct Incident {
    source: IncidentSource,
    id: u64,
    opened: Timestamp,
    closed: Option<Timestamp>,
}

/// An incident a report names: where it was recorded, its id (the GitHub issue's id, the
/// PagerDuty incident's number), when it was opened and closed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentRef {
    pub source: &'static str,
    pub id: u64,
    pub opened: Timestamp,
    pub closed: Option<Timestamp>,
}

/// One service's events, sorted and indexed for the computations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    deploys: Vec<Deploy>,
    pushes: Vec<Push>,
    /// Head sha -> push index.
    heads: HashMap<String, usize>,
    /// Commit sha -> push index (its first push).
    commit_push: HashMap<String, usize>,
    /// Merge commit of a (squash-)merged pull request -> when the pull request started.
    started: HashMap<String, Timestamp>,
    incidents: Vec<Incident>,
}

impl History {
    pub fn new(events: impl IntoIterator<Item = DoraEvent>) -> Self {
        let mut h = History::default();
        let mut pushes = Vec::new();
        let mut revisions: Vec<(Timestamp, String)> = Vec::new();
        // (opened, closed) per incident: one whose opening was never seen (before the
        // lookback, or below a priority filter) is not counted.
        type Span = (Option<Timestamp>, Option<Timestamp>);
        let mut incidents: HashMap<(IncidentSource, u64), Span> = HashMap::new();
        for e in events {
            match e {
                DoraEvent::Deployment { at, outcome, sha } => h.deploys.push(Deploy {
                    at,
                    success: outcome == Outcome::Success,
                    sha: sha.map(|s| s.to_ascii_lowercase()),
                }),
                DoraEvent::Push { at, head, commits } => pushes.push((at, head, commits)),
                DoraEvent::MergedPullRequest {
                    merge_commit,
                    started,
                    ..
                } => {
                    h.started.insert(merge_commit.to_ascii_lowercase(), started);
                }
                DoraEvent::IncidentOpened { at, issue, source } => {
                    let i = incidents.entry((source, issue)).or_default();
                    i.0 = Some(i.0.map_or(at, |o| o.min(at)));
                }
                DoraEvent::IncidentClosed { at, issue, source } => {
                    let i = incidents.entry((source, issue)).or_default();
                    i.1 = Some(i.1.map_or(at, |c| c.max(at)));
                }
                DoraEvent::Revision { at, sha } => revisions.push((at, sha.to_ascii_lowercase())),
            }
        }
        h.deploys.sort_by_key(|d| d.at);
        pushes.sort_by_key(|(at, _, _)| *at);
        for (at, head, commits) in pushes {
            let index = h.pushes.len();
            let mut mine = Vec::new();
            for c in commits {
                let sha = c.sha.to_ascii_lowercase();
                if !h.commit_push.contains_key(&sha) {
                    h.commit_push.insert(sha.clone(), index);
                    mine.push((sha, c.at));
                }
            }
            // A head pushed again (force-pushed away and back) keeps its first push.
            h.heads.entry(head.to_ascii_lowercase()).or_insert(index);
            h.pushes.push(Push { at, commits: mine });
        }
        // A short sha (an image tag) names the one pushed commit it abbreviates.
        for d in &mut h.deploys {
            let Some(short) = d.sha.as_deref().filter(|s| s.len() < 40) else {
                continue;
            };
            let mut matches = h
                .heads
                .keys()
                .chain(h.commit_push.keys())
                .filter(|full| full.starts_with(short))
                .collect::<HashSet<_>>()
                .into_iter();
            d.sha = match (matches.next(), matches.next()) {
                (Some(full), None) => Some(full.clone()),
                // Not a pushed commit after all (an all-digit tag): no commit.
                _ => None,
            };
        }
        // A deployment that names no commit (an Argo Rollout whose image tag is not one)
        // deployed the latest revision its Application or Flux object synced before it.
        revisions.sort();
        for d in h.deploys.iter_mut().filter(|d| d.sha.is_none()) {
            let synced = revisions.partition_point(|(at, _)| *at <= d.at);
            d.sha = synced.checked_sub(1).map(|i| revisions[i].1.clone());
        }
        h.incidents = incidents
            .into_iter()
            .filter_map(|((source, id), (opened, closed))| {
                Some(Incident {
                    source,
                    id,
                    opened: opened?,
                    closed,
                })
            })
            .collect();
        h.incidents.sort_by_key(|i| (i.opened, i.source, i.id));
        h
    }
}

/// Counts and samples of a window, which add up across services.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    pub successes: usize,
    pub failures: usize,
    /// Successful deployments an incident was attributed to.
    pub failed_by_incident: usize,
    /// Successful deployments that finished while an incident was open.
    pub rework: usize,
    pub lead_times_hours: Vec<f64>,
    pub recoveries_hours: Vec<f64>,
    /// Incidents opened or closed in the window.
    pub incidents: Vec<IncidentRef>,
}

fn hours(d: SignedDuration) -> f64 {
    d.as_secs_f64() / 3600.0
}

/// Everything the metrics of `window` need from a service's history.
pub fn tally(h: &History, window: &Window) -> Tally {
    let mut t = Tally::default();
    // Incident attribution: the latest successful deployment that finished before the
    // incident was opened. A deployment counts once however many incidents it caused.
    let mut blamed: HashSet<usize> = HashSet::new();
    for i in &h.incidents {
        let before = h.deploys.partition_point(|d| d.at < i.opened);
        if let Some(j) = (0..before).rev().find(|&j| h.deploys[j].success) {
            blamed.insert(j);
        }
    }
    for (j, d) in h.deploys.iter().enumerate() {
        if !window.contains(d.at) {
            continue;
        }
        if d.success {
            t.successes += 1;
            if blamed.contains(&j) {
                t.failed_by_incident += 1;
            }
            let during_incident = h
                .incidents
                .iter()
                .any(|i| i.opened <= d.at && i.closed.is_none_or(|c| d.at < c));
            if during_incident {
                t.rework += 1;
            }
        } else {
            t.failures += 1;
        }
    }
    // Recovery: a failed deployment recovers at the next successful one; an incident
    // when it is closed. Counted when the recovery ends in the window.
    let mut next_success: Option<Timestamp> = None;
    for d in h.deploys.iter().rev() {
        if d.success {
            next_success = Some(d.at);
        } else if let Some(s) = next_success.filter(|s| window.contains(*s) && *s > d.at) {
            t.recoveries_hours.push(hours(s.duration_since(d.at)));
        }
    }
    for i in &h.incidents {
        if let Some(c) = i.closed.filter(|c| window.contains(*c) && *c >= i.opened) {
            t.recoveries_hours.push(hours(c.duration_since(i.opened)));
        }
    }
    t.lead_times_hours = lead_times(h, window);
    t.incidents = h
        .incidents
        .iter()
        .filter(|i| window.contains(i.opened) || i.closed.is_some_and(|c| window.contains(c)))
        .map(|i| IncidentRef {
            source: i.source.as_str(),
            id: i.id,
            opened: i.opened,
            closed: i.closed,
        })
        .collect();
    t
}

/// Lead time of each commit whose deployment finished in the window: a commit is deployed
/// by the first successful deployment, at or after its push, of that commit or of the
/// head of its push or of any later push.
fn lead_times(h: &History, window: &Window) -> Vec<f64> {
    let mut out = Vec::new();
    let mut deployed: HashSet<&str> = HashSet::new();
    let mut push_done = vec![false; h.pushes.len()];
    // Every push before this one is done: the scan for a head's pushes starts here.
    let mut first_open = 0;
    for d in h.deploys.iter().filter(|d| d.success) {
        let Some(sha) = d.sha.as_deref() else {
            continue;
        };
        let mut record = |sha: &str, committed: Timestamp| {
            let start = h.started.get(sha).copied().unwrap_or(committed);
            let lead = d.at.duration_since(start);
            if window.contains(d.at) && lead.is_positive() {
                out.push(hours(lead));
            }
        };
        if let Some(&j) = h.heads.get(sha) {
            if h.pushes[j].at > d.at {
                continue;
            }
            let open = first_open.min(j + 1)..j + 1;
            for (push, done) in h.pushes[open.clone()].iter().zip(&mut push_done[open]) {
                if *done || push.at > d.at {
                    continue;
                }
                for (c, at) in &push.commits {
                    if deployed.insert(c.as_str()) {
                        record(c, *at);
                    }
                }
                *done = true;
            }
            while first_open < push_done.len() && push_done[first_open] {
                first_open += 1;
            }
        } else if let Some(&j) = h.commit_push.get(sha) {
            if h.pushes[j].at > d.at {
                continue;
            }
            if let Some((c, at)) = h.pushes[j].commits.iter().find(|(c, _)| c == sha) {
                if deployed.insert(c.as_str()) {
                    record(c, *at);
                }
            }
        }
    }
    out
}

/// The value at quantile `q` of sorted samples, interpolating linearly between the
/// closest ranks (as DuckDB's `quantile_cont` and numpy's default do).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// A DORA performance level (State of DevOps 2023 thresholds), or `no data` when the
/// window has nothing to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Elite,
    High,
    Medium,
    Low,
    #[serde(rename = "no data")]
    NoData,
}

impl Level {
    /// The word in reports and the digest: `elite` … `low`, `no data`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Elite => "elite",
            Level::High => "high",
            Level::Medium => "medium",
            Level::Low => "low",
            Level::NoData => "no data",
        }
    }
}

/// The level of each of the four keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Levels {
    pub deployment_frequency: Level,
    pub lead_time: Level,
    pub change_failure_rate: Level,
    pub recovery_time: Level,
}

/// A level, or why there is none.
fn level(l: Option<Level>) -> Level {
    l.unwrap_or(Level::NoData)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadTime {
    pub median: f64,
    pub p90: f64,
    pub commits: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    pub median: f64,
    pub recoveries: usize,
}

/// The metrics of a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub deployments: usize,
    pub failed_deployments: usize,
    pub deployment_frequency_per_day: f64,
    pub deployment_frequency_per_week: f64,
    pub lead_time_hours: Option<LeadTime>,
    pub change_failure_rate: Option<f64>,
    pub recovery_time_hours: Option<Recovery>,
    pub rework_rate: Option<f64>,
    pub levels: Levels,
    /// The incidents opened or closed in the window, oldest first, each with its source
    /// (`github` or `pagerduty`).
    pub incidents: Vec<IncidentRef>,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.successes += other.successes;
        self.failures += other.failures;
        self.failed_by_incident += other.failed_by_incident;
        self.rework += other.rework;
        self.lead_times_hours.extend(other.lead_times_hours);
        self.recoveries_hours.extend(other.recoveries_hours);
        self.incidents.extend(other.incidents);
    }

    pub fn metrics(mut self, window: &Window) -> Metrics {
        let days = window.days().max(f64::MIN_POSITIVE);
        let per_day = self.successes as f64 / days;
        let all = self.successes + self.failures;
        let failed = self.failures + self.failed_by_incident;
        self.lead_times_hours.sort_by(f64::total_cmp);
        self.recoveries_hours.sort_by(f64::total_cmp);
        let lead = quantile(&self.lead_times_hours, 0.5).map(|median| LeadTime {
            median,
            p90: quantile(&self.lead_times_hours, 0.9).unwrap_or(median),
            commits: self.lead_times_hours.len(),
        });
        let recovery = quantile(&self.recoveries_hours, 0.5).map(|median| Recovery {
            median,
            recoveries: self.recoveries_hours.len(),
        });
        let cfr = (all > 0).then(|| failed as f64 / all as f64);
        let rework = (self.successes > 0).then(|| self.rework as f64 / self.successes as f64);
        let levels = Levels {
            deployment_frequency: level((all > 0).then(|| frequency_level(per_day))),
            lead_time: level(
                lead.as_ref()
                    .map(|l| duration_level(l.median, 24.0, 168.0, 720.0)),
            ),
            change_failure_rate: level(cfr.map(cfr_level)),
            recovery_time: level(
                recovery
                    .as_ref()
                    .map(|r| duration_level(r.median, 1.0, 24.0, 168.0)),
            ),
        };
        Metrics {
            deployments: self.successes,
            failed_deployments: failed,
            deployment_frequency_per_day: per_day,
            deployment_frequency_per_week: per_day * 7.0,
            lead_time_hours: lead,
            change_failure_rate: cfr,
            recovery_time_hours: recovery,
            rework_rate: rework,
            levels,
            incidents: {
                let mut incidents = self.incidents;
                incidents.sort_by_key(|i| (i.opened, i.source, i.id));
                incidents
            },
        }
    }
}

/// DORA 2023: at least daily, weekly, monthly (30 days).
fn frequency_level(per_day: f64) -> Level {
    if per_day >= 1.0 {
        Level::Elite
    } else if per_day * 7.0 >= 1.0 {
        Level::High
    } else if per_day * 30.0 >= 1.0 {
        Level::Medium
    } else {
        Level::Low
    }
}

/// Below `elite`, `high`, `medium` hours.
fn duration_level(h: f64, elite: f64, high: f64, medium: f64) -> Level {
    if h < elite {
        Level::Elite
    } else if h < high {
        Level::High
    } else if h < medium {
        Level::Medium
    } else {
        Level::Low
    }
}

fn cfr_level(r: f64) -> Level {
    if r <= 0.05 {
        Level::Elite
    } else if r <= 0.10 {
        Level::High
    } else if r <= 0.15 {
        Level::Medium
    } else {
        Level::Low
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_shared::dora::model::Commit;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn window() -> Window {
        Window {
            from: ts("2026-11-01T00:00:00Z"),
            to: ts("2026-12-01T00:00:00Z"),
        }
    }

    fn push(at: &str, head: &str, commits: &[(&str, &str)]) -> DoraEvent {
        DoraEvent::Push {
            at: ts(at),
            head: head.into(),
            commits: commits
                .iter()
                .map(|(sha, t)| Commit {
                    sha: (*sha).into(),
                    at: ts(t),
                })
                .collect(),
        }
    }

    fn deploy(at: &str, ok: bool, sha: &str) -> DoraEvent {
        DoraEvent::Deployment {
            at: ts(at),
            outcome: if ok {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            sha: Some(sha.into()),
        }
    }

    fn run(events: Vec<DoraEvent>) -> Metrics {
        tally(&History::new(events), &window()).metrics(&window())
    }

    #[test]
    fn earlier_undeployed_pushes_are_deployed_by_a_later_head() {
        // Two pushes, only the second one's head deployed: all three commits count.
        let m = run(vec![
            push(
                "2026-11-02T10:00:00Z",
                "b",
                &[("a", "2026-11-02T08:00:00Z"), ("b", "2026-11-02T09:00:00Z")],
            ),
            push(
                "2026-11-02T12:00:00Z",
                "c",
                &[("c", "2026-11-02T11:00:00Z")],
            ),
            deploy("2026-11-02T14:00:00Z", true, "c"),
        ]);
        let lt = m.lead_time_hours.expect("lead time");
        assert_eq!(lt.commits, 3);
        assert_eq!(lt.median, 5.0); // 6 h, 5 h, 3 h
    }

    #[test]
    fn a_deployment_before_the_push_does_not_deploy_it() {
        let m = run(vec![
            deploy("2026-11-02T09:00:00Z", true, "x"),
            push(
                "2026-11-02T10:00:00Z",
                "x",
                &[("x", "2026-11-02T08:00:00Z")],
            ),
            deploy("2026-11-02T11:00:00Z", true, "x"),
        ]);
        assert_eq!(m.lead_time_hours.map(|l| l.median), Some(3.0));
    }

    #[test]
    fn squash_merges_start_when_the_pull_request_did() {
        let m = run(vec![
            DoraEvent::MergedPullRequest {
                at: ts("2026-11-03T10:00:00Z"),
                merge_commit: "m".into(),
                started: ts("2026-11-01T10:00:00Z"),
            },
            push(
                "2026-11-03T10:00:01Z",
                "m",
                &[("m", "2026-11-03T10:00:00Z")],
            ),
            deploy("2026-11-03T12:00:00Z", true, "m"),
        ]);
        assert_eq!(m.lead_time_hours.map(|l| l.median), Some(50.0));
    }

    #[test]
    fn failed_then_fixed() {
        let m = run(vec![
            deploy("2026-11-05T10:00:00Z", true, "a"),
            deploy("2026-11-06T10:00:00Z", false, "b"),
            deploy("2026-11-06T12:00:00Z", true, "c"),
        ]);
        assert_eq!((m.deployments, m.failed_deployments), (2, 1));
        assert_eq!(m.change_failure_rate, Some(1.0 / 3.0));
        assert_eq!(m.recovery_time_hours.map(|r| r.median), Some(2.0));
        assert_eq!(m.levels.change_failure_rate.as_str(), "low");
        assert_eq!(m.levels.recovery_time.as_str(), "high");
    }

    #[test]
    fn incidents_blame_the_latest_earlier_success_and_mark_rework() {
        let m = run(vec![
            deploy("2026-11-05T10:00:00Z", true, "a"),
            deploy("2026-11-06T10:00:00Z", true, "b"),
            DoraEvent::IncidentOpened {
                at: ts("2026-11-06T11:00:00Z"),
                issue: 7,
                source: Default::default(),
            },
            deploy("2026-11-06T11:30:00Z", true, "c"),
            DoraEvent::IncidentClosed {
                at: ts("2026-11-06T11:45:00Z"),
                issue: 7,
                source: Default::default(),
            },
        ]);
        // b is blamed (a is not); c shipped during the incident: rework.
        assert_eq!((m.deployments, m.failed_deployments), (3, 1));
        assert_eq!(m.change_failure_rate, Some(1.0 / 3.0));
        assert_eq!(m.rework_rate, Some(1.0 / 3.0));
        assert_eq!(m.recovery_time_hours.map(|r| r.median), Some(0.75));
        assert_eq!(m.levels.recovery_time.as_str(), "elite");
    }

    #[test]
    fn a_deployment_blamed_twice_counts_once() {
        let m = run(vec![
            deploy("2026-11-05T10:00:00Z", true, "a"),
            DoraEvent::IncidentOpened {
                at: ts("2026-11-05T11:00:00Z"),
                issue: 1,
                source: Default::default(),
            },
            DoraEvent::IncidentOpened {
                at: ts("2026-11-05T12:00:00Z"),
                issue: 2,
                source: Default::default(),
            },
        ]);
        assert_eq!(m.change_failure_rate, Some(1.0));
    }

    #[test]
    fn an_empty_window_has_no_levels() {
        let m = run(vec![deploy("2026-10-05T10:00:00Z", true, "a")]);
        assert_eq!(m.deployments, 0);
        assert_eq!(m.change_failure_rate, None);
        assert_eq!(m.lead_time_hours, None);
        let l = m.levels;
        for (k, level) in [
            ("deployment_frequency", l.deployment_frequency),
            ("lead_time", l.lead_time),
            ("change_failure_rate", l.change_failure_rate),
            ("recovery_time", l.recovery_time),
        ] {
            assert_eq!(level.as_str(), "no data", "{k}");
        }
    }

    #[test]
    fn frequency_levels() {
        assert_eq!(frequency_level(1.0), Level::Elite);
        assert_eq!(frequency_level(1.0 / 7.0), Level::High);
        assert_eq!(frequency_level(1.0 / 30.0), Level::Medium);
        assert_eq!(frequency_level(1.0 / 31.0), Level::Low);
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        assert_eq!(
            quantile(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9),
            Some(9.1)
        );
        assert_eq!(quantile(&[], 0.5), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn events() -> impl Strategy<Value = Vec<DoraEvent>> {
            let one = (0i64..60 * 86_400, any::<bool>(), 0u8..6, 0u8..4).prop_map(
                |(secs, ok, sha, kind)| {
                    let at = ts("2026-10-15T00:00:00Z")
                        .checked_add(SignedDuration::from_secs(secs))
                        .expect("time");
                    let sha = format!("s{sha}");
                    match kind {
                        0 => DoraEvent::Deployment {
                            at,
                            outcome: if ok {
                                Outcome::Success
                            } else {
                                Outcome::Failure
                            },
                            sha: Some(sha),
                        },
                        1 => DoraEvent::Push {
                            at,
                            head: sha.clone(),
                            commits: vec![Commit { sha, at }],
                        },
                        2 => DoraEvent::IncidentOpened {
                            at,
                            issue: u64::from(secs as u8 % 3),
                            source: Default::default(),
                        },
                        _ => DoraEvent::IncidentClosed {
                            at,
                            issue: u64::from(secs as u8 % 3),
                            source: Default::default(),
                        },
                    }
                },
            );
            proptest::collection::vec(one, 0..40)
        }

        proptest! {
            #[test]
            fn change_failure_rate_is_a_rate(ev in events()) {
                let m = run(ev);
                if let Some(cfr) = m.change_failure_rate {
                    prop_assert!((0.0..=1.0).contains(&cfr));
                }
                if let Some(r) = m.rework_rate {
                    prop_assert!((0.0..=1.0).contains(&r));
                }
            }

            #[test]
            fn another_successful_deployment_never_lowers_frequency(ev in events(), secs in 0i64..30 * 86_400) {
                let before = run(ev.clone()).deployment_frequency_per_day;
                let mut more = ev;
                more.push(DoraEvent::Deployment {
                    at: window().from.checked_add(SignedDuration::from_secs(secs)).expect("time"),
                    outcome: Outcome::Success,
                    sha: None,
                });
                prop_assert!(run(more).deployment_frequency_per_day >= before);
            }
        }
    }

    /// An Argo Rollout names its commit by a short image tag, or not at all: then the
    /// revision its Application synced before it is what it deployed.
    #[test]
    fn rollouts_take_their_commit_from_a_short_tag_or_the_synced_revision() {
        let full = "9f2c1e0b7a6d5c4b3a2918f7e6d5c4b3a2918f7e";
        let other = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
        let rollout = |at: &str, sha: Option<&str>| DoraEvent::Deployment {
            at: ts(at),
            outcome: Outcome::Success,
            sha: sha.map(str::to_string),
        };
        // A short tag: 2 h after the commit.
        let m = run(vec![
            push(
                "2026-11-02T09:00:00Z",
                full,
                &[(full, "2026-11-02T08:00:00Z")],
            ),
            rollout("2026-11-02T10:00:00Z", Some("9f2c1e0")),
        ]);
        assert_eq!(m.lead_time_hours.map(|l| l.median), Some(2.0));
        // No tag: the synced revision (the later one is not yet synced at 10:00).
        let m = run(vec![
            push(
                "2026-11-02T09:00:00Z",
                full,
                &[(full, "2026-11-02T07:00:00Z")],
            ),
            DoraEvent::Revision {
                at: ts("2026-11-02T09:30:00Z"),
                sha: full.into(),
            },
            push(
                "2026-11-02T10:30:00Z",
                other,
                &[(other, "2026-11-02T10:20:00Z")],
            ),
            DoraEvent::Revision {
                at: ts("2026-11-02T11:00:00Z"),
                sha: other.into(),
            },
            rollout("2026-11-02T10:00:00Z", None),
        ]);
        assert_eq!(m.deployments, 1, "a revision is not a deployment");
        assert_eq!(m.lead_time_hours.map(|l| l.median), Some(3.0));
        // A tag that abbreviates no pushed commit (an all-digit build number): the
        // revision instead.
        let m = run(vec![
            push(
                "2026-11-02T09:00:00Z",
                full,
                &[(full, "2026-11-02T07:00:00Z")],
            ),
            DoraEvent::Revision {
                at: ts("2026-11-02T09:30:00Z"),
                sha: full.into(),
            },
            rollout("2026-11-02T10:00:00Z", Some("20261102")),
        ]);
        assert_eq!(m.lead_time_hours.map(|l| l.median), Some(3.0));
    }

    /// An incident whose opening was never seen (before the lookback, or below a
    /// PagerDuty priority filter) is neither blamed nor recovered; sources are reported.
    #[test]
    fn incidents_need_their_opening_and_say_their_source() {
        let m = run(vec![
            deploy("2026-11-05T10:00:00Z", true, "a"),
            DoraEvent::IncidentClosed {
                at: ts("2026-11-06T11:45:00Z"),
                issue: 7,
                source: IncidentSource::PagerDuty,
            },
            DoraEvent::IncidentOpened {
                at: ts("2026-11-07T09:00:00Z"),
                issue: 7,
                source: IncidentSource::GitHub,
            },
        ]);
        // GitHub issue 7 is not PagerDuty incident 7.
        assert_eq!(m.recovery_time_hours, None);
        assert_eq!(m.change_failure_rate, Some(1.0));
        assert_eq!(m.incidents.len(), 1);
        assert_eq!(m.incidents[0].source, "github");
    }
}
