//! AWS clients per place (account and region): the hub's credentials for the hub's own
//! account, credentials of the spoke role for a spoke account (`[[account]]`), each in
//! the region a cluster or network lives in.
//!
//! A spoke's credentials come from the SDK's own `AssumeRoleProvider`, one per account,
//! shared by every region and client of that account and cached here until five minutes
//! before they expire: one `AssumeRole` per account per cold start, plus a refresh every
//! hour (the role's default session). A role that cannot be assumed fails only the calls
//! made with it: each cluster's own, as its error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::{
    error::CredentialsError, future, ProvideCredentials, SharedCredentialsProvider,
};
use aws_credential_types::Credentials;

pub use crate::config::Place;
use crate::config::{FleetConfig, Secret};

/// Every place's clients give a request this long to connect, an attempt this long and an
/// operation (its retries included) this long: a region that stops answering costs each
/// cluster there at most that, not the invocation's whole budget, and the other places go
/// on meanwhile (each has its own slots). EKS and EC2 answer in well under a second;
/// CreateCluster in a few.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// See [`CONNECT_TIMEOUT`].
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// See [`CONNECT_TIMEOUT`].
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(25);

/// Credentials are renewed this long before they expire: longer than an EKS token made
/// from them is used ([`crate::kube`]'s 13 minutes), so that no token outlives the
/// session it was signed with.
const REFRESH_BEFORE: Duration = Duration::from_secs(15 * 60);
/// A refused `AssumeRole` (access denied: a missing role, a trust that does not name the
/// hub, a wrong external id) is answered from memory this long: a spoke whose role is
/// missing would otherwise cost an STS call for every request of every cluster there.
/// Throttling and timeouts are not kept: the next request asks again.
const FAILURE_KEPT: Duration = Duration::from_secs(60);
/// How long one `AssumeRole` may take: STS answers in milliseconds; a hanging call must
/// not hold every region of the account until the invocation's deadline.
const ASSUME_TIMEOUT: Duration = Duration::from_secs(10);

/// One spoke account's credentials: the SDK's assume-role provider, cached.
///
/// Written here rather than left to the SDK's identity cache: that cache is reachable
/// only from inside a client's request pipeline, and the EKS token signer
/// ([`crate::kube`]) needs the same credentials outside one.
#[derive(Debug)]
struct CachedAssumeRole {
    /// The SDK's `AssumeRoleProvider` (any provider in the tests).
    role: SharedCredentialsProvider,
    /// The last credentials, or the last refusal (when, and why); the lock also makes
    /// concurrent callers share one refresh.
    cached: tokio::sync::Mutex<Option<Result<Credentials, (std::time::Instant, String)>>>,
    /// `AssumeRole` calls made (the benchmark counts them).
    calls: std::sync::atomic::AtomicU64,
}

impl CachedAssumeRole {
    async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        let mut cached = self.cached.lock().await;
        // Real time: STS dates the credentials' expiry by the wall clock.
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE)
        };
        match cached.as_ref() {
            Some(Ok(c)) if fresh(c) => return Ok(c.clone()),
            // Real time too: how long ago STS said no.
            Some(Err((at, why))) if at.elapsed() < FAILURE_KEPT => {
                return Err(CredentialsError::provider_error(why.clone()))
            }
            _ => {}
        }
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let asked = tokio::time::timeout(ASSUME_TIMEOUT, self.role.provide_credentials()).await;
        let result =
            asked.unwrap_or_else(|_| Err(CredentialsError::provider_timed_out(ASSUME_TIMEOUT)));
        match result {
            Ok(c) => {
                *cached = Some(Ok(c.clone()));
                Ok(c)
            }
            Err(e) => {
                // Credentials still valid (inside the renewal margin) serve until they
                // expire: a failed renewal is not yet a failure.
                if let Some(Ok(c)) = cached.as_ref() {
                    if c.expiry().is_none_or(|x| x > SystemTime::now()) {
                        return Ok(c.clone());
                    }
                }
                // The whole chain: STS's own message says which role and why.
                let why = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
                if is_denial(&why) {
                    *cached = Some(Err((std::time::Instant::now(), why)));
                }
                Err(e)
            }
        }
    }
}

/// Whether STS's answer is a refusal that asking again will not change (AccessDenied, an
/// unknown or expired caller), as opposed to throttling or a timeout.
fn is_denial(why: &str) -> bool {
    [
        "AccessDenied",
        "not authorized",
        "InvalidClientTokenId",
        "ExpiredToken",
    ]
    .iter()
    .any(|w| why.contains(w))
}

/// The SDK config of every place the fleet reaches.
#[derive(Debug, Clone)]
pub struct Places {
    /// The hub's config: its credentials, its region.
    hub: SdkConfig,
    /// Per spoke account (`[[account]].name`): its cached assume-role credentials.
    spokes: HashMap<String, (SharedCredentialsProvider, Arc<CachedAssumeRole>)>,
}

impl Places {
    /// Only the hub: every place is reached with `hub`'s credentials (a fleet without
    /// `[[account]]`, and the tests that need no spoke).
    pub fn hub_only(hub: &SdkConfig) -> Self {
        Places {
            hub: hub.clone(),
            spokes: HashMap::new(),
        }
    }

    /// The hub (`hub`: its credentials, its region) and every `[[account]]` of `config`,
    /// reached as `function` ([`SpokeRole`]: the role `<role_arn>-<function>` that
    /// `infra/spoke.yaml` made for it), assumed with `hub`'s credentials under the session
    /// name `session` (CloudTrail shows it in the spoke), with the account's external id
    /// from `external_ids` (by account name). No STS call is made here: the first
    /// request into an account makes it.
    pub async fn new(
        hub: &SdkConfig,
        config: &FleetConfig,
        external_ids: &HashMap<String, Secret>,
        session: &str,
        function: SpokeRole,
    ) -> Self {
        // The assume-role provider needs a time source (it panics without one): the
        // SDK's loader sets it, a hand-built config (moto's, local tools') may not.
        let hub = &match hub.time_source() {
            Some(_) => hub.clone(),
            None => hub
                .to_builder()
                .time_source(aws_types::sdk_config::SharedTimeSource::default())
                .build(),
        };
        let mut spokes = HashMap::new();
        for a in &config.accounts {
            let mut builder = AssumeRoleProvider::builder(function.role_arn(&a.role_arn))
                .session_name(session_name(session))
                .configure(hub);
            if let Some(id) = external_ids.get(&a.name) {
                builder = builder.external_id(id.expose());
            }
            let cached = Arc::new(CachedAssumeRole {
                role: SharedCredentialsProvider::new(builder.build().await),
                cached: Default::default(),
                calls: Default::default(),
            });
            let shared = SharedCredentialsProvider::new(SharedCached(cached.clone()));
            spokes.insert(a.name.clone(), (shared, cached));
        }
        Places {
            hub: hub.clone(),
            spokes,
        }
    }

    /// The hub's own config (state table, bus, SSM, Slack).
    pub fn hub(&self) -> &SdkConfig {
        &self.hub
    }

    /// The config for `place`: its account's credentials, its region. An account the
    /// config does not name (a network recorded in a spoke since removed) gets
    /// credentials that fail every call, naming it: never the hub's.
    pub fn sdk(&self, place: &Place) -> SdkConfig {
        let builder = self
            .hub
            .to_builder()
            .region(Region::new(place.region.clone()))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        match &place.account {
            None => builder.build(),
            Some(account) => {
                let credentials = match self.spokes.get(account) {
                    Some((credentials, _)) => credentials.clone(),
                    None => SharedCredentialsProvider::new(Unconfigured(account.clone())),
                };
                builder.credentials_provider(credentials).build()
            }
        }
    }

    /// Makes every call into `account` fail with `why` (its external id could not be
    /// read at cold start, say): that account's clusters fail and report it, the others
    /// go on.
    pub fn refuse(&mut self, account: &str, why: String) {
        let refusing = SharedCredentialsProvider::new(Refused(why));
        if let Some(entry) = self.spokes.get_mut(account) {
            entry.0 = refusing;
        }
    }

    /// `AssumeRole` calls made so far into `account` (`[[account]].name`), failed
    /// ones included.
    pub fn assume_role_calls(&self, account: &str) -> u64 {
        self.spokes.get(account).map_or(0, |(_, c)| {
            c.calls.load(std::sync::atomic::Ordering::Relaxed)
        })
    }
}

/// `Arc<CachedAssumeRole>` as a provider (the SDK's shared provider takes ownership).
#[derive(Debug)]
struct SharedCached(Arc<CachedAssumeRole>);

impl ProvideCredentials for SharedCached {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.0.credentials())
    }
}

/// Which function's role a spoke gives: each hub function assumes its own, allowed only
/// what the function's hub role is allowed (`infra/spoke.yaml`), so that the drainer's
/// credentials cannot delete a cluster in a spoke any more than in the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpokeRole {
    /// `<role_arn>-scheduler`: the cluster-scheduler.
    Scheduler,
    /// `<role_arn>-drainer`: the spot-drainer.
    Drainer,
    /// `<role_arn>-dns`: the dns-updater.
    Dns,
    /// `<role_arn>-cost`: the cost-reporter (read only: the bill, leftovers).
    Cost,
}

impl SpokeRole {
    /// The suffix the spoke stack gives this function's role name.
    pub fn suffix(self) -> &'static str {
        match self {
            SpokeRole::Scheduler => "-scheduler",
            SpokeRole::Drainer => "-drainer",
            SpokeRole::Dns => "-dns",
            SpokeRole::Cost => "-cost",
        }
    }

    /// The role this function assumes in an account whose `[[account]].role_arn` is
    /// `account_role`.
    pub fn role_arn(self, account_role: &str) -> String {
        format!("{account_role}{}", self.suffix())
    }
}

/// The longest role name `[[account]].role_arn` may have: IAM role names have at most 64
/// characters, and the longest suffix is `-scheduler`.
pub const ACCOUNT_ROLE_NAME_MAX: usize = 64 - "-scheduler".len();

/// The credentials of an account the cold start could not prepare: an error saying why.
#[derive(Debug)]
struct Refused(String);

impl ProvideCredentials for Refused {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(self.0.clone())))
    }
}

/// The credentials of an account no `[[account]]` names: an error.
#[derive(Debug)]
struct Unconfigured(String);

impl ProvideCredentials for Unconfigured {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(format!(
            "account `{}` is not configured ([[account]])",
            self.0
        ))))
    }
}

/// A role session name STS accepts (`[\w+=,.@-]`, 2-64 characters) from `name`.
fn session_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if cleaned.len() < 2 {
        "infra-fleet".into()
    } else {
        cleaned
    }
}

/// Clients of one kind per place, built on first use and kept for the cold start.
pub struct PerPlace<T> {
    places: Arc<Places>,
    build: Box<dyn Fn(&SdkConfig) -> T + Send + Sync>,
    built: Mutex<HashMap<Place, Arc<T>>>,
}

impl<T> std::fmt::Debug for PerPlace<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerPlace").finish_non_exhaustive()
    }
}

impl<T> PerPlace<T> {
    /// Clients made by `build` from each place's config.
    pub fn new(
        places: Arc<Places>,
        build: impl Fn(&SdkConfig) -> T + Send + Sync + 'static,
    ) -> Self {
        PerPlace {
            places,
            build: Box::new(build),
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The clients for `place`.
    pub fn at(&self, place: &Place) -> Arc<T> {
        let mut built = match self.built.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        built
            .entry(place.clone())
            .or_insert_with(|| Arc::new((self.build)(&self.places.sdk(place))))
            .clone()
    }

    /// The places' configs these clients come from.
    pub fn places(&self) -> &Arc<Places> {
        &self.places
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its calls; its credentials expire `life` after each call.
    #[derive(Debug)]
    struct Counting {
        calls: std::sync::atomic::AtomicU64,
        life: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                Some("token".into()),
                Some(SystemTime::now() + self.life),
                "test",
            )))
        }
    }

    fn cached(life: Duration) -> (Arc<Counting>, CachedAssumeRole) {
        let inner = Arc::new(Counting {
            calls: Default::default(),
            life,
        });
        #[derive(Debug)]
        struct Shared(Arc<Counting>);
        impl ProvideCredentials for Shared {
            fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                self.0.provide_credentials()
            }
        }
        let c = CachedAssumeRole {
            role: SharedCredentialsProvider::new(Shared(inner.clone())),
            cached: Default::default(),
            calls: Default::default(),
        };
        (inner, c)
    }

    #[tokio::test]
    async fn credentials_are_assumed_once_and_renewed_before_they_expire() {
        let (inner, c) = cached(Duration::from_secs(3600));
        for _ in 0..5 {
            c.credentials().await.expect("credentials");
        }
        assert_eq!(inner.calls.load(std::sync::atomic::Ordering::Relaxed), 1);
        // Four minutes left: inside the five-minute margin, so renewed every time.
        let (inner, c) = cached(Duration::from_secs(240));
        for _ in 0..3 {
            c.credentials().await.expect("credentials");
        }
        assert_eq!(inner.calls.load(std::sync::atomic::Ordering::Relaxed), 3);
        assert_eq!(c.calls.load(std::sync::atomic::Ordering::Relaxed), 3);
    }

    #[derive(Debug, Default)]
    struct Refusing(std::sync::atomic::AtomicU64);

    impl ProvideCredentials for Refusing {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            future::ProvideCredentials::ready(Err(CredentialsError::provider_error(
                "AccessDenied: not authorized to perform sts:AssumeRole",
            )))
        }
    }

    #[tokio::test]
    async fn a_refused_role_is_asked_again_only_after_a_minute() {
        let c = CachedAssumeRole {
            role: SharedCredentialsProvider::new(Refusing::default()),
            cached: Default::default(),
            calls: Default::default(),
        };
        for _ in 0..4 {
            let e = c.credentials().await.expect_err("refused");
            assert!(is_denial(
                &aws_smithy_types::error::display::DisplayErrorContext(&e).to_string()
            ));
            assert!(
                aws_smithy_types::error::display::DisplayErrorContext(&e)
                    .to_string()
                    .contains("sts:AssumeRole"),
                "the refusal says why: {e:?}"
            );
        }
        assert_eq!(c.calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn an_unconfigured_account_fails_its_calls_and_never_gets_the_hubs_credentials() {
        let hub = crate::aws::emulator_config("http://127.0.0.1:9", "eu-west-1");
        let places = Places::hub_only(&hub);
        let spoke = places.sdk(&Place {
            account: Some("gone".into()),
            region: "us-east-1".into(),
        });
        let err = spoke
            .credentials_provider()
            .expect("a provider")
            .provide_credentials()
            .await
            .expect_err("no credentials");
        assert!(
            format!("{err:?}").contains("account `gone` is not configured"),
            "{err:?}"
        );
        let hub_place = places.sdk(&Place::hub("us-east-1"));
        assert!(hub_place
            .credentials_provider()
            .expect("a provider")
            .provide_credentials()
            .await
            .is_ok());
        assert_eq!(
            hub_place.region().map(|r| r.to_string()).as_deref(),
            Some("us-east-1")
        );
    }

    #[test]
    fn session_names_are_what_sts_accepts() {
        assert_eq!(session_name("infra-fleet"), "infra-fleet");
        assert_eq!(session_name("my fleet/prod"), "my-fleet-prod");
        assert_eq!(session_name("x"), "infra-fleet");
        assert_eq!(session_name(&"a".repeat(80)).len(), 64);
    }
}
