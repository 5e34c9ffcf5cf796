//! Where a request goes: the deployed functions (Lambda `Invoke`, their names from the
//! stack's outputs) or, with `--local`, the same handlers in this process. One request
//! document, one answer, whichever way: the CLI has one code path.

use std::collections::HashMap;

use fleet_shared::runner::{Function as Handler, Invocation};
use fleet_shared::FleetError;
use serde_json::Value;
use tokio::sync::OnceCell;

/// The functions fleetctl asks, each with its stack output (`infra/template.yaml`,
/// `Outputs`) that names the deployed function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Scheduler,
    Drainer,
    DnsUpdater,
    DoraAggregator,
    CostReporter,
}

impl Function {
    /// The stack output holding the function's name.
    pub fn output(self) -> &'static str {
        match self {
            Function::Scheduler => "ClusterSchedulerFunction",
            Function::Drainer => "SpotDrainerFunction",
            Function::DnsUpdater => "DnsUpdaterFunction",
            Function::DoraAggregator => "DoraAggregatorFunction",
            Function::CostReporter => "CostReporterFunction",
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The function refused the request (a `BadRequest`: unknown cluster, a time in the
    /// past, a malformed field): nothing was changed. Exit 2.
    Refused(String),
    /// The function found something not ready yet (a `NotReady`: a cluster not ACTIVE
    /// for a DNS sync). Exit 3.
    NotReady(String),
    /// Anything else: AWS, the function's own failure, the stack not found. Exit 1.
    Failed(String),
}

impl Failure {
    /// From a function's error: a bad request is a refusal, the rest a failure.
    pub fn of(e: FleetError) -> Self {
        match e {
            FleetError::BadRequest { .. } => Failure::Refused(refusal(&e.to_string())),
            FleetError::Pending(_) => Failure::NotReady(one_line(&e.to_string())),
            e => Failure::Failed(one_line(&e.to_string())),
        }
    }

    /// From Lambda's error document (`{"errorType": "...", "errorMessage": "..."}`,
    /// [`fleet_shared::runner`]'s `Diagnostic`s) of a function that failed.
    pub fn of_lambda(function: Function, payload: &[u8]) -> Self {
        let doc: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        let message = doc["errorMessage"]
            .as_str()
            .map(one_line)
            .unwrap_or_else(|| {
                format!("{function:?} failed: {}", String::from_utf8_lossy(payload))
            });
        match doc["errorType"].as_str() {
            Some("BadRequest") => Failure::Refused(refusal(&message)),
            Some("NotReady") => Failure::NotReady(message),
            _ => Failure::Failed(message),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Refused(m) | Failure::NotReady(m) | Failure::Failed(m) => m,
        }
    }
}

/// A refusal without the `bad request: ` every one starts with (`error: ` says it).
fn refusal(s: &str) -> String {
    crate::request::cli_words(&one_line(s))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Sends request documents to the fleet's functions.
pub enum Invoker {
    Lambda(Lambda),
    Local(Box<Local>),
}

impl Invoker {
    /// Sends `event` to `function` and returns its answer.
    pub async fn call(&self, function: Function, event: Value) -> Result<Value, Failure> {
        match self {
            Invoker::Lambda(l) => l.call(function, event).await,
            Invoker::Local(l) => l.call(function, event).await,
        }
    }

    /// Whether something else ticks the scheduler (the deployed schedule) or `wait` must.
    pub fn is_local(&self) -> bool {
        matches!(self, Invoker::Local(_))
    }
}

/// The deployed functions, by the names the stack's outputs give.
pub struct Lambda {
    client: aws_sdk_lambda::Client,
    names: HashMap<String, String>,
    stack: String,
}

impl Lambda {
    /// Reads `stack`'s outputs (`cloudformation:DescribeStacks`) with the AWS config
    /// `profile` and `region` select.
    pub async fn connect(
        stack: &str,
        profile: Option<&str>,
        region: Option<&str>,
    ) -> Result<Self, Failure> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_string()));
        }
        // The scheduler runs one invocation at a time (reserved concurrency 1): a command
        // during a tick (up to its 60 s timeout) is throttled. Retry throttling for about
        // a minute and a half (10 s apart at most) rather than fail at once.
        loader = loader.retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(12)
                .with_max_backoff(std::time::Duration::from_secs(10)),
        );
        let sdk = loader.load().await;
        let cfn = aws_sdk_cloudformation::Client::new(&sdk);
        let out = cfn.describe_stacks().stack_name(stack).send().await.map_err(|e| {
            Failure::Failed(format!(
                "stack `{stack}`: DescribeStacks: {} (is it deployed in this region? --stack, --region)",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            ))
        })?;
        let names = out
            .stacks()
            .iter()
            .flat_map(|s| s.outputs())
            .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
            .collect();
        Ok(Lambda {
            client: aws_sdk_lambda::Client::new(&sdk),
            names,
            stack: stack.to_string(),
        })
    }

    async fn call(&self, function: Function, event: Value) -> Result<Value, Failure> {
        let name = self.names.get(function.output()).ok_or_else(|| {
            Failure::Failed(format!(
                "stack `{}` has no output {} (deployed before fleetctl? run make deploy)",
                self.stack,
                function.output()
            ))
        })?;
        let out = self
            .client
            .invoke()
            .function_name(name)
            .payload(aws_smithy_types::Blob::new(event.to_string()))
            .send()
            .await
            .map_err(|e| {
                Failure::Failed(format!(
                    "{name}: Invoke: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                ))
            })?;
        let payload = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        if out.function_error().is_some() {
            return Err(Failure::of_lambda(function, payload));
        }
        serde_json::from_slice(payload)
            .map_err(|e| Failure::Failed(format!("{name} answered no JSON: {e}")))
    }
}

/// The handlers in this process, each built (its cold start) on first use.
#[derive(Default)]
pub struct Local {
    scheduler: OnceCell<cluster_scheduler::Scheduler>,
    drainer: OnceCell<spot_drainer::Drainer>,
    dns: OnceCell<dns_updater::Updater>,
    dora: OnceCell<dora_aggregator::Aggregator>,
    cost: OnceCell<cost_reporter::Reporter>,
}

impl Local {
    async fn call(&self, function: Function, event: Value) -> Result<Value, Failure> {
        match function {
            Function::Scheduler => run(&self.scheduler, event).await,
            Function::Drainer => run(&self.drainer, event).await,
            Function::DnsUpdater => run(&self.dns, event).await,
            Function::DoraAggregator => run(&self.dora, event).await,
            Function::CostReporter => run(&self.cost, event).await,
        }
    }
}

/// One invocation of a local handler at the local decision time (`FLEET_NOW`, else now).
async fn run<F: Handler>(cell: &OnceCell<F>, event: Value) -> Result<Value, Failure> {
    let handler = cell
        .get_or_try_init(F::cold_start)
        .await
        .map_err(|e| Failure::Failed(format!("cold start: {}", one_line(&e.to_string()))))?;
    let now = fleet_shared::runner::local_now().map_err(Failure::of)?;
    handler
        .handle(event, Invocation::at(now))
        .await
        .map_err(Failure::of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_outputs_every_function_fleetctl_invokes() {
        let template = include_str!("../../../infra/template.yaml");
        let outputs = &template[template.find("\nOutputs:").expect("Outputs")..];
        for (f, resource) in [
            (Function::Scheduler, "ClusterScheduler"),
            (Function::Drainer, "SpotDrainer"),
            (Function::DnsUpdater, "DnsUpdater"),
            (Function::DoraAggregator, "DoraAggregator"),
            (Function::CostReporter, "CostReporter"),
        ] {
            let at = outputs
                .find(&format!("\n  {}:\n", f.output()))
                .unwrap_or_else(|| panic!("no output {}", f.output()));
            let block: String = outputs[at + 1..]
                .lines()
                .skip(1)
                .take_while(|l| l.starts_with("    "))
                .collect();
            assert!(
                block.contains(&format!("Value: {{ Ref: {resource} }}")),
                "{}: {block}",
                f.output()
            );
        }
    }

    #[test]
    fn lambda_errors_are_refusals_only_when_bad_requests() {
        let refused = br#"{"errorType":"BadRequest","errorMessage":"bad request: `cluster`: unknown cluster `x`"}"#;
        assert_eq!(
            Failure::of_lambda(Function::Scheduler, refused),
            Failure::Refused("`cluster`: unknown cluster `x`".into())
        );
        let until = br#"{"errorType":"BadRequest","errorMessage":"bad request: `until`: 2026-11-23T06:00:00Z is not in the future"}"#;
        assert_eq!(
            Failure::of_lambda(Function::Scheduler, until),
            Failure::Refused("--until: 2026-11-23T06:00:00Z is not in the future".into())
        );
        let pending =
            br#"{"errorType":"NotReady","errorMessage":"not ready: staging is CREATING"}"#;
        assert_eq!(
            Failure::of_lambda(Function::DnsUpdater, pending),
            Failure::NotReady("not ready: staging is CREATING".into())
        );
        let failed = br#"{"errorType":"AwsError","errorMessage":"DynamoDB\n throttled"}"#;
        assert_eq!(
            Failure::of_lambda(Function::Scheduler, failed),
            Failure::Failed("DynamoDB throttled".into())
        );
        // Lambda's own error (a timeout) has no errorType of ours.
        let timeout = br#"{"errorMessage":"Task timed out after 60.00 seconds"}"#;
        assert!(matches!(
            Failure::of_lambda(Function::Scheduler, timeout),
            Failure::Failed(m) if m.contains("timed out")
        ));
        assert!(matches!(
            Failure::of_lambda(Function::Drainer, b"not json"),
            Failure::Failed(m) if m.contains("not json")
        ));
    }
}
