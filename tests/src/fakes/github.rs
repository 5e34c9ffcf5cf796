//! A fake of GitHub's webhook-deliveries REST API (no GitHub can run here), as strict as
//! the real one where the sweep could go wrong:
//!
//! - `GET /repos/{owner}/{repo}/hooks/{id}/deliveries` and `/orgs/{org}/hooks/{id}/
//!   deliveries`: newest first, `per_page` (default 30, at most 100), paginated by an
//!   opaque `cursor` that only the `Link: <…>; rel="next"` header gives (GitHub's
//!   "Using pagination in the REST API"); an unknown hook is 404.
//! - `POST …/deliveries/{delivery_id}/attempts`: 202 and a new attempt with the same
//!   `guid` and `redelivery: true`, answered with the status the test sets (the test
//!   posts the delivery to the webhook itself); an unknown delivery is 404; past the
//!   test's limit of such requests, 403 "You have exceeded a secondary rate limit" with
//!   `retry-after`, as GitHub throttles content-creating requests; for a read-only token
//!   403 "Resource not accessible by personal access token".
//! - Every request needs `Authorization: Bearer <token>` (401 `Bad credentials`
//!   otherwise) and a `User-Agent` (403, as GitHub refuses requests without one).

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};

/// One attempt as GitHub lists it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: u64,
    pub guid: String,
    pub delivered_at: String,
    pub status_code: u16,
    pub redelivery: bool,
    pub event: String,
}

#[derive(Default)]
struct Hooks {
    /// (`repos/o/r/hooks/1` or `orgs/o/hooks/1`, attempts oldest first).
    hooks: Vec<(String, Vec<Attempt>)>,
    /// The `POST …/attempts` received: (hook, delivery id).
    redeliveries: Vec<(String, u64)>,
    next_id: u64,
    requests: usize,
    /// What the receiver answers a redelivery (200 unless a test says otherwise).
    redelivery_status: u16,
    /// Redeliveries accepted before the secondary rate limit refuses (None: no limit).
    post_limit: Option<usize>,
    /// The token may read hooks but not write them (a fine-grained token without
    /// *Webhooks: write*): every POST is a permission 403.
    read_only: bool,
}

#[derive(Clone)]
pub struct FakeGitHub {
    /// The API's base URL (`dora.github_api_url`).
    pub url: String,
    token: String,
    state: Arc<Mutex<Hooks>>,
}

#[derive(Clone)]
struct App {
    token: String,
    state: Arc<Mutex<Hooks>>,
    base: String,
}

fn refused(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

fn check(app: &App, headers: &HeaderMap) -> Option<Response> {
    if !headers.contains_key("user-agent") {
        return Some(refused(
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        ));
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {}", app.token) {
        return Some(refused(StatusCode::UNAUTHORIZED, "Bad credentials"));
    }
    None
}

fn listed(a: &Attempt) -> Value {
    json!({
        "id": a.id, "guid": a.guid, "delivered_at": a.delivered_at,
        "redelivery": a.redelivery, "duration": 0.27,
        "status": if (200..300).contains(&a.status_code) { "OK" } else { "Invalid HTTP Response: 500" },
        "status_code": a.status_code, "event": a.event, "action": null,
        "installation_id": null, "repository_id": 1296269, "throttled_at": null
    })
}

async fn list(
    State(app): State<App>,
    Path((kind, owner, rest)): Path<(String, String, String)>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check(&app, &headers) {
        return r;
    }
    let Some(hook) = hook_name(&kind, &owner, &rest, "/deliveries") else {
        return refused(StatusCode::NOT_FOUND, "Not Found");
    };
    let per_page = q
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let Ok(mut state) = app.state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    state.requests += 1;
    let Some((_, attempts)) = state.hooks.iter().find(|(h, _)| *h == hook) else {
        return refused(StatusCode::NOT_FOUND, "Not Found");
    };
    // Newest first; the cursor is the last id of the previous page, opaque to clients.
    let mut newest_first: Vec<&Attempt> = attempts.iter().collect();
    newest_first.sort_by_key(|a| std::cmp::Reverse(a.id));
    let after = match q.get("cursor") {
        None => None,
        Some(c) => match c.strip_prefix("v1_").and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => Some(n),
            None => return refused(StatusCode::UNPROCESSABLE_ENTITY, "Invalid cursor"),
        },
    };
    let rest: Vec<&Attempt> = newest_first
        .into_iter()
        .filter(|a| after.is_none_or(|n| a.id < n))
        .collect();
    let page: Vec<Value> = rest.iter().take(per_page).map(|a| listed(a)).collect();
    let mut response = Json(Value::Array(page)).into_response();
    if rest.len() > per_page {
        let last = rest[per_page - 1].id;
        let link = format!(
            "<{}/{hook}/deliveries?per_page={per_page}&cursor=v1_{last}>; rel=\"next\"",
            app.base
        );
        if let Ok(v) = link.parse() {
            response.headers_mut().insert("link", v);
        }
    }
    response
}

async fn redeliver(
    State(app): State<App>,
    Path((kind, owner, rest)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check(&app, &headers) {
        return r;
    }
    // `rest` is `<repo>/hooks/<id>/deliveries/<delivery>/attempts` (or without the repo).
    let Some((hook_rest, delivery)) = rest
        .strip_suffix("/attempts")
        .and_then(|r| r.rsplit_once("/deliveries/"))
    else {
        return refused(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some(hook) = hook_name(&kind, &owner, hook_rest, "") else {
        return refused(StatusCode::NOT_FOUND, "Not Found");
    };
    let Ok(delivery) = delivery.parse::<u64>() else {
        return refused(StatusCode::NOT_FOUND, "Not Found");
    };
    let Ok(mut state) = app.state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    state.requests += 1;
    if state.read_only {
        return refused(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        );
    }
    if state
        .post_limit
        .is_some_and(|limit| state.redeliveries.len() >= limit)
    {
        let mut r = refused(
            StatusCode::FORBIDDEN,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        );
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("60"));
        return r;
    }
    state.next_id += 1;
    let id = state.next_id;
    let Some((_, attempts)) = state.hooks.iter_mut().find(|(h, _)| *h == hook) else {
        return refused(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some(original) = attempts.iter().find(|a| a.id == delivery).cloned() else {
        return refused(StatusCode::NOT_FOUND, "Not Found");
    };
    let status_code = state.redelivery_status;
    let Some((_, attempts)) = state.hooks.iter_mut().find(|(h, _)| *h == hook) else {
        return refused(StatusCode::NOT_FOUND, "Not Found");
    };
    attempts.push(Attempt {
        id,
        redelivery: true,
        status_code,
        ..original
    });
    state.redeliveries.push((hook, delivery));
    (StatusCode::ACCEPTED, Json(json!({}))).into_response()
}

/// `repos/<owner>/<repo>/hooks/<id>` or `orgs/<org>/hooks/<id>` from the path's parts.
fn hook_name(kind: &str, owner: &str, rest: &str, suffix: &str) -> Option<String> {
    let rest = rest.strip_suffix(suffix)?;
    match kind {
        "repos" => {
            let (repo, id) = rest.split_once("/hooks/")?;
            id.parse::<u64>().ok()?;
            Some(format!("repos/{owner}/{repo}/hooks/{id}"))
        }
        "orgs" => {
            let id = rest.strip_prefix("hooks/")?;
            id.parse::<u64>().ok()?;
            Some(format!("orgs/{owner}/hooks/{id}"))
        }
        _ => None,
    }
}

impl FakeGitHub {
    /// A fake API accepting `token`.
    pub async fn start(token: &str) -> FakeGitHub {
        let state: Arc<Mutex<Hooks>> = Arc::new(Mutex::new(Hooks {
            next_id: 12_000_000_000,
            redelivery_status: 200,
            ..Hooks::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind github");
        let addr = listener.local_addr().expect("address");
        let base = format!("http://{addr}");
        let app = App {
            token: token.to_string(),
            state: state.clone(),
            base: base.clone(),
        };
        let router = axum::Router::new()
            .route("/{kind}/{owner}/{*rest}", get(list).post(redeliver))
            .with_state(app);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeGitHub {
            url: base,
            token: token.to_string(),
            state,
        }
    }

    /// The token it accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Records an attempt of `hook` (`repos/o/r/hooks/1`); returns its id.
    pub fn deliver(
        &self,
        hook: &str,
        guid: &str,
        event: &str,
        delivered_at: &str,
        status_code: u16,
    ) -> u64 {
        let mut state = self.state.lock().expect("state");
        state.next_id += 1;
        let id = state.next_id;
        let attempt = Attempt {
            id,
            guid: guid.into(),
            delivered_at: delivered_at.into(),
            status_code,
            redelivery: false,
            event: event.into(),
        };
        match state.hooks.iter_mut().find(|(h, _)| h == hook) {
            Some((_, attempts)) => attempts.push(attempt),
            None => state.hooks.push((hook.to_string(), vec![attempt])),
        }
        id
    }

    /// What the receiver answers the redeliveries asked for from now on.
    pub fn set_redelivery_status(&self, status: u16) {
        if let Ok(mut s) = self.state.lock() {
            s.redelivery_status = status;
        }
    }

    /// Refuses every redelivery as a token without write access is refused.
    pub fn read_only(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.read_only = true;
        }
    }

    /// Accepts `n` more redeliveries, then answers GitHub's secondary rate limit.
    pub fn limit_redeliveries(&self, n: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.post_limit = Some(s.redeliveries.len() + n);
        }
    }

    /// The redeliveries asked for: (hook, delivery id).
    pub fn redeliveries(&self) -> Vec<(String, u64)> {
        self.state
            .lock()
            .map(|s| s.redeliveries.clone())
            .unwrap_or_default()
    }

    /// Requests served.
    pub fn requests(&self) -> usize {
        self.state.lock().map(|s| s.requests).unwrap_or_default()
    }
}
