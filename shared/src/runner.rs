//! Runs a handler in Lambda or, outside Lambda, once on an event file (README, "Local
//! walkthrough"). Every function's `main.rs` is one call: [`serve`].
//!
//! `cargo run -p <function> -- --event <file|->` deserializes the event exactly as the
//! Lambda runtime does (JSON into `serde_json::Value`), prints the JSON response on stdout,
//! and on failure prints one line to stderr and exits 1.

use std::future::Future;
use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::clock::{Budget, LOCAL_BUDGET};
use crate::error::{FleetError, Result};

/// What a handler knows about the invocation besides its event: the two clocks (see
/// [`crate::clock`]) and its id.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Decision time: the instant the handler decides at. In Lambda the real clock at the
    /// invocation's start; locally `FLEET_NOW` may set it (the demo replays a virtual day).
    pub now: Timestamp,
    /// Real time left: ends at Lambda's deadline, or after [`LOCAL_BUDGET`] locally.
    pub budget: Budget,
    /// Lambda's request id; `local-<pid>-<n>` locally. Leases tell invocations apart by it.
    pub request_id: String,
    /// The account the function runs in (the hub's), from Lambda's invoked function ARN;
    /// `None` locally.
    pub account_id: Option<String>,
    /// The real instant `now` was taken at: the anchor between the two clocks.
    started: Instant,
}

impl Invocation {
    /// An invocation deciding at `now` with `budget` left.
    pub fn new(now: Timestamp, budget: Budget, request_id: impl Into<String>) -> Self {
        Invocation {
            now,
            budget,
            request_id: request_id.into(),
            account_id: None,
            started: Instant::now(),
        }
    }

    /// An invocation at `now` with a local run's budget (15 minutes): for tests and local
    /// runs. Every invocation gets its own id, as in Lambda.
    pub fn at(now: Timestamp) -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Invocation::new(
            now,
            Budget::of(LOCAL_BUDGET),
            format!("local-{}-{n}", std::process::id()),
        )
    }

    /// The same invocation with `length` of real time left from this moment.
    pub fn with_budget(mut self, length: Duration) -> Self {
        self.budget = Budget::of(length);
        self
    }

    /// The real instant at which the decision clock reads `t`: for a decision-time instant
    /// that bounds real work (a spot interruption's termination). Instants before the
    /// invocation started map to its start (they are already due).
    pub fn real_instant(&self, t: Timestamp) -> Instant {
        let ahead = t.duration_since(self.now);
        match Duration::try_from(ahead) {
            Ok(ahead) => self.started + ahead,
            // Negative: already past when the invocation started.
            Err(_) => self.started,
        }
    }

    /// What the decision clock reads at the real instant `at`: e.g. when a lease held
    /// until the budget ends expires, in the decision time other invocations compare with.
    pub fn decision_time(&self, at: Instant) -> Timestamp {
        let elapsed = at.saturating_duration_since(self.started);
        self.now.checked_add(elapsed).unwrap_or(self.now)
    }

    /// The decision clock now, having run on in real time since the invocation began.
    pub fn decision_now(&self) -> Timestamp {
        self.decision_time(Instant::now())
    }

    /// When the budget ends, in decision time: how long a lease this invocation takes
    /// must last.
    pub fn budget_ends_at(&self) -> Timestamp {
        self.decision_time(self.budget.ends())
    }
}

impl From<FleetError> for Diagnostic {
    fn from(e: FleetError) -> Self {
        let error_type = match &e {
            FleetError::Config { .. } => "ConfigError",
            FleetError::BadRequest { .. } => "BadRequest",
            FleetError::Aws { .. } => "AwsError",
            FleetError::Io(_) => "IoError",
            FleetError::Internal(_) => "InternalError",
            FleetError::Http { .. } => "HttpError",
            FleetError::Kube { .. } => "KubernetesError",
            FleetError::Cloudflare { .. } => "CloudflareError",
            FleetError::Pending(_) => "NotReady",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Logs go to stderr as JSON in Lambda (CloudWatch parses them) and as text locally, so
/// that stdout carries only the response.
pub fn init_tracing() {
    let filter = pinned(
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if in_lambda() {
        builder
            .json()
            .with_current_span(false)
            .without_time()
            .init();
    } else {
        use std::io::IsTerminal;
        builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .compact()
            .init();
    }
}

/// `lambda_runtime` logs every raw event and response at trace level: an event can carry a
/// secret (Flagger's token in a Function URL's query string), so it stays at info whatever
/// `RUST_LOG` asks for. Later directives for the same target replace earlier ones.
const PINNED: [&str; 2] = ["lambda_runtime=info", "lambda_runtime_api_client=info"];

fn pinned(mut filter: tracing_subscriber::EnvFilter) -> tracing_subscriber::EnvFilter {
    for directive in PINNED {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// Whether this process runs in Lambda (the Runtime API's address is set).
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Prints a cold-start failure the way a failed handler is printed, and exits 1.
pub fn fail(e: FleetError) -> ExitCode {
    tracing::error!(error = %e, "cold start failed");
    eprintln!("error: {}", one_line(&e.to_string()));
    ExitCode::from(1)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A handler's typed answer as the invocation's JSON response.
///
/// # Errors
/// [`FleetError::Internal`] if the answer does not serialize (a map with non-string keys;
/// never for the fleet's answer types).
pub fn respond<T: serde::Serialize>(answer: T) -> Result<Value> {
    serde_json::to_value(answer).map_err(|e| FleetError::Internal(format!("the answer: {e}")))
}

/// A fleet function: built once per cold start, then asked to handle events.
pub trait Function: Sized + Send + Sync + 'static {
    /// Builds the function from the environment: config, secrets and clients, once.
    ///
    /// # Errors
    /// A missing or invalid config key or secret, named; the process then exits 1.
    fn cold_start() -> impl Future<Output = Result<Self>>;

    /// Handles one event; the answer is the invocation's JSON response.
    ///
    /// # Errors
    /// Whatever the function reports: a bad request names its field; other errors make
    /// Lambda (and EventBridge) retry.
    fn handle(&self, event: Value, inv: Invocation) -> impl Future<Output = Result<Value>>;
}

/// A function's whole `main`: logging, the cold start, then events served from the
/// Lambda Runtime API, or one event locally (`--event <file|->`).
pub async fn serve<F: Function>() -> ExitCode {
    init_tracing();
    let function = match F::cold_start().await {
        Ok(f) => std::sync::Arc::new(f),
        Err(e) => return fail(e),
    };
    run(|event, inv| {
        let function = function.clone();
        async move { function.handle(event, inv).await }
    })
    .await
}

/// Serves `handler` from the Lambda Runtime API, or runs it once locally.
pub async fn run<H, F>(handler: H) -> ExitCode
where
    H: Fn(Value, Invocation) -> F,
    F: Future<Output = Result<Value>>,
{
    if in_lambda() {
        let served = lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
            // Decision time is the real clock in Lambda: the invocation acts now.
            let mut inv = Invocation::new(
                Timestamp::now(),
                Budget::until_epoch_ms(event.context.deadline),
                event.context.request_id.clone(),
            );
            // arn:<partition>:lambda:<region>:<account>:function:<name>
            inv.account_id = event
                .context
                .invoked_function_arn
                .split(':')
                .nth(4)
                .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
                .map(String::from);
            handler(event.payload, inv)
        }))
        .await;
        return match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "runtime stopped");
                ExitCode::from(1)
            }
        };
    }
    match run_local(&handler).await {
        Ok(response) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&response).unwrap_or_else(|_| response.to_string())
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e.to_string()));
            ExitCode::from(1)
        }
    }
}

async fn run_local<H, F>(handler: &H) -> Result<Value>
where
    H: Fn(Value, Invocation) -> F,
    F: Future<Output = Result<Value>>,
{
    let path = event_arg(std::env::args().skip(1))?;
    let text = if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| FleetError::Io(format!("reading the event from stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(&path)
            .map_err(|e| FleetError::Io(format!("reading the event file {path}: {e}")))?
    };
    let event: Value = serde_json::from_str(&text)
        .map_err(|e| FleetError::bad_request("event", format!("not valid JSON: {e}")))?;
    let now = local_now()?;
    // Whatever `FLEET_NOW` says, the run has Lambda's longest timeout of real time.
    handler(event, Invocation::at(now)).await
}

/// The decision time of a local run: `FLEET_NOW` when set (the demo's virtual clock),
/// else the real clock, as Lambda would.
///
/// # Errors
/// [`FleetError::BadRequest`] naming `FLEET_NOW` when it is not an RFC 3339 timestamp.
pub fn local_now() -> Result<Timestamp> {
    match std::env::var("FLEET_NOW") {
        Ok(v) => v.parse::<Timestamp>().map_err(|e| {
            FleetError::bad_request(
                "FLEET_NOW",
                format!("`{v}` is not an RFC 3339 timestamp: {e}"),
            )
        }),
        Err(_) => Ok(Timestamp::now()),
    }
}

fn event_arg(mut args: impl Iterator<Item = String>) -> Result<String> {
    let usage = || FleetError::bad_request("--event", "usage: <function> --event <file|->");
    match (args.next().as_deref(), args.next(), args.next()) {
        (Some("--event"), Some(path), None) => Ok(path),
        (Some(flag), None, None) if flag.starts_with("--event=") => {
            Ok(flag["--event=".len()..].to_string())
        }
        _ => Err(usage()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> impl Iterator<Item = String> {
        a.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn lambda_runtime_stays_at_info_whatever_rust_log_says() {
        for asked in [
            "trace",
            "lambda_runtime=trace",
            "debug,lambda_runtime=trace,lambda_runtime_api_client=trace",
        ] {
            let f = pinned(tracing_subscriber::EnvFilter::new(asked)).to_string();
            assert!(f.contains("lambda_runtime=info"), "{asked}: {f}");
            assert!(!f.contains("lambda_runtime=trace"), "{asked}: {f}");
            assert!(
                !f.contains("lambda_runtime_api_client=trace"),
                "{asked}: {f}"
            );
        }
    }

    #[test]
    fn the_two_clocks_meet_only_through_explicit_conversions_in_any_year() {
        for now in [
            "2021-11-30T10:00:00Z",
            "2031-11-30T10:00:00Z",
            "1999-12-31T23:59:00Z",
        ] {
            let now: Timestamp = now.parse().expect("ts");
            let inv = Invocation::at(now);
            // Two minutes ahead in decision time is two minutes ahead in real time.
            let ahead = now.checked_add(Duration::from_secs(120)).expect("ts");
            let left = inv
                .real_instant(ahead)
                .saturating_duration_since(Instant::now());
            assert!(
                left > Duration::from_secs(119) && left <= Duration::from_secs(120),
                "{left:?}"
            );
            // Already past: due now, not in the past and not a panic.
            let past = now.checked_sub(Duration::from_secs(3600)).expect("ts");
            assert!(inv.real_instant(past) <= Instant::now());
            // The budget (15 minutes locally) ends 15 minutes ahead in decision time.
            let ends = inv.budget_ends_at().duration_since(now).as_secs();
            assert!((899..=900).contains(&ends), "{ends}");
            assert!(inv.decision_now() >= now);
            let short = Invocation::at(now).with_budget(Duration::from_secs(4));
            assert!(short.budget.remaining() <= Duration::from_secs(4));
        }
    }

    #[test]
    fn event_argument_forms() {
        assert_eq!(
            event_arg(args(&["--event", "e.json"])).ok(),
            Some("e.json".into())
        );
        assert_eq!(event_arg(args(&["--event=-"])).ok(), Some("-".into()));
        assert!(event_arg(args(&[])).is_err());
        assert!(event_arg(args(&["--evnt", "x"])).is_err());
        assert!(event_arg(args(&["--event", "a", "b"])).is_err());
    }
}
