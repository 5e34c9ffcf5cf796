//! The one error type every function returns.
//!
//! Each variant names what went wrong precisely enough for a platform engineer reading a
//! CloudWatch log line to act on it. None of them ever carries a secret value: secrets are
//! only held in [`crate::config::Secret`], whose `Display` and `Debug` are redacted.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Every fallible function of the fleet returns this.
pub type Result<T, E = FleetError> = std::result::Result<T, E>;

/// What went wrong, precisely enough to act on; never a secret.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The fleet config is missing a key, has a wrong type or an invalid value.
    #[error("config key `{key}`: {message}")]
    Config {
        /// The key's path in the config (`cluster[0].blueprint.version`).
        key: String,
        /// What is wrong with it.
        message: String,
    },

    /// An event or manual invoke document that cannot be acted on.
    #[error("bad request: `{field}`: {message}")]
    BadRequest {
        /// The field's path in the event (`detail.cluster`, `action`, `(event)`).
        field: String,
        /// What is wrong with it.
        message: String,
    },

    /// A call to an AWS API failed.
    #[error("{service} {operation} failed: {code}: {message}")]
    Aws {
        /// The service (`EKS`, `DynamoDB`).
        service: &'static str,
        /// The operation (`CreateCluster`).
        operation: &'static str,
        /// The service's error code (`ResourceInUseException`), else the HTTP status.
        code: String,
        /// The service's message, else the body's text.
        message: String,
        /// What to do about it, from the code.
        kind: AwsErrorKind,
    },

    /// A Kubernetes API call failed: the API's status code (0 when it could not be
    /// reached) and reason.
    #[error("Kubernetes API: {status} {reason}: {message}")]
    Kube {
        /// The HTTP status (429, 500); 0 when the API could not be reached.
        status: u16,
        /// The `Status` object's `reason` (`TooManyRequests`, `NotFound`).
        reason: String,
        /// The `Status` object's `message`.
        message: String,
    },

    /// Reading the event or writing the response failed in the local runner.
    #[error("{0}")]
    Io(String),

    /// Something inside the function failed that no input caused: a request that could
    /// not be built, or several parts of one invocation failing.
    #[error("{0}")]
    Internal(String),

    /// The Cloudflare API answered with an error: its HTTP status and Cloudflare's own
    /// error code (five digits for DNS errors, e.g. 81053) and message.
    #[error("Cloudflare API: HTTP {status}, error {code}: {message}")]
    Cloudflare {
        /// The HTTP status.
        status: u16,
        /// Cloudflare's error code (81053: a record of that name exists).
        code: u32,
        /// Cloudflare's message.
        message: String,
    },

    /// Something the function waits for is not there yet (a load balancer still being
    /// provisioned): fail now, a retry or the next scheduled run finds it.
    #[error("not ready: {0}")]
    Pending(String),

    /// An external HTTP API (Slack, Cloudflare, Kubernetes) failed.
    #[error("{api} request failed: {message}")]
    Http {
        /// The API (`Slack`, `Pushgateway`).
        api: &'static str,
        /// What failed, without the URL (it may carry a secret).
        message: String,
        /// A timeout, a reset or a 5xx: worth trying again.
        retryable: bool,
    },
}

/// The HTTP status and body of a raw SDK response (the SDK's error type is generic over
/// it).
pub trait HttpStatus {
    /// The HTTP status, when there was a response.
    fn status_code(&self) -> Option<u16>;
    /// The body as text, when it is in memory.
    fn body_text(&self) -> Option<String> {
        None
    }
}

impl HttpStatus for aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    fn status_code(&self) -> Option<u16> {
        Some(self.status().as_u16())
    }

    fn body_text(&self) -> Option<String> {
        self.body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// Longest excerpt of an error body kept in a message, in characters.
const BODY_EXCERPT_CHARS: usize = 200;

/// The readable text of an error body that carries no AWS error code (a load balancer's
/// or a proxy's HTML page, a stand-in's 500): tags dropped, whitespace collapsed, at most
/// 200 (`BODY_EXCERPT_CHARS`) characters. `None` when nothing readable is left.
pub fn body_excerpt(body: &str) -> Option<String> {
    let mut text = String::with_capacity(body.len().min(4096));
    let mut in_tag = false;
    for ch in body.chars() {
        match ch {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if !in_tag => text.push(ch),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::new();
    for w in words {
        if out.chars().count() + w.chars().count() + 1 > BODY_EXCERPT_CHARS {
            out.push_str(" …");
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    (!out.is_empty()).then_some(out)
}

/// What the caller should do about an AWS error. Derived from the error code, so the
/// decision lives in one place instead of string matching at every call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The resource does not exist (deleting it again is done).
    NotFound,
    /// The resource exists or is busy (creating it again converges; otherwise wait).
    InUse,
    /// A conditional write lost: another invocation already did it.
    ConditionFailed,
    /// Throttling, 5xx, timeouts, connection failures: try again later.
    Retryable,
    /// Quotas, unsupported zones, invalid parameters: needs a human.
    Fatal,
}

impl FleetError {
    /// A config error at `key` (its path in the config).
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        FleetError::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A bad request at `field` (its path in the event).
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        FleetError::BadRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Converts an SDK error, keeping the service's error code and message.
    pub fn aws<E, R>(service: &'static str, operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpStatus,
    {
        // Always what AWS (or whatever answered) said: its error code, else the HTTP
        // status; its message, else the body's text, else the SDK's whole error chain.
        // Never the SDK's bare "unhandled error".
        let context = || DisplayErrorContext(&err).to_string();
        let (code, message) = match &err {
            SdkError::ServiceError(service_err) => {
                let e = service_err.err();
                let raw = service_err.raw();
                let code = match (e.code(), raw.status_code()) {
                    (Some(c), _) if !c.is_empty() => c.to_string(),
                    (_, Some(status)) => format!("HTTP {status}"),
                    _ => "Unknown".to_string(),
                };
                // A modeled error keeps its message in its own field, not the metadata;
                // the SDK's catch-all displays only "unhandled error".
                let modeled = Some(e.to_string())
                    .filter(|t| !t.is_empty() && !t.starts_with("unhandled error"));
                let message = match e.message() {
                    Some(m) if !m.is_empty() => m.to_string(),
                    _ => match (modeled, raw.body_text().as_deref().and_then(body_excerpt)) {
                        (Some(text), _) | (None, Some(text)) => text,
                        // No message, no body (a load balancer's 503): the status says it.
                        (None, None) => {
                            let reason = raw
                                .status_code()
                                .and_then(|s| http::StatusCode::from_u16(s).ok())
                                .and_then(|s| s.canonical_reason())
                                .unwrap_or("no error message");
                            format!("{reason} (empty body)")
                        }
                    },
                };
                (code, message)
            }
            SdkError::TimeoutError(_) => ("Timeout".into(), context()),
            SdkError::DispatchFailure(_) => ("DispatchFailure".into(), context()),
            SdkError::ResponseError(_) => ("ResponseError".into(), context()),
            SdkError::ConstructionFailure(_) => ("ConstructionFailure".into(), context()),
            _ => ("Unknown".into(), context()),
        };
        // A 5xx or 429 is worth retrying whatever its body says (a load balancer's 503
        // has no AWS error code at all).
        let status = match &err {
            SdkError::ServiceError(e) => e.raw().status_code(),
            _ => None,
        };
        let kind = match status {
            Some(s) if s >= 500 || s == 429 => AwsErrorKind::Retryable,
            _ => classify_aws_code(&code, &message),
        };
        FleetError::Aws {
            service,
            operation,
            code,
            message,
            kind,
        }
    }

    /// `FleetError::aws` for one operation, in the shape `map_err` takes.
    pub fn aws_call<E, R>(
        service: &'static str,
        operation: &'static str,
    ) -> impl FnOnce(SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpStatus,
    {
        move |e| FleetError::aws(service, operation, e)
    }

    /// The AWS error kind, or `None` for errors that are not AWS errors.
    pub fn aws_kind(&self) -> Option<AwsErrorKind> {
        match self {
            FleetError::Aws { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// An AWS "not found": deleting it again is done.
    pub fn is_not_found(&self) -> bool {
        self.aws_kind() == Some(AwsErrorKind::NotFound)
    }

    /// An AWS "exists or busy": creating it again converges; otherwise wait.
    pub fn is_in_use(&self) -> bool {
        self.aws_kind() == Some(AwsErrorKind::InUse)
    }

    /// A conditional write lost: another invocation did it already.
    pub fn is_condition_failed(&self) -> bool {
        self.aws_kind() == Some(AwsErrorKind::ConditionFailed)
    }

    /// IAM refused the call (`AccessDenied`, `AccessDeniedException`,
    /// `UnauthorizedOperation`): an explicit deny, such as a region the deploy left out.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, FleetError::Aws { code, .. }
            if matches!(code.as_str(), "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation"))
    }

    /// Worth trying again later without a human doing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            FleetError::Aws { kind, .. } => *kind == AwsErrorKind::Retryable,
            FleetError::Http { retryable, .. } => *retryable,
            FleetError::Cloudflare { status, .. } => *status == 429 || *status >= 500,
            FleetError::Pending(_) => true,
            FleetError::Kube { status, reason, .. } => {
                *status == 429 || *status >= 500 || reason == "Unreachable"
            }
            _ => false,
        }
    }
}

/// Maps an AWS error code to what the caller should do about it.
pub fn classify_aws_code(code: &str, message: &str) -> AwsErrorKind {
    match code {
        "ResourceNotFoundException"
        | "NotFoundException"
        | "ParameterNotFound"
        | "NoSuchHostedZone"
        | "NoSuchChange" => AwsErrorKind::NotFound,
        "ResourceInUseException" => AwsErrorKind::InUse,
        "ConditionalCheckFailedException" => AwsErrorKind::ConditionFailed,
        // A transaction cancelled only because a condition did not hold.
        "TransactionCanceledException" if message.contains("ConditionalCheckFailed") => {
            AwsErrorKind::ConditionFailed
        }
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "PriorRequestNotComplete"
        | "RequestLimitExceeded"
        | "ProvisionedThroughputExceededException"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "ServerException"
        | "InternalServerError"
        | "InternalFailure"
        | "InternalServerException"
        | "TransactionConflictException"
        | "TransactionCanceledException"
        | "Timeout"
        | "DispatchFailure"
        | "ResponseError" => AwsErrorKind::Retryable,
        // EKS says "Cluster is not in ACTIVE status" or "... is currently being
        // updated" with InvalidRequestException: the resource is busy, wait.
        "InvalidRequestException"
            if message.contains("not in ACTIVE")
                || message.contains("currently")
                || message.contains("in progress") =>
        {
            AwsErrorKind::InUse
        }
        _ => AwsErrorKind::Fatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_common_codes() {
        assert_eq!(
            classify_aws_code("ResourceNotFoundException", ""),
            AwsErrorKind::NotFound
        );
        assert_eq!(
            classify_aws_code("ThrottlingException", ""),
            AwsErrorKind::Retryable
        );
        assert_eq!(
            classify_aws_code("ResourceLimitExceededException", ""),
            AwsErrorKind::Fatal
        );
        assert_eq!(
            classify_aws_code(
                "InvalidRequestException",
                "Cluster 'a' is not in ACTIVE status"
            ),
            AwsErrorKind::InUse
        );
        assert_eq!(
            classify_aws_code(
                "TransactionCanceledException",
                "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]"
            ),
            AwsErrorKind::ConditionFailed
        );
    }

    #[test]
    fn error_bodies_without_a_code_are_read_as_text() {
        let html = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n<p>The server encountered an internal error.</p>\n";
        assert_eq!(
            body_excerpt(html).as_deref(),
            Some("500 Internal Server Error Internal Server Error The server encountered an internal error.")
        );
        assert_eq!(body_excerpt(""), None);
        assert_eq!(body_excerpt("<html><body>  </body></html>"), None);
        let long = "word ".repeat(100);
        let excerpt = body_excerpt(&long).expect("text");
        assert!(
            excerpt.chars().count() <= BODY_EXCERPT_CHARS + 2,
            "{excerpt}"
        );
        assert!(excerpt.ends_with('…'));
        // Not HTML at all: kept as it is, whitespace collapsed.
        assert_eq!(
            body_excerpt("Service Unavailable\r\n").as_deref(),
            Some("Service Unavailable")
        );
    }

    #[test]
    fn messages_name_the_key() {
        let e = FleetError::config("cluster[0].uptime", "unknown day `Mo`");
        assert_eq!(
            e.to_string(),
            "config key `cluster[0].uptime`: unknown day `Mo`"
        );
    }
}
