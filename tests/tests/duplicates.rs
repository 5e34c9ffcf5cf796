//! Two invocations racing on the same event, for the functions whose other tests deliver
//! twice one after the other: the outcome equals one delivery. (The scheduler's racing
//! ticks and the drainer's racing warnings are in their own tests.)

use fleet_shared::schedule::Desired;
use fleet_tests::fixtures::cost::{forecast_rule, CostFixture};
use fleet_tests::fixtures::dns::DnsFixture;
use fleet_tests::fixtures::dora::{
    github_examples, github_request, DoraFixture, GITHUB_SECRET, OCTO_SERVICE,
};
use serde_json::json;

const LB: &str = "a1b2c3-1234567890.eu-west-1.elb.amazonaws.com";

/// Both racing syncs can list "nothing there" before either creates: one of them waits
/// its turn (`Pending`, retried by Lambda), so one Cloudflare record is created, not two.
#[tokio::test]
async fn racing_dns_syncs_create_each_record_once() {
    let f = DnsFixture::start(&fleet_tests::fixtures::dns::dns_section(&[
        ("cloudflare", "app.{zone}"),
        ("route53", "app.{zone}"),
    ]))
    .await;
    f.set_ingress(Some(LB));
    f.record_phase(Desired::Up, "g1").await;
    let ready = f.bus_event("Cluster Ready", "g1");
    for _ in 0..5 {
        let (a, b) = tokio::join!(f.call(ready.clone()), f.call(ready.clone()));
        for r in [&a, &b] {
            if let Err(e) = r {
                assert!(e.to_string().contains("another DNS sync"), "{e}");
            }
        }
        assert!(a.is_ok() || b.is_ok(), "{a:?} {b:?}");
        assert_eq!(f.cf_records("app").len(), 1, "{:?}", f.cf_records("app"));
        assert_eq!(f.r53_records("app").await.len(), 1);
    }
    assert_eq!(
        f.cloudflare.writes().len(),
        1,
        "created once, then left alone"
    );
}

#[tokio::test]
async fn racing_webhook_deliveries_store_the_event_once() {
    let f = DoraFixture::start(OCTO_SERVICE, false).await;
    let run = github_examples("workflow_run")
        .into_iter()
        .find(|e| e["workflow_run"]["conclusion"] == "success")
        .expect("example");
    // The same delivery twice at once, then the same run through a second hook.
    let first = github_request("workflow_run", &run, "guid-1", GITHUB_SECRET);
    let second = github_request("workflow_run", &run, "guid-2", GITHUB_SECRET);
    let (a, b, c) = tokio::join!(f.post(first.clone()), f.post(first), f.post(second));
    let statuses: Vec<&str> = [&a, &b, &c]
        .iter()
        .map(|(code, body)| {
            assert_eq!(*code, 200, "{body}");
            body["status"].as_str().unwrap_or_default()
        })
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "stored").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(f.stored(&f.service("octo")).await.len(), 1);
}

#[tokio::test]
async fn racing_daily_dora_runs_send_one_digest() {
    let f = DoraFixture::start(OCTO_SERVICE, false).await;
    let daily = json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}});
    // Monday, the default digest day.
    let (a, b) = tokio::join!(
        f.aggregate(daily.clone(), "2026-11-23T06:00:00Z"),
        f.aggregate(daily, "2026-11-23T06:00:00Z")
    );
    a.expect("first");
    b.expect("second");
    let digests = f
        .slack
        .texts()
        .into_iter()
        .filter(|t| t.contains("DORA"))
        .count();
    assert_eq!(digests, 1);
}

#[tokio::test]
async fn racing_daily_cost_reports_post_to_slack_once() {
    let f = CostFixture::start(
        &[("destroy", "Mon-Fri 08:00-20:00 UTC")],
        "",
        forecast_rule(10.0, 8.0, 12.0),
    )
    .await;
    let daily = json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}});
    let (a, b) = tokio::join!(
        f.call(daily.clone(), "2026-11-23T06:30:00Z"),
        f.call(daily.clone(), "2026-11-23T06:30:00Z")
    );
    a.expect("first");
    b.expect("second");
    // And the schedule firing again later that day.
    f.call(daily, "2026-11-23T09:00:00Z").await.expect("third");
    let posts = f
        .slack
        .texts()
        .into_iter()
        .filter(|t| t.contains("Fleet cost"))
        .count();
    assert_eq!(posts, 1);
}
