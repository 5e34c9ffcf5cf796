//! A fake of the Cloudflare v4 API's zones and DNS records, on a loopback port.
//!
//! No Cloudflare server can run here, so this keeps the real API's semantics that the DNS
//! updater depends on: bearer-token auth, the response envelope, zones with a `status`
//! (`active`, `moved`, ...) and the `name`/`status` filters of `GET zones`, the record
//! listing's `name`/`name.exact`/`type` filters and pagination with `result_info`, records
//! with `comment` (at most 100 characters, the Free plan's limit), POST/PATCH/PUT/DELETE,
//! proxied records reported with TTL 1, TTLs of 60 to 86400 (or 1), the CNAME-exclusivity
//! rule against records of every type except at the zone apex (81053/81054), identical-record rejection (81058),
//! five-digit error codes, and 429 with `retry-after`.

mod records;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use records::lower;

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct CfRequest {
    pub method: String,
    /// Path below `/client/v4/`.
    pub path: String,
    pub query: String,
    /// Whether it carried the right API token.
    pub authorized: bool,
}

#[derive(Debug, Clone)]
enum Fault {
    RateLimited {
        retry_after: u64,
    },
    Error {
        status: u16,
        code: u32,
        message: String,
    },
}

#[derive(Default)]
struct Store {
    token: String,
    /// (id, name, status).
    zones: Vec<(String, String, String)>,
    /// id -> record (with `zone_id`).
    records: BTreeMap<String, Value>,
    next_id: u64,
    requests: Vec<CfRequest>,
    faults: VecDeque<Fault>,
    /// Faults for requests that change something (reads pass).
    write_faults: VecDeque<Fault>,
    /// A page of listings that cannot be read: (page, fault, times left).
    page_fault: Option<(u32, Fault, usize)>,
}

#[derive(Clone)]
pub struct FakeCloudflare {
    /// Base URL, as `CLOUDFLARE_API_URL` takes it (`http://127.0.0.1:<port>/client/v4`).
    pub url: String,
    store: Arc<Mutex<Store>>,
}

fn envelope(status: u16, result: Value, result_info: Option<Value>) -> Response {
    let mut body = json!({"success": true, "errors": [], "messages": [], "result": result});
    if let Some(info) = result_info {
        body["result_info"] = info;
    }
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        axum::Json(body),
    )
        .into_response()
}

fn error(status: u16, code: u32, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(json!({
            "success": false,
            "errors": [{"code": code, "message": message}],
            "messages": [],
            "result": null,
        })),
    )
        .into_response()
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let v = v.replace('+', " ");
            (k.to_string(), crate::fakes::kube::percent_decode(&v))
        })
        .collect()
}

async fn handle(
    State(store): State<Arc<Mutex<Store>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(mut s) = store.lock() else {
        return error(500, 10001, "lock");
    };
    let path = uri
        .path()
        .strip_prefix("/client/v4/")
        .unwrap_or(uri.path())
        .to_string();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let authorized = auth == format!("Bearer {}", s.token);
    s.requests.push(CfRequest {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_string(),
        authorized,
    });
    if !authorized {
        return error(403, 10000, "Authentication error");
    }
    let page = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("page="))
        .and_then(|p| p.parse::<u32>().ok());
    let page_fault = match &mut s.page_fault {
        Some((p, fault, left)) if page == Some(*p) && *left > 0 => {
            *left -= 1;
            Some(fault.clone())
        }
        _ => None,
    };
    let fault = match page_fault.or_else(|| s.faults.pop_front()) {
        Some(f) => Some(f),
        None if method != Method::GET => s.write_faults.pop_front(),
        None => None,
    };
    if let Some(fault) = fault {
        return match fault {
            Fault::RateLimited { retry_after } => {
                let mut r = error(
                    429,
                    971,
                    "Please wait and consider throttling your request speed",
                );
                if let Ok(v) = retry_after.to_string().parse() {
                    r.headers_mut().insert("retry-after", v);
                }
                r
            }
            Fault::Error {
                status,
                code,
                message,
            } => error(status, code, &message),
        };
    }
    let q = query_map(&uri);
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return error(400, 9207, "Request body is invalid."),
        }
    };
    let segments: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["zones"]) => {
            let name = q.get("name").map(|n| n.to_ascii_lowercase());
            let status = q.get("status");
            let zones: Vec<Value> = s
                .zones
                .iter()
                .filter(|(_, n, _)| name.as_ref().is_none_or(|want| want == n))
                .filter(|(_, _, st)| status.is_none_or(|want| want == st))
                .map(|(id, n, st)| json!({"id": id, "name": n, "status": st}))
                .collect();
            let count = zones.len();
            envelope(
                200,
                json!(zones),
                Some(
                    json!({"page": 1, "per_page": 50, "count": count, "total_count": count, "total_pages": 1}),
                ),
            )
        }
        (_, ["zones", zone, "dns_records", rest @ ..]) => {
            records::dns_records(&mut s, &method, zone.to_string(), rest, &q, body)
        }
        _ => error(404, 7000, "No route for that URI"),
    }
}

impl FakeCloudflare {
    /// Serves on a free loopback port for as long as the current tokio runtime lives;
    /// requests must carry `Authorization: Bearer <token>`.
    pub async fn start(token: &str) -> FakeCloudflare {
        let store = Arc::new(Mutex::new(Store {
            token: token.to_string(),
            ..Default::default()
        }));
        let app = Router::new().fallback(handle).with_state(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake cloudflare");
        let addr = listener.local_addr().expect("fake cloudflare address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeCloudflare {
            url: format!("http://{addr}/client/v4"),
            store,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut guard = self.store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Adds an active zone; returns its id.
    pub fn add_zone(&self, name: &str) -> String {
        self.add_zone_with_status(name, "active")
    }

    /// Adds a zone in `status` (`active`, `pending`, `moved`, ...); returns its id.
    pub fn add_zone_with_status(&self, name: &str, status: &str) -> String {
        self.with(|s| {
            let id = format!("zone{:028x}", s.zones.len() + 1);
            s.zones
                .push((id.clone(), name.to_ascii_lowercase(), status.to_string()));
            id
        })
    }

    /// Stores a record as if created through the API; returns its id.
    pub fn insert(&self, zone_id: &str, mut record: Value) -> String {
        self.with(|s| {
            s.next_id += 1;
            let id = format!("{:032x}", s.next_id);
            record["id"] = json!(id);
            record["zone_id"] = json!(zone_id);
            record["created_on"] = json!("2026-11-20T07:00:00Z");
            Store::stamp(&mut record);
            s.records.insert(id.clone(), record);
            id
        })
    }

    /// The zone's records named `name`.
    pub fn records(&self, zone_id: &str, name: &str) -> Vec<Value> {
        self.with(|s| {
            s.records
                .values()
                .filter(|r| r["zone_id"] == zone_id && lower(&r["name"]) == name)
                .cloned()
                .collect()
        })
    }

    pub fn requests(&self) -> Vec<CfRequest> {
        self.with(|s| s.requests.clone())
    }

    /// Requests that changed something.
    pub fn writes(&self) -> Vec<CfRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect()
    }

    pub fn clear_requests(&self) {
        self.with(|s| s.requests.clear())
    }

    /// The next `n` requests get 429 with `retry-after: <seconds>`.
    pub fn rate_limit_next(&self, n: usize, retry_after: u64) {
        self.with(|s| {
            s.faults
                .extend(std::iter::repeat_n(Fault::RateLimited { retry_after }, n))
        })
    }

    /// The next `n` writes (POST, PATCH, PUT, DELETE) fail with this status and error.
    pub fn fail_next_writes(&self, n: usize, status: u16, code: u32, message: &str) {
        self.with(|s| {
            s.write_faults.extend(std::iter::repeat_n(
                Fault::Error {
                    status,
                    code,
                    message: message.to_string(),
                },
                n,
            ))
        })
    }

    /// Changes a stored record behind the updater's back (a hand edit in the dashboard).
    pub fn edit(&self, id: &str, fields: Value) {
        self.with(|s| {
            if let (Some(r), Some(fields)) = (s.records.get_mut(id), fields.as_object()) {
                for (k, v) in fields {
                    r[k] = v.clone();
                }
            }
        })
    }

    /// Reading page `page` of a listing fails `times` times with this status and error.
    pub fn fail_page(&self, page: u32, times: usize, status: u16, code: u32, message: &str) {
        self.with(|s| {
            s.page_fault = Some((
                page,
                Fault::Error {
                    status,
                    code,
                    message: message.to_string(),
                },
                times,
            ))
        })
    }

    /// The next `n` requests fail with this status and Cloudflare error.
    pub fn fail_next(&self, n: usize, status: u16, code: u32, message: &str) {
        self.with(|s| {
            s.faults.extend(std::iter::repeat_n(
                Fault::Error {
                    status,
                    code,
                    message: message.to_string(),
                },
                n,
            ))
        })
    }
}
