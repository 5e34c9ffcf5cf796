//! What a command or a click asks for, decided without I/O: the scheduler's own document
//! to hand on (so that Slack acts through the scheduler's manual actions, one
//! implementation), or an answer at once (help, a refusal, a stale button).

use fleet_shared::config::{FleetConfig, SlackConfig};
use fleet_shared::notice::{zone_name, Button, ButtonValue};
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::request::{BlockActions, SlashCommand};

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Hand `document` (a scheduler document) on; tell the person `ack` at once.
    Dispatch {
        /// `{"action": "up", "cluster": …, "until": …, "reason": …}` and the like.
        document: Value,
        /// "On it: …", shown while the scheduler works.
        ack: String,
    },
    /// Answer at once, and do nothing else.
    Answer(String),
}

/// Who asked, as reasons and the audit trail keep it: "by @alice (U012ABCDEF) via Slack".
pub fn who(user_id: &str, user_name: &str) -> String {
    if user_name.is_empty() {
        format!("by {user_id} via Slack")
    } else {
        format!("by @{user_name} ({user_id}) via Slack")
    }
}

/// The polite refusal for someone not allowed.
pub fn not_allowed(user_id: &str) -> String {
    format!(
        "Sorry <@{user_id}>, you may not act on the fleet from here: only the people and channels in the fleet config's `[slack]` may (`allowed_users`, `allowed_channels`). Ask whoever runs the fleet to add you."
    )
}

/// Whether `user` may act in `channel` (`None`: a click outside any channel, allowed
/// only when no channel is listed).
pub fn allowed(slack: &SlackConfig, user: &str, channel: Option<&str>) -> bool {
    match channel {
        Some(c) => slack.allows(user, c),
        None => slack.allowed_channels.is_empty() && slack.allows(user, ""),
    }
}

/// The usage text (durations without spaces: the text is split on them).
fn help(command: &str) -> String {
    format!(
        "Usage:\n`{command} status [cluster]` · `{command} plan [cluster]`\n`{command} up <cluster> <for> [reason]` · `{command} down <cluster> <for> [reason]` (for: `3h`, `90m`, `2d`)\n`{command} clear <cluster>`"
    )
}

fn known(config: &FleetConfig, name: &str) -> Result<(), String> {
    if config.cluster(name).is_some() {
        return Ok(());
    }
    let names: Vec<String> = config
        .clusters
        .iter()
        .map(|c| format!("`{}`", c.name))
        .collect();
    Err(format!(
        "There is no cluster `{name}` in the fleet. Clusters: {}.",
        names.join(", ")
    ))
}

/// `/fleet …`: the scheduler document it asks for, or the answer.
pub fn slash(config: &FleetConfig, cmd: &SlashCommand) -> Decision {
    let words: Vec<&str> = cmd.text.split_whitespace().collect();
    let by = who(&cmd.user_id, &cmd.user_name);
    let answer = |text: String| Decision::Answer(text);
    match words.as_slice() {
        [] | ["help"] => answer(help(&cmd.command)),
        [verb @ ("status" | "plan"), rest @ ..] if rest.len() <= 1 => {
            let mut document = json!({"action": verb});
            if let Some(name) = rest.first() {
                if let Err(e) = known(config, name) {
                    return answer(e);
                }
                document["cluster"] = json!(name);
            }
            Decision::Dispatch {
                document,
                ack: format!("Asking the scheduler for the {verb}…"),
            }
        }
        [verb @ ("up" | "down"), name, duration, reason @ ..] => {
            if let Err(e) = known(config, name) {
                return answer(e);
            }
            if *verb == "down" && config.cluster(name).is_some_and(|c| c.protect) {
                return answer(format!(
                    "`{name}` has `protect = true`: it is never taken down."
                ));
            }
            let positive = duration
                .parse::<jiff::Span>()
                .is_ok_and(|s| s.is_positive());
            if !positive {
                return answer(format!(
                    "`{duration}` is not a duration: give one such as `3h`, `90m` or `2d`.\n{}",
                    help(&cmd.command)
                ));
            }
            let why = if reason.is_empty() {
                format!("{verb} for {duration}")
            } else {
                reason.join(" ")
            };
            Decision::Dispatch {
                document: json!({"action": verb, "cluster": name, "for": duration,
                    "reason": format!("{why} ({by})")}),
                ack: format!("On it: `{name}` {verb} for {duration}…"),
            }
        }
        ["clear", name] => {
            if let Err(e) = known(config, name) {
                return answer(e);
            }
            Decision::Dispatch {
                document: json!({"action": "clear", "cluster": name,
                    "reason": format!("clear ({by})")}),
                ack: format!("On it: clearing `{name}`'s override…"),
            }
        }
        _ => answer(format!(
            "I did not understand `{} {}`.\n{}",
            cmd.command,
            cmd.text.trim(),
            help(&cmd.command)
        )),
    }
}

/// A notice's button clicked at `now` (decision time): the override it carries, or why
/// not. A click at or after the transition it was about is stale: the cluster already
/// went down (or is going), and keeping it "up" would bring it back, which `/fleet up`
/// says plainly instead.
pub fn click(config: &FleetConfig, click: &BlockActions, now: Timestamp) -> Decision {
    let Some(action) = click.actions.first() else {
        return Decision::Answer("That click carried no action.".into());
    };
    let Some(button) = Button::from_action_id(&action.action_id) else {
        return Decision::Answer(format!("`{}` is not a button I know.", action.action_id));
    };
    let value: Option<ButtonValue> = action
        .value
        .as_deref()
        .and_then(|v| serde_json::from_str(v).ok());
    let Some(value) = value else {
        return Decision::Answer("That button carried no notice I can read.".into());
    };
    if let Err(e) = known(config, &value.cluster) {
        return Decision::Answer(e);
    }
    let zone = config
        .cluster(&value.cluster)
        .map(|c| c.schedule().holiday_zone)
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let local = |t: Timestamp| {
        format!(
            "{} {}",
            t.to_zoned(zone.clone()).strftime("%H:%M"),
            zone_name(&zone)
        )
    };
    let name = &value.cluster;
    if now >= value.down_at {
        return Decision::Answer(format!(
            "`{name}` already went down at {} as scheduled: this notice is over. `/fleet up {name} 2h` brings it back.",
            local(value.down_at)
        ));
    }
    let user_name = click
        .user
        .username
        .as_deref()
        .or(click.user.name.as_deref())
        .unwrap_or("");
    let by = who(&click.user.id, user_name);
    let (what, ack) = match button {
        Button::KeepUp1h => (
            "keep up 1 h".to_string(),
            format!("keep `{name}` up until {}", local(value.until)),
        ),
        Button::KeepUpUntil => (
            format!("keep up until {}", local(value.until)),
            format!("keep `{name}` up until {}", local(value.until)),
        ),
        Button::TearDownNow => (
            "tear down now".to_string(),
            format!("tear `{name}` down now"),
        ),
    };
    let action = match button.desired() {
        fleet_shared::schedule::Desired::Up => "up",
        fleet_shared::schedule::Desired::Down => "down",
    };
    Decision::Dispatch {
        // The scheduler refuses it too once the transition came: the click may wait in
        // Lambda's queue while a tick runs.
        document: json!({"action": action, "cluster": name, "until": value.until.to_string(),
            "reason": format!("{what} ({by})"), "not_after": value.down_at.to_string()}),
        ack: format!(
            ":hourglass_flowing_sand: <@{}> asked to {ack}…",
            click.user.id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Action, Channel, User};

    fn config() -> FleetConfig {
        let cluster = |name: &str, extra: &str| {
            format!(
                r#"
[[cluster]]
name = "{name}"
uptime = "Mon-Fri 08:00-20:00 Europe/Berlin"
{extra}
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
"#
            )
        };
        let text = format!(
            "[fleet]\nregion = \"eu-west-1\"\n[slack]\nsigning_secret = \"ssm:/fleet/slack-signing-secret\"\nallowed_users = [\"U012ABCDEF\"]\n{}{}",
            cluster("staging", ""),
            cluster("production", "protect = true")
        );
        FleetConfig::parse(&text).expect("test config")
    }

    fn cmd(text: &str) -> SlashCommand {
        SlashCommand {
            command: "/fleet".into(),
            text: text.into(),
            user_id: "U012ABCDEF".into(),
            user_name: "alice".into(),
            channel_id: "C012ABCDEF".into(),
            response_url: "https://hooks.slack.com/commands/1/2".into(),
        }
    }

    fn doc(d: Decision) -> Value {
        match d {
            Decision::Dispatch { document, .. } => document,
            Decision::Answer(a) => panic!("answered: {a}"),
        }
    }

    fn answer(d: Decision) -> String {
        match d {
            Decision::Answer(a) => a,
            Decision::Dispatch { document, .. } => panic!("dispatched {document}"),
        }
    }

    #[test]
    fn slash_commands_become_the_schedulers_documents() {
        let c = config();
        assert_eq!(doc(slash(&c, &cmd("status"))), json!({"action":"status"}));
        assert_eq!(
            doc(slash(&c, &cmd("plan staging"))),
            json!({"action":"plan","cluster":"staging"})
        );
        assert_eq!(
            doc(slash(&c, &cmd("up staging 3h demo for the customer"))),
            json!({"action":"up","cluster":"staging","for":"3h",
                "reason":"demo for the customer (by @alice (U012ABCDEF) via Slack)"})
        );
        assert_eq!(
            doc(slash(&c, &cmd("down staging 2d"))),
            json!({"action":"down","cluster":"staging","for":"2d",
                "reason":"down for 2d (by @alice (U012ABCDEF) via Slack)"})
        );
        assert_eq!(
            doc(slash(&c, &cmd("clear staging"))),
            json!({"action":"clear","cluster":"staging","reason":"clear (by @alice (U012ABCDEF) via Slack)"})
        );
    }

    #[test]
    fn slash_mistakes_are_answered_not_sent() {
        let c = config();
        assert!(answer(slash(&c, &cmd("up stagng 3h"))).contains("no cluster `stagng`"));
        assert!(answer(slash(&c, &cmd("up staging 3x"))).contains("`3x` is not a duration"));
        assert!(answer(slash(&c, &cmd("up staging -3h"))).contains("not a duration"));
        assert!(answer(slash(&c, &cmd("down production 1h"))).contains("protect = true"));
        assert!(answer(slash(&c, &cmd("reboot staging"))).contains("did not understand"));
        assert!(answer(slash(&c, &cmd(""))).contains("Usage"));
    }

    fn clicked(action_id: &str, value: &str) -> BlockActions {
        BlockActions {
            user: User {
                id: "U012ABCDEF".into(),
                username: Some("alice".into()),
                name: None,
            },
            channel: Some(Channel {
                id: "C012ABCDEF".into(),
            }),
            response_url: "https://hooks.slack.com/actions/1/2".into(),
            actions: vec![Action {
                action_id: action_id.into(),
                value: Some(value.into()),
            }],
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("ts")
    }

    #[test]
    fn a_button_asks_for_the_override_it_carries_until_its_moment_passed() {
        let c = config();
        let value = r#"{"cluster":"staging","down_at":"2030-01-07T19:00:00Z","until":"2030-01-07T20:00:00Z"}"#;
        let before = ts("2030-01-07T18:45:00Z");
        assert_eq!(
            doc(click(&c, &clicked("keep_up_1h", value), before)),
            json!({"action":"up","cluster":"staging","until":"2030-01-07T20:00:00Z",
                "reason":"keep up 1 h (by @alice (U012ABCDEF) via Slack)",
                "not_after":"2030-01-07T19:00:00Z"})
        );
        let down = doc(click(&c, &clicked("tear_down_now", value), before));
        assert_eq!(down["action"], "down");
        assert_eq!(
            down["reason"],
            "tear down now (by @alice (U012ABCDEF) via Slack)"
        );
        let late = answer(click(
            &c,
            &clicked("keep_up_1h", value),
            ts("2030-01-07T19:00:00Z"),
        ));
        assert!(
            late.contains("already went down at 20:00 Europe/Berlin"),
            "{late}"
        );
        assert!(answer(click(&c, &clicked("reboot", value), before)).contains("not a button"));
        assert!(answer(click(&c, &clicked("keep_up_1h", "{"), before)).contains("no notice"));
        let gone = value.replace("staging", "old");
        assert!(
            answer(click(&c, &clicked("keep_up_1h", &gone), before)).contains("no cluster `old`")
        );
    }

    #[test]
    fn clicks_outside_a_channel_need_no_channel_list() {
        let c = config();
        let slack = c.slack.as_ref().expect("slack");
        assert!(allowed(slack, "U012ABCDEF", None));
        assert!(!allowed(slack, "U999ZZZZZZ", Some("C012ABCDEF")));
    }
}
