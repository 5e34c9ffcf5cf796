//! What Slack posts (form-encoded, `application/x-www-form-urlencoded`): a slash command's
//! fields, or an interactive `payload=<JSON>` (Slack, "Handling user interaction").
//! Fields Slack adds later are ignored; those we act on are required.

use serde::Deserialize;

/// A slash command (`/fleet up staging 2h`), as Slack posts it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SlashCommand {
    /// The command typed (`/fleet`).
    pub command: String,
    /// Everything after the command.
    #[serde(default)]
    pub text: String,
    /// Who typed it (`U012ABCDEF`).
    pub user_id: String,
    /// Their user name (display only: the id is what is checked).
    #[serde(default)]
    pub user_name: String,
    /// Where (`C012ABCDEF`).
    pub channel_id: String,
    /// Where later answers go (30 minutes, 5 posts).
    pub response_url: String,
}

/// A user, in an interactive payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct User {
    /// `U012ABCDEF`.
    pub id: String,
    /// The user name, when Slack sends one.
    #[serde(default)]
    pub username: Option<String>,
    /// The older field of the same, when Slack sends one.
    #[serde(default)]
    pub name: Option<String>,
}

/// The channel a clicked message is in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Channel {
    /// `C012ABCDEF`.
    pub id: String,
}

/// One clicked element.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Action {
    /// Which button (`keep_up_1h`).
    pub action_id: String,
    /// The button's value (a notice's [`fleet_shared::notice::ButtonValue`] JSON).
    #[serde(default)]
    pub value: Option<String>,
}

/// A `block_actions` payload: a button clicked on a message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BlockActions {
    /// Who clicked.
    pub user: User,
    /// Where; absent for messages outside a channel (then no channel is allowed).
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Where answers go; `replace_original` there updates the clicked message.
    pub response_url: String,
    /// What was clicked (one element for a button).
    pub actions: Vec<Action>,
}

/// A request from Slack.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackRequest {
    /// `/fleet …`.
    Slash(SlashCommand),
    /// A notice's button.
    Click(BlockActions),
}

#[derive(Deserialize)]
struct Interactive {
    payload: String,
}

/// Decodes a (signature-checked) body.
///
/// # Errors
/// One line naming what is wrong: not form-encoded, a missing field, a `payload` that
/// is not JSON, an interactive type other than `block_actions`.
pub fn parse(body: &[u8]) -> Result<SlackRequest, String> {
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| format!("not a form-encoded body: {e}"))?;
    if form.iter().any(|(k, _)| k == "payload") {
        let Interactive { payload } =
            serde_urlencoded::from_bytes(body).map_err(|e| format!("payload: {e}"))?;
        let value: serde_json::Value =
            serde_json::from_str(&payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        return match value.get("type").and_then(serde_json::Value::as_str) {
            Some("block_actions") => serde_json::from_value(value)
                .map(SlackRequest::Click)
                .map_err(|e| format!("payload: {e}")),
            Some(other) => Err(format!(
                "payload type `{other}` is not handled (only block_actions: the notice's buttons)"
            )),
            None => Err("payload has no `type`".into()),
        };
    }
    serde_urlencoded::from_bytes(body)
        .map(SlackRequest::Slash)
        .map_err(|e| format!("not a slash command: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slash_command_as_slack_sends_it() {
        // Slack's documented example body, with its extra fields.
        let body = b"token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&enterprise_id=E0001&enterprise_name=Globular%20Construct%20Inc&channel_id=C2147483705&channel_name=test&user_id=U2147483697&user_name=Steve&command=/weather&text=94070&response_url=https://hooks.slack.com/commands/1234/5678&trigger_id=13345224609.738474920.8088930838d88f008e0&api_app_id=A123456";
        let Ok(SlackRequest::Slash(s)) = parse(body) else {
            panic!("a slash command");
        };
        assert_eq!(s.command, "/weather");
        assert_eq!(s.text, "94070");
        assert_eq!(s.user_id, "U2147483697");
        assert_eq!(s.channel_id, "C2147483705");
        assert_eq!(s.response_url, "https://hooks.slack.com/commands/1234/5678");
    }

    #[test]
    fn a_button_click_as_slack_sends_it() {
        let payload = serde_json::json!({
            "type": "block_actions",
            "user": {"id": "U012ABCDEF", "username": "alice", "name": "alice", "team_id": "T0001"},
            "api_app_id": "A0001", "token": "x", "trigger_id": "1.2.3",
            "team": {"id": "T0001", "domain": "example"},
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C012ABCDEF", "is_ephemeral": false},
            "channel": {"id": "C012ABCDEF", "name": "ops"},
            "message": {"type": "message", "text": "x", "ts": "1700000000.000100"},
            "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
            "actions": [{"action_id": "keep_up_1h", "block_id": "notice:staging", "text": {"type": "plain_text", "text": "Keep up 1 h"},
                         "value": "{}", "type": "button", "action_ts": "1700000001.000200"}]
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        let Ok(SlackRequest::Click(c)) = parse(body.as_bytes()) else {
            panic!("a click");
        };
        assert_eq!(c.user.id, "U012ABCDEF");
        assert_eq!(c.channel.map(|c| c.id).as_deref(), Some("C012ABCDEF"));
        assert_eq!(c.actions[0].action_id, "keep_up_1h");
    }

    #[test]
    fn malformed_bodies_say_why() {
        assert!(parse(b"payload=%7Bnot%20json")
            .unwrap_err()
            .contains("not JSON"));
        assert!(parse(b"payload=%7B%22type%22%3A%22view_submission%22%7D")
            .unwrap_err()
            .contains("view_submission"));
        assert!(parse(b"text=up").unwrap_err().contains("slash command"));
        assert!(parse(b"{\"json\": true}").is_err());
    }
}
