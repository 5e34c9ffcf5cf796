//! When a cluster should be up.
//!
//! Everything here is a pure function of time: the desired state at an instant follows from
//! the uptime specs, the holidays, `protect` and a manual override, never from which tick
//! happened to arrive. A missed tick therefore never causes a missed transition.
//!
//! Windows are wall-clock windows in their own IANA zone: `08:00-20:00 Europe/Berlin` starts
//! at 08:00 Berlin time on both sides of a daylight-saving change. A local time skipped by a
//! spring-forward change does not exist, so a window boundary inside the gap takes effect at
//! the first instant after it. A local time repeated by a fall-back change happens twice: a
//! window's start and its end are each the *first* occurrence, so a window that ends in the
//! repeated hour ends then and does not open again when the hour repeats (a window spanning
//! the whole repeated hour is up through both). Each window is the interval between those
//! two instants; this holds for shifts of any size (Australia/Lord_Howe moves 30 minutes)
//! and for zones that change at midnight (America/Santiago, America/Havana).

use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

mod uptime;

use uptime::{local_instant, MINUTES_PER_DAY};
pub use uptime::{DayName, Uptime, UptimeSpec};

/// A holiday: one local date or an inclusive range `a..b`; the cluster is down all day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Holiday {
    /// The first local date down.
    pub first: Date,
    /// The last local date down (inclusive; `first` for one day).
    pub last: Date,
}

impl TryFrom<String> for Holiday {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let date = |s: &str| {
            s.trim()
                .parse::<Date>()
                .map_err(|_| format!("bad date `{s}` (expected YYYY-MM-DD)"))
        };
        let (first, last) = match text.split_once("..") {
            Some((a, b)) => (date(a)?, date(b)?),
            None => (date(&text)?, date(&text)?),
        };
        if last < first {
            return Err(format!("holiday range `{text}` ends before it starts"));
        }
        Ok(Holiday { first, last })
    }
}

impl fmt::Display for Holiday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..{}", self.first, self.last)
        }
    }
}

/// What the schedule wants a cluster to be (`up` / `down` in JSON and the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    /// Running, its nodes up, its blueprint applied.
    Up,
    /// Destroyed, or its nodegroups at zero (the cluster's `mode`).
    Down,
}

impl fmt::Display for Desired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Desired::Up => "up",
            Desired::Down => "down",
        })
    }
}

/// A manual override of the schedule, in force until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// Up or down, whatever the schedule says (`protect` still wins).
    pub desired: Desired,
    /// When it expires (exclusive).
    pub until: Timestamp,
    /// Why, as the person gave it.
    pub reason: String,
    /// When it was set (decision time).
    pub set_at: Timestamp,
}

/// Everything that decides a cluster's desired state.
#[derive(Debug, Clone)]
pub struct ClusterSchedule {
    /// When it is up; `None` means always (never scheduled down).
    pub uptime: Option<Uptime>,
    /// Local dates it is down all day.
    pub holidays: Vec<Holiday>,
    /// The zone holidays are local to.
    pub holiday_zone: TimeZone,
    /// Never taken down, by schedule, holiday or override.
    pub protect: bool,
}

/// Which rule decided, for the `reason` a plan shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// `protect = true`.
    Protect,
    /// A live override.
    Override,
    /// One of `holidays`.
    Holiday,
    /// Inside an uptime window.
    Uptime,
    /// Outside every uptime window.
    OutsideUptime,
    /// No `uptime`: always up.
    AlwaysOn,
}

/// The schedule's answer for one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Up or down.
    pub desired: Desired,
    /// The rule that decided.
    pub rule: Rule,
    /// The same in words, for plans and Slack (`Mon-Fri 08:00-20:00 Europe/Berlin`).
    pub reason: String,
}

impl ClusterSchedule {
    /// The desired state at `at`. Order of precedence: `protect`, a live override, a holiday,
    /// then the uptime specs. `protect` outranks an override so that no document can take a
    /// protected cluster down.
    pub fn decide(&self, at: Timestamp, over: Option<&Override>) -> Decision {
        if self.protect {
            return Decision {
                desired: Desired::Up,
                rule: Rule::Protect,
                reason: "protect = true: the schedule never takes it down".into(),
            };
        }
        if let Some(o) = over.filter(|o| o.until > at) {
            return Decision {
                desired: o.desired,
                rule: Rule::Override,
                reason: format!("override {} until {}: {}", o.desired, o.until, o.reason),
            };
        }
        let local_day = at.to_zoned(self.holiday_zone.clone()).date();
        if let Some(h) = self
            .holidays
            .iter()
            .find(|h| h.first <= local_day && local_day <= h.last)
        {
            return Decision {
                desired: Desired::Down,
                rule: Rule::Holiday,
                reason: format!("holiday {h}"),
            };
        }
        match &self.uptime {
            None => Decision {
                desired: Desired::Up,
                rule: Rule::AlwaysOn,
                reason: "no uptime spec: always up".into(),
            },
            Some(uptime) => match uptime.matching(at) {
                Some(spec) => Decision {
                    desired: Desired::Up,
                    rule: Rule::Uptime,
                    reason: format!("inside uptime `{spec}`"),
                },
                None => Decision {
                    desired: Desired::Down,
                    rule: Rule::OutsideUptime,
                    reason: format!(
                        "outside uptime `{}`",
                        uptime
                            .0
                            .iter()
                            .map(|s| s.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            },
        }
    }

    /// The first instant after `at`, within `horizon_days`, at which the desired state
    /// changes; `None` when it does not change in that horizon.
    pub fn next_change(
        &self,
        at: Timestamp,
        over: Option<&Override>,
        horizon_days: i64,
    ) -> Option<Timestamp> {
        let horizon = at.checked_add((horizon_days * 24).hours()).ok()?;
        let mut candidates = Vec::new();
        if let Some(uptime) = &self.uptime {
            for spec in &uptime.0 {
                spec.boundaries(at, horizon, &mut candidates);
                // A boundary inside a spring-forward gap takes effect at the gap's end.
                candidates.extend(
                    spec.tz
                        .following(at)
                        .map(|t| t.timestamp())
                        .take_while(|t| *t <= horizon),
                );
            }
        }
        for h in &self.holidays {
            candidates.extend(local_instant(h.first, 0, &self.holiday_zone));
            candidates.extend(local_instant(h.last, MINUTES_PER_DAY, &self.holiday_zone));
        }
        if let Some(o) = over {
            candidates.push(o.until);
        }
        candidates.retain(|t| *t > at && *t <= horizon);
        candidates.sort();
        candidates.dedup();
        let now = self.decide(at, over).desired;
        candidates
            .into_iter()
            .find(|t| self.decide(*t, over).desired != now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    fn uptime(s: &str) -> Uptime {
        Uptime::try_from(s.to_string()).expect("test uptime")
    }

    fn sched(spec: &str, holidays: &[&str]) -> ClusterSchedule {
        let up = uptime(spec);
        let zone = up.0[0].zone().clone();
        ClusterSchedule {
            uptime: Some(up),
            holidays: holidays
                .iter()
                .map(|h| Holiday::try_from(h.to_string()).expect("holiday"))
                .collect(),
            holiday_zone: zone,
            protect: false,
        }
    }

    fn up_at(s: &ClusterSchedule, t: &str) -> bool {
        s.decide(ts(t), None).desired == Desired::Up
    }

    #[test]
    fn weekday_window_in_berlin_winter_and_summer() {
        let s = sched("Mon-Fri 08:00-20:00 Europe/Berlin", &[]);
        // Winter: UTC+1. Monday 2026-01-05.
        assert!(!up_at(&s, "2026-01-05T06:59:00Z"));
        assert!(up_at(&s, "2026-01-05T07:00:00Z"));
        assert!(up_at(&s, "2026-01-05T18:59:59Z"));
        assert!(!up_at(&s, "2026-01-05T19:00:00Z"));
        // Summer: UTC+2. Monday 2026-07-06.
        assert!(!up_at(&s, "2026-07-06T05:59:00Z"));
        assert!(up_at(&s, "2026-07-06T06:00:00Z"));
        assert!(!up_at(&s, "2026-07-06T18:00:00Z"));
        // Saturday is down.
        assert!(!up_at(&s, "2026-07-11T10:00:00Z"));
    }

    #[test]
    fn berlin_daylight_saving_weeks_both_directions() {
        let s = sched("Mon-Fri 08:00-20:00 Europe/Berlin", &[]);
        // Spring forward on Sunday 2026-03-29: Friday before is UTC+1, Monday after UTC+2.
        assert!(up_at(&s, "2026-03-27T07:00:00Z"));
        assert!(!up_at(&s, "2026-03-30T05:59:00Z"));
        assert!(up_at(&s, "2026-03-30T06:00:00Z"));
        // Fall back on Sunday 2026-10-25: Friday before UTC+2, Monday after UTC+1.
        assert!(up_at(&s, "2026-10-23T06:00:00Z"));
        assert!(!up_at(&s, "2026-10-26T06:00:00Z"));
        assert!(up_at(&s, "2026-10-26T07:00:00Z"));
    }

    #[test]
    fn new_york_daylight_saving_weeks() {
        let s = sched("Mon-Fri 09:00-17:00 America/New_York", &[]);
        // DST starts Sunday 2026-03-08 (UTC-5 -> UTC-4).
        assert!(up_at(&s, "2026-03-06T14:00:00Z")); // Fri 09:00 EST
        assert!(!up_at(&s, "2026-03-06T13:59:00Z"));
        assert!(up_at(&s, "2026-03-09T13:00:00Z")); // Mon 09:00 EDT
        assert!(!up_at(&s, "2026-03-09T12:59:00Z"));
        // DST ends Sunday 2026-11-01 (UTC-4 -> UTC-5).
        assert!(up_at(&s, "2026-10-30T20:59:00Z")); // Fri 16:59 EDT
        assert!(!up_at(&s, "2026-11-02T13:30:00Z")); // Mon 08:30 EST
        assert!(up_at(&s, "2026-11-02T14:00:00Z"));
    }

    #[test]
    fn window_inside_the_skipped_hour_starts_after_the_gap() {
        // 02:30 does not exist in Berlin on 2026-03-29; the window opens at 03:00 CEST.
        let s = sched("Sun 02:30-04:00 Europe/Berlin", &[]);
        assert!(!up_at(&s, "2026-03-29T00:59:00Z")); // 01:59 CET
        assert!(up_at(&s, "2026-03-29T01:00:00Z")); // 03:00 CEST
        assert!(!up_at(&s, "2026-03-29T02:00:00Z")); // 04:00 CEST
        let next = s.next_change(ts("2026-03-28T12:00:00Z"), None, 8);
        assert_eq!(next, Some(ts("2026-03-29T01:00:00Z")));
    }

    #[test]
    fn repeated_hour_is_up_both_times() {
        // 02:00-03:00 happens twice in Berlin on 2026-10-25.
        let s = sched("Sun 02:00-03:00 Europe/Berlin", &[]);
        assert!(up_at(&s, "2026-10-25T00:30:00Z")); // 02:30 CEST
        assert!(up_at(&s, "2026-10-25T01:30:00Z")); // 02:30 CET
        assert!(!up_at(&s, "2026-10-25T02:00:00Z")); // 03:00 CET
    }

    #[test]
    fn a_window_ending_in_the_repeated_hour_ends_at_its_first_occurrence() {
        // Case 06: 01:00-02:00 happens twice in New York on 2026-11-01.
        let s = sched("daily 00:00-01:30 America/New_York", &[]);
        assert!(!up_at(&s, "2026-11-01T03:59:00Z")); // 23:59 EDT
        assert!(up_at(&s, "2026-11-01T04:00:00Z")); // 00:00 EDT
        assert!(up_at(&s, "2026-11-01T05:29:00Z")); // 01:29 EDT
        assert!(!up_at(&s, "2026-11-01T05:30:00Z")); // 01:30 EDT, the first
        assert!(!up_at(&s, "2026-11-01T06:00:00Z")); // 01:00 EST, the repeat
        assert!(!up_at(&s, "2026-11-01T06:15:00Z"));
        assert!(!up_at(&s, "2026-11-01T06:30:00Z")); // 01:30 EST
        assert_eq!(
            s.next_change(ts("2026-11-01T05:29:00Z"), None, 8),
            Some(ts("2026-11-01T05:30:00Z"))
        );
        // After it, the next local midnight (EST now).
        assert_eq!(
            s.next_change(ts("2026-11-01T05:30:00Z"), None, 8),
            Some(ts("2026-11-02T05:00:00Z"))
        );
        // A window starting in the repeated hour starts at its first occurrence.
        let s = sched("daily 01:15-03:00 America/New_York", &[]);
        assert!(!up_at(&s, "2026-11-01T05:14:00Z"));
        assert!(up_at(&s, "2026-11-01T05:15:00Z")); // 01:15 EDT
        assert!(up_at(&s, "2026-11-01T06:10:00Z")); // 01:10 EST: still inside
        assert!(!up_at(&s, "2026-11-01T08:00:00Z")); // 03:00 EST
    }

    /// Around every clock change of 2026 and 2027 in zones that shift by an hour, by 30
    /// minutes (Lord Howe) and at midnight (Santiago, Havana), for windows that start,
    /// end or lie in the shifted hour: each window opens at most once per local start
    /// day, opens and closes exactly at the first occurrence of its times (or the gap's
    /// end), and `next_change` finds every edge.
    #[test]
    fn windows_open_once_around_every_clock_change() {
        let zones = [
            "America/New_York",
            "Europe/Berlin",
            "Australia/Lord_Howe",
            "America/Santiago",
            "America/Havana",
        ];
        let windows = [
            "00:00-01:30",
            "01:00-03:00",
            "01:45-02:15",
            "23:30-00:30",
            "22:00-01:00",
        ];
        let from = ts("2026-01-01T00:00:00Z");
        let to = ts("2028-01-01T00:00:00Z");
        let mut changes = 0;
        for zone in zones {
            let tz = TimeZone::get(zone).expect("zone");
            for transition in tz.following(from).take_while(|t| t.timestamp() < to) {
                changes += 1;
                let around = transition.timestamp();
                for window in windows {
                    let spec = format!("daily {window} {zone}");
                    let s = sched(&spec, &[]);
                    let w = &s.uptime.as_ref().expect("uptime").0[0];
                    let start = around.checked_sub(30.hours()).expect("range");
                    let mut at = start;
                    let mut up = up_at(&s, &at.to_string());
                    let mut opened_on: Vec<Date> = Vec::new();
                    while at < around.checked_add(30.hours()).expect("range") {
                        let expected_edge = s.next_change(at, None, 3);
                        let next = at.checked_add(1.minute()).expect("range");
                        let now_up = up_at(&s, &next.to_string());
                        if now_up != up {
                            assert_eq!(expected_edge, Some(next), "{spec}: edge at {next}");
                            let local = next.to_zoned(tz.clone());
                            if now_up {
                                // Opens at its start's first occurrence (or a gap's end).
                                let day = local.date();
                                assert_eq!(
                                    local_instant(day, w.start, &tz),
                                    Some(next),
                                    "{spec}: opened at {local}"
                                );
                                assert!(!opened_on.contains(&day), "{spec}: reopened {local}");
                                opened_on.push(day);
                            }
                        }
                        up = now_up;
                        at = next;
                    }
                }
            }
        }
        // Two changes a year in each zone (Havana and Santiago too).
        assert!(changes >= 18, "{changes} clock changes");
    }

    #[test]
    fn wrapping_day_range() {
        let s = sched("Sun-Thu 09:00-17:00 UTC", &[]);
        assert!(up_at(&s, "2026-11-22T10:00:00Z")); // Sunday
        assert!(up_at(&s, "2026-11-26T10:00:00Z")); // Thursday
        assert!(!up_at(&s, "2026-11-27T10:00:00Z")); // Friday
        assert!(!up_at(&s, "2026-11-28T10:00:00Z")); // Saturday
    }

    #[test]
    fn window_crossing_midnight_belongs_to_its_start_day() {
        let s = sched("Fri 22:00-06:00 UTC", &[]);
        assert!(!up_at(&s, "2026-11-27T21:59:00Z")); // Fri
        assert!(up_at(&s, "2026-11-27T22:00:00Z"));
        assert!(up_at(&s, "2026-11-28T05:59:00Z")); // Sat morning
        assert!(!up_at(&s, "2026-11-28T06:00:00Z"));
        assert!(!up_at(&s, "2026-11-28T23:00:00Z")); // Sat night: not a start day
        assert!(!up_at(&s, "2026-11-27T03:00:00Z")); // Fri early: Thu did not start one
    }

    #[test]
    fn overlapping_specs_union() {
        let s = sched(
            "Mon-Fri 08:00-12:00 UTC, Mon-Fri 11:00-18:00 UTC, Sat 10:00-14:00 Europe/London",
            &[],
        );
        assert!(up_at(&s, "2026-11-23T08:00:00Z"));
        assert!(up_at(&s, "2026-11-23T11:30:00Z"));
        assert!(up_at(&s, "2026-11-23T17:59:00Z"));
        assert!(!up_at(&s, "2026-11-23T18:00:00Z"));
        assert!(up_at(&s, "2026-11-28T10:00:00Z"));
        let next = s.next_change(ts("2026-11-23T09:00:00Z"), None, 8);
        assert_eq!(next, Some(ts("2026-11-23T18:00:00Z")));
    }

    #[test]
    fn all_day_and_daily_forms() {
        let s = sched("00:00-24:00 UTC", &[]);
        assert!(up_at(&s, "2026-11-28T23:59:59Z"));
        let s = sched("daily 08:00-20:00 Asia/Tokyo", &[]);
        assert!(up_at(&s, "2026-11-28T00:00:00Z")); // 09:00 JST Saturday
    }

    #[test]
    fn holidays_are_down_all_day_in_local_time() {
        let s = sched(
            "Mon-Fri 08:00-20:00 Europe/Berlin",
            &["2026-12-24", "2026-12-28..2027-01-01"],
        );
        let d = s.decide(ts("2026-12-24T10:00:00Z"), None);
        assert_eq!(d.desired, Desired::Down);
        assert_eq!(d.rule, Rule::Holiday);
        assert_eq!(d.reason, "holiday 2026-12-24");
        assert!(!up_at(&s, "2026-12-30T10:00:00Z"));
        assert!(!up_at(&s, "2027-01-01T10:00:00Z"));
        assert!(up_at(&s, "2026-12-23T10:00:00Z"));
        // 2026-12-24 00:30 Berlin is still 2026-12-23 in UTC: the local date decides.
        let s2 = sched("daily 00:00-24:00 Europe/Berlin", &["2026-12-24"]);
        assert!(!up_at(&s2, "2026-12-23T23:30:00Z"));
        assert!(up_at(&s2, "2026-12-24T23:30:00Z"));
        assert_eq!(
            s2.next_change(ts("2026-12-23T12:00:00Z"), None, 8),
            Some(ts("2026-12-23T23:00:00Z"))
        );
    }

    #[test]
    fn override_then_protect_precedence() {
        let mut s = sched("Mon-Fri 08:00-20:00 UTC", &["2026-11-23"]);
        let o = Override {
            desired: Desired::Up,
            until: ts("2026-11-23T12:00:00Z"),
            reason: "release".into(),
            set_at: ts("2026-11-23T00:00:00Z"),
        };
        let d = s.decide(ts("2026-11-23T10:00:00Z"), Some(&o));
        assert_eq!((d.desired, d.rule), (Desired::Up, Rule::Override));
        // Expired override no longer counts.
        let d = s.decide(ts("2026-11-23T12:00:00Z"), Some(&o));
        assert_eq!((d.desired, d.rule), (Desired::Down, Rule::Holiday));
        s.protect = true;
        let down = Override {
            desired: Desired::Down,
            ..o
        };
        let d = s.decide(ts("2026-11-23T10:00:00Z"), Some(&down));
        assert_eq!((d.desired, d.rule), (Desired::Up, Rule::Protect));
    }

    #[test]
    fn next_change_finds_the_evening() {
        let s = sched("Mon-Fri 08:00-20:00 Europe/Berlin", &[]);
        assert_eq!(
            s.next_change(ts("2026-11-20T10:00:00Z"), None, 8),
            Some(ts("2026-11-20T19:00:00Z"))
        );
        // Friday evening -> Monday morning.
        assert_eq!(
            s.next_change(ts("2026-11-20T19:00:00Z"), None, 8),
            Some(ts("2026-11-23T07:00:00Z"))
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |s: &str| Uptime::try_from(s.to_string()).expect_err(s);
        assert!(err("Mo-Fr 08:00-20:00 UTC").contains("unknown day `Mo`"));
        assert!(err("Mon-Fri 8:00-20:00 UTC").contains("bad time `8:00`"));
        assert!(err("Mon-Fri 08:00-25:00 UTC").contains("bad time `25:00`"));
        assert!(err("Mon-Fri 08:00-20:00 Mars/Olympus").contains("unknown time zone"));
        assert!(err("Mon-Fri 08:00-08:00 UTC").contains("empty"));
        assert!(err("Mon-Fri").contains("bad uptime spec"));
        assert!(err("").contains("empty uptime"));
        assert!(Holiday::try_from("2026-12-31..2026-12-01".to_string())
            .expect_err("reversed")
            .contains("ends before"));
        assert!(Holiday::try_from("24.12.2026".to_string())
            .expect_err("format")
            .contains("bad date"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// The desired state is a function of time alone: between two consecutive
            /// change points it does not change, so a tick that arrives late sees the same
            /// answer as one on time.
            #[test]
            fn no_change_before_next_change(offset in 0i64..(14 * 24 * 3600)) {
                // Two weeks around Berlin's spring-forward, with a window inside its gap.
                let s = sched(
                    "Mon-Fri 08:00-20:00 Europe/Berlin, Sun 22:00-02:00 America/New_York, Sun 02:30-04:00 Europe/Berlin",
                    &["2026-03-25"],
                );
                let start = ts("2026-03-20T00:00:00Z").checked_add(offset.seconds()).expect("in range");
                let now = s.decide(start, None).desired;
                if let Some(next) = s.next_change(start, None, 8) {
                    prop_assert_ne!(s.decide(next, None).desired, now);
                    let before = next.checked_sub(1.second()).expect("in range");
                    prop_assert_eq!(s.decide(before, None).desired, now);
                }
            }
        }
    }
}
