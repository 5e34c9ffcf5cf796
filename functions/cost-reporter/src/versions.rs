//! EKS version support: a cluster on a version past standard support bills $0.60 an hour
//! instead of $0.10. The dates come from EKS `DescribeClusterVersions`; when the API
//! cannot say (an older partition, a version it no longer lists), from this table.

use jiff::civil::Date;
use serde::Serialize;

/// End of standard support per minor version, from the Amazon EKS Kubernetes release
/// calendar (1.35: standard support to 2027-03-27). Last checked: 2026-11-30.
pub const STANDARD_SUPPORT_ENDS: [(&str, &str); 8] = [
    ("1.28", "2024-11-26"),
    ("1.29", "2025-03-23"),
    ("1.30", "2025-07-23"),
    ("1.31", "2025-11-26"),
    ("1.32", "2026-03-23"),
    ("1.33", "2026-07-29"),
    ("1.34", "2026-12-02"),
    ("1.35", "2027-03-27"),
];
pub const TABLE_CHECKED: &str = "2026-11-30";

/// Control-plane price per hour in standard and in extended support (USD).
pub const STANDARD_HOURLY: f64 = 0.10;
pub const EXTENDED_HOURLY: f64 = 0.60;
/// Warn this many days before standard support ends.
pub const WARN_DAYS: i64 = 60;

pub fn table_end(version: &str) -> Option<Date> {
    STANDARD_SUPPORT_ENDS
        .iter()
        .find(|(v, _)| *v == version)
        .and_then(|(_, d)| d.parse().ok())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionWarning {
    pub cluster: String,
    pub version: String,
    pub standard_support_ends: Date,
    /// `api` or `table (checked <date>)`.
    pub source: String,
    pub message: String,
}

/// A warning when `version` is within [`WARN_DAYS`] of, or past, the end of standard support.
pub fn check(
    cluster: &str,
    version: &str,
    ends: Option<(Date, String)>,
    today: Date,
) -> Option<VersionWarning> {
    let (end, source) = ends?;
    let days_left = (end - today).get_days() as i64;
    let days_left = if end < today {
        -((today - end).get_days() as i64)
    } else {
        days_left
    };
    let extra = EXTENDED_HOURLY - STANDARD_HOURLY;
    let message = if end <= today {
        format!(
            "EKS {version} left standard support on {end}: the control plane bills ${EXTENDED_HOURLY:.2}/h instead of ${STANDARD_HOURLY:.2}/h (+${extra:.2} per hour up); upgrade the blueprint"
        )
    } else if days_left <= WARN_DAYS {
        format!(
            "EKS {version} leaves standard support on {end} ({days_left} days): after that the control plane bills ${EXTENDED_HOURLY:.2}/h instead of ${STANDARD_HOURLY:.2}/h"
        )
    } else {
        return None;
    };
    Some(VersionWarning {
        cluster: cluster.to_string(),
        version: version.to_string(),
        standard_support_ends: end,
        source,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().expect("date")
    }

    #[test]
    fn warnings() {
        let table = |v: &str| table_end(v).map(|e| (e, "table".to_string()));
        let today = d("2026-11-22");
        assert!(check("a", "1.32", table("1.32"), today)
            .is_some_and(|w| w.message.contains("left standard support")));
        assert!(
            check("a", "1.34", table("1.34"), today).is_some_and(|w| w.message.contains("10 days"))
        );
        assert_eq!(check("a", "1.35", table("1.35"), today), None);
        assert_eq!(check("a", "9.99", table("9.99"), today), None);
    }
}
