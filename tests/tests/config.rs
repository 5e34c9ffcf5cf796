//! The fleet config, key by key: every key of the example config removed in turn and
//! given the wrong type in turn. Each is either fine (an optional key; a default) or a
//! clear error naming the key, found at cold start before anything acts. Unknown keys
//! are warned about, not fatal; an `ssm:` reference that does not exist names the key
//! that holds it.

use fleet_shared::config::FleetConfig;
use fleet_tests::workspace_root;

fn example() -> toml::Table {
    let text = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .expect("example config");
    text.parse().expect("example config is TOML")
}

/// One leaf of the document: the path of keys and array indexes to it.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn leaves(v: &toml::Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        toml::Value::Table(t) => {
            for (k, child) in t {
                here.push(Step::Key(k.clone()));
                leaves(child, here, out);
                here.pop();
            }
        }
        toml::Value::Array(a) if a.iter().all(|x| x.is_table()) && !a.is_empty() => {
            for (i, child) in a.iter().enumerate() {
                here.push(Step::Index(i));
                leaves(child, here, out);
                here.pop();
            }
        }
        _ => out.push(here.clone()),
    }
}

/// The path as the config's errors write it: `cluster[0].blueprint.role_arn`.
fn dotted(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn slot<'a>(doc: &'a mut toml::Table, path: &[Step]) -> Option<(&'a mut toml::Table, String)> {
    let (last, parents) = path.split_last()?;
    let mut v: &mut toml::Table = doc;
    let mut i = 0;
    while i < parents.len() {
        let Step::Key(k) = &parents[i] else {
            return None;
        };
        let next = v.get_mut(k)?;
        v = match (next, parents.get(i + 1)) {
            (toml::Value::Array(a), Some(Step::Index(n))) => {
                i += 1;
                a.get_mut(*n)?.as_table_mut()?
            }
            (toml::Value::Table(t), _) => t,
            _ => return None,
        };
        i += 1;
    }
    match last {
        Step::Key(k) => Some((v, k.clone())),
        Step::Index(_) => None,
    }
}

fn parse(doc: &toml::Table) -> Result<FleetConfig, String> {
    FleetConfig::parse(&toml::to_string(doc).expect("serializes")).map_err(|e| e.to_string())
}

/// The key an error names, which must be the removed or mistyped key or one of the
/// tables that hold it (serde reports a missing field at its table).
fn names_the_key(error: &str, path: &[Step]) -> bool {
    let full = dotted(path);
    (1..=path.len()).any(|n| {
        let prefix = dotted(&path[..n]);
        error.contains(&format!("`{prefix}`"))
            && (n == path.len() || error.contains(&full) || {
                let Step::Key(last) = &path[path.len() - 1] else {
                    return false;
                };
                error.contains(last.as_str())
            })
    })
}

#[test]
fn every_key_removed_in_turn_is_optional_or_named() {
    let doc = example();
    let mut all = Vec::new();
    leaves(&toml::Value::Table(doc.clone()), &mut Vec::new(), &mut all);
    assert!(
        all.len() > 40,
        "the example config has its keys: {}",
        all.len()
    );
    let mut required = Vec::new();
    for path in &all {
        let mut broken = doc.clone();
        let Some((table, key)) = slot(&mut broken, path) else {
            continue;
        };
        table.remove(&key);
        if let Err(e) = parse(&broken) {
            assert!(e.starts_with("config key `"), "{}: {e}", dotted(path));
            assert!(
                names_the_key(&e, path),
                "removing {} gave: {e}",
                dotted(path)
            );
            required.push(dotted(path));
        }
    }
    // The keys without which nothing can work are among them.
    for key in [
        "fleet.region",
        "cluster[0].name",
        "cluster[0].blueprint.role_arn",
    ] {
        assert!(
            required.iter().any(|r| r == key),
            "{key} is required: {required:?}"
        );
    }
}

#[test]
fn every_key_with_the_wrong_type_is_named() {
    let doc = example();
    let mut all = Vec::new();
    leaves(&toml::Value::Table(doc.clone()), &mut Vec::new(), &mut all);
    let mut refused = 0;
    for path in &all {
        let mut broken = doc.clone();
        let Some((table, key)) = slot(&mut broken, path) else {
            continue;
        };
        let Some(value) = table.get(&key) else {
            continue;
        };
        // A string becomes a table, anything else a string: never a valid value.
        let wrong = match value {
            toml::Value::String(_) => toml::Value::Table(toml::Table::from_iter([(
                "x".to_string(),
                toml::Value::Integer(1),
            )])),
            _ => toml::Value::String("wrong type".into()),
        };
        table.insert(key.clone(), wrong);
        let e = parse(&broken).expect_err(&format!("{} with the wrong type", dotted(path)));
        assert!(
            names_the_key(&e, path),
            "{} with the wrong type gave: {e}",
            dotted(path)
        );
        refused += 1;
    }
    assert!(refused > 40);
}

#[test]
fn unknown_keys_anywhere_are_errors_naming_each() {
    let mut doc = example();
    doc.insert("colour".into(), toml::Value::String("blue".into()));
    if let Some(toml::Value::Array(clusters)) = doc.get_mut("cluster") {
        if let Some(c) = clusters.first_mut().and_then(|c| c.as_table_mut()) {
            c.insert("uptme".into(), toml::Value::String("typo".into()));
        }
    }
    let e = parse(&doc).expect_err("unknown keys are errors");
    assert!(
        e.contains("`colour`") || e.starts_with("config key `colour`"),
        "{e}"
    );
    assert!(e.contains("cluster[0].uptme"), "{e}");
}

/// The audit's reproduction: `protect = true` written after `[cluster.blueprint]` (TOML
/// puts it in the blueprint) is refused, naming where it belongs, before anything runs.
#[test]
fn a_misplaced_protect_is_refused_at_cold_start_naming_where_it_belongs() {
    let example = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .expect("example");
    let misplaced = example.replacen(
        "tags = { team = \"platform\" }",
        "tags = { team = \"platform\" }\nprotect = true",
        1,
    );
    assert_ne!(misplaced, example);
    let dir = std::env::temp_dir().join(fleet_tests::unique("config"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("fleet.toml");
    std::fs::write(&path, misplaced).expect("config file");
    let (ok, text) = run("cluster-scheduler", &path.display().to_string());
    assert!(!ok, "{text}");
    assert!(
        text.contains("cluster[0].blueprint.protect")
            && text.contains("did you mean cluster[0].protect?"),
        "{text}"
    );
}

/// Runs a function binary once on an event, with `config` as its config source.
fn run(function: &str, config: &str) -> (bool, String) {
    let out = fleet_tests::function_command(function, "scheduler-plan.json", config)
        .output()
        .expect("function binary (make test builds it first)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_config_or_secret_in_ssm_that_does_not_exist_is_named_at_cold_start() {
    let (ok, text) = run("cluster-scheduler", "ssm:/fleet/no-such-config");
    assert!(!ok);
    assert!(
        text.contains("FLEET_CONFIG") && text.contains("/fleet/no-such-config"),
        "{text}"
    );
    // A secret the function needs for every event that does not resolve: the key
    // holding it is named. (The Slack webhook is read when first used: see
    // `a_slack_webhook_that_does_not_resolve_costs_the_notification_not_the_start`.)
    let example = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .expect("example");
    let missing = example.replace(
        "ssm:/fleet/github-webhook-secret",
        "ssm:/fleet/no-such-webhook-secret",
    );
    assert_ne!(missing, example);
    let dir = std::env::temp_dir().join(fleet_tests::unique("config"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("fleet.toml");
    std::fs::write(&path, missing).expect("config file");
    let (ok, text) = run("dora-webhook", &path.display().to_string());
    assert!(!ok);
    assert!(
        text.contains("dora.webhook_secret") && text.contains("/fleet/no-such-webhook-secret"),
        "{text}"
    );
}

/// The Slack webhook is read when the first message goes out: a parameter that is
/// missing (or too short) fails that message, naming the key and the parameter, never
/// a value, and is read again for the next; the cold start and the work go on.
#[tokio::test]
async fn a_slack_webhook_that_does_not_resolve_costs_the_notification_not_the_start() {
    use fleet_shared::notify::Notifier;
    let ssm = aws_sdk_ssm::Client::new(&fleet_tests::sdk());
    let name = format!("/{}/slack", fleet_tests::unique("lazy"));
    // What a cold start makes of such a config: a notifier, no error, nothing read yet.
    let example = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .expect("example");
    let config = fleet_shared::config::FleetConfig::parse(
        &example.replace("ssm:/fleet/slack-webhook", &format!("ssm:{name}")),
    )
    .expect("example parses");
    let start =
        fleet_shared::startup::ColdStart::new(fleet_tests::sdk(), config, ssm.clone(), true);
    assert!(start
        .notifier()
        .await
        .expect("no read at cold start")
        .enabled());
    let notifier = Notifier::from_ssm(ssm.clone(), "fleet.slack_webhook", name.clone());
    assert!(notifier.enabled());
    let e = notifier.send("hello").await.expect_err("no such parameter");
    let text = e.to_string();
    assert!(
        text.contains("fleet.slack_webhook") && text.contains(&name),
        "{text}"
    );
    fleet_tests::put_secret(&ssm, &name, "http://x/short")
        .await
        .expect("put");
    let e = notifier.send("hello").await.expect_err("too short");
    assert!(
        e.to_string().contains("at least 32") && !e.to_string().contains("http://x/short"),
        "{e}"
    );
    // Once it resolves, it is kept: the parameter is read no more.
    let slack = fleet_tests::fakes::slack::FakeSlack::start().await;
    fleet_tests::put_secret(&ssm, &name, &slack.url)
        .await
        .expect("put");
    assert!(notifier.send("first").await.expect("sent"));
    ssm.delete_parameter()
        .name(&name)
        .send()
        .await
        .expect("delete");
    assert!(notifier.clone().send("second").await.expect("kept"));
    assert_eq!(
        slack.texts(),
        vec!["first".to_string(), "second".to_string()]
    );
}

/// Outside local runs from a file (here: the config itself in SSM, as deployed), a secret
/// written into the config is refused; and a secret under 32 bytes is refused anywhere.
/// Both name the key, never the value.
#[tokio::test]
async fn deployed_configs_take_secrets_only_from_ssm_and_only_long_ones() {
    let ssm = aws_sdk_ssm::Client::new(&fleet_tests::sdk());
    let put = |name: String, value: String| {
        let ssm = ssm.clone();
        async move {
            fleet_tests::put_secret(&ssm, &name, &value)
                .await
                .expect("put parameter");
        }
    };
    let example = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .expect("example");
    let literal = "https://hooks.example/services/T0/B0/literal-0123456789abcdef";
    let inline = example.replace("ssm:/fleet/slack-webhook", literal);
    let name = format!("/{}/config", fleet_tests::unique("cfg"));
    put(name.clone(), inline).await;
    let (ok, text) = run("cluster-scheduler", &format!("ssm:{name}"));
    assert!(!ok, "{text}");
    assert!(
        text.contains("fleet.slack_webhook") && text.contains("must be an ssm: reference"),
        "{text}"
    );
    assert!(!text.contains("literal-0123456789abcdef"), "{text}");

    let short = format!("/{}/github", fleet_tests::unique("short"));
    put(short.clone(), "short-secret-x".into()).await;
    let dir = std::env::temp_dir().join(fleet_tests::unique("config"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("fleet.toml");
    std::fs::write(
        &path,
        example.replace("ssm:/fleet/github-webhook-secret", &format!("ssm:{short}")),
    )
    .expect("config file");
    let (ok, text) = run("dora-webhook", &path.display().to_string());
    assert!(!ok, "{text}");
    assert!(
        text.contains("dora.webhook_secret")
            && text.contains("is 14 bytes; at least 32 are needed"),
        "{text}"
    );
    assert!(!text.contains("short-secret-x"), "{text}");
}

/// `fleet-config check`, which `make deploy` runs before it stores the config, applies
/// the rules of a deployed config: the example passes; a secret written in the config
/// is refused naming its key, and its value is never printed.
#[test]
fn fleet_config_check_refuses_what_a_deployed_function_would() {
    let bin = fleet_tests::demo::bin_dir().join("fleet-config");
    let example = workspace_root().join("infra/fleet.example.toml");
    let out = std::process::Command::new(&bin)
        .args(["check", example.to_str().expect("path")])
        .output()
        .expect("fleet-config (make test builds it first)");
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&example).expect("example");
    let dir = std::env::temp_dir().join(fleet_tests::unique("deploy"));
    std::fs::create_dir_all(&dir).expect("dir");
    let literal = dir.join("fleet.toml");
    // Each secret key written out (the spokes' external ids too): refused, naming the
    // key, never printing the value.
    for (reference, value, key) in [
        (
            "ssm:/fleet/slack-webhook",
            "https://hooks.example/services/T0/B0/literal-value",
            "fleet.slack_webhook",
        ),
        (
            "ssm:/fleet/spoke-external-id",
            "literal-external-id-value",
            "account[0].external_id",
        ),
    ] {
        std::fs::write(&literal, text.replace(reference, value)).expect("write");
        let out = std::process::Command::new(&bin)
            .args(["check", literal.to_str().expect("path")])
            .output()
            .expect("fleet-config");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(key) && stderr.contains("ssm: reference"),
            "{stderr}"
        );
        assert!(!stderr.contains(value), "{stderr}");
    }
}

/// `GetParameters` answers `/x:1` under the bare name `/x`: a prefetch must not let one
/// version stand for another. Each reference reads its own value.
#[tokio::test]
async fn prefetched_secrets_keep_versions_apart() {
    use fleet_shared::config::SecretRef;
    let sdk = fleet_tests::sdk();
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let name = format!("/{}/token", fleet_tests::unique("versions"));
    let first = "first-version-0123456789abcdef0123456789";
    let second = "second-version-0123456789abcdef012345678";
    for value in [first, second] {
        ssm.put_parameter()
            .name(&name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }
    let example = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .expect("example");
    let config = fleet_shared::config::FleetConfig::parse(&example).expect("example parses");
    let start = fleet_shared::startup::ColdStart::new(sdk, config, ssm, true);
    let latest = SecretRef::Ssm(name.clone());
    let pinned = SecretRef::Ssm(format!("{name}:1"));
    // Only the pinned version is asked for in the batch: were it cached under the bare
    // name, reading the latest would answer version 1.
    start.prefetch([Some(&pinned)]).await;
    let read = |r: SecretRef| {
        let start = &start;
        async move {
            use fleet_shared::config::Secret;
            start
                .secret("dora.token", &r)
                .await
                .map(|s: Secret| s.expose().to_string())
        }
    };
    assert_eq!(read(latest.clone()).await.expect("latest"), second);
    assert_eq!(read(pinned.clone()).await.expect("version 1"), first);
}
