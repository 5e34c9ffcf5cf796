//! cost-reporter against moto: Cost Explorer usage seeded through moto's API, the
//! scheduler's transitions in the table, leftovers created in moto; the forecast mocked.

use fleet_shared::schedule::Desired;
use fleet_tests::fixtures::cost::{ce_day, forecast_rule, left_volume, CostFixture};
use jiff::civil::Date;
use jiff::ToSpan;
use serde_json::{json, Value};

const WEEKDAYS: &str = "Mon-Fri 08:00-20:00 UTC";
const NOW: &str = "2026-11-23T06:00:00Z"; // a Monday morning
const EKS: &str = "Amazon Elastic Kubernetes Service";
const EBS: &str = "EC2 - Other";

/// A November on the weekday schedule: up 08:00-20:00 UTC on the 15 weekdays before the
/// 23rd, recorded as the scheduler records it.
async fn record_weekdays(f: &CostFixture, name: &str) {
    let mut day: Date = "2026-11-02".parse().expect("date");
    while day < "2026-11-21".parse().expect("date") {
        if day.weekday().to_monday_zero_offset() < 5 {
            let at = |h: i8| {
                day.at(h, 0, 0, 0)
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .expect("time")
                    .timestamp()
            };
            let generation = format!("g{day}");
            f.store
                .record_transition(name, Desired::Up, &generation, at(8), "ready")
                .await
                .expect("up");
            f.store
                .record_transition(name, Desired::Down, &generation, at(20), "down")
                .await
                .expect("down");
        }
        day = day.checked_add(1.day()).expect("date");
    }
}

/// Cost Explorer's November for `cluster`: $1.20 on weekdays (control plane and nodes
/// while up), $0.10 on weekend days (volumes), and `yesterday` on the 22nd.
fn november(cluster: &str, yesterday: f64) -> Vec<Value> {
    (1..=22)
        .map(|d| {
            let date = format!("2026-11-{d:02}");
            let weekday = date
                .parse::<Date>()
                .expect("date")
                .weekday()
                .to_monday_zero_offset()
                < 5;
            match (d, weekday) {
                (22, _) => ce_day(&date, true, &[(EKS, cluster, yesterday)]),
                (_, true) => ce_day(&date, false, &[(EKS, cluster, 1.0), (EBS, cluster, 0.2)]),
                (_, false) => ce_day(&date, false, &[(EBS, cluster, 0.1)]),
            }
        })
        .collect()
}

fn savings<'a>(r: &'a Value, cluster: &str) -> &'a Value {
    r["savings"]["clusters"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["cluster"] == cluster))
        .expect("cluster in savings")
}

#[tokio::test]
async fn a_weekday_month_reports_spend_savings_forecast_and_warnings() {
    let f = CostFixture::start(
        &[("destroy", WEEKDAYS)],
        "monthly_budget_usd = 60",
        forecast_rule(30.0, 24.0, 36.0),
    )
    .await;
    let staging = f.names[0].clone();
    record_weekdays(&f, &staging).await;
    f.seed_usage(november(&staging, 5.0)).await;

    let r = f
        .call(json!({"action": "report"}), NOW)
        .await
        .expect("report");
    // Spend: 15 weekdays × 1.20 + 6 weekend days × 0.10 + 5.00 yesterday.
    assert_eq!(r["month_to_date"]["total_usd"], 23.6, "{r:#}");
    assert_eq!(r["month_to_date"]["by_service"][EBS], 3.6);
    assert_eq!(r["month_to_date"]["by_cluster"][&staging], 23.6);
    assert_eq!(r["month_to_date"]["estimated_days"], json!(["2026-11-22"]));
    // Savings: up 180 of 534 hours; $23.60 / 180 h a running hour.
    let s = savings(&r, &staging);
    assert_eq!(s["hours_up"], 180.0);
    assert_eq!(s["hours_in_period"], 534.0);
    assert_eq!(s["cost_per_running_hour_usd"], 0.1311);
    assert_eq!(s["saved_usd"], 46.41); // 23.60 / 180 × 354
                                       // The whole month on the schedule: 21 weekdays × 12 h = 252 of 720 h.
    assert_eq!(s["projected_month"]["scheduled_hours_up"], 252.0);
    assert_eq!(s["projected_month"]["saved_usd"], 61.36); // 23.60 / 180 × 468
    assert_eq!(r["uptime_by_day"][&staging][1]["hours_up"], 12.0); // Monday the 2nd
                                                                   // Yesterday, $5.00, against a trailing mean of $0.89: an anomaly.
    assert_eq!(r["yesterday"]["anomaly"], true);
    // Forecast: 23.60 so far + 30 for the rest, 80 % of the budget reached.
    assert_eq!(r["forecast"]["month_end_usd"], 53.6);
    assert_eq!(r["forecast"]["lower_usd"], 47.6);
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("forecast $53.60 is 89 % of the $60.00 budget"),
        "{warnings}"
    );
    assert!(
        warnings.contains("5.6x the trailing 7-day mean"),
        "{warnings}"
    );
    // The fixture's Kubernetes 1.32 is past standard support: the one old-version warning.
    assert!(warnings.contains("left standard support"), "{warnings}");
    assert_eq!(r["cost_explorer_requests"], 2);
}

#[tokio::test]
async fn a_second_report_the_same_day_asks_cost_explorer_nothing() {
    let f = CostFixture::start(&[("destroy", WEEKDAYS)], "", forecast_rule(10.0, 8.0, 12.0)).await;
    let staging = f.names[0].clone();
    f.seed_usage(november(&staging, 0.1)).await;
    let daily = json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}});
    let first = f.call(daily.clone(), NOW).await.expect("first");
    assert_eq!(first["cost_explorer_requests"], 2);
    let second = f.call(daily, "2026-11-23T09:00:00Z").await.expect("second");
    assert_eq!(second["cost_explorer_requests"], 0);
    assert_eq!(second["month_to_date"], first["month_to_date"]);
    assert_eq!(f.forecast_rule.num_calls(), 1);
    // The next day asks for the usage again; the forecast is the week's, rebased to the
    // days left (7 of the 8 it covered when it was made on the 23rd).
    let third = f
        .call(json!({"action": "report"}), "2026-11-24T06:00:00Z")
        .await
        .expect("next day");
    assert_eq!(third["cost_explorer_requests"], 1);
    assert_eq!(f.forecast_rule.num_calls(), 1);
    assert!(
        third["forecast"]["month_end_usd"].as_f64().is_some(),
        "{third}"
    );
    // A week after it was made, the forecast is asked for again.
    let week = f
        .call(json!({"action": "report"}), "2026-11-30T06:00:00Z")
        .await
        .expect("a week later");
    assert_eq!(week["cost_explorer_requests"], 2);
    assert_eq!(f.forecast_rule.num_calls(), 2);
    // The daily run published: Slack and CloudWatch.
    assert!(f
        .slack
        .texts()
        .iter()
        .any(|t| t.contains("Fleet cost, 2026-11")));
    let metrics = aws_sdk_cloudwatch::Client::new(&f.sdk)
        .list_metrics()
        .namespace("Fleet/Cost")
        .send()
        .await
        .expect("metrics");
    let names: Vec<&str> = metrics
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    assert!(
        names.contains(&"MonthToDateUsd") && names.contains(&"HoursUp"),
        "{names:?}"
    );
}

#[tokio::test]
async fn leftovers_are_found_only_for_clusters_that_are_down() {
    let f = CostFixture::start(
        &[("destroy", WEEKDAYS), ("scale", WEEKDAYS)],
        "",
        forecast_rule(1.0, 1.0, 1.0),
    )
    .await;
    let (down, up) = (f.names[0].clone(), f.names[1].clone());
    f.store
        .record_transition(
            &down,
            Desired::Down,
            "g1",
            "2026-11-20T20:00:00Z".parse().expect("t"),
            "down",
        )
        .await
        .expect("down");
    f.store
        .record_transition(
            &up,
            Desired::Up,
            "g1",
            "2026-11-20T08:00:00Z".parse().expect("t"),
            "up",
        )
        .await
        .expect("up");
    let ec2 = aws_sdk_ec2::Client::new(&f.sdk);
    let left = left_volume(&ec2, "eu-west-1", &down, 100)
        .await
        .expect("volume");
    left_volume(&ec2, "eu-west-1", &up, 50)
        .await
        .expect("volume of a cluster that is up");
    let lb = fleet_tests::service_load_balancer(&f.sdk, &down).await;

    let r = f
        .call(json!({"action": "report"}), NOW)
        .await
        .expect("report");
    let leftovers = r["leftovers"].as_array().expect("leftovers");
    assert_eq!(leftovers.len(), 2, "{leftovers:#?}");
    assert!(leftovers.iter().all(|l| l["cluster"] == down.as_str()));
    let vol = leftovers
        .iter()
        .find(|l| l["type"] == "ebs-volume")
        .expect("volume");
    assert_eq!(vol["id"], left.as_str());
    // 100 GiB gp3 at $0.08 a GB-month.
    assert_eq!(
        vol["daily_cost_usd"]
            .as_f64()
            .map(|c| (c * 1000.0).round() / 1000.0),
        Some(0.263)
    );
    let nlb = leftovers
        .iter()
        .find(|l| l["arn"] == lb.as_str())
        .expect("load balancer");
    assert_eq!(nlb["type"], "load-balancer (network)");
    assert_eq!(nlb["daily_cost_usd"], 0.54);
    assert!(r["warnings"]
        .to_string()
        .contains("2 resource(s) left behind"));
}

#[tokio::test]
async fn a_past_month_and_bad_requests() {
    let f = CostFixture::start(&[("destroy", WEEKDAYS)], "", forecast_rule(1.0, 1.0, 1.0)).await;
    let staging = f.names[0].clone();
    f.seed_usage(vec![ce_day("2026-10-05", false, &[(EKS, &staging, 3.0)])])
        .await;
    let r = f
        .call(json!({"action": "report", "month": "2026-10"}), NOW)
        .await
        .expect("October");
    assert_eq!(r["month_to_date"]["complete"], true);
    assert_eq!(r["month_to_date"]["total_usd"], 3.0);
    assert_eq!(r["forecast"], Value::Null);
    assert_eq!(
        r["cost_explorer_requests"], 1,
        "no forecast for a month that is over"
    );
    let e = f
        .call(json!({"action": "report", "month": "2027-01"}), NOW)
        .await
        .expect_err("future");
    assert!(e.to_string().contains("month"));
    let e = f
        .call(json!({"action": "report", "month": "11/2026"}), NOW)
        .await
        .expect_err("bad month");
    assert!(e.to_string().contains("month"));
    let e = f
        .call(json!({"action": "bill"}), NOW)
        .await
        .expect_err("unknown action");
    assert!(e.to_string().contains("bill"));
}

/// Case 12: the report on the 1st (06:30Z), no day of the month complete yet, Cost
/// Explorer holding only last month's days: every total is `0.0`, never `-0.0`, in the
/// JSON and in Slack ("$0.00"), and the report says why it is empty. Both metrics.
#[tokio::test]
async fn the_first_of_the_month_reports_zeros_and_says_why() {
    let case = fleet_tests::workspace_root().join("tests/fixtures/cases/12-cost-first-of-month");
    for (cost, days) in [
        ("", "seeded-ce-days.json"),
        ("metric = \"amortized\"", "seeded-ce-days-amortized.json"),
    ] {
        let f = CostFixture::start(
            &[("destroy", WEEKDAYS)],
            cost,
            forecast_rule(40.0, 30.0, 50.0),
        )
        .await;
        let staging = f.names[0].clone();
        let seeded = std::fs::read_to_string(case.join(days))
            .expect("case")
            .replace("fleet:cluster$staging", &format!("fleet:cluster${staging}"));
        f.seed_usage(serde_json::from_str(&seeded).expect("json"))
            .await;
        let request: Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("report.json")).expect("case"))
                .expect("json");
        let r = f
            .call(request, "2026-12-01T06:30:00Z")
            .await
            .expect("report");
        assert_eq!(r["month"], "2026-12");
        let text = r.to_string();
        assert!(!text.contains("-0.0"), "{cost}: a negative zero in {text}");
        assert_eq!(r["month_to_date"]["total_usd"], 0.0);
        assert!(r["month_to_date"]["total_usd"]
            .as_f64()
            .is_some_and(|v| v.is_sign_positive()));
        assert!(
            r["warnings"].as_array().expect("warnings").iter().any(|w| w
                .as_str()
                .is_some_and(|w| w.contains("no day of 2026-12 is complete yet"))),
            "{r:#}"
        );
        // The Slack text the daily run posts for this report (asked again: a report of
        // the same month is the same report).
        let now: jiff::Timestamp = "2026-12-01T06:30:00Z".parse().expect("now");
        let month = cost_reporter::report::Month::of(now);
        let typed = f.reporter.report(month, now).await.expect("report");
        let slack = cost_reporter::report::slack_text(&typed);
        assert!(
            slack.contains("$0.00") && !slack.contains("-0.00"),
            "{slack}"
        );
    }
}

type Tags = Vec<(String, String)>;

/// One tag.
fn tag(key: impl Into<String>, value: impl Into<String>) -> (String, String) {
    (key.into(), value.into())
}

/// Tags as EC2 takes them.
fn ec2_tags(tags: &[(String, String)]) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
        .collect()
}

/// The tags Karpenter gives an instance of `cluster` (`GetTags`: the EC2NodeClass's
/// `spec.tags`, `extra`, and its own).
fn karpenter_instance_tags(cluster: &str, extra: &[(String, String)]) -> Tags {
    let mut tags = extra.to_vec();
    tags.extend([
        tag("karpenter.sh/nodepool", "spot"),
        tag("karpenter.sh/nodeclaim", "spot-x7k2q"),
        tag("karpenter.k8s.aws/ec2nodeclass", "default"),
        tag(format!("kubernetes.io/cluster/{cluster}"), "owned"),
        tag("eks:eks-cluster-name", cluster),
    ]);
    tags
}

/// Runs one spot instance with `tags` on moto; its id.
async fn run_instance(ec2: &aws_sdk_ec2::Client, tags: &[(String, String)]) -> String {
    use aws_sdk_ec2::types::{
        InstanceMarketOptionsRequest, MarketType, ResourceType, TagSpecification,
    };
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::M6iLarge)
        .min_count(1)
        .max_count(1)
        .instance_market_options(
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(ec2_tags(tags)))
                .build(),
        )
        .send()
        .await
        .expect("run instance");
    out.instances()[0].instance_id().expect("id").to_string()
}

/// A launch template with `tags`, named as Karpenter names them; its id.
async fn launch_template(ec2: &aws_sdk_ec2::Client, tags: &[(String, String)]) -> String {
    use aws_sdk_ec2::types::{RequestLaunchTemplateData, ResourceType, TagSpecification};
    let name = format!(
        "karpenter.k8s.aws/{}",
        fleet_tests::unique("lt").replace('-', "")
    );
    ec2.create_launch_template()
        .launch_template_name(name)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .set_tags(Some(ec2_tags(tags)))
                .build(),
        )
        .send()
        .await
        .expect("create launch template")
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .expect("id")
        .to_string()
}

/// An instance profile `name` under Karpenter's path for `cluster`, with `tags`.
async fn instance_profile(
    iam: &aws_sdk_iam::Client,
    name: &str,
    cluster: &str,
    tags: &[(String, String)],
) {
    iam.create_instance_profile()
        .instance_profile_name(name)
        .path(format!("/karpenter/eu-west-1/{cluster}/0b8e5f0a-uid/"))
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| {
                    aws_sdk_iam::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .expect("tag")
                })
                .collect(),
        ))
        .send()
        .await
        .expect("create instance profile");
}

/// A cluster that is down: Karpenter's instances (running or pending), its launch
/// templates (tagged as before Karpenter 1.1 and since) and its instance profiles
/// (`<cluster>_<hash>`, tagged `kubernetes.io/cluster/<cluster>=owned`) are leftovers,
/// whether or not the config says `[cluster.karpenter]`; a terminated instance, a
/// nodegroup's instance and launch template, profiles of the same name pattern without
/// the tag or of another region, and everything of a cluster that is up are not.
#[tokio::test]
async fn karpenters_instances_templates_and_profiles_of_a_cluster_that_is_down_are_leftovers() {
    let f = CostFixture::start(
        &[("destroy", WEEKDAYS), ("scale", WEEKDAYS)],
        "",
        forecast_rule(1.0, 1.0, 1.0),
    )
    .await;
    let (down, up) = (f.names[0].clone(), f.names[1].clone());
    for (cluster, phase, at) in [
        (&down, Desired::Down, "2026-11-20T20:00:00Z"),
        (&up, Desired::Up, "2026-11-20T08:00:00Z"),
    ] {
        f.store
            .record_transition(cluster, phase, "g1", at.parse().expect("t"), "t")
            .await
            .expect("transition");
    }
    let ec2 = aws_sdk_ec2::Client::new(&f.sdk);
    let iam = aws_sdk_iam::Client::new(&f.sdk);
    let owned = |c: &str| tag(format!("kubernetes.io/cluster/{c}"), "owned");

    let node = run_instance(&ec2, &karpenter_instance_tags(&down, &[])).await;
    // Found by `kubernetes.io/cluster/<cluster>` alone too.
    let keyed = run_instance(&ec2, &[tag("karpenter.sh/nodepool", "gpu"), owned(&down)]).await;
    let gone = run_instance(&ec2, &karpenter_instance_tags(&down, &[])).await;
    ec2.terminate_instances()
        .instance_ids(&gone)
        .send()
        .await
        .expect("terminate");
    let nodegroup = run_instance(
        &ec2,
        &[owned(&down), tag("eks:eks-cluster-name", down.as_str())],
    )
    .await;
    run_instance(&ec2, &karpenter_instance_tags(&up, &[])).await;

    let legacy = launch_template(&ec2, &[tag("karpenter.k8s.aws/cluster", down.as_str())]).await;
    let current = launch_template(
        &ec2,
        &[
            tag("eks:eks-cluster-name", down.as_str()),
            tag("karpenter.k8s.aws/ec2nodeclass", "default"),
            tag("karpenter.sh/nodepool", "spot"),
            owned(&down),
        ],
    )
    .await;
    // A managed nodegroup's launch template names the cluster without an EC2NodeClass.
    launch_template(&ec2, &[tag("eks:eks-cluster-name", down.as_str())]).await;
    launch_template(&ec2, &[tag("karpenter.k8s.aws/cluster", up.as_str())]).await;

    let profile = format!("{down}_4820136178492046587");
    instance_profile(
        &iam,
        &profile,
        &down,
        &[
            owned(&down),
            tag("karpenter.k8s.aws/ec2nodeclass", "default"),
        ],
    )
    .await;
    let role = fleet_tests::unique("KarpenterNodeRole");
    iam.create_role()
        .role_name(&role)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .expect("role");
    iam.add_role_to_instance_profile()
        .instance_profile_name(&profile)
        .role_name(&role)
        .send()
        .await
        .expect("add role");
    instance_profile(&iam, &format!("{down}_11"), &down, &[]).await;
    instance_profile(
        &iam,
        &format!("{down}_12"),
        &down,
        &[
            owned(&down),
            tag("topology.kubernetes.io/region", "us-east-1"),
        ],
    )
    .await;
    instance_profile(&iam, &format!("{up}_13"), &up, &[owned(&up)]).await;

    let r = f
        .call(json!({"action": "report"}), NOW)
        .await
        .expect("report");
    let leftovers = r["leftovers"].as_array().expect("leftovers");
    assert!(
        leftovers.iter().all(|l| l["cluster"] == down.as_str()),
        "{leftovers:#?}"
    );
    let of = |kind: &str| -> Vec<&str> {
        let mut ids: Vec<&str> = leftovers
            .iter()
            .filter(|l| l["type"] == kind)
            .filter_map(|l| l["id"].as_str())
            .collect();
        ids.sort();
        ids
    };
    let mut instances = vec![node.as_str(), keyed.as_str()];
    instances.sort();
    assert_eq!(of("karpenter-instance"), instances, "{leftovers:#?}");
    assert!(!of("karpenter-instance").contains(&nodegroup.as_str()));
    let mut templates = vec![legacy.as_str(), current.as_str()];
    templates.sort();
    assert_eq!(of("karpenter-launch-template"), templates, "{leftovers:#?}");
    assert_eq!(of("karpenter-instance-profile"), vec![profile.as_str()]);

    let instance = leftovers
        .iter()
        .find(|l| l["id"] == node.as_str())
        .expect("instance");
    // m6i.large: 2 vCPU at $0.048 an hour.
    assert_eq!(
        instance["daily_cost_usd"]
            .as_f64()
            .map(|c| (c * 1000.0).round() / 1000.0),
        Some(2.304)
    );
    assert_eq!(
        instance["arn"],
        format!("arn:aws:ec2:eu-west-1:123456789012:instance/{node}")
    );
    assert!(
        instance["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("m6i.large spot, NodePool `spot`")),
        "{instance}"
    );
    let p = leftovers
        .iter()
        .find(|l| l["id"] == profile.as_str())
        .expect("profile");
    assert_eq!(p["daily_cost_usd"], 0.0);
    assert_eq!(
        p["arn"],
        format!("arn:aws:iam::123456789012:instance-profile/karpenter/eu-west-1/{down}/0b8e5f0a-uid/{profile}")
    );
    assert_eq!(
        p["detail"],
        format!("path /karpenter/eu-west-1/{down}/0b8e5f0a-uid/, role {role}")
    );
    let lt = leftovers
        .iter()
        .find(|l| l["id"] == legacy.as_str())
        .expect("launch template");
    assert_eq!(
        lt["arn"],
        format!("arn:aws:ec2:eu-west-1:123456789012:launch-template/{legacy}")
    );
    assert!(
        r["warnings"]
            .to_string()
            .contains("5 resource(s) left behind"),
        "{}",
        r["warnings"]
    );
    // The same in the text Slack gets.
    let now: jiff::Timestamp = NOW.parse().expect("now");
    let typed = f
        .reporter
        .report(cost_reporter::report::Month::of(now), now)
        .await
        .expect("report");
    let text = cost_reporter::report::slack_text(&typed);
    for line in [
        format!("left behind by `{down}`: karpenter-instance {node} ($2.30/day)"),
        format!("left behind by `{down}`: karpenter-launch-template {legacy} ($0.00/day)"),
        format!("left behind by `{down}`: karpenter-instance-profile {profile} ($0.00/day)"),
    ] {
        assert!(text.contains(&line), "{line} in {text}");
    }
}

/// A cluster with `[cluster.karpenter]` whose Karpenter instances lack the cost tag
/// (`fleet:cluster=<name>`: the EC2NodeClass's `spec.tags` did not say so) gets a
/// warning, up or down: their spend is attributed to no cluster. One whose instances
/// carry it does not, and neither does a cluster without `[cluster.karpenter]`.
#[tokio::test]
async fn karpenter_instances_without_the_cost_tag_are_a_warning() {
    let f = CostFixture::start_with(
        &[
            ("destroy", WEEKDAYS, "[cluster.karpenter]"),
            (
                "destroy",
                WEEKDAYS,
                "[cluster.karpenter]\ninterruption = \"fleet\"",
            ),
            ("destroy", WEEKDAYS, ""),
        ],
        "",
        forecast_rule(1.0, 1.0, 1.0),
    )
    .await;
    let (untagged, tagged, unconfigured) =
        (f.names[0].clone(), f.names[1].clone(), f.names[2].clone());
    let ec2 = aws_sdk_ec2::Client::new(&f.sdk);
    let cost_tag = |c: &str| vec![tag("fleet:cluster", c)];
    run_instance(
        &ec2,
        &karpenter_instance_tags(&untagged, &cost_tag(&untagged)),
    )
    .await;
    let missing = run_instance(&ec2, &karpenter_instance_tags(&untagged, &[])).await;
    // Tagged for another cluster: Cost Explorer attributes it there.
    let elsewhere =
        run_instance(&ec2, &karpenter_instance_tags(&untagged, &cost_tag("prod"))).await;
    run_instance(&ec2, &karpenter_instance_tags(&tagged, &cost_tag(&tagged))).await;
    run_instance(&ec2, &karpenter_instance_tags(&unconfigured, &[])).await;

    let r = f
        .call(json!({"action": "report"}), NOW)
        .await
        .expect("report");
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(Value::as_str)
        .filter(|w| w.contains("Karpenter"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = warnings[0];
    let mut ids = [missing.as_str(), elsewhere.as_str()];
    ids.sort();
    assert!(
        w.starts_with(&format!(
            "{untagged}: 2 of 3 running Karpenter instance(s) lack the cost-allocation tag `fleet:cluster={untagged}` ("
        )),
        "{w}"
    );
    assert!(ids.iter().all(|id| w.contains(id)), "{w}");
    assert!(
        w.ends_with(&format!(
            "the EC2NodeClass must propagate it (`spec.tags: {{fleet:cluster: {untagged}}}`)"
        )),
        "{w}"
    );
    // Nothing is down: no leftovers.
    assert_eq!(r["leftovers"], json!([]));
}
