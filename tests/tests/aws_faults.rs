//! AWS faults on every call path (see `fleet_tests::faults`): each scenario runs once per
//! operation it makes, with that operation throttled, answered 503, reset or its response
//! lost. Failing every attempt must end in a clean error or a recorded backoff, and the
//! next tick or delivery must complete the work with nothing twice that must be once;
//! failing the first attempt only must be invisible (the SDK retries it).

use fleet_shared::runner::Invocation;
use fleet_shared::schedule::Desired;
use fleet_shared::state::TransitionKind;
use fleet_tests::faults::{sweep, sweep_in, Fired, Shot, LONG_SWEEP_MODES};
use fleet_tests::fixtures::scheduler::{cluster_toml, detail_types, outcome, ts, SchedulerFixture};
use jiff::ToSpan;
use serde_json::json;

fn moto_endpoint() -> String {
    fleet_tests::moto().endpoint.clone()
}

const BERLIN_WEEKDAYS: &str = "Mon-Fri 08:00-20:00 Europe/Berlin";

/// Ticks every 5 minutes over `[from, to)` that may fail: each tick's result for `name`,
/// or `error` when the whole tick failed (only a faulted batch read of the records may).
async fn tick_results(
    f: &SchedulerFixture,
    name: &str,
    from: &str,
    to: &str,
) -> Vec<serde_json::Value> {
    let mut results = Vec::new();
    let mut at = ts(from);
    while at < ts(to) {
        let r = f
            .scheduler
            .handle(json!({"action": "reconcile"}), Invocation::at(at))
            .await;
        results.push(match r {
            Ok(r) => outcome(&r, name)["result"].clone(),
            Err(e) => {
                assert!(e.to_string().contains("DynamoDB"), "{e}");
                json!("error")
            }
        });
        at = at.checked_add(5.minutes()).expect("time");
    }
    results
}

/// The ticks over `[from, to)` with the shot's fault armed (see [`tick_results`]); `None`
/// when nothing was failed. A retried fault (its first attempt only) is invisible: no
/// tick failed, backed off or errored. A fault on every attempt may show.
async fn faulted_ticks(
    shot: &Shot,
    f: &SchedulerFixture,
    name: &str,
    from: &str,
    to: &str,
) -> Option<Fired<Vec<serde_json::Value>>> {
    let fired = shot.fire(tick_results(f, name, from, to)).await?;
    if !shot.every_attempt {
        assert!(
            fired
                .result
                .iter()
                .all(|r| r != "error" && r != "failed" && r != "backoff"),
            "a retried fault showed: {}",
            fired.what
        );
    }
    Some(fired)
}

/// The bus saw `detail_type` and nothing else; more than once only when the publish
/// itself was retried (at least once) or its being marked as published was lost.
fn announced(events: &[String], detail_type: &str, failed: &[String], what: &str) {
    assert!(
        !events.is_empty() && events.iter().all(|e| e == detail_type),
        "{what}: {events:?}"
    );
    if events.len() > 1 {
        assert!(
            failed
                .iter()
                .any(|f| f.contains("PutEvents") || f.contains("UpdateItem")),
            "{what}: {events:?}"
        );
    }
}

/// A morning in destroy mode: build, nodegroups, announce.
#[tokio::test]
async fn the_scheduler_morning_survives_a_fault_on_any_call() {
    let endpoint = moto_endpoint();
    sweep("scheduler", &endpoint, |shot| async move {
        let f =
            SchedulerFixture::start(&[cluster_toml("destroy", BERLIN_WEEKDAYS, "")], None).await;
        let name = f.names[0].clone();
        // Build, nodegroups, announce, the first steady look.
        let Some(Fired { failed, what, .. }) = faulted_ticks(
            &shot,
            &f,
            &name,
            "2026-11-23T07:00:00Z",
            "2026-11-23T07:25:00Z",
        )
        .await
        else {
            return false;
        };
        // The next ticks complete the work.
        f.ticks("2026-11-23T07:25:00Z", "2026-11-23T08:00:00Z")
            .await;
        assert_eq!(f.nodegroups(&name).await.len(), 2, "{what}");
        announced(
            &detail_types(&f.tap.drain().await),
            "Cluster Ready",
            &failed,
            &what,
        );
        let record = f.store.cluster(&name).await.expect("record");
        assert_eq!(record.state.phase, Some(Desired::Up), "{what}");
        assert!(record.state.announced, "{what}");
        let history = f
            .store
            .transitions(
                &name,
                ts("2026-11-23T00:00:00Z"),
                ts("2026-11-24T00:00:00Z"),
            )
            .await
            .expect("history");
        let ups = history
            .iter()
            .filter(|t| t.kind == TransitionKind::Up)
            .count();
        assert_eq!(ups, 1, "{what}: {history:?}");
        true
    })
    .await;
}

/// A morning with everything identity hangs on (typed access entries, Pod Identity, IRSA
/// moved from the recorded issuer, a bootstrap secret from Secrets Manager): a fault on any
/// call, even a response lost after IAM or EKS applied it, ends with one association, the
/// role on the new issuer, the secret applied and `Cluster Ready` once.
#[tokio::test]
async fn the_identity_morning_survives_a_fault_on_any_call() {
    let endpoint = moto_endpoint();
    sweep_in("identities", &endpoint, &LONG_SWEEP_MODES, |shot| async move {
        let sdk = fleet_tests::sdk();
        let iam = aws_sdk_iam::Client::new(&sdk);
        let role = fleet_tests::unique("irsa");
        let old = format!(
            "oidc.eks.eu-west-1.amazonaws.com/id/{}",
            fleet_tests::unique("OLD").to_uppercase().replace('-', "")
        );
        let trust = json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::123456789012:oidc-provider/{old}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {format!("{old}:sub"): "system:serviceaccount:kube-system:alb"}}
        }]});
        iam.create_role()
            .role_name(&role)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .expect("role");
        let key = fleet_tests::unique("fleet/deploy-key");
        aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(&key)
            .secret_string(json!({"identity": "k", "known_hosts": "h"}).to_string())
            .send()
            .await
            .expect("secret");
        let blueprint = cluster_toml("destroy", BERLIN_WEEKDAYS, "").replace(
            "[[cluster.blueprint.nodegroup]]\nname = \"spot\"",
            &format!(
                r#"access = [{{ principal_arn = "arn:aws:iam::123456789012:role/karpenter-node", type = "EC2_LINUX" }}]
pod_identity = [{{ namespace = "kube-system", service_account = "karpenter", role_arn = "arn:aws:iam::123456789012:role/karpenter-controller" }}]
irsa_roles = ["arn:aws:iam::123456789012:role/{role}"]
bootstrap_secrets = [{{ namespace = "flux-system", name = "flux-system", from = "secretsmanager:{key}" }}]

[[cluster.blueprint.addon]]
name = "eks-pod-identity-agent"

[[cluster.blueprint.nodegroup]]
name = "spot""#
            ),
        );
        let f = SchedulerFixture::start(&[blueprint], None).await;
        let name = f.names[0].clone();
        // Yesterday the fleet moved the role to the old issuer.
        f.store
            .record_irsa_issuers(&name, std::slice::from_ref(&old))
            .await
            .expect("recorded issuer");
        let Some(Fired { failed, what, .. }) = faulted_ticks(
            &shot,
            &f,
            &name,
            "2026-11-23T07:00:00Z",
            "2026-11-23T07:25:00Z",
        )
        .await
        else {
            return false;
        };
        f.ticks("2026-11-23T07:25:00Z", "2026-11-23T08:30:00Z")
            .await;
        announced(
            &detail_types(&f.tap.drain().await),
            "Cluster Ready",
            &failed,
            &what,
        );
        let issuer = f
            .eks
            .describe_cluster()
            .name(&name)
            .send()
            .await
            .expect("cluster")
            .cluster
            .and_then(|c| c.identity)
            .and_then(|i| i.oidc)
            .and_then(|o| o.issuer)
            .expect("issuer");
        let host = issuer.trim_start_matches("https://");
        let doc = iam
            .get_role()
            .role_name(&role)
            .send()
            .await
            .expect("role")
            .role
            .and_then(|r| r.assume_role_policy_document)
            .unwrap_or_default();
        let doc = percent_encoding::percent_decode_str(&doc).decode_utf8_lossy().to_string();
        assert!(doc.contains(&format!("oidc-provider/{host}")) && !doc.contains(&old), "{what}: {doc}");
        let associations = f
            .eks
            .list_pod_identity_associations()
            .cluster_name(&name)
            .send()
            .await
            .expect("associations")
            .associations
            .unwrap_or_default();
        assert_eq!(associations.len(), 1, "{what}");
        assert!(f.kube.get("v1", "Secret", "flux-system", "flux-system").is_some(), "{what}");
        let record = f.store.cluster(&name).await.expect("record");
        assert_eq!(
            record.state.oidc_providers,
            vec![format!("arn:aws:iam::123456789012:oidc-provider/{host}")],
            "{what}"
        );
        true
    })
    .await;
}

const LB: &str = "a1b2c3-1234567890.eu-west-1.elb.amazonaws.com";

/// `Cluster Ready` to the DNS updater: Route53 records, owner rows, metrics.
#[tokio::test]
async fn a_dns_sync_survives_a_fault_on_any_call_and_the_redelivery_completes_it() {
    let endpoint = moto_endpoint();
    let dns = r#"
[cluster.dns]
ingress_service = "ingress-nginx/ingress-nginx-controller"
ingress_wait_seconds = 0

[[cluster.dns.record]]
provider = "route53"
zone_id = "{zone_id}"
name = "app.{zone}"

[[cluster.dns.record]]
provider = "route53"
zone_id = "{zone_id}"
name = "api.{zone}"
"#;
    sweep("dns-updater", &endpoint, |shot| async move {
        let f = fleet_tests::fixtures::dns::DnsFixture::start(dns).await;
        f.set_ingress(Some(LB));
        f.record_phase(Desired::Up, "g1").await;
        let ready = f.bus_event("Cluster Ready", "g1");
        let Some(Fired {
            result: first,
            what,
            ..
        }) = shot.fire_result(f.call(ready.clone())).await
        else {
            return false;
        };
        if let Err(e) = &first {
            assert!(!e.to_string().is_empty());
        }
        // A failed delivery is retried by Lambda (or the next event comes). The
        // lease of a sync whose release failed lasts until its deadline; the
        // sync itself was done then.
        if first.is_err() {
            f.call(ready)
                .await
                .unwrap_or_else(|e| panic!("{what}; redelivery: {e}"));
        }
        for label in ["app", "api"] {
            assert_eq!(
                f.r53_records(label).await,
                vec![("A".to_string(), format!("alias Z32O12XQLNTSW2 {LB}"))],
                "{what}"
            );
            assert_eq!(
                f.owner(label).await.as_deref(),
                Some(f.cluster.as_str()),
                "{what}"
            );
        }
        true
    })
    .await;
}

/// A signed webhook: a storage fault is a 5xx (GitHub shows it and the delivery can be
/// redelivered), never a lost or doubled event.
#[tokio::test]
async fn a_webhook_delivery_survives_a_fault_on_any_call() {
    let endpoint = moto_endpoint();
    let run = fleet_tests::fixtures::dora::github_examples("workflow_run")
        .into_iter()
        .find(|e| e["workflow_run"]["conclusion"] == "success")
        .expect("a workflow_run example");
    sweep("dora-webhook", &endpoint, |shot| {
        let run = run.clone();
        async move {
            let f = fleet_tests::fixtures::dora::DoraFixture::start(
                fleet_tests::fixtures::dora::OCTO_SERVICE,
                false,
            )
            .await;
            let request = fleet_tests::fixtures::dora::github_request(
                "workflow_run",
                &run,
                "guid-1",
                fleet_tests::fixtures::dora::GITHUB_SECRET,
            );
            let Some(Fired {
                result: (status, _),
                what,
                ..
            }) = shot.fire(f.post(request.clone())).await
            else {
                return false;
            };
            if shot.every_attempt {
                assert!(status == 200 || status >= 500, "{what}");
            } else {
                assert_eq!(status, 200, "a retried fault showed: {what}");
            }
            // GitHub's redelivery of the same delivery.
            let (again, body) = f.post(request).await;
            assert_eq!(again, 200, "{what}; redelivery: {body}");
            assert_eq!(f.stored(&f.service("octo")).await.len(), 1, "{what}");
            true
        }
    })
    .await;
}

/// A spot warning: the AWS side (finding the cluster, the once-only lease, the event,
/// metrics) faulted anywhere; the node still ends drained, by this delivery or the next.
#[tokio::test]
async fn a_spot_drain_survives_a_fault_on_any_call() {
    let endpoint = moto_endpoint();
    sweep("spot-drainer", &endpoint, |shot| async move {
        let kube = fleet_tests::fakes::kube::FakeKube::start().await;
        kube.replace_evicted_pods(false);
        fleet_tests::fixtures::spot_drainer::small_node(&kube);
        let drainer = fleet_tests::fixtures::spot_drainer::drainer(&kube.url).await;
        let warning = fleet_tests::fixtures::spot_drainer::interruption_warning(
            fleet_tests::fixtures::spot_drainer::SMALL_INSTANCE,
            jiff::Timestamp::now(),
        );
        let Some(Fired {
            result: first,
            what,
            ..
        }) = shot
            .fire_result(drainer.handle(warning.clone(), Invocation::at(jiff::Timestamp::now())))
            .await
        else {
            return false;
        };
        if first.is_err() || fleet_tests::fixtures::spot_drainer::pods_on_node(&kube) > 0 {
            // EventBridge retries a failed invocation with the same event.
            drainer
                .handle(warning, Invocation::at(jiff::Timestamp::now()))
                .await
                .unwrap_or_else(|e| panic!("{what}; redelivery: {e}"));
        }
        assert_eq!(
            fleet_tests::fixtures::spot_drainer::pods_on_node(&kube),
            0,
            "{what}"
        );
        let node = kube
            .get(
                "v1",
                "Node",
                "",
                fleet_tests::fixtures::spot_drainer::SMALL_NODE,
            )
            .expect("node");
        assert_eq!(node["spec"]["unschedulable"], true, "{what}");
        true
    })
    .await;
}

/// A daily Slack post went out exactly once; none only when every attempt of a call on
/// its daily claim (`claim`, the lease's key prefix) failed.
fn posted_once(
    texts: &[String],
    needle: &str,
    failed: &[String],
    claim: &str,
    every_attempt: bool,
    what: &str,
) {
    let posts = texts.iter().filter(|t| t.contains(needle)).count();
    let claim_failed = every_attempt && failed.iter().any(|op| op.contains(claim));
    if claim_failed {
        assert!(posts <= 1, "{what}: {posts} `{needle}` posts");
    } else {
        assert_eq!(posts, 1, "{what}: `{needle}` posts");
    }
}

/// The daily DORA run: the events query, CloudWatch, the digest's daily claim. A run that
/// fails is retried; the digest goes out exactly once, or at most once when the fault hit
/// the digest's own claim ([`posted_once`]).
#[tokio::test]
async fn the_daily_dora_run_survives_a_fault_on_any_call() {
    let endpoint = moto_endpoint();
    sweep("dora-aggregator", &endpoint, |shot| async move {
        let f = fleet_tests::fixtures::dora::DoraFixture::start(
            fleet_tests::fixtures::dora::OCTO_SERVICE,
            false,
        )
        .await;
        let daily =
            json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}});
        // Monday, the digest's day.
        let Some(Fired {
            result: first,
            failed,
            what,
        }) = shot
            .fire_result(f.aggregate(daily.clone(), "2026-11-23T06:00:00Z"))
            .await
        else {
            return false;
        };
        if first.is_err() {
            f.aggregate(daily, "2026-11-23T06:05:00Z")
                .await
                .unwrap_or_else(|e| panic!("{what}; retry: {e}"));
        }
        posted_once(
            &f.slack.texts(),
            "DORA",
            &failed,
            "dora#digest#",
            shot.every_attempt,
            &what,
        );
        true
    })
    .await;
}

/// The daily cost report: Cost Explorer, the cache, the state table, CloudWatch, the
/// daily Slack claim. A failed run is retried and reports; Slack hears of it exactly once
/// (at most once when the fault hit the Slack claim itself, [`posted_once`]).
#[tokio::test]
async fn the_daily_cost_report_survives_a_fault_on_any_call() {
    let endpoint = moto_endpoint();
    sweep("cost-reporter", &endpoint, |shot| async move {
        let f = fleet_tests::fixtures::cost::CostFixture::start(
            &[("destroy", "Mon-Fri 08:00-20:00 UTC")],
            "",
            fleet_tests::fixtures::cost::forecast_rule(10.0, 8.0, 12.0),
        )
        .await;
        let daily =
            json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}});
        let Some(Fired {
            result: first,
            failed,
            what,
        }) = shot
            .fire_result(f.call(daily.clone(), "2026-11-23T06:30:00Z"))
            .await
        else {
            return false;
        };
        let report = match first {
            Ok(r) => r,
            Err(_) => f
                .call(daily, "2026-11-23T06:35:00Z")
                .await
                .unwrap_or_else(|e| panic!("{what}; retry: {e}")),
        };
        // The figures, not only the shape: the rule's forecast and the
        // month's seeded spend come through whatever call failed.
        let total = report["month_to_date"]["total_usd"].as_f64();
        let total = total.unwrap_or_else(|| panic!("{what}: {report}"));
        // Both sides are rounded to cents: equal within half a cent.
        for (field, rule) in [
            ("month_end_usd", 10.0),
            ("lower_usd", 8.0),
            ("upper_usd", 12.0),
        ] {
            let got = report["forecast"][field].as_f64();
            assert!(
                got.is_some_and(|v| (v - (total + rule)).abs() < 0.005),
                "{what}: forecast {field} {got:?}, want {}: {report}",
                total + rule
            );
        }
        let saved = &report["savings"]["clusters"][0];
        assert!(
            saved["hours_in_period"].as_f64().is_some_and(|h| h > 0.0)
                && saved["hours_up"].as_f64().is_some(),
            "{what}: {report}"
        );
        posted_once(
            &f.slack.texts(),
            "Fleet cost",
            &failed,
            "cost#slack#",
            shot.every_attempt,
            &what,
        );
        true
    })
    .await;
}

/// An evening in destroy mode, after a clean morning: nodegroups, cluster and the
/// announcement, each call failed in turn. The cluster ends deleted and `Cluster
/// Destroyed` is published (more than once only if a publish or its record was faulted).
#[tokio::test]
async fn the_scheduler_evening_survives_a_fault_on_any_call() {
    let endpoint = moto_endpoint();
    sweep("scheduler evening", &endpoint, |shot| async move {
        let f =
            SchedulerFixture::start(&[cluster_toml("destroy", BERLIN_WEEKDAYS, "")], None).await;
        let name = f.names[0].clone();
        f.ticks("2026-11-23T07:00:00Z", "2026-11-23T07:20:00Z")
            .await;
        assert_eq!(detail_types(&f.tap.drain().await), vec!["Cluster Ready"]);
        let Some(Fired { failed, what, .. }) = faulted_ticks(
            &shot,
            &f,
            &name,
            "2026-11-23T19:00:00Z",
            "2026-11-23T19:25:00Z",
        )
        .await
        else {
            return false;
        };
        f.ticks("2026-11-23T19:25:00Z", "2026-11-23T19:50:00Z")
            .await;
        assert!(!f.cluster_exists(&name).await, "{what}");
        announced(
            &detail_types(&f.tap.drain().await),
            "Cluster Destroyed",
            &failed,
            &what,
        );
        let record = f.store.cluster(&name).await.expect("record");
        assert_eq!(record.state.phase, Some(Desired::Down), "{what}");
        true
    })
    .await;
}

/// A network's morning (a scale-mode cluster naming it): NAT gateway, Elastic IP,
/// routes. Whatever call fails, the next ticks leave one gateway, one address and the
/// routes in the morning, and nothing that bills at night; each event at least once. The
/// faulted ticks are the network's own (the cluster's evening is done before them), to
/// keep the sweep short.
#[tokio::test]
async fn a_network_survives_a_fault_on_any_call() {
    use fleet_tests::fixtures::network::{
        addresses, billing_nat_gateways, default_route, network_name, Vpc,
    };
    let endpoint = moto_endpoint();
    // The morning only: its creates are what is not idempotent by nature (an address
    // allocated twice, a token spent); the evening's deletes take "already gone" as done
    // (network.rs covers a gateway stuck deleting). Both phases swept take over 15
    // minutes on moto.
    for phase in ["morning"] {
        let name = format!("network {phase}");
        sweep_in(&name, &endpoint, &LONG_SWEEP_MODES, |shot| async move {
            let ec2 = aws_sdk_ec2::Client::new(&fleet_tests::sdk());
            let vpc = Vpc::create(&ec2).await;
            let network = network_name();
            let toml = cluster_toml(
                "scale",
                BERLIN_WEEKDAYS,
                &format!("network = \"{network}\""),
            );
            let f = SchedulerFixture::start_with(&[toml], &vpc.network_toml(&network, false), None)
                .await;
            let name = f.names[0].clone();
            // The morning: provision, pending, routes and announce.
            let mut from = "2026-11-23T07:00:00Z";
            let mut to = "2026-11-23T07:15:00Z";
            if phase == "evening" {
                f.ticks("2026-11-23T07:00:00Z", "2026-11-23T07:20:00Z")
                    .await;
                // The cluster goes down first; then the network's evening is faulted.
                f.ticks("2026-11-23T19:00:00Z", "2026-11-23T19:10:00Z")
                    .await;
                f.tap.drain().await;
                (from, to) = ("2026-11-23T19:10:00Z", "2026-11-23T19:25:00Z");
            }
            let Some(Fired { failed, what, .. }) = faulted_ticks(&shot, &f, &name, from, to).await
            else {
                return false;
            };
            // Past the backoff of one failure (2 minutes): the next ticks complete the work.
            let later = ts(to).checked_add(5.minutes()).expect("time");
            let end = later.checked_add(15.minutes()).expect("time");
            f.ticks(&later.to_string(), &end.to_string()).await;
            let live = billing_nat_gateways(&ec2, &vpc.public_subnet).await;
            let held = addresses(&ec2, &network).await;
            let events: Vec<String> = detail_types(&f.tap.drain().await)
                .into_iter()
                .filter(|e| e.starts_with("Network"))
                .collect();
            let record = f.store.network(&network).await.expect("record");
            if phase == "morning" {
                assert_eq!(live.len(), 1, "{what}: {live:?}");
                assert_eq!(
                    held.len(),
                    1,
                    "{what}: one address, extras released: {held:?}"
                );
                for rtb in &vpc.private_tables {
                    assert_eq!(
                        default_route(&ec2, rtb).await.as_ref(),
                        live.first(),
                        "{what}"
                    );
                }
                announced(&events, "Network Ready", &failed, &what);
                assert_eq!(record.phase, Some(Desired::Up), "{what}");
            } else {
                assert!(live.is_empty(), "{what}: {live:?}");
                assert!(held.is_empty(), "{what}: {held:?}");
                for rtb in &vpc.private_tables {
                    assert_eq!(default_route(&ec2, rtb).await, None, "{what}");
                }
                announced(&events, "Network Down", &failed, &what);
                assert!(record.gateways.is_empty(), "{what}: {record:?}");
            }
            true
        })
        .await;
    }
}
