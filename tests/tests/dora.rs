//! dora-webhook and dora-aggregator against moto, with GitHub's published example
//! payloads signed here as GitHub signs them.

use dora_webhook::signature::sign_sha256;
use fleet_shared::dora::DoraEvent;
use fleet_tests::fixtures::dora::{
    function_url_request, github_examples, github_request, DoraFixture, FLAGGER_TOKEN, FLUX_SECRET,
    GITHUB_SECRET,
};
use serde_json::{json, Value};

const SERVICES: &str = r#"
incident_label = "bug"

[[dora.service]]
name = "hello-{suffix}"
repo = "Codertocat/Hello-World"
branch = "master"
deployments_from = "deployment_status"
environment = "production"

[[dora.service]]
name = "octo-{suffix}"
repo = "octo-org/octo-repo"
branch = "master"
deployments_from = "workflow_run"
deploy_workflows = [".github/workflows/test.yml"]

[[dora.service]]
name = "apps-{suffix}"
repo = "your-org/apps"
deployments_from = "flux"
flux_object = "Kustomization/flux-system/apps"

[[dora.service]]
name = "podinfo-{suffix}"
repo = "your-org/podinfo"
deployments_from = "flagger"
flagger_canary = "prod/podinfo"
"#;

fn example(event: &str, pick: impl Fn(&Value) -> bool) -> Value {
    github_examples(event)
        .into_iter()
        .find(|e| pick(e))
        .unwrap_or_else(|| panic!("no matching `{event}` example"))
}

fn kinds(events: &[DoraEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            DoraEvent::Push { .. } => "push",
            DoraEvent::Deployment { .. } => "deployment",
            DoraEvent::MergedPullRequest { .. } => "merged-pr",
            DoraEvent::IncidentOpened { .. } => "incident-opened",
            DoraEvent::IncidentClosed { .. } => "incident-closed",
            DoraEvent::Revision { .. } => "revision",
        })
        .collect()
}

#[tokio::test]
async fn github_examples_are_verified_normalized_and_stored() {
    let f = DoraFixture::start(SERVICES, false).await;
    let hello = f.service("hello");
    let octo = f.service("octo");

    let branch_push = example("push", |e| e["ref"] == "refs/heads/master");
    assert_eq!(f.github("push", &branch_push).await.0, 200);
    let tag_push = example("push", |e| {
        e["ref"] == "refs/tags/simple-tag" && e["deleted"] == false
    });
    assert_eq!(f.github("push", &tag_push).await.0, 202);

    let deployed = example("workflow_run", |e| {
        e["workflow_run"]["conclusion"] == "success"
    });
    let (status, body) = f.github("workflow_run", &deployed).await;
    assert_eq!((status, body["stored"].as_u64()), (200, Some(1)), "{body}");
    let requested = example("workflow_run", |e| e["action"] == "requested");
    assert_eq!(f.github("workflow_run", &requested).await.0, 202);

    let success = example("deployment_status", |e| {
        e["deployment_status"]["state"] == "success"
    });
    assert_eq!(f.github("deployment_status", &success).await.0, 200);
    let pending = example("deployment_status", |e| {
        e["deployment_status"]["state"] == "in_progress"
    });
    assert_eq!(f.github("deployment_status", &pending).await.0, 202);

    let incident = example("issues", |e| e["action"] == "opened");
    assert_eq!(f.github("issues", &incident).await.0, 200);
    let unmerged = example("pull_request", |e| e["action"] == "closed");
    assert_eq!(f.github("pull_request", &unmerged).await.0, 202);

    let (status, body) = f.github("watch", &example("watch", |_| true)).await;
    assert_eq!(status, 202, "{body}");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("watch")));
    let (status, body) = f.github("ping", &example("ping", |_| true)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("pong")));

    assert_eq!(
        kinds(&f.stored(&hello).await),
        // Time order: opened 15:20:18, deployed 15:20:55, pushed 15:20:57 (2019-05-15).
        vec!["incident-opened", "deployment", "push"]
    );
    assert_eq!(kinds(&f.stored(&octo).await), vec!["deployment"]);
}

#[tokio::test]
async fn requests_without_a_valid_sha256_signature_get_401_and_store_nothing() {
    let f = DoraFixture::start(SERVICES, false).await;
    let payload = example("deployment_status", |e| {
        e["deployment_status"]["state"] == "success"
    });
    let body = payload.to_string();
    let good = sign_sha256(GITHUB_SECRET.as_bytes(), body.as_bytes());
    let request = |headers: &[(&str, &str)], body: &str| {
        let mut h = vec![
            ("x-github-event", "deployment_status"),
            ("x-github-delivery", "d-1"),
        ];
        h.extend_from_slice(headers);
        function_url_request("/github", "", &h, body.as_bytes(), false)
    };
    let tampered = body.replace("production", "prodution");
    let wrong_secret = sign_sha256(b"not-the-secret", body.as_bytes());
    let both = format!("{good},{good}");
    let cases = [
        (
            "tampered body",
            request(&[("x-hub-signature-256", &good)], &tampered),
        ),
        (
            "wrong secret",
            request(&[("x-hub-signature-256", &wrong_secret)], &body),
        ),
        (
            "SHA-1 only",
            request(
                &[(
                    "x-hub-signature",
                    "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6",
                )],
                &body,
            ),
        ),
        // Function URLs join repeated headers with commas.
        (
            "duplicated",
            request(&[("x-hub-signature-256", &both)], &body),
        ),
        (
            "garbled",
            request(&[("x-hub-signature-256", "sha256=not-hex")], &body),
        ),
        ("missing", request(&[], &body)),
    ];
    for (what, r) in cases {
        let (status, body) = f.post(r).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(!body.to_string().contains(GITHUB_SECRET));
    }
    assert!(f.stored(&f.service("hello")).await.is_empty());
}

#[tokio::test]
async fn redeliveries_and_the_same_event_twice_are_stored_once() {
    let f = DoraFixture::start(SERVICES, false).await;
    let payload = example("workflow_run", |e| {
        e["workflow_run"]["conclusion"] == "success"
    });
    let first = f
        .post(github_request(
            "workflow_run",
            &payload,
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            GITHUB_SECRET,
        ))
        .await;
    assert_eq!((first.0, first.1["status"].as_str()), (200, Some("stored")));
    // GitHub's redelivery: the same delivery GUID.
    let again = f
        .post(github_request(
            "workflow_run",
            &payload,
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            GITHUB_SECRET,
        ))
        .await;
    assert_eq!(
        (again.0, again.1["status"].as_str()),
        (200, Some("duplicate"))
    );
    // The same run through a second hook (another GUID): the semantic key catches it.
    let other = f
        .post(github_request(
            "workflow_run",
            &payload,
            "72d3162e-cc78-11e3-81ab-4c9367dc0959",
            GITHUB_SECRET,
        ))
        .await;
    assert_eq!(
        (other.0, other.1["status"].as_str()),
        (200, Some("duplicate"))
    );
    // A re-run is another attempt, hence another deployment.
    let mut rerun = payload.clone();
    rerun["workflow_run"]["run_attempt"] = json!(2);
    let third = f
        .post(github_request(
            "workflow_run",
            &rerun,
            "72d3162e-cc78-11e3-81ab-4c9367dc095a",
            GITHUB_SECRET,
        ))
        .await;
    assert_eq!(third.1["status"].as_str(), Some("stored"));
    assert_eq!(f.stored(&f.service("octo")).await.len(), 2);
}

#[tokio::test]
async fn hostile_bodies_get_clear_4xx_answers() {
    let f = DoraFixture::start(SERVICES, false).await;
    let signed = |body: &[u8], base64: bool| {
        let sig = sign_sha256(GITHUB_SECRET.as_bytes(), body);
        function_url_request(
            "/github",
            "",
            &[
                ("x-github-event", "push"),
                ("x-github-delivery", "d"),
                ("x-hub-signature-256", &sig),
            ],
            body,
            base64,
        )
    };
    let huge = vec![b' '; 1024 * 1024 + 1];
    assert_eq!(f.post(signed(&huge, false)).await.0, 413);
    assert_eq!(f.post(signed(&huge, true)).await.0, 413);
    assert_eq!(f.post(signed(b"", false)).await.0, 400);
    assert_eq!(f.post(signed(b"{not json", false)).await.0, 400);
    // The base64 flag lies: the body is not base64.
    let mut lying = signed(b"{\"ref\": 1}", false);
    lying["isBase64Encoded"] = json!(true);
    lying["body"] = json!("{not base64!}");
    assert_eq!(f.post(lying).await.0, 400);
    // A base64 body that is what it says is fine.
    let push = example("push", |e| e["ref"] == "refs/heads/master");
    let body = push.to_string();
    assert_eq!(f.post(signed(body.as_bytes(), true)).await.0, 200);
    // Unicode in every string field, and a push whose fields have the wrong types.
    let mut unicode = push.clone();
    unicode["commits"][0]["message"] = json!("修正 🚀 \u{202e}");
    unicode["after"] = json!("ünïcödé");
    unicode["head_commit"]["author"]["name"] = json!("Zoë 🦀");
    assert_eq!(
        f.post(signed(unicode.to_string().as_bytes(), false))
            .await
            .0,
        200
    );
    let mut wrong = push.clone();
    wrong["commits"] = json!("all of them");
    let (status, body) = f.post(signed(wrong.to_string().as_bytes(), false)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["reason"]
        .as_str()
        .is_some_and(|r| r.contains("commits")));
    // Wrong path and method; not a Function URL request at all.
    let mut elsewhere = signed(body.to_string().as_bytes(), false);
    elsewhere["rawPath"] = json!("/gitlab");
    assert_eq!(f.post(elsewhere).await.0, 404);
    let mut get = signed(b"{}", false);
    get["requestContext"]["http"]["method"] = json!("GET");
    assert_eq!(f.post(get).await.0, 405);
    assert_eq!(f.post(json!([1, 2, 3])).await.0, 400);
    // A valid signature over an event type DORA does not use: acknowledged, not stored.
    let star = json!({"action": "created", "repository": {"full_name": "octo-org/octo-repo"}});
    let (status, body) = f
        .post(github_request("star", &star, "d-star", GITHUB_SECRET))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("ignored")),
        "{body}"
    );
    assert!(f.stored(&f.service("octo")).await.is_empty());
}

fn flux_request(body: &Value, secret: &str) -> Value {
    let bytes = body.to_string();
    let sig = sign_sha256(secret.as_bytes(), bytes.as_bytes());
    function_url_request(
        "/flux",
        "",
        &[("x-signature", &sig)],
        bytes.as_bytes(),
        false,
    )
}

#[tokio::test]
async fn flux_and_flagger_events_are_authenticated_and_stored() {
    let f = DoraFixture::start(SERVICES, false).await;
    let sha = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
    let event = json!({
        "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": "apps", "uid": "1", "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
        "severity": "info", "timestamp": "2026-11-23T08:00:00Z",
        "message": "Reconciliation finished in 1.2s", "reason": "ReconciliationSucceeded",
        "metadata": {"revision": format!("main@sha1:{sha}")},
        "reportingController": "kustomize-controller", "reportingInstance": "kustomize-controller-7f5b"
    });
    let (status, body) = f.post(flux_request(&event, FLUX_SECRET)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        f.post(flux_request(&event, FLUX_SECRET)).await.1["status"],
        "duplicate"
    );
    assert_eq!(f.post(flux_request(&event, "wrong")).await.0, 401);
    let mut progressing = event.clone();
    progressing["reason"] = json!("Progressing");
    assert_eq!(f.post(flux_request(&progressing, FLUX_SECRET)).await.0, 202);
    match f.stored(&f.service("apps")).await.as_slice() {
        [DoraEvent::Deployment { sha: Some(s), .. }] => assert_eq!(s, sha),
        other => panic!("{other:?}"),
    }

    let canary = |phase: &str| {
        json!({"name": "podinfo", "namespace": "prod", "phase": phase,
               "metadata": {"eventType": "Normal", "eventMessage": "Promotion completed!", "timestamp": "1795420800000"}})
    };
    let flagger = |body: &Value, token: &str| {
        function_url_request(
            "/flagger",
            &format!("token={token}"),
            &[],
            body.to_string().as_bytes(),
            false,
        )
    };
    assert_eq!(
        f.post(flagger(&canary("Succeeded"), FLAGGER_TOKEN)).await.0,
        200
    );
    // Flagger up to v1.41 sends the same promotion with phase Finalising: the same
    // deployment (its key is the outcome and timestamp), stored once.
    assert_eq!(
        f.post(flagger(&canary("Finalising"), FLAGGER_TOKEN))
            .await
            .0,
        200
    );
    let mut advancing = canary("Progressing");
    advancing["metadata"]["eventMessage"] = json!("Advance podinfo.prod canary weight 10");
    assert_eq!(f.post(flagger(&advancing, FLAGGER_TOKEN)).await.0, 202);
    assert_eq!(f.post(flagger(&canary("Failed"), "guess")).await.0, 401);
    assert_eq!(f.stored(&f.service("podinfo")).await.len(), 1);
}

/// The example `workflow_run`, as a deploy of `sha` finishing at `at`.
fn deploy_run(id: u64, conclusion: &str, sha: &str, at: &str) -> Value {
    let mut run = example("workflow_run", |e| {
        e["workflow_run"]["conclusion"] == "success"
    });
    run["workflow_run"]["id"] = json!(id);
    run["workflow_run"]["conclusion"] = json!(conclusion);
    run["workflow_run"]["head_sha"] = json!(sha);
    run["workflow_run"]["updated_at"] = json!(at);
    run
}

/// The example branch `push`, moved to octo-repo, with these commits.
fn push_of(head: &str, pushed: &str, commits: &[(&str, &str)]) -> Value {
    let mut push = example("push", |e| e["ref"] == "refs/heads/master");
    push["repository"]["full_name"] = json!("octo-org/octo-repo");
    push["after"] = json!(head);
    let pushed: jiff::Timestamp = pushed.parse().expect("time");
    push["repository"]["pushed_at"] = json!(pushed.as_second());
    let template = push["commits"][0].clone();
    push["commits"] = commits
        .iter()
        .map(|(sha, at)| {
            let mut c = template.clone();
            c["id"] = json!(sha);
            c["timestamp"] = json!(at);
            c
        })
        .collect();
    push
}

fn incident(action: &str, id: u64, opened: &str, closed: Option<&str>) -> Value {
    let mut issue = example("issues", |e| e["action"] == "opened");
    issue["action"] = json!(action);
    issue["repository"]["full_name"] = json!("octo-org/octo-repo");
    issue["issue"]["id"] = json!(id);
    issue["issue"]["created_at"] = json!(opened);
    issue["issue"]["closed_at"] = json!(closed);
    issue
}

#[tokio::test]
async fn a_week_of_webhooks_makes_the_expected_report() {
    let mut f = DoraFixture::start(SERVICES, true).await;
    let octo = f.service("octo");
    let sends = [
        (
            "push",
            push_of(
                "c1",
                "2026-11-16T10:00:00Z",
                &[
                    ("c0", "2026-11-16T07:00:00Z"),
                    ("c1", "2026-11-16T08:00:00Z"),
                ],
            ),
        ),
        (
            "workflow_run",
            deploy_run(1, "success", "c1", "2026-11-16T11:00:00Z"),
        ),
        (
            "push",
            push_of(
                "c2",
                "2026-11-17T10:00:00Z",
                &[("c2", "2026-11-17T09:00:00Z")],
            ),
        ),
        (
            "workflow_run",
            deploy_run(2, "failure", "c2", "2026-11-17T11:00:00Z"),
        ),
        (
            "workflow_run",
            deploy_run(3, "success", "c2", "2026-11-17T13:00:00Z"),
        ),
        (
            "issues",
            incident("opened", 99, "2026-11-18T09:00:00Z", None),
        ),
        (
            "workflow_run",
            deploy_run(4, "success", "c2", "2026-11-18T09:30:00Z"),
        ),
        (
            "issues",
            incident(
                "closed",
                99,
                "2026-11-18T09:00:00Z",
                Some("2026-11-18T10:00:00Z"),
            ),
        ),
    ];
    for (event, payload) in &sends {
        let (status, body) = f.github(event, payload).await;
        assert_eq!(status, 200, "{event}: {body}");
    }
    let report = f
        .aggregate(
            json!({"action": "report", "service": octo, "from": "2026-11-16T00:00:00Z", "to": "2026-11-23T00:00:00Z"}),
            "2026-11-23T06:00:00Z",
        )
        .await
        .expect("report");
    let s = &report["services"][0];
    assert_eq!(s["name"], octo.as_str());
    assert_eq!(s["deployments"], 3);
    // The failed run, and run 3 (the latest success before the incident opened).
    assert_eq!(s["failed_deployments"], 2);
    assert_eq!(s["change_failure_rate"], 0.5);
    // Run 4 shipped while the incident was open.
    assert_eq!(s["rework_rate"], json!(1.0 / 3.0));
    // c0: 4 h, c1: 3 h (run 1); c2: 4 h (run 3, the first success after its push).
    assert_eq!(s["lead_time_hours"]["commits"], 3);
    assert_eq!(s["lead_time_hours"]["median"], 4.0);
    // The failed run recovered in 2 h, the incident in 1 h.
    assert_eq!(s["recovery_time_hours"]["median"], 1.5);
    assert_eq!(s["levels"]["lead_time"], "elite");
    assert_eq!(s["levels"]["change_failure_rate"], "low");
    assert_eq!(report["window"]["days"], 7.0);

    // The daily run on a Monday publishes, and posts the digest once however often it runs.
    let daily = json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}});
    f.aggregate(daily.clone(), "2026-11-23T06:00:00Z")
        .await
        .expect("daily");
    // `[metrics] cloudwatch = "summary"` (the default): the five rates of all services
    // together, nothing per service.
    let summary = f
        .cloudwatch
        .list_metrics()
        .namespace("Fleet/DORA")
        .send()
        .await
        .expect("metrics");
    let mut sent: Vec<(String, String)> = summary
        .metrics()
        .iter()
        .map(|m| {
            let service = m
                .dimensions()
                .iter()
                .find(|d| d.name() == Some("Service"))
                .and_then(|d| d.value())
                .unwrap_or_default();
            (
                service.to_string(),
                m.metric_name().unwrap_or_default().to_string(),
            )
        })
        .collect();
    sent.sort();
    sent.dedup();
    assert_eq!(
        sent,
        [
            "ChangeFailureRate",
            "DeploymentFrequencyPerDay",
            "LeadTimeHours",
            "RecoveryTimeHours",
            "ReworkRate"
        ]
        .map(|n| ("all".to_string(), n.to_string()))
        .to_vec()
    );
    // `detailed`: per service too.
    f.aggregator.metrics_level = fleet_shared::config::CloudWatchMetrics::Detailed;
    f.aggregate(daily, "2026-11-23T06:05:00Z")
        .await
        .expect("daily again");
    let digests: Vec<String> = f
        .slack
        .texts()
        .into_iter()
        .filter(|t| t.contains("DORA"))
        .collect();
    assert_eq!(digests.len(), 1, "{digests:?}");
    assert!(digests[0].contains(&octo));
    let metrics = f
        .cloudwatch
        .list_metrics()
        .namespace("Fleet/DORA")
        .dimensions(
            aws_sdk_cloudwatch::types::DimensionFilter::builder()
                .name("Service")
                .value(&octo)
                .build(),
        )
        .send()
        .await
        .expect("metrics");
    let names: Vec<&str> = metrics
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    assert!(
        names.contains(&"ChangeFailureRate") && names.contains(&"LeadTimeHours"),
        "{names:?}"
    );
    let pushes = f.pushgateway.as_ref().expect("pushgateway").pushes();
    assert_eq!(pushes[0].0, "/metrics/job/fleet_dora");
    assert!(
        pushes[0].1.contains(&format!(
            "fleet_dora_change_failure_rate{{service=\"{octo}\",environment=\"production\"}} 0.5"
        )),
        "{}",
        pushes[0].1
    );
}

#[tokio::test]
async fn bad_report_requests_name_the_field() {
    let f = DoraFixture::start(SERVICES, false).await;
    let e = f
        .aggregate(
            json!({"action": "report", "service": "nope"}),
            "2026-11-23T06:00:00Z",
        )
        .await
        .expect_err("unknown service");
    assert!(e.to_string().contains("service"));
    let e = f
        .aggregate(
            json!({"action": "report", "from": "2026-11-23T00:00:00Z", "to": "2026-11-01T00:00:00Z"}),
            "2026-11-23T06:00:00Z",
        )
        .await
        .expect_err("backwards window");
    assert!(e.to_string().contains("from"));
    // An empty window: every metric says it has no data.
    let r = f
        .aggregate(json!({"action": "report"}), "2026-11-23T06:00:00Z")
        .await
        .expect("empty report");
    assert_eq!(r["all"]["levels"]["lead_time"], "no data");
    assert_eq!(r["all"]["deployments"], 0);
}

/// The signed sample requests in `events/` (the README's walkthrough) verify with the
/// secret `make local-aws` stores.
#[test]
fn the_sample_requests_are_signed_with_the_local_secret() {
    for file in ["dora-github-push.json", "dora-github-workflow-run.json"] {
        let text = std::fs::read_to_string(fleet_tests::workspace_root().join("events").join(file))
            .expect("sample");
        let request: serde_json::Value = serde_json::from_str(&text).expect("json");
        let body = request["body"].as_str().expect("body");
        let signature = request["headers"]["x-hub-signature-256"]
            .as_str()
            .expect("signature");
        assert_eq!(
            signature,
            dora_webhook::signature::sign_sha256(
                fleet_tests::LOCAL_WEBHOOK_SECRET.as_bytes(),
                body.as_bytes()
            ),
            "{file}"
        );
    }
    let sample = |file: &str| -> serde_json::Value {
        let path = fleet_tests::workspace_root().join("events").join(file);
        serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json")
    };
    let pagerduty = sample("dora-pagerduty-triggered.json");
    assert_eq!(
        pagerduty["headers"]["x-pagerduty-signature"],
        dora_webhook::signature::sign_pagerduty(
            fleet_tests::LOCAL_PAGERDUTY_SECRET.as_bytes(),
            pagerduty["body"].as_str().expect("body").as_bytes()
        )
    );
    assert_eq!(
        sample("dora-argocd-deployed.json")["headers"]["authorization"],
        format!("Bearer {}", fleet_tests::LOCAL_ARGOCD_TOKEN)
    );
}

/// An `X-GitHub-Delivery` that is not GUID-shaped (or over 64 characters) is processed
/// without a redelivery marker, never a 500; the semantic key still stores it once.
#[tokio::test]
async fn a_delivery_id_that_is_not_a_guid_is_processed_without_a_marker() {
    let f = DoraFixture::start(SERVICES, false).await;
    let payload = example("workflow_run", |e| {
        e["workflow_run"]["conclusion"] == "success"
    });
    for delivery in [
        "not a guid at all",
        &"f".repeat(65),
        "dora#digest#2026-11-23",
    ] {
        let (status, body) = f
            .post(github_request(
                "workflow_run",
                &payload,
                delivery,
                GITHUB_SECRET,
            ))
            .await;
        assert_eq!(status, 200, "{delivery}: {body}");
    }
    assert_eq!(f.stored(&f.service("octo")).await.len(), 1);
}

/// Without `dora.flagger_token` of its own, `/flagger` is off: 404, nothing stored (the
/// GitHub secret is never its fallback: Flagger sends the token in the URL).
#[tokio::test]
async fn flagger_without_its_own_token_answers_404() {
    let mut f = DoraFixture::start(SERVICES, false).await;
    f.webhook.secrets.flagger = None;
    let body = json!({"name": "podinfo", "namespace": "prod", "phase": "Succeeded",
        "metadata": {"eventType": "Normal", "eventMessage": "Promotion completed!", "timestamp": "1795420800000"}});
    let request = function_url_request(
        "/flagger",
        &format!("token={GITHUB_SECRET}"),
        &[],
        body.to_string().as_bytes(),
        false,
    );
    let (status, answer) = f.post(request).await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer["reason"]
        .as_str()
        .is_some_and(|r| r.contains("dora.flagger_token")));
}

/// Case 13: Flagger's `event` webhook with `metadata.timestamp` in milliseconds, as
/// Flagger sends it, received the next day: the deployment is dated by the timestamp;
/// Flagger's retry of the same post is stored once; the suspended canary's repeated
/// `Succeeded` is not another deployment; an unreadable timestamp is a 400 naming it.
#[tokio::test]
async fn flagger_events_are_dated_by_their_millisecond_timestamp_and_stored_once() {
    let case = fleet_tests::workspace_root().join("tests/fixtures/cases/13-flagger-ms-timestamp");
    let f = DoraFixture::start(
        "[[dora.service]]\nname = \"podinfo-{suffix}\"\nrepo = \"your-org/podinfo\"\ndeployments_from = \"flagger\"\nflagger_canary = \"test/podinfo\"\n",
        false,
    )
    .await;
    let service = f.service("podinfo");
    let mut request: Value = serde_json::from_str(
        &std::fs::read_to_string(case.join("1-flagger-succeeded.json")).expect("case"),
    )
    .expect("json");
    // The case carries the local secret as its token; this fixture's Flagger token.
    request["rawQueryString"] = json!(format!("token={FLAGGER_TOKEN}"));
    request["queryStringParameters"]["token"] = json!(FLAGGER_TOKEN);
    let body: Value =
        serde_json::from_str(request["body"].as_str().expect("body")).expect("body json");
    for _ in 0..2 {
        assert_eq!(f.post(request.clone()).await.0, 200);
    }
    match f.stored(&service).await.as_slice() {
        [DoraEvent::Deployment { at, outcome, .. }] => {
            assert_eq!(at.to_string(), "2026-11-23T10:00:00Z");
            assert_eq!(*outcome, fleet_shared::dora::Outcome::Success);
        }
        other => panic!("{other:?}"),
    }
    let send = |b: &Value| {
        let mut r = request.clone();
        r["body"] = json!(b.to_string());
        r
    };
    // Suspended: Flagger repeats `Succeeded` each interval with another message.
    let mut repeat = body.clone();
    repeat["metadata"]["eventMessage"] = json!("skipping canary run as object is suspended");
    repeat["metadata"]["timestamp"] = json!("1795428060000");
    assert_eq!(f.post(send(&repeat)).await.0, 202);
    assert_eq!(f.stored(&service).await.len(), 1);
    for bad in [
        json!("yesterday"),
        json!("1795428000"),
        json!(1795428000000_i64),
    ] {
        let mut b = body.clone();
        b["metadata"]["timestamp"] = bad.clone();
        let (status, answer) = f.post(send(&b)).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(
            answer.to_string().contains("metadata.timestamp"),
            "{answer}"
        );
    }
    let mut missing = body.clone();
    missing["metadata"]
        .as_object_mut()
        .map(|m| m.remove("timestamp"));
    assert_eq!(f.post(send(&missing)).await.0, 400);
    assert_eq!(f.stored(&service).await.len(), 1);

    // The case's report, for this fixture's service, the next morning.
    let mut report: Value =
        serde_json::from_str(&std::fs::read_to_string(case.join("2-report.json")).expect("case"))
            .expect("json");
    report["service"] = json!(service);
    let r = f
        .aggregate(report, "2026-11-24T06:00:00Z")
        .await
        .expect("report");
    assert_eq!(r["services"][0]["deployments"], 1, "{r:#}");

    // A failure: "Rolling back ..." comes first with phase Failed, then the change.
    let mut rolling = body.clone();
    rolling["phase"] = json!("Failed");
    rolling["metadata"]["eventMessage"] =
        json!("Rolling back podinfo.test failed checks threshold reached 5");
    rolling["metadata"]["timestamp"] = json!("1795431600000");
    assert_eq!(f.post(send(&rolling)).await.0, 202);
    let mut failed = rolling.clone();
    failed["metadata"]["eventMessage"] = json!("Canary failed! Scaling down podinfo.test");
    failed["checksum"] = json!("5d4f7b9c");
    assert_eq!(f.post(send(&failed)).await.0, 200);
    assert_eq!(f.post(send(&failed)).await.0, 200);
    let outcomes: Vec<fleet_shared::dora::Outcome> = f
        .stored(&service)
        .await
        .iter()
        .filter_map(|e| match e {
            DoraEvent::Deployment { outcome, .. } => Some(*outcome),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            fleet_shared::dora::Outcome::Success,
            fleet_shared::dora::Outcome::Failure
        ]
    );
}
