//! The function binaries served the way Lambda serves them: through the Runtime API (a
//! local stand-in), not the local runner. Same handler, same decoding; errors come back
//! as Lambda error responses with a type that says what kind of problem it was.

use std::process::Stdio;
use std::time::Duration;

use fleet_tests::demo::bin_dir;
use fleet_tests::fakes::lambda::{Answer, FakeLambda};
use fleet_tests::fakes::slack::FakeSlack;
use fleet_tests::{sdk, seed_local_account, workspace_root};
use serde_json::json;

async fn serve(function: &str, lambda: &FakeLambda) -> tokio::process::Child {
    lambda
        .function_process(&bin_dir().join(function), function)
        .env("FLEET_STACK", "fleet-test")
        .env(
            "FLEET_CONFIG",
            workspace_root().join("infra/fleet.example.toml"),
        )
        // Ignored in Lambda: the handler must act at the real time.
        .env("FLEET_NOW", "2001-01-01T00:00:00Z")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("function binary (make test builds it first)")
}

#[tokio::test]
async fn functions_answer_through_the_runtime_api() {
    let slack = FakeSlack::start().await;
    seed_local_account(&sdk(), &slack.url).await.expect("seed");
    let lambda = FakeLambda::start().await;
    let _scheduler = serve("cluster-scheduler", &lambda).await;

    let plan = lambda.invoke(json!({"action": "plan"}));
    let Some(Answer::Response(r)) = lambda.answer(&plan, Duration::from_secs(60)).await else {
        panic!("plan should answer");
    };
    let names: Vec<&str> = r["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, vec!["staging", "sandbox-us", "storefront-preview"]);
    let at: jiff::Timestamp = r["at"].as_str().expect("at").parse().expect("ts");
    assert!(
        at.as_second() > 1_700_000_000,
        "FLEET_NOW is ignored in Lambda"
    );

    let bad = lambda.invoke(json!({"action": "nuke"}));
    let Some(Answer::Error(e)) = lambda.answer(&bad, Duration::from_secs(30)).await else {
        panic!("a bad document should be an error response");
    };
    assert_eq!(e["errorType"], "BadRequest");
    assert!(e["errorMessage"]
        .as_str()
        .is_some_and(|m| m.contains("unknown action `nuke`")));

    // Still serving after an error.
    let status = lambda.invoke(json!({"action": "status"}));
    assert!(matches!(
        lambda.answer(&status, Duration::from_secs(30)).await,
        Some(Answer::Response(_))
    ));

    let lambda2 = FakeLambda::start().await;
    let _drainer = serve("spot-drainer", &lambda2).await;
    let bogus = lambda2.invoke(json!({"source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning", "id": "x", "time": "2026-11-23T10:00:00Z", "detail": {"instance-id": 42}}));
    let Some(Answer::Error(e)) = lambda2.answer(&bogus, Duration::from_secs(60)).await else {
        panic!("a malformed event should be an error response");
    };
    assert!(
        e["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("detail.instance-id")),
        "{e}"
    );
}
