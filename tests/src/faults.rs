//! AWS faults on demand, in front of moto: an HTTP client for the SDK that passes every
//! request through to moto, except the operation it is told to fail.
//!
//! Operations are counted as the SDK sends them (one per `amz-sdk-invocation-id`, so that
//! the SDK's own retries of an operation belong to it). An armed fault fails either the
//! operation's first attempt only (the SDK retries, and nothing may show), or every
//! attempt (the SDK gives up, and the caller must fail cleanly and leave state that the
//! next tick or delivery completes). This covers every call path of a scenario without
//! naming one: the tests arm operation 1, then 2, and so on until the scenario runs out
//! of operations.
//!
//! Faults use the error each protocol really sends: throttling as a 400 with the
//! service's error code (JSON or XML body, by the request's protocol), a 503 with an
//! empty body, a connection reset, and a response lost after the service applied the
//! request. aws-smithy-mocks stays the tool for responses
//! moto cannot give (Cost Explorer forecasts); everything else here is real moto.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use aws_types::SdkConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 with the protocol's throttling error.
    Throttle,
    /// 503, empty body.
    Unavailable,
    /// The connection reset before the request reached the service.
    Reset,
    /// The request reached the service and was applied, and the response was lost (a
    /// timeout): the retry, or the next tick, meets its own earlier success.
    Lost,
}

#[derive(Debug, Default)]
struct Plan {
    /// Invocation id -> operation number, since the last `arm`.
    operations: HashMap<String, usize>,
    armed: Option<(usize, Fault, bool)>,
    /// Operation names (`service.operation` as the request shows it) that were failed.
    injected: Vec<String>,
    /// Added to every request: a slow AWS, for deadlines.
    latency: Duration,
    /// Route53 `GetChange` calls still to be answered PENDING (moto answers INSYNC at once).
    pending_changes: usize,
    /// Route53 `GetChange` calls seen.
    get_changes: usize,
}

/// The switchboard a test holds; `sdk()` inside [`Faults::scope`] goes through it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    plan: Arc<Mutex<Plan>>,
}

tokio::task_local! {
    static SCOPE: SdkConfig;
}

/// The SDK config a fixture should use: the faulty one inside a scope, else `None`.
pub(crate) fn scoped_sdk() -> Option<SdkConfig> {
    SCOPE.try_with(Clone::clone).ok()
}

impl Faults {
    /// Runs `test` with `crate::sdk()` (and so every fixture) going through these faults.
    pub async fn scope<F: Future>(&self, endpoint: &str, test: F) -> F::Output {
        let base = fleet_shared::aws::emulator_config(endpoint, crate::REGION);
        let sdk = base
            .into_builder()
            .http_client(SharedHttpClient::new(FaultyClient {
                inner: aws_smithy_http_client::Builder::new().build_http(),
                plan: self.plan.clone(),
            }))
            // The SDK's standard retries, without the waiting.
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(1))
                    .with_max_backoff(Duration::from_millis(5)),
            )
            .build();
        SCOPE.scope(sdk, test).await
    }

    /// Fails the `op`-th operation from now: its first attempt only, or all of them.
    pub fn arm(&self, op: usize, fault: Fault, persistent: bool) {
        if let Ok(mut p) = self.plan.lock() {
            p.operations.clear();
            p.injected.clear();
            p.armed = Some((op, fault, persistent));
        }
    }

    /// No more faults; returns the operations failed since `arm`.
    pub fn disarm(&self) -> Vec<String> {
        self.plan
            .lock()
            .map(|mut p| {
                p.armed = None;
                std::mem::take(&mut p.injected)
            })
            .unwrap_or_default()
    }

    /// Every request from now on takes `latency` longer.
    pub fn set_latency(&self, latency: Duration) {
        if let Ok(mut p) = self.plan.lock() {
            p.latency = latency;
        }
    }

    /// The next `n` Route53 `GetChange` calls are answered `PENDING`, as Route53 answers
    /// while a change propagates to its name servers (about a minute); moto says INSYNC
    /// at once, so a waiting loop would never run against it.
    pub fn hold_route53_changes_pending(&self, n: usize) {
        if let Ok(mut p) = self.plan.lock() {
            p.pending_changes = n;
        }
    }

    /// Route53 `GetChange` calls sent so far.
    pub fn get_change_calls(&self) -> usize {
        self.plan.lock().map(|p| p.get_changes).unwrap_or(0)
    }

    /// Operations sent since the last `arm`.
    pub fn operations(&self) -> usize {
        self.plan.lock().map(|p| p.operations.len()).unwrap_or(0)
    }
}

/// The modes of a [`sweep`]: every attempt failed, by each kind of fault; then the first
/// attempt only, with its answer lost (the retry meets its own success: the hardest case
/// for idempotency; the retried throttles and 5xx are the SDK's standard retry).
pub const SWEEP_MODES: [(Fault, bool); 5] = [
    (Fault::Throttle, true),
    (Fault::Unavailable, true),
    (Fault::Reset, true),
    (Fault::Lost, true),
    (Fault::Lost, false),
];

/// One run of a [`sweep`]: the operation it fails and how. The scenario sets its fixture
/// up, then [`Shot::fire`]s the call under test.
#[derive(Debug, Clone)]
pub struct Shot {
    faults: Faults,
    /// Which operation, counted from the [`Shot::fire`], is failed.
    pub op: usize,
    pub fault: Fault,
    /// Every attempt failed (the SDK gives up), or the first only (the SDK retries it).
    pub every_attempt: bool,
}

/// What a [`Shot`] did.
#[derive(Debug)]
pub struct Fired<T> {
    /// The answer of the call under test.
    pub result: T,
    /// The operations failed (`service.operation`), never empty.
    pub failed: Vec<String>,
    /// The fault, the operation, the mode and the answer, for assertion messages.
    pub what: String,
}

impl Shot {
    /// Runs `call` with the fault armed, then disarms it. `None` when no operation was
    /// failed: the armed operation is past the scenario's last, and the scenario returns
    /// `false` to end the sweep. The call's future goes to the heap first: a handler's
    /// future is large, and the sweep's runs nest in one another's.
    pub fn fire<'a, T: std::fmt::Debug + 'a>(
        &'a self,
        call: impl Future<Output = T> + 'a,
    ) -> impl Future<Output = Option<Fired<T>>> + 'a {
        let call = Box::pin(call);
        async move {
            self.faults.arm(self.op, self.fault, self.every_attempt);
            let result = call.await;
            let failed = self.faults.disarm();
            if failed.is_empty() {
                return None;
            }
            let what = format!(
                "{:?} on operation {} ({failed:?}), every attempt: {}: {result:?}",
                self.fault, self.op, self.every_attempt
            );
            Some(Fired {
                result,
                failed,
                what,
            })
        }
    }

    /// [`Shot::fire`] for a call that answers a `Result`: a retried fault (its first
    /// attempt only) must not show, the call succeeds; a fault on every attempt may fail it.
    pub fn fire_result<'a, T: std::fmt::Debug + 'a, E: std::fmt::Debug + 'a>(
        &'a self,
        call: impl Future<Output = Result<T, E>> + 'a,
    ) -> impl Future<Output = Option<Fired<Result<T, E>>>> + 'a {
        let fired = self.fire(call);
        async move {
            let fired = fired.await?;
            if !self.every_attempt {
                assert!(
                    fired.result.is_ok(),
                    "a retried fault showed: {}",
                    fired.what
                );
            }
            Some(fired)
        }
    }
}

/// Runs `scenario` once per operation it makes, failing operation 1, then 2, ... until
/// the armed operation is past its last ([`Shot::fire`] finds nothing failed and the
/// scenario returns `false`), in every mode of [`SWEEP_MODES`]. The modes run side by
/// side, each with its own switchboard; every run is inside a [`Faults::scope`] over
/// moto at `endpoint`, so the fixtures it starts go through the faults.
pub async fn sweep<F, Fut>(name: &str, endpoint: &str, scenario: F)
where
    F: Fn(Shot) -> Fut,
    Fut: Future<Output = bool>,
{
    sweep_in(name, endpoint, &SWEEP_MODES, scenario).await
}

/// The modes a long scenario is swept in: an error on every attempt (the three errors
/// [`SWEEP_MODES`] sends all end in the same backoff), and a response lost after the
/// service applied the request, on every attempt and on the first only (the SDK's retry
/// meets its own success).
pub const LONG_SWEEP_MODES: [(Fault, bool); 3] = [
    (Fault::Throttle, true),
    (Fault::Lost, true),
    (Fault::Lost, false),
];

/// [`sweep`] in the given modes.
pub async fn sweep_in<F, Fut>(name: &str, endpoint: &str, modes: &[(Fault, bool)], scenario: F)
where
    F: Fn(Shot) -> Fut,
    Fut: Future<Output = bool>,
{
    let scenario = &scenario;
    let modes = modes
        .iter()
        .copied()
        .map(|(fault, every_attempt)| async move {
            let faults = Faults::default();
            let mut op = 1;
            loop {
                let shot = Shot {
                    faults: faults.clone(),
                    op,
                    fault,
                    every_attempt,
                };
                if !faults.scope(endpoint, scenario(shot)).await {
                    break;
                }
                op += 1;
                assert!(op < 150, "{name}: more operations than expected");
            }
            assert!(op > 1, "{name}: no operation was ever failed");
        });
    futures::future::join_all(modes).await;
}

#[derive(Debug)]
struct FaultyClient {
    inner: SharedHttpClient,
    plan: Arc<Mutex<Plan>>,
}

impl HttpClient for FaultyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            plan: self.plan.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    plan: Arc<Mutex<Plan>>,
}

/// What the request is, for the record: the JSON target or the query action or the path.
fn operation_name(request: &HttpRequest) -> String {
    let h = request.headers();
    if let Some(target) = h.get("x-amz-target") {
        // DynamoDB: the item's key too, so a test can tell which record a fault hit.
        let pk = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            .and_then(|v| {
                ["Key", "Item"]
                    .iter()
                    .find_map(|k| v[k]["pk"]["S"].as_str().map(String::from))
            });
        return match pk {
            Some(pk) => format!("{target} {pk}"),
            None => target.to_string(),
        };
    }
    let body = request
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).to_string())
        .unwrap_or_default();
    if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return action.to_string();
    }
    format!("{} {}", request.method(), request.uri())
}

/// The protocol a request speaks, for an error body its SDK can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// awsJson and restJson (DynamoDB, EventBridge, EKS, ...): code in a header and body.
    Json,
    /// awsQuery (ELBv2, CloudWatch's older protocol) and restXml (Route53).
    XmlErrorResponse,
    /// S3: `<Error>` at the root.
    S3,
}

fn protocol(request: &HttpRequest) -> Protocol {
    let h = request.headers();
    let content_type = h.get("content-type").unwrap_or_default();
    if content_type.contains("x-www-form-urlencoded") || request.uri().contains("/2013-04-01/") {
        Protocol::XmlErrorResponse
    } else if h.contains_key("x-amz-content-sha256") && !content_type.contains("json") {
        Protocol::S3
    } else {
        Protocol::Json
    }
}

fn failure(request: &HttpRequest, fault: Fault) -> Result<HttpResponse, ConnectorError> {
    let (status, code) = match fault {
        Fault::Reset => {
            return Err(ConnectorError::io(Box::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by peer (injected)",
            ))))
        }
        Fault::Lost => {
            return Err(ConnectorError::timeout(
                "the response did not arrive in time (injected)".into(),
            ))
        }
        Fault::Unavailable => (503u16, None),
        Fault::Throttle => (400, Some("Throttling")),
    };
    let protocol = protocol(request);
    let body = match (code, protocol) {
        (None, _) => String::new(),
        (Some(_), Protocol::Json) => {
            r#"{"__type":"ThrottlingException","message":"Rate exceeded (injected)"}"#.into()
        }
        (Some(code), Protocol::XmlErrorResponse) => format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>Rate exceeded (injected)</Message></Error><RequestId>injected</RequestId></ErrorResponse>"
        ),
        (Some(_), Protocol::S3) => {
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate (injected)</Message></Error>".into()
        }
    };
    let status = status
        .try_into()
        .map_err(|e| ConnectorError::other(Box::new(e), None))?;
    let mut response = HttpResponse::new(status, SdkBody::from(body));
    if code.is_some() {
        let headers = response.headers_mut();
        match protocol {
            Protocol::Json => {
                headers.insert("content-type", "application/json");
                headers.insert("x-amzn-errortype", "ThrottlingException");
            }
            _ => {
                headers.insert("content-type", "text/xml");
            }
        }
    }
    Ok(response)
}

impl FaultyConnector {
    /// Counts a Route53 `GetChange` (`GET /2013-04-01/change/<id>`) and, while changes are
    /// held pending, answers it as Route53 does for a change not yet on every name server.
    fn pending_change(
        &self,
        request: &HttpRequest,
    ) -> Option<Result<HttpResponse, ConnectorError>> {
        let uri = request.uri().to_string();
        let (_, id) = uri.split_once("/2013-04-01/change/")?;
        if request.method() != "GET" {
            return None;
        }
        let mut p = self.plan.lock().ok()?;
        p.get_changes += 1;
        if p.pending_changes == 0 {
            return None;
        }
        p.pending_changes -= 1;
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><GetChangeResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeInfo><Id>/change/{id}</Id><Status>PENDING</Status><SubmittedAt>2026-11-23T10:00:00.000Z</SubmittedAt></ChangeInfo></GetChangeResponse>"#
        );
        let mut response = HttpResponse::new(200u16.try_into().ok()?, SdkBody::from(body));
        response.headers_mut().insert("content-type", "text/xml");
        Some(Ok(response))
    }
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let id = request
            .headers()
            .get("amz-sdk-invocation-id")
            .unwrap_or_default()
            .to_string();
        let first_attempt = request
            .headers()
            .get("amz-sdk-request")
            .is_none_or(|v| v.starts_with("attempt=1;") || v == "attempt=1");
        let latency = self.plan.lock().map(|p| p.latency).unwrap_or_default();
        if let Some(pending) = self.pending_change(&request) {
            return HttpConnectorFuture::ready(pending);
        }
        let inject = self.plan.lock().ok().and_then(|mut p| {
            let next = p.operations.len() + 1;
            let op = *p.operations.entry(id).or_insert(next);
            let (target, fault, persistent) = p.armed?;
            (op == target && (persistent || first_attempt)).then(|| {
                p.injected.push(operation_name(&request));
                fault
            })
        });
        match inject {
            Some(Fault::Lost) => {
                let lost = failure(&request, Fault::Lost);
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    let _ = sent.await;
                    lost
                })
            }
            Some(fault) => HttpConnectorFuture::ready(failure(&request, fault)),
            None if !latency.is_zero() => {
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    tokio::time::sleep(latency).await;
                    sent.await
                })
            }
            None => self.inner.call(request),
        }
    }
}
