//! Kubernetes access to EKS clusters from Lambda, without kubeconfig or aws CLI.
//!
//! The endpoint and CA come from EKS `DescribeCluster`. The bearer token is the one
//! `aws eks get-token` makes: a presigned STS `GetCallerIdentity` URL whose signed headers
//! include `x-k8s-aws-id: <cluster>`, encoded `k8s-aws-v1.` + base64url without padding.
//! EKS accepts it for 15 minutes; clients are cached per cluster and rebuilt with a fresh
//! token a minute before that.
//!
//! Written here rather than taken from a crate: no maintained crate makes this token, and
//! it is one presign call with `aws-sigv4`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use base64::Engine;

use crate::error::{FleetError, Result};
use crate::place::{Place, Places};

/// How long a token is used before a new one is made: EKS accepts it for 15 minutes
/// (14 by aws-iam-authenticator's count); renew a minute before.
const TOKEN_LIFE: Duration = Duration::from_secs(13 * 60);
/// The presigned URL's own validity, as aws-iam-authenticator signs it.
const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);

/// Where a cluster's API is and how to trust it.
#[derive(Debug, Clone)]
pub struct ClusterAccess {
    /// The cluster's EKS name (the token is for it; `eks_name` in the config).
    pub name: String,
    /// The API server's URL (`https://…eks.amazonaws.com`).
    pub endpoint: String,
    /// `certificateAuthority.data` from DescribeCluster: base64 of a PEM bundle.
    pub ca_data: Option<String>,
    /// Where the cluster lives: the token is signed with that account's credentials for
    /// that region.
    pub place: Place,
}

impl ClusterAccess {
    /// The cluster's access, when EKS says it exists and is ACTIVE (`None` otherwise: a
    /// cluster that is down or still being built has no API to talk to).
    pub async fn of_active(
        eks: &aws_sdk_eks::Client,
        name: &str,
        place: &Place,
    ) -> Result<Option<Self>> {
        let described = match eks.describe_cluster().name(name).send().await {
            Ok(out) => out.cluster,
            Err(e) => {
                let e = FleetError::aws("EKS", "DescribeCluster", e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        Ok(described
            .filter(|c| c.status.as_ref().map(|s| s.as_str()) == Some("ACTIVE"))
            .map(|c| ClusterAccess {
                name: name.to_string(),
                endpoint: c.endpoint.unwrap_or_default(),
                ca_data: c.certificate_authority.and_then(|ca| ca.data),
                place: place.clone(),
            }))
    }
}

/// kube's default client retries 429, 503 and 504 itself, with backoff growing to 1000 s
/// over 15 attempts: a drain would wait inside one eviction request while its deadline
/// passes. Callers decide: the drainer retries refused evictions on its own clock and
/// forces deletes before the deadline; everything else is retried by the next tick or
/// delivery.
fn without_retry(mut config: kube::Config) -> kube::Config {
    config.default_retry = false;
    config
}

/// Builds Kubernetes clients for fleet clusters, with cached EKS tokens.
pub struct KubeConnector {
    places: Arc<Places>,
    /// `FLEET_KUBE_API_URL`, honoured only outside Lambda: every call goes there, unauthenticated.
    local_url: Option<String>,
    /// Clients by (place, EKS name, endpoint): one EKS name may be in two places, and a
    /// rebuilt cluster has a new endpoint and certificate authority.
    clients: Mutex<HashMap<ClientKey, (kube::Client, Instant)>>,
}

/// A cached client's key: the cluster's place, EKS name and API endpoint.
type ClientKey = (Place, String, String);

impl std::fmt::Debug for KubeConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeConnector")
            .field("local_url", &self.local_url)
            .finish_non_exhaustive()
    }
}

fn kube_config_error(e: impl std::fmt::Display) -> FleetError {
    FleetError::Kube {
        status: 0,
        reason: "ClientConfig".into(),
        message: e.to_string(),
    }
}

impl KubeConnector {
    /// A connector signing EKS tokens with `sdk`'s credentials for every place;
    /// `local_url` sends every cluster to one plain-HTTP API instead (the local runs' fake).
    pub fn new(sdk: &SdkConfig, local_url: Option<String>) -> Self {
        Self::with_places(Arc::new(Places::hub_only(sdk)), local_url)
    }

    /// A connector signing each cluster's token with the credentials of its place.
    pub fn with_places(places: Arc<Places>, local_url: Option<String>) -> Self {
        KubeConnector {
            places,
            local_url,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Reads `FLEET_KUBE_API_URL` (ignored in Lambda); tokens signed per place.
    pub fn from_env(places: Arc<Places>) -> Self {
        let local_url = if crate::runner::in_lambda() {
            None
        } else {
            std::env::var("FLEET_KUBE_API_URL")
                .ok()
                .filter(|v| !v.is_empty())
        };
        Self::with_places(places, local_url)
    }

    /// A client for the cluster, reusing one whose token is still fresh.
    pub async fn client(&self, access: &ClusterAccess) -> Result<kube::Client> {
        let key = (
            access.place.clone(),
            access.name.clone(),
            access.endpoint.clone(),
        );
        if let Ok(cache) = self.clients.lock() {
            if let Some((client, built)) = cache.get(&key) {
                if built.elapsed() < TOKEN_LIFE {
                    return Ok(client.clone());
                }
            }
        }
        let client = match &self.local_url {
            Some(url) => {
                let uri = url.parse().map_err(kube_config_error)?;
                kube::Client::try_from(without_retry(kube::Config::new(uri)))
                    .map_err(kube_config_error)?
            }
            None => self.eks_client(access).await?,
        };
        if let Ok(mut cache) = self.clients.lock() {
            // Real time: the client's token expires in real time, whatever `FLEET_NOW` says.
            cache.insert(key, (client.clone(), Instant::now()));
        }
        Ok(client)
    }

    async fn eks_client(&self, access: &ClusterAccess) -> Result<kube::Client> {
        let sdk = self.places.sdk(&access.place);
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| kube_config_error("no AWS credentials provider"))?
            .provide_credentials()
            .await
            .map_err(|e| {
                // The whole chain: the provider's own message names what is missing.
                let e = aws_smithy_types::error::display::DisplayErrorContext(&e);
                kube_config_error(format!("AWS credentials: {e}"))
            })?;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| kube_config_error("no AWS region"))?;
        // Real time: STS checks the presigned request's date against its own clock.
        let token = eks_token(&credentials, &region, &access.name, SystemTime::now())?;
        let uri = access.endpoint.parse().map_err(kube_config_error)?;
        let mut config = kube::Config::new(uri);
        if let Some(ca) = &access.ca_data {
            config.root_cert = Some(ca_certificates(ca)?);
        }
        config.auth_info.token = Some(token.into());
        config.read_timeout = Some(Duration::from_secs(20));
        kube::Client::try_from(without_retry(config)).map_err(kube_config_error)
    }
}

/// DER certificates from EKS's `certificateAuthority.data` (base64 of PEM).
pub fn ca_certificates(ca_data: &str) -> Result<Vec<Vec<u8>>> {
    let pem_text = base64::engine::general_purpose::STANDARD
        .decode(ca_data.trim())
        .map_err(|e| kube_config_error(format!("certificate authority is not base64: {e}")))?;
    let certs = pem::parse_many(&pem_text)
        .map_err(|e| kube_config_error(format!("certificate authority is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(kube_config_error(
            "certificate authority holds no certificate",
        ));
    }
    Ok(certs.into_iter().map(|p| p.into_contents()).collect())
}

/// The EKS bearer token for `cluster`, signed at `now`.
pub fn eks_token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String> {
    let url =
        format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| kube_config_error(format!("signing parameters: {e}")))?
        .into();
    let headers = [("x-k8s-aws-id", cluster)];
    let signable = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| kube_config_error(format!("signable request: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| kube_config_error(format!("signing: {e}")))?
        .into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(&url)
        .header("x-k8s-aws-id", cluster)
        .body(())
        .map_err(|e| kube_config_error(format!("request: {e}")))?;
    instructions.apply_to_request_http1x(&mut request);
    let presigned = request.uri().to_string();
    Ok(format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned)
    ))
}

/// Maps a kube error to the shared error: the API's status code and reason when there is
/// one. 429 and 5xx are retryable.
pub fn kube_error(e: kube::Error) -> FleetError {
    match e {
        kube::Error::Api(status) => FleetError::Kube {
            status: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        other => FleetError::Kube {
            status: 0,
            reason: "Unreachable".into(),
            message: with_causes(&other),
        },
    }
}

/// An error and its causes in one line: kube's own text for a failed connection is only
/// "client error (Connect)", the cause (a refused connection, an untrusted certificate)
/// is in its sources.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &str) -> String {
        let body = token.strip_prefix("k8s-aws-v1.").expect("prefix");
        assert!(!body.contains('='), "no padding");
        String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(body)
                .expect("base64url"),
        )
        .expect("utf8")
    }

    #[test]
    fn token_is_a_presigned_get_caller_identity_url() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let token = eks_token(&creds, "eu-west-1", "staging", at).expect("token");
        let url = decode(&token);
        assert!(
            url.starts_with("https://sts.eu-west-1.amazonaws.com/?"),
            "{url}"
        );
        for part in [
            "Action=GetCallerIdentity",
            "Version=2011-06-15",
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20261118%2Feu-west-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20261118T",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
        // The secret never appears; the same inputs sign the same way.
        assert!(!url.contains("secret"));
        assert_eq!(
            token,
            eks_token(&creds, "eu-west-1", "staging", at).expect("token")
        );
        assert_ne!(
            token,
            eks_token(&creds, "eu-west-1", "prod", at).expect("token")
        );
    }

    #[test]
    fn session_tokens_are_signed_in() {
        let creds = Credentials::new(
            "ASIAEXAMPLE",
            "secret",
            Some("session".into()),
            None,
            "test",
        );
        let url = decode(&eks_token(&creds, "us-east-1", "c", SystemTime::now()).expect("token"));
        assert!(url.contains("X-Amz-Security-Token=session"), "{url}");
    }

    #[test]
    fn ca_data_must_be_base64_pem() {
        // A syntactically valid PEM block (content need not be a real certificate here).
        let pem_text = "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n";
        let data = base64::engine::general_purpose::STANDARD.encode(pem_text);
        assert_eq!(
            ca_certificates(&data).expect("certs"),
            vec![vec![0u8, 1, 2, 3]]
        );
        assert!(ca_certificates("%%%").is_err());
        let not_pem = base64::engine::general_purpose::STANDARD.encode("hello");
        assert!(ca_certificates(&not_pem).is_err());
    }
}
