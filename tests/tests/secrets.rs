//! No secret value in any log line, error or response: every secret is set to a canary
//! string, the failure paths that handle them are driven, and everything captured is
//! searched for the canary.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dns_updater::cloudflare::{Cloudflare, RetryPolicy};
use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::notify::Notifier;
use fleet_tests::fakes::cloudflare::FakeCloudflare;
use fleet_tests::fixtures::dora::{function_url_request, DoraFixture};
use serde_json::json;

const CANARY: &str = "canary-5ecr3t-d0-n0t-leak-0123456789";

/// Every log line of this test binary, at every level.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(CANARY), "{what} leaks the secret: {text}");
}

#[tokio::test]
async fn a_failing_slack_webhook_never_shows_its_url() {
    let logs = logs();
    let notifier = Notifier::new(Some(Secret::new(format!(
        "http://127.0.0.1:9/services/{CANARY}"
    ))));
    let e = notifier
        .send("hello")
        .await
        .expect_err("nothing listens there");
    assert_clean("the Slack error", &e.to_string());
    assert_clean("the Slack error's Debug", &format!("{e:?}"));
    tracing::warn!(error = %e, "Slack notification failed");
    assert_clean(
        "the logs",
        &String::from_utf8_lossy(&logs.lock().expect("logs")),
    );
}

/// A Pushgateway URL may carry a password (or a token in its path or query): when the
/// push fails, the error and the log line show neither.
#[tokio::test]
async fn a_failing_pushgateway_never_shows_its_url() {
    let logs = logs();
    let mut f = DoraFixture::start("", false).await;
    f.aggregator.pushgateway = Some(Secret::new(format!(
        "http://user:{CANARY}@127.0.0.1:9/{CANARY}?token={CANARY}"
    )));
    let daily = json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}});
    let answer = f
        .aggregator
        .handle(
            daily,
            fleet_shared::runner::Invocation::at(jiff::Timestamp::now()),
        )
        .await;
    assert_clean("the daily run's answer", &format!("{answer:?}"));
    let text = String::from_utf8_lossy(&logs.lock().expect("logs")).to_string();
    assert!(
        text.contains("DORA metrics not pushed"),
        "the push was not even tried: {text}"
    );
    assert_clean("the logs", &text);
}

#[tokio::test]
async fn a_refused_cloudflare_token_never_shows() {
    let logs = logs();
    let fake = FakeCloudflare::start("the-right-token").await;
    let zone = fake.add_zone("example.com");
    let client = Cloudflare::new(
        Some(&fake.url),
        Secret::new(CANARY.into()),
        RetryPolicy {
            max_attempts: 2,
            max_wait: Duration::from_millis(100),
            first_backoff: Duration::from_millis(10),
        },
    )
    .expect("client");
    assert_clean("the client's Debug", &format!("{client:?}"));
    let e = client
        .records(&zone, "app.example.com")
        .await
        .expect_err("403");
    assert!(e.to_string().contains("10000"), "{e}");
    assert_clean("the Cloudflare error", &e.to_string());
    assert_clean("the Cloudflare error's Debug", &format!("{e:?}"));
    tracing::error!(error = %e, "sync failed");
    assert_clean(
        "the logs",
        &String::from_utf8_lossy(&logs.lock().expect("logs")),
    );
}

#[tokio::test]
async fn configs_print_their_secrets_redacted() {
    let text = format!(
        "[fleet]\nregion = \"eu-west-1\"\nslack_webhook = \"https://hooks.example/{CANARY}\"\ncloudflare_api_token = \"{CANARY}\"\n[dora]\nwebhook_secret = \"{CANARY}\"\nflagger_token = \"{CANARY}\"\n"
    );
    let config = FleetConfig::parse(&text).expect("config");
    assert_clean("the config's Debug", &format!("{config:?}"));
    // A config error elsewhere in the same file does not echo the secrets.
    let bad = text.replace("region = \"eu-west-1\"", "region = 5");
    let e = FleetConfig::parse(&bad).expect_err("bad region");
    assert_clean("a config error", &e.to_string());
}

#[tokio::test]
async fn webhook_answers_never_show_the_secret() {
    let logs = logs();
    let f = DoraFixture::start("", false).await;
    let body = json!({"zen": "Keep it logically awesome.", "hook_id": 1}).to_string();
    // The secret sent as if it were the signature, as the token, and in the body.
    let requests = [
        function_url_request(
            "/github",
            "",
            &[
                ("x-github-event", "ping"),
                ("x-hub-signature-256", &format!("sha256={CANARY}")),
            ],
            body.as_bytes(),
            false,
        ),
        function_url_request(
            "/flagger",
            &format!("token={CANARY}x"),
            &[],
            body.as_bytes(),
            false,
        ),
        function_url_request(
            "/flux",
            "",
            &[("x-signature", CANARY)],
            CANARY.as_bytes(),
            false,
        ),
    ];
    for r in requests {
        let (status, answer) = f.post(r).await;
        assert_eq!(status, 401);
        for secret in [
            fleet_tests::fixtures::dora::GITHUB_SECRET,
            fleet_tests::fixtures::dora::FLUX_SECRET,
            fleet_tests::fixtures::dora::FLAGGER_TOKEN,
        ] {
            assert!(
                !answer.to_string().contains(secret),
                "an answer leaks a webhook secret"
            );
        }
    }
    let text = String::from_utf8_lossy(&logs.lock().expect("logs")).to_string();
    // The fixture's real secrets are not the canary; check them too.
    for secret in [
        fleet_tests::fixtures::dora::GITHUB_SECRET,
        fleet_tests::fixtures::dora::FLUX_SECRET,
        fleet_tests::fixtures::dora::FLAGGER_TOKEN,
        fleet_tests::fixtures::dora::ARGOCD_TOKEN,
        fleet_tests::fixtures::dora::PAGERDUTY_SECRET,
    ] {
        assert!(!text.contains(secret), "the logs leak a webhook secret");
    }
}

/// Every secret of the example config a canary in SSM (under `/canary-<unique>/`); returns the
/// path of the config that names them.
async fn canary_config() -> std::path::PathBuf {
    canary_config_with_slack("http://127.0.0.1:9").await
}

/// [`canary_config`] with the Slack webhook at `slack_base` (`/services/…/{CANARY}`).
async fn canary_config_with_slack(slack_base: &str) -> std::path::PathBuf {
    use fleet_tests::{sdk, seed_local_account, workspace_root};
    let sdk = sdk();
    let slack = format!("{slack_base}/services/T0CANARY/B0CANARY/{CANARY}");
    seed_local_account(&sdk, &slack).await.expect("seed");
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    // Tests run in parallel on one moto: each config gets its own parameters.
    let prefix = format!("/{}", fleet_tests::unique("canary"));
    for name in [
        "cloudflare",
        "github",
        "flux",
        "flagger",
        "argocd",
        "pagerduty",
    ] {
        fleet_tests::put_secret(
            &ssm,
            &format!("{prefix}/{name}"),
            &format!("{CANARY}-{name}"),
        )
        .await
        .expect("put parameter");
    }
    fleet_tests::put_secret(&ssm, &format!("{prefix}/slack"), &slack)
        .await
        .expect("put parameter");
    let example = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .expect("example");
    let config = example
        .replace("ssm:/fleet/slack-webhook", &format!("ssm:{prefix}/slack"))
        .replace(
            "ssm:/fleet/cloudflare-api-token",
            &format!("ssm:{prefix}/cloudflare"),
        )
        .replace(
            "ssm:/fleet/github-webhook-secret",
            &format!("ssm:{prefix}/github"),
        )
        .replace(
            "# flux_secret = \"ssm:/fleet/flux-webhook-secret\"",
            &format!("flux_secret = \"ssm:{prefix}/flux\""),
        )
        .replace(
            "# flagger_token = \"ssm:/fleet/flagger-token\"",
            &format!("flagger_token = \"ssm:{prefix}/flagger\""),
        )
        .replace("ssm:/fleet/argocd-token", &format!("ssm:{prefix}/argocd"))
        .replace(
            "ssm:/fleet/pagerduty-secret",
            &format!("ssm:{prefix}/pagerduty"),
        );
    let dir = std::env::temp_dir().join(fleet_tests::unique("canary"));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("fleet.toml");
    std::fs::write(&path, config).expect("config");
    path
}

/// In Lambda mode, at `RUST_LOG=trace`: `lambda_runtime` logs each raw event at trace, and
/// a Flagger event carries its token in the Function URL's query string. The runner pins
/// `lambda_runtime` to info, so neither the event nor the token is printed.
#[tokio::test]
async fn lambda_mode_at_trace_level_prints_no_secret() {
    use fleet_tests::fakes::lambda::{Answer, FakeLambda};
    let path = canary_config().await;
    let lambda = FakeLambda::start().await;
    let dir = path.parent().expect("config dir").to_path_buf();
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let child = lambda
        .function_process(
            &fleet_tests::demo::bin_dir().join("dora-webhook"),
            "dora-webhook",
        )
        .env("FLEET_STACK", "fleet-test")
        .env("FLEET_CONFIG", &path)
        .env("RUST_LOG", "trace")
        // Files, not pipes: trace output would fill a pipe nobody reads and stall it.
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("function binary (make test builds it first)");
    let body = json!({"name": "podinfo", "namespace": "prod", "phase": "Succeeded",
        "metadata": {"eventType": "Normal", "eventMessage": "Promotion completed!", "timestamp": "1795420800000"}});
    let request = function_url_request(
        "/flagger",
        &format!("token={CANARY}-flagger"),
        &[],
        body.to_string().as_bytes(),
        false,
    );
    let id = lambda.invoke(request);
    let answer = lambda.answer(&id, Duration::from_secs(60)).await;
    assert!(
        matches!(&answer, Some(Answer::Response(r)) if r["statusCode"] != 401),
        "{answer:?}"
    );
    let mut child = child;
    let _ = child.kill().await;
    let text = format!(
        "{}{}",
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    assert!(!text.is_empty(), "nothing was logged at trace level");
    assert_clean("dora-webhook in Lambda mode at trace", &text);
}

/// The function binaries themselves, as Lambda runs them, with every secret a canary in
/// SSM and logging at its most verbose: the paths that use each secret are driven (Slack
/// and Cloudflare unreachable, a webhook signed with another secret), and everything the
/// processes print is searched.
#[tokio::test]
async fn no_binary_prints_a_secret_even_at_trace_level() {
    // Slack and Cloudflare answer, with the canaries as their secrets: Slack's,
    // Cloudflare's and GitHub's secrets are used (asserted below), not only loaded; the
    // Flux and Flagger secrets are loaded (and would leak in the same ways) but no event
    // below is theirs.
    let slack = fleet_tests::fakes::slack::FakeSlack::start().await;
    let cloudflare =
        fleet_tests::fakes::cloudflare::FakeCloudflare::start(&format!("{CANARY}-cloudflare"))
            .await;
    cloudflare.add_zone("example.com");
    let slack_base = slack.url.split("/services/").next().unwrap_or_default();
    let path = canary_config_with_slack(slack_base).await;
    let runs = [
        ("cluster-scheduler", "scheduler-reconcile.json"),
        ("cluster-scheduler", "scheduler-status.json"),
        ("spot-drainer", "spot-interruption.json"),
        ("dns-updater", "cluster-ready.json"),
        // on_destroy = "delete": reaches Cloudflare without a Kubernetes API.
        ("dns-updater", "cluster-destroyed.json"),
        ("dns-updater", "dns-sync.json"),
        ("dora-webhook", "dora-github-push.json"),
        ("dora-aggregator", "dora-daily.json"),
        ("cost-reporter", "cost-daily.json"),
    ];
    let mut ran = 0;
    for (function, event) in runs {
        let mut cmd = fleet_tests::function_command(function, event, &path.display().to_string());
        cmd.env("FLEET_NOW", "2026-11-23T07:00:00Z")
            .env("CLOUDFLARE_API_URL", &cloudflare.url)
            .env("RUST_LOG", "trace");
        let out = tokio::process::Command::from(cmd)
            .output()
            .await
            .expect("function binary (make test builds it first)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.is_empty(), "{function} printed nothing");
        assert_clean(&format!("{function} on {event}"), &text);
        if function == "dora-webhook" {
            // Signed with another secret: refused by the signature check, which used
            // the canary.
            assert!(text.contains("401") && text.contains("signature"), "{text}");
        }
        ran += 1;
    }
    assert_eq!(ran, 9);
    assert!(
        !slack.texts().is_empty(),
        "no function reached Slack with the canary webhook"
    );
    for t in slack.texts() {
        assert_clean("a Slack message", &t);
    }
    let cf = cloudflare.requests();
    assert!(
        !cf.is_empty() && cf.iter().all(|r| r.authorized),
        "Cloudflare called with the canary token: {cf:?}"
    );
}

/// `bootstrap_secrets`: the values read from Secrets Manager and SSM go to the cluster's
/// API and nowhere else: not a log line at any level (kube's and hyper's included), not
/// an error (a value that cannot be applied, an API failing mid-apply), not a tick's
/// answer, not Slack, not the state table. Searched as written and as the Secret's
/// base64.
#[tokio::test]
async fn bootstrap_secret_values_reach_only_the_clusters_api() {
    use base64::Engine;
    use fleet_tests::fixtures::scheduler::{cluster_toml, outcome, ts, SchedulerFixture};
    let logs = logs();
    let sdk = fleet_tests::sdk();
    let deploy_key = fleet_tests::unique("fleet/canary-deploy-key");
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&deploy_key)
        .secret_string(
            json!({"identity": CANARY, "known_hosts": "github.com ssh-ed25519 AAAA"}).to_string(),
        )
        .send()
        .await
        .expect("secret");
    let age = format!("/{}", fleet_tests::unique("fleet/canary-age"));
    fleet_tests::put_secret(&aws_sdk_ssm::Client::new(&sdk), &age, CANARY)
        .await
        .expect("parameter");
    let blueprint = |key: &str| {
        cluster_toml("destroy", "Mon-Fri 08:00-20:00 Europe/Berlin", "").replace(
            "[[cluster.blueprint.nodegroup]]\nname = \"spot\"",
            &format!(
                "bootstrap_secrets = [\n  {{ namespace = \"flux-system\", name = \"flux-system\", from = \"secretsmanager:{deploy_key}\" }},\n  {{ namespace = \"flux-system\", name = \"sops-age\", from = \"ssm:{age}\"{key} }},\n]\n\n[[cluster.blueprint.nodegroup]]\nname = \"spot\""
            ),
        )
    };
    // First without the key the SSM string needs: refused, naming the key.
    let mut f = SchedulerFixture::start(&[blueprint("")], None).await;
    let name = f.names[0].clone();
    let mut answers = Vec::new();
    for at in ["07:00", "07:05", "07:10"] {
        answers.push(f.tick(ts(&format!("2026-11-23T{at}:00Z"))).await);
    }
    let refused = outcome(&answers[2], &name)["error"].to_string();
    assert!(
        refused.contains("config key `cluster[0].blueprint.bootstrap_secrets[1].key`"),
        "{refused}"
    );
    // Then with it, the API failing mid-apply once, then answering.
    f.reconfigure(&[blueprint(", key = \"age.agekey\"")], "");
    f.kube.fail_next(1, 500);
    for at in ["07:30", "07:45", "08:00"] {
        answers.push(f.tick(ts(&format!("2026-11-23T{at}:00Z"))).await);
    }
    let secret = f
        .kube
        .get("v1", "Secret", "flux-system", "sops-age")
        .unwrap_or_else(|| {
            panic!(
                "applied in the end: {:?}",
                answers
                    .iter()
                    .map(|a| outcome(a, &name).clone())
                    .collect::<Vec<_>>()
            )
        });
    let encoded = base64::engine::general_purpose::STANDARD.encode(CANARY);
    assert_eq!(secret["data"]["age.agekey"], encoded.as_str());
    let table = aws_sdk_dynamodb::Client::new(&sdk)
        .scan()
        .table_name(f.store.table())
        .send()
        .await
        .expect("scan");
    let said = format!("{answers:?} {:?} {:?}", f.slack.texts(), table.items());
    let text = String::from_utf8_lossy(&logs.lock().expect("logs")).to_string();
    for (what, haystack) in [
        ("an answer, Slack or the table", &said),
        ("the logs", &text),
    ] {
        assert_clean(what, haystack);
        assert!(
            !haystack.contains(&encoded),
            "{what} leaks the secret's base64"
        );
    }
}
