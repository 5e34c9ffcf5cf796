//! An answer as a Slack message, for documents that carry `reply_to` (what
//! `slack-commands` passes on): overrides said in the cluster's own time zone and
//! posted to the channel, status and plan as a table only the asker sees, errors
//! as one line.

use fleet_shared::config::FleetConfig;
use fleet_shared::notice::zone_name;
use fleet_shared::Result;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::request::{ReplyTo, Request};

/// The message for `answer` to `request` (`None`: the document did not parse), for a
/// Slack `response_url`: `replace_original` as `to` asks, overrides `in_channel`
/// (everyone sees who did what), the rest `ephemeral`.
pub fn message(
    config: &FleetConfig,
    request: Option<&Request>,
    answer: &Result<Value>,
    to: &ReplyTo,
) -> Value {
    let (text, public) = match (request, answer) {
        (
            Some(Request::Override {
                cluster,
                not_after: Some(t),
                ..
            }),
            Err(fleet_shared::FleetError::BadRequest { field, .. }),
        ) if field == "not_after" => (
            format!(
                "`{cluster}` already went down at {} as scheduled: this notice is over. `/fleet up {cluster} 2h` brings it back.",
                local_time(config, cluster, &t.to_string())
            ),
            false,
        ),
        (_, Err(e)) => (format!(":warning: {}", escape(&e.to_string())), false),
        (Some(Request::Override { .. }), Ok(a)) => (override_set(config, a), true),
        (Some(Request::Clear { .. }), Ok(a)) => (override_cleared(a), true),
        (Some(Request::Status { .. }), Ok(a)) => (
            table(
                a,
                &["name", "desired", "actual", "next_change"],
                "NEXT CHANGE",
            ),
            false,
        ),
        (Some(Request::Plan { .. }), Ok(a)) => (
            table(a, &["name", "desired", "actual", "next_step"], "NEXT STEP"),
            false,
        ),
        (_, Ok(_)) => ("Done.".to_string(), false),
    };
    let mut m = json!({"text": text});
    if to.replace_original {
        m["replace_original"] = json!(true);
    } else {
        m["response_type"] = json!(if public { "in_channel" } else { "ephemeral" });
    }
    m
}

/// Slack's three control characters escaped (Slack, "Formatting text for app
/// surfaces"): text a person typed (a reason) cannot ping `<!channel>` or forge a link.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// `20:00 Europe/Berlin (Mon 7 Jan)` in cluster `name`'s zone; the RFC 3339 text when
/// it is not a timestamp.
fn local_time(config: &FleetConfig, name: &str, at: &str) -> String {
    let zone = config
        .cluster(name)
        .map(|c| c.schedule().holiday_zone)
        .unwrap_or(jiff::tz::TimeZone::UTC);
    match at.parse::<Timestamp>() {
        Ok(t) => {
            let z = t.to_zoned(zone.clone());
            format!(
                "{} {} ({})",
                z.strftime("%H:%M"),
                zone_name(&zone),
                z.strftime("%a %-d %b")
            )
        }
        Err(_) => at.to_string(),
    }
}

fn progress(a: &Value) -> String {
    let step = str_at(a, "/reconcile/step");
    match a.pointer("/reconcile/error").and_then(Value::as_str) {
        Some(e) => format!(" The scheduler's step `{step}` failed: {e}"),
        None if step.is_empty() || step == "none" => String::new(),
        None => format!(" Now: `{step}`."),
    }
}

fn override_set(config: &FleetConfig, a: &Value) -> String {
    let cluster = str_at(a, "/cluster");
    let desired = str_at(a, "/override/desired");
    let verb = if desired == "up" {
        "stays up"
    } else {
        "goes down and stays down"
    };
    format!(
        ":white_check_mark: `{cluster}` {verb} until {}: {}.{}",
        local_time(config, cluster, str_at(a, "/override/until")),
        escape(str_at(a, "/override/reason")),
        progress(a)
    )
}

fn override_cleared(a: &Value) -> String {
    let cluster = str_at(a, "/cluster");
    if a.get("cleared").and_then(Value::as_bool) != Some(true) {
        return format!("`{cluster}` had no override: the schedule decides.");
    }
    format!(
        ":white_check_mark: `{cluster}`: override cleared, the schedule decides again ({}: {}).{}",
        str_at(a, "/reconcile/desired"),
        escape(str_at(a, "/reconcile/reason")),
        progress(a)
    )
}

/// The rows of `a.clusters` as a fixed-width table (Slack shows code blocks in a
/// monospace font), `fields` in order; the last column is headed `last`.
fn table(a: &Value, fields: &[&str], last: &str) -> String {
    let rows: Vec<Vec<String>> = a
        .get("clusters")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    fields
                        .iter()
                        .map(|f| match r.get(*f) {
                            Some(Value::String(s)) => s.clone(),
                            Some(Value::Null) | None => "-".into(),
                            Some(other) => other.to_string(),
                        })
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    let mut head: Vec<String> = fields[..fields.len() - 1]
        .iter()
        .map(|f| f.to_uppercase())
        .collect();
    head.push(last.into());
    let widths: Vec<usize> = (0..fields.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(&head)];
    out.extend(rows.iter().map(|r| line(r)));
    format!("```\n{}\n```", out.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FleetConfig {
        FleetConfig::parse(
            r#"
[fleet]
region = "eu-west-1"
[[cluster]]
name = "staging"
uptime = "Mon-Fri 08:00-20:00 Europe/Berlin"
[cluster.blueprint]
version = "1.33"
role_arn = "arn:aws:iam::123456789012:role/eks"
subnet_ids = ["subnet-a", "subnet-b"]
[[cluster.blueprint.nodegroup]]
name = "spot"
instance_types = ["t3.large"]
node_role_arn = "arn:aws:iam::123456789012:role/eks-node"
min_size = 1
max_size = 3
desired_size = 2
"#,
        )
        .expect("test config")
    }

    fn to(replace: bool) -> ReplyTo {
        ReplyTo {
            url: "https://hooks.slack.com/actions/x".into(),
            replace_original: replace,
        }
    }

    #[test]
    fn an_override_says_who_and_until_when_in_local_time() {
        let request = Request::Clear {
            cluster: "staging".into(),
            reason: None,
        };
        let set = crate::request::parse(
            &json!({"action":"up","cluster":"staging","for":"1h","reason":"x"}),
        )
        .expect("doc");
        let answer = json!({"cluster":"staging","override":{"desired":"up","until":"2030-01-07T20:00:00Z",
            "reason":"keep up 1 h (by @alice (U012ABCDEF) via Slack)","set_at":"2030-01-07T18:40:00Z"},
            "reconcile":{"name":"staging","desired":"up","step":"none","result":"steady"}});
        let m = message(&config(), Some(&set), &Ok(answer), &to(true));
        assert_eq!(
            m["text"],
            ":white_check_mark: `staging` stays up until 21:00 Europe/Berlin (Mon 7 Jan): keep up 1 h (by @alice (U012ABCDEF) via Slack)."
        );
        assert_eq!(m["replace_original"], true);
        let none = json!({"cluster":"staging","cleared":false,"override":null,"reconcile":{}});
        let m = message(&config(), Some(&request), &Ok(none), &to(false));
        assert_eq!(
            escape("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
        assert_eq!(m["response_type"], "in_channel");
        assert!(m["text"].as_str().unwrap_or("").contains("had no override"));
    }

    #[test]
    fn errors_and_tables_are_for_the_asker_only() {
        let e: Result<Value> = Err(fleet_shared::FleetError::bad_request(
            "cluster",
            "unknown cluster `stagng`",
        ));
        let m = message(&config(), None, &e, &to(false));
        assert_eq!(m["response_type"], "ephemeral");
        assert!(m["text"].as_str().unwrap_or("").contains("stagng"));
        let status = Request::Status { cluster: None };
        let answer = json!({"at":"x","clusters":[{"name":"staging","desired":"up","actual":"ACTIVE, 2 nodes","next_change":"2030-01-07T19:00:00Z"}]});
        let m = message(&config(), Some(&status), &Ok(answer), &to(false));
        let text = m["text"].as_str().unwrap_or("");
        assert!(text.starts_with("```\nNAME     DESIRED  ACTUAL"), "{text}");
        assert!(
            text.contains("staging  up       ACTIVE, 2 nodes  2030-01-07T19:00:00Z"),
            "{text}"
        );
    }
}
