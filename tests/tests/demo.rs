//! The demo runs end to end and does what its timeline says.

#[tokio::test]
async fn the_demo_day_goes_as_promised() {
    let report = fleet_tests::demo::run(|_| {}).await.expect("demo runs");
    fleet_tests::demo::check(&report).expect("demo outcome");
    assert!(
        report.slack.is_empty(),
        "a clean day pages nobody: {:?}",
        report.slack
    );
}
