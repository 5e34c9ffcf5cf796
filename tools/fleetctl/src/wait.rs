//! `fleetctl wait <cluster>`: look until the cluster is ready, saying what it is doing.

use crate::render::StatusRow;

/// What one look at a cluster found.
#[derive(Debug, Clone, PartialEq)]
pub enum Look {
    /// `Cluster Ready` was published for the incarnation that runs.
    Ready,
    /// On its way up: the progress line (what EKS shows, then the step).
    Rising(String),
    /// The schedule wants it down and nothing holds it up: it will not come up by itself.
    WantedDown(String),
}

/// The look at `row`; `step`: the step a tick takes (or would take) now.
pub fn look(row: &StatusRow, step: Option<&str>) -> Look {
    if row.desired != "up" {
        return Look::WantedDown(format!(
            "{} is wanted down ({}): `fleetctl up {} --for 3h --reason …` first",
            row.name, row.reason, row.name
        ));
    }
    if row.ready() {
        return Look::Ready;
    }
    let mut line = format!("{}: {}", row.name, row.actual);
    if let Some(step) = step {
        line.push_str(&format!(" · {step}"));
    }
    if let Some(e) = &row.recorded.last_error {
        line.push_str(&format!(
            " · failing ({} in a row): {e}",
            row.recorded.attempts
        ));
    }
    Look::Rising(line)
}

/// A duration argument (`30m`, `15s`, `1h30m`) in real time.
///
/// # Errors
/// Not a positive duration of hours, minutes or seconds: a line naming `flag`.
pub fn duration(flag: &str, text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{flag}: `{text}` is not a duration such as 30m, 15s or 1h30m");
    let span: jiff::Span = text.parse().map_err(|_| bad())?;
    let signed = jiff::SignedDuration::try_from(span).map_err(|_| bad())?;
    match std::time::Duration::try_from(signed) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(desired: &str, phase: &str, announced: bool) -> StatusRow {
        serde_json::from_value(json!({
            "name": "staging", "desired": desired, "reason": "inside uptime",
            "actual": "ACTIVE, 0 nodegroups",
            "recorded": {"phase": phase, "announced": announced}
        }))
        .expect("row")
    }

    #[test]
    fn ready_means_cluster_ready_was_published() {
        assert_eq!(look(&row("up", "up", true), None), Look::Ready);
        assert_eq!(
            look(&row("up", "down", true), Some("create-nodegroup general")),
            Look::Rising("staging: ACTIVE, 0 nodegroups · create-nodegroup general".into())
        );
        assert!(matches!(
            look(&row("up", "up", false), None),
            Look::Rising(_)
        ));
        assert!(
            matches!(look(&row("down", "up", true), None), Look::WantedDown(m) if m.contains("fleetctl up staging"))
        );
    }

    #[test]
    fn durations_are_real_time() {
        assert_eq!(
            duration("--timeout", "30m"),
            Ok(std::time::Duration::from_secs(1800))
        );
        assert_eq!(
            duration("--interval", "1h30m"),
            Ok(std::time::Duration::from_secs(5400))
        );
        for bad in ["3x", "0s", "-5m", ""] {
            assert!(duration("--timeout", bad)
                .expect_err(bad)
                .starts_with("--timeout: "));
        }
    }
}
