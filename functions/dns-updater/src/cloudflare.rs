//! The Cloudflare adapter: the DNS endpoints the updater needs, defined through the
//! `cloudflare` crate's `EndpointSpec`, sent by our own HTTP client.
//!
//! Why not the crate's client: its records lack `comment` (our ownership marker), it has
//! no PATCH, its error type stores codes as `u16` so Cloudflare's five-digit DNS error
//! codes (81053...) fail to parse and vanish (cloudflare-rs issue 218), and it drops the
//! `retry-after` header a 429 carries. Sending requests ourselves keeps all of that, and
//! the endpoint definitions stay in the crate's shape.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cloudflare::framework::endpoint::spec::EndpointSpec;
use cloudflare::framework::endpoint::{serialize_query, Method, RequestBody};
use cloudflare::framework::response::{ApiResult, ApiSuccess};
use cloudflare::framework::Environment;
use fleet_shared::config::{normalize_name, DnsRecordConfig, Secret};
use fleet_shared::{FleetError, Result};
use serde::{Deserialize, Serialize};

use crate::plan::{CfRecord, CfRecordBody, CfWrite};

pub const DEFAULT_API_URL: &str = "https://api.cloudflare.com/client/v4/";

/// Records per page when listing (the API's maximum for DNS records is 5,000; a name
/// filter rarely matches more than a handful).
const PER_PAGE: u32 = 100;
/// Pages followed at most for one name.
const MAX_PAGES: u32 = 20;

// ------------------------------------------------------------------ endpoints

#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Zones(pub Vec<Zone>);
impl ApiResult for Zones {}

#[derive(Debug, Deserialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
    /// `active`, `pending`, `initializing`, `moved`, `deleted`, `deactivated`: only an
    /// active zone serves the records (Cloudflare API, "List Zones").
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Records(pub Vec<CfRecord>);
impl ApiResult for Records {}
impl ApiResult for CfRecord {}

#[derive(Debug, Deserialize)]
pub struct Deleted {
    pub id: String,
}
impl ApiResult for Deleted {}

/// `GET zones?name=&status=active`: the zone's id. A zone name can be listed more than
/// once (a zone left `moved` in an old account, or added to a second account).
struct ListZones<'a> {
    name: &'a str,
}

impl EndpointSpec for ListZones<'_> {
    type JsonResponse = Zones;
    type ResponseType = ApiSuccess<Zones>;
    fn method(&self) -> Method {
        Method::GET
    }
    fn path(&self) -> String {
        "zones".into()
    }
    fn query(&self) -> Option<String> {
        serialize_query(&[("name", self.name), ("status", "active")])
    }
}

/// `GET zones/:zone/dns_records?name=&page=&per_page=`: every record of one name, all
/// types (so a CNAME's A/AAAA rivals are seen too).
struct ListRecords<'a> {
    zone_id: &'a str,
    name: &'a str,
    page: u32,
}

#[derive(Serialize)]
struct ListRecordsQuery<'a> {
    name: &'a str,
    page: u32,
    per_page: u32,
}

impl EndpointSpec for ListRecords<'_> {
    type JsonResponse = Records;
    type ResponseType = ApiSuccess<Records>;
    fn method(&self) -> Method {
        Method::GET
    }
    fn path(&self) -> String {
        format!("zones/{}/dns_records", self.zone_id)
    }
    fn query(&self) -> Option<String> {
        serialize_query(&ListRecordsQuery {
            name: self.name,
            page: self.page,
            per_page: PER_PAGE,
        })
    }
}

/// `POST zones/:zone/dns_records`.
struct CreateRecord<'a> {
    zone_id: &'a str,
    body: &'a CfRecordBody,
}

impl EndpointSpec for CreateRecord<'_> {
    type JsonResponse = CfRecord;
    type ResponseType = ApiSuccess<CfRecord>;
    fn method(&self) -> Method {
        Method::POST
    }
    fn path(&self) -> String {
        format!("zones/{}/dns_records", self.zone_id)
    }
    fn body(&self) -> Option<RequestBody<'_>> {
        serde_json::to_string(self.body).ok().map(RequestBody::Json)
    }
}

/// `PATCH zones/:zone/dns_records/:id` (the crate has only PUT, which drops fields it
/// does not know, such as the comment).
struct PatchRecord<'a> {
    zone_id: &'a str,
    id: &'a str,
    body: &'a CfRecordBody,
}

impl EndpointSpec for PatchRecord<'_> {
    type JsonResponse = CfRecord;
    type ResponseType = ApiSuccess<CfRecord>;
    fn method(&self) -> Method {
        Method::PATCH
    }
    fn path(&self) -> String {
        format!("zones/{}/dns_records/{}", self.zone_id, self.id)
    }
    fn body(&self) -> Option<RequestBody<'_>> {
        serde_json::to_string(self.body).ok().map(RequestBody::Json)
    }
}

/// `DELETE zones/:zone/dns_records/:id`.
struct DeleteRecord<'a> {
    zone_id: &'a str,
    id: &'a str,
}

impl EndpointSpec for DeleteRecord<'_> {
    type JsonResponse = Deleted;
    type ResponseType = ApiSuccess<Deleted>;
    fn method(&self) -> Method {
        Method::DELETE
    }
    fn path(&self) -> String {
        format!("zones/{}/dns_records/{}", self.zone_id, self.id)
    }
}

// ------------------------------------------------------------------ responses

/// Cloudflare's response envelope, with `u32` error codes.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<ApiError>,
    result: Option<T>,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    code: u32,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct ResultInfo {
    #[serde(default)]
    page: u32,
    #[serde(default)]
    total_pages: u32,
}

/// The error a non-successful response stands for: Cloudflare's first error code, and
/// every message. A body that is not Cloudflare JSON (a proxy's HTML page) is quoted short.
fn api_error(status: u16, body: &[u8]) -> FleetError {
    match serde_json::from_slice::<Envelope<serde_json::Value>>(body) {
        Ok(env) if !env.errors.is_empty() => FleetError::Cloudflare {
            status,
            code: env.errors[0].code,
            message: env
                .errors
                .iter()
                .map(|e| format!("{} ({})", e.message, e.code))
                .collect::<Vec<_>>()
                .join("; "),
        },
        _ => {
            let text = String::from_utf8_lossy(body);
            let short: String = text.chars().take(200).collect();
            FleetError::Cloudflare {
                status,
                code: 0,
                message: if short.trim().is_empty() {
                    "no error details in the response".into()
                } else {
                    short
                },
            }
        }
    }
}

// ------------------------------------------------------------------ client

/// How hard a request is retried: 429s wait `retry-after`, 5xx and connection errors
/// back off exponentially, all within one budget so an invocation never loops on it.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// Total time spent waiting between attempts of one request.
    pub max_wait: Duration,
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            max_wait: Duration::from_secs(30),
            first_backoff: Duration::from_millis(500),
        }
    }
}

pub struct Cloudflare {
    http: reqwest::Client,
    environment: Environment,
    token: Secret,
    retry: RetryPolicy,
    /// Zone name -> id, looked up once per cold start.
    zones: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Cloudflare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloudflare")
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

impl Cloudflare {
    /// A client for `base_url` (default the real API), authenticating with `token`.
    pub fn new(base_url: Option<&str>, token: Secret, retry: RetryPolicy) -> Result<Self> {
        let mut base = base_url.unwrap_or(DEFAULT_API_URL).trim().to_string();
        // Endpoint paths are relative: the base must end with `/` to keep its own path.
        if !base.ends_with('/') {
            base.push('/');
        }
        match reqwest::Url::parse(&base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(FleetError::config(
                    "CLOUDFLARE_API_URL",
                    format!("`{base}` is not an http(s) URL"),
                ))
            }
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| FleetError::Internal(format!("HTTP client: {e}")))?;
        Ok(Cloudflare {
            http,
            environment: Environment::Custom(base),
            token,
            retry,
            zones: Mutex::new(HashMap::new()),
        })
    }

    /// Sends one endpoint's request, retrying within the policy.
    async fn send<E>(&self, endpoint: &E) -> Result<Envelope<E::JsonResponse>>
    where
        E: EndpointSpec,
    {
        // The base URL was checked in `new`, so building the URL cannot fail.
        let url = endpoint.url(&self.environment);
        let mut waited = Duration::ZERO;
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(endpoint.method(), url.clone())
                .bearer_auth(self.token.expose());
            if let Some(RequestBody::Json(body)) = endpoint.body() {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body);
            }
            let (error, wait) = match request.send().await {
                Err(e) => (
                    FleetError::Http {
                        api: "Cloudflare",
                        message: format!(
                            "{} {}: {}",
                            endpoint.method(),
                            endpoint.path(),
                            without_url(&e)
                        ),
                        retryable: true,
                    },
                    backoff,
                ),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = response.bytes().await.map_err(|e| FleetError::Http {
                        api: "Cloudflare",
                        message: format!("reading the response: {}", without_url(&e)),
                        retryable: true,
                    })?;
                    if (200..300).contains(&status) {
                        let env: Envelope<E::JsonResponse> = serde_json::from_slice(&body)
                            .map_err(|e| FleetError::Cloudflare {
                                status,
                                code: 0,
                                message: format!(
                                    "unexpected response to {} {}: {e}",
                                    endpoint.method(),
                                    endpoint.path()
                                ),
                            })?;
                        if !env.success {
                            return Err(api_error(status, &body));
                        }
                        return Ok(env);
                    }
                    let error = api_error(status, &body);
                    match status {
                        429 => (error, retry_after.unwrap_or(backoff)),
                        500..=599 => (error, backoff),
                        _ => return Err(error),
                    }
                }
            };
            if attempt >= self.retry.max_attempts || waited + wait > self.retry.max_wait {
                tracing::warn!(attempt, waited_ms = waited.as_millis() as u64, error = %error, "Cloudflare: giving up");
                return Err(error);
            }
            tracing::info!(attempt, wait_ms = wait.as_millis() as u64, error = %error, "Cloudflare: retrying");
            tokio::time::sleep(wait).await;
            waited += wait;
            backoff = backoff.saturating_mul(2);
        }
    }

    /// The id of the record's zone: `zone_id` from the config, or looked up by `zone`.
    pub async fn zone_id(&self, rec: &DnsRecordConfig) -> Result<String> {
        if let Some(id) = &rec.zone_id {
            return Ok(id.clone());
        }
        let name = normalize_name(rec.zone.as_deref().unwrap_or_default());
        if let Some(id) = self.zones.lock().ok().and_then(|z| z.get(&name).cloned()) {
            return Ok(id);
        }
        let env = self.send(&ListZones { name: &name }).await?;
        let zones = env.result.map(|z| z.0).unwrap_or_default();
        let id = active_zone(&name, &zones).map_err(|message| FleetError::Cloudflare {
            status: 200,
            code: 0,
            message,
        })?;
        if let Ok(mut zones) = self.zones.lock() {
            zones.insert(name, id.clone());
        }
        Ok(id)
    }

    /// Every record named `name` in the zone, following pages.
    pub async fn records(&self, zone_id: &str, name: &str) -> Result<Vec<CfRecord>> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let env = self
                .send(&ListRecords {
                    zone_id,
                    name,
                    page,
                })
                .await?;
            all.extend(env.result.map(|r| r.0).unwrap_or_default());
            let total = env.result_info.map(|i| (i.page, i.total_pages));
            match total {
                Some((p, t)) if p < t => continue,
                _ => break,
            }
        }
        Ok(all)
    }

    pub async fn apply(&self, zone_id: &str, write: &CfWrite) -> Result<()> {
        match write {
            CfWrite::Create(body) => self.send(&CreateRecord { zone_id, body }).await.map(|_| ()),
            CfWrite::Patch { id, body } => self
                .send(&PatchRecord { zone_id, id, body })
                .await
                .map(|_| ()),
            CfWrite::Delete { id } => match self.send(&DeleteRecord { zone_id, id }).await {
                Ok(_) => Ok(()),
                // Already gone (a retried delete): done.
                Err(FleetError::Cloudflare { status: 404, .. }) => Ok(()),
                Err(e) => Err(e),
            },
        }
    }
}

/// reqwest's error text without the URL (which holds nothing secret, but is noise).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "response could not be decoded"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_string(),
    }
}

/// The id of the one active zone named `name` among `zones` (what `GET zones` listed),
/// or why there is none: not found, or several active ones (the config must then say
/// which with `zone_id`).
pub fn active_zone(name: &str, zones: &[Zone]) -> std::result::Result<String, String> {
    let active: Vec<&Zone> = zones
        .iter()
        .filter(|z| normalize_name(&z.name) == name)
        .filter(|z| z.status.as_deref().unwrap_or("active") == "active")
        .collect();
    match active.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(format!(
            "no active zone `{name}` (or the API token cannot read it)"
        )),
        several => Err(format!(
            "{} active zones are named `{name}` ({}): set zone_id on the record to say which",
            several.len(),
            several
                .iter()
                .map(|z| z.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn the_one_active_zone_of_a_name() {
        let zone = |id: &str, name: &str, status: Option<&str>| Zone {
            id: id.into(),
            name: name.into(),
            status: status.map(String::from),
        };
        // Case 14: a zone left `moved` in an old account beside the active one.
        let zones = [
            zone("old", "example.com", Some("moved")),
            zone("new", "example.com", Some("active")),
            zone("other", "example.org", Some("active")),
        ];
        assert_eq!(active_zone("example.com", &zones), Ok("new".into()));
        let twice = [
            zone("a1", "example.com", Some("active")),
            zone("a2", "example.com", Some("active")),
        ];
        let err = active_zone("example.com", &twice).expect_err("ambiguous");
        assert!(err.contains("a1, a2") && err.contains("zone_id"), "{err}");
        let err = active_zone("example.com", &[zone("p", "example.com", Some("pending"))])
            .expect_err("none active");
        assert!(err.contains("no active zone"), "{err}");
    }

    #[test]
    fn five_digit_codes_survive() {
        let body = br#"{"success":false,"errors":[{"code":81053,"message":"An A, AAAA, or CNAME record with that host already exists."}],"messages":[],"result":null}"#;
        let e = api_error(400, body);
        assert!(
            matches!(
                e,
                FleetError::Cloudflare {
                    status: 400,
                    code: 81053,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("81053"));
        assert!(e.to_string().contains("already exists"));
    }

    #[test]
    fn html_errors_are_quoted_short() {
        let e = api_error(502, b"<html>bad gateway</html>");
        assert!(e.to_string().contains("HTTP 502"));
        assert!(e.is_retryable());
    }

    #[test]
    fn base_urls() {
        let ok = Cloudflare::new(
            Some("http://127.0.0.1:9/client/v4"),
            Secret::new("t".into()),
            RetryPolicy::default(),
        );
        assert!(ok.is_ok());
        let bad = Cloudflare::new(
            Some("not a url"),
            Secret::new("t".into()),
            RetryPolicy::default(),
        );
        assert!(matches!(bad, Err(FleetError::Config { .. })));
        let url = ListRecords {
            zone_id: "z1",
            name: "app.example.com",
            page: 2,
        }
        .url(&Environment::Custom("http://127.0.0.1:9/client/v4/".into()));
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/client/v4/zones/z1/dns_records?name=app.example.com&page=2&per_page=100"
        );
    }
}
