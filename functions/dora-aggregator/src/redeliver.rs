//! The daily redelivery sweep: GitHub never redelivers a failed webhook delivery by
//! itself, so each configured hook's recent deliveries are listed and every failed one
//! not delivered since is asked for again, at most once.
//!
//! REST: `GET /repos/{owner}/{repo}/hooks/{id}/deliveries` (organization hooks:
//! `/orgs/{org}/hooks/{id}/deliveries`), newest first, paginated by a `cursor` that the
//! `Link` header's `rel="next"` URL carries; `POST …/deliveries/{delivery_id}/attempts`
//! answers 202. GitHub keeps deliveries for 3 days, so the sweep looks that far back.

use std::collections::HashMap;

use std::time::Duration;

use fleet_shared::config::{GitHubHook, Secret};
use fleet_shared::dora::DoraStore;
use fleet_shared::runner::Invocation;
use fleet_shared::{FleetError, Result};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// How far back deliveries are read: GitHub keeps (and redelivers) them for 3 days.
pub const LOOKBACK: SignedDuration = SignedDuration::from_hours(72);

/// The most pages read per hook (100 deliveries each), whatever the hook's traffic.
pub const MAX_PAGES: usize = 50;

/// The most redeliveries asked for in one run: GitHub's secondary rate limit allows about
/// 80 content-creating requests a minute ("Rate limits for the REST API"); the rest wait
/// for the next day's run (GitHub keeps deliveries 3 days).
pub const MAX_REDELIVERIES: usize = 50;

/// Real time kept back from the sweep for answering (it runs after the metrics are out).
const MARGIN: Duration = Duration::from_secs(15);

/// One delivery as GitHub lists it (the fields the sweep reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Delivery {
    /// This attempt's id (redeliveries get their own).
    pub id: u64,
    /// The delivery's GUID, `X-GitHub-Delivery`: shared by a delivery and its redeliveries.
    pub guid: String,
    /// When the attempt was made.
    pub delivered_at: Timestamp,
    /// The HTTP status the receiver answered (0: no answer, e.g. a timeout).
    #[serde(default)]
    pub status_code: u16,
}

/// Whether a delivery failed in a way a redelivery can mend: no answer (0), a timeout
/// (408), throttled (429) or a server error. The webhook answers other 4xx for what it
/// will refuse again (a bad signature, a body too large).
fn mendable(status: u16) -> bool {
    status == 0 || status == 408 || status == 429 || status >= 500
}

/// The latest attempt of every GUID that never succeeded, when that attempt is since
/// `since` and failed mendably: what the sweep asks GitHub to redeliver, oldest first.
pub fn failed(deliveries: &[Delivery], since: Timestamp) -> Vec<&Delivery> {
    let mut by_guid: HashMap<&str, Vec<&Delivery>> = HashMap::new();
    for d in deliveries {
        by_guid.entry(d.guid.as_str()).or_default().push(d);
    }
    let mut out: Vec<&Delivery> = by_guid
        .into_values()
        .filter(|attempts| !attempts.iter().any(|d| (200..300).contains(&d.status_code)))
        .filter_map(|attempts| attempts.into_iter().max_by_key(|d| (d.delivered_at, d.id)))
        .filter(|d| d.delivered_at >= since && mendable(d.status_code))
        .collect();
    out.sort_by_key(|d| (d.delivered_at, d.id));
    out
}

/// The URL of `rel="next"` in a `Link` header (RFC 8288), if any. Written here: one
/// relation of one header, which GitHub always formats `<url>; rel="next"`.
pub fn next_link(link: &str) -> Option<&str> {
    link.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().eq_ignore_ascii_case("rel=\"next\""));
        is_next.then(|| url.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

/// What the sweep did: counted in the daily report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sweep {
    /// Hooks listed.
    pub hooks: usize,
    /// Deliveries read within the last 3 days.
    pub deliveries: usize,
    /// Deliveries that never succeeded.
    pub failed: usize,
    /// Redeliveries asked for now.
    pub redelivered: usize,
    /// Failed deliveries asked for before (or stored by the webhook since): not again.
    pub already: usize,
    /// Failed deliveries left for the next run (the per-run cap, the time left, GitHub's
    /// rate limit).
    pub deferred: usize,
    /// What went wrong, per hook or delivery (the sweep goes on).
    pub errors: Vec<String>,
}

/// The GitHub REST API with the sweep's token.
pub struct GitHubApi {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl GitHubApi {
    /// The API at `base` (`https://api.github.com`) with `token`.
    pub fn new(http: reqwest::Client, base: &str, token: Secret) -> Self {
        GitHubApi {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(self.token.expose())
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "infra-fleet-dora-aggregator")
    }

    /// The hook's deliveries since `since`, newest first, page by page (at most
    /// [`MAX_PAGES`]; the flag says the list was cut there).
    ///
    /// # Errors
    /// An HTTP error names the status and GitHub's `message` (never the token); a `Link`
    /// to another host than the API's is refused (the token would go there).
    pub async fn deliveries(
        &self,
        hook: &GitHubHook,
        since: Timestamp,
    ) -> Result<(Vec<Delivery>, bool)> {
        let mut url = format!("{}/{}?per_page=100", self.base, hook.deliveries_path());
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            if !url.starts_with(&format!("{}/", self.base)) {
                return Err(FleetError::Http {
                    api: "GitHub",
                    message:
                        "the next page is on another host than dora.github_api_url; not followed"
                            .into(),
                    retryable: false,
                });
            }
            let response = self.send(self.request(reqwest::Method::GET, &url)).await?;
            let next = response
                .headers()
                .get("link")
                .and_then(|l| l.to_str().ok())
                .and_then(next_link)
                .map(str::to_string);
            let page: Vec<Delivery> = response.json().await.map_err(|e| FleetError::Http {
                api: "GitHub",
                message: format!(
                    "a deliveries page is not a list of deliveries: {}",
                    e.without_url()
                ),
                retryable: false,
            })?;
            let older = page.iter().any(|d| d.delivered_at < since);
            out.extend(page);
            match next {
                Some(n) if !older => url = n,
                _ => return Ok((out, false)),
            }
        }
        Ok((out, true))
    }

    /// Asks GitHub to redeliver one delivery attempt (202).
    pub async fn redeliver(&self, hook: &GitHubHook, delivery: u64) -> Result<()> {
        let url = format!(
            "{}/{}/{delivery}/attempts",
            self.base,
            hook.deliveries_path()
        );
        self.send(self.request(reqwest::Method::POST, &url)).await?;
        Ok(())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request.send().await.map_err(|e| FleetError::Http {
            api: "GitHub",
            message: e.without_url().to_string(),
            retryable: true,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let spent = response
            .headers()
            .get("x-ratelimit-remaining")
            .is_some_and(|v| v.as_bytes() == b"0");
        let message = response
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_default();
        // 429, or 403 with the rate limit spent or GitHub's "secondary rate limit": stop
        // asking (the sweep leaves the rest for the next run).
        let limited = status.as_u16() == 429
            || (status.as_u16() == 403
                && (spent || message.to_ascii_lowercase().contains("rate limit")));
        Err(FleetError::Http {
            api: "GitHub",
            message: format!("HTTP {status}: {message}"),
            retryable: status.is_server_error() || limited,
        })
    }
}

/// What an error from GitHub means for the rest of the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Throttled or failing (429, a rate-limit 403, 5xx, no answer): the limit is the
    /// token's, so every hook waits for the next run.
    Sweep,
    /// This hook refuses the token (401, a permission 403, 404): its other deliveries
    /// would be refused too.
    Hook,
    /// Only this delivery.
    Delivery,
}

fn stop_for(e: &FleetError) -> Stop {
    match e {
        FleetError::Http {
            retryable: true, ..
        } => Stop::Sweep,
        FleetError::Http { message, .. }
            if ["HTTP 401", "HTTP 403", "HTTP 404"]
                .iter()
                .any(|s| message.starts_with(s)) =>
        {
            Stop::Hook
        }
        _ => Stop::Delivery,
    }
}

/// Lists every hook's recent deliveries and asks for each failed one not seen since (not
/// stored by the webhook, not asked for before) once: at most [`MAX_REDELIVERIES`]
/// requests a run, within the invocation's real time less a margin, the whole sweep
/// stopped once GitHub throttles or fails, a hook left alone once it refuses the token.
/// Errors are counted, never fatal.
pub async fn sweep(
    api: &GitHubApi,
    store: &DoraStore,
    hooks: &[GitHubHook],
    inv: &Invocation,
) -> Sweep {
    let mut out = Sweep::default();
    let ends = inv.budget.less(MARGIN).ends();
    let work = sweep_hooks(api, store, hooks, inv.now, &mut out);
    if tokio::time::timeout_at(tokio::time::Instant::from_std(ends), work)
        .await
        .is_err()
    {
        out.errors
            .push("out of time: the rest waits for the next run".into());
    }
    out
}

async fn sweep_hooks(
    api: &GitHubApi,
    store: &DoraStore,
    hooks: &[GitHubHook],
    now: Timestamp,
    out: &mut Sweep,
) {
    let since = now.checked_sub(LOOKBACK).unwrap_or(now);
    let mut asked = 0;
    for hook in hooks {
        let name = hook.deliveries_path();
        let deliveries = match api.deliveries(hook, since).await {
            Ok((d, cut)) => {
                if cut {
                    out.errors.push(format!(
                        "{name}: more than {} deliveries in 3 days; the oldest were not read",
                        MAX_PAGES * 100
                    ));
                }
                d
            }
            Err(e) => {
                tracing::error!(hook = %name, error = %e, "webhook deliveries not listed");
                out.errors.push(format!("{name}: {e}"));
                if stop_for(&e) == Stop::Sweep {
                    return;
                }
                continue;
            }
        };
        out.hooks += 1;
        out.deliveries += deliveries
            .iter()
            .filter(|d| d.delivered_at >= since)
            .count();
        let failed = failed(&deliveries, since);
        out.failed += failed.len();
        for (i, d) in failed.iter().enumerate() {
            if asked >= MAX_REDELIVERIES {
                out.deferred += failed.len() - i;
                break;
            }
            match redeliver_once(api, store, hook, d, now, out).await {
                Ok(None) => out.already += 1,
                Ok(Some(())) => {
                    asked += 1;
                    out.redelivered += 1;
                }
                Err(e) => {
                    asked += 1;
                    tracing::error!(hook = %name, delivery = d.id, error = %e, "redelivery not asked for");
                    out.errors.push(format!("{name} delivery {}: {e}", d.id));
                    match stop_for(&e) {
                        Stop::Sweep => {
                            out.deferred += failed.len() - i - 1;
                            return;
                        }
                        Stop::Hook => {
                            out.deferred += failed.len() - i - 1;
                            break;
                        }
                        Stop::Delivery => {}
                    }
                }
            }
        }
    }
}

/// `Ok(Some(()))` asked for now, `Ok(None)` stored or asked for before.
async fn redeliver_once(
    api: &GitHubApi,
    store: &DoraStore,
    hook: &GitHubHook,
    d: &Delivery,
    now: Timestamp,
    out: &mut Sweep,
) -> Result<Option<()>> {
    // Stored by the webhook after all (a redelivery asked for by hand, say).
    if store.delivery_seen(&d.guid).await? || !store.claim_redelivery(&d.guid, now).await? {
        return Ok(None);
    }
    if let Err(e) = api.redeliver(hook, d.id).await {
        // Not asked for after all: the next sweep may try again (the claim is short
        // until GitHub accepts, so one left behind here lapses within the hour).
        if let Err(release) = store.release_redelivery(&d.guid).await {
            tracing::warn!(error = %release, "redelivery claim not released");
            out.errors
                .push(format!("delivery {}: claim not released: {release}", d.id));
        }
        return Err(e);
    }
    if let Err(e) = store.confirm_redelivery(&d.guid, now).await {
        // Asked for: at worst asked again after the short claim lapses.
        tracing::warn!(error = %e, "redelivery claim not extended");
    }
    tracing::info!(delivery = d.id, guid = %d.guid, "redelivery asked for");
    Ok(Some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: u64, guid: &str, at: &str, status: u16) -> Delivery {
        Delivery {
            id,
            guid: guid.into(),
            delivered_at: at.parse().expect("time"),
            status_code: status,
        }
    }

    #[test]
    fn only_deliveries_that_never_succeeded_are_asked_for() {
        let since: Timestamp = "2026-11-20T00:00:00Z".parse().expect("time");
        let all = vec![
            d(1, "a", "2026-11-21T10:00:00Z", 500),
            d(2, "a", "2026-11-21T11:00:00Z", 200), // redelivered by hand: done
            d(3, "b", "2026-11-21T12:00:00Z", 0),   // timed out
            d(4, "b", "2026-11-21T13:00:00Z", 502), // and again: the latest attempt
            d(5, "c", "2026-11-19T13:00:00Z", 500), // too old to redeliver
            d(6, "e", "2026-11-22T13:00:00Z", 202),
            d(7, "f", "2026-11-22T14:00:00Z", 401), // refused: it would be again
            d(8, "g", "2026-11-22T15:00:00Z", 429),
            // Succeeded on a redelivery older than the window: still done.
            d(9, "h", "2026-11-22T16:00:00Z", 500),
            d(10, "h", "2026-11-19T16:00:00Z", 200),
        ];
        let ids: Vec<u64> = failed(&all, since).iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![4, 8]);
    }

    #[test]
    fn link_headers() {
        let link = r#"<https://api.github.com/repos/o/r/hooks/1/deliveries?per_page=100&cursor=v1_12077215967>; rel="next""#;
        assert_eq!(
            next_link(link),
            Some("https://api.github.com/repos/o/r/hooks/1/deliveries?per_page=100&cursor=v1_12077215967")
        );
        assert_eq!(
            next_link(r#"<https://x/1>; rel="prev", <https://x/3>; rel="next""#),
            Some("https://x/3")
        );
        assert_eq!(next_link(r#"<https://x/1>; rel="prev""#), None);
        assert_eq!(next_link(""), None);
    }
}
