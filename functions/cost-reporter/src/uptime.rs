//! Hours up, from the scheduler's recorded transitions, and hours the schedule plans.
//! Pure functions.

use fleet_shared::schedule::{ClusterSchedule, Desired};
use fleet_shared::state::model::{uptime_hours, Transition, TransitionKind};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Whether the cluster was up at `at`, by its last transition before then.
pub fn up_at(transitions: &[Transition], at: Timestamp) -> bool {
    transitions
        .iter()
        .filter(|t| t.at < at && t.kind != TransitionKind::Failed)
        .max_by_key(|t| t.at)
        .is_some_and(|t| t.kind == TransitionKind::Up)
}

/// Hours up in `[from, to)`.
pub fn hours_up(transitions: &[Transition], from: Timestamp, to: Timestamp) -> f64 {
    if to <= from {
        return 0.0;
    }
    uptime_hours(transitions, up_at(transitions, from), from, to)
}

/// Hours up per UTC day of `[from, to)`.
pub fn hours_by_day(transitions: &[Transition], from: Date, to: Timestamp) -> Vec<(Date, f64)> {
    let mut out = Vec::new();
    let mut day = from;
    loop {
        let Ok(start) = day.to_zoned(TimeZone::UTC).map(|z| z.timestamp()) else {
            break;
        };
        if start >= to {
            break;
        }
        let end = start.checked_add(24.hours()).unwrap_or(to).min(to);
        out.push((day, hours_up(transitions, start, end)));
        match day.tomorrow() {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    out
}

/// Hours the schedule (holidays and `protect` included, overrides not) keeps the cluster
/// up in `[from, to)`.
pub fn scheduled_hours(schedule: &ClusterSchedule, from: Timestamp, to: Timestamp) -> f64 {
    scheduled_hours_any(std::slice::from_ref(schedule), from, to)
}

/// Hours in `[from, to)` in which any of `schedules` is up: a `[[network]]` is up while
/// any of its clusters is.
pub fn scheduled_hours_any(schedules: &[ClusterSchedule], from: Timestamp, to: Timestamp) -> f64 {
    let mut at = from;
    let mut seconds = 0i64;
    // A change at least every few days per schedule bounds the loop; 200 steps per
    // schedule cover any month.
    for _ in 0..200 * schedules.len().max(1) {
        if at >= to {
            break;
        }
        let up = schedules
            .iter()
            .any(|s| s.decide(at, None).desired == Desired::Up);
        let next = schedules
            .iter()
            .map(|s| s.next_change(at, None, 40).unwrap_or(to))
            .min()
            .unwrap_or(to)
            .min(to);
        let next = if next <= at { to } else { next };
        if up {
            seconds += next.as_second() - at.as_second();
        }
        at = next;
    }
    seconds as f64 / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_shared::schedule::UptimeSpec;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn t(kind: TransitionKind, at: &str) -> Transition {
        Transition {
            took_seconds: None,
            kind,
            at: ts(at),
            detail: String::new(),
        }
    }

    #[test]
    fn hours_from_transitions() {
        let tr = vec![
            t(TransitionKind::Up, "2026-11-02T07:00:00Z"),
            t(TransitionKind::Down, "2026-11-02T19:00:00Z"),
            t(TransitionKind::Up, "2026-11-03T07:00:00Z"),
        ];
        assert_eq!(
            hours_up(&tr, ts("2026-11-01T00:00:00Z"), ts("2026-11-03T12:00:00Z")),
            17.0
        );
        // Up since before the period: counted from its start.
        assert_eq!(
            hours_up(&tr, ts("2026-11-03T10:00:00Z"), ts("2026-11-03T12:00:00Z")),
            2.0
        );
        let days = hours_by_day(
            &tr,
            "2026-11-02".parse().expect("date"),
            ts("2026-11-03T12:00:00Z"),
        );
        assert_eq!(
            days.iter().map(|d| d.1).collect::<Vec<_>>(),
            vec![12.0, 5.0]
        );
    }

    #[test]
    fn a_weekday_schedule_plans_twelve_hours_a_weekday() {
        let spec: UptimeSpec = "Mon-Fri 08:00-20:00 UTC".parse().expect("spec");
        let schedule = ClusterSchedule {
            uptime: Some(fleet_shared::schedule::Uptime(vec![spec])),
            holidays: vec![],
            holiday_zone: TimeZone::UTC,
            protect: false,
        };
        // November 2026: 21 weekdays.
        let h = scheduled_hours(
            &schedule,
            ts("2026-11-01T00:00:00Z"),
            ts("2026-12-01T00:00:00Z"),
        );
        assert_eq!(h, 21.0 * 12.0);
    }

    #[test]
    fn a_network_is_scheduled_while_any_of_its_clusters_is() {
        let schedule = |text: &str| ClusterSchedule {
            uptime: Some(fleet_shared::schedule::Uptime(vec![text
                .parse()
                .expect("spec")])),
            holidays: vec![],
            holiday_zone: TimeZone::UTC,
            protect: false,
        };
        let day = (ts("2026-11-23T00:00:00Z"), ts("2026-11-24T00:00:00Z"));
        let both = [
            schedule("Mon-Fri 08:00-20:00 UTC"),
            schedule("Mon-Fri 10:00-22:00 UTC"),
        ];
        // 08:00-22:00: the union, not the sum.
        assert_eq!(scheduled_hours_any(&both, day.0, day.1), 14.0);
        assert_eq!(scheduled_hours_any(&both[..1], day.0, day.1), 12.0);
    }
}
