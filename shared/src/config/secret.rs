//! Secrets in the config: `ssm:` references, resolved at cold start into a [`Secret`]
//! whose `Debug` and `Display` never show the value.

use std::fmt;

use serde::Deserialize;

/// A secret in the config: `ssm:<parameter name>` (a SecureString, read at cold start) or,
/// for local runs only, the value itself.
#[derive(Clone, Deserialize)]
#[serde(from = "String")]
pub enum SecretRef {
    /// `ssm:/fleet/slack-webhook`: the parameter's name, without `ssm:`.
    Ssm(String),
    /// The value itself (local runs; a deployed config keeps secrets in SSM).
    Literal(Secret),
}

impl From<String> for SecretRef {
    fn from(s: String) -> Self {
        match s.strip_prefix("ssm:") {
            Some(name) => SecretRef::Ssm(name.to_string()),
            None => SecretRef::Literal(Secret(s)),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Ssm(name) => write!(f, "ssm:{name}"),
            SecretRef::Literal(_) => f.write_str("[redacted]"),
        }
    }
}

/// A secret value. It prints as `[redacted]` everywhere; only `expose` gives the value, at
/// the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from SSM (or a local config).
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value, for the one call that sends it (an `Authorization` header, a webhook
    /// URL); never for a log line or an error.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
