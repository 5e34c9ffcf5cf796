//! `[slack]`: the Slack app behind `/fleet` and the pre-shutdown notice's buttons
//! (the `slack-commands` function).

use serde::Deserialize;

use super::SecretRef;
use crate::error::{FleetError, Result};

/// `[slack]`: who may act on the fleet from Slack, and the secret that proves a request
/// came from Slack.
#[derive(Debug, Clone, Deserialize)]
pub struct SlackConfig {
    /// The Slack app's signing secret (`ssm:` in a deployed config): every request's
    /// `X-Slack-Signature` is checked with it.
    pub signing_secret: SecretRef,
    /// Slack user ids (`U012ABCDEF`, or `W…` in Enterprise Grid) who may act; empty:
    /// anyone in `allowed_channels`.
    #[serde(default)]
    pub allowed_users: Vec<String>,
    /// Channel ids (`C…`, private `G…`, direct messages `D…`) commands and buttons are
    /// taken from; empty: any channel, for `allowed_users`.
    #[serde(default)]
    pub allowed_channels: Vec<String>,
}

impl SlackConfig {
    pub(super) fn validate(&self) -> Result<()> {
        if self.allowed_users.is_empty() && self.allowed_channels.is_empty() {
            return Err(FleetError::config(
                "slack.allowed_users",
                "give allowed_users or allowed_channels (or both): with neither, anyone in the workspace could take clusters down",
            ));
        }
        check_ids("slack.allowed_users", &self.allowed_users, &['U', 'W'])?;
        check_ids(
            "slack.allowed_channels",
            &self.allowed_channels,
            &['C', 'G', 'D'],
        )
    }

    /// Whether Slack user `user` in channel `channel` may act: the user is listed (or no
    /// user is) and the channel is listed (or no channel is).
    pub fn allows(&self, user: &str, channel: &str) -> bool {
        let listed = |list: &[String], id: &str| list.is_empty() || list.iter().any(|x| x == id);
        listed(&self.allowed_users, user) && listed(&self.allowed_channels, channel)
    }
}

/// Slack ids are an upper-case letter naming the kind, then upper-case letters and digits
/// (8 to 20 in all: `U012ABCDEF`); a name (`@alice`, `#ops`) is not an id.
fn check_ids(key: &str, ids: &[String], kinds: &[char]) -> Result<()> {
    for (i, id) in ids.iter().enumerate() {
        let ok = (8..=20).contains(&id.len())
            && id.starts_with(kinds)
            && id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !ok {
            let starts: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
            return Err(FleetError::config(
                format!("{key}[{i}]"),
                format!(
                    "`{id}` is not a Slack id (one starting with {}, such as {}012ABCDEF: in Slack, a profile's or channel's \"Copy ID\")",
                    starts.join(", "),
                    kinds[0]
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slack(users: &[&str], channels: &[&str]) -> SlackConfig {
        SlackConfig {
            signing_secret: SecretRef::Ssm("/fleet/slack-signing-secret".into()),
            allowed_users: users.iter().map(|s| s.to_string()).collect(),
            allowed_channels: channels.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn ids_are_checked_and_someone_must_be_allowed() {
        assert!(slack(&[], &[]).validate().is_err());
        assert!(slack(&["U012ABCDEF"], &[]).validate().is_ok());
        assert!(slack(&[], &["C012ABCDEF", "G012ABCDEF"]).validate().is_ok());
        let e = slack(&["@alice"], &[]).validate().expect_err("a name");
        assert!(e.to_string().contains("slack.allowed_users[0]"), "{e}");
        assert!(slack(&[], &["U012ABCDEF"]).validate().is_err());
        assert!(slack(&["u012abcdef"], &[]).validate().is_err());
    }

    #[test]
    fn users_and_channels_both_hold() {
        let s = slack(&["U012ABCDEF"], &["C012ABCDEF"]);
        assert!(s.allows("U012ABCDEF", "C012ABCDEF"));
        assert!(!s.allows("U999ZZZZZZ", "C012ABCDEF"));
        assert!(!s.allows("U012ABCDEF", "C999ZZZZZZ"));
        let anyone_in = slack(&[], &["C012ABCDEF"]);
        assert!(anyone_in.allows("U999ZZZZZZ", "C012ABCDEF"));
        assert!(!anyone_in.allows("U999ZZZZZZ", "D012ABCDEF"));
        let these_anywhere = slack(&["U012ABCDEF"], &[]);
        assert!(these_anywhere.allows("U012ABCDEF", "D0ANYWHERE"));
    }
}
