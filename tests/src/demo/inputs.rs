//! What the day is fed: the example config (refused on a holiday), the month before it
//! seeded into the state table and Cost Explorer, and the day's GitHub deliveries.

use jiff::{Timestamp, ToSpan};
use serde_json::{json, Value};

use super::Day;
use crate::fixtures::dora::{function_url_request, github_examples, github_request};
use crate::{
    cost_day, seed_costs, workspace_root, LOCAL_ARGOCD_TOKEN, LOCAL_PAGERDUTY_SECRET, LOCAL_TABLE,
    LOCAL_WEBHOOK_SECRET,
};

/// Who sends one of the day's webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    /// GitHub, with its `X-GitHub-Event`.
    GitHub(&'static str),
    /// Argo CD's notifications (the README's template).
    Argocd,
    /// PagerDuty's v3 webhooks.
    PagerDuty,
}

/// One of the day's webhooks: when, who sends what, and what it is.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    pub at: Timestamp,
    pub sender: Sender,
    pub payload: Value,
    pub what: String,
}

impl Hook {
    /// The Function URL request the sender makes, signed (GitHub, PagerDuty) or carrying
    /// the token (Argo CD) with the local secrets `make local-aws` stores.
    pub(crate) fn request(&self, delivery: &str) -> Value {
        let body = self.payload.to_string();
        match self.sender {
            Sender::GitHub(event) => {
                github_request(event, &self.payload, delivery, LOCAL_WEBHOOK_SECRET)
            }
            Sender::Argocd => function_url_request(
                "/argocd",
                "",
                &[
                    ("authorization", &format!("Bearer {LOCAL_ARGOCD_TOKEN}")),
                    ("user-agent", "Go-http-client/1.1"),
                ],
                body.as_bytes(),
                false,
            ),
            Sender::PagerDuty => function_url_request(
                "/pagerduty",
                "",
                &[
                    (
                        "x-pagerduty-signature",
                        &dora_webhook::signature::sign_pagerduty(
                            LOCAL_PAGERDUTY_SECRET.as_bytes(),
                            body.as_bytes(),
                        ),
                    ),
                    ("user-agent", "PagerDuty-Webhook/V3.0"),
                ],
                body.as_bytes(),
                false,
            ),
        }
    }

    /// `GitHub`, `Argo CD` or `PagerDuty`.
    pub(crate) fn source(&self) -> &'static str {
        match self.sender {
            Sender::GitHub(_) => "GitHub",
            Sender::Argocd => "Argo CD",
            Sender::PagerDuty => "PagerDuty",
        }
    }
}

fn example(event: &str, pick: impl Fn(&Value) -> bool) -> Result<Value, String> {
    github_examples(event)
        .into_iter()
        .find(|e| pick(e))
        .ok_or_else(|| format!("no `{event}` example (run `make setup`)"))
}

/// The day's webhooks, in time order: `load-harness` deployed by GitHub Actions with a
/// GitHub issue incident, and `shop` deployed by Argo CD with a PagerDuty incident.
pub(crate) fn webhooks(day: &Day) -> Result<Vec<Hook>, String> {
    // Monday hh:mm UTC, as GitHub writes it.
    let t = |h: i8, m: i8| {
        day.utc(h, m)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    };
    let repo = "your-org/infra-fleet";
    let push = |head: &str, pushed: &str, commits: &[(&str, &str)]| -> Result<Value, String> {
        let mut p = example("push", |e| e["ref"] == "refs/heads/master")?;
        p["ref"] = json!("refs/heads/main");
        p["repository"]["full_name"] = json!(repo);
        p["after"] = json!(head);
        let at: Timestamp = pushed.parse().map_err(|e| format!("{e}"))?;
        p["repository"]["pushed_at"] = json!(at.as_second());
        let template = p["commits"][0].clone();
        p["commits"] = commits
            .iter()
            .map(|(sha, t)| {
                let mut c = template.clone();
                c["id"] = json!(sha);
                c["timestamp"] = json!(t);
                c
            })
            .collect();
        Ok(p)
    };
    let run = |id: u64, conclusion: &str, sha: &str, at: &str| -> Result<Value, String> {
        let mut r = example("workflow_run", |e| {
            e["workflow_run"]["conclusion"] == "success"
        })?;
        r["repository"]["full_name"] = json!(repo);
        let w = &mut r["workflow_run"];
        w["id"] = json!(id);
        w["name"] = json!("deploy");
        w["path"] = json!(".github/workflows/deploy.yml");
        w["head_branch"] = json!("main");
        w["head_sha"] = json!(sha);
        w["conclusion"] = json!(conclusion);
        w["updated_at"] = json!(at);
        Ok(r)
    };
    let issue = |action: &str, opened: &str, closed: Option<&str>| -> Result<Value, String> {
        let mut i = example("issues", |e| e["action"] == "opened")?;
        i["action"] = json!(action);
        i["repository"]["full_name"] = json!(repo);
        i["issue"]["id"] = json!(4242);
        i["issue"]["title"] = json!("checkout latency above the SLO");
        i["issue"]["labels"] = json!([{"name": "incident"}]);
        i["issue"]["created_at"] = json!(opened);
        i["issue"]["closed_at"] = json!(closed);
        Ok(i)
    };
    let (a, b, c, d) = (
        "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
        "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2",
        "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3",
        "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4",
    );
    let github = |at: Timestamp, event: &'static str, payload: Value, what: &str| Hook {
        at,
        sender: Sender::GitHub(event),
        payload,
        what: what.to_string(),
    };
    let mut hooks = vec![
        github(
            day.utc(9, 0)?,
            "push",
            push(
                a,
                &t(9, 0)?,
                &[
                    ("a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0", &t(8, 10)?),
                    (a, &t(8, 40)?),
                ],
            )?,
            "push: 2 commits to main",
        ),
        github(
            day.utc(9, 30)?,
            "workflow_run",
            run(101, "success", a, &t(9, 30)?)?,
            "deploy.yml #101 succeeded",
        ),
        github(
            day.utc(11, 0)?,
            "push",
            push(b, &t(11, 0)?, &[(b, &t(10, 30)?)])?,
            "push: 1 commit",
        ),
        github(
            day.utc(11, 30)?,
            "workflow_run",
            run(102, "failure", b, &t(11, 30)?)?,
            "deploy.yml #102 failed",
        ),
        github(
            day.utc(11, 45)?,
            "push",
            push(c, &t(11, 45)?, &[(c, &t(11, 40)?)])?,
            "push: the fix",
        ),
        github(
            day.utc(12, 0)?,
            "workflow_run",
            run(103, "success", c, &t(12, 0)?)?,
            "deploy.yml #103 succeeded",
        ),
        github(
            day.utc(14, 0)?,
            "issues",
            issue("opened", &t(14, 0)?, None)?,
            "incident opened",
        ),
        github(
            day.utc(14, 30)?,
            "push",
            push(d, &t(14, 30)?, &[(d, &t(14, 20)?)])?,
            "push: a hotfix",
        ),
        github(
            day.utc(14, 45)?,
            "workflow_run",
            run(104, "success", d, &t(14, 45)?)?,
            "deploy.yml #104 succeeded",
        ),
        github(
            day.utc(15, 0)?,
            "issues",
            issue("closed", &t(14, 0)?, Some(t(15, 0)?.as_str()))?,
            "incident closed",
        ),
    ];
    hooks.extend(shop(day)?);
    hooks.sort_by_key(|h| h.at);
    Ok(hooks)
}

/// `shop`, deployed by Argo CD: `e` (pushed 09:40, committed 09:20) synced at 10:00;
/// PagerDuty #12 (P1) opened 13:00, blamed on it; the hotfix `f` (committed 13:05,
/// pushed 13:10) synced at 13:20 while #12 is open (rework); #12 resolved at 13:40.
fn shop(day: &Day) -> Result<Vec<Hook>, String> {
    let t = |h: i8, m: i8| {
        day.utc(h, m)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    };
    let repo = "your-org/shop";
    let (e, f) = (
        "e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5",
        "f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6",
    );
    let push = |sha: &str, pushed: Timestamp, committed: &str| -> Result<Value, String> {
        let mut p = example("push", |e| e["ref"] == "refs/heads/master")?;
        p["ref"] = json!("refs/heads/main");
        p["repository"]["full_name"] = json!(repo);
        p["repository"]["default_branch"] = json!("main");
        p["after"] = json!(sha);
        p["repository"]["pushed_at"] = json!(pushed.as_second());
        let mut c = p["commits"][0].clone();
        c["id"] = json!(sha);
        c["timestamp"] = json!(committed);
        p["commits"] = json!([c]);
        Ok(p)
    };
    // argocd-notifications-cm's `dora-deployed` template rendered for the Application.
    let synced = |sha: &str, at: &str| {
        json!({"event": "deployed", "app": "shop", "project": "default",
               "repo": "https://github.com/your-org/shop.git", "revision": sha,
               "phase": "Succeeded", "health": "Healthy", "finished_at": at})
    };
    // PagerDuty's v3 incident event (its developer docs' example) for the shop service.
    let incident = |kind: &str, id: &str, occurred: &str| -> Result<Value, String> {
        Ok(json!({"event": {
            "id": id, "event_type": kind, "resource_type": "incident", "occurred_at": occurred,
            "agent": {"id": "PLH1HKV", "type": "user_reference", "summary": "On-call engineer"},
            "client": null,
            "data": {"id": "Q2SHOP12", "type": "incident", "number": 12,
                     "status": if kind == "incident.resolved" { "resolved" } else { "triggered" },
                     "incident_key": "checkout-5xx", "created_at": t(13, 0)?,
                     "title": "Checkout returns 502", "urgency": "high",
                     "service": {"id": "PSHOP01", "summary": "Shop", "type": "service_reference"},
                     "priority": {"id": "PSO75BM", "summary": "P1", "type": "priority_reference"},
                     "assignees": [], "teams": [], "conference_bridge": null, "resolve_reason": null}
        }}))
    };
    let hook = |at: Timestamp, sender: Sender, payload: Value, what: &str| Hook {
        at,
        sender,
        payload,
        what: what.to_string(),
    };
    Ok(vec![
        hook(
            day.utc(9, 45)?,
            Sender::GitHub("push"),
            push(e, day.utc(9, 40)?, &t(9, 20)?)?,
            "shop push: 1 commit",
        ),
        hook(
            day.utc(10, 0)?,
            Sender::Argocd,
            synced(e, &t(10, 0)?),
            "shop synced and healthy",
        ),
        hook(
            day.utc(13, 0)?,
            Sender::PagerDuty,
            incident(
                "incident.triggered",
                "01SHOP0000000000000000001",
                &t(13, 0)?,
            )?,
            "shop incident #12 triggered (P1)",
        ),
        hook(
            day.utc(13, 15)?,
            Sender::GitHub("push"),
            push(f, day.utc(13, 10)?, &t(13, 5)?)?,
            "shop push: the hotfix",
        ),
        hook(
            day.utc(13, 30)?,
            Sender::Argocd,
            synced(f, &t(13, 20)?),
            "shop hotfix synced",
        ),
        hook(
            day.utc(13, 45)?,
            Sender::PagerDuty,
            incident(
                "incident.resolved",
                "01SHOP0000000000000000002",
                &t(13, 40)?,
            )?,
            "shop incident #12 resolved",
        ),
    ])
}

/// Hourly rates of the seeded bills (USD): staging's control plane and spot nodes while
/// up; its network's NAT gateway (under "EC2 - Other", as Cost Explorer bills
/// NatGateway-Hours) and public IPv4 address while the network is up; sandbox-us's
/// control plane all day (scale mode keeps it) and nodes while up.
const STAGING_HOURLY: [(&str, f64); 2] = [
    ("Amazon Elastic Kubernetes Service", 0.10),
    ("Amazon Elastic Compute Cloud - Compute", 0.06),
];
const NETWORK_HOURLY: [(&str, f64); 2] = [
    ("EC2 - Other", 0.045),
    ("Amazon Virtual Private Cloud", 0.005),
];

const SANDBOX_NODES_HOURLY: f64 = 0.0416;

/// The automation's own tagged cost a day, USD: (Lambda, DynamoDB), about what
/// BENCHMARKS.md section 8 counts for the example config.
const AUTOMATION_DAILY: (f64, f64) = (0.0004, 0.0001);

/// The month before the demo, as the schedule made it: each cluster's transitions from the
/// 1st to the Sunday before the Monday recorded in the state table, and Cost Explorer's
/// days priced by the hours up (the Monday priced by the hours the demo keeps them up).
/// Returns the hours each cluster was up before the demo.
pub(super) async fn seed_history(
    sdk: &aws_types::SdkConfig,
    endpoint: &str,
    day: &Day,
) -> Result<std::collections::BTreeMap<String, f64>, String> {
    use fleet_shared::schedule::Desired;
    use fleet_shared::state::{StateStore, Transition, TransitionKind};
    let text = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .map_err(|e| e.to_string())?;
    let config = fleet_shared::config::FleetConfig::parse(&text).map_err(|e| e.to_string())?;
    let store = StateStore::new(aws_sdk_dynamodb::Client::new(sdk), LOCAL_TABLE);
    let (from, _) = day.month()?;
    // Sunday 00:00 UTC: no window of the example config is open from then to the demo.
    let to = day.utc(-24, 0)?;
    let mut hours = std::collections::BTreeMap::new();
    let mut by_day: std::collections::BTreeMap<(jiff::civil::Date, String), f64> =
        Default::default();
    for c in &config.clusters {
        let schedule = c.schedule();
        let mut transitions = Vec::new();
        let mut at = from;
        let mut n: u32 = 0;
        let mut last_generation = None;
        while at < to {
            let next = schedule.next_change(at, None, 40).unwrap_or(to).min(to);
            if schedule.decide(at, None).desired == Desired::Up {
                let generation = format!("history-{n}");
                last_generation = Some(generation.clone());
                for (phase, kind, when) in [
                    (Desired::Up, TransitionKind::Up, at),
                    (Desired::Down, TransitionKind::Down, next),
                ] {
                    // Mornings took 20 minutes (cluster, nodegroups, bootstrap).
                    let took = (phase == Desired::Up).then_some(20 * 60);
                    store
                        .record_timed_transition(&c.name, phase, &generation, when, "history", took)
                        .await
                        .map_err(|e| e.to_string())?;
                    transitions.push(Transition {
                        took_seconds: None,
                        kind,
                        at: when,
                        detail: String::new(),
                    });
                }
            }
            if next <= at {
                break;
            }
            at = next;
            n += 1;
        }
        // The scheduler announced every transition back then.
        if let Some(generation) = &last_generation {
            store
                .mark_announced(&c.name, Desired::Down, generation)
                .await
                .map_err(|e| e.to_string())?;
        }
        // It moved the IRSA roles to the last working day's issuer, whose provider it made.
        if !c.blueprint.irsa_roles.is_empty() {
            let previous = crate::LOCAL_PREVIOUS_ISSUER.to_string();
            store
                .record_irsa_issuers(&c.name, std::slice::from_ref(&previous))
                .await
                .map_err(|e| e.to_string())?;
            store
                .add_oidc_provider(
                    &c.name,
                    &format!("arn:aws:iam::123456789012:oidc-provider/{previous}"),
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        let days = cost_reporter::uptime::hours_by_day(
            &transitions,
            from.to_zoned(jiff::tz::TimeZone::UTC).date(),
            to,
        );
        hours.insert(c.name.clone(), days.iter().map(|d| d.1).sum());
        for (d, h) in days {
            by_day.insert((d, c.name.clone()), h);
        }
    }
    // Each network, up while any of its clusters is (its transitions as the scheduler
    // records them: one up where windows touch).
    for n in &config.networks {
        let schedules: Vec<_> = config.clusters_of(&n.name).map(|c| c.schedule()).collect();
        let key = fleet_shared::state::network_history_key(&n.name);
        let mut transitions = Vec::new();
        let mut at = from;
        let mut was_up = false;
        while at < to {
            let up = schedules
                .iter()
                .any(|s| s.decide(at, None).desired == Desired::Up);
            if up != was_up {
                let (phase, kind) = if up {
                    (Desired::Up, TransitionKind::Up)
                } else {
                    (Desired::Down, TransitionKind::Down)
                };
                store
                    .record_network_transition(&n.name, phase, at, at, "history")
                    .await
                    .map_err(|e| e.to_string())?;
                transitions.push(Transition {
                    took_seconds: None,
                    kind,
                    at,
                    detail: String::new(),
                });
                was_up = up;
            }
            let next = schedules
                .iter()
                .map(|s| s.next_change(at, None, 40).unwrap_or(to))
                .min()
                .unwrap_or(to)
                .min(to);
            if next <= at {
                break;
            }
            at = next;
        }
        if !transitions.is_empty() {
            store
                .mark_network_announced(&n.name, Desired::Down)
                .await
                .map_err(|e| e.to_string())?;
        }
        let days = cost_reporter::uptime::hours_by_day(
            &transitions,
            from.to_zoned(jiff::tz::TimeZone::UTC).date(),
            to,
        );
        hours.insert(key.clone(), days.iter().map(|d| d.1).sum());
        for (d, h) in days {
            by_day.insert((d, key.clone()), h);
        }
    }
    // The demo Monday, by the hours the demo keeps each cluster up on its UTC day.
    let monday = day.monday;
    let (midnight, next_midnight) = (day.utc(0, 0)?, day.utc(24, 0)?);
    for c in &config.clusters {
        let hours = day.expected_hours(&c.name, midnight, next_midnight)?;
        by_day.insert((monday, c.name.clone()), hours);
    }
    // A network is up while its clusters are (from just before their first node).
    for n in &config.networks {
        let mut hours: f64 = 0.0;
        for c in config.clusters_of(&n.name) {
            hours = hours.max(day.expected_hours(&c.name, midnight, next_midnight)?);
        }
        by_day.insert(
            (monday, fleet_shared::state::network_history_key(&n.name)),
            hours,
        );
    }
    let network_keys: Vec<String> = config
        .networks
        .iter()
        .map(|n| fleet_shared::state::network_history_key(&n.name))
        .collect();
    let mut days = Vec::new();
    let mut date = monday.first_of_month();
    while date <= monday {
        let up = |name: &str| {
            by_day
                .get(&(date, name.to_string()))
                .copied()
                .unwrap_or(0.0)
        };
        let mut groups: Vec<(&str, &str, f64)> = STAGING_HOURLY
            .iter()
            .filter(|_| up("staging") > 0.0)
            .map(|(service, rate)| (*service, "staging", rate * up("staging")))
            .collect();
        for key in &network_keys {
            let hours = up(key);
            if hours > 0.0 {
                for (service, rate) in NETWORK_HOURLY {
                    groups.push((service, key.as_str(), rate * hours));
                }
            }
        }
        groups.push(("Amazon Elastic Kubernetes Service", "sandbox-us", 2.4));
        if up("sandbox-us") > 0.0 {
            groups.push((
                "Amazon Elastic Compute Cloud - Compute",
                "sandbox-us",
                SANDBOX_NODES_HOURLY * up("sandbox-us"),
            ));
        }
        // The automation's own day (its functions, table, logs and bus: tagged
        // `fleet:component=automation`, no cluster), about what BENCHMARKS.md counts.
        groups.push(("AWS Lambda", "", AUTOMATION_DAILY.0));
        groups.push(("Amazon DynamoDB", "", AUTOMATION_DAILY.1));
        days.push(cost_day(date, date == monday, &groups)?);
        date = date.tomorrow().map_err(|e| e.to_string())?;
    }
    seed_costs(endpoint, days).await?;
    Ok(hours)
}

/// The example config, refusing a day its holidays would take the story from: the demo
/// needs a working Sunday night, Monday and Tuesday morning.
pub(super) fn example_config(day: &Day) -> Result<fleet_shared::config::FleetConfig, String> {
    let path = workspace_root().join("infra/fleet.example.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let config = fleet_shared::config::FleetConfig::parse(&text).map_err(|e| e.to_string())?;
    for c in &config.clusters {
        for offset in [-1, 0, 1] {
            let date = day
                .monday
                .checked_add(offset.days())
                .map_err(|e| e.to_string())?;
            if let Some(h) = c
                .holidays
                .iter()
                .find(|h| h.first <= date && date <= h.last)
            {
                return Err(format!(
                    "--date {}: {date} is a holiday of `{}` in infra/fleet.example.toml ({h}); the demo needs a working day, pick another Monday",
                    day.monday, c.name
                ));
            }
        }
    }
    Ok(config)
}
