//! The demo runs end to end and does what its timeline says, on its default Monday and on
//! Mondays whose weeks change the clocks: nothing in it depends on today's date.

use fleet_tests::demo::{self, Day};

async fn the_day_goes_as_promised(monday: &str) {
    let day = Day::parse(monday).expect("a Monday");
    let report = demo::run(day, |_| {}).await.expect("demo runs");
    demo::check(&report).unwrap_or_else(|e| panic!("{monday}: {e}"));
    // Slack hears about DNS changes and the drain; nothing failed.
    assert!(
        report
            .slack
            .iter()
            .all(|t| !t.to_lowercase().contains("fail")),
        "{monday}: a clean day reports no failure: {:?}",
        report.slack
    );
    // No error text reaches the cost report: every warning is a sentence for people.
    let warnings = report.cost["warnings"].to_string();
    for bad in ["unhandled error", "failed:", "Unknown"] {
        assert!(
            !warnings.contains(bad),
            "{monday}: cost warnings {warnings}"
        );
    }
}

#[tokio::test]
async fn the_default_monday() {
    assert_eq!(
        Day::default(),
        Day::parse(demo::DEFAULT_MONDAY).expect("default")
    );
    the_day_goes_as_promised(demo::DEFAULT_MONDAY).await;
}

/// Europe/Berlin went to summer time the day before (2027-03-28): staging's morning and
/// the operator's evening are an hour earlier in UTC, sandbox-us's Sunday-night window
/// closed before the demo starts.
#[tokio::test]
async fn a_monday_after_berlin_changes_to_summer_time() {
    the_day_goes_as_promised("2027-03-29").await;
}

/// New York went back to standard time the day before (2026-11-01), and the month has
/// no history before the Monday.
#[tokio::test]
async fn a_monday_after_new_york_goes_back() {
    the_day_goes_as_promised("2026-11-02").await;
}

#[tokio::test]
async fn a_holiday_monday_is_refused_with_the_reason() {
    let err = demo::run(Day::parse("2026-12-28").expect("a Monday"), |_| {})
        .await
        .expect_err("a holiday of staging");
    assert!(err.contains("holiday of `staging`"), "{err}");
}

/// The Monday on or after `date` that is not a holiday of the example config.
fn working_monday(mut date: jiff::civil::Date) -> String {
    loop {
        if date.weekday() == jiff::civil::Weekday::Monday {
            let monday = date.to_string();
            if !monday_is_refused(&monday) {
                return monday;
            }
        }
        date = date.tomorrow().expect("a date");
    }
}

fn monday_is_refused(monday: &str) -> bool {
    let text =
        std::fs::read_to_string(fleet_tests::workspace_root().join("infra/fleet.example.toml"))
            .expect("example config");
    let config = fleet_shared::config::FleetConfig::parse(&text).expect("config");
    let date: jiff::civil::Date = monday.parse().expect("date");
    config.clusters.iter().any(|c| {
        c.holidays.iter().any(|h| {
            [-1i64, 0, 1].iter().any(|o| {
                date.checked_add(jiff::Span::new().days(*o))
                    .is_ok_and(|d| h.first <= d && d <= h.last)
            })
        })
    })
}

/// The local runner with `FLEET_NOW` five years behind and five years ahead of the real
/// clock: every tick, DNS sync and drain of the day completes (the drain and the DNS sync
/// count their time on the real clock, their decisions on the virtual one).
#[tokio::test]
async fn five_years_behind_and_ahead_of_the_real_clock() {
    // Real time on purpose: the point is the distance from the machine's clock.
    let today = jiff::Zoned::now().date();
    for years in [-5i64, 5] {
        let date = today
            .checked_add(jiff::Span::new().years(years))
            .expect("a date");
        the_day_goes_as_promised(&working_monday(date)).await;
    }
}
