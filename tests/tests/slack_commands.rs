//! Slack end to end: the scheduler's pre-shutdown notice in the fake Slack, its buttons
//! clicked as Slack posts clicks (signed, form-encoded `payload=`), the documents handed
//! to the scheduler (as the async invoke would) and the outcomes in the fake Slack's
//! `response_url`s; slash commands; signatures Slack would not send refused.
//!
//! Decision times are fixed (January 2030, Berlin on UTC+1); Slack's signature
//! timestamps are real time, as Slack's are.

use std::sync::{Arc, Mutex};

use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::notify::Responder;
use fleet_shared::runner::Invocation;
use fleet_shared::schedule::Desired;
use fleet_tests::fakes::slack::FakeSlack;
use fleet_tests::fixtures::dora::function_url_request;
use fleet_tests::fixtures::scheduler::{cluster_toml, ts, SchedulerFixture};
use jiff::Timestamp;
use serde_json::{json, Value};
use slack_commands::signature::sign;
use slack_commands::{Dispatch, SlackCommands};

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const ALICE: &str = "U012ABCDEF";
const MALLORY: &str = "U0MALLORY9";

/// Records what slack-commands hands on; the test runs it through the scheduler, as
/// Lambda's asynchronous invoke would, when it chooses (and twice, if it likes).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Value>>>);

impl Dispatch for Recorder {
    async fn dispatch(&self, document: Value) -> fleet_shared::Result<()> {
        if let Ok(mut d) = self.0.lock() {
            d.push(document);
        }
        Ok(())
    }
}

impl Recorder {
    fn take(&self) -> Vec<Value> {
        self.0
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    }
}

struct World {
    fx: SchedulerFixture,
    slack_app: SlackCommands<Recorder>,
    handed: Recorder,
    name: String,
}

const TAIL: &str = "\n[slack]\nsigning_secret = \"ssm:/fleet/slack-signing-secret\"\nallowed_users = [\"U012ABCDEF\"]\n";

async fn world() -> World {
    let uptime = "Mon-Fri 08:00-20:00 Europe/Berlin";
    let mut fx =
        SchedulerFixture::start_with(&[cluster_toml("destroy", uptime, "")], TAIL, None).await;
    fx.scheduler.responder = Responder::new(fx.slack.base.clone());
    let name = fx.names[0].clone();
    let config: FleetConfig = (*fx.scheduler.config).clone();
    let handed = Recorder::default();
    let slack_app = SlackCommands::new(
        Arc::new(config),
        Secret::new(SIGNING_SECRET.to_string()),
        handed.clone(),
        Responder::new(fx.slack.base.clone()),
    )
    .expect("slack-commands");
    World {
        fx,
        slack_app,
        handed,
        name,
    }
}

/// A Function URL request carrying `body` as Slack signs it, `skew` seconds off now.
fn signed(body: &str, skew: i64) -> Value {
    let at = Timestamp::now().as_second() + skew;
    let sig = sign(SIGNING_SECRET.as_bytes(), at, body.as_bytes());
    function_url_request(
        "/",
        "",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-slack-request-timestamp", &at.to_string()),
            ("x-slack-signature", &sig),
        ],
        body.as_bytes(),
        false,
    )
}

fn click_body(user: &str, button: &Value, response_url: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": if user == ALICE { "alice" } else { "mallory" }, "team_id": "T000"},
        "api_app_id": "A000", "token": "legacy", "trigger_id": "1.2.3",
        "team": {"id": "T000", "domain": "example"},
        "container": {"type": "message", "message_ts": "1893456000.000100", "channel_id": "C012ABCDEF", "is_ephemeral": false},
        "channel": {"id": "C012ABCDEF", "name": "platform"},
        "message": {"type": "message", "text": "notice", "ts": "1893456000.000100"},
        "response_url": response_url,
        "actions": [{
            "type": "button", "block_id": button["block_id"], "action_id": button["action_id"],
            "text": button["text"], "value": button["value"], "action_ts": "1893456001.000200",
        }],
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form")
}

fn slash_body(user: &str, text: &str, response_url: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "legacy"),
        ("team_id", "T000"),
        ("team_domain", "example"),
        ("channel_id", "C012ABCDEF"),
        ("channel_name", "platform"),
        ("user_id", user),
        ("user_name", "alice"),
        ("command", "/fleet"),
        ("text", text),
        ("api_app_id", "A000"),
        ("response_url", response_url),
        ("trigger_id", "1.2.3"),
    ])
    .expect("form")
}

impl World {
    async fn post(&self, request: Value, at: Timestamp) -> (i64, Value) {
        let r = self
            .slack_app
            .handle(request, Invocation::at(at))
            .await
            .expect("slack-commands answers every request");
        let body = r["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (r["statusCode"].as_i64().unwrap_or(0), body)
    }

    /// Runs what was handed on through the scheduler at `at`; their answers.
    async fn run_handed(&self, at: Timestamp) -> Vec<Value> {
        let mut out = vec![];
        for d in self.handed.take() {
            out.push(self.fx.call(d, at).await);
        }
        out
    }

    /// The notices posted to the webhook so far.
    fn notices(&self) -> Vec<Value> {
        self.fx
            .slack
            .messages()
            .into_iter()
            .filter(|m| m["blocks"].is_array())
            .collect()
    }
}

fn button(notice: &Value, action_id: &str) -> Value {
    let elements = notice["blocks"][1]["elements"].as_array().expect("buttons");
    let mut b = elements
        .iter()
        .find(|b| b["action_id"] == action_id)
        .cloned()
        .expect("button");
    b["block_id"] = notice["blocks"][1]["block_id"].clone();
    b
}

fn text(v: &Value) -> String {
    v["text"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn the_notice_its_buttons_and_who_pressed_them() {
    let w = world().await;
    let name = &w.name;
    // 40 minutes before 20:00 Berlin: nothing yet; at 29 minutes, one notice, once.
    w.fx.tick(ts("2030-01-07T18:20:00Z")).await;
    assert!(w.notices().is_empty(), "too early: {:?}", w.notices());
    w.fx.tick(ts("2030-01-07T18:31:00Z")).await;
    w.fx.tick(ts("2030-01-07T18:36:00Z")).await;
    let notices = w.notices();
    assert_eq!(notices.len(), 1, "one notice per transition: {notices:?}");
    let notice = notices[0].clone();
    assert_eq!(
        text(&notice),
        format!("`{name}` goes down at 20:00 Europe/Berlin (in 29 min)")
    );

    // Mallory may not press.
    let url = w.fx.slack.response_url("actions");
    let keep = button(&notice, "keep_up_1h");
    let (status, _) = w
        .post(
            signed(&click_body(MALLORY, &keep, &url), 0),
            ts("2030-01-07T18:40:00Z"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(w.handed.take().is_empty(), "nothing handed on for Mallory");
    let refusal = w.fx.slack.responses(&url);
    assert_eq!(refusal.len(), 1);
    assert_eq!(refusal[0]["response_type"], "ephemeral");
    assert_eq!(refusal[0]["replace_original"], false);
    assert!(
        text(&refusal[0]).starts_with("Sorry <@U0MALLORY9>"),
        "{refusal:?}"
    );

    // Alice keeps it up an hour; the click arrives twice.
    let url = w.fx.slack.response_url("actions");
    let click = click_body(ALICE, &keep, &url);
    for _ in 0..2 {
        let (status, _) = w.post(signed(&click, 0), ts("2030-01-07T18:40:00Z")).await;
        assert_eq!(status, 200);
    }
    let handed = w.handed.take();
    assert_eq!(handed.len(), 2);
    assert_eq!(handed[0], handed[1], "the same override both times");
    assert_eq!(handed[0]["action"], "up");
    assert_eq!(handed[0]["until"], "2030-01-07T20:00:00Z");
    let first = w.fx.slack.responses(&url);
    assert!(text(&first[0]).contains("asked to keep"), "{first:?}");
    assert_eq!(first[0]["replace_original"], true);
    for d in &handed {
        let answer = w.fx.call(d.clone(), ts("2030-01-07T18:41:00Z")).await;
        assert_eq!(
            answer["override"]["until"], "2030-01-07T20:00:00Z",
            "{answer}"
        );
    }
    let record = w.fx.store.cluster(name).await.expect("record");
    let over = record.over.expect("override");
    assert_eq!(over.desired, Desired::Up);
    assert_eq!(over.until, ts("2030-01-07T20:00:00Z"));
    assert!(
        over.reason.contains("(by @alice (U012ABCDEF) via Slack)"),
        "{}",
        over.reason
    );
    let outcome = w.fx.slack.responses(&url);
    assert_eq!(outcome.len(), 4, "ack and outcome, twice: {outcome:?}");
    assert_eq!(outcome[3]["replace_original"], true);
    assert_eq!(
        text(&outcome[3]),
        format!(":white_check_mark: `{name}` stays up until 21:00 Europe/Berlin (Mon 7 Jan): keep up 1 h (by @alice (U012ABCDEF) via Slack).")
    );
    let audit = w.fx.store.audit_trail(name, 5).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|a| a.step == "override up until 2030-01-07T20:00:00Z"
                && a.decided_by.contains("U012ABCDEF")),
        "the audit trail says who: {audit:?}"
    );

    // The override's end is a coming down transition of its own: a new notice.
    w.fx.tick(ts("2030-01-07T19:35:00Z")).await;
    let notices = w.notices();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(text(&notices[1]).contains("goes down at 21:00 Europe/Berlin (in 25 min)"));

    // The first notice's buttons are stale after its 20:00 (19:00Z).
    let url = w.fx.slack.response_url("actions");
    let late = click_body(ALICE, &button(&notice, "tear_down_now"), &url);
    let (status, _) = w.post(signed(&late, 0), ts("2030-01-07T19:40:00Z")).await;
    assert_eq!(status, 200);
    assert!(w.handed.take().is_empty());
    let answer = w.fx.slack.responses(&url);
    assert!(
        text(&answer[0]).contains("already went down at 20:00 Europe/Berlin"),
        "{answer:?}"
    );

    // Tear down now, from the second notice: down until tomorrow 08:00 Berlin.
    let url = w.fx.slack.response_url("actions");
    let tear = click_body(ALICE, &button(&notices[1], "tear_down_now"), &url);
    w.post(signed(&tear, 0), ts("2030-01-07T19:41:00Z")).await;
    let answers = w.run_handed(ts("2030-01-07T19:41:00Z")).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["override"]["desired"], "down");
    assert_eq!(answers[0]["override"]["until"], "2030-01-08T07:00:00Z");
    let outcome = w.fx.slack.responses(&url);
    assert!(
        text(&outcome[1]).contains("goes down and stays down until 08:00 Europe/Berlin (Tue 8 Jan): tear down now (by @alice"),
        "{outcome:?}"
    );

    // A click made in time but run after the transition (it waited in Lambda's queue
    // behind a tick) is refused by the scheduler too, and says so in place.
    let url = w.fx.slack.response_url("actions");
    let queued = click_body(ALICE, &button(&notices[1], "keep_up_1h"), &url);
    w.post(signed(&queued, 0), ts("2030-01-07T19:50:00Z")).await;
    let answers = w.run_handed(ts("2030-01-07T20:01:00Z")).await;
    assert!(answers[0]["refused"].is_string(), "{answers:?}");
    let said = w.fx.slack.responses(&url);
    assert!(
        text(&said[1]).contains("already went down at 21:00 Europe/Berlin"),
        "{said:?}"
    );
    let over =
        w.fx.store
            .cluster(name)
            .await
            .expect("record")
            .over
            .expect("override");
    assert_eq!(over.desired, Desired::Down, "the tear-down stands");
}

#[tokio::test]
async fn slash_commands_and_refusals() {
    let w = world().await;
    let name = w.name.clone();
    let at = ts("2030-01-07T10:00:00Z");

    // Up for 2 hours with a reason: handed on, answered in the channel.
    let url = w.fx.slack.response_url("commands");
    let (status, body) = w
        .post(
            signed(
                &slash_body(ALICE, &format!("up {name} 2h release rehearsal"), &url),
                0,
            ),
            at,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["response_type"], "ephemeral");
    assert!(text(&body).starts_with("On it"), "{body}");
    let answers = w.run_handed(at).await;
    assert_eq!(answers[0]["override"]["until"], "2030-01-07T12:00:00Z");
    let posted = w.fx.slack.responses(&url);
    assert_eq!(posted[0]["response_type"], "in_channel");
    assert!(text(&posted[0]).contains("release rehearsal (by @alice (U012ABCDEF) via Slack)"));

    // Status: a table only the asker sees.
    let url = w.fx.slack.response_url("commands");
    w.post(signed(&slash_body(ALICE, "status", &url), 0), at)
        .await;
    w.run_handed(at).await;
    let posted = w.fx.slack.responses(&url);
    assert_eq!(posted[0]["response_type"], "ephemeral");
    assert!(text(&posted[0]).contains(&name), "{posted:?}");

    // Clear, with who asked in the audit trail.
    let url = w.fx.slack.response_url("commands");
    w.post(
        signed(&slash_body(ALICE, &format!("clear {name}"), &url), 0),
        at,
    )
    .await;
    w.run_handed(at).await;
    assert!(text(&w.fx.slack.responses(&url)[0]).contains("override cleared"));
    let audit = w.fx.store.audit_trail(&name, 5).await.expect("audit");
    assert!(audit
        .iter()
        .any(|a| a.step == "clear override" && a.decided_by.contains(ALICE)));

    // Mistakes are answered at once and hand nothing on.
    for (user, text_, says) in [
        (ALICE, "up stagng 2h".to_string(), "no cluster `stagng`"),
        (ALICE, format!("up {name} 3x"), "not a duration"),
        (MALLORY, format!("down {name} 2h"), "Sorry <@U0MALLORY9>"),
    ] {
        let url = w.fx.slack.response_url("commands");
        let (status, body) = w.post(signed(&slash_body(user, &text_, &url), 0), at).await;
        assert_eq!(status, 200);
        assert!(text(&body).contains(says), "{text_}: {body}");
        assert!(w.handed.take().is_empty(), "{text_}");
    }

    // Requests Slack did not sign, or signed too long ago, or with another secret.
    let body = slash_body(
        ALICE,
        &format!("down {name} 2h"),
        &w.fx.slack.response_url("commands"),
    );
    let mut wrong = signed(&body, 0);
    wrong["headers"]["x-slack-signature"] = json!(sign(
        b"not-the-signing-secret-at-all-xx",
        0,
        body.as_bytes()
    ));
    let mut missing = signed(&body, 0);
    missing["headers"]
        .as_object_mut()
        .map(|h| h.remove("x-slack-signature"));
    for (what, request) in [
        ("old", signed(&body, -301)),
        ("future", signed(&body, 301)),
        ("wrong", wrong),
        ("missing", missing),
        ("tampered", {
            let mut r = signed(&body, 0);
            r["body"] = json!(body.replace("2h", "200h"));
            r
        }),
    ] {
        let (status, answer) = w.post(request, at).await;
        assert_eq!(status, 401, "{what}: {answer}");
    }
    assert!(w.handed.take().is_empty());
    assert!(w
        .fx
        .store
        .cluster(&name)
        .await
        .expect("record")
        .over
        .is_none());
}

/// A refusal that reached the person in Slack is not a failed invocation (no alarm, no
/// dead letter); without `reply_to` it still is.
#[tokio::test]
async fn a_refusal_told_in_slack_is_not_a_failure() {
    let w = world().await;
    let url = w.fx.slack.response_url("commands");
    let doc = json!({"action":"up","cluster":"nope","for":"1h","reply_to":{"url": url}});
    let answer = w.fx.call(doc, ts("2030-01-07T10:00:00Z")).await;
    assert!(
        answer["refused"].as_str().unwrap_or("").contains("nope"),
        "{answer}"
    );
    assert!(text(&w.fx.slack.responses(&url)[0]).starts_with(":warning:"));
    let plain =
        w.fx.scheduler
            .handle(
                json!({"action":"up","cluster":"nope","for":"1h"}),
                Invocation::at(ts("2030-01-07T10:00:00Z")),
            )
            .await;
    assert!(plain.is_err());
    // A reply_to outside Slack's response URLs is never posted to.
    let elsewhere = json!({"action":"status","reply_to":{"url":"https://example.com/collect"}});
    let answer = w.fx.call(elsewhere, ts("2030-01-07T10:00:00Z")).await;
    assert!(answer["clusters"].is_array());
}

/// The fake is as strict as Slack: five posts per response URL, none to one it did not
/// mint.
#[tokio::test]
async fn the_fake_response_url_takes_five_posts() {
    let slack = FakeSlack::start().await;
    let url = slack.response_url("actions");
    let http = reqwest::Client::new();
    let mut codes = vec![];
    for _ in 0..6 {
        let r = http
            .post(&url)
            .json(&json!({"text": "hi"}))
            .send()
            .await
            .expect("post");
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, [200, 200, 200, 200, 200, 404]);
    let unknown = format!("{}actions/T000/nope/token", slack.base);
    let r = http
        .post(&unknown)
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 404);
    let no_text = slack.response_url("commands");
    let r = http
        .post(&no_text)
        .json(&json!({"x": 1}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(slack.responses(&url).len(), 5);
}
