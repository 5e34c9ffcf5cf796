//! DORA from Argo CD, Argo Rollouts and PagerDuty next to GitHub, end to end through
//! dora-webhook and dora-aggregator on moto; deployments nobody claims kept and claimed
//! later; the redelivery sweep against the fake GitHub API.

use dora_aggregator::Aggregator;
use fleet_tests::fakes::github::FakeGitHub;
use fleet_tests::fixtures::dora::{
    github_request, DoraFixture, ARGOCD_TOKEN, GITHUB_SECRET, PAGERDUTY_SECRET,
};
use serde_json::{json, Value};

/// A 40-hex commit sha made from `n`.
fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(20)
}

fn secs(t: &str) -> i64 {
    t.parse::<jiff::Timestamp>().expect("time").as_second()
}

/// A push to `main` of `repo` (GitHub's push payload, the fields that matter).
fn push(repo: &str, at: &str, commits: &[(u8, &str)]) -> Value {
    let list: Vec<Value> = commits
        .iter()
        .map(|(n, t)| json!({"id": sha(*n), "distinct": true, "message": "change", "timestamp": t}))
        .collect();
    let head = sha(commits.last().expect("a commit").0);
    json!({
        "ref": "refs/heads/main", "before": "0".repeat(40), "after": head,
        "created": false, "deleted": false, "forced": false,
        "repository": {"full_name": repo, "default_branch": "main", "pushed_at": secs(at)},
        "commits": list, "head_commit": {"id": head, "timestamp": commits.last().expect("a commit").1}
    })
}

/// The README's `argocd-notifications-cm` template rendered for an Application.
fn argocd(word: &str, app: &str, repo: &str, revision: &str, phase: &str, at: &str) -> Value {
    json!({"event": word, "app": app, "project": "default",
           "repo": format!("https://github.com/{repo}.git"), "revision": revision,
           "phase": phase, "health": if word == "deployed" { "Healthy" } else { "Degraded" },
           "finished_at": at})
}

/// A PagerDuty v3 incident event (the developer docs' example, fields set).
fn pagerduty(
    kind: &str,
    event_id: &str,
    number: u64,
    service: &str,
    priority: &str,
    created: &str,
    occurred: &str,
) -> Value {
    json!({"event": {
        "id": event_id, "event_type": kind, "resource_type": "incident", "occurred_at": occurred,
        "agent": {"id": "PLH1HKV", "type": "user_reference"}, "client": null,
        "data": {"id": format!("PGR{number:04}"), "type": "incident", "number": number,
                 "status": if kind == "incident.resolved" { "resolved" } else { "triggered" },
                 "incident_key": "d3640fbd41094207a1c11e58e46b1662", "created_at": created,
                 "title": "Checkout errors", "urgency": "high",
                 "service": {"id": service, "summary": "Shop", "type": "service_reference"},
                 "priority": {"id": "PSO75BM", "summary": priority, "type": "priority_reference"},
                 "assignees": [], "teams": [], "conference_bridge": null, "resolve_reason": null}
    }})
}

fn workflow_run(repo: &str, id: u64, head: &str, at: &str) -> Value {
    json!({
        "action": "completed",
        "repository": {"full_name": repo},
        "workflow_run": {"id": id, "name": "deploy", "path": ".github/workflows/deploy.yml",
                         "head_branch": "main", "head_sha": head, "run_attempt": 1,
                         "status": "completed", "conclusion": "success", "updated_at": at}
    })
}

fn issue(repo: &str, action: &str, id: u64, created: &str, closed: Option<&str>) -> Value {
    json!({
        "action": action,
        "repository": {"full_name": repo},
        "issue": {"id": id, "number": 3, "labels": [{"name": "incident"}],
                  "created_at": created, "closed_at": closed}
    })
}

const MIXED: &str = r#"
[[dora.service]]
name = "shop-{suffix}"
repo = "your-org/shop-{suffix}"
deployments_from = "argocd"
argocd_app = "shop-{suffix}"
pagerduty_service = "PSHOP01"
pagerduty_min_priority = "P2"

[[dora.service]]
name = "web-{suffix}"
repo = "your-org/web-{suffix}"
deployments_from = "workflow_run"
deploy_workflows = [".github/workflows/deploy.yml"]
"#;

/// An aggregator over the fixture's table sweeping the hooks `ids` of `repo` on the fake
/// GitHub with `token`.
fn sweeper(
    f: &DoraFixture,
    github: &FakeGitHub,
    repo: &str,
    ids: &[u64],
    token: &str,
) -> Aggregator {
    let hooks: String = ids
        .iter()
        .map(|id| format!("[[dora.github_hook]]\nrepo = \"{repo}\"\nid = {id}\n"))
        .collect();
    let config = format!(
        "github_api_url = \"{}\"\ngithub_token = \"ssm:/fleet/github-token\"\n{hooks}{MIXED}",
        github.url
    );
    f.aggregator_with(&config)
        .with_github_token(fleet_shared::config::Secret::new(token.into()))
}

/// The daily scheduled run at `t`: its answer.
async fn daily(aggregator: &Aggregator, t: &str) -> Value {
    let event = json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}});
    aggregator
        .handle(
            event,
            fleet_shared::runner::Invocation::at(t.parse().expect("time")),
        )
        .await
        .expect("daily")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// A month of an Argo CD service with PagerDuty incidents beside a GitHub Actions service
/// with a GitHub issue incident; the metrics agree with the hand computation below.
#[tokio::test]
async fn argo_cd_and_pagerduty_give_all_four_keys_and_the_rework_rate() {
    let f = DoraFixture::start(MIXED, false).await;
    let shop = f.service("shop");
    let web = f.service("web");
    let shop_repo = format!("your-org/{shop}");
    let web_repo = format!("your-org/{web}");
    let ok = |r: (i64, Value)| {
        assert_eq!(r.0, 200, "{}", r.1);
        r.1
    };
    // shop: A (commits 1 at 08:00, 2 at 08:30) pushed 09:00, deployed 10:00: 2 h and 1.5 h.
    ok(f.github(
        "push",
        &push(
            &shop_repo,
            "2026-11-02T09:00:00Z",
            &[(1, "2026-11-02T08:00:00Z"), (2, "2026-11-02T08:30:00Z")],
        ),
    )
    .await);
    ok(f.argo(
        "/argocd",
        &argocd(
            "deployed",
            &shop,
            &shop_repo,
            &sha(2),
            "Succeeded",
            "2026-11-02T10:00:00Z",
        ),
        ARGOCD_TOKEN,
    )
    .await);
    // B (commit 3 at 08:00) fails to sync at 10:00, deployed at 12:00: lead 4 h,
    // recovery 2 h.
    ok(f.github(
        "push",
        &push(
            &shop_repo,
            "2026-11-05T09:00:00Z",
            &[(3, "2026-11-05T08:00:00Z")],
        ),
    )
    .await);
    ok(f.argo(
        "/argocd",
        &argocd(
            "sync-failed",
            &shop,
            &shop_repo,
            &sha(3),
            "Failed",
            "2026-11-05T10:00:00Z",
        ),
        ARGOCD_TOKEN,
    )
    .await);
    ok(f.argo(
        "/argocd",
        &argocd(
            "deployed",
            &shop,
            &shop_repo,
            &sha(3),
            "Succeeded",
            "2026-11-05T12:00:00Z",
        ),
        ARGOCD_TOKEN,
    )
    .await);
    // PagerDuty #7 (P1) opened 11-06 09:00, blamed on B; resolved 10:30: 1.5 h.
    let opened = pagerduty(
        "incident.triggered",
        "01EVT0000000000000000001",
        7,
        "PSHOP01",
        "P1",
        "2026-11-06T09:00:00Z",
        "2026-11-06T09:00:02Z",
    );
    ok(f.pagerduty(&opened, PAGERDUTY_SECRET).await);
    // PagerDuty retries a delivery: stored once.
    assert_eq!(
        f.pagerduty(&opened, PAGERDUTY_SECRET).await.1["status"],
        "duplicate"
    );
    // C (commit 4 at 09:15) deployed at 10:00 while #7 is open: rework, lead 0.75 h.
    ok(f.github(
        "push",
        &push(
            &shop_repo,
            "2026-11-06T09:30:00Z",
            &[(4, "2026-11-06T09:15:00Z")],
        ),
    )
    .await);
    let c = argocd(
        "deployed",
        &shop,
        &shop_repo,
        &sha(4),
        "Succeeded",
        "2026-11-06T10:00:00Z",
    );
    ok(f.argo("/argocd", &c, ARGOCD_TOKEN).await);
    // Argo CD sends the trigger again on a resync: counted once.
    assert_eq!(
        f.argo("/argocd", &c, ARGOCD_TOKEN).await.1["status"],
        "duplicate"
    );
    ok(f.pagerduty(
        &pagerduty(
            "incident.resolved",
            "01EVT0000000000000000002",
            7,
            "PSHOP01",
            "P1",
            "2026-11-06T09:00:00Z",
            "2026-11-06T10:30:00Z",
        ),
        PAGERDUTY_SECRET,
    )
    .await);
    // A P4 incident is below the service's P2: not counted.
    let low = f
        .pagerduty(
            &pagerduty(
                "incident.triggered",
                "01EVT0000000000000000003",
                8,
                "PSHOP01",
                "P4",
                "2026-11-07T09:00:00Z",
                "2026-11-07T09:00:00Z",
            ),
            PAGERDUTY_SECRET,
        )
        .await;
    assert_eq!(
        (low.0, low.1["status"].as_str()),
        (202, Some("ignored")),
        "{}",
        low.1
    );
    // web: D (commit 5 at 08:00) deployed by a workflow run at 11:00: lead 3 h; a
    // GitHub incident 11-11 09:00 to 12:00 (3 h) blames D.
    ok(f.github(
        "push",
        &push(
            &web_repo,
            "2026-11-10T09:00:00Z",
            &[(5, "2026-11-10T08:00:00Z")],
        ),
    )
    .await);
    ok(f.github(
        "workflow_run",
        &workflow_run(&web_repo, 501, &sha(5), "2026-11-10T11:00:00Z"),
    )
    .await);
    ok(f.github(
        "issues",
        &issue(&web_repo, "opened", 9001, "2026-11-11T09:00:00Z", None),
    )
    .await);
    ok(f.github(
        "issues",
        &issue(
            &web_repo,
            "closed",
            9001,
            "2026-11-11T09:00:00Z",
            Some("2026-11-11T12:00:00Z"),
        ),
    )
    .await);

    let report = f
        .aggregate(
            json!({"action": "report", "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}),
            "2026-12-01T06:00:00Z",
        )
        .await
        .expect("report");
    let shop_m = &report["services"][0];
    assert_eq!(shop_m["name"], shop.as_str());
    // 3 successes, 1 failure; B blamed: (1 + 1) / 4.
    assert_eq!(shop_m["deployments"], 3);
    assert_eq!(shop_m["failed_deployments"], 2);
    assert!(
        close(shop_m["change_failure_rate"].as_f64().expect("cfr"), 0.5),
        "{shop_m}"
    );
    assert!(close(
        shop_m["deployment_frequency_per_day"]
            .as_f64()
            .expect("freq"),
        3.0 / 30.0
    ));
    // Lead times 0.75, 1.5, 2, 4: median 1.75 h.
    assert_eq!(shop_m["lead_time_hours"]["commits"], 4);
    assert!(
        close(
            shop_m["lead_time_hours"]["median"].as_f64().expect("lead"),
            1.75
        ),
        "{shop_m}"
    );
    // Recoveries 2 h (the failed sync) and 1.5 h (#7): median 1.75 h.
    assert_eq!(shop_m["recovery_time_hours"]["recoveries"], 2);
    assert!(close(
        shop_m["recovery_time_hours"]["median"]
            .as_f64()
            .expect("recovery"),
        1.75
    ));
    // C shipped while #7 was open: 1 of 3.
    assert!(close(
        shop_m["rework_rate"].as_f64().expect("rework"),
        1.0 / 3.0
    ));
    assert_eq!(
        shop_m["incidents"],
        json!([{"source": "pagerduty", "id": 7, "opened": "2026-11-06T09:00:00Z", "closed": "2026-11-06T10:30:00Z"}])
    );
    for key in [
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
    ] {
        assert_ne!(shop_m["levels"][key], "no data", "{key}: {shop_m}");
    }
    // All together: 4 successes, 1 failure, B and D blamed: 3 / 5; lead times 0.75,
    // 1.5, 2, 3, 4: median 2; recoveries 1.5, 2, 3: median 2; rework 1 of 4.
    let all = &report["all"];
    assert_eq!(all["deployments"], 4);
    assert!(
        close(all["change_failure_rate"].as_f64().expect("cfr"), 0.6),
        "{all}"
    );
    assert!(close(
        all["lead_time_hours"]["median"].as_f64().expect("lead"),
        2.0
    ));
    assert!(close(
        all["recovery_time_hours"]["median"]
            .as_f64()
            .expect("recovery"),
        2.0
    ));
    assert!(close(all["rework_rate"].as_f64().expect("rework"), 0.25));
    let sources: Vec<&str> = all["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter_map(|i| i["source"].as_str())
        .collect();
    assert_eq!(sources, vec!["pagerduty", "github"]);
}

/// Bad tokens and signatures change nothing; each route is off without its secret.
#[tokio::test]
async fn argo_and_pagerduty_requests_are_authenticated() {
    let f = DoraFixture::start(MIXED, false).await;
    let shop = f.service("shop");
    let body = argocd(
        "deployed",
        &shop,
        "your-org/x",
        &sha(9),
        "Succeeded",
        "2026-11-02T10:00:00Z",
    );
    assert_eq!(f.argo("/argocd", &body, "wrong").await.0, 401);
    assert_eq!(f.argo("/argo-rollouts", &body, "wrong").await.0, 401);
    let incident = pagerduty(
        "incident.triggered",
        "01EVT0000000000000000009",
        9,
        "PSHOP01",
        "P1",
        "2026-11-06T09:00:00Z",
        "2026-11-06T09:00:00Z",
    );
    let (status, reply) = f.pagerduty(&incident, "not-the-secret").await;
    assert_eq!(status, 401, "{reply}");
    // A name longer than a key can hold: 400, not a storage failure.
    let long = argocd(
        "deployed",
        &"a".repeat(600),
        "your-org/x",
        &sha(9),
        "Succeeded",
        "2026-11-02T10:00:00Z",
    );
    let (status, reply) = f.argo("/argocd", &long, ARGOCD_TOKEN).await;
    assert_eq!(status, 400, "{reply}");
    assert!(f.stored(&shop).await.is_empty());
}

/// An Argo CD deployment that no service claims yet is kept (202 says where); the service
/// configured for it later counts it.
#[tokio::test]
async fn deployments_nobody_claims_are_counted_once_a_service_claims_them() {
    let f = DoraFixture::start(MIXED, false).await;
    let shop_repo = format!("your-org/{}", f.service("shop"));
    let late = f.service("late");
    let (status, reply) = f
        .argo(
            "/argocd",
            &argocd(
                "deployed",
                &late,
                &shop_repo,
                &sha(7),
                "Succeeded",
                "2026-11-03T10:00:00Z",
            ),
            ARGOCD_TOKEN,
        )
        .await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (202, Some("unassigned")),
        "{reply}"
    );
    assert!(
        reply["reason"]
            .as_str()
            .is_some_and(|r| r.contains("unassigned:argocd")),
        "{reply}"
    );
    let later = f.aggregator_with(&format!(
        "{MIXED}\n[[dora.service]]\nname = \"late-{{suffix}}\"\nrepo = \"{shop_repo}\"\ndeployments_from = \"argocd\"\nargocd_app = \"late-{{suffix}}\"\n"
    ));
    let inv = fleet_shared::runner::Invocation::at("2026-11-30T00:00:00Z".parse().expect("time"));
    let report = later
        .handle(
            json!({"action": "report", "service": late, "from": "2026-11-01T00:00:00Z"}),
            inv,
        )
        .await
        .expect("report");
    assert_eq!(report["services"][0]["deployments"], 1, "{report}");
}

/// The sweep lists the hook's deliveries page by page, asks GitHub to redeliver each
/// failed one once, and the redelivery is stored once.
#[tokio::test]
async fn failed_github_deliveries_are_redelivered_once() {
    let f = DoraFixture::start(MIXED, false).await;
    let github = FakeGitHub::start("ghp-test-token").await;
    let web_repo = format!("your-org/{}", f.service("web"));
    let hook = format!("repos/{web_repo}/hooks/4711");
    // Older than GitHub keeps: left alone (attempts are listed newest first).
    github.deliver(
        &hook,
        "0c9d5a80-c9e2-11f0-8a1e-000000000004",
        "push",
        "2026-11-18T10:00:00Z",
        500,
    );
    // 150 good deliveries after the failed one: it is on the second page.
    let failed = github.deliver(
        &hook,
        "0c9d5a80-c9e2-11f0-8a1e-000000000001",
        "workflow_run",
        "2026-11-22T08:00:00Z",
        500,
    );
    for i in 0..150 {
        github.deliver(
            &hook,
            &format!("0c9d5a80-c9e2-11f0-8a1e-1{i:011}"),
            "push",
            "2026-11-22T09:00:00Z",
            200,
        );
    }
    // Failed, then redelivered by hand: done.
    github.deliver(
        &hook,
        "0c9d5a80-c9e2-11f0-8a1e-000000000002",
        "push",
        "2026-11-22T10:00:00Z",
        0,
    );
    github.deliver(
        &hook,
        "0c9d5a80-c9e2-11f0-8a1e-000000000002",
        "push",
        "2026-11-22T10:05:00Z",
        200,
    );
    // Failed at GitHub's end but stored by the webhook (a timeout after storing).
    github.deliver(
        &hook,
        "0c9d5a80-c9e2-11f0-8a1e-000000000003",
        "push",
        "2026-11-22T11:00:00Z",
        0,
    );
    let run = workflow_run(&web_repo, 777, &sha(5), "2026-11-22T07:59:00Z");
    let stored3 = f
        .post(github_request(
            "workflow_run",
            &run,
            "0c9d5a80-c9e2-11f0-8a1e-000000000003",
            GITHUB_SECRET,
        ))
        .await;
    assert_eq!(stored3.0, 200);

    let aggregator = sweeper(&f, &github, &web_repo, &[4711], github.token());
    // The receiver fails the redelivery too (the webhook is still down).
    github.set_redelivery_status(502);
    let report = daily(&aggregator, "2026-11-23T06:00:00Z").await;
    let sweep = &report["redelivery"];
    assert_eq!(sweep["hooks"], 1, "{sweep}");
    assert_eq!(sweep["failed"], 2, "{sweep}");
    assert_eq!(sweep["redelivered"], 1, "{sweep}");
    assert_eq!(sweep["already"], 1, "{sweep}");
    assert_eq!(sweep["errors"], json!([]));
    assert_eq!(github.redeliveries(), vec![(hook.clone(), failed)]);
    // GitHub posts it again: stored once, however often it comes.
    let run = workflow_run(&web_repo, 778, &sha(5), "2026-11-22T07:59:30Z");
    let again = github_request(
        "workflow_run",
        &run,
        "0c9d5a80-c9e2-11f0-8a1e-000000000001",
        GITHUB_SECRET,
    );
    assert_eq!(f.post(again.clone()).await.1["status"], "stored");
    assert_eq!(f.post(again).await.1["status"], "duplicate");

    // The schedule fires again; the redelivery failed too: never asked for twice.
    let report = daily(&aggregator, "2026-11-23T06:05:00Z").await;
    assert_eq!(
        report["redelivery"]["failed"], 2,
        "{}",
        report["redelivery"]
    );
    assert_eq!(
        report["redelivery"]["redelivered"], 0,
        "{}",
        report["redelivery"]
    );
    assert_eq!(github.redeliveries().len(), 1);

    // A wrong token: the sweep reports it, the metrics still go out.
    let wrong = sweeper(&f, &github, &web_repo, &[4711], "ghp-wrong");
    let report = daily(&wrong, "2026-11-23T06:10:00Z").await;
    let errors = report["redelivery"]["errors"].to_string();
    assert!(
        errors.contains("401") && errors.contains("Bad credentials"),
        "{errors}"
    );
    assert!(!errors.contains("ghp-wrong"), "{errors}");
    assert!(report["all"].is_object());
}

/// GitHub's secondary rate limit stops the hook's sweep; what is left waits for the next
/// run, which asks for it then.
#[tokio::test]
async fn a_throttled_sweep_leaves_the_rest_for_the_next_run() {
    let f = DoraFixture::start(MIXED, false).await;
    let github = FakeGitHub::start("ghp-test-token").await;
    let web_repo = format!("your-org/{}", f.service("web"));
    for (hook, n) in [(99, 4), (100, 2)] {
        for i in 0..n {
            github.deliver(
                &format!("repos/{web_repo}/hooks/{hook}"),
                &format!("1c9d5a80-c9e2-11f0-8a1e-{hook:06}{i:06}"),
                "push",
                "2026-11-22T08:00:00Z",
                502,
            );
        }
    }
    github.limit_redeliveries(1);
    let aggregator = sweeper(&f, &github, &web_repo, &[99, 100], github.token());
    let report = daily(&aggregator, "2026-11-23T06:00:00Z").await;
    let sweep = &report["redelivery"];
    // The limit is the token's: the second hook is not even listed.
    assert_eq!(
        (
            sweep["hooks"].as_u64(),
            sweep["failed"].as_u64(),
            sweep["redelivered"].as_u64(),
            sweep["deferred"].as_u64()
        ),
        (Some(1), Some(4), Some(1), Some(2)),
        "{sweep}"
    );
    assert!(
        sweep["errors"].to_string().contains("secondary rate limit"),
        "{sweep}"
    );
    // The next day (the limit lifted): the throttled one, the deferred ones and the
    // second hook's.
    github.limit_redeliveries(10);
    let report = daily(&aggregator, "2026-11-24T06:00:00Z").await;
    assert_eq!(
        report["redelivery"]["redelivered"], 5,
        "{}",
        report["redelivery"]
    );
    assert_eq!(github.redeliveries().len(), 6);
}

/// A token that may read hooks but not write them: one refusal, then the hook is left
/// (every other redelivery would be refused the same way), and nothing stays claimed.
#[tokio::test]
async fn a_read_only_token_is_refused_once_per_hook() {
    let f = DoraFixture::start(MIXED, false).await;
    let github = FakeGitHub::start("ghp-test-token").await;
    let web_repo = format!("your-org/{}", f.service("web"));
    for i in 0..3 {
        github.deliver(
            &format!("repos/{web_repo}/hooks/7"),
            &format!("2c9d5a80-c9e2-11f0-8a1e-{i:012}"),
            "push",
            "2026-11-22T08:00:00Z",
            0,
        );
    }
    github.read_only();
    let aggregator = sweeper(&f, &github, &web_repo, &[7], github.token());
    let report = daily(&aggregator, "2026-11-23T06:00:00Z").await;
    let sweep = &report["redelivery"];
    assert_eq!(
        (
            sweep["failed"].as_u64(),
            sweep["redelivered"].as_u64(),
            sweep["deferred"].as_u64()
        ),
        (Some(3), Some(0), Some(2)),
        "{sweep}"
    );
    assert!(
        sweep["errors"]
            .to_string()
            .contains("Resource not accessible"),
        "{sweep}"
    );
    // Its claim was given back: tomorrow it is asked for again, not counted as done.
    let report = daily(&aggregator, "2026-11-24T06:00:00Z").await;
    assert_eq!(
        report["redelivery"]["already"], 0,
        "{}",
        report["redelivery"]
    );
}
