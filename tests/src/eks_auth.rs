//! What an EKS cluster's API server does before it reads a request, for the fake
//! Kubernetes API's EKS mode ([`crate::fakes::kube::FakeKube::start_eks`]): it serves HTTPS
//! with a certificate from its own CA, and accepts only a bearer token that
//! aws-iam-authenticator would accept (`pkg/token/token.go`, `Verify`):
//!
//! - `k8s-aws-v1.` then base64url without padding (at most 4 KiB in all) of a presigned
//!   URL: scheme `https`, host an STS endpoint (`sts.amazonaws.com`, or
//!   `sts[-fips].<region>.amazonaws.com` or `.api.aws`, no port), path `/`;
//! - its query holds only the presigning parameters, each once whatever its case, with
//!   `Action=GetCallerIdentity`, `x-k8s-aws-id` among `X-Amz-SignedHeaders`,
//!   `X-Amz-Expires` from 0 to 900, and `X-Amz-Date` no older than 15 minutes;
//! - the signature must be the one the caller's secret makes with `x-k8s-aws-id` set to
//!   this cluster's name. Real STS checks that; moto does not, so the fake does it, with
//!   the secrets of the keys it was given (the account's keys, as STS knows them). A
//!   token made for another cluster fails here, as it fails at STS;
//! - then, as the authenticator does, it GETs the presigned URL with the header
//!   `x-k8s-aws-id: <cluster>`, sent to moto instead of the real STS host, and takes the
//!   caller's ARN from the GetCallerIdentity answer (JSON, as STS answers
//!   `Accept: application/json`, or moto's XML).
//!
//! Anything else is a 401 with a Status body, as the API server answers. Tokens that
//! passed are trusted for two minutes (the API server's token cache) or until they
//! expire, whichever is sooner.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use reqwest::Url;

const PREFIX: &str = "k8s-aws-v1.";
const MAX_TOKEN_LEN: usize = 4 * 1024;
const CLUSTER_HEADER: &str = "x-k8s-aws-id";
/// A presigned GetCallerIdentity is good for 15 minutes after its date, whatever
/// `X-Amz-Expires` says.
const TOKEN_VALIDITY: Duration = Duration::from_secs(15 * 60);
/// How long the API server trusts a token it verified (kube-apiserver's default cache TTL
/// for webhook token authentication).
const CACHE_TTL: Duration = Duration::from_secs(120);
const ALLOWED_PARAMETERS: &[&str] = &[
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
];

/// The parts of a well-formed token the later checks need.
#[derive(Debug)]
pub struct PresignedCall {
    pub url: Url,
    /// The query's parameters, names lowercased.
    pub params: HashMap<String, String>,
    pub date: SystemTime,
}

/// Checks a token's form as aws-iam-authenticator does, at `now`, without calling STS.
pub fn parse_token(token: &str, now: SystemTime) -> Result<PresignedCall, String> {
    if token.len() > MAX_TOKEN_LEN {
        return Err("token is too large".into());
    }
    let body = token
        .strip_prefix(PREFIX)
        .ok_or_else(|| format!("token is missing the {PREFIX:?} prefix"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|e| format!("token is not base64url: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "token is not a URL".to_string())?;
    let url = Url::parse(&text).map_err(|e| format!("token is not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "unexpected scheme {:?} in pre-signed URL",
            url.scheme()
        ));
    }
    let host = url.host_str().unwrap_or_default();
    if url.port().is_some() || !is_sts_host(host) {
        return Err(format!(
            "unexpected hostname {:?} in pre-signed URL",
            url.authority()
        ));
    }
    if url.path() != "/" {
        return Err("unexpected path in pre-signed URL".into());
    }
    let mut params = HashMap::new();
    for (key, value) in url.query_pairs() {
        let lower = key.to_ascii_lowercase();
        if !ALLOWED_PARAMETERS.contains(&lower.as_str()) {
            return Err(format!("non-whitelisted query parameter {key:?}"));
        }
        if params.insert(lower, value.into_owned()).is_some() {
            return Err(format!("duplicate query parameter found: {key:?}"));
        }
    }
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    if param("action") != "GetCallerIdentity" {
        return Err("unexpected action parameter in pre-signed URL".into());
    }
    if !param("x-amz-signedheaders")
        .split(';')
        .any(|h| h.eq_ignore_ascii_case(CLUSTER_HEADER))
    {
        return Err(format!(
            "client did not sign the {CLUSTER_HEADER} header in the pre-signed URL"
        ));
    }
    match param("x-amz-expires").parse::<i64>() {
        Ok(seconds) if (0..=900).contains(&seconds) => {}
        _ => {
            return Err(format!(
                "invalid X-Amz-Expires parameter in pre-signed URL: {:?}",
                param("x-amz-expires")
            ))
        }
    }
    let date = param("x-amz-date");
    if date.is_empty() {
        return Err("X-Amz-Date parameter must be present in pre-signed URL".into());
    }
    let date = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", date)
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| SystemTime::from(z.timestamp()))
        .map_err(|e| format!("error parsing X-Amz-Date parameter {date:?}: {e}"))?;
    if now > date + TOKEN_VALIDITY {
        return Err(format!(
            "X-Amz-Date parameter is expired (15 minute expiration) {}",
            param("x-amz-date")
        ));
    }
    Ok(PresignedCall { url, params, date })
}

/// STS's own host names: the global one and each region's, FIPS and dual-stack included.
fn is_sts_host(host: &str) -> bool {
    if host == "sts.amazonaws.com" {
        return true;
    }
    let region_then = |rest: &str, domain: &str| {
        rest.strip_suffix(domain).is_some_and(|region| {
            !region.is_empty()
                && !region.starts_with('-')
                && !region.ends_with('-')
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
    };
    ["sts.", "sts-fips."].iter().any(|service| {
        host.strip_prefix(service).is_some_and(|rest| {
            region_then(rest, ".amazonaws.com") || region_then(rest, ".api.aws")
        })
    })
}

/// Checks the presigned call's SigV4 signature as STS would, with `x-k8s-aws-id` set to
/// `cluster` and the secret of the access key it names.
pub fn check_signature(
    call: &PresignedCall,
    cluster: &str,
    secrets: &HashMap<String, String>,
) -> Result<(), String> {
    let param = |name: &str| call.params.get(name).cloned().unwrap_or_default();
    let credential = param("x-amz-credential");
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, _day, region, service, "aws4_request"] = scope[..] else {
        return Err(format!("malformed X-Amz-Credential {credential:?}"));
    };
    if service != "sts" {
        return Err(format!("credential is scoped to {service:?}, not sts"));
    }
    let secret = secrets
        .get(access_key)
        .ok_or("InvalidClientTokenId: the security token included in the request is invalid")?;
    let session = call.params.get("x-amz-security-token").cloned();
    let identity = Credentials::new(access_key, secret, session, None, "fake-sts").into();
    // The request as it was before signing: everything but the signature's own parameters.
    let mut unsigned = call.url.clone();
    let kept: Vec<(String, String)> = call
        .url
        .query_pairs()
        .filter(|(k, _)| !k.to_ascii_lowercase().starts_with("x-amz-"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    unsigned.query_pairs_mut().clear().extend_pairs(kept);
    let expires = param("x-amz-expires").parse().unwrap_or(0);
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(call.date)
        .settings(settings)
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let headers = [(CLUSTER_HEADER, cluster)];
    let signable = SignableRequest::new(
        "GET",
        unsigned.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| format!("signable request: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("signing: {e}"))?
        .into_parts();
    let expected: HashSet<(String, String)> = instructions
        .params()
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    let given: HashSet<(String, String)> = call
        .params
        .iter()
        .filter(|(k, _)| k.starts_with("x-amz-"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if expected != given {
        return Err(format!(
            "SignatureDoesNotMatch: the signature is not the one {access_key}'s secret makes for cluster {cluster:?}"
        ));
    }
    Ok(())
}

/// The caller's ARN from a GetCallerIdentity answer, JSON or XML.
pub fn caller_arn(body: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(body) {
        return json["GetCallerIdentityResponse"]["GetCallerIdentityResult"]["Arn"]
            .as_str()
            .map(str::to_string);
    }
    xml_text(body, "Arn")
}

/// The text of the first `<tag>` in an AWS Query-protocol XML answer.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].to_string())
}

/// A new IAM user `name` in moto with an access key: credentials that STS (moto) answers
/// GetCallerIdentity for with the user's own ARN, `arn:aws:iam::<account>:user/<name>`.
/// Spoken in IAM's Query protocol directly (moto checks no signature; the header only
/// names the service), so the tests need no IAM client.
pub async fn moto_iam_user(endpoint: &str, name: &str) -> (Credentials, String) {
    let http = reqwest::Client::new();
    let call = |action: &str| {
        let form = Url::parse_with_params(
            "http://form/",
            [
                ("Action", action),
                ("Version", "2010-05-08"),
                ("UserName", name),
            ],
        )
        .expect("form");
        http.post(endpoint)
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=ANOTREAL/20260101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.query().unwrap_or_default().to_string())
            .send()
    };
    let user = call("CreateUser").await.expect("moto answers");
    assert_eq!(user.status(), 200, "CreateUser {name}");
    let user = user.text().await.expect("CreateUser answer");
    let arn = xml_text(&user, "Arn").expect("the user's ARN");
    let key = call("CreateAccessKey")
        .await
        .expect("moto answers")
        .text()
        .await
        .expect("CreateAccessKey answer");
    let id = xml_text(&key, "AccessKeyId").expect("access key id");
    let secret = xml_text(&key, "SecretAccessKey").expect("secret");
    (
        Credentials::new(id, secret, None, None, "moto-iam-user"),
        arn,
    )
}

#[derive(Default)]
struct Seen {
    /// token -> (caller ARN, trusted until)
    cache: HashMap<String, (String, SystemTime)>,
    arns: Vec<String>,
    rejections: Vec<String>,
}

/// The fake API server's authenticator: one cluster, one STS (moto) to ask.
pub struct EksAuthenticator {
    cluster: String,
    sts_endpoint: String,
    secrets: HashMap<String, String>,
    http: reqwest::Client,
    seen: Mutex<Seen>,
}

impl EksAuthenticator {
    /// `credentials`: the keys STS knows (their secrets check signatures).
    pub fn new(cluster: &str, sts_endpoint: &str, credentials: &[Credentials]) -> Self {
        EksAuthenticator {
            cluster: cluster.to_string(),
            sts_endpoint: sts_endpoint.trim_end_matches('/').to_string(),
            secrets: credentials
                .iter()
                .map(|c| {
                    (
                        c.access_key_id().to_string(),
                        c.secret_access_key().to_string(),
                    )
                })
                .collect(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            seen: Mutex::new(Seen::default()),
        }
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    fn seen<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        f(&mut self.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The caller's ARN, or why the token is refused (the refusal is recorded too).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<String, String> {
        let result = self.verify(authorization).await;
        if let Err(reason) = &result {
            self.seen(|s| s.rejections.push(reason.clone()));
        }
        result
    }

    async fn verify(&self, authorization: Option<&str>) -> Result<String, String> {
        let token = authorization
            .ok_or("no Authorization header")?
            .strip_prefix("Bearer ")
            .ok_or("the Authorization header holds no bearer token")?
            .trim();
        let now = SystemTime::now();
        let cached = self.seen(|s| {
            s.cache
                .get(token)
                .filter(|(_, until)| now < *until)
                .map(|(arn, _)| arn.clone())
        });
        if let Some(arn) = cached {
            return Ok(arn);
        }
        let call = parse_token(token, now)?;
        check_signature(&call, &self.cluster, &self.secrets)?;
        let url = format!(
            "{}/?{}",
            self.sts_endpoint,
            call.url.query().unwrap_or_default()
        );
        let response = self
            .http
            .get(url)
            .header(CLUSTER_HEADER, &self.cluster)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("error during GET: {e}"))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if status != 200 {
            return Err(format!(
                "error from AWS (expected 200, got {status}). Body: {body}"
            ));
        }
        let arn = caller_arn(&body).ok_or_else(|| format!("no Arn in STS answer: {body}"))?;
        let until = (now + CACHE_TTL).min(call.date + TOKEN_VALIDITY);
        self.seen(|s| {
            s.cache.insert(token.to_string(), (arn.clone(), until));
            s.arns.push(arn.clone());
        });
        Ok(arn)
    }

    /// The ARN of each caller STS vouched for, once per token verified (a cached token
    /// is not asked about again).
    pub fn authenticated_arns(&self) -> Vec<String> {
        self.seen(|s| s.arns.clone())
    }

    /// Why each refused request was refused, in order.
    pub fn rejections(&self) -> Vec<String> {
        self.seen(|s| s.rejections.clone())
    }
}

/// A CA and a serving certificate it signed for 127.0.0.1 and localhost, as PEM.
pub struct ServingCerts {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A new CA (named `ca_name`) and a serving certificate from it.
pub fn serving_certs(ca_name: &str) -> ServingCerts {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
        .expect("server parameters");
    server
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("server key");
    let cert = server.signed_by(&key, &ca).expect("server certificate");
    ServingCerts {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// `certificateAuthority.data` as DescribeCluster gives it: base64 of the PEM.
pub fn ca_data(ca_pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(ca_pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_hosts() {
        for good in [
            "sts.amazonaws.com",
            "sts.eu-west-1.amazonaws.com",
            "sts-fips.us-east-1.amazonaws.com",
            "sts.eu-west-1.api.aws",
        ] {
            assert!(is_sts_host(good), "{good}");
        }
        for bad in [
            "sts.example.com",
            "evil.eu-west-1.amazonaws.com",
            "sts..amazonaws.com",
            "sts.eu-west-1.amazonaws.com.evil.net",
            "sts.a.b.amazonaws.com",
            "127.0.0.1",
        ] {
            assert!(!is_sts_host(bad), "{bad}");
        }
    }

    #[test]
    fn arn_from_json_or_xml() {
        let json = r#"{"GetCallerIdentityResponse":{"GetCallerIdentityResult":{"Arn":"arn:aws:iam::1:user/a","Account":"1","UserId":"A"}}}"#;
        assert_eq!(caller_arn(json).as_deref(), Some("arn:aws:iam::1:user/a"));
        let xml = "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/b</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>";
        assert_eq!(caller_arn(xml).as_deref(), Some("arn:aws:iam::1:user/b"));
        assert_eq!(caller_arn("<Nothing/>"), None);
    }
}
