//! dora-webhook and dora-aggregator wired to moto (DynamoDB, CloudWatch) and the fake
//! Slack, with GitHub's published webhook examples (`@octokit/webhooks-examples`, from
//! `make setup`) and requests signed the way GitHub, Flux and Flagger sign them.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use dora_aggregator::Aggregator;
use dora_webhook::handler::Secrets;
use dora_webhook::signature::sign_sha256;
use dora_webhook::Webhook;
use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::dora::DoraStore;
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_shared::state::StateStore;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::fakes::pushgateway::FakePushgateway;
use crate::fakes::slack::FakeSlack;
use crate::{sdk, state_table, unique, workspace_root};

pub const GITHUB_SECRET: &str = "github-test-secret";

/// One service whose deployments are the `test.yml` runs of GitHub's `workflow_run`
/// examples (`{suffix}`: the fixture's).
pub const OCTO_SERVICE: &str = r#"
[[dora.service]]
name = "octo-{suffix}"
repo = "octo-org/octo-repo"
branch = "master"
deployments_from = "workflow_run"
deploy_workflows = [".github/workflows/test.yml"]
"#;
pub const FLUX_SECRET: &str = "flux-test-secret";
pub const FLAGGER_TOKEN: &str = "flagger-test-token";

/// GitHub's example payloads by event name, as published in `@octokit/webhooks-examples`.
pub fn github_examples(event: &str) -> Vec<Value> {
    static ALL: OnceLock<Vec<Value>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let path = workspace_root().join(
            "tests/support/node_modules/@octokit/webhooks-examples/api.github.com/index.json",
        );
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", path.display()));
        serde_json::from_str(&text).expect("examples are JSON")
    });
    all.iter()
        .find(|e| e["name"] == event)
        .and_then(|e| e["examples"].as_array().cloned())
        .unwrap_or_default()
}

/// A Function URL request (payload format 2.0) as Lambda hands it over.
pub fn function_url_request(
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    base64: bool,
) -> Value {
    let mut h = serde_json::Map::new();
    h.insert("content-type".into(), json!("application/json"));
    h.insert("user-agent".into(), json!("GitHub-Hookshot/abc123"));
    for (k, v) in headers {
        h.insert(k.to_ascii_lowercase(), json!(v));
    }
    let params: serde_json::Map<String, Value> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": h,
        "queryStringParameters": params,
        "requestContext": {
            "accountId": "anonymous", "apiId": "abcdefgh", "domainName": "abcdefgh.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abcdefgh", "requestId": unique("req"), "routeKey": "$default", "stage": "$default",
            "time": "23/Nov/2026:07:00:00 +0000", "timeEpoch": 1795417200000u64,
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "GitHub-Hookshot/abc123"}
        },
        "body": if base64 { base64::engine::general_purpose::STANDARD.encode(body) } else { String::from_utf8_lossy(body).into_owned() },
        "isBase64Encoded": base64,
    })
}

/// A GitHub delivery of `payload` as event `event`, signed with `secret`.
pub fn github_request(event: &str, payload: &Value, delivery: &str, secret: &str) -> Value {
    let body = payload.to_string();
    let sig = sign_sha256(secret.as_bytes(), body.as_bytes());
    function_url_request(
        "/github",
        "",
        &[
            ("x-github-event", event),
            ("x-github-delivery", delivery),
            ("x-hub-signature-256", &sig),
        ],
        body.as_bytes(),
        false,
    )
}

pub struct DoraFixture {
    pub webhook: Webhook,
    pub aggregator: Aggregator,
    pub store: DoraStore,
    pub slack: FakeSlack,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// Service names get this suffix, so tests sharing moto never share events.
    pub suffix: String,
    pub pushgateway: Option<FakePushgateway>,
}

impl DoraFixture {
    /// `dora` is the `[dora]` section without secrets; `{suffix}` in it stands for the
    /// fixture's unique suffix (put it in service names).
    pub async fn start(dora: &str, with_pushgateway: bool) -> DoraFixture {
        let sdk = sdk();
        let table: StateStore = state_table(&sdk).await;
        let slack = FakeSlack::start().await;
        let pushgateway = if with_pushgateway {
            Some(FakePushgateway::start().await)
        } else {
            None
        };
        let suffix = unique("s");
        let mut dora = dora.replace("{suffix}", &suffix);
        if let Some(p) = &pushgateway {
            dora = format!("pushgateway_url = \"{}\"\n{dora}", p.url);
        }
        let text = format!(
            "[fleet]\nregion = \"eu-west-1\"\n\n[dora]\nwebhook_secret = \"{GITHUB_SECRET}\"\nflux_secret = \"{FLUX_SECRET}\"\nflagger_token = \"{FLAGGER_TOKEN}\"\n{dora}"
        );
        let config = FleetConfig::parse(&text).expect("test config");
        let dora = Arc::new(config.dora.clone().expect("dora"));
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let store = DoraStore::new(dynamodb.clone(), table.table(), dora.retention_days);
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
        DoraFixture {
            webhook: Webhook::new(
                &sdk,
                (*dora).clone(),
                table.table(),
                Secrets {
                    github: Secret::new(GITHUB_SECRET.into()),
                    flux: Secret::new(FLUX_SECRET.into()),
                    flagger: Some(Secret::new(FLAGGER_TOKEN.into())),
                },
            ),
            aggregator: Aggregator::new(
                &sdk,
                (*dora).clone(),
                table.table(),
                Notifier::new(Some(Secret::new(slack.url.clone()))),
                pushgateway.as_ref().map(|p| Secret::new(p.url.clone())),
            )
            .expect("aggregator"),
            store,
            slack,
            cloudwatch,
            suffix,
            pushgateway,
        }
    }

    /// `<name>-<suffix>`: a service name as the fixture's config has it.
    pub fn service(&self, name: &str) -> String {
        format!("{name}-{}", self.suffix)
    }

    /// Sends a request to the webhook; returns (status, body).
    pub async fn post(&self, request: Value) -> (i64, Value) {
        let response = self
            .webhook
            .handle(request, Invocation::at(Timestamp::now()))
            .await
            .expect("the webhook answers every request");
        let status = response["statusCode"].as_i64().unwrap_or(0);
        let body = response["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn github(&self, event: &str, payload: &Value) -> (i64, Value) {
        self.post(github_request(
            event,
            payload,
            &unique("delivery"),
            GITHUB_SECRET,
        ))
        .await
    }

    /// Every stored event of a service (all time).
    pub async fn stored(&self, service: &str) -> Vec<fleet_shared::dora::DoraEvent> {
        self.store
            .events(
                service,
                Timestamp::UNIX_EPOCH,
                "2100-01-01T00:00:00Z".parse().expect("time"),
            )
            .await
            .expect("events")
    }

    pub async fn aggregate(&self, event: Value, now: &str) -> fleet_shared::Result<Value> {
        let mut inv = Invocation::at(now.parse().expect("time"));
        inv.request_id = unique("inv");
        self.aggregator.handle(event, inv).await
    }
}
