//! Cold start: the environment, the fleet config and its secrets, read once.

use aws_config::SdkConfig;

use crate::aws::{in_region, read_parameter, sdk_config_from_env};
use crate::config::{FleetConfig, Secret, SecretRef};
use crate::error::{FleetError, Result};

/// What every function reads before it handles its first event.
pub struct ColdStart {
    /// SDK config in the fleet's region.
    pub sdk: SdkConfig,
    /// The fleet config, parsed and checked.
    pub config: FleetConfig,
    /// The SSM client secrets are read with.
    pub ssm: aws_sdk_ssm::Client,
    /// Secrets must be `ssm:` references: in Lambda, or whenever the config itself comes
    /// from SSM (a deployed config). Literal secrets are for local files only.
    pub secrets_from_ssm_only: bool,
    /// Parameter values read by [`ColdStart::prefetch`], by name.
    prefetched: std::sync::Mutex<std::collections::HashMap<String, Secret>>,
}

/// `GetParameters` takes at most 10 names per call (SSM API reference).
const GET_PARAMETERS_MAX: usize = 10;

/// The shortest secret (webhook key, API token) accepted, in bytes: a guessable or empty
/// HMAC key would make the signature check worthless.
pub const MIN_SECRET_BYTES: usize = 32;

fn env(name: &str) -> Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| FleetError::config(name, "environment variable is not set"))
}

/// `FLEET_TABLE`, the state table's name.
pub fn table_name() -> Result<String> {
    env("FLEET_TABLE")
}

/// This fleet's name when `FLEET_STACK` is not set, outside Lambda (local runs, tests).
pub const LOCAL_STACK: &str = "infra-fleet";

/// `FLEET_STACK`: this fleet's name (the CloudFormation stack's, set by the template), the
/// value of the `fleet:managed-by` tag on every cluster it creates. Clusters tagged with
/// another fleet's name are foreign. Required in Lambda; [`LOCAL_STACK`] locally.
///
/// Errors: [`FleetError::Config`] when missing in Lambda or not a valid EKS tag value
/// (1-256 letters, digits, spaces and `_.:/=+-@`).
pub fn stack_name() -> Result<String> {
    let name = match std::env::var("FLEET_STACK") {
        Ok(v) => v,
        Err(_) if !crate::runner::in_lambda() => return Ok(LOCAL_STACK.to_string()),
        Err(_) => {
            return Err(FleetError::config(
                "FLEET_STACK",
                "missing: the template sets it to the stack name",
            ))
        }
    };
    let valid = !name.is_empty()
        && name.chars().count() <= 256
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c));
    if !valid {
        return Err(FleetError::config(
            "FLEET_STACK",
            format!(
                "`{name}` is not a valid tag value (1-256 letters, digits, spaces and _.:/=+-@)"
            ),
        ));
    }
    Ok(name)
}

/// Reads `FLEET_CONFIG` (a path, or `ssm:<parameter>`) and validates it.
pub async fn cold_start() -> Result<ColdStart> {
    let source = env("FLEET_CONFIG")?;
    let base = sdk_config_from_env().await;
    let ssm = aws_sdk_ssm::Client::new(&base);
    let text = match source.strip_prefix("ssm:") {
        Some(name) => read_parameter(&ssm, name).await.map_err(|e| {
            FleetError::config("FLEET_CONFIG", format!("cannot read {source}: {e}"))
        })?,
        None => std::fs::read_to_string(&source).map_err(|e| {
            FleetError::config("FLEET_CONFIG", format!("cannot read {source}: {e}"))
        })?,
    };
    let config = FleetConfig::parse(&text)?;
    let sdk = in_region(&base, &config.fleet.region);
    let secrets_from_ssm_only = crate::runner::in_lambda() || source.starts_with("ssm:");
    Ok(ColdStart::new(sdk, config, ssm, secrets_from_ssm_only))
}

impl ColdStart {
    /// A cold start from parts already read (what [`cold_start`] does after reading
    /// `FLEET_CONFIG`); nothing prefetched yet.
    pub fn new(
        sdk: SdkConfig,
        config: FleetConfig,
        ssm: aws_sdk_ssm::Client,
        secrets_from_ssm_only: bool,
    ) -> ColdStart {
        ColdStart {
            sdk,
            config,
            ssm,
            secrets_from_ssm_only,
            prefetched: Default::default(),
        }
    }

    /// The Slack notifier, with the webhook from `fleet.slack_webhook` (disabled without).
    /// A webhook in SSM that [`ColdStart::prefetch`] did not read already is read when
    /// the first message is sent ([`crate::notify::Notifier::from_ssm`]): one SSM round
    /// trip less at cold start for the functions that post only sometimes, and a missing
    /// parameter costs the notifications (each failure logged, naming the key), not the
    /// work. A webhook written in the config is checked now.
    pub async fn notifier(&self) -> Result<crate::notify::Notifier> {
        const KEY: &str = "fleet.slack_webhook";
        match &self.config.fleet.slack_webhook {
            None => Ok(crate::notify::Notifier::disabled()),
            Some(r @ SecretRef::Ssm(name)) if self.cached(r).is_none() => Ok(
                crate::notify::Notifier::from_ssm(self.ssm.clone(), KEY, name.clone()),
            ),
            Some(r) => Ok(crate::notify::Notifier::new(Some(
                self.secret(KEY, r).await?,
            ))),
        }
    }

    /// Reads every `ssm:` parameter of `refs` in one `GetParameters` round trip (per 10
    /// names) instead of one `GetParameter` each, so that the secrets a function needs at
    /// cold start cost one round trip, not one per secret. Best effort: a name that
    /// call cannot read (missing, denied, throttled) is left to [`ColdStart::secret`],
    /// whose own `GetParameter` then names the problem. Names with a `:` (a version or
    /// label selector, `/x:3`, or an ARN) are left to it too: `GetParameters` answers
    /// them under the bare name, which would mix `/x` and `/x:3` in the cache.
    pub async fn prefetch<'a>(&self, refs: impl IntoIterator<Item = Option<&'a SecretRef>>) {
        let mut names: Vec<String> = refs
            .into_iter()
            .flatten()
            .filter_map(|r| match r {
                SecretRef::Ssm(name) if !name.contains(':') => Some(name.clone()),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        for chunk in names.chunks(GET_PARAMETERS_MAX) {
            let out = self
                .ssm
                .get_parameters()
                .set_names(Some(chunk.to_vec()))
                .with_decryption(true)
                .send()
                .await;
            let Ok(out) = out else {
                tracing::debug!("GetParameters failed; each secret is read on its own");
                continue;
            };
            if let Ok(mut cache) = self.prefetched.lock() {
                for p in out.parameters() {
                    if let (Some(name), Some(value)) = (p.name(), p.value()) {
                        cache.insert(name.to_string(), Secret::new(value.to_string()));
                    }
                }
            }
        }
    }

    fn cached(&self, secret: &SecretRef) -> Option<Secret> {
        let SecretRef::Ssm(name) = secret else {
            return None;
        };
        self.prefetched.lock().ok()?.get(name).cloned()
    }

    /// The secret `key` of the config names, checked: see [`resolve_secret`].
    pub async fn secret(&self, key: &str, secret: &SecretRef) -> Result<Secret> {
        if let (Some(value), SecretRef::Ssm(name)) = (self.cached(secret), secret) {
            return check_length(key, value, &format!("ssm:{name}"), MIN_SECRET_BYTES);
        }
        resolve_secret(
            &self.ssm,
            key,
            secret,
            self.secrets_from_ssm_only,
            MIN_SECRET_BYTES,
        )
        .await
    }

    /// Every place's SDK config ([`crate::place::Places`]): the hub's, and each
    /// `[[account]]`'s role for `function`, with its external id read now (`ssm:`). The session
    /// name is this fleet's ([`stack_name`]), so that the spoke's CloudTrail says which
    /// fleet acted.
    ///
    /// An external id that cannot be read fails only its account: every call there
    /// fails with the error (naming `account[i].external_id`), the other accounts work.
    ///
    /// Errors: [`stack_name`]'s.
    pub async fn places(
        &self,
        function: crate::place::SpokeRole,
    ) -> Result<std::sync::Arc<crate::place::Places>> {
        let mut external_ids = std::collections::HashMap::new();
        let mut unreadable = Vec::new();
        for (i, a) in self.config.accounts.iter().enumerate() {
            if let Some(id) = &a.external_id {
                let key = format!("account[{i}].external_id");
                match self.maybe_secret(&key, id).await {
                    Ok(value) => {
                        external_ids.insert(a.name.clone(), value);
                    }
                    Err(e) => {
                        tracing::error!(account = %a.name, error = %e, "the spoke's external id cannot be read: its clusters fail until it can");
                        unreadable.push((a.name.clone(), e.to_string()));
                    }
                }
            }
        }
        let session = stack_name()?;
        let mut places =
            crate::place::Places::new(&self.sdk, &self.config, &external_ids, &session, function)
                .await;
        for (account, why) in unreadable {
            places.refuse(&account, why);
        }
        Ok(std::sync::Arc::new(places))
    }

    /// A value of the config that may be kept in SSM (`ssm:`) because it can carry
    /// credentials (a Pushgateway URL with a password), without the secrets' minimum length.
    pub async fn maybe_secret(&self, key: &str, value: &SecretRef) -> Result<Secret> {
        if let (Some(v), SecretRef::Ssm(name)) = (self.cached(value), value) {
            return check_length(key, v, &format!("ssm:{name}"), 1);
        }
        resolve_secret(&self.ssm, key, value, false, 1).await
    }
}

/// Resolves a secret reference from the config; `key` names it in errors, which never
/// carry the value.
///
/// Errors: [`FleetError::Config`] when `ssm_only` and the value is written in the config
/// (not `ssm:`), when the parameter cannot be read, or when the value is shorter than
/// `min_bytes` (empty included).
pub async fn resolve_secret(
    ssm: &aws_sdk_ssm::Client,
    key: &str,
    secret: &SecretRef,
    ssm_only: bool,
    min_bytes: usize,
) -> Result<Secret> {
    let (value, source) = match secret {
        SecretRef::Literal(_) if ssm_only => {
            return Err(FleetError::config(
                key,
                "must be an ssm: reference (a secret written in a deployed config is readable by everyone who can read the config)",
            ))
        }
        SecretRef::Literal(s) => (s.clone(), "the value in the config".to_string()),
        SecretRef::Ssm(name) => {
            let value = read_parameter(ssm, name)
                .await
                .map(Secret::new)
                .map_err(|e| FleetError::config(key, format!("cannot read ssm:{name}: {e}")))?;
            (value, format!("ssm:{name}"))
        }
    };
    check_length(key, value, &source, min_bytes)
}

/// `value` when it has at least `min_bytes` (trimmed); else a config error naming `key`
/// and where the value came from, never the value.
fn check_length(key: &str, value: Secret, source: &str, min_bytes: usize) -> Result<Secret> {
    let len = value.expose().trim().len();
    if len < min_bytes {
        return Err(FleetError::config(
            key,
            format!("{source} is {len} bytes; at least {min_bytes} are needed"),
        ));
    }
    Ok(value)
}
