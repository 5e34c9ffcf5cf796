//! No secret value in any log line, error or response: every secret is set to a canary
//! string, the failure paths that handle them are driven, and everything captured is
//! searched for the canary.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dns_updater::cloudflare::{Cloudflare, RetryPolicy};
use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::notify::Notifier;
use fleet_tests::dora::{function_url_request, DoraFixture};
use fleet_tests::fake_cloudflare::FakeCloudflare;
use serde_json::json;

const CANARY: &str = "canary-5ecr3t-d0-n0t-leak";

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
            fleet_tests::dora::GITHUB_SECRET,
            fleet_tests::dora::FLUX_SECRET,
            fleet_tests::dora::FLAGGER_TOKEN,
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
        fleet_tests::dora::GITHUB_SECRET,
        fleet_tests::dora::FLUX_SECRET,
        fleet_tests::dora::FLAGGER_TOKEN,
    ] {
        assert!(!text.contains(secret), "the logs leak a webhook secret");
    }
}

/// The function binaries themselves, as Lambda runs them, with every secret a canary in
/// SSM and logging at its most verbose: the paths that use each secret are driven (Slack
/// and Cloudflare unreachable, a webhook signed with another secret), and everything the
/// processes print is searched.
#[tokio::test]
async fn no_binary_prints_a_secret_even_at_trace_level() {
    use fleet_tests::{sdk, seed_local_account, workspace_root};
    let sdk = sdk();
    let slack = format!("http://127.0.0.1:9/services/{CANARY}");
    seed_local_account(&sdk, &slack).await.expect("seed");
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    for name in ["cloudflare", "github", "flux", "flagger"] {
        ssm.put_parameter()
            .name(format!("/canary/{name}"))
            .value(format!("{CANARY}-{name}"))
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }
    ssm.put_parameter()
        .name("/canary/slack")
        .value(&slack)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("put parameter");
    let example = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .expect("example");
    let config = example
        .replace("ssm:/fleet/slack-webhook", "ssm:/canary/slack")
        .replace("ssm:/fleet/cloudflare-api-token", "ssm:/canary/cloudflare")
        .replace("ssm:/fleet/github-webhook-secret", "ssm:/canary/github")
        .replace(
            "# flux_secret = \"ssm:/fleet/flux-webhook-secret\"",
            "flux_secret = \"ssm:/canary/flux\"",
        )
        .replace(
            "# flagger_token = \"ssm:/fleet/flagger-token\"",
            "flagger_token = \"ssm:/canary/flagger\"",
        );
    let dir = std::env::temp_dir().join(fleet_tests::unique("canary"));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("fleet.toml");
    std::fs::write(&path, config).expect("config");
    let runs = [
        ("cluster-scheduler", "scheduler-reconcile.json"),
        ("cluster-scheduler", "scheduler-status.json"),
        ("spot-drainer", "spot-interruption.json"),
        ("dns-updater", "cluster-ready.json"),
        ("dns-updater", "dns-sync.json"),
        ("dora-webhook", "dora-github-push.json"),
        ("dora-aggregator", "dora-daily.json"),
        ("cost-reporter", "cost-daily.json"),
    ];
    let mut ran = 0;
    for (function, event) in runs {
        let mut cmd = fleet_tests::function_command(function, event, &path.display().to_string());
        cmd.env("FLEET_NOW", "2026-11-23T07:00:00Z")
            .env("CLOUDFLARE_API_URL", "http://127.0.0.1:9")
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
        ran += 1;
    }
    assert_eq!(ran, 8);
}
