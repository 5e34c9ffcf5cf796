//! The pre-shutdown notice: when the scheduler tells Slack that a cluster is about to go
//! down, the message it posts, and what each of its buttons asks the scheduler to do.
//!
//! Pure: the scheduler decides and posts (once per transition), `slack-commands` turns a
//! click back into the scheduler's own `up`/`down` document.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::ClusterConfig;
use crate::schedule::{Desired, Override};

/// The longest "Keep up until …" a notice offers: longer is not a snooze but a night
/// (`/fleet up` says so plainly).
pub const KEEP_UNTIL_MAX_HOURS: i64 = 12;

/// How far past the down transition "Tear down now" looks for the morning's up
/// transition: the scheduler's plan horizon.
const HORIZON_DAYS: i64 = 40;

/// A coming down transition Slack is to be told about.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The cluster's fleet name.
    pub cluster: String,
    /// When the schedule (or an expiring override) takes it down.
    pub down_at: Timestamp,
    /// Whole minutes from the decision time to `down_at`, rounded up.
    pub minutes_left: i64,
    /// The zone the message speaks in: the cluster's `timezone`, else its first uptime
    /// spec's.
    pub zone: TimeZone,
    /// "Keep up until …": the next window's start when it comes before local midnight
    /// (a lunch break bridged), else local midnight; `None` (no such button) when that
    /// is more than [`KEEP_UNTIL_MAX_HOURS`] away (a window ending at midnight).
    pub keep_until: Option<Timestamp>,
    /// "Tear down now" holds it down until here: when the schedule next wants it up
    /// (within 40 days), else a day after `down_at`.
    pub back_up_at: Timestamp,
}

/// The notice due at `now` for cluster `c` with its override `over`, if any: the
/// cluster is wanted up, not `protect`ed, has `notify_before_down_minutes` > 0, and the
/// schedule next wants it down within that many minutes. The scheduler posts each
/// (cluster, `down_at`) once.
pub fn due(c: &ClusterConfig, over: Option<&Override>, now: Timestamp) -> Option<Notice> {
    if c.protect || c.notify_before_down_minutes == 0 {
        return None;
    }
    let schedule = c.schedule();
    if schedule.decide(now, over).desired != Desired::Up {
        return None;
    }
    let down_at = schedule.next_change(now, over, 2)?;
    let seconds_left = down_at.as_second() - now.as_second();
    if seconds_left > i64::from(c.notify_before_down_minutes) * 60 {
        return None;
    }
    let zone = schedule.holiday_zone.clone();
    let back_up = schedule.next_change(down_at, over, HORIZON_DAYS);
    let midnight = down_at
        .to_zoned(zone.clone())
        .date()
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(zone.clone()).ok())
        .map(|z| z.timestamp())
        .unwrap_or(down_at);
    let until = match back_up {
        Some(t) if t < midnight => t,
        _ => midnight,
    };
    let keep_until = (until > down_at
        && until.as_second() - down_at.as_second() <= KEEP_UNTIL_MAX_HOURS * 3600)
        .then_some(until);
    Some(Notice {
        cluster: c.name.clone(),
        down_at,
        minutes_left: (seconds_left + 59) / 60,
        zone,
        keep_until,
        back_up_at: back_up.unwrap_or_else(|| down_at.checked_add(24.hours()).unwrap_or(down_at)),
    })
}

/// The lease key that makes a notice go out once: one per cluster and down transition.
pub fn lease_key(n: &Notice) -> String {
    format!("notice#{}#{}", n.cluster, n.down_at.as_second())
}

/// The three buttons' `action_id`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Button {
    /// Keep up one hour past `down_at`.
    KeepUp1h,
    /// Keep up until [`Notice::keep_until`].
    KeepUpUntil,
    /// Down now, until [`Notice::back_up_at`].
    TearDownNow,
}

impl Button {
    /// The `action_id` Slack sends back.
    pub fn action_id(self) -> &'static str {
        match self {
            Button::KeepUp1h => "keep_up_1h",
            Button::KeepUpUntil => "keep_up_until",
            Button::TearDownNow => "tear_down_now",
        }
    }

    /// The button of `action_id`, if it is one of ours.
    pub fn from_action_id(id: &str) -> Option<Button> {
        [Button::KeepUp1h, Button::KeepUpUntil, Button::TearDownNow]
            .into_iter()
            .find(|b| b.action_id() == id)
    }

    /// What the button asks for.
    pub fn desired(self) -> Desired {
        match self {
            Button::TearDownNow => Desired::Down,
            _ => Desired::Up,
        }
    }
}

/// What a button's `value` carries (JSON, well under Slack's 2,000 characters): fixed
/// when the notice is posted, so that a click that arrives twice asks for the same
/// override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonValue {
    /// The cluster.
    pub cluster: String,
    /// The transition the notice was about: a click after it is stale.
    pub down_at: Timestamp,
    /// The override's end.
    pub until: Timestamp,
}

fn local(t: Timestamp, zone: &TimeZone) -> String {
    t.to_zoned(zone.clone()).strftime("%H:%M").to_string()
}

/// `20:00`, or `midnight` for 00:00.
fn local_or_midnight(t: Timestamp, zone: &TimeZone) -> String {
    match local(t, zone).as_str() {
        "00:00" => "midnight".into(),
        other => other.into(),
    }
}

/// The zone's IANA name (`Europe/Berlin`), `UTC` for a fixed zone.
pub fn zone_name(zone: &TimeZone) -> &str {
    zone.iana_name().unwrap_or("UTC")
}

/// The notice's first line: "`staging` goes down at 20:00 Europe/Berlin (in 30 min)".
pub fn headline(n: &Notice) -> String {
    format!(
        "`{}` goes down at {} {} (in {} min)",
        n.cluster,
        local(n.down_at, &n.zone),
        zone_name(&n.zone),
        n.minutes_left
    )
}

/// The Slack message of notice `n` (incoming-webhook JSON: `text` for notifications,
/// Block Kit `blocks`). `buttons`: whether the Slack app (`[slack]`) is there to
/// answer them; without it the message only warns.
pub fn message(n: &Notice, buttons: bool) -> Value {
    let text = headline(n);
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": text},
    })];
    if buttons {
        let value = |until: Timestamp| {
            serde_json::to_string(&ButtonValue {
                cluster: n.cluster.clone(),
                down_at: n.down_at,
                until,
            })
            .unwrap_or_default()
        };
        let hour = n.down_at.checked_add(1.hours()).unwrap_or(n.down_at);
        let mut elements = vec![json!({
            "type": "button",
            "action_id": Button::KeepUp1h.action_id(),
            "text": {"type": "plain_text", "text": "Keep up 1 h"},
            "value": value(hour),
        })];
        if let Some(until) = n.keep_until {
            elements.push(json!({
                "type": "button",
                "action_id": Button::KeepUpUntil.action_id(),
                "text": {"type": "plain_text", "text": format!("Keep up until {}", local_or_midnight(until, &n.zone))},
                "value": value(until),
            }));
        }
        // Slack's confirmation dialog takes plain text only.
        let back = n.back_up_at.to_zoned(n.zone.clone());
        let back_day = if back.date() == n.down_at.to_zoned(n.zone.clone()).date() {
            String::new()
        } else {
            back.strftime(" %a").to_string()
        };
        elements.push(json!({
                    "type": "button",
                    "action_id": Button::TearDownNow.action_id(),
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Tear down now"},
                    "value": value(n.back_up_at),
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Tear down now?"},
                        "text": {"type": "plain_text", "text": format!("{} goes down now and stays down until{back_day} {} {}.", n.cluster, local(n.back_up_at, &n.zone), zone_name(&n.zone))},
                        "confirm": {"type": "plain_text", "text": "Tear down"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
        }));
        blocks.push(json!({
            "type": "actions",
            "block_id": format!("notice:{}", n.cluster),
            "elements": elements,
        }));
    }
    json!({"text": text, "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FleetConfig;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    fn cluster(extra: &str) -> ClusterConfig {
        let text = format!(
            r#"
[fleet]
region = "eu-west-1"
[[cluster]]
name = "staging"
uptime = "Mon-Fri 08:00-12:00 Europe/Berlin, Mon-Fri 13:00-20:00 Europe/Berlin"
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
        );
        let config = FleetConfig::parse(&text).expect("test config");
        config.clusters[0].clone()
    }

    // 2030-01-07 is a Monday; Berlin is UTC+1 in January.
    #[test]
    fn due_within_the_minutes_before_a_down_transition_only() {
        let c = cluster("");
        assert_eq!(
            due(&c, None, ts("2030-01-07T18:20:00Z")),
            None,
            "40 min before"
        );
        let n = due(&c, None, ts("2030-01-07T18:31:00Z")).expect("29 min before");
        assert_eq!(n.down_at, ts("2030-01-07T19:00:00Z"));
        assert_eq!(n.minutes_left, 29);
        assert_eq!(
            headline(&n),
            "`staging` goes down at 20:00 Europe/Berlin (in 29 min)"
        );
        // Friday evening: back up on Monday morning; keep-until is midnight.
        let fri = due(&c, None, ts("2030-01-11T18:45:00Z")).expect("Friday");
        assert_eq!(fri.keep_until, Some(ts("2030-01-11T23:00:00Z")));
        assert_eq!(fri.back_up_at, ts("2030-01-14T07:00:00Z"));
        // Already down (after 20:00), or not yet up: nothing to warn about.
        assert_eq!(due(&c, None, ts("2030-01-07T19:10:00Z")), None);
        assert_eq!(due(&c, None, ts("2030-01-07T06:50:00Z")), None);
    }

    #[test]
    fn the_lunch_break_is_bridged_not_the_night() {
        let c = cluster("");
        let n = due(&c, None, ts("2030-01-07T10:45:00Z")).expect("before the noon break");
        assert_eq!(n.down_at, ts("2030-01-07T11:00:00Z"));
        assert_eq!(
            n.keep_until,
            Some(ts("2030-01-07T12:00:00Z")),
            "13:00 Berlin"
        );
        assert_eq!(n.back_up_at, ts("2030-01-07T12:00:00Z"));
        let m = message(&n, true);
        let labels: Vec<&str> = m["blocks"][1]["elements"]
            .as_array()
            .expect("buttons")
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .collect();
        assert_eq!(
            labels,
            ["Keep up 1 h", "Keep up until 13:00", "Tear down now"]
        );
    }

    #[test]
    fn a_window_ending_at_midnight_offers_no_keep_until() {
        let c = cluster("").clone();
        let mut late = c.clone();
        late.uptime = Some(
            crate::schedule::Uptime::try_from("Mon-Fri 14:00-24:00 Europe/Berlin".to_string())
                .expect("uptime"),
        );
        let n = due(&late, None, ts("2030-01-07T22:45:00Z")).expect("before midnight");
        assert_eq!(n.down_at, ts("2030-01-07T23:00:00Z"));
        assert_eq!(n.keep_until, None, "not a 14-hour snooze");
        let m = message(&n, true);
        let buttons = m["blocks"][1]["elements"].as_array().expect("buttons");
        assert_eq!(buttons.len(), 2);
        assert_eq!(
            buttons[1]["confirm"]["text"]["text"],
            "staging goes down now and stays down until 14:00 Europe/Berlin."
        );
        // Friday's tear-down lasts until Monday, and says so.
        let fri = due(&c, None, ts("2030-01-11T18:45:00Z")).expect("Friday");
        let m = message(&fri, true);
        assert_eq!(
            m["blocks"][1]["elements"][2]["confirm"]["text"]["text"],
            "staging goes down now and stays down until Mon 08:00 Europe/Berlin."
        );
    }

    #[test]
    fn off_protected_and_overridden_clusters_get_none() {
        let at = ts("2030-01-07T18:45:00Z");
        assert!(due(&cluster("notify_before_down_minutes = 0"), None, at).is_none());
        assert!(due(&cluster("protect = true"), None, at).is_none());
        let kept = Override {
            desired: Desired::Up,
            until: ts("2030-01-07T20:00:00Z"),
            reason: "demo".into(),
            set_at: at,
        };
        let c = cluster("");
        assert!(due(&c, Some(&kept), at).is_none(), "kept up past 20:00");
        // The override's own end is a down transition of its own, warned about in turn.
        let later = due(&c, Some(&kept), ts("2030-01-07T19:40:00Z")).expect("the new end");
        assert_eq!(later.down_at, ts("2030-01-07T20:00:00Z"));
        assert_ne!(
            lease_key(&later),
            lease_key(&due(&c, None, at).expect("due"))
        );
    }

    #[test]
    fn buttons_carry_fixed_overrides_and_can_be_left_out() {
        let n = due(&cluster(""), None, ts("2030-01-07T18:45:00Z")).expect("due");
        let m = message(&n, true);
        let buttons = m["blocks"][1]["elements"]
            .as_array()
            .expect("buttons")
            .clone();
        let values: Vec<ButtonValue> = buttons
            .iter()
            .map(|b| serde_json::from_str(b["value"].as_str().unwrap_or("")).expect("value"))
            .collect();
        assert_eq!(
            values[0].until,
            ts("2030-01-07T20:00:00Z"),
            "an hour past 20:00"
        );
        assert_eq!(values[1].until, ts("2030-01-07T23:00:00Z"), "midnight");
        assert_eq!(
            values[2].until,
            ts("2030-01-08T07:00:00Z"),
            "tomorrow 08:00"
        );
        assert!(values.iter().all(|v| v.down_at == n.down_at));
        let ids: Vec<Option<Button>> = buttons
            .iter()
            .map(|b| Button::from_action_id(b["action_id"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(
            ids,
            [
                Some(Button::KeepUp1h),
                Some(Button::KeepUpUntil),
                Some(Button::TearDownNow)
            ]
        );
        assert_eq!(
            message(&n, false)["blocks"].as_array().map(Vec::len),
            Some(1)
        );
    }
}
