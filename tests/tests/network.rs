//! `[[network]]` (issue #21) on moto, whose NAT gateways behave as EC2's (pending, then
//! available; deleting, then deleted; the address freed only then; ClientToken honoured;
//! see `tests/support/moto_server.py`): a day of a destroy-mode cluster with a network,
//! two clusters sharing one, a route table someone else routes, a NAT gateway stuck
//! deleting, a NAT gateway that fails (and fails again), a network removed from the
//! config, the network's lease, and the fake's own behaviour.

use fleet_shared::schedule::Desired;
use fleet_tests::fixtures::network::{
    addresses, billing_nat_gateways, default_route, nat_gateways, network_name, steer, Vpc,
};
use fleet_tests::fixtures::scheduler::{cluster_toml, detail_types, outcome, ts, SchedulerFixture};
use jiff::{Timestamp, ToSpan};
use serde_json::Value;

/// Up 07:00-19:00 UTC on a November weekday.
const WEEKDAYS: &str = "Mon-Fri 08:00-20:00 Europe/Berlin";
/// Up 07:00-21:00 UTC.
const LATE: &str = "Mon-Fri 08:00-22:00 Europe/Berlin";

struct Net {
    f: SchedulerFixture,
    ec2: aws_sdk_ec2::Client,
    vpc: Vpc,
    network: String,
}

/// Clusters of `(mode, uptime)` that all name one network over a fresh VPC.
async fn net(
    clusters: &[(&str, &str)],
    adopt_routes: bool,
    before: impl AsyncFnOnce(&aws_sdk_ec2::Client, &Vpc),
) -> Net {
    let sdk = fleet_tests::sdk();
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let vpc = Vpc::create(&ec2).await;
    before(&ec2, &vpc).await;
    let network = network_name();
    let tomls: Vec<String> = clusters
        .iter()
        .map(|(mode, uptime)| cluster_toml(mode, uptime, &format!("network = \"{network}\"")))
        .collect();
    let f =
        SchedulerFixture::start_with(&tomls, &vpc.network_toml(&network, adopt_routes), None).await;
    Net {
        f,
        ec2,
        vpc,
        network,
    }
}

fn network_outcome<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["networks"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name))
        .expect("network in the tick's answer")
}

impl Net {
    /// Ticks every 5 minutes from `from`, at most `max`, until `done` holds after one;
    /// returns each tick's answer.
    async fn ticks_until(
        &self,
        from: &str,
        max: usize,
        done: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let mut at: Timestamp = ts(from);
        let mut out = vec![];
        for _ in 0..max {
            let r = self.f.tick(at).await;
            let stop = done(&r);
            out.push(r);
            if stop {
                break;
            }
            at = at.checked_add(5.minutes()).expect("time");
        }
        out
    }

    /// The morning of the first cluster (a weekday from 07:00 UTC) until it is steady:
    /// its name, and the network's one NAT gateway.
    async fn up_with_its_nat_gateway(&self) -> (String, Vec<String>) {
        let name = self.f.names[0].clone();
        self.ticks_until("2026-11-23T07:00:00Z", 12, |r| {
            outcome(r, &name)["step"] == "none"
        })
        .await;
        let nat = billing_nat_gateways(&self.ec2, &self.vpc.public_subnet).await;
        assert_eq!(nat.len(), 1);
        (name, nat)
    }

    async fn routes(&self) -> Vec<Option<String>> {
        let mut out = vec![];
        for rtb in &self.vpc.private_tables {
            out.push(default_route(&self.ec2, rtb).await);
        }
        out
    }

    /// Nothing of the network that bills by the hour: no NAT gateway but `deleted` ones,
    /// no Elastic IP, no route to a NAT gateway.
    async fn assert_nothing_bills(&self) {
        assert!(billing_nat_gateways(&self.ec2, &self.vpc.public_subnet)
            .await
            .is_empty());
        assert!(addresses(&self.ec2, &self.network).await.is_empty());
        assert!(
            self.routes()
                .await
                .iter()
                .all(|r| !r.as_deref().unwrap_or("").starts_with("nat-")),
            "{:?}",
            self.routes().await
        );
    }
}

fn steps(ticks: &[Value], cluster: &str) -> Vec<String> {
    ticks
        .iter()
        .map(|t| {
            outcome(t, cluster)["step"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn a_day_of_a_destroy_mode_cluster_with_its_network() {
    let n = net(&[("destroy", WEEKDAYS)], false, async |_, _| {}).await;
    let name = n.f.names[0].clone();
    // Morning: nodegroups only once the NAT gateway is available and the routes in place.
    let mut at = ts("2026-11-23T07:00:00Z");
    let mut seen_nodegroups = false;
    for _ in 0..12 {
        let r = n.f.tick(at).await;
        let step = outcome(&r, &name)["step"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if step.starts_with("create-nodegroups") {
            seen_nodegroups = true;
            let nats = nat_gateways(&n.ec2, &n.vpc.public_subnet).await;
            assert_eq!(nats.len(), 1, "{nats:?}");
            assert_eq!(nats[0].1, "available");
            assert_eq!(n.routes().await, vec![Some(nats[0].0.clone()); 2]);
        } else if !seen_nodegroups && step.starts_with("wait: network") {
            assert!(!network_outcome(&r, &n.network)["ready"]
                .as_bool()
                .unwrap_or(true));
        }
        if step == "none" {
            break;
        }
        at = at.checked_add(5.minutes()).expect("time");
    }
    assert!(seen_nodegroups);
    let events = detail_types(&n.f.tap.drain().await);
    assert_eq!(
        events,
        vec!["Network Ready", "Cluster Ready"],
        "the network first"
    );
    let record = n.f.store.network(&n.network).await.expect("record");
    assert_eq!(record.phase, Some(Desired::Up));
    assert!(record.announced);
    let gateway = record
        .gateways
        .values()
        .next()
        .expect("a recorded gateway")
        .clone();
    assert!(gateway.allocation_id.is_some() && gateway.nat_gateway_id.is_some());
    // A tick more changes nothing.
    let r = n.f.tick(ts("2026-11-23T12:00:00Z")).await;
    assert_eq!(network_outcome(&r, &n.network)["step"], "none");
    assert_eq!(network_outcome(&r, &n.network)["result"], "steady");
    // Evening: the cluster down first, then routes, NAT gateway, address.
    let ticks = n
        .ticks_until("2026-11-23T19:00:00Z", 16, |r| {
            network_outcome(r, &n.network)["result"] == "steady"
                && outcome(r, &name)["step"] == "none"
        })
        .await;
    assert!(
        !n.f.cluster_exists(&name).await,
        "{:?}",
        steps(&ticks, &name)
    );
    n.assert_nothing_bills().await;
    assert_eq!(n.routes().await, vec![None, None]);
    let events = detail_types(&n.f.tap.drain().await);
    assert_eq!(events, vec!["Cluster Destroyed", "Network Down"]);
    let record = n.f.store.network(&n.network).await.expect("record");
    assert_eq!(record.phase, Some(Desired::Down));
    assert!(record.gateways.is_empty(), "{record:?}");
    // The next morning makes a new gateway with a new address.
    n.ticks_until("2026-11-24T07:00:00Z", 12, |r| {
        outcome(r, &name)["step"] == "none"
    })
    .await;
    let record = n.f.store.network(&n.network).await.expect("record");
    let next = record.gateways.values().next().expect("a gateway").clone();
    assert_ne!(next.token, gateway.token);
    assert_ne!(next.allocation_id, gateway.allocation_id);
    assert_eq!(
        billing_nat_gateways(&n.ec2, &n.vpc.public_subnet)
            .await
            .len(),
        1
    );
    // Plan and status show the network.
    let plan =
        n.f.call(
            serde_json::json!({"action": "plan"}),
            ts("2026-11-24T10:00:00Z"),
        )
        .await;
    assert_eq!(plan["networks"][0]["name"], n.network.as_str());
    assert_eq!(plan["networks"][0]["ready"], true);
    let status =
        n.f.call(
            serde_json::json!({"action": "status"}),
            ts("2026-11-24T10:00:00Z"),
        )
        .await;
    assert_eq!(status["networks"][0]["recorded"]["phase"], "up");
    assert!(
        status["networks"][0]["uptime_hours_this_month"]
            .as_f64()
            .unwrap_or(0.0)
            > 12.0
    );
}

#[tokio::test]
async fn a_shared_network_goes_down_only_when_both_clusters_are_down() {
    let n = net(
        &[("destroy", WEEKDAYS), ("scale", LATE)],
        false,
        async |_, _| {},
    )
    .await;
    let (early, late) = (n.f.names[0].clone(), n.f.names[1].clone());
    n.ticks_until("2026-11-23T07:00:00Z", 14, |r| {
        outcome(r, &early)["step"] == "none" && outcome(r, &late)["step"] == "none"
    })
    .await;
    assert_eq!(
        billing_nat_gateways(&n.ec2, &n.vpc.public_subnet)
            .await
            .len(),
        1
    );
    // 19:00-20:30 UTC: the first is down, the second still up; the network stays.
    let ticks = n.ticks_until("2026-11-23T19:00:00Z", 18, |_| false).await;
    assert!(
        !n.f.cluster_exists(&early).await,
        "{:?}",
        steps(&ticks, &early)
    );
    let last = ticks.last().expect("ticks");
    assert_eq!(network_outcome(last, &n.network)["desired"], "up");
    assert_eq!(
        billing_nat_gateways(&n.ec2, &n.vpc.public_subnet)
            .await
            .len(),
        1
    );
    // After 21:00 UTC the second goes down, then the network.
    n.ticks_until("2026-11-23T21:00:00Z", 16, |r| {
        network_outcome(r, &n.network)["result"] == "steady" && outcome(r, &late)["step"] == "none"
    })
    .await;
    n.assert_nothing_bills().await;
    let events = detail_types(&n.f.tap.drain().await);
    let down = events
        .iter()
        .position(|e| e == "Network Down")
        .expect("Network Down");
    assert_eq!(
        events.iter().filter(|e| *e == "Cluster Destroyed").count(),
        2,
        "{events:?}"
    );
    assert!(
        events[..down]
            .iter()
            .filter(|e| *e == "Cluster Destroyed")
            .count()
            == 2,
        "{events:?}"
    );
}

#[tokio::test]
async fn a_route_table_someone_else_routes_is_reported_and_left_alone() {
    let n = net(&[("destroy", WEEKDAYS)], false, async |ec2, vpc| {
        ec2.create_route()
            .route_table_id(&vpc.private_tables[0])
            .destination_cidr_block("0.0.0.0/0")
            .gateway_id(&vpc.internet_gateway)
            .send()
            .await
            .expect("their route");
    })
    .await;
    let name = n.f.names[0].clone();
    let ticks = n
        .ticks_until("2026-11-23T07:00:00Z", 12, |r| {
            outcome(r, &name)["step"] == "none"
        })
        .await;
    let last = network_outcome(ticks.last().expect("ticks"), &n.network);
    let notes = last["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "{}: default route -> {}",
            n.vpc.private_tables[0], n.vpc.internet_gateway
        )),
        "{notes}"
    );
    let routes = n.routes().await;
    assert_eq!(routes[0].as_deref(), Some(n.vpc.internet_gateway.as_str()));
    assert!(routes[1].as_deref().unwrap_or("").starts_with("nat-"));
    // Told once, not every tick.
    let conflicts =
        n.f.slack
            .texts()
            .iter()
            .filter(|t| t.contains("is not the fleet's"))
            .count();
    assert_eq!(conflicts, 1);
    n.ticks_until("2026-11-23T19:00:00Z", 16, |r| {
        network_outcome(r, &n.network)["result"] == "steady" && outcome(r, &name)["step"] == "none"
    })
    .await;
    assert_eq!(
        n.routes().await[0].as_deref(),
        Some(n.vpc.internet_gateway.as_str())
    );
    assert!(billing_nat_gateways(&n.ec2, &n.vpc.public_subnet)
        .await
        .is_empty());
}

#[tokio::test]
async fn adopt_routes_replaces_a_route_that_points_elsewhere_and_gives_it_back_at_night() {
    let n = net(&[("scale", WEEKDAYS)], true, async |ec2, vpc| {
        ec2.create_route()
            .route_table_id(&vpc.private_tables[0])
            .destination_cidr_block("0.0.0.0/0")
            .gateway_id(&vpc.internet_gateway)
            .send()
            .await
            .expect("their route");
    })
    .await;
    let name = n.f.names[0].clone();
    n.ticks_until("2026-11-23T07:00:00Z", 12, |r| {
        outcome(r, &name)["step"] == "none"
    })
    .await;
    let nat = billing_nat_gateways(&n.ec2, &n.vpc.public_subnet).await;
    assert_eq!(n.routes().await, vec![Some(nat[0].clone()); 2]);
    let record = n.f.store.network(&n.network).await.expect("record");
    assert_eq!(
        record.adopted_routes.get(&n.vpc.private_tables[0]),
        Some(&n.vpc.internet_gateway),
        "what was there is recorded"
    );
    // The evening gives it back as it was; the table that had none has none again.
    n.ticks_until("2026-11-23T19:00:00Z", 16, |r| {
        network_outcome(r, &n.network)["result"] == "steady"
    })
    .await;
    assert_eq!(
        n.routes().await,
        vec![Some(n.vpc.internet_gateway.clone()), None]
    );
    assert!(billing_nat_gateways(&n.ec2, &n.vpc.public_subnet)
        .await
        .is_empty());
    let record = n.f.store.network(&n.network).await.expect("record");
    assert!(record.adopted_routes.is_empty(), "{record:?}");
}

#[tokio::test]
async fn a_nat_gateway_stuck_deleting_is_waited_for_across_ticks() {
    let n = net(&[("scale", WEEKDAYS)], false, async |_, _| {}).await;
    let name = n.f.names[0].clone();
    n.ticks_until("2026-11-23T07:00:00Z", 12, |r| {
        outcome(r, &name)["step"] == "none"
    })
    .await;
    steer(
        &n.ec2,
        &n.vpc.public_subnet,
        "fleet-test:nat-deleting",
        Some("stuck"),
    )
    .await;
    let ticks = n.ticks_until("2026-11-23T19:00:00Z", 10, |_| false).await;
    let waits = ticks
        .iter()
        .filter(|t| {
            network_outcome(t, &n.network)["notes"]
                .to_string()
                .contains("is being deleted")
        })
        .count();
    assert!(
        waits >= 5,
        "{:?}",
        ticks
            .iter()
            .map(|t| network_outcome(t, &n.network).clone())
            .collect::<Vec<_>>()
    );
    // Its address is still held (associated until the gateway is gone), and recorded.
    assert_eq!(addresses(&n.ec2, &n.network).await.len(), 1);
    assert!(!detail_types(&n.f.tap.drain().await).contains(&"Network Down".to_string()));
    steer(
        &n.ec2,
        &n.vpc.public_subnet,
        "fleet-test:nat-deleting",
        None,
    )
    .await;
    n.ticks_until("2026-11-23T20:00:00Z", 6, |r| {
        network_outcome(r, &n.network)["result"] == "steady"
    })
    .await;
    n.assert_nothing_bills().await;
    assert_eq!(detail_types(&n.f.tap.drain().await), vec!["Network Down"]);
}

#[tokio::test]
async fn a_failed_nat_gateway_is_replaced_with_a_fresh_address_before_the_nodes_come() {
    let n = net(&[("destroy", WEEKDAYS)], false, async |ec2, vpc| {
        steer(
            ec2,
            &vpc.public_subnet,
            "fleet-test:nat-fails",
            Some("Network vpc-x has no Internet gateway attached"),
        )
        .await;
    })
    .await;
    let name = n.f.names[0].clone();
    // An hour of a subnet whose NAT gateways keep failing: each is replaced, the cause is
    // told once, and the replacements back off longer each time.
    let ticks = n.ticks_until("2026-11-23T07:00:00Z", 12, |_| false).await;
    let first =
        n.f.store
            .network(&n.network)
            .await
            .expect("record")
            .gateways
            .values()
            .next()
            .cloned()
            .expect("gateway");
    assert!(steps(&ticks, &name)
        .iter()
        .all(|s| !s.starts_with("create-nodegroups")));
    let told: Vec<String> =
        n.f.slack
            .texts()
            .into_iter()
            .filter(|t| t.contains("no Internet gateway attached"))
            .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        ticks
            .iter()
            .any(|t| network_outcome(t, &n.network)["result"] == "backoff"),
        "{:?}",
        ticks
            .iter()
            .map(|t| network_outcome(t, &n.network)["step"].clone())
            .collect::<Vec<_>>()
    );
    let record = n.f.store.network(&n.network).await.expect("record");
    assert!(record.attempts >= 2, "{record:?}");
    assert!(
        addresses(&n.ec2, &n.network).await.len() <= 1,
        "no address piles up"
    );
    steer(&n.ec2, &n.vpc.public_subnet, "fleet-test:nat-fails", None).await;
    let ticks = n
        .ticks_until("2026-11-23T08:00:00Z", 24, |r| {
            outcome(r, &name)["step"] == "none"
        })
        .await;
    assert!(steps(&ticks, &name)
        .iter()
        .any(|s| s.starts_with("create-nodegroups")));
    let record = n.f.store.network(&n.network).await.expect("record");
    assert_eq!(record.attempts, 0, "cleared once ready: {record:?}");
    assert_eq!(record.last_error, None);
    let second = record.gateways.values().next().cloned().expect("gateway");
    assert_ne!(second.allocation_id, first.allocation_id, "a fresh address");
    assert_eq!(
        addresses(&n.ec2, &n.network).await,
        vec![second.allocation_id.clone().expect("alloc")]
    );
    let live = billing_nat_gateways(&n.ec2, &n.vpc.public_subnet).await;
    assert_eq!(live, vec![second.nat_gateway_id.clone().expect("nat")]);
}

#[tokio::test]
async fn a_network_removed_from_the_config_is_taken_away() {
    let mut n = net(&[("scale", WEEKDAYS)], false, async |_, _| {}).await;
    let (name, nat) = n.up_with_its_nat_gateway().await;
    assert!(n
        .f
        .store
        .known_networks()
        .await
        .expect("known")
        .iter()
        .any(|(name, _)| *name == n.network));
    n.f.tap.drain().await;
    // A deploy drops the `[[network]]` (and the cluster's `network` key) at midday.
    n.f.reconfigure(&[cluster_toml("scale", WEEKDAYS, "")], "");
    let ticks = n
        .ticks_until("2026-11-23T12:00:00Z", 10, |r| r.get("networks").is_none())
        .await;
    let last = ticks.last().expect("ticks");
    assert!(
        last.get("networks").is_none(),
        "{:?}",
        ticks
            .iter()
            .map(|t| t["networks"].clone())
            .collect::<Vec<_>>()
    );
    assert!(billing_nat_gateways(&n.ec2, &n.vpc.public_subnet)
        .await
        .is_empty());
    assert!(addresses(&n.ec2, &n.network).await.is_empty());
    // Its route tables are no longer the fleet's to touch: the routes stay, as blackholes,
    // and people are told so.
    assert_eq!(n.routes().await, vec![Some(nat[0].clone()); 2]);
    assert!(n
        .f
        .slack
        .texts()
        .iter()
        .any(|t| t.contains("was removed from the config") && t.contains("blackholes")));
    assert_eq!(detail_types(&n.f.tap.drain().await), vec!["Network Down"]);
    assert!(!n
        .f
        .store
        .known_networks()
        .await
        .expect("known")
        .iter()
        .any(|(name, _)| *name == n.network));
    let record = n.f.store.network(&n.network).await.expect("record");
    assert_eq!(record.phase, Some(Desired::Down));
    assert!(record.gateways.is_empty());
    // The cluster went on as a cluster without a network.
    let r = n.f.tick(ts("2026-11-23T13:00:00Z")).await;
    assert_eq!(outcome(&r, &name)["step"], "none");
}

/// The config moves a network and its cluster to another region at midday, while both
/// are up: the cluster is refused (it still runs where it is) and the network's NAT
/// gateway, which its nodes still need, stays; nothing is made in the new region. Moved
/// back, the tick is as before.
#[tokio::test]
async fn a_network_moved_while_its_cluster_runs_keeps_its_egress() {
    let mut n = net(&[("scale", WEEKDAYS)], false, async |_, _| {}).await;
    let (name, nat) = n.up_with_its_nat_gateway().await;
    let here_cluster = cluster_toml("scale", WEEKDAYS, &format!("network = \"{}\"", n.network));
    let here_network = n.vpc.network_toml(&n.network, false);
    let moved_cluster = here_cluster.replace(
        &format!("network = \"{}\"", n.network),
        &format!("network = \"{}\"\nregion = \"us-east-1\"", n.network),
    );
    let moved_network = here_network.replace(
        &format!("name = \"{}\"\n", n.network),
        &format!("name = \"{}\"\nregion = \"us-east-1\"\n", n.network),
    );
    n.f.reconfigure(std::slice::from_ref(&moved_cluster), &moved_network);
    let r = n.f.tick(ts("2026-11-23T12:00:00Z")).await;
    let net = network_outcome(&r, &n.network);
    assert_eq!(net["ready"], false, "{net}");
    assert!(
        net["notes"]
            .to_string()
            .contains("the config moved it from hub/eu-west-1 to hub/us-east-1"),
        "{net}"
    );
    let refused = outcome(&r, &name);
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("still runs in hub/eu-west-1"),
        "{refused}"
    );
    // The running cluster's egress is untouched; nothing in the new region.
    assert_eq!(
        billing_nat_gateways(&n.ec2, &n.vpc.public_subnet).await,
        nat
    );
    assert_eq!(n.routes().await, vec![Some(nat[0].clone()); 2]);
    let use1 = aws_sdk_ec2::Client::new(&fleet_shared::aws::in_region(
        &fleet_tests::sdk(),
        "us-east-1",
    ));
    let made = use1
        .describe_nat_gateways()
        .send()
        .await
        .expect("NAT gateways in us-east-1");
    assert!(
        !made.nat_gateways().iter().any(|g| g
            .tags()
            .iter()
            .any(|t| t.value() == Some(n.network.as_str()))),
        "nothing of the network in us-east-1"
    );
    // Moved back: as before.
    n.f.reconfigure(&[here_cluster], &here_network);
    let r = n.f.tick(ts("2026-11-23T12:05:00Z")).await;
    assert_eq!(network_outcome(&r, &n.network)["ready"], true, "{r}");
    assert!(outcome(&r, &name).get("error").is_none(), "{r}");
}

/// The config moves a running cluster to another region without its network: the move
/// is refused (the cluster still runs where it is), and its old network, which no
/// cluster of the config names any more, keeps the NAT gateway the running nodes route
/// through.
#[tokio::test]
async fn a_network_left_by_a_cluster_that_still_runs_keeps_its_egress() {
    let mut n = net(&[("scale", WEEKDAYS)], false, async |_, _| {}).await;
    let (name, nat) = n.up_with_its_nat_gateway().await;
    let network = n.vpc.network_toml(&n.network, false);
    n.f.reconfigure(
        &[cluster_toml("scale", WEEKDAYS, "region = \"us-east-1\"")],
        &network,
    );
    let r = n.f.tick(ts("2026-11-23T12:00:00Z")).await;
    assert!(
        outcome(&r, &name)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("still runs in hub/eu-west-1"),
        "{r}"
    );
    let net = network_outcome(&r, &n.network);
    assert!(
        net["step"].to_string().contains(&name),
        "waits for it: {net}"
    );
    assert_eq!(
        billing_nat_gateways(&n.ec2, &n.vpc.public_subnet).await,
        nat
    );
    assert_eq!(n.routes().await, vec![Some(nat[0].clone()); 2]);
}

#[tokio::test]
async fn one_invocation_at_a_time_acts_on_a_network() {
    let n = net(&[("destroy", WEEKDAYS)], false, async |_, _| {}).await;
    let name = n.f.names[0].clone();
    let at = ts("2026-11-23T07:00:00Z");
    let until = ts("2026-11-23T07:14:00Z");
    assert!(n
        .f
        .store
        .acquire_network_lease(&n.network, "another-invocation", until, at)
        .await
        .expect("lease"));
    let r = n.f.tick(at).await;
    let o = network_outcome(&r, &n.network);
    assert_eq!(
        o["step"],
        "wait: another invocation is acting on the network"
    );
    assert_eq!(o["ready"], false);
    assert!(nat_gateways(&n.ec2, &n.vpc.public_subnet).await.is_empty());
    assert!(n
        .f
        .store
        .network(&n.network)
        .await
        .expect("record")
        .gateways
        .is_empty());
    assert!(!outcome(&r, &name)["step"]
        .as_str()
        .unwrap_or_default()
        .starts_with("create-nodegroups"));
    // Its holder's lease runs out (it crashed): the next tick acts.
    let r = n.f.tick(ts("2026-11-23T07:15:00Z")).await;
    assert!(
        network_outcome(&r, &n.network)["step"]
            .as_str()
            .unwrap_or_default()
            .starts_with("create-nat-gateway"),
        "{r}"
    );
    assert_eq!(nat_gateways(&n.ec2, &n.vpc.public_subnet).await.len(), 1);
    // Its own lease is given back: a tick a minute later acts again.
    let r = n.f.tick(ts("2026-11-23T07:16:00Z")).await;
    assert_ne!(
        network_outcome(&r, &n.network)["step"],
        "wait: another invocation is acting on the network"
    );
}

/// The stand-in's NAT gateways behave as EC2's (see `tests/support/moto_server.py`).
#[tokio::test]
async fn the_fake_ec2_nat_gateways_behave_as_ec2s() {
    let ec2 = aws_sdk_ec2::Client::new(&fleet_tests::sdk());
    let vpc = Vpc::create(&ec2).await;
    let a = ec2.allocate_address().send().await.expect("allocate");
    let alloc = a.allocation_id().expect("alloc").to_string();
    let create = || {
        ec2.create_nat_gateway()
            .subnet_id(&vpc.public_subnet)
            .allocation_id(&alloc)
            .client_token("same-token")
            .send()
    };
    let one = create()
        .await
        .expect("create")
        .nat_gateway
        .and_then(|g| g.nat_gateway_id)
        .expect("id");
    let two = create()
        .await
        .expect("create again")
        .nat_gateway
        .and_then(|g| g.nat_gateway_id)
        .expect("id");
    assert_eq!(one, two, "ClientToken: the same gateway");
    let other = ec2.allocate_address().send().await.expect("allocate");
    let mismatch = ec2
        .create_nat_gateway()
        .subnet_id(&vpc.public_subnet)
        .allocation_id(other.allocation_id().expect("alloc"))
        .client_token("same-token")
        .send()
        .await;
    let code = mismatch
        .expect_err("another address under the same token")
        .into_service_error()
        .meta()
        .code()
        .map(String::from);
    assert_eq!(code.as_deref(), Some("IdempotentParameterMismatch"));
    let states = || async { nat_gateways(&ec2, &vpc.public_subnet).await[0].1.clone() };
    assert_eq!(states().await, "pending");
    assert_eq!(states().await, "available");
    let rtb = &vpc.private_tables[0];
    ec2.create_route()
        .route_table_id(rtb)
        .destination_cidr_block("0.0.0.0/0")
        .nat_gateway_id(&one)
        .send()
        .await
        .expect("route");
    let route_state = || async {
        ec2.describe_route_tables()
            .route_table_ids(rtb)
            .send()
            .await
            .expect("describe")
            .route_tables()[0]
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .and_then(|r| r.state().map(|s| s.as_str().to_string()))
    };
    assert_eq!(route_state().await.as_deref(), Some("active"));
    let release = ec2.release_address().allocation_id(&alloc).send().await;
    let code = release
        .expect_err("in use")
        .into_service_error()
        .meta()
        .code()
        .map(String::from);
    assert_eq!(code.as_deref(), Some("InvalidIPAddress.InUse"));
    ec2.delete_nat_gateway()
        .nat_gateway_id(&one)
        .send()
        .await
        .expect("delete");
    assert_eq!(states().await, "deleting");
    assert_eq!(
        route_state().await.as_deref(),
        Some("blackhole"),
        "a route to a gateway being deleted carries nothing"
    );
    assert!(
        ec2.release_address()
            .allocation_id(&alloc)
            .send()
            .await
            .is_err(),
        "still associated"
    );
    assert_eq!(states().await, "deleted");
    ec2.release_address()
        .allocation_id(&alloc)
        .send()
        .await
        .expect("released once deleted");
    let missing = ec2
        .delete_nat_gateway()
        .nat_gateway_id("nat-0123456789abcdef0")
        .send()
        .await;
    let code = missing
        .expect_err("unknown")
        .into_service_error()
        .meta()
        .code()
        .map(String::from);
    assert_eq!(code.as_deref(), Some("NatGatewayNotFound"));
}

#[tokio::test]
async fn a_network_renamed_at_midday_hands_its_routes_over_without_cutting_egress() {
    let mut n = net(&[("scale", WEEKDAYS)], false, async |_, _| {}).await;
    let name = n.f.names[0].clone();
    n.ticks_until("2026-11-23T07:00:00Z", 12, |r| {
        outcome(r, &name)["step"] == "none"
    })
    .await;
    let old = billing_nat_gateways(&n.ec2, &n.vpc.public_subnet).await;
    assert_eq!(old.len(), 1);
    // The same subnet and route tables under a new name.
    let renamed = network_name();
    n.f.reconfigure(
        &[cluster_toml(
            "scale",
            WEEKDAYS,
            &format!("network = \"{renamed}\""),
        )],
        &n.vpc.network_toml(&renamed, false),
    );
    let mut at = ts("2026-11-23T12:00:00Z");
    let mut done = false;
    for _ in 0..14 {
        let r = n.f.tick(at).await;
        // Every tick, every route goes through a gateway that is up.
        let live = nat_gateways(&n.ec2, &n.vpc.public_subnet).await;
        for route in n.routes().await {
            let target = route.expect("a default route");
            assert!(
                live.iter()
                    .any(|(id, state)| *id == target && state == "available"),
                "{target} in {live:?}: {r}"
            );
        }
        let listed: Vec<String> = r["networks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if listed == vec![renamed.clone()] && network_outcome(&r, &renamed)["ready"] == true {
            done = true;
            break;
        }
        at = at.checked_add(5.minutes()).expect("time");
    }
    assert!(done, "the old network was taken away");
    let now = billing_nat_gateways(&n.ec2, &n.vpc.public_subnet).await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, old);
    assert_eq!(n.routes().await, vec![Some(now[0].clone()); 2]);
    assert!(
        addresses(&n.ec2, &n.network).await.is_empty(),
        "the old address released"
    );
    assert!(!n
        .f
        .store
        .known_networks()
        .await
        .expect("known")
        .iter()
        .any(|(name, _)| *name == n.network));
}
