//! Running out of Lambda time: a handler stops cleanly before its deadline, what it did
//! stays done, and the next invocation carries on from there. AWS is made slow with the
//! fault-injecting client (`fleet_tests::faults`); everything else is moto.

use std::time::{Duration, Instant};

use fleet_shared::runner::Invocation;
use fleet_tests::faults::Faults;
use fleet_tests::fixtures::scheduler::{cluster_toml, detail_types, outcome, ts, SchedulerFixture};
use jiff::{Timestamp, ToSpan};
use serde_json::json;

/// An invocation deciding at `now` with `seconds` of real time left.
fn with_deadline(now: Timestamp, seconds: u64) -> Invocation {
    Invocation::at(now).with_budget(Duration::from_secs(seconds))
}

/// Twenty clusters and a slow AWS: the tick ends before its deadline with the clusters it
/// could not reach skipped; the next ticks build them all, each once.
#[tokio::test]
async fn a_scheduler_tick_out_of_time_skips_the_rest_and_the_next_tick_resumes() {
    let faults = Faults::default();
    let endpoint = fleet_tests::moto().endpoint.clone();
    faults
        .clone()
        .scope(&endpoint, async move {
            let tables: Vec<String> = (0..20)
                .map(|_| cluster_toml("destroy", "Mon-Fri 08:00-20:00 Europe/Berlin", ""))
                .collect();
            let f = SchedulerFixture::start(&tables, None).await;
            // Every AWS request takes 400 ms; the tick has 4 s, 3 of them kept as margin:
            // the first 16 clusters (one slot each) take two requests, the last 4 cannot.
            faults.set_latency(Duration::from_millis(400));
            let at = ts("2026-11-23T07:00:00Z");
            let started = Instant::now();
            let r = f
                .scheduler
                .handle(json!({"action": "reconcile"}), with_deadline(at, 4))
                .await
                .expect("the tick answers");
            assert!(started.elapsed() < Duration::from_secs(4), "{r}");
            let results: Vec<&str> = f
                .names
                .iter()
                .map(|n| outcome(&r, n)["result"].as_str().unwrap_or_default())
                .collect();
            assert!(results.contains(&"skipped"), "{results:?}");
            assert!(
                results.iter().all(|r| ["skipped", "done"].contains(r)),
                "{results:?}"
            );
            // The next ticks, at normal speed, finish the morning for every cluster.
            faults.set_latency(Duration::ZERO);
            f.ticks("2026-11-23T07:05:00Z", "2026-11-23T07:40:00Z")
                .await;
            for name in &f.names {
                assert_eq!(f.nodegroups(name).await.len(), 2, "{name}");
            }
            let events = detail_types(&f.tap.drain().await);
            assert_eq!(events.len(), 20, "one Cluster Ready each: {events:?}");
        })
        .await;
}

const LB: &str = "a1b2c3-1234567890.eu-west-1.elb.amazonaws.com";

/// Six Route53 records, a slow Route53 and a deadline close enough for some of them:
/// the sync stops between records with `Pending` (Lambda retries it), and the retry
/// plans only what is left.
#[tokio::test]
async fn a_dns_sync_out_of_time_stops_between_records_and_the_retry_finishes() {
    let faults = Faults::default();
    let endpoint = fleet_tests::moto().endpoint.clone();
    faults
        .clone()
        .scope(&endpoint, async move {
            let mut dns = String::from(
                "[cluster.dns]\ningress_service = \"ingress-nginx/ingress-nginx-controller\"\ningress_wait_seconds = 0\n",
            );
            for i in 0..6 {
                dns.push_str(&format!(
                    "[[cluster.dns.record]]\nprovider = \"route53\"\nzone_id = \"{{zone_id}}\"\nname = \"r{i}.{{zone}}\"\nwait_insync = false\n"
                ));
            }
            let f = fleet_tests::fixtures::dns::DnsFixture::start(&dns).await;
            f.set_ingress(Some(LB));
            f.record_phase(fleet_shared::schedule::Desired::Up, "g1").await;
            faults.set_latency(Duration::from_millis(400));
            // 15 s of margin: 18 s leave time for a record or two at most.
            let now = Timestamp::now();
            let event = f.bus_event("Cluster Ready", "g1");
            let first = f.updater.handle(event.clone(), with_deadline(now, 18)).await;
            assert!(Timestamp::now() < now.checked_add(18.seconds()).expect("time"));
            let e = first.expect_err("out of time");
            assert!(e.to_string().contains("out of time after"), "{e}");
            let mut done = 0;
            for i in 0..6 {
                done += f.r53_records(&format!("r{i}")).await.len();
            }
            assert!(done < 6, "all {done} records done: the sync did not stop");
            faults.set_latency(Duration::ZERO);
            let retry = f
                .updater
                .handle(event, with_deadline(Timestamp::now(), 300))
                .await
                .expect("the retry finishes");
            let creates = fleet_tests::fixtures::dns::actions(&retry)
                .iter()
                .filter(|(_, action)| action == "create")
                .count();
            assert_eq!(creates, 6 - done, "{retry}");
            for i in 0..6 {
                assert_eq!(f.r53_records(&format!("r{i}")).await.len(), 1);
            }
        })
        .await;
}
