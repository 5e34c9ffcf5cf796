//! Section 8: the automation's own AWS bill for the example config, from a simulated month.
//!
//! The six functions run in this process (their handlers, not their binaries) against
//! moto and the fakes, on a virtual clock through November 2026, as the deployed stack
//! invokes them (`infra/template.yaml`): the scheduler every 5 minutes (`TickRate`), the
//! DNS drift repair every hour, DORA and cost daily at 06:30 UTC (`DailyAt`), the DNS
//! updater on every `Cluster Ready` / `Cluster Destroyed`, the webhook on the demo's day
//! of GitHub deliveries every weekday, and four spot interruptions. Every AWS request goes
//! through an HTTP client that counts it by function and API, its DynamoDB capacity units
//! and, for `PutMetricData`, which metric was sent in which hour; every log line the
//! functions write at the deployed level (info, JSON, as in Lambda) is counted in bytes.
//! The counts are priced with the table [`PRICES`] (us-east-1, no free tier) and scaled
//! from the 720 hours of November to a 730-hour month.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::kube::KubeConnector;
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use jiff::{Timestamp, ToSpan};
use serde_json::{json, Value};
use tracing::instrument::WithSubscriber;

use crate::fakes::cloudflare::FakeCloudflare;
use crate::fakes::karpenter;
use crate::fakes::kube::FakeKube;
use crate::fixtures::dns::ingress_service;
use crate::{
    cost_day, seed_costs, seed_local_account, workspace_root, BusTap, MotoServer, LOCAL_BUS,
    LOCAL_CLOUDFLARE_TOKEN, LOCAL_TABLE, LOCAL_WEBHOOK_SECRET, LOCAL_ZONE, REGION,
};

/// Hours in the month AWS prices by (custom metrics are prorated over it).
const MONTH_HOURS: f64 = 730.0;
/// The month simulated, and its hours.
const MONTH_START: &str = "2026-11-01T00:00:00Z";
const SIMULATED_HOURS: i64 = 720;
/// The example's staging ingress load balancer (the DNS records' target).
const LOAD_BALANCER: &str = "k8s-ingress-0a1b2c3d4e-1234567890.eu-west-1.elb.amazonaws.com";
/// Spot interruptions in the month (one a week; stated, not measured).
const DRAINS: [&str; 4] = [
    "2026-11-03T10:00:00Z",
    "2026-11-10T10:00:00Z",
    "2026-11-17T10:00:00Z",
    "2026-11-24T10:00:00Z",
];
/// An AWS API round trip from Lambda in its region, added to the measured time of each
/// invocation for each AWS request (moto answers here in 2-3 ms). Stated, not measured.
const AWS_ROUND_TRIP_MS: f64 = 25.0;
/// Memory of each function (`infra/template.yaml`: 128 MB, the aggregator 256 MB).
fn memory_gb(function: &str) -> f64 {
    if function == "dora-aggregator" {
        0.25
    } else {
        0.125
    }
}

/// A price: what, USD per unit, the unit, the source (AWS's public pricing page,
/// us-east-1, as of 2026; no free tier).
pub struct Price {
    pub item: &'static str,
    pub usd: f64,
    pub unit: &'static str,
    pub source: &'static str,
}

/// The prices the bill is computed with (us-east-1, 2026, AWS public pricing pages, no
/// free tier counted).
pub const PRICES: [Price; 14] = [
    Price {
        item: "Lambda compute (arm64)",
        usd: 0.000_013_333_4,
        unit: "GB-second",
        source: "aws.amazon.com/lambda/pricing",
    },
    Price {
        item: "Lambda requests",
        usd: 0.20,
        unit: "million requests",
        source: "aws.amazon.com/lambda/pricing",
    },
    Price {
        item: "DynamoDB on-demand writes",
        usd: 0.625,
        unit: "million write request units",
        source: "aws.amazon.com/dynamodb/pricing/on-demand",
    },
    Price {
        item: "DynamoDB on-demand reads",
        usd: 0.125,
        unit: "million read request units",
        source: "aws.amazon.com/dynamodb/pricing/on-demand",
    },
    Price {
        item: "EventBridge custom events (PutEvents)",
        usd: 1.00,
        unit: "million events (64 KB chunks)",
        source: "aws.amazon.com/eventbridge/pricing",
    },
    Price {
        item: "EventBridge Scheduler invocations",
        usd: 1.00,
        unit: "million invocations",
        source: "aws.amazon.com/eventbridge/pricing",
    },
    Price {
        item: "CloudWatch custom metrics",
        usd: 0.30,
        unit:
            "metric-month (prorated by the hours it is sent in: k hours of 730 cost 0.30 × k / 730)",
        source: "aws.amazon.com/cloudwatch/pricing",
    },
    Price {
        item: "CloudWatch PutMetricData",
        usd: 0.01,
        unit: "1,000 requests",
        source: "aws.amazon.com/cloudwatch/pricing",
    },
    Price {
        item: "CloudWatch alarms (standard resolution)",
        usd: 0.10,
        unit: "alarm metric-month",
        source: "aws.amazon.com/cloudwatch/pricing",
    },
    Price {
        item: "CloudWatch dashboard",
        usd: 3.00,
        unit: "dashboard-month",
        source: "aws.amazon.com/cloudwatch/pricing",
    },
    Price {
        item: "CloudWatch Logs ingestion (Lambda, first tier)",
        usd: 0.50,
        unit: "GB",
        source: "aws.amazon.com/cloudwatch/pricing",
    },
    Price {
        item: "CloudWatch Logs storage",
        usd: 0.03,
        unit: "GB-month (compressed; counted uncompressed here)",
        source: "aws.amazon.com/cloudwatch/pricing",
    },
    Price {
        item: "Cost Explorer API",
        usd: 0.01,
        unit: "request",
        source: "aws.amazon.com/aws-cost-management/aws-cost-explorer/pricing",
    },
    Price {
        item: "DynamoDB storage + point-in-time recovery",
        usd: 0.45,
        unit: "GB-month (0.25 + 0.20)",
        source: "aws.amazon.com/dynamodb/pricing/on-demand",
    },
];

fn price(item: &str) -> f64 {
    PRICES
        .iter()
        .find(|p| p.item == item)
        .map(|p| p.usd)
        .unwrap_or(f64::NAN)
}

/// What was counted.
#[derive(Debug, Default)]
struct Counts {
    /// The function running now, and the simulated hour (0-719).
    function: &'static str,
    hour: i64,
    /// (function, API operation) -> requests.
    calls: BTreeMap<(String, String), u64>,
    /// Per function: AWS requests.
    requests_by_function: BTreeMap<String, u64>,
    read_units: f64,
    write_units: f64,
    put_events_entries: u64,
    put_metric_requests: u64,
    /// `namespace name dimensions` -> the hours it was sent in.
    metrics: BTreeMap<String, BTreeSet<i64>>,
    /// Per function: (invocations, log bytes, milliseconds measured).
    invocations: BTreeMap<String, (u64, u64, f64)>,
    errors: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Meter(Arc<Mutex<Counts>>);

impl Meter {
    fn with<T>(&self, f: impl FnOnce(&mut Counts) -> T) -> Option<T> {
        self.0.lock().ok().map(|mut c| f(&mut c))
    }
}

/// The operation of a request: the JSON target's operation, the query action, or the
/// REST method and path with names taken out.
fn operation(request: &HttpRequest, body: &str) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.to_string();
    }
    if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return action.to_string();
    }
    let path = request.uri().split("://").nth(1).unwrap_or_default();
    let path = path.split_once('/').map(|(_, p)| p).unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    // EKS `clusters/<name>/node-groups/<name>`: the names out.
    let shape: Vec<&str> = path
        .split('/')
        .enumerate()
        .map(|(i, s)| if i % 2 == 1 { "*" } else { s })
        .collect();
    format!("{} /{}", request.method(), shape.join("/"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One `MetricData.member.N`: its name and its dimensions by their index.
type Member = (String, BTreeMap<u32, (String, String)>);

/// The metrics of a `PutMetricData` query body: `namespace name dim=value,…` each.
fn metrics_sent(body: &str) -> Vec<String> {
    let mut namespace = String::new();
    let mut members: BTreeMap<u32, Member> = BTreeMap::new();
    for kv in body.split('&') {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let v = percent_decode(v);
        if k == "Namespace" {
            namespace = v;
            continue;
        }
        let parts: Vec<&str> = k.split('.').collect();
        let n = |i: usize| parts.get(i).and_then(|p| p.parse::<u32>().ok());
        match parts.as_slice() {
            ["MetricData", "member", _, "MetricName"] => {
                if let Some(m) = n(2) {
                    members.entry(m).or_default().0 = v;
                }
            }
            ["MetricData", "member", _, "Dimensions", "member", _, field] => {
                if let (Some(m), Some(d)) = (n(2), n(5)) {
                    let dim = members.entry(m).or_default().1.entry(d).or_default();
                    if *field == "Name" {
                        dim.0 = v;
                    } else if *field == "Value" {
                        dim.1 = v;
                    }
                }
            }
            _ => {}
        }
    }
    members
        .into_values()
        .map(|(name, dims)| {
            let dims: Vec<String> = dims
                .into_values()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{namespace} {name} {}", dims.join(","))
        })
        .collect()
}

/// DynamoDB write units of a write request: 1 per KB of the request (at least 1 per item
/// written; twice that in a transaction).
fn write_units(op: &str, body: &str) -> f64 {
    let kb = (body.len() as f64 / 1024.0).ceil().max(1.0);
    if op.ends_with("TransactWriteItems") {
        let items = body.matches("\"TableName\"").count().max(1) as f64;
        2.0 * items.max(kb)
    } else if op.ends_with("BatchWriteItem") {
        let items = (body.matches("PutRequest").count() + body.matches("DeleteRequest").count())
            .max(1) as f64;
        items.max(kb)
    } else {
        kb
    }
}

#[derive(Debug)]
struct MeteredClient {
    inner: SharedHttpClient,
    meter: Meter,
}

impl HttpClient for MeteredClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(MeteredConnector {
            inner: self.inner.http_connector(settings, components),
            meter: self.meter.clone(),
        })
    }
}

#[derive(Debug)]
struct MeteredConnector {
    inner: SharedHttpConnector,
    meter: Meter,
}

impl HttpConnector for MeteredConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let op = operation(&request, &body);
        let is_read = ["GetItem", "BatchGetItem", "Query", "Scan"]
            .iter()
            .any(|r| op == format!("DynamoDB_20120810.{r}"));
        self.meter.with(|c| {
            let function = c.function.to_string();
            *c.calls.entry((function.clone(), op.clone())).or_default() += 1;
            *c.requests_by_function.entry(function).or_default() += 1;
            if op.starts_with("DynamoDB_20120810.") && !is_read && !op.ends_with("DescribeTable") {
                c.write_units += write_units(&op, &body);
            }
            if op == "AWSEvents.PutEvents" {
                c.put_events_entries += body.matches("\"DetailType\"").count().max(1) as u64;
            }
            if op == "PutMetricData" {
                c.put_metric_requests += 1;
                let hour = c.hour;
                for m in metrics_sent(&body) {
                    c.metrics.entry(m).or_default().insert(hour);
                }
            }
        });
        let sent = self.inner.call(request);
        if !is_read {
            return sent;
        }
        // Reads: one unit per 4 KB of the answer, strongly consistent (an upper bound).
        let meter = self.meter.clone();
        HttpConnectorFuture::new(async move {
            let response = sent.await?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = ByteStream::new(response.into_body())
                .collect()
                .await
                .map(|b| b.into_bytes())
                .unwrap_or_default();
            meter.with(|c| c.read_units += (bytes.len() as f64 / 4096.0).ceil().max(1.0));
            let mut out = HttpResponse::new(status, SdkBody::from(bytes));
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}

/// Counts the bytes the functions log, as CloudWatch Logs ingests them.
#[derive(Clone)]
struct LogBytes(Meter);

struct LogWriter(Meter);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.with(|c| {
            let f = c.function.to_string();
            c.invocations.entry(f).or_default().1 += buf.len() as u64;
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBytes {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(self.0.clone())
    }
}

/// The month's invocations and what they cost, per item.
struct Bill {
    lines: Vec<(String, String, f64)>,
    total: f64,
}

/// 8. The automation's own bill.
pub(super) async fn own_bill(md: &mut String) -> Result<(), String> {
    let meter = Meter::default();
    let counts = simulate(&meter).await?;
    let bill = price_it(&counts);
    write_section(md, &counts, &bill);
    eprintln!("own bill: ${:.2}/month", bill.total);
    Ok(())
}

async fn simulate(meter: &Meter) -> Result<Counts, String> {
    let moto = MotoServer::start(0)?;
    let plain = fleet_shared::aws::emulator_config(&moto.endpoint, REGION);
    let sdk = plain
        .clone()
        .into_builder()
        .http_client(SharedHttpClient::new(MeteredClient {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            meter: meter.clone(),
        }))
        .build();
    let slack = crate::fakes::slack::FakeSlack::start().await;
    seed_local_account(&plain, &slack.url).await?;
    let start: Timestamp = MONTH_START.parse().map_err(|e| format!("{e}"))?;
    seed_month_costs(&moto.endpoint, start).await?;
    let tap = BusTap::new(&plain, LOCAL_BUS).await;
    let kube = FakeKube::start().await;
    kube.set_ready_delay(Duration::from_secs(2));
    kube.set_load_balancer_cleanup(crate::fakes::kube::LoadBalancerCleanup::After(
        Duration::from_millis(100),
    ));
    kube.insert(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingress-nginx"}}),
    );
    karpenter::install_crds(&kube);
    kube.insert(
        karpenter::Ec2NodeClass::new("default", "sandbox-us")
            .tag("fleet:cluster", "sandbox-us")
            .build(),
    );
    kube.insert(
        karpenter::NodePool::new("spot", "default")
            .limits(json!({"cpu": "100"}))
            .capacity_type("spot")
            .build(),
    );
    // The controller runs whenever its nodegroup does (no NodeClaims in this month).
    kube.insert(karpenter::controller_deployment(2, 2));
    let cloudflare = FakeCloudflare::start(LOCAL_CLOUDFLARE_TOKEN).await;
    cloudflare.add_zone(LOCAL_ZONE);

    let text = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .map_err(|e| e.to_string())?;
    let config = FleetConfig::parse(&text).map_err(|e| e.to_string())?;
    let dora = config.dora.clone().ok_or("the example has [dora]")?;
    let level = config.metrics.cloudwatch;
    let kube_for = |sdk| KubeConnector::new(sdk, Some(kube.url.clone()));
    let scheduler = cluster_scheduler::Scheduler::new(
        std::sync::Arc::new(fleet_shared::place::Places::hub_only(&sdk)),
        config.clone(),
        fleet_shared::startup::LOCAL_STACK,
        LOCAL_TABLE,
        Notifier::disabled(),
        kube_for(&sdk),
    );
    let cloudflare_client = dns_updater::cloudflare::Cloudflare::new(
        Some(&cloudflare.url),
        Secret::new(LOCAL_CLOUDFLARE_TOKEN.into()),
        dns_updater::cloudflare::RetryPolicy {
            max_attempts: 4,
            max_wait: Duration::from_secs(5),
            first_backoff: Duration::from_millis(20),
        },
    )
    .map_err(|e| e.to_string())?;
    let dns = dns_updater::Updater::new(
        std::sync::Arc::new(fleet_shared::place::Places::hub_only(&sdk)),
        config.clone(),
        LOCAL_TABLE,
        Notifier::disabled(),
        kube_for(&sdk),
        Some(cloudflare_client),
    );
    let webhook = dora_webhook::Webhook::new(
        &sdk,
        dora.clone(),
        LOCAL_TABLE,
        dora_webhook::handler::Secrets {
            github: Secret::new(LOCAL_WEBHOOK_SECRET.into()),
            flux: Secret::new(LOCAL_WEBHOOK_SECRET.into()),
            flagger: None,
            argocd: Some(Secret::new(crate::LOCAL_ARGOCD_TOKEN.into())),
            pagerduty: Some(Secret::new(crate::LOCAL_PAGERDUTY_SECRET.into())),
        },
    );
    let mut aggregator =
        dora_aggregator::Aggregator::new(&sdk, dora, LOCAL_TABLE, Notifier::disabled(), None)
            .map_err(|e| e.to_string())?;
    aggregator.metrics_level = level;
    let reporter =
        cost_reporter::Reporter::new(&sdk, config.clone(), LOCAL_TABLE, Notifier::disabled());
    let drainer = spot_drainer::Drainer::new(
        std::sync::Arc::new(fleet_shared::place::Places::hub_only(&sdk)),
        config.clone(),
        LOCAL_TABLE,
        Notifier::disabled(),
        kube_for(&sdk),
    );

    // Lambda's application logs: JSON, info, no time (Lambda adds its own), as
    // `runner::init_tracing` writes them there.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(LogBytes(meter.clone()))
        .json()
        .with_current_span(false)
        .without_time()
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);

    let drains: Vec<Timestamp> = DRAINS.iter().filter_map(|d| d.parse().ok()).collect();
    let mut at = start;
    let end = start
        .checked_add(SIMULATED_HOURS.hours())
        .map_err(|e| e.to_string())?;
    while at < end {
        let since = at.duration_since(start).as_secs();
        let hour = since / 3600;
        let minute_of_day = (since / 60) % 1440;
        let date = at.to_zoned(jiff::tz::TimeZone::UTC).date();
        let weekday = date.weekday().to_monday_zero_offset() < 5;
        meter.with(|c| c.hour = hour);
        if since % 86_400 == 0 {
            eprintln!("own bill: {date}");
        }
        // The day's webhooks (the demo's Monday, every weekday), at their minutes.
        if weekday {
            let day = crate::demo::Day { monday: date };
            for hook in crate::demo::webhooks(&day)?
                .into_iter()
                .filter(|h| h.at >= at && h.at < at + Duration::from_secs(300))
            {
                let request = hook.request(&format!("bill-{:?}-{}", hook.sender, hook.at));
                invoke(
                    meter,
                    &dispatch,
                    "dora-webhook",
                    at,
                    webhook.handle(request, Invocation::at(at)),
                )
                .await;
            }
        }
        if drains.contains(&at) {
            for obj in crate::fixtures::spot_drainer::objects() {
                kube.insert(obj);
            }
            let mut warning: Value =
                serde_json::from_str(include_str!("../../../events/spot-interruption.json"))
                    .map_err(|e| e.to_string())?;
            warning["time"] = json!(Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
            invoke(
                meter,
                &dispatch,
                "spot-drainer",
                at,
                drainer.handle(warning, Invocation::at(at)),
            )
            .await;
        }
        let tick = invoke(
            meter,
            &dispatch,
            "cluster-scheduler",
            at,
            scheduler.handle(json!({"action": "reconcile"}), Invocation::at(at)),
        )
        .await;
        for c in tick["clusters"].as_array().into_iter().flatten() {
            if c["name"] == "staging" && c["step"] == "create-cluster" {
                kube.insert(ingress_service(Some(LOAD_BALANCER)));
            }
        }
        for e in tap.drain().await {
            let dt = e["detail-type"].as_str().unwrap_or_default();
            if dt.starts_with("Cluster ") && dt != "Cluster Transition Failed" {
                invoke(
                    meter,
                    &dispatch,
                    "dns-updater",
                    at,
                    dns.handle(e.clone(), Invocation::at(at)),
                )
                .await;
            }
        }
        if since % 3600 == 0 {
            let scheduled =
                json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}});
            invoke(
                meter,
                &dispatch,
                "dns-updater",
                at,
                dns.handle(scheduled, Invocation::at(at)),
            )
            .await;
        }
        if minute_of_day == 6 * 60 + 30 {
            let scheduled =
                json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}});
            invoke(
                meter,
                &dispatch,
                "dora-aggregator",
                at,
                aggregator.handle(scheduled.clone(), Invocation::at(at)),
            )
            .await;
            invoke(
                meter,
                &dispatch,
                "cost-reporter",
                at,
                reporter.handle(scheduled, Invocation::at(at)),
            )
            .await;
        }
        at = at.checked_add(5.minutes()).map_err(|e| e.to_string())?;
    }
    let counts = meter
        .0
        .lock()
        .map(|mut c| std::mem::take(&mut *c))
        .map_err(|_| "the meter's lock was poisoned".to_string())?;
    Ok(counts)
}

/// Runs one invocation of `function` at virtual time `at` under the counting log
/// subscriber; its answer (`null` on an error, which is recorded).
async fn invoke<F>(
    meter: &Meter,
    dispatch: &tracing::Dispatch,
    function: &'static str,
    at: Timestamp,
    handler: F,
) -> Value
where
    F: std::future::Future<Output = fleet_shared::Result<Value>>,
{
    meter.with(|c| c.function = function);
    let t0 = Instant::now();
    let result = handler.with_subscriber(dispatch.clone()).await;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    meter.with(|c| {
        let e = c.invocations.entry(function.to_string()).or_default();
        e.0 += 1;
        e.2 += ms;
        if let Err(err) = &result {
            c.errors.push(format!("{at} {function}: {err}"));
        }
        c.function = "";
    });
    result.unwrap_or(Value::Null)
}

/// Cost Explorer's answer for the month (the clusters' days and the automation's own,
/// untagged by cluster), so that the forecast has history and the report its line.
async fn seed_month_costs(endpoint: &str, start: Timestamp) -> Result<(), String> {
    let first = start.to_zoned(jiff::tz::TimeZone::UTC).date();
    let mut days = Vec::new();
    let mut date = first.checked_sub(10.days()).map_err(|e| e.to_string())?;
    let last = first.checked_add(30.days()).map_err(|e| e.to_string())?;
    while date < last {
        days.push(cost_day(
            date,
            false,
            &[
                ("Amazon Elastic Kubernetes Service", "staging", 1.2),
                ("Amazon Elastic Kubernetes Service", "sandbox-us", 2.4),
                ("AWS Lambda", "", 0.001),
            ],
        )?);
        date = date.tomorrow().map_err(|e| e.to_string())?;
    }
    seed_costs(endpoint, days).await
}

fn scale(n: f64) -> f64 {
    n * MONTH_HOURS / SIMULATED_HOURS as f64
}

fn price_it(c: &Counts) -> Bill {
    let mut lines: Vec<(String, String, f64)> = Vec::new();
    let invocations: u64 = c.invocations.values().map(|v| v.0).sum();
    let mut gb_s = 0.0;
    for (f, (_, _, ms)) in &c.invocations {
        let aws = c.requests_by_function.get(f).copied().unwrap_or(0) as f64;
        gb_s += (ms + aws * AWS_ROUND_TRIP_MS) / 1000.0 * memory_gb(f);
    }
    let gb_s = scale(gb_s);
    lines.push((
        "Lambda compute".into(),
        format!(
            "{gb_s:.0} GB-s (measured time + {AWS_ROUND_TRIP_MS:.0} ms per AWS call, × memory)"
        ),
        gb_s * price("Lambda compute (arm64)"),
    ));
    let requests = scale(invocations as f64);
    lines.push((
        "Lambda requests".into(),
        format!("{requests:.0} invocations"),
        requests / 1e6 * price("Lambda requests"),
    ));
    let scheduled: u64 = ["cluster-scheduler", "dora-aggregator", "cost-reporter"]
        .iter()
        .filter_map(|f| c.invocations.get(*f).map(|v| v.0))
        .sum::<u64>()
        + 720;
    let scheduled = scale(scheduled as f64);
    lines.push((
        "EventBridge Scheduler".into(),
        format!("{scheduled:.0} scheduled invocations"),
        scheduled / 1e6 * price("EventBridge Scheduler invocations"),
    ));
    let (r, w) = (scale(c.read_units), scale(c.write_units));
    lines.push((
        "DynamoDB reads".into(),
        format!("{r:.0} read request units"),
        r / 1e6 * price("DynamoDB on-demand reads"),
    ));
    lines.push((
        "DynamoDB writes".into(),
        format!("{w:.0} write request units"),
        w / 1e6 * price("DynamoDB on-demand writes"),
    ));
    lines.push((
        "DynamoDB storage + PITR".into(),
        "under 10 MB (stated)".into(),
        0.01 * price("DynamoDB storage + point-in-time recovery"),
    ));
    let events = scale(c.put_events_entries as f64);
    lines.push((
        "EventBridge PutEvents".into(),
        format!("{events:.0} events"),
        events / 1e6 * price("EventBridge custom events (PutEvents)"),
    ));
    let metric_hours: usize = c.metrics.values().map(BTreeSet::len).sum();
    let metric_usd = c
        .metrics
        .values()
        .map(|h| price("CloudWatch custom metrics") * scale(h.len() as f64) / MONTH_HOURS)
        .sum::<f64>();
    lines.push((
        "CloudWatch custom metrics".into(),
        format!(
            "{} metrics, sent in {metric_hours} metric-hours of 720",
            c.metrics.len()
        ),
        metric_usd,
    ));
    let puts = scale(c.put_metric_requests as f64);
    lines.push((
        "CloudWatch PutMetricData".into(),
        format!("{puts:.0} requests"),
        puts / 1000.0 * price("CloudWatch PutMetricData"),
    ));
    // The template's alarms by default: the dead-letter queue, the webhook's errors and
    // its storage failures (FunctionErrorAlarms=false adds none).
    lines.push((
        "CloudWatch alarms".into(),
        "3 (dead-letter queue, webhook errors, webhook storage failures)".into(),
        3.0 * price("CloudWatch alarms (standard resolution)"),
    ));
    lines.push((
        "CloudWatch dashboard".into(),
        "none by default (Dashboard=true: $3.00)".into(),
        0.0,
    ));
    let log_bytes: u64 = c.invocations.values().map(|v| v.1).sum();
    let gb = scale(log_bytes as f64) / 1e9;
    lines.push((
        "CloudWatch Logs ingestion".into(),
        format!("{:.2} MB at info", gb * 1000.0),
        gb * price("CloudWatch Logs ingestion (Lambda, first tier)"),
    ));
    lines.push((
        "CloudWatch Logs storage".into(),
        "3 months kept (LogRetentionDays 90)".into(),
        3.0 * gb * price("CloudWatch Logs storage"),
    ));
    // The webhook's storage-failure metric filter publishes (0) in each hour the webhook
    // logs in: its hours are counted from the deliveries.
    let ce: u64 = c
        .calls
        .iter()
        .filter(|((_, op), _)| op.starts_with("AWSInsightsIndexService."))
        .map(|(_, n)| *n)
        .sum();
    let ce = scale(ce as f64);
    lines.push((
        "Cost Explorer requests".into(),
        format!("{ce:.1} requests"),
        ce * price("Cost Explorer API"),
    ));
    let total = lines.iter().map(|l| l.2).sum();
    Bill { lines, total }
}

fn write_section(md: &mut String, c: &Counts, bill: &Bill) {
    writeln!(md, "## 8. The automation's own bill\n\nWhat the stack itself costs a month for the example config (`infra/fleet.example.toml`, its defaults: `[metrics] cloudwatch = \"summary\"`, the template's defaults: a tick every 5 minutes, no dashboard, no per-function error alarms), counted, not guessed: the six handlers run in one process against moto and the fakes through November 2026 on a virtual clock, invoked as the template's schedules and rules would (the scheduler every 5 minutes, the DNS drift repair hourly, DORA and cost daily at 06:30 UTC, the DNS updater on each `Cluster Ready` / `Cluster Destroyed`, the demo's GitHub deliveries every weekday, four spot interruptions). Every AWS request is counted by an HTTP client in front of moto: by function and API, DynamoDB request units (a write: 1 per KB of the request; a read: 1 per 4 KB of the answer, as if strongly consistent), events put, and the hours each custom metric was sent in; every log line written at info, as JSON, is counted in bytes (Lambda's own START/END/REPORT lines are not written at the template's `SystemLogLevel: WARN`). Counts are scaled from November's 720 hours to a 730-hour month. No free tier is counted. Target: ≤ $1.00 a month.\n").ok();
    writeln!(
        md,
        "| item | counted in the month | USD / month |\n|---|---|---|"
    )
    .ok();
    for (item, what, usd) in &bill.lines {
        writeln!(md, "| {item} | {what} | {usd:.4} |").ok();
    }
    writeln!(
        md,
        "| **total** | | **{:.2}** ({}) |\n",
        bill.total,
        if bill.total <= 1.0 {
            "met"
        } else {
            "**missed**"
        }
    )
    .ok();
    writeln!(md, "Per function in the month (scaled to 730 hours):\n\n| function | invocations | AWS requests | log bytes | measured time |\n|---|---|---|---|---|").ok();
    for (f, (n, bytes, ms)) in &c.invocations {
        writeln!(
            md,
            "| {f} | {:.0} | {:.0} | {:.0} | {:.1} s |",
            scale(*n as f64),
            scale(c.requests_by_function.get(f).copied().unwrap_or(0) as f64),
            scale(*bytes as f64),
            scale(*ms) / 1000.0
        )
        .ok();
    }
    writeln!(md, "\nAWS requests by API (the month, unscaled):\n\n| function | API | requests |\n|---|---|---|").ok();
    for ((f, op), n) in &c.calls {
        writeln!(md, "| {f} | `{op}` | {n} |").ok();
    }
    writeln!(
        md,
        "\nCustom metrics sent (hours of 720 in which each was sent):\n"
    )
    .ok();
    for (m, hours) in &c.metrics {
        writeln!(md, "- `{}`: {}", m.trim(), hours.len()).ok();
    }
    writeln!(md, "\nPrices (us-east-1, AWS's public pricing pages as of 2026, no free tier):\n\n| item | USD | per | source |\n|---|---|---|---|").ok();
    for p in &PRICES {
        writeln!(md, "| {} | {} | {} | {} |", p.item, p.usd, p.unit, p.source).ok();
    }
    if !c.errors.is_empty() {
        writeln!(
            md,
            "\n{} invocation(s) failed in the simulation (counted all the same), the first: {}",
            c.errors.len(),
            c.errors[0]
        )
        .ok();
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_metric_data_body_names_each_metric_with_its_dimensions() {
        let body = "Action=PutMetricData&Version=2010-08-01&Namespace=Fleet%2FCost&MetricData.member.1.MetricName=HoursUp&MetricData.member.1.Value=3&MetricData.member.1.Dimensions.member.1.Name=Cluster&MetricData.member.1.Dimensions.member.1.Value=sandbox-us&MetricData.member.2.MetricName=MonthToDateUsd&MetricData.member.2.Value=1";
        assert_eq!(
            metrics_sent(body),
            vec![
                "Fleet/Cost HoursUp Cluster=sandbox-us".to_string(),
                "Fleet/Cost MonthToDateUsd ".to_string()
            ]
        );
        assert_eq!(percent_decode("a%2Fb+c%"), "a/b c%");
    }

    #[test]
    fn write_units_follow_the_request_size() {
        assert_eq!(write_units("DynamoDB_20120810.PutItem", "{}"), 1.0);
        assert_eq!(
            write_units("DynamoDB_20120810.PutItem", &"x".repeat(1500)),
            2.0
        );
        assert_eq!(
            write_units(
                "DynamoDB_20120810.TransactWriteItems",
                r#"[{"TableName":"t"},{"TableName":"t"}]"#
            ),
            4.0
        );
    }
}
