//! `uptime`: the specs (`Mon-Fri 08:00-20:00 Europe/Berlin`), their parsing, and the
//! local instants their windows start and end at (see the parent module on DST).

use std::fmt;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;

pub(super) const MINUTES_PER_DAY: u16 = 24 * 60;

/// One `uptime` spec: `[days] HH:MM-HH:MM <IANA zone>`, e.g. `Mon-Fri 08:00-20:00 Europe/Berlin`.
#[derive(Clone)]
pub struct UptimeSpec {
    /// Bit `n` set = the window starts on weekday `n` (0 = Monday).
    pub(super) days: u8,
    pub(super) start: u16,
    pub(super) end: u16,
    pub(super) tz: TimeZone,
    pub(super) tz_name: String,
    text: String,
}

impl fmt::Debug for UptimeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UptimeSpec({:?})", self.text)
    }
}

impl PartialEq for UptimeSpec {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for UptimeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_day(token: &str) -> Result<u8, String> {
    let lower = token.to_ascii_lowercase();
    let short = lower.get(..3).unwrap_or("");
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    DAY_NAMES
        .iter()
        .position(|d| *d == lower || (full.contains(&lower.as_str()) && *d == short))
        .map(|i| i as u8)
        .ok_or_else(|| {
            format!("unknown day `{token}` (expected Mon, Tue, Wed, Thu, Fri, Sat or Sun)")
        })
}

/// A weekday written as in uptime specs (`Mon`, `monday`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct DayName(pub Weekday);

impl TryFrom<String> for DayName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let i = parse_day(s.trim())?;
        Ok(DayName(
            Weekday::from_monday_zero_offset(i as i8).map_err(|e| e.to_string())?,
        ))
    }
}

fn parse_days(text: &str) -> Result<u8, String> {
    let lower = text.to_ascii_lowercase();
    if lower == "daily" || lower == "*" || lower == "mon-sun" {
        return Ok(0x7f);
    }
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse_day(a)?, parse_day(b)?);
            // A range wraps around the week when it ends before it starts: Sun-Thu.
            let mut mask = 0u8;
            let mut d = a;
            loop {
                mask |= 1 << d;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
            Ok(mask)
        }
        None => Ok(1 << parse_day(text)?),
    }
}

fn parse_clock(text: &str) -> Result<u16, String> {
    let bad = || format!("bad time `{text}` (expected HH:MM, 00:00 to 24:00)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl std::str::FromStr for UptimeSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let parts: Vec<&str> = text.split_whitespace().collect();
        let (days, window, zone) = match parts.as_slice() {
            [days, window, zone] => (parse_days(days)?, *window, *zone),
            [window, zone] => (0x7f, *window, *zone),
            _ => {
                return Err(format!(
                    "bad uptime spec `{text}` (expected e.g. `Mon-Fri 08:00-20:00 Europe/Berlin`)"
                ))
            }
        };
        let (start, end) = window
            .split_once('-')
            .ok_or_else(|| format!("bad window `{window}` (expected HH:MM-HH:MM)"))?;
        let (start, end) = (parse_clock(start)?, parse_clock(end)?);
        if start == MINUTES_PER_DAY {
            return Err(format!("window `{window}` cannot start at 24:00"));
        }
        if start == end {
            return Err(format!(
                "window `{window}` is empty (for all day write 00:00-24:00)"
            ));
        }
        let tz = TimeZone::get(zone).map_err(|_| {
            format!("unknown time zone `{zone}` (expected an IANA name such as Europe/Berlin)")
        })?;
        Ok(UptimeSpec {
            days,
            start,
            end,
            tz,
            tz_name: zone.to_string(),
            text: text.to_string(),
        })
    }
}

fn day_index(w: Weekday) -> u8 {
    w.to_monday_zero_offset() as u8
}

impl UptimeSpec {
    /// The zone its times are local to.
    pub fn zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The zone's IANA name (`Europe/Berlin`), as the config gave it.
    pub fn zone_name(&self) -> &str {
        &self.tz_name
    }

    fn starts_on(&self, w: Weekday) -> bool {
        self.days & (1 << day_index(w)) != 0
    }

    fn crosses_midnight(&self) -> bool {
        self.end < self.start
    }

    /// Whether `at` falls inside one of this spec's windows: the window that starts on
    /// the local day of `at`, or the one that started the local day before and crosses
    /// midnight (or ends late because of a shift). Each window is the interval from the
    /// first occurrence of its start to the first occurrence of its end.
    pub fn contains(&self, at: Timestamp) -> bool {
        let today = at.to_zoned(self.tz.clone()).date();
        [today.yesterday().ok(), Some(today)]
            .into_iter()
            .flatten()
            .any(|day| {
                self.window(day)
                    .is_some_and(|(start, end)| start <= at && at < end)
            })
    }

    /// The window that starts on local `day`, as instants: `None` when the spec has no
    /// window that day.
    fn window(&self, day: Date) -> Option<(Timestamp, Timestamp)> {
        if !self.starts_on(day.weekday()) {
            return None;
        }
        let end = if self.crosses_midnight() {
            self.end + MINUTES_PER_DAY
        } else {
            self.end
        };
        Some((
            local_instant(day, self.start, &self.tz)?,
            local_instant(day, end, &self.tz)?,
        ))
    }

    /// Instants at which this spec's windows open or close between `from` and `to` (both
    /// approximate by a day): the candidates for the next change of desired state.
    pub(super) fn boundaries(&self, from: Timestamp, to: Timestamp, out: &mut Vec<Timestamp>) {
        let Ok(first) = from.to_zoned(self.tz.clone()).date().yesterday() else {
            return;
        };
        let last = to.to_zoned(self.tz.clone()).date();
        let mut day = first;
        while day <= last {
            for minute in [self.start, self.end] {
                if let Some(ts) = local_instant(day, minute, &self.tz) {
                    out.push(ts);
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
    }
}

/// The instant of a local date and minute of day (1440 = next midnight) in `tz`: the first
/// occurrence of a time a fall-back repeats; for a time a spring-forward skips, the instant
/// the gap ends (the first instant whose local time is past it).
pub(super) fn local_instant(day: Date, minute: u16, tz: &TimeZone) -> Option<Timestamp> {
    let (day, minute) = if minute >= MINUTES_PER_DAY {
        (day.tomorrow().ok()?, minute - MINUTES_PER_DAY)
    } else {
        (day, minute)
    };
    let time = Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).ok()?;
    let dt = DateTime::from_parts(day, time);
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        // Read with the offset before the gap, the time lies at or past the transition
        // (at it when the time is the gap's first instant); the transition is the last
        // one up to that instant.
        AmbiguousOffset::Gap { before, .. } => {
            let past = before.to_timestamp(dt).ok()?.checked_add(1.second()).ok()?;
            tz.preceding(past).next().map(|t| t.timestamp())
        }
        // Compatible: the earlier instant of a fold, the only one otherwise.
        _ => ambiguous.compatible().ok(),
    }
}

/// The comma-separated list of specs in a cluster's `uptime` key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct Uptime(pub Vec<UptimeSpec>);

impl TryFrom<String> for Uptime {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let specs = text
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<UptimeSpec>, String>>()?;
        if specs.is_empty() {
            return Err(
                "empty uptime: give at least one spec such as `Mon-Fri 08:00-20:00 Europe/Berlin`"
                    .into(),
            );
        }
        Ok(Uptime(specs))
    }
}

impl Uptime {
    /// The first spec whose window contains `at`.
    pub fn matching(&self, at: Timestamp) -> Option<&UptimeSpec> {
        self.0.iter().find(|s| s.contains(at))
    }
}
