//! dns-updater against moto (Route53, EKS, DynamoDB), the fake Cloudflare API and the
//! fake Kubernetes API.

use fleet_shared::schedule::Desired;
use fleet_shared::FleetError;
use fleet_tests::fixtures::dns::{actions, dns_section, DnsFixture};
use serde_json::json;

const LB1: &str = "a1b2c3-1234567890.eu-west-1.elb.amazonaws.com";
const LB2: &str = "d4e5f6-0987654321.eu-west-1.elb.amazonaws.com";
const ALB_ZONE: &str = "Z32O12XQLNTSW2";

fn both(extra: &str, on_destroy: &str) -> String {
    format!(
        r#"
[cluster.dns]
ingress_service = "ingress-nginx/ingress-nginx-controller"
on_destroy = "{on_destroy}"
ingress_wait_seconds = 0

[[cluster.dns.record]]
provider = "cloudflare"
zone = "{{zone}}"
name = "app.{{zone}}"
proxied = true
{extra}

[[cluster.dns.record]]
provider = "route53"
zone_id = "{{zone_id}}"
name = "app.{{zone}}"
{extra}
"#
    )
}

/// A fixture whose records were created by a first `Cluster Ready` (generation g1).
async fn synced(dns: &str) -> DnsFixture {
    let f = DnsFixture::start(dns).await;
    f.set_ingress(Some(LB1));
    let first = f.ready("g1").await.expect("first sync");
    assert_eq!(actions(&first), pair("create", "create"), "{first:#}");
    f
}

fn pair(a: &str, b: &str) -> Vec<(String, String)> {
    vec![
        ("cloudflare".to_string(), a.to_string()),
        ("route53".to_string(), b.to_string()),
    ]
}

#[tokio::test]
async fn first_sync_creates_and_a_second_writes_nothing() {
    let f = DnsFixture::start(&both("", "keep")).await;
    f.set_ingress(Some(LB1));
    let first = f.ready("g1").await.expect("first sync");
    assert_eq!(actions(&first), pair("create", "create"), "{first:#}");

    let cf = f.cf_records("app");
    assert_eq!(cf.len(), 1);
    assert_eq!(cf[0]["type"], "CNAME");
    assert_eq!(cf[0]["content"], LB1);
    assert_eq!(cf[0]["proxied"], true);
    assert_eq!(cf[0]["ttl"], 1);
    assert_eq!(
        cf[0]["comment"],
        format!("managed-by=fleet cluster={}", f.cluster)
    );
    assert_eq!(
        f.r53_records("app").await,
        vec![("A".to_string(), format!("alias {ALB_ZONE} {LB1}"))]
    );

    // The redelivery: one filtered read per record, no write anywhere.
    f.cloudflare.clear_requests();
    let again = f.ready("g1").await.expect("second sync");
    assert_eq!(actions(&again), pair("none", "none"), "{again:#}");
    let requests = f.cloudflare.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].query.contains("name=app."), "{requests:?}");
    assert!(f.cloudflare.writes().is_empty());
    assert_eq!(f.slack.texts().len(), 1, "only the change is announced");
}

#[tokio::test]
async fn a_rebuild_moves_the_records_to_the_new_load_balancer() {
    let f = synced(&both("", "keep")).await;
    f.set_ingress(Some(LB2));
    let r = f.ready("g2").await.expect("after rebuild");
    assert_eq!(actions(&r), pair("update", "update"), "{r:#}");
    let cf = f.cf_records("app");
    assert_eq!(cf.len(), 1);
    assert_eq!(cf[0]["content"], LB2);
    let methods: Vec<String> = f
        .cloudflare
        .writes()
        .iter()
        .map(|w| w.method.clone())
        .collect();
    assert_eq!(methods, vec!["POST", "PATCH"]);
    assert_eq!(
        f.r53_records("app").await,
        vec![("A".to_string(), format!("alias {ALB_ZONE} {LB2}"))]
    );
    let slack = f.slack.texts();
    assert!(slack.last().is_some_and(|t| t.contains(LB2)), "{slack:?}");
}

#[tokio::test]
async fn records_without_the_fleets_mark_are_conflicts_left_alone() {
    let f = DnsFixture::start(&both("", "delete")).await;
    f.set_ingress(Some(LB1));
    f.cloudflare.insert(
        &f.cf_zone,
        json!({"type": "A", "name": f.name("app"), "content": "192.0.2.10", "ttl": 300, "comment": "hand-made"}),
    );
    f.seed_route53_cname("app", "legacy.example.net").await;
    let r = f.ready("g1").await.expect("sync");
    assert_eq!(actions(&r), pair("conflict", "conflict"), "{r:#}");
    assert!(f.cloudflare.writes().is_empty());
    assert_eq!(f.cf_records("app")[0]["content"], "192.0.2.10");
    assert_eq!(
        f.r53_records("app").await,
        vec![("CNAME".to_string(), "legacy.example.net".to_string())]
    );
    assert!(f.slack.texts().iter().any(|t| t.contains("conflict")));

    // A teardown does not delete what is not ours either.
    let d = f.destroyed("g1").await.expect("teardown");
    assert_eq!(actions(&d), pair("none", "none"), "{d:#}");
    assert_eq!(f.cf_records("app").len(), 1);
    assert_eq!(f.r53_records("app").await.len(), 1);
}

#[tokio::test]
async fn adopt_takes_an_unmarked_record_over_in_one_batch() {
    let f = DnsFixture::start(&both("adopt = true", "keep")).await;
    f.set_ingress(Some(LB1));
    f.cloudflare.insert(
        &f.cf_zone,
        json!({"type": "A", "name": f.name("app"), "content": "192.0.2.10", "ttl": 300}),
    );
    // A CNAME in Route53: the alias A replaces it in the same change batch.
    f.seed_route53_cname("app", "legacy.example.net").await;
    let r = f.ready("g1").await.expect("sync");
    assert_eq!(actions(&r), pair("update", "update"), "{r:#}");
    let cf = f.cf_records("app");
    assert_eq!(cf.len(), 1);
    assert_eq!(
        (cf[0]["type"].as_str(), cf[0]["content"].as_str()),
        (Some("CNAME"), Some(LB1))
    );
    assert_eq!(
        cf[0]["comment"],
        format!("managed-by=fleet cluster={}", f.cluster)
    );
    assert_eq!(
        f.r53_records("app").await,
        vec![("A".to_string(), format!("alias {ALB_ZONE} {LB1}"))]
    );
    assert_eq!(f.owner("app").await, Some(f.cluster.clone()));
    // Ours now: the next sync is quiet.
    let again = f.ready("g1").await.expect("again");
    assert_eq!(actions(&again), pair("none", "none"), "{again:#}");
}

#[tokio::test]
async fn on_destroy_keep_leaves_the_records() {
    let f = synced(&both("", "keep")).await;
    f.cloudflare.clear_requests();
    let d = f.destroyed("g1").await.expect("teardown");
    assert_eq!(d["on_destroy"], "keep");
    assert!(f.cloudflare.requests().is_empty());
    assert_eq!(f.cf_records("app").len(), 1);
    assert_eq!(f.r53_records("app").await.len(), 1);
}

#[tokio::test]
async fn on_destroy_delete_removes_only_ours_and_forgets_them() {
    let f = synced(&both("", "delete")).await;
    let d = f.destroyed("g1").await.expect("teardown");
    assert_eq!(actions(&d), pair("delete", "delete"), "{d:#}");
    assert!(f.cf_records("app").is_empty());
    assert!(f.r53_records("app").await.is_empty());
    assert_eq!(f.owner("app").await, None);
    // Delivered again: nothing left to do.
    let again = f
        .call(json!({"action": "sync", "cluster": f.cluster}))
        .await
        .expect("again");
    assert_eq!(actions(&again), pair("none", "none"), "{again:#}");
    // The next morning creates them again.
    let up = f.ready("g2").await.expect("morning");
    assert_eq!(actions(&up), pair("create", "create"), "{up:#}");
}

#[tokio::test]
async fn on_destroy_hostname_points_at_the_maintenance_page_cname_replacing_the_alias() {
    let f = synced(&both("", "maintenance.example.org")).await;
    let d = f.destroyed("g1").await.expect("teardown");
    assert_eq!(actions(&d), pair("update", "update"), "{d:#}");
    let cf = f.cf_records("app");
    assert_eq!(cf[0]["content"], "maintenance.example.org");
    // Alias A -> CNAME: one change batch (DELETE + CREATE), so only the CNAME is left.
    assert_eq!(
        f.r53_records("app").await,
        vec![("CNAME".to_string(), "maintenance.example.org".to_string())]
    );
    // And back to the load balancer (CNAME -> alias A) in the morning.
    let up = f.ready("g2").await.expect("morning");
    assert_eq!(actions(&up), pair("update", "update"), "{up:#}");
    assert_eq!(
        f.r53_records("app").await,
        vec![("A".to_string(), format!("alias {ALB_ZONE} {LB1}"))]
    );
}

#[tokio::test]
async fn stale_events_are_acknowledged_and_change_nothing() {
    let f = synced(&both("", "delete")).await;
    // A Cluster Destroyed redelivered after the cluster came back up.
    f.record_phase(Desired::Up, "g2").await;
    let stale = f
        .call(f.bus_event("Cluster Destroyed", "g1"))
        .await
        .expect("stale");
    assert_eq!(stale["status"], "ignored", "{stale:#}");
    assert_eq!(f.cf_records("app").len(), 1);
    assert_eq!(f.r53_records("app").await.len(), 1);
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let f = DnsFixture::start(&both("", "keep")).await;
    f.set_ingress(Some(LB1));
    f.cloudflare.rate_limit_next(2, 1);
    f.cloudflare.fail_next(1, 502, 0, "bad gateway");
    let r = f.ready("g1").await.expect("sync despite 429s and a 502");
    assert_eq!(actions(&r), pair("create", "create"), "{r:#}");
    let statuses = f.cloudflare.requests().len();
    assert!(
        statuses >= 5,
        "three failed attempts, then zone lookup, list, create"
    );
    assert_eq!(f.cf_records("app").len(), 1);
}

#[tokio::test]
async fn cloudflare_errors_surface_their_five_digit_code() {
    let f = DnsFixture::start(&both("", "keep")).await;
    f.set_ingress(Some(LB1));
    f.cloudflare
        .fail_next_writes(1, 400, 81057, "The record already exists.");
    let e = f.ready("g1").await.expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("81057") && text.contains("already exists"),
        "{text}"
    );
    assert!(f.cf_records("app").is_empty());
    // Route53 went ahead: one record's failure does not hold the others back.
    assert_eq!(f.r53_records("app").await.len(), 1);
    // The retry converges.
    let r = f.ready("g1").await.expect("retry");
    assert_eq!(actions(&r), pair("create", "none"), "{r:#}");
}

#[tokio::test]
async fn a_name_shared_with_a_foreign_record_stays_a_conflict_next_to_ours() {
    let f = DnsFixture::start(&both("", "keep")).await;
    f.set_ingress(Some(LB1));
    let marker = format!("managed-by=fleet cluster={}", f.cluster);
    f.cloudflare.insert(
        &f.cf_zone,
        json!({"type": "A", "name": f.name("app"), "content": "192.0.2.1", "comment": marker}),
    );
    f.cloudflare.insert(
        &f.cf_zone,
        json!({"type": "A", "name": f.name("app"), "content": "192.0.2.2"}),
    );
    let r = f.ready("g1").await.expect("conflict is not an error");
    assert_eq!(
        actions(&r)[0],
        ("cloudflare".to_string(), "conflict".to_string())
    );
    assert!(f.cloudflare.writes().is_empty());
}

#[tokio::test]
async fn dry_run_returns_the_plan_and_writes_nothing() {
    let f = DnsFixture::start(&both("", "keep")).await;
    f.set_ingress(Some(LB1));
    f.record_phase(Desired::Up, "g1").await;
    let r = f
        .call(json!({"action": "sync", "cluster": f.cluster, "dry_run": true}))
        .await
        .expect("dry run");
    assert_eq!(r["dry_run"], true);
    assert_eq!(actions(&r), pair("create", "create"), "{r:#}");
    assert!(f.cloudflare.writes().is_empty());
    assert!(f.cf_records("app").is_empty());
    assert!(f.r53_records("app").await.is_empty());
    assert_eq!(f.owner("app").await, None);
    assert!(f.slack.texts().is_empty());
}

#[tokio::test]
async fn an_ingress_without_a_load_balancer_fails_clearly() {
    let f = DnsFixture::start(&both("", "keep")).await;
    f.set_ingress(None);
    let e = f.ready("g1").await.expect_err("not provisioned");
    assert!(matches!(e, FleetError::Pending(_)), "{e}");
    assert!(
        e.to_string()
            .contains("ingress-nginx/ingress-nginx-controller"),
        "{e}"
    );
    assert!(e.is_retryable());
    assert!(f.cloudflare.writes().is_empty());
}

#[tokio::test]
async fn the_schedule_repairs_drift_on_clusters_that_are_up() {
    let f = synced(&both("", "keep")).await;
    // Someone edits the record by hand.
    let id = f.cf_records("app")[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    f.cloudflare
        .edit(&id, json!({"content": "hand-edit.example.net"}));
    let scheduled = json!({"version": "0", "id": "s1", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    let r = f.call(scheduled.clone()).await.expect("scheduled");
    let mine = r["clusters"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["cluster"] == f.cluster.as_str()))
        .cloned()
        .expect("cluster synced");
    assert_eq!(actions(&mine), pair("update", "none"), "{mine:#}");
    assert_eq!(f.cf_records("app")[0]["content"], LB1);
    // Down clusters are left to on_destroy.
    f.record_phase(Desired::Down, "g1").await;
    let r = f.call(scheduled).await.expect("scheduled");
    assert_eq!(r["clusters"], json!([]));
}

#[tokio::test]
async fn unknown_and_bad_events_change_nothing() {
    let f = DnsFixture::start(&both("", "delete")).await;
    let e = f
        .call(json!({"action": "sync", "cluster": "nope"}))
        .await
        .expect_err("unknown cluster");
    assert!(e.to_string().contains("nope"));
    let e = f
        .call(json!({"action": "sync", "cluster": f.cluster, "dry_run": "yes"}))
        .await
        .expect_err("bad type");
    assert!(e.to_string().contains("dry_run"));
    let mut other = f.bus_event("Cluster Ready", "g1");
    other["detail"]["cluster"] = json!("not-in-config");
    let r = f.call(other).await.expect("acknowledged");
    assert_eq!(r["status"], "ignored");
    assert!(f.cloudflare.requests().is_empty());
}

/// An ingress with an address (so A records), and 150 stale records of ours under its
/// name filling the first page of a listing; the right one is on the second.
async fn crowded_name() -> DnsFixture {
    let f = DnsFixture::start(&both("", "keep")).await;
    let mut svc = fleet_tests::fixtures::dns::ingress_service(None);
    svc["status"] = json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}});
    f.kube.insert(svc);
    let marker = format!("managed-by=fleet cluster={}", f.cluster);
    for i in 0..150 {
        f.cloudflare.insert(
            &f.cf_zone,
            json!({"type": "A", "name": f.name("app"), "content": format!("198.51.100.{}", i + 1), "ttl": 60, "comment": marker}),
        );
    }
    f.cloudflare.insert(
        &f.cf_zone,
        json!({"type": "A", "name": f.name("app"), "content": "203.0.113.7", "ttl": 60, "proxied": true, "comment": marker}),
    );
    f
}

/// The second page of a crowded name cannot be read: the sync fails before it writes
/// anything (a partial listing would make the right record look missing), and the
/// redelivery, with the page readable again, converges.
#[tokio::test]
async fn a_page_that_cannot_be_read_fails_the_sync_before_any_write() {
    let f = crowded_name().await;
    f.cloudflare
        .fail_page(2, 100, 500, 10000, "Internal server error");
    let e = f.ready("g1").await.expect_err("page 2 is unreadable");
    assert!(e.to_string().contains("cloudflare"), "{e}");
    assert!(
        f.cloudflare.writes().is_empty(),
        "{:?}",
        f.cloudflare.writes()
    );
    assert_eq!(f.cf_records("app").len(), 151);
    f.cloudflare.fail_page(2, 0, 500, 10000, "");
    f.ready("g1").await.expect("redelivery");
    let left = f.cf_records("app");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["content"], "203.0.113.7");
}

#[tokio::test]
async fn every_page_of_a_crowded_name_is_read() {
    let f = crowded_name().await;
    let r = f.ready("g1").await.expect("sync");
    assert_eq!(actions(&r)[0].1, "update", "{r:#}");
    let reads: Vec<String> = f
        .cloudflare
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("dns_records"))
        .map(|r| r.query.clone())
        .collect();
    assert!(reads.iter().any(|q| q.contains("page=2")), "{reads:?}");
    // The right record was kept as it was; the stale ones were deleted, none patched.
    let left = f.cf_records("app");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["content"], "203.0.113.7");
    assert!(f.cloudflare.writes().iter().all(|w| w.method == "DELETE"));
}

#[tokio::test]
async fn a_rate_limit_beyond_the_budget_fails_cleanly() {
    let f = DnsFixture::start(&both("", "keep")).await;
    f.set_ingress(Some(LB1));
    f.cloudflare.rate_limit_next(10, 1);
    let e = f.ready("g1").await.expect_err("rate limited");
    let text = e.to_string();
    assert!(text.contains("HTTP 429") && text.contains("971"), "{text}");
    assert!(f.cloudflare.writes().is_empty());
    // Route53 is not held back; the retry finishes Cloudflare.
    assert_eq!(f.r53_records("app").await.len(), 1);
}

#[tokio::test]
async fn changes_are_counted_in_cloudwatch() {
    let f = synced(&both("", "keep")).await;
    let metrics = aws_sdk_cloudwatch::Client::new(&f.sdk)
        .list_metrics()
        .namespace("Fleet/DNS")
        .dimensions(
            aws_sdk_cloudwatch::types::DimensionFilter::builder()
                .name("Cluster")
                .value(&f.cluster)
                .build(),
        )
        .send()
        .await
        .expect("list metrics");
    let mut names: Vec<&str> = metrics
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    names.sort();
    assert_eq!(names, vec!["RecordChanges", "RecordConflicts"]);
}

#[tokio::test]
async fn wait_insync_waits_for_route53_to_apply_the_change() {
    let f = DnsFixture::start(&both("wait_insync = true", "keep")).await;
    f.set_ingress(Some(LB1));
    let r = f.ready("g1").await.expect("sync");
    assert_eq!(actions(&r), pair("create", "create"), "{r:#}");
    // moto reports changes INSYNC at once: no "not INSYNC yet" note.
    assert!(r["changes"][1].get("reason").is_none(), "{r:#}");
}

/// Route53 answers PENDING while a change propagates: the updater polls `GetChange`
/// until it is INSYNC (one poll interval, 5 s, real time here).
#[tokio::test]
async fn wait_insync_polls_a_pending_change_until_it_is_in_sync() {
    let faults = fleet_tests::faults::Faults::default();
    let endpoint = fleet_tests::moto().endpoint.clone();
    let f2 = faults.clone();
    faults
        .scope(&endpoint, async move {
            let f = DnsFixture::start(&both("wait_insync = true", "keep")).await;
            f.set_ingress(Some(LB1));
            f2.hold_route53_changes_pending(1);
            let r = f.ready("g1").await.expect("sync");
            assert_eq!(actions(&r), pair("create", "create"), "{r:#}");
            assert!(
                r["changes"][1].get("reason").is_none(),
                "in sync at last: {r:#}"
            );
            assert_eq!(
                f2.get_change_calls(),
                2,
                "PENDING once, then INSYNC: GetChange polled twice"
            );
        })
        .await;
}

fn case(dir: &str, file: &str) -> String {
    std::fs::read_to_string(
        fleet_tests::workspace_root()
            .join("tests/fixtures/cases")
            .join(dir)
            .join(file),
    )
    .expect("case file")
}

/// Case 09: a Route53 record at the zone apex, the ingress load balancer in ca-west-1
/// (a region the first ELB table lacked): an alias A to that region's NLB zone.
#[tokio::test]
async fn an_apex_record_aliases_a_load_balancer_in_any_elb_region() {
    let f = DnsFixture::start(&dns_section(&[("route53", "{zone}")])).await;
    let patch: serde_json::Value = serde_json::from_str(&case(
        "09-route53-apex-unknown-elb-region",
        "service-status-patch.json",
    ))
    .expect("patch");
    let hostname = patch["status"]["loadBalancer"]["ingress"][0]["hostname"]
        .as_str()
        .expect("hostname")
        .to_string();
    f.set_ingress(Some(&hostname));
    // The case's own sync documents, for this fixture's cluster: the dry run first.
    let mut dry: serde_json::Value = serde_json::from_str(&case(
        "09-route53-apex-unknown-elb-region",
        "sync-dry-run.json",
    ))
    .expect("dry run");
    dry["cluster"] = json!(f.cluster);
    f.record_phase(Desired::Up, "g1").await;
    let plan = f.call(dry).await.expect("dry run");
    assert_eq!(plan["changes"][0]["action"], "create", "{plan:#}");
    assert_eq!(plan["changes"][0]["type"], "A", "{plan:#}");
    let mut sync: serde_json::Value =
        serde_json::from_str(&case("09-route53-apex-unknown-elb-region", "sync.json"))
            .expect("sync");
    sync["cluster"] = json!(f.cluster);
    let r = f.call(sync).await.expect("sync");
    assert_eq!(r["changes"][0]["action"], "create", "{r:#}");
    let apex: Vec<(String, String)> = f
        .r53_apex()
        .await
        .into_iter()
        .filter(|(t, _)| t == "A" || t == "CNAME")
        .collect();
    assert_eq!(
        apex,
        vec![(
            "A".to_string(),
            format!("alias Z02754302KBB00W2LKWZ9 {hostname}")
        )]
    );
}

/// A load balancer in a region with no known ELB zone: at the apex Route53 allows no
/// CNAME, so that record is an error naming the region; the other record still gets
/// its CNAME.
#[tokio::test]
async fn an_unknown_elb_region_at_the_apex_is_an_error_and_other_records_go_on() {
    let f = DnsFixture::start(&dns_section(&[
        ("route53", "{zone}"),
        ("route53", "app.{zone}"),
    ]))
    .await;
    let lb = "k8s-web-0123456789abcdef.elb.xx-nowhere-9.amazonaws.com";
    f.set_ingress(Some(lb));
    let err = f.ready("g1").await.expect_err("the apex cannot be written");
    let text = err.to_string();
    assert!(
        text.contains("xx-nowhere-9") && text.contains("zone apex"),
        "{text}"
    );
    assert_eq!(
        f.r53_records("app").await,
        vec![("CNAME".to_string(), lb.to_string())]
    );
    assert!(f
        .r53_apex()
        .await
        .iter()
        .all(|(t, _)| t == "SOA" || t == "NS"));
}

/// Case 14: the token sees two zones of the name, one `moved` (left in an old account)
/// and one active: the records go to the active one. Two active ones: the sync fails
/// naming both ids and asking for `zone_id`, and writes nothing.
#[tokio::test]
async fn cloudflare_records_go_to_the_one_active_zone_of_the_name() {
    let dns = dns_section(&[("cloudflare", "app.{zone}")]);
    let f = DnsFixture::start(&dns).await;
    // The moved zone was listed first (the older one).
    let moved = f.cloudflare.add_zone_with_status(&f.zone, "moved");
    f.set_ingress(Some(LB1));
    let r = f.ready("g1").await.expect("sync");
    assert_eq!(r["changes"][0]["action"], "create", "{r:#}");
    assert_eq!(f.cf_records("app").len(), 1, "in the active zone");
    assert!(f.cloudflare.records(&moved, &f.name("app")).is_empty());

    let g = DnsFixture::start(&dns).await;
    let second = g.cloudflare.add_zone(&g.zone);
    g.set_ingress(Some(LB1));
    let err = g.ready("g1").await.expect_err("ambiguous zone");
    let text = err.to_string();
    assert!(
        text.contains(&g.cf_zone) && text.contains(&second) && text.contains("zone_id"),
        "{text}"
    );
    assert!(g.cloudflare.writes().is_empty());
}

/// A CNAME cannot join a TXT (or any record) of its name at Cloudflare: a conflict,
/// reported, no write attempted.
#[tokio::test]
async fn a_cname_beside_a_txt_is_a_conflict_not_a_failed_write() {
    let f = DnsFixture::start(&both("", "keep")).await;
    f.set_ingress(Some(LB1));
    f.cloudflare.insert(
        &f.cf_zone,
        json!({"type": "TXT", "name": f.name("app"), "content": "v=spf1 -all", "ttl": 300}),
    );
    let r = f.ready("g1").await.expect("sync");
    assert_eq!(actions(&r), pair("conflict", "create"), "{r:#}");
    assert!(f.cloudflare.writes().is_empty());
    assert!(f
        .slack
        .texts()
        .iter()
        .any(|t| t.contains("cannot share its name")));
}
