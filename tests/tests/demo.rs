//! The demo runs end to end and does what its timeline says.

#[tokio::test]
async fn the_demo_day_goes_as_promised() {
    let report = fleet_tests::demo::run(|_| {}).await.expect("demo runs");
    fleet_tests::demo::check(&report).expect("demo outcome");
    // Slack hears about DNS changes and the drain; nothing failed.
    assert!(
        report
            .slack
            .iter()
            .all(|t| !t.to_lowercase().contains("fail")),
        "a clean day reports no failure: {:?}",
        report.slack
    );
}
