//! The day the demo replays, in virtual time, and what should happen in it as the example
//! config's schedules say in their own zones.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::DEFAULT_MONDAY;

const BERLIN: &str = "Europe/Berlin";

const NEW_YORK: &str = "America/New_York";

/// `(cluster, announced up, announced down)`; no down: still up when the demo ends.
pub type UpInterval = (&'static str, Timestamp, Option<Timestamp>);

/// The day the demo replays: a Monday and the night after, in virtual time. Every instant
/// of the story is a wall-clock time in the zone it belongs to (the example config's
/// schedules, the operator in Berlin) or a fixed UTC time (webhooks, the spot warning), so
/// that the same story holds in any week of any year, summer time or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    pub monday: Date,
}

impl Day {
    /// `YYYY-MM-DD`, a Monday.
    pub fn parse(text: &str) -> Result<Day, String> {
        let monday: Date = text
            .parse()
            .map_err(|e| format!("--date `{text}` is not a date such as {DEFAULT_MONDAY}: {e}"))?;
        if monday.weekday() != Weekday::Monday {
            return Err(format!(
                "--date {monday} is a {:?}: the demo replays a Monday and the night after",
                monday.weekday()
            ));
        }
        Ok(Day { monday })
    }

    /// `days` after the Monday at `h:m` in `zone`.
    fn local(&self, days: i64, h: i8, m: i8, zone: &str) -> Result<Timestamp, String> {
        let date = self
            .monday
            .checked_add(days.days())
            .map_err(|e| e.to_string())?;
        date.at(h, m, 0, 0)
            .in_tz(zone)
            .map(|z| z.timestamp())
            .map_err(|e| format!("{date} {h}:{m} in {zone}: {e}"))
    }

    /// The Monday at `h:m` UTC (`h` past 23 is the next day).
    pub fn utc(&self, h: i8, m: i8) -> Result<Timestamp, String> {
        self.local(i64::from(h / 24), h % 24, m, "UTC")
    }

    /// The first tick: Monday 05:00 UTC.
    pub fn start(&self) -> Result<Timestamp, String> {
        self.utc(5, 0)
    }

    /// After the last tick: Tuesday 06:30 UTC, when the reports run.
    pub fn end(&self) -> Result<Timestamp, String> {
        self.utc(30, 30)
    }

    /// The spot interruption warning: Monday 10:00 UTC, while staging is up in any season.
    pub fn interruption(&self) -> Result<Timestamp, String> {
        self.utc(10, 0)
    }

    /// The operator holds staging up for a late release: Monday 19:30 in Berlin, for 3
    /// hours (`events/scheduler-up.json`).
    pub fn release(&self) -> Result<Timestamp, String> {
        self.local(0, 19, 30, BERLIN)
    }

    /// The first instant of the Monday's month, and of the month after.
    pub(super) fn month(&self) -> Result<(Timestamp, Timestamp), String> {
        let first = self.monday.first_of_month();
        let next = first.checked_add(1.month()).map_err(|e| e.to_string())?;
        let at = |d: Date| {
            d.to_zoned(TimeZone::UTC)
                .map(|z| z.timestamp())
                .map_err(|e| e.to_string())
        };
        Ok((at(first)?, at(next)?))
    }

    /// When each cluster should be up, as the example config's schedules and the
    /// operator's hold say in their own zones (not as our schedule code computes it), and
    /// the ticks it takes to act: a new cluster is announced 30 minutes (create-cluster,
    /// create-nodegroups, announce) after its window opens, staging 45 (its nodes wait a
    /// tick for its network's NAT gateway), a scaled one 30 minutes too
    /// (nodegroups, Karpenter's limits, announce); a destroy-mode teardown announces 45
    /// minutes after (load balancers, nodegroups, cluster, announce; 30 without load
    /// balancers: the production account's preview), sandbox-us's
    /// scale-down 45 minutes (cap the NodePools, delete the NodeClaims, nodegroups,
    /// announce). `(cluster, announced up, announced
    /// down)`, in order; `None`: still up at the end.
    pub fn expected_uptime(&self) -> Result<Vec<UpInterval>, String> {
        let (start, end) = (self.start()?, self.end()?);
        let minutes = |t: Timestamp, m: i64| t.checked_add(m.minutes()).map_err(|e| e.to_string());
        // Staging waits a tick more for its network's NAT gateway (pending on the tick
        // after its creation), and one for its ingress controller's pods (`ready_when`,
        // available a tick after the bootstrap): announced an hour after its window opens.
        let mut up = vec![(
            "staging",
            minutes(self.local(0, 8, 0, BERLIN)?, 60)?,
            // Held until 22:30 Berlin, past its 20:00.
            Some(minutes(self.local(0, 22, 30, BERLIN)?, 45)?),
        )];
        let mut built = false;
        for (from, to) in [((-1, 22), (0, 1)), ((0, 7), (0, 19)), ((0, 22), (1, 1))] {
            let opens = self.local(from.0, from.1, 0, NEW_YORK)?;
            let closes = self.local(to.0, to.1, 0, NEW_YORK)?;
            if closes <= start || opens >= end {
                continue;
            }
            // Karpenter (its controller on `general`): a morning scales `general` up,
            // restores the NodePool limits, then announces; an evening caps the NodePools,
            // deletes the NodeClaims, scales `general` down, then announces.
            let announced = match (opens < start, built) {
                (true, _) => minutes(start, 30)?,
                (false, _) => minutes(opens, 30)?,
            };
            built = true;
            let down = minutes(closes, 45)?;
            up.push(("sandbox-us", announced, (down < end).then_some(down)));
        }
        // The production account's preview (destroy mode, no network, no bootstrap, no
        // load balancers to wait for): built from its window's opening in 30 minutes
        // (create-cluster; create-nodegroups; announce), gone 30 after it closes
        // (nodegroups; cluster; announce).
        let (opens, closes) = (
            self.local(0, 8, 0, NEW_YORK)?,
            self.local(0, 18, 0, NEW_YORK)?,
        );
        let down = minutes(closes, 30)?;
        up.push((
            super::replay::PRODUCTION,
            minutes(opens, 30)?,
            (down < end).then_some(down),
        ));
        Ok(up)
    }

    /// The `fleet` bus events the day should bring, in order: `(at, detail-type, cluster)`.
    pub fn expected_events(&self) -> Result<Vec<(Timestamp, &'static str, &'static str)>, String> {
        let mut events = vec![(self.interruption()?, "Node Drained", "staging")];
        for (cluster, up, down) in self.expected_uptime()? {
            events.push((up, "Cluster Ready", cluster));
            if let Some(down) = down {
                events.push((down, "Cluster Destroyed", cluster));
            }
            if cluster == "staging" {
                // Its network: ready on the tick staging's nodes are created, two before
                // staging is (the bootstrap, then the ingress controller available), down
                // three ticks after staging (routes and the NAT gateway deleted; deleting;
                // deleted, its address released, announced).
                let minutes =
                    |t: Timestamp, m: i64| t.checked_add(m.minutes()).map_err(|e| e.to_string());
                events.push((minutes(up, -30)?, "Network Ready", STAGING_NETWORK));
                if let Some(down) = down {
                    let gone = minutes(down, 45)?;
                    if gone < self.end()? {
                        events.push((gone, "Network Down", STAGING_NETWORK));
                    }
                }
            }
        }
        // The drain runs before its tick; within a tick networks first (a tick takes them
        // before the clusters), then clusters in config order.
        let rank = |e: &(Timestamp, &str, &str)| {
            (
                e.0,
                e.1 != "Node Drained",
                !e.1.starts_with("Network"),
                e.2 != "staging",
            )
        };
        events.sort_by_key(rank);
        Ok(events)
    }

    /// Hours `cluster` should be up within `[from, to)`.
    pub fn expected_hours(
        &self,
        cluster: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<f64, String> {
        let end = self.end()?;
        Ok(self
            .expected_uptime()?
            .into_iter()
            .filter(|u| u.0 == cluster)
            .map(|(_, up, down)| {
                let (a, b) = (up.max(from), down.unwrap_or(end).min(to));
                if b > a {
                    b.duration_since(a).as_secs_f64() / 3600.0
                } else {
                    0.0
                }
            })
            .sum())
    }
}

/// The example config's network for staging.
pub const STAGING_NETWORK: &str = "staging-vpc";

impl Default for Day {
    fn default() -> Self {
        Day {
            monday: jiff::civil::date(2026, 11, 23),
        }
    }
}
