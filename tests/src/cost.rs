//! A cost-reporter wired to moto (Cost Explorer usage, DynamoDB, EC2, ELBv2, the tagging
//! API, CloudWatch) and the fake Slack. Moto has no Cost Explorer forecast: that one
//! client is mocked with aws-smithy-mocks.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_costexplorer::operation::get_cost_forecast::GetCostForecastOutput;
use aws_sdk_costexplorer::types::{ForecastResult, MetricValue};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::SdkConfig;
use cost_reporter::explorer::Explorer;
use cost_reporter::Reporter;
use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_shared::state::StateStore;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::fakes::slack::FakeSlack;
use crate::scheduler::cluster_toml;
use crate::{moto, sdk, state_table, unique};

/// Sends every request of a client to one moto account (`x-moto-account-id`), so that
/// Cost Explorer results queued for one test are never taken by another.
#[derive(Debug)]
struct MotoAccount(String);

impl Intercept for MotoAccount {
    fn name(&self) -> &'static str {
        "MotoAccount"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.0.clone());
        Ok(())
    }
}

fn account() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:012}",
        200_000_000_000 + u64::from(std::process::id()) * 100 + N.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct CostFixture {
    pub sdk: SdkConfig,
    pub reporter: Reporter,
    pub store: StateStore,
    pub slack: FakeSlack,
    pub account: String,
    /// The cluster names, in config order.
    pub names: Vec<String>,
    pub forecast_rule: Rule,
}

/// A forecast of `mean` for the rest of the month, with an 80 % interval.
pub fn forecast_rule(mean: f64, lower: f64, upper: f64) -> Rule {
    mock!(aws_sdk_costexplorer::Client::get_cost_forecast).then_output(move || {
        let amount = |v: f64| format!("{v:.2}");
        GetCostForecastOutput::builder()
            .total(
                MetricValue::builder()
                    .amount(amount(mean))
                    .unit("USD")
                    .build(),
            )
            .forecast_results_by_time(
                ForecastResult::builder()
                    .mean_value(amount(mean))
                    .prediction_interval_lower_bound(amount(lower))
                    .prediction_interval_upper_bound(amount(upper))
                    .build(),
            )
            .build()
    })
}

impl CostFixture {
    /// Clusters as `(mode, uptime)`; `cost` is the `[cost]` section.
    pub async fn start(clusters: &[(&str, &str)], cost: &str, forecast: Rule) -> CostFixture {
        let sdk = sdk();
        let store = state_table(&sdk).await;
        let slack = FakeSlack::start().await;
        let account = account();
        let names: Vec<String> = clusters.iter().map(|_| unique("staging")).collect();
        let mut text = "[fleet]\nregion = \"eu-west-1\"\n".to_string();
        for (name, (mode, uptime)) in names.iter().zip(clusters) {
            text.push_str(&cluster_toml(mode, uptime, "").replace("{name}", name));
        }
        text.push_str(&format!("\n[cost]\n{cost}\n"));
        let config = FleetConfig::parse(&text).expect("test config");
        let usage = aws_sdk_costexplorer::Client::from_conf(
            aws_sdk_costexplorer::config::Builder::from(&sdk)
                .interceptor(MotoAccount(account.clone()))
                .build(),
        );
        let forecast_client = mock_client!(aws_sdk_costexplorer, RuleMode::MatchAny, [&forecast]);
        let mut reporter = Reporter::new(
            &sdk,
            config,
            store.table(),
            Notifier::new(Some(Secret::new(slack.url.clone()))),
        );
        // Usage from moto in the fixture's account; the forecast from a mocked client.
        reporter.explorer = Explorer::new(usage, forecast_client, store.clone());
        CostFixture {
            sdk,
            reporter,
            store,
            slack,
            account,
            names,
            forecast_rule: forecast,
        }
    }

    /// Queues Cost Explorer's answer to the next distinct usage query (moto's API).
    pub async fn seed_usage(&self, results_by_time: Vec<Value>) {
        let body =
            json!({"account_id": self.account, "results": [{"ResultsByTime": results_by_time}]});
        let status = reqwest::Client::new()
            .post(format!(
                "{}/moto-api/static/ce/cost-and-usage-results",
                moto().endpoint
            ))
            .json(&body)
            .send()
            .await
            .expect("seed Cost Explorer")
            .status();
        assert!(status.is_success(), "moto said {status}");
    }

    pub async fn call(&self, event: Value, now: &str) -> fleet_shared::Result<Value> {
        let now: Timestamp = now.parse().expect("time");
        self.reporter.handle(event, Invocation::at(now)).await
    }
}

/// One day of Cost Explorer results: `(service, cluster, usd)` groups.
pub fn ce_day(date: &str, estimated: bool, groups: &[(&str, &str, f64)]) -> Value {
    let next: jiff::civil::Date = date
        .parse::<jiff::civil::Date>()
        .expect("date")
        .tomorrow()
        .expect("date");
    json!({
        "TimePeriod": {"Start": date, "End": next.to_string()},
        "Total": {},
        "Groups": groups.iter().map(|(service, cluster, usd)| json!({
            "Keys": [service, format!("fleet:cluster${cluster}")],
            "Metrics": {"UnblendedCost": {"Amount": format!("{usd}"), "Unit": "USD"}},
        })).collect::<Vec<_>>(),
        "Estimated": estimated,
    })
}
