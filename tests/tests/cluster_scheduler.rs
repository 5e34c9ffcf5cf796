//! cluster-scheduler against moto: simulated days, duplicate and concurrent ticks, foreign
//! clusters, manual actions, and the events that reach the `fleet` bus.

use fleet_shared::runner::Invocation;
use fleet_shared::state::TransitionKind;
use fleet_tests::fixtures::scheduler::{cluster_toml, detail_types, outcome, ts, SchedulerFixture};
use jiff::ToSpan;
use serde_json::{json, Value};

/// A fixture with one cluster per (mode, uptime, extra keys).
async fn fixture(clusters: &[(&str, &str, &str)]) -> SchedulerFixture {
    let tables: Vec<String> = clusters
        .iter()
        .map(|(mode, uptime, extra)| cluster_toml(mode, uptime, extra))
        .collect();
    SchedulerFixture::start(&tables, None).await
}

const BERLIN_WEEKDAYS: &str = "Mon-Fri 08:00-20:00 Europe/Berlin";

#[tokio::test]
async fn a_day_in_destroy_mode_builds_announces_and_tears_down_once() {
    let f = fixture(&[("destroy", BERLIN_WEEKDAYS, "")]).await;
    let name = f.names[0].clone();

    // Monday 2026-11-23; Berlin is UTC+1. Night: nothing exists, nothing is created.
    let night = f.tick(ts("2026-11-23T05:00:00Z")).await;
    assert_eq!(outcome(&night, &name)["desired"], "down");
    assert!(!f.cluster_exists(&name).await);

    // Morning: ticks from 06:55 UTC (07:55 Berlin) build it up.
    f.ticks("2026-11-23T06:55:00Z", "2026-11-23T07:30:00Z")
        .await;
    assert!(f.cluster_exists(&name).await);
    let described = f
        .eks
        .describe_cluster()
        .name(&name)
        .send()
        .await
        .expect("describe");
    let tags = described.cluster.and_then(|c| c.tags).expect("tags");
    assert_eq!(tags.get("fleet:cluster"), Some(&name));
    assert_eq!(
        tags.get("fleet:managed-by").map(String::as_str),
        Some("infra-fleet")
    );
    assert_eq!(tags.get("team").map(String::as_str), Some("platform"));
    assert_eq!(
        f.nodegroups(&name).await,
        vec![("spot".into(), 1, 2, 3), ("system".into(), 1, 1, 1)]
    );

    let events = f.tap.drain().await;
    assert_eq!(detail_types(&events), vec!["Cluster Ready"]);
    let ready = &events[0];
    assert_eq!(ready["source"], "fleet.cluster-scheduler");
    assert_eq!(ready["detail"]["cluster"], name.as_str());
    assert_eq!(ready["detail"]["region"], "eu-west-1");
    assert!(ready["detail"]["endpoint"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));

    // The rest of the day: repeated ticks change nothing and publish nothing.
    for _ in 0..3 {
        let again = f.tick(ts("2026-11-23T12:00:00Z")).await;
        assert_eq!(outcome(&again, &name)["result"], "steady");
    }
    assert!(f.tap.drain().await.is_empty());

    // Evening: 19:00 UTC is 20:00 Berlin.
    let before = f.tick(ts("2026-11-23T18:59:00Z")).await;
    assert_eq!(outcome(&before, &name)["desired"], "up");
    f.ticks("2026-11-23T19:00:00Z", "2026-11-23T19:30:00Z")
        .await;
    assert!(!f.cluster_exists(&name).await);
    assert_eq!(
        detail_types(&f.tap.drain().await),
        vec!["Cluster Destroyed"]
    );

    // Night again: steady, nothing published.
    let late = f.tick(ts("2026-11-23T23:00:00Z")).await;
    assert_eq!(outcome(&late, &name)["result"], "steady");
    assert!(f.tap.drain().await.is_empty());

    // Before the nodegroups went, the teardown looked for load balancers to clean up.
    assert!(f
        .kube
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.path == "/api/v1/services"));

    // The transitions the cost report reads.
    let history = f
        .store
        .transitions(
            &name,
            ts("2026-11-23T00:00:00Z"),
            ts("2026-11-24T00:00:00Z"),
        )
        .await
        .expect("history");
    let kinds: Vec<TransitionKind> = history.iter().map(|t| t.kind).collect();
    // First sight at night records down (without an event), then the day's up and down.
    assert_eq!(
        kinds,
        vec![
            TransitionKind::Down,
            TransitionKind::Up,
            TransitionKind::Down
        ]
    );
    assert!(
        history[1].at >= ts("2026-11-23T07:00:00Z") && history[1].at < ts("2026-11-23T07:30:00Z")
    );

    let status = f
        .call(json!({"action": "status"}), ts("2026-11-23T23:00:00Z"))
        .await;
    let s = outcome(&status, &name);
    assert_eq!(s["actual"], "absent");
    assert_eq!(s["recorded"]["phase"], "down");
    assert_eq!(s["last_transitions"].as_array().map(Vec::len), Some(3));
    let hours = s["uptime_hours_this_month"].as_f64().expect("hours");
    assert!((11.5..=12.0).contains(&hours), "uptime {hours}");
}

#[tokio::test]
async fn a_day_in_scale_mode_keeps_the_control_plane() {
    let f = fixture(&[("scale", BERLIN_WEEKDAYS, "")]).await;
    let name = f.names[0].clone();
    f.ticks("2026-11-23T07:00:00Z", "2026-11-23T07:30:00Z")
        .await;
    assert_eq!(detail_types(&f.tap.drain().await), vec!["Cluster Ready"]);

    f.ticks("2026-11-23T19:00:00Z", "2026-11-23T19:30:00Z")
        .await;
    assert!(
        f.cluster_exists(&name).await,
        "scale mode never deletes the cluster"
    );
    assert_eq!(
        f.nodegroups(&name).await,
        vec![("spot".into(), 0, 0, 3), ("system".into(), 0, 0, 1)]
    );
    let events = f.tap.drain().await;
    assert_eq!(detail_types(&events), vec!["Cluster Destroyed"]);
    assert_eq!(events[0]["detail"]["mode"], "scale");

    // Next morning: back to the blueprint sizes, announced again.
    f.ticks("2026-11-24T07:00:00Z", "2026-11-24T07:30:00Z")
        .await;
    assert_eq!(
        f.nodegroups(&name).await,
        vec![("spot".into(), 1, 2, 3), ("system".into(), 1, 1, 1)]
    );
    assert_eq!(detail_types(&f.tap.drain().await), vec!["Cluster Ready"]);
}

#[tokio::test]
async fn concurrent_ticks_do_the_work_once() {
    let f = fixture(&[("destroy", BERLIN_WEEKDAYS, "")]).await;
    let name = f.names[0].clone();
    let mut at = ts("2026-11-23T07:00:00Z");
    for _ in 0..6 {
        let (a, b) = tokio::join!(f.tick(at), f.tick(at));
        for r in [a, b] {
            assert_ne!(outcome(&r, &name)["result"], "failed", "{r}");
        }
        at = at.checked_add(5.minutes()).expect("time");
    }
    assert_eq!(f.nodegroups(&name).await.len(), 2);
    assert_eq!(detail_types(&f.tap.drain().await), vec!["Cluster Ready"]);
    let history = f
        .store
        .transitions(
            &name,
            ts("2026-11-23T00:00:00Z"),
            ts("2026-11-24T00:00:00Z"),
        )
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
}

#[tokio::test]
async fn a_missed_tick_does_not_miss_the_transition() {
    let f = fixture(&[("destroy", BERLIN_WEEKDAYS, "")]).await;
    let name = f.names[0].clone();
    // No tick at 08:00 Berlin at all; the first one arrives at 10:17.
    f.ticks("2026-11-23T09:17:00Z", "2026-11-23T09:40:00Z")
        .await;
    assert!(f.cluster_exists(&name).await);
    assert_eq!(detail_types(&f.tap.drain().await), vec!["Cluster Ready"]);
}

#[tokio::test]
async fn a_foreign_cluster_is_never_touched() {
    let f = fixture(&[("destroy", BERLIN_WEEKDAYS, "")]).await;
    let name = f.names[0].clone();
    // Someone else's cluster under the configured name, without the managed-by tag.
    f.eks
        .create_cluster()
        .name(&name)
        .role_arn("arn:aws:iam::123456789012:role/theirs")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-x")
                .subnet_ids("subnet-y")
                .build(),
        )
        .send()
        .await
        .expect("create foreign cluster");
    for at in [
        "2026-11-23T03:00:00Z",
        "2026-11-23T10:00:00Z",
        "2026-11-23T22:00:00Z",
    ] {
        let r = f.tick(ts(at)).await;
        assert_eq!(outcome(&r, &name)["result"], "foreign");
        assert_eq!(outcome(&r, &name)["actual"], "foreign");
    }
    assert!(f.cluster_exists(&name).await);
    assert!(f.nodegroups(&name).await.is_empty());
    assert!(f.tap.drain().await.is_empty());
    let plan = f
        .call(json!({"action": "plan"}), ts("2026-11-23T22:00:00Z"))
        .await;
    assert!(outcome(&plan, &name)["next_step"]
        .as_str()
        .is_some_and(|s| s.contains("never touched")));
}

#[tokio::test]
async fn plan_changes_nothing_and_says_why() {
    let f = fixture(&[("destroy", BERLIN_WEEKDAYS, "holidays = [\"2026-12-24\"]")]).await;
    let name = f.names[0].clone();
    let plan = f
        .call(
            json!({"action": "plan", "at": "2026-11-23T10:00:00Z"}),
            ts("2026-11-23T03:00:00Z"),
        )
        .await;
    let p = outcome(&plan, &name);
    assert_eq!(p["desired"], "up");
    assert_eq!(p["actual"], "absent");
    assert_eq!(p["next_step"], "create-cluster");
    assert_eq!(p["rule"], "uptime");
    assert_eq!(p["next_change"], "2026-11-23T19:00:00Z");
    let holiday = f
        .call(
            json!({"action": "plan", "at": "2026-12-24T10:00:00Z"}),
            ts("2026-11-23T03:00:00Z"),
        )
        .await;
    assert_eq!(outcome(&holiday, &name)["reason"], "holiday 2026-12-24");
    assert!(!f.cluster_exists(&name).await);
    assert!(f.tap.drain().await.is_empty());
}

#[tokio::test]
async fn overrides_hold_a_cluster_up_then_expire() {
    let f = fixture(&[("destroy", BERLIN_WEEKDAYS, "")]).await;
    let name = f.names[0].clone();
    // Saturday night: up for a release until Sunday 02:00 UTC.
    let night = ts("2026-11-28T21:00:00Z");
    let r = f
        .call(
            json!({"action": "up", "cluster": name, "until": "2026-11-29T02:00:00Z", "reason": "release 4.2"}),
            night,
        )
        .await;
    assert_eq!(r["override"]["desired"], "up");
    assert_eq!(r["reconcile"]["step"], "create-cluster");
    assert!(
        f.cluster_exists(&name).await,
        "acts at once, not on the next tick"
    );
    f.ticks("2026-11-28T21:05:00Z", "2026-11-28T21:30:00Z")
        .await;
    assert_eq!(detail_types(&f.tap.drain().await), vec!["Cluster Ready"]);
    let plan = f
        .call(json!({"action": "plan"}), ts("2026-11-28T23:00:00Z"))
        .await;
    assert!(outcome(&plan, &name)["reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("override up until 2026-11-29T02:00:00Z: release 4.2")));
    assert_eq!(outcome(&plan, &name)["next_change"], "2026-11-29T02:00:00Z");

    // Expired: the schedule takes it down again.
    f.ticks("2026-11-29T02:00:00Z", "2026-11-29T02:30:00Z")
        .await;
    assert!(!f.cluster_exists(&name).await);

    // Clear drops an override early.
    f.call(
        json!({"action": "up", "cluster": name, "until": "2026-11-29T12:00:00Z"}),
        ts("2026-11-29T03:00:00Z"),
    )
    .await;
    let cleared = f
        .call(
            json!({"action": "clear", "cluster": name}),
            ts("2026-11-29T03:05:00Z"),
        )
        .await;
    assert_eq!(cleared["cleared"], true);
    assert_eq!(cleared["reconcile"]["desired"], "down");
    let again = f
        .call(
            json!({"action": "clear", "cluster": name}),
            ts("2026-11-29T03:06:00Z"),
        )
        .await;
    assert_eq!(again["cleared"], false);
}

#[tokio::test]
async fn bad_manual_documents_change_nothing() {
    let f = fixture(&[("destroy", BERLIN_WEEKDAYS, "protect = true")]).await;
    let name = f.names[0].clone();
    let now = ts("2026-11-23T03:00:00Z");
    let scheduler = &f.scheduler;
    let err = |v: Value| async move {
        scheduler
            .handle(v, Invocation::at(now))
            .await
            .expect_err("should fail")
            .to_string()
    };
    assert!(
        err(json!({"action": "up", "cluster": "nope", "until": "2026-11-24T00:00:00Z"}))
            .await
            .contains("unknown cluster `nope`")
    );
    assert!(
        err(json!({"action": "up", "cluster": name, "until": "2026-11-22T00:00:00Z"}))
            .await
            .contains("is not in the future")
    );
    assert!(
        err(json!({"action": "down", "cluster": name, "until": "2026-11-24T00:00:00Z"}))
            .await
            .contains("protect = true")
    );
    assert!(err(json!({"action": "nuke"}))
        .await
        .contains("unknown action `nuke`"));
    assert!(!f.cluster_exists(&name).await);
    let record = f.store.cluster(&name).await.expect("record");
    assert!(record.over.is_none());
}

#[tokio::test]
async fn one_cluster_blocked_does_not_hold_up_the_others() {
    // The second configured name is taken by someone else's cluster.
    let f = fixture(&[
        ("destroy", BERLIN_WEEKDAYS, ""),
        ("destroy", BERLIN_WEEKDAYS, ""),
    ])
    .await;
    let (good, other) = (f.names[0].clone(), f.names[1].clone());
    f.eks
        .create_cluster()
        .name(&other)
        .role_arn("arn:aws:iam::123456789012:role/theirs")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("s")
                .build(),
        )
        .send()
        .await
        .expect("foreign");
    f.ticks("2026-11-23T07:00:00Z", "2026-11-23T07:30:00Z")
        .await;
    let events = f.tap.drain().await;
    assert_eq!(detail_types(&events), vec!["Cluster Ready"]);
    assert_eq!(events[0]["detail"]["cluster"], good.as_str());
}

/// A steady cluster costs one EKS call a tick: the recorded phase stands for it until the
/// next full look, at most an hour later (drift is found then) or at once after a
/// config change.
#[tokio::test]
async fn a_steady_cluster_is_trusted_between_full_looks() {
    let mut f = fixture(&[("scale", BERLIN_WEEKDAYS, "")]).await;
    let name = f.names[0].clone();
    f.ticks("2026-11-23T06:55:00Z", "2026-11-23T07:30:00Z")
        .await;
    assert_eq!(detail_types(&f.tap.drain().await), vec!["Cluster Ready"]);
    let counter = fleet_tests::CallCounter::default();
    f.scheduler.use_eks(aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::config::Builder::from(&f.sdk)
            .interceptor(counter.clone())
            .build(),
    ));
    async fn eks_calls(
        f: &SchedulerFixture,
        counter: &fleet_tests::CallCounter,
        at: jiff::Timestamp,
    ) -> (Value, usize) {
        let before = counter.count();
        let r = f.tick(at).await;
        (
            outcome(&r, &f.names[0])["result"].clone(),
            counter.count() - before,
        )
    }
    // The last full look found it steady and was recorded; ticks until its period ends
    // describe the cluster only.
    let checked = f
        .store
        .cluster(&name)
        .await
        .expect("record")
        .state
        .checked_at
        .expect("a full look was recorded");
    // The next full look is due when the cluster's next period begins.
    let due = cluster_scheduler::reconcile::full_look_due_since(&name, checked)
        .checked_add(cluster_scheduler::reconcile::FULL_LOOK_EVERY_MINUTES.minutes())
        .expect("time");
    let before_due = |minutes: i64| due.checked_sub(minutes.minutes()).expect("time");
    let after = |minutes: i64| due.checked_add(minutes.minutes()).expect("time");
    let (result, calls) = eks_calls(&f, &counter, before_due(2)).await;
    assert_eq!((result.as_str(), calls), (Some("steady"), 1));

    // A nodegroup deleted by hand is found by the next full look, not before.
    f.eks
        .delete_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("system")
        .send()
        .await
        .expect("delete nodegroup");
    let (result, calls) = eks_calls(&f, &counter, before_due(1)).await;
    assert_eq!((result.as_str(), calls), (Some("steady"), 1));
    let look = f.tick(after(0)).await;
    assert_eq!(outcome(&look, &name)["step"], "create-nodegroups system");
    for minutes in [5, 10, 15] {
        f.tick(after(minutes)).await;
    }
    assert_eq!(f.nodegroups(&name).await.len(), 2);

    // A changed blueprint is looked at on the very next tick.
    let (result, calls) = eks_calls(&f, &counter, after(20)).await;
    assert_eq!((result.as_str(), calls), (Some("steady"), 1));
    let mut config = (*f.scheduler.config).clone();
    config.clusters[0].blueprint.nodegroups[0].max_size = 5;
    f.scheduler.config = std::sync::Arc::new(config);
    let changed = f.tick(after(25)).await;
    assert!(
        outcome(&changed, &name)["step"]
            .as_str()
            .is_some_and(|s| s.starts_with("scale-nodegroups")),
        "{changed}"
    );
    assert!(f.tap.drain().await.is_empty());
}

/// A cluster the fleet did not create, tagged `fleet:managed-by` with this fleet's name
/// (copied from an older stack), with a nodegroup `critical`, and no record: the audit's
/// reproduction. The schedule says down, yet nothing is touched: `not-created-by-fleet`.
async fn tagged_cluster_we_did_not_create(f: &SchedulerFixture, name: &str) {
    f.eks
        .create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/theirs")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-x")
                .subnet_ids("subnet-y")
                .build(),
        )
        .tags("fleet:managed-by", fleet_shared::startup::LOCAL_STACK)
        .send()
        .await
        .expect("create the tagged cluster");
    f.eks
        .create_nodegroup()
        .cluster_name(name)
        .nodegroup_name("critical")
        .node_role("arn:aws:iam::123456789012:role/theirs-node")
        .subnets("subnet-x")
        .send()
        .await
        .expect("create nodegroup critical");
}

#[tokio::test]
async fn a_cluster_tagged_as_ours_that_we_did_not_create_is_never_touched() {
    let f = fixture(&[("destroy", BERLIN_WEEKDAYS, "")]).await;
    let name = f.names[0].clone();
    tagged_cluster_we_did_not_create(&f, &name).await;
    let plan = f
        .call(json!({"action": "plan"}), ts("2026-11-23T22:00:00Z"))
        .await;
    let step = outcome(&plan, &name)["next_step"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(step.contains("not-created-by-fleet"), "{step}");
    assert_eq!(outcome(&plan, &name)["actual"], "not-created-by-fleet");
    for at in [
        "2026-11-23T22:00:00Z",
        "2026-11-23T22:05:00Z",
        "2026-11-24T10:00:00Z",
    ] {
        let r = f.tick(ts(at)).await;
        assert_eq!(outcome(&r, &name)["result"], "not-created-by-fleet", "{r}");
    }
    assert!(f.cluster_exists(&name).await);
    assert_eq!(
        f.nodegroups(&name).await.len(),
        1,
        "critical is still there"
    );
    assert!(f.tap.drain().await.is_empty());
    let status = f
        .call(json!({"action": "status"}), ts("2026-11-24T10:00:00Z"))
        .await;
    assert_eq!(outcome(&status, &name)["last_destructive_steps"], json!([]));
}

/// With `adopt = true` the incarnation is recorded as the fleet's (once, told to Slack),
/// then the schedule acts on it; every destructive step is in the audit trail with what
/// decided it. A nodegroup the blueprint does not list is left in place, and the cluster
/// waits for it rather than be deleted around it.
#[tokio::test]
async fn an_adopted_cluster_is_torn_down_with_an_audit_trail_and_only_the_blueprints_nodegroups() {
    let f = fixture(&[("destroy", BERLIN_WEEKDAYS, "adopt = true")]).await;
    let name = f.names[0].clone();
    tagged_cluster_we_did_not_create(&f, &name).await;
    let first = f.tick(ts("2026-11-23T22:00:00Z")).await;
    assert_eq!(outcome(&first, &name)["result"], "adopted", "{first}");
    assert_eq!(
        f.slack
            .texts()
            .iter()
            .filter(|t| t.contains("adopted"))
            .count(),
        1
    );
    let record = f.store.cluster(&name).await.expect("record").state;
    assert!(
        record.owned_generation.is_some() && record.adopted_by.is_some(),
        "{record:?}"
    );
    // Adopted, down: `critical` is not the blueprint's, so it stays and the cluster waits.
    let mut last = Value::Null;
    for at in [
        "2026-11-23T22:05:00Z",
        "2026-11-23T22:10:00Z",
        "2026-11-23T22:15:00Z",
    ] {
        last = f.tick(ts(at)).await;
    }
    let step = outcome(&last, &name)["step"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        step.contains("unmanaged nodegroup critical left in place; the cluster cannot be deleted while it exists"),
        "{step}"
    );
    assert!(f.cluster_exists(&name).await);
    assert_eq!(
        f.slack
            .texts()
            .iter()
            .filter(|t| t.contains("adopted"))
            .count(),
        1,
        "told once"
    );
    // Whoever owns `critical` removes it: the teardown completes.
    f.eks
        .delete_nodegroup()
        .cluster_name(&name)
        .nodegroup_name("critical")
        .send()
        .await
        .expect("their delete");
    f.ticks("2026-11-23T22:20:00Z", "2026-11-23T22:40:00Z")
        .await;
    assert!(!f.cluster_exists(&name).await);
    let status = f
        .call(json!({"action": "status"}), ts("2026-11-23T23:00:00Z"))
        .await;
    let trail = outcome(&status, &name)["last_destructive_steps"].clone();
    let steps: Vec<&str> = trail
        .as_array()
        .expect("trail")
        .iter()
        .filter_map(|e| e["step"].as_str())
        .collect();
    assert!(steps.contains(&"delete-cluster"), "{trail}");
    assert!(steps.iter().any(|s| s.starts_with("adopt")), "{trail}");
    let delete = trail
        .as_array()
        .and_then(|a| a.iter().find(|e| e["step"] == "delete-cluster"))
        .expect("delete-cluster audited");
    assert!(
        delete["decided_by"]
            .as_str()
            .is_some_and(|d| d.contains("outside uptime")),
        "{delete}"
    );
    assert!(delete["request_id"].as_str().is_some_and(|r| !r.is_empty()));
}

/// A cluster the fleet created and rebuilt is its own through each incarnation (the
/// creation token), and a cluster recreated behind its back under its tag is not.
#[tokio::test]
async fn a_cluster_recreated_behind_our_back_is_not_ours() {
    let f = fixture(&[("destroy", BERLIN_WEEKDAYS, "")]).await;
    let name = f.names[0].clone();
    f.ticks("2026-11-23T06:55:00Z", "2026-11-23T07:30:00Z")
        .await;
    assert_eq!(detail_types(&f.tap.drain().await), vec!["Cluster Ready"]);
    let record = f.store.cluster(&name).await.expect("record").state;
    assert!(
        record.creation_token.is_some() && record.owned_generation.is_some(),
        "{record:?}"
    );
    // Someone deletes it and makes another under the same name and tag.
    for ng in ["spot", "system"] {
        f.eks
            .delete_nodegroup()
            .cluster_name(&name)
            .nodegroup_name(ng)
            .send()
            .await
            .expect("delete ng");
    }
    f.eks
        .delete_cluster()
        .name(&name)
        .send()
        .await
        .expect("delete");
    // A real recreation takes minutes; moto's takes no time, and the generation is the
    // creation time in seconds.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    tagged_cluster_we_did_not_create(&f, &name).await;
    let r = f.tick(ts("2026-11-23T22:00:00Z")).await;
    assert_eq!(outcome(&r, &name)["result"], "not-created-by-fleet", "{r}");
    assert!(f.cluster_exists(&name).await);
}

/// Case 06: `daily 00:00-01:30 America/New_York` on 2026-11-01, when 01:00-02:00 happens
/// twice. Up from 00:00 EDT until the first 01:30 (05:30Z); it does not come up again
/// in the repeated hour; the next change after it is the next local midnight. The
/// case's own plan documents, asked at any real time.
#[tokio::test]
async fn a_window_ending_in_the_repeated_hour_ends_once() {
    let f = fixture(&[(
        "destroy",
        "daily 00:00-01:30 America/New_York",
        "holidays = []",
    )])
    .await;
    let name = f.names[0].clone();
    let dir = fleet_tests::workspace_root()
        .join("tests/fixtures/cases/06-fallback-window-ends-in-repeated-hour");
    for (at, desired, next) in [
        ("2026-11-01T05:29:00Z", "up", "2026-11-01T05:30:00Z"),
        ("2026-11-01T05:30:00Z", "down", "2026-11-02T05:00:00Z"),
        ("2026-11-01T05:45:00Z", "down", "2026-11-02T05:00:00Z"),
        ("2026-11-01T06:15:00Z", "down", "2026-11-02T05:00:00Z"),
        ("2026-11-01T06:30:00Z", "down", "2026-11-02T05:00:00Z"),
    ] {
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("plan-{at}.json"))).expect("case"),
        )
        .expect("json");
        let plan = f.call(doc, jiff::Timestamp::now()).await;
        let p = outcome(&plan, &name);
        assert_eq!(
            (p["desired"].as_str(), p["next_change"].as_str()),
            (Some(desired), Some(next)),
            "{at}: {p}"
        );
    }
    assert!(!f.cluster_exists(&name).await);
}
