//! One fleet, clusters in several accounts and regions (moto keeps accounts apart by the
//! credentials AssumeRole returns, and its STS checks the spoke role's trust: see
//! `tests/support/moto_server.py`): each cluster is built, scaled and destroyed where it
//! belongs and nowhere else; a spoke whose role cannot be assumed fails only its own
//! clusters; a forwarded spot warning drains the node of the cluster in the event's
//! account and region.

use std::collections::HashMap;
use std::sync::Arc;

use cluster_scheduler::Scheduler;
use fleet_shared::config::{FleetConfig, Place, Secret};
use fleet_shared::kube::KubeConnector;
use fleet_shared::notify::Notifier;
use fleet_shared::place::{Places, SpokeRole};
use fleet_shared::runner::Invocation;
use fleet_tests::fakes::kube::FakeKube;
use fleet_tests::fixtures::accounts::spoke_role;
use fleet_tests::fixtures::cost::{ce_day, left_volume, seed_ce_usage};
use fleet_tests::fixtures::spot_drainer::{interruption_warning, small_node, SMALL_INSTANCE};
use fleet_tests::{sdk, state_table, unique, BusTap};
use jiff::{Timestamp, ToSpan};
use serde_json::{json, Value};

const PRODUCTION: &str = "222233334444";
/// A spoke whose role was never created: AssumeRole is refused.
const BROKEN: &str = "333344445555";
const EXTERNAL_ID: &str = "fleet-tests-external-id-0123456789";

fn cluster(name: &str, account: Option<(&str, &str)>, region: Option<&str>, mode: &str) -> String {
    let (key, id) = match account {
        Some((key, id)) => (format!("account = \"{key}\"\n"), id),
        None => (String::new(), "123456789012"),
    };
    let region = region
        .map(|r| format!("region = \"{r}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[[cluster]]
name = "{name}"
mode = "{mode}"
uptime = "Mon-Fri 08:00-20:00 UTC"
{key}{region}
[cluster.blueprint]
version = "1.32"
role_arn = "arn:aws:iam::{id}:role/eks-cluster"
subnet_ids = ["subnet-0aaa", "subnet-0bbb"]

[[cluster.blueprint.nodegroup]]
name = "spot"
capacity_type = "SPOT"
instance_types = ["t3.large"]
node_role_arn = "arn:aws:iam::{id}:role/eks-node"
min_size = 1
max_size = 3
desired_size = 2
"#
    )
}

struct Estate {
    scheduler: Scheduler,
    places: Arc<Places>,
    /// The spot-drainer's: its own role in each spoke.
    drainer_places: Arc<Places>,
    config: FleetConfig,
    /// hub-eu (hub, eu-west-1, destroy), prod-use1 (production, us-east-1, destroy),
    /// prod-euc1 (production, eu-central-1, scale), broken-use1 (broken, us-east-1).
    names: [String; 4],
    kube: FakeKube,
    bus: String,
    table: String,
}

async fn estate() -> Estate {
    let hub = sdk();
    let production = spoke_role(&hub, PRODUCTION, Some(EXTERNAL_ID)).await;
    let bus = unique("fleet-bus");
    let _tap = BusTap::new(&hub, &bus).await;
    let store = state_table(&hub).await;
    let names = [
        unique("hub-eu"),
        unique("prod-use1"),
        unique("prod-euc1"),
        unique("broken-use1"),
    ];
    let mut text = format!(
        "[fleet]\nregion = \"eu-west-1\"\nevent_bus = \"{bus}\"\n\n[[account]]\nname = \"production\"\nrole_arn = \"{production}\"\n\n[[account]]\nname = \"broken\"\nrole_arn = \"arn:aws:iam::{BROKEN}:role/fleet-spoke\"\n"
    );
    text.push_str(&cluster(&names[0], None, None, "destroy"));
    text.push_str(&cluster(
        &names[1],
        Some(("production", PRODUCTION)),
        Some("us-east-1"),
        "destroy",
    ));
    text.push_str(&cluster(
        &names[2],
        Some(("production", PRODUCTION)),
        Some("eu-central-1"),
        "scale",
    ));
    text.push_str(&cluster(
        &names[3],
        Some(("broken", BROKEN)),
        Some("us-east-1"),
        "destroy",
    ));
    let config = FleetConfig::parse(&text).expect("config");
    let external_ids: HashMap<String, Secret> =
        [("production".to_string(), Secret::new(EXTERNAL_ID.into()))].into();
    let places = Arc::new(
        Places::new(
            &hub,
            &config,
            &external_ids,
            "infra-fleet",
            SpokeRole::Scheduler,
        )
        .await,
    );
    let drainer_places = Arc::new(
        Places::new(
            &hub,
            &config,
            &external_ids,
            "infra-fleet",
            SpokeRole::Drainer,
        )
        .await,
    );
    let kube = FakeKube::start().await;
    let scheduler = Scheduler::new(
        places.clone(),
        config.clone(),
        fleet_shared::startup::LOCAL_STACK,
        store.table(),
        Notifier::disabled(),
        KubeConnector::with_places(places.clone(), Some(kube.url.clone())),
    );
    Estate {
        scheduler,
        places,
        drainer_places,
        config,
        names,
        kube,
        bus,
        table: store.table().to_string(),
    }
}

impl Estate {
    async fn ticks(&self, from: &str, to: &str) -> Value {
        let mut at: Timestamp = from.parse().expect("time");
        let end: Timestamp = to.parse().expect("time");
        let mut last = Value::Null;
        while at < end {
            last = self
                .scheduler
                .handle(json!({"action": "reconcile"}), Invocation::at(at))
                .await
                .expect("tick");
            at = at.checked_add(5.minutes()).expect("time");
        }
        last
    }

    fn eks(&self, account: Option<&str>, region: &str) -> aws_sdk_eks::Client {
        aws_sdk_eks::Client::new(&self.places.sdk(&Place {
            account: account.map(String::from),
            region: region.into(),
        }))
    }

    /// The places where cluster `name` exists in EKS, among every place the estate has.
    async fn found_at(&self, name: &str) -> Vec<String> {
        let mut found = vec![];
        for account in [None, Some("production")] {
            for region in ["eu-west-1", "us-east-1", "eu-central-1"] {
                let described = self
                    .eks(account, region)
                    .describe_cluster()
                    .name(name)
                    .send()
                    .await;
                if described.is_ok() {
                    found.push(format!("{}/{region}", account.unwrap_or("hub")));
                }
            }
        }
        found
    }
}

fn outcome<'a>(tick: &'a Value, name: &str) -> &'a Value {
    tick["clusters"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no outcome for {name} in {tick}"))
}

/// Monday morning to evening: the three reachable clusters come up where they belong and
/// go down there; the spoke whose role cannot be assumed fails only its own cluster, and
/// says why; one AssumeRole per reachable account.
#[tokio::test]
async fn clusters_live_and_die_where_they_belong() {
    let e = estate().await;
    let [hub_eu, use1, euc1, broken] = &e.names;
    // A Monday (the schedule is weekday 08:00-20:00 UTC), in any year.
    let morning = e
        .ticks("2026-11-23T07:55:00Z", "2026-11-23T08:40:00Z")
        .await;
    for name in [hub_eu, use1, euc1] {
        let o = outcome(&morning, name);
        assert!(o.get("error").is_none(), "{name}: {o}");
    }
    assert_eq!(e.found_at(hub_eu).await, vec!["hub/eu-west-1"]);
    assert_eq!(e.found_at(use1).await, vec!["production/us-east-1"]);
    assert_eq!(e.found_at(euc1).await, vec!["production/eu-central-1"]);
    assert!(e.found_at(broken).await.is_empty());
    let failed = outcome(&morning, broken);
    assert!(
        ["failed", "backoff"].contains(&failed["result"].as_str().unwrap_or_default()),
        "{failed}"
    );
    let why = failed["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("AssumeRole") || why.contains("not authorized"),
        "the error says the role could not be assumed: {why}"
    );
    assert_eq!(
        e.places.assume_role_calls("production"),
        1,
        "one AssumeRole for the whole morning"
    );
    // The scale-mode cluster's nodegroups are in its own place.
    let spoke_eks = e.eks(Some("production"), "eu-central-1");
    let ng = spoke_eks
        .describe_nodegroup()
        .cluster_name(euc1)
        .nodegroup_name("spot")
        .send()
        .await
        .expect("nodegroup in production/eu-central-1");
    assert_eq!(
        ng.nodegroup
            .and_then(|n| n.scaling_config)
            .and_then(|s| s.desired_size),
        Some(2)
    );

    let evening = e
        .ticks("2026-11-23T19:55:00Z", "2026-11-23T21:00:00Z")
        .await;
    assert!(e.found_at(hub_eu).await.is_empty(), "{evening}");
    assert!(e.found_at(use1).await.is_empty(), "{evening}");
    assert_eq!(e.found_at(euc1).await, vec!["production/eu-central-1"]);
    let ng = spoke_eks
        .describe_nodegroup()
        .cluster_name(euc1)
        .nodegroup_name("spot")
        .send()
        .await
        .expect("nodegroup kept");
    assert_eq!(
        ng.nodegroup
            .and_then(|n| n.scaling_config)
            .and_then(|s| s.desired_size),
        Some(0),
        "scaled to zero where it lives"
    );
    let _ = (&e.config, &e.kube, &e.bus);
}

/// A spot warning forwarded from the production account's us-east-1 names that account
/// and region: the drainer looks only at the cluster there, not at the hub's cluster
/// whose API (the same fake here) would answer first.
#[tokio::test]
async fn a_forwarded_spot_warning_drains_the_node_of_the_cluster_where_it_came_from() {
    let e = estate().await;
    e.ticks("2026-11-23T07:55:00Z", "2026-11-23T08:40:00Z")
        .await;
    small_node(&e.kube);
    let drainer = spot_drainer::Drainer::new(
        e.drainer_places.clone(),
        e.config.clone(),
        e.table.clone(),
        Notifier::disabled(),
        KubeConnector::with_places(e.drainer_places.clone(), Some(e.kube.url.clone())),
    );
    let now: Timestamp = "2026-11-23T09:00:00Z".parse().expect("time");
    let mut warning = interruption_warning(SMALL_INSTANCE, now);
    warning["account"] = json!(PRODUCTION);
    warning["region"] = json!("us-east-1");
    let answer = drainer
        .handle(warning, Invocation::at(now))
        .await
        .expect("drained");
    assert_eq!(answer["cluster"], e.names[1].as_str(), "{answer}");
    // From an account the fleet does not know: no cluster of the fleet is there.
    let mut foreign = interruption_warning(SMALL_INSTANCE, now);
    foreign["account"] = json!("999988887777");
    foreign["region"] = json!("ap-south-1");
    let answer = drainer
        .handle(foreign, Invocation::at(now))
        .await
        .expect("acknowledged");
    assert_eq!(answer["status"], "not-ours", "{answer}");
    // From another account in the hub's region: in Lambda the drainer knows its own
    // account, and the hub's cluster there (whose API, the same fake, has the node) is
    // not searched for another account's instance.
    let mut other = interruption_warning(SMALL_INSTANCE, now);
    other["account"] = json!("999988887777");
    other["region"] = json!("eu-west-1");
    let mut inv = Invocation::at(now);
    inv.account_id = Some("123456789012".into());
    let answer = drainer.handle(other, inv).await.expect("acknowledged");
    assert_eq!(answer["status"], "not-ours", "{answer}");
}

/// A scheduler of `config` sharing the estate's table and fake Kubernetes API.
async fn scheduler_of(e: &Estate, config: &FleetConfig) -> Scheduler {
    let external_ids: HashMap<String, Secret> =
        [("production".to_string(), Secret::new(EXTERNAL_ID.into()))].into();
    let places = Arc::new(
        Places::new(
            e.places.hub(),
            config,
            &external_ids,
            "infra-fleet",
            SpokeRole::Scheduler,
        )
        .await,
    );
    Scheduler::new(
        places.clone(),
        config.clone(),
        fleet_shared::startup::LOCAL_STACK,
        e.table.clone(),
        Notifier::disabled(),
        KubeConnector::with_places(places, Some(e.kube.url.clone())),
    )
}

async fn ticks_of(scheduler: &Scheduler, from: &str, to: &str) -> Value {
    let mut at: Timestamp = from.parse().expect("time");
    let end: Timestamp = to.parse().expect("time");
    let mut last = Value::Null;
    while at < end {
        last = scheduler
            .handle(json!({"action": "reconcile"}), Invocation::at(at))
            .await
            .expect("tick");
        at = at.checked_add(5.minutes()).expect("time");
    }
    last
}

/// The config moves a running cluster to another region: the fleet refuses to build a
/// second one (the first would bill on, out of its sight), and says how to move it. Put
/// back, it goes down in the evening where it is; moved again, it is built in its new
/// region the next morning, and only there.
#[tokio::test]
async fn a_cluster_moved_while_it_runs_is_not_built_twice() {
    let e = estate().await;
    let hub_eu = &e.names[0];
    e.ticks("2026-11-23T07:55:00Z", "2026-11-23T08:40:00Z")
        .await;
    assert_eq!(e.found_at(hub_eu).await, vec!["hub/eu-west-1"]);
    let mut moved = e.config.clone();
    moved.clusters[0].region = Some("us-east-1".into());
    let mover = scheduler_of(&e, &moved).await;
    let tick = ticks_of(&mover, "2026-11-23T09:00:00Z", "2026-11-23T09:30:00Z").await;
    let refused = outcome(&tick, hub_eu);
    let why = refused["error"].as_str().unwrap_or_default();
    assert!(
        why.contains(&format!("still runs in hub/eu-west-1/{hub_eu}"))
            && why.contains(&format!("puts it in hub/us-east-1/{hub_eu}")),
        "{refused}"
    );
    assert_eq!(
        e.found_at(hub_eu).await,
        vec!["hub/eu-west-1"],
        "built once"
    );
    // A record from before homes were kept: the incarnation is looked for where every
    // cluster lived then (the hub's region, under its fleet name) before one is built.
    let store = fleet_shared::state::StateStore::new(
        aws_sdk_dynamodb::Client::new(e.places.hub()),
        e.table.clone(),
    );
    store.forget_home(hub_eu).await.expect("forget home");
    let tick = ticks_of(&mover, "2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z").await;
    let refused = outcome(&tick, hub_eu);
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("still runs in hub/eu-west-1/{hub_eu}")),
        "{refused}"
    );
    assert_eq!(
        e.found_at(hub_eu).await,
        vec!["hub/eu-west-1"],
        "built once"
    );
    // Put back: down in the evening where it lives.
    e.ticks("2026-11-23T19:55:00Z", "2026-11-23T21:00:00Z")
        .await;
    assert!(e.found_at(hub_eu).await.is_empty());
    // Moved while down: the next morning builds it in its new region.
    let morning = ticks_of(&mover, "2026-11-24T07:55:00Z", "2026-11-24T08:40:00Z").await;
    let o = outcome(&morning, hub_eu);
    assert!(o.get("error").is_none(), "{o}");
    assert_eq!(e.found_at(hub_eu).await, vec!["hub/us-east-1"]);
}

/// One EKS name in two places under two fleet names (`eks_name`): each is built, reached
/// and destroyed where it lives, and the two never mix.
#[tokio::test]
async fn one_eks_name_lives_in_two_places_under_two_fleet_names() {
    let e = estate().await;
    let eks_name = unique("web");
    let mut text = format!(
        "[fleet]\nregion = \"eu-west-1\"\nevent_bus = \"{}\"\n\n[[account]]\nname = \"production\"\nrole_arn = \"{}\"\n",
        e.bus,
        e.config.accounts[0].role_arn
    );
    let staging = format!("{eks_name}-staging");
    let prod = format!("{eks_name}-prod");
    text.push_str(&cluster(&staging, None, None, "destroy").replace(
        "mode = \"destroy\"",
        &format!("mode = \"destroy\"\neks_name = \"{eks_name}\""),
    ));
    text.push_str(
        &cluster(
            &prod,
            Some(("production", PRODUCTION)),
            Some("eu-west-1"),
            "scale",
        )
        .replace(
            "mode = \"scale\"",
            &format!("mode = \"scale\"\neks_name = \"{eks_name}\""),
        ),
    );
    let config = FleetConfig::parse(&text).expect("config");
    let scheduler = scheduler_of(&e, &config).await;
    let morning = ticks_of(&scheduler, "2026-11-23T07:55:00Z", "2026-11-23T08:40:00Z").await;
    for name in [&staging, &prod] {
        let o = outcome(&morning, name);
        assert!(o.get("error").is_none(), "{name}: {o}");
        assert!(
            o["actual"]
                .as_str()
                .is_some_and(|a| a.starts_with("active")),
            "{o}"
        );
    }
    assert_eq!(
        e.found_at(&eks_name).await,
        vec!["hub/eu-west-1", "production/eu-west-1"]
    );
    assert!(
        e.found_at(&staging).await.is_empty(),
        "fleet names are not EKS names"
    );
    let evening = ticks_of(&scheduler, "2026-11-23T19:55:00Z", "2026-11-23T21:00:00Z").await;
    // Staging (destroy) is gone; production (scale) keeps its cluster at zero nodes.
    assert_eq!(
        e.found_at(&eks_name).await,
        vec!["production/eu-west-1"],
        "{evening}"
    );
}

/// The cost report reads the bill in `cost.account` (with the cost reporter's role
/// there) and looks for leftovers where each cluster lives; a spoke it cannot reach is a
/// warning, not a failed report.
#[tokio::test]
async fn the_cost_report_reads_the_bill_where_it_is_and_leftovers_where_they_live() {
    let e = estate().await;
    let [hub_eu, use1, _, _] = &e.names;
    e.ticks("2026-11-23T07:55:00Z", "2026-11-23T08:40:00Z")
        .await;
    e.ticks("2026-11-23T19:55:00Z", "2026-11-23T21:00:00Z")
        .await;
    // A volume each teardown left behind, where each cluster lived.
    let mut left = vec![];
    for (account, region, cluster) in [
        (None, "eu-west-1", hub_eu),
        (Some("production"), "us-east-1", use1),
    ] {
        let ec2 = aws_sdk_ec2::Client::new(&e.places.sdk(&Place {
            account: account.map(String::from),
            region: region.into(),
        }));
        let volume = left_volume(&ec2, region, cluster, 20)
            .await
            .expect("volume");
        left.push((volume, cluster.clone()));
    }
    // The bill is in the production account (its Cost Explorer, as moto keeps it).
    seed_ce_usage(
        PRODUCTION,
        vec![ce_day(
            "2026-11-22",
            false,
            &[("Amazon Elastic Kubernetes Service", use1, 7.0)],
        )],
    )
    .await;
    let mut config = e.config.clone();
    config.cost = Some(fleet_shared::config::CostConfig {
        account: Some("production".into()),
        ..Default::default()
    });
    let external_ids: HashMap<String, Secret> =
        [("production".to_string(), Secret::new(EXTERNAL_ID.into()))].into();
    let places = Arc::new(
        Places::new(
            e.places.hub(),
            &config,
            &external_ids,
            "infra-fleet",
            SpokeRole::Cost,
        )
        .await,
    );
    let reporter =
        cost_reporter::Reporter::with_places(places, config, e.table.clone(), Notifier::disabled());
    let now: Timestamp = "2026-11-23T21:30:00Z".parse().expect("time");
    let report = reporter
        .handle(json!({"action": "report"}), Invocation::at(now))
        .await
        .expect("report");
    assert_eq!(
        report["month_to_date"]["by_cluster"][use1.as_str()],
        json!(7.0),
        "the bill read in production: {report}"
    );
    assert_eq!(
        report["month_to_date"]["by_account"]["production"],
        json!(7.0)
    );
    for (volume, cluster) in &left {
        assert!(
            report["leftovers"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|l| l["id"] == volume.as_str() && l["cluster"] == cluster.as_str()),
            "{volume} of {cluster}: {}",
            report["leftovers"]
        );
    }
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("leftovers in broken/us-east-1 not looked for"),
        "{warnings}"
    );
}
