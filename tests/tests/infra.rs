//! The SAM template's wiring: every function is in it, its event patterns match the
//! sample events (by EventBridge's own matching, on moto), its schedules send what the
//! function parses, and each role allows exactly the calls the function's code makes.

use std::collections::{BTreeMap, BTreeSet};

use fleet_tests::{sdk, unique, workspace_root, BusTap};
use serde_json::{json, Value};

fn template() -> Value {
    let path = workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).expect("infra/template.yaml");
    serde_saphyr::from_str(&text).expect("the template is YAML")
}

/// Every `AWS::Serverless::Function`, by its binary (the crate under `functions/`).
fn functions(t: &Value) -> BTreeMap<String, Value> {
    t["Resources"]
        .as_object()
        .expect("resources")
        .values()
        .filter(|r| r["Type"] == "AWS::Serverless::Function")
        .map(|r| {
            let binary = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .expect("BuildProperties.Binary")
                .to_string();
            (binary, r.clone())
        })
        .collect()
}

fn event(name: &str) -> Value {
    let path = workspace_root().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("event file")).expect("event JSON")
}

#[test]
fn every_function_is_deployed_with_its_limits() {
    let t = template();
    let fns = functions(&t);
    let crates: BTreeSet<String> = std::fs::read_dir(workspace_root().join("functions"))
        .expect("functions/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(fns.keys().cloned().collect::<BTreeSet<_>>(), crates);
    for (name, f) in &fns {
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
        let log_group = f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: its own log group"));
        assert!(
            t["Resources"][log_group]["Properties"]["RetentionInDays"].is_object(),
            "{name}: log retention"
        );
    }
    let p = |f: &str, k: &str| fns[f]["Properties"][k].clone();
    assert!(p("spot-drainer", "Timeout").as_u64() >= Some(150));
    assert!(p("cluster-scheduler", "Timeout").as_u64() <= Some(60));
    assert_eq!(p("cluster-scheduler", "ReservedConcurrentExecutions"), 1);
    assert_eq!(p("dora-webhook", "FunctionUrlConfig")["AuthType"], "NONE");
    assert_eq!(p("slack-commands", "FunctionUrlConfig")["AuthType"], "NONE");
    // Slack's documents wait while a tick runs; a failed one is not run twice.
    assert_eq!(
        p("cluster-scheduler", "EventInvokeConfig")["MaximumRetryAttempts"],
        0
    );
    assert_eq!(
        p("slack-commands", "Environment")["Variables"]["SCHEDULER_FUNCTION"],
        json!({"Ref": "ClusterScheduler"})
    );
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["MemorySize"], 128);
    assert_eq!(globals["DeadLetterQueue"]["Type"], "SQS");
    assert_eq!(globals["LoggingConfig"]["LogFormat"], "JSON");
    assert_eq!(t["Parameters"]["Architecture"]["Default"], "arm64");
    let table = &t["Resources"]["StateTable"]["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], "ttl");
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
}

/// The EventBridge rules of a function: (event name, pattern).
fn rules(f: &Value) -> Vec<(String, Value)> {
    f["Properties"]["Events"]
        .as_object()
        .map(|e| {
            e.iter()
                .filter(|(_, v)| v["Type"] == "EventBridgeRule")
                .map(|(k, v)| (k.clone(), v["Properties"]["Pattern"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Which of `samples` the pattern lets through, by EventBridge's matching (moto's).
async fn matching(pattern: &Value, samples: &[&str]) -> BTreeSet<String> {
    let sdk = sdk();
    let bus = unique("pattern-bus");
    let tap = BusTap::with_pattern(&sdk, &bus, &pattern.to_string()).await;
    let eb = aws_sdk_eventbridge::Client::new(&sdk);
    for name in samples {
        let e = event(name);
        eb.put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&bus)
                    .source(e["source"].as_str().expect("source"))
                    .detail_type(e["detail-type"].as_str().expect("detail-type"))
                    .detail(e["detail"].to_string())
                    .build(),
            )
            .send()
            .await
            .expect("put events");
    }
    tap.drain()
        .await
        .iter()
        .filter_map(|delivered| {
            samples.iter().find(|n| {
                let e = event(n);
                e["detail-type"] == delivered["detail-type"] && e["detail"] == delivered["detail"]
            })
        })
        .map(|n| n.to_string())
        .collect()
}

const BUS_EVENTS: [&str; 6] = [
    "spot-interruption.json",
    "spot-rebalance.json",
    "instance-state-change.json",
    "health-scheduled-change.json",
    "cluster-ready.json",
    "cluster-destroyed.json",
];

#[tokio::test]
async fn event_patterns_match_exactly_their_sample_events() {
    let t = template();
    let fns = functions(&t);
    let mut matched: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, f) in &fns {
        for (rule, pattern) in rules(f) {
            let m = matching(&pattern, &BUS_EVENTS).await;
            assert!(!m.is_empty(), "{name}.{rule} matches no sample event");
            matched.entry(name.clone()).or_default().extend(m);
        }
    }
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(matched["spot-drainer"], set(&BUS_EVENTS[..4]));
    assert_eq!(matched["dns-updater"], set(&BUS_EVENTS[4..]));
    assert_eq!(
        matched.len(),
        2,
        "only the drainer and the DNS updater have rules"
    );
    // A state change the drainer has nothing to do for never reaches it.
    let drainer_state = rules(&fns["spot-drainer"])
        .into_iter()
        .find(|(r, _)| r == "InstanceStateChange")
        .expect("state-change rule")
        .1;
    let sdk = sdk();
    let bus = unique("pattern-bus");
    let tap = BusTap::with_pattern(&sdk, &bus, &drainer_state.to_string()).await;
    let mut running = event("instance-state-change.json");
    running["detail"]["state"] = json!("running");
    aws_sdk_eventbridge::Client::new(&sdk)
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(&bus)
                .source("aws.ec2")
                .detail_type("EC2 Instance State-change Notification")
                .detail(running["detail"].to_string())
                .build(),
        )
        .send()
        .await
        .expect("put events");
    assert!(tap.drain().await.is_empty());
    // The DNS rule listens on the fleet bus.
    let dns_rule = &fns["dns-updater"]["Properties"]["Events"]["ClusterTransitions"]["Properties"];
    assert_eq!(dns_rule["EventBusName"]["Ref"], "FleetBus");
}

#[test]
fn schedules_send_what_the_functions_parse() {
    let t = template();
    let fns = functions(&t);
    let inputs: BTreeMap<String, Value> = fns
        .iter()
        .flat_map(|(name, f)| {
            f["Properties"]["Events"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, e)| e["Type"] == "ScheduleV2")
                .map(|(_, e)| {
                    let input = e["Properties"]["Input"].as_str().expect("schedule input");
                    (
                        name.clone(),
                        serde_json::from_str(input).expect("input is JSON"),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        inputs.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![
            "cluster-scheduler",
            "cost-reporter",
            "dns-updater",
            "dora-aggregator"
        ]
    );
    assert_eq!(
        cluster_scheduler::request::parse(&inputs["cluster-scheduler"]).ok(),
        Some(cluster_scheduler::request::Request::Reconcile)
    );
    assert_eq!(
        dns_updater::request::parse(&inputs["dns-updater"]).ok(),
        Some(dns_updater::request::Request::SyncUp)
    );
    assert_eq!(
        dora_aggregator::request::parse(&inputs["dora-aggregator"]).ok(),
        Some(dora_aggregator::request::Request::Daily)
    );
    assert_eq!(
        cost_reporter::request::parse(&inputs["cost-reporter"]).ok(),
        Some(cost_reporter::request::Request::Daily)
    );
}

/// SDK operations (as the code calls them) -> the IAM actions they need.
const OPERATIONS: [(&str, &[&str]); 66] = [
    ("describe_cluster", &["eks:DescribeCluster"]),
    ("create_cluster", &["eks:CreateCluster"]),
    ("delete_cluster", &["eks:DeleteCluster"]),
    ("list_nodegroups", &["eks:ListNodegroups"]),
    ("describe_nodegroup", &["eks:DescribeNodegroup"]),
    ("create_nodegroup", &["eks:CreateNodegroup"]),
    ("update_nodegroup_config", &["eks:UpdateNodegroupConfig"]),
    ("delete_nodegroup", &["eks:DeleteNodegroup"]),
    ("list_addons", &["eks:ListAddons"]),
    ("create_addon", &["eks:CreateAddon"]),
    ("list_fargate_profiles", &["eks:ListFargateProfiles"]),
    ("describe_fargate_profile", &["eks:DescribeFargateProfile"]),
    ("list_access_entries", &["eks:ListAccessEntries"]),
    ("create_access_entry", &["eks:CreateAccessEntry"]),
    ("associate_access_policy", &["eks:AssociateAccessPolicy"]),
    (
        "list_pod_identity_associations",
        &["eks:ListPodIdentityAssociations"],
    ),
    (
        "describe_pod_identity_association",
        &["eks:DescribePodIdentityAssociation"],
    ),
    (
        "create_pod_identity_association",
        &["eks:CreatePodIdentityAssociation"],
    ),
    (
        "update_pod_identity_association",
        &["eks:UpdatePodIdentityAssociation"],
    ),
    (
        "create_open_id_connect_provider",
        &[
            "iam:CreateOpenIDConnectProvider",
            "iam:TagOpenIDConnectProvider",
        ],
    ),
    (
        "get_open_id_connect_provider",
        &["iam:GetOpenIDConnectProvider"],
    ),
    (
        "delete_open_id_connect_provider",
        &["iam:DeleteOpenIDConnectProvider"],
    ),
    ("get_role", &["iam:GetRole"]),
    ("update_assume_role_policy", &["iam:UpdateAssumeRolePolicy"]),
    ("get_secret_value", &["secretsmanager:GetSecretValue"]),
    (
        "describe_cluster_versions",
        &["eks:DescribeClusterVersions"],
    ),
    (
        "describe_load_balancers",
        &["elasticloadbalancing:DescribeLoadBalancers"],
    ),
    ("describe_tags", &["elasticloadbalancing:DescribeTags"]),
    ("get_object", &["s3:GetObject"]),
    ("query", &["dynamodb:Query"]),
    ("get_item", &["dynamodb:GetItem"]),
    ("put_item", &["dynamodb:PutItem"]),
    ("update_item", &["dynamodb:UpdateItem"]),
    ("delete_item", &["dynamodb:DeleteItem"]),
    ("batch_get_item", &["dynamodb:BatchGetItem"]),
    // A transaction needs the actions of the writes in it: an update and a put.
    (
        "transact_write_items",
        &["dynamodb:UpdateItem", "dynamodb:PutItem"],
    ),
    ("put_events", &["events:PutEvents"]),
    ("get_parameter", &["ssm:GetParameter"]),
    // slack-commands hands the scheduler its documents.
    ("invoke", &["lambda:InvokeFunction"]),
    ("get_parameters", &["ssm:GetParameters"]),
    ("put_metric_data", &["cloudwatch:PutMetricData"]),
    (
        "list_resource_record_sets",
        &["route53:ListResourceRecordSets"],
    ),
    (
        "change_resource_record_sets",
        &["route53:ChangeResourceRecordSets"],
    ),
    ("get_change", &["route53:GetChange"]),
    ("get_cost_and_usage", &["ce:GetCostAndUsage"]),
    ("get_cost_forecast", &["ce:GetCostForecast"]),
    ("get_resources", &["tag:GetResources"]),
    ("describe_volumes", &["ec2:DescribeVolumes"]),
    ("describe_nat_gateways", &["ec2:DescribeNatGateways"]),
    ("describe_route_tables", &["ec2:DescribeRouteTables"]),
    ("describe_subnets", &["ec2:DescribeSubnets"]),
    ("allocate_address", &["ec2:AllocateAddress"]),
    ("create_nat_gateway", &["ec2:CreateNatGateway"]),
    ("create_route", &["ec2:CreateRoute"]),
    ("replace_route", &["ec2:ReplaceRoute"]),
    ("delete_route", &["ec2:DeleteRoute"]),
    ("delete_nat_gateway", &["ec2:DeleteNatGateway"]),
    ("release_address", &["ec2:ReleaseAddress"]),
    ("describe_addresses", &["ec2:DescribeAddresses"]),
    (
        "describe_network_interfaces",
        &["ec2:DescribeNetworkInterfaces"],
    ),
    ("describe_instances", &["ec2:DescribeInstances"]),
    (
        "describe_launch_templates",
        &["ec2:DescribeLaunchTemplates"],
    ),
    ("terminate_instances", &["ec2:TerminateInstances"]),
    ("delete_launch_template", &["ec2:DeleteLaunchTemplate"]),
    ("list_instance_profiles", &["iam:ListInstanceProfiles"]),
    (
        "list_instance_profile_tags",
        &["iam:ListInstanceProfileTags"],
    ),
];

/// Calls a function reaches through `fleet_shared` (whose code every function links, so
/// scanning it would credit every function with every shared call). Each line names the
/// shared code that makes the call.
fn shared_calls(function: &str) -> Vec<&'static str> {
    // startup::cold_start reads the config and secrets from SSM.
    let mut calls = vec!["get_parameter"];
    // ColdStart::prefetch: the functions with several secrets read them in one call.
    if matches!(function, "dns-updater" | "dora-webhook" | "dora-aggregator") {
        calls.push("get_parameters");
    }
    // metrics::put: the functions that send custom metrics.
    if matches!(
        function,
        "spot-drainer" | "dns-updater" | "dora-aggregator" | "cost-reporter"
    ) {
        calls.push("put_metric_data");
    }
    calls.extend(match function {
        // state: cluster(), clusters() (a batch read), overrides, record_transition (a
        // transaction), mark_checked; bus: publish.
        "cluster-scheduler" => vec![
            "query",
            "batch_get_item",
            "put_item",
            "update_item",
            "delete_item",
            "transact_write_items",
            "put_events",
        ],
        // state: drain leases (acquire, complete, release); bus: Node Drained; kube:
        // ClusterAccess::of_active.
        "spot-drainer" => vec![
            "put_item",
            "update_item",
            "delete_item",
            "put_events",
            "describe_cluster",
        ],
        // state: cluster(), dns owners and targets, the sync lease; kube:
        // ClusterAccess::of_active.
        "dns-updater" => vec![
            "query",
            "get_item",
            "put_item",
            "delete_item",
            "describe_cluster",
        ],
        // dora: DoraStore::put, delivery_seen, mark_delivery.
        "dora-webhook" => vec!["get_item", "put_item"],
        // dora: DoraStore::events; the redelivery sweep's delivery_seen and its claims
        // (claim_redelivery, release_redelivery); state: claim_daily for the digest (a
        // lease, given back if its write's answer is lost).
        "dora-aggregator" => vec!["query", "get_item", "put_item", "delete_item"],
        // state: transitions(), cluster(), the Cost Explorer cache, claim_daily for Slack.
        "cost-reporter" => vec!["query", "get_item", "put_item", "delete_item"],
        _ => vec![],
    });
    calls
}

/// Actions a role needs that no call names: tagging on create (CreateCluster with tags
/// needs eks:TagResource), passing the blueprint roles to EKS, and the spoke roles the
/// SDK's assume-role provider assumes (`fleet_shared::place`).
fn implied_actions(function: &str) -> Vec<&'static str> {
    match function {
        // ec2:CreateTags: NAT gateways and Elastic IPs tagged in their create call.
        "cluster-scheduler" => vec![
            "eks:TagResource",
            "iam:PassRole",
            "ec2:CreateTags",
            "sts:AssumeRole",
        ],
        "spot-drainer" | "dns-updater" | "cost-reporter" => vec!["sts:AssumeRole"],
        _ => vec![],
    }
}

/// The operations a function's own code calls.
fn own_calls(function: &str) -> BTreeSet<String> {
    let dir = workspace_root()
        .join("functions")
        .join(function)
        .join("src");
    let mut calls = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("src").filter_map(|e| e.ok()) {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        // Test code is not deployed.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (op, _) in OPERATIONS {
            if code.contains(&format!(".{op}()")) {
                calls.insert(op.to_string());
            }
        }
    }
    calls
}

/// The actions in a function's inline policy statements (both branches of an `Fn::If`).
fn role_actions(f: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut statements: Vec<Value> = Vec::new();
    for policy in f["Properties"]["Policies"].as_array().into_iter().flatten() {
        for s in policy["Statement"].as_array().into_iter().flatten() {
            match s.get("Fn::If").and_then(Value::as_array) {
                Some(branches) => statements.extend(
                    branches
                        .iter()
                        .skip(1)
                        .filter(|b| b.get("Action").is_some())
                        .cloned(),
                ),
                None => statements.push(s.clone()),
            }
        }
    }
    // A Deny grants nothing (the regions' limit: checked on its own).
    for s in statements.into_iter().filter(|s| s["Effect"] != "Deny") {
        assert_eq!(s["Effect"], "Allow");
        match &s["Action"] {
            Value::String(a) => {
                out.insert(a.clone());
            }
            Value::Array(a) => out.extend(a.iter().filter_map(|x| x.as_str().map(String::from))),
            other => panic!("unexpected Action {other}"),
        }
        assert!(
            !s["Action"].to_string().contains("*"),
            "wildcard action in {s}"
        );
    }
    out
}

/// The table above is kept by hand: every operation the shared code calls must be in it
/// for some function, so that a new shared call cannot go unnoticed (and unpermitted).
#[test]
fn every_shared_call_is_credited_to_a_function() {
    let dir = workspace_root().join("shared/src");
    let mut files = vec![];
    let mut dirs = vec![dir];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d)
            .expect("shared/src")
            .filter_map(|e| e.ok())
        {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    let credited: BTreeSet<&str> = [
        "cluster-scheduler",
        "spot-drainer",
        "dns-updater",
        "dora-webhook",
        "dora-aggregator",
        "cost-reporter",
        "slack-commands",
    ]
    .iter()
    .flat_map(|f| shared_calls(f))
    .collect();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (op, _) in OPERATIONS {
            if code.contains(&format!(".{op}()")) {
                assert!(
                    credited.contains(op),
                    "{} calls `{op}`, which no function is credited with",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn each_role_allows_exactly_the_calls_its_function_makes() {
    let t = template();
    let actions: BTreeMap<&str, &[&str]> = OPERATIONS.iter().copied().collect();
    for (name, f) in functions(&t) {
        let mut calls: BTreeSet<String> = own_calls(&name);
        calls.extend(shared_calls(&name).into_iter().map(String::from));
        let mut needed: BTreeSet<String> = calls
            .iter()
            .flat_map(|c| actions[c.as_str()].iter().map(|a| a.to_string()))
            .collect();
        needed.extend(implied_actions(&name).into_iter().map(String::from));
        assert_eq!(
            role_actions(&f),
            needed,
            "{name}: role vs the calls in its code"
        );
    }
}

/// A function's policy statements (both branches of an `Fn::If`), Deny ones included.
fn statements(f: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for policy in f["Properties"]["Policies"].as_array().into_iter().flatten() {
        for s in policy["Statement"].as_array().into_iter().flatten() {
            match s.get("Fn::If").and_then(Value::as_array) {
                Some(branches) => out.extend(
                    branches
                        .iter()
                        .skip(1)
                        .filter(|b| b.get("Action").is_some())
                        .cloned(),
                ),
                None => out.push(s.clone()),
            }
        }
    }
    out
}

fn actions_of(s: &Value) -> Vec<String> {
    match &s["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

/// The statements of `function` that allow `action`.
fn allowing(t: &Value, function: &str, action: &str) -> Vec<Value> {
    let f = &functions(t)[function];
    statements(f)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow" && actions_of(s).iter().any(|a| a == action))
        .collect()
}

fn stack() -> Value {
    json!({"Ref": "AWS::StackName"})
}

/// IAM enforces the ownership rules even if the code had a bug: the scheduler creates
/// clusters only tagged as this fleet's, changes only what carries that tag, gives access
/// only to the principals and policies the blueprints name, passes roles only to EKS, and
/// every EKS resource it may touch is named with the required prefix.
#[test]
fn the_schedulers_role_acts_only_on_this_fleets_clusters() {
    let t = template();
    let prefix = &t["Parameters"]["ClusterNamePrefix"];
    assert!(
        prefix.get("Default").is_none(),
        "ClusterNamePrefix must be required: {prefix}"
    );
    assert_eq!(prefix["AllowedPattern"], "^[A-Za-z0-9_-]+$");
    assert_eq!(
        t["Globals"]["Function"]["Environment"]["Variables"]["FLEET_STACK"],
        stack()
    );
    let one = |action: &str| {
        let s = allowing(&t, "cluster-scheduler", action);
        assert_eq!(s.len(), 1, "{action}: {s:?}");
        s[0].clone()
    };
    let create = one("eks:CreateCluster");
    assert_eq!(
        create["Condition"]["StringEquals"]["aws:RequestTag/fleet:managed-by"],
        stack()
    );
    for action in [
        "eks:DeleteCluster",
        "eks:CreateNodegroup",
        "eks:UpdateNodegroupConfig",
        "eks:DeleteNodegroup",
        "eks:CreateAddon",
        "eks:CreateAccessEntry",
        "eks:AssociateAccessPolicy",
    ] {
        let s = one(action);
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:ResourceTag/fleet:managed-by"],
            stack(),
            "{action} must be conditioned on this fleet's tag: {s}"
        );
    }
    assert_eq!(
        one("eks:CreateAccessEntry")["Condition"]["StringEquals"]["eks:principalArn"],
        json!({"Ref": "AccessPrincipalArns"})
    );
    assert_eq!(
        one("eks:AssociateAccessPolicy")["Condition"]["StringEquals"]["eks:policyArn"],
        json!({"Ref": "AccessPolicyArns"})
    );
    let tag = one("eks:TagResource");
    assert_eq!(
        tag["Condition"]["StringEquals"]["aws:RequestTag/fleet:managed-by"],
        stack()
    );
    assert_eq!(
        tag["Condition"]["StringEqualsIfExists"]["aws:ResourceTag/fleet:managed-by"],
        stack()
    );
    // The Karpenter backstop: only what Karpenter launched for a fleet cluster.
    for action in ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"] {
        let s = one(action);
        assert_eq!(
            s["Condition"]["StringLike"]["aws:ResourceTag/karpenter.sh/nodepool"], "*",
            "{action}: {s}"
        );
        assert_eq!(
            s["Condition"]["StringLike"]["aws:ResourceTag/eks:eks-cluster-name"],
            json!({"Fn::Sub": "${ClusterNamePrefix}*"}),
            "{action}: {s}"
        );
        assert_ne!(s["Resource"], "*", "{action}: {s}");
    }
    // Networks: made only tagged, deleted only when tagged, routes only in listed tables.
    let allocate = one("ec2:AllocateAddress");
    assert_eq!(
        allocate["Condition"]["StringEquals"]["aws:RequestTag/fleet:managed-by"],
        stack()
    );
    let creates = allowing(&t, "cluster-scheduler", "ec2:CreateNatGateway");
    let on = |kind: &str| -> Vec<Value> {
        creates
            .iter()
            .filter(|s| s["Resource"].to_string().contains(&format!(":{kind}/*")))
            .cloned()
            .collect()
    };
    assert_eq!(creates.len(), 3, "{creates:?}");
    assert_eq!(
        on("natgateway")[0]["Condition"]["StringEquals"]["aws:RequestTag/fleet:managed-by"],
        stack()
    );
    assert_eq!(
        on("elastic-ip")[0]["Condition"]["StringEquals"]["aws:ResourceTag/fleet:managed-by"],
        stack(),
        "a NAT gateway only with the fleet's own address"
    );
    for action in ["ec2:DeleteNatGateway", "ec2:ReleaseAddress"] {
        let s = one(action);
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:ResourceTag/fleet:managed-by"],
            stack(),
            "{action}: {s}"
        );
        assert_ne!(s["Resource"], "*", "{action}: {s}");
    }
    for action in ["ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute"] {
        let s = one(action);
        assert_eq!(
            s["Condition"]["StringEquals"]["ec2:RouteTableID"],
            json!({"Ref": "NetworkRouteTableIds"}),
            "{action}: {s}"
        );
    }
    let tags = one("ec2:CreateTags");
    assert_eq!(
        tags["Condition"]["StringEquals"]["ec2:CreateAction"],
        json!(["CreateNatGateway", "AllocateAddress"])
    );
    // Roles are passed to EKS (the blueprints' cluster and node roles) and to Pod
    // Identity (the blueprints' pod_identity roles), each only those.
    let passes = allowing(&t, "cluster-scheduler", "iam:PassRole");
    let passed: Vec<(Value, Value)> = passes
        .iter()
        .map(|p| {
            (
                p["Resource"].clone(),
                p["Condition"]["StringEquals"]["iam:PassedToService"].clone(),
            )
        })
        .collect();
    assert_eq!(
        passed,
        vec![
            (
                json!({"Ref": "BlueprintRoleArns"}),
                json!("eks.amazonaws.com")
            ),
            (
                json!({"Ref": "PodIdentityRoleArns"}),
                json!("pods.eks.amazonaws.com")
            ),
        ]
    );
    for action in [
        "eks:CreatePodIdentityAssociation",
        "eks:UpdatePodIdentityAssociation",
        "iam:DeleteOpenIDConnectProvider",
    ] {
        let s = one(action);
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:ResourceTag/fleet:managed-by"],
            stack(),
            "{action} must be conditioned on this fleet's tag: {s}"
        );
    }
    let provider = one("iam:CreateOpenIDConnectProvider");
    assert_eq!(
        provider["Condition"]["StringEquals"]["aws:RequestTag/fleet:managed-by"],
        stack()
    );
    assert!(
        provider["Resource"]
            .to_string()
            .contains(":oidc-provider/oidc.eks.*.amazonaws.com/id/*"),
        "{provider}"
    );
    // Only the listed roles' trust, only the listed secrets.
    for (action, parameter) in [
        ("iam:UpdateAssumeRolePolicy", "IrsaRoleArns"),
        ("iam:GetRole", "IrsaRoleArns"),
        ("secretsmanager:GetSecretValue", "BootstrapSecretArns"),
    ] {
        assert_eq!(
            one(action)["Resource"],
            json!({"Ref": parameter}),
            "{action}"
        );
    }
    assert!(allowing(&t, "cluster-scheduler", "eks:DeleteFargateProfile").is_empty());
    // Every EKS resource of every function carries the prefix.
    for name in functions(&t).keys() {
        for s in statements(&functions(&t)[name]) {
            if actions_of(&s)
                .iter()
                .any(|a| a.starts_with("eks:") && a != "eks:DescribeClusterVersions")
            {
                let text = s["Resource"].to_string();
                assert!(text.contains("${ClusterNamePrefix}*"), "{name}: {s}");
                assert!(!text.contains("\"*\""), "{name}: {s}");
            }
        }
    }
}

/// The cost reporter's IAM is read only: it lists instance profiles (Karpenter's
/// leftovers) and reads the tags only of those named under the cluster prefix.
#[test]
fn the_cost_reporter_only_lists_instance_profiles() {
    let t = template();
    let iam: Vec<String> = statements(&functions(&t)["cost-reporter"])
        .iter()
        .flat_map(actions_of)
        .filter(|a| a.starts_with("iam:"))
        .collect();
    assert_eq!(
        iam,
        ["iam:ListInstanceProfiles", "iam:ListInstanceProfileTags"]
    );
    let tags = allowing(&t, "cost-reporter", "iam:ListInstanceProfileTags");
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert!(
        tags[0]["Resource"]
            .to_string()
            .contains(":instance-profile/*${ClusterNamePrefix}*_*"),
        "{}",
        tags[0]
    );
}

/// Each role reads only the config and the secrets its function uses, writes only its
/// own partitions of the shared table, and the DNS updater changes only the config's
/// record names, types and actions.
#[test]
fn each_role_reads_its_own_secrets_and_writes_its_own_items() {
    let t = template();
    let parameter = |p: &str| json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter${{{p}}}")});
    let expected: [(&str, &[&str], &[&str]); 7] = [
        (
            "cluster-scheduler",
            &["SlackWebhookParameter"],
            &[
                "cluster#*",
                "network#*",
                "transitions#*",
                "audit#*",
                "notice#*",
            ],
        ),
        ("spot-drainer", &["SlackWebhookParameter"], &["drain#*"]),
        (
            "dns-updater",
            &["SlackWebhookParameter", "CloudflareTokenParameter"],
            &["cluster#*", "dns#*", "dnsowner#*", "dnssync#*"],
        ),
        (
            "dora-webhook",
            &[
                "GitHubSecretParameter",
                "FluxSecretParameter",
                "FlaggerTokenParameter",
                "ArgoCdTokenParameter",
                "PagerDutySecretParameter",
            ],
            &["dora#*"],
        ),
        (
            "dora-aggregator",
            &[
                "SlackWebhookParameter",
                "PushgatewayUrlParameter",
                "GitHubTokenParameter",
            ],
            &["dora#*"],
        ),
        (
            "cost-reporter",
            &["SlackWebhookParameter"],
            &["cost#*", "cluster#*", "transitions#*"],
        ),
        // The signing secret only: it reads no table and posts no notices.
        ("slack-commands", &["SlackSigningSecretParameter"], &[]),
    ];
    for (function, secrets, partitions) in expected {
        let mut ssm = allowing(&t, function, "ssm:GetParameter");
        // The functions that reach spokes read the spokes' external ids, exactly those.
        let external = json!({"Ref": "SpokeExternalIdParameters"});
        let reaches_spokes = [
            "cluster-scheduler",
            "spot-drainer",
            "dns-updater",
            "cost-reporter",
        ]
        .contains(&function);
        let before = ssm.len();
        ssm.retain(|s| s["Resource"] != external);
        assert_eq!(
            before - ssm.len(),
            usize::from(reaches_spokes),
            "{function}: external ids"
        );
        if function == "cluster-scheduler" {
            // Besides: the blueprints' bootstrap secrets in SSM, exactly those.
            let bootstrap = ssm.remove(0);
            assert_eq!(
                bootstrap["Resource"],
                json!({"Ref": "BootstrapParameterArns"})
            );
        }
        assert_eq!(ssm.len(), 1, "{function}");
        let mut want = vec![parameter("FleetConfigParameter")];
        want.extend(secrets.iter().map(|s| parameter(s)));
        assert_eq!(
            ssm[0]["Resource"],
            json!(want),
            "{function}: SSM parameters"
        );
        for s in statements(&functions(&t)[function]) {
            if actions_of(&s).iter().any(|a| a.starts_with("dynamodb:")) {
                assert_eq!(
                    s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
                    json!(partitions),
                    "{function}: {s}"
                );
            }
        }
    }
    let change = allowing(&t, "dns-updater", "route53:ChangeResourceRecordSets");
    assert_eq!(change.len(), 1);
    let c = &change[0]["Condition"]["ForAllValues:StringEquals"];
    assert_eq!(
        c["route53:ChangeResourceRecordSetsNormalizedRecordNames"],
        json!({"Ref": "Route53RecordNames"})
    );
    assert_eq!(
        c["route53:ChangeResourceRecordSetsRecordTypes"],
        json!(["A", "AAAA", "CNAME"])
    );
    assert_eq!(
        c["route53:ChangeResourceRecordSetsActions"],
        json!(["CREATE", "UPSERT", "DELETE"])
    );
}

/// A delivery the table could not take answers 500 while the invocation succeeds, so
/// Lambda's Errors metric never sees it: a metric filter on the exact log line the
/// handler writes feeds an alarm instead (GitHub does not redeliver by itself).
#[test]
fn a_webhook_storage_failure_raises_an_alarm() {
    let t = template();
    let code =
        std::fs::read_to_string(workspace_root().join("functions/dora-webhook/src/handler.rs"))
            .expect("handler");
    let message = "storing webhook events failed";
    assert!(
        code.contains(&format!("tracing::error!(error = %e, \"{message}\")")),
        "the handler no longer logs `{message}` at error level"
    );
    let filter = &t["Resources"]["WebhookStorageFailureMetric"]["Properties"];
    assert_eq!(filter["LogGroupName"], json!({"Ref": "DoraWebhookLogs"}));
    assert_eq!(
        filter["FilterPattern"],
        format!("{{ $.fields.message = \"{message}\" }}")
    );
    let metric = &filter["MetricTransformations"][0];
    let alarm = &t["Resources"]["WebhookStorageFailures"]["Properties"];
    assert_eq!(alarm["Namespace"], metric["MetricNamespace"]);
    assert_eq!(alarm["MetricName"], metric["MetricName"]);
    assert_eq!(alarm["AlarmActions"], json!([{"Ref": "AlarmTopic"}]));
}

/// The automation's own resources carry the cost tag the cost report groups its line by
/// (`cost_reporter::explorer::AUTOMATION_TAG`): every function (through the globals), the
/// state table, the bus and every log group.
#[test]
fn the_automation_carries_its_cost_tag() {
    let t = template();
    let (key, value) = cost_reporter::explorer::AUTOMATION_TAG;
    assert_eq!(t["Globals"]["Function"]["Tags"][key], value);
    let tagged = |r: &Value| {
        r["Properties"]["Tags"]
            .as_array()
            .is_some_and(|tags| tags.iter().any(|x| x["Key"] == key && x["Value"] == value))
    };
    let resources = t["Resources"].as_object().expect("resources");
    let mut log_groups = 0;
    for (name, r) in resources {
        let kind = r["Type"].as_str().unwrap_or_default();
        if matches!(
            kind,
            "AWS::DynamoDB::Table" | "AWS::Events::EventBus" | "AWS::Logs::LogGroup"
        ) {
            assert!(tagged(r), "{name} ({kind}) lacks {key}={value}");
            log_groups += usize::from(kind == "AWS::Logs::LogGroup");
        }
    }
    assert_eq!(
        log_groups,
        functions(&t).len(),
        "one log group per function"
    );
}

/// `[metrics] cloudwatch = "summary"` sends exactly the custom metrics the dashboard and
/// the alarms read (`fleet_shared::metrics::SUMMARY`), less those a log metric filter
/// makes.
#[test]
fn the_summary_metrics_are_what_the_dashboard_and_alarms_read() {
    let t = template();
    let resources = t["Resources"].as_object().expect("resources");
    let mut read = BTreeSet::new();
    let body = resources["FleetDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("dashboard body");
    // `SEARCH('{Fleet/Cost,Cluster} MetricName="HoursUp"', …)` and
    // `["Fleet/Cost", "MonthToDateUsd"], [".", "ForecastMonthEndUsd"]`.
    let search = regex_lite_pairs(body);
    read.extend(search);
    let filtered: BTreeSet<String> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::Logs::MetricFilter")
        .flat_map(|r| {
            r["Properties"]["MetricTransformations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|m| {
            format!(
                "{}/{}",
                m["MetricNamespace"].as_str().unwrap_or_default(),
                m["MetricName"].as_str().unwrap_or_default()
            )
        })
        .collect();
    for r in resources
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
    {
        let ns = r["Properties"]["Namespace"].as_str().unwrap_or_default();
        if ns.starts_with("Fleet/") {
            read.insert(format!(
                "{ns}/{}",
                r["Properties"]["MetricName"].as_str().unwrap_or_default()
            ));
        }
    }
    let read: BTreeSet<String> = read.difference(&filtered).cloned().collect();
    let summary: BTreeSet<String> = fleet_shared::metrics::SUMMARY
        .iter()
        .map(|(ns, name)| format!("{ns}/{name}"))
        .collect();
    assert_eq!(summary, read);
}

/// The `Fleet/*` metrics a dashboard body names, as `namespace/name`.
fn regex_lite_pairs(body: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // SEARCH expressions: `{Fleet/X,Cluster} MetricName=\"Y\"`.
    for part in body.split("SEARCH('{").skip(1) {
        let ns = part.split(',').next().unwrap_or_default();
        if let Some(name) = part
            .split("MetricName=\\\"")
            .nth(1)
            .and_then(|r| r.split('\\').next())
        {
            out.insert(format!("{ns}/{name}"));
        }
    }
    // Metric arrays: `["Fleet/X", "Y", …]`, then `[".", "Z", …]` in the same namespace.
    let mut namespace = String::new();
    for part in body.split('[').skip(1) {
        let fields: Vec<&str> = part
            .split(',')
            .map(|f| f.trim().trim_matches(|c| c == '"' || c == ']' || c == ' '))
            .collect();
        match fields.as_slice() {
            [ns, name, ..] if ns.starts_with("Fleet/") => {
                namespace = ns.to_string();
                out.insert(format!("{namespace}/{name}"));
            }
            [".", name, ..] if !namespace.is_empty() => {
                out.insert(format!("{namespace}/{name}"));
            }
            [ns, ..] if !ns.is_empty() && *ns != "." && *ns != "..." => namespace.clear(),
            _ => {}
        }
    }
    out
}

fn spoke() -> Value {
    let path = workspace_root().join("infra/spoke.yaml");
    let text = std::fs::read_to_string(&path).expect("infra/spoke.yaml");
    serde_saphyr::from_str(&text).expect("the spoke template is YAML")
}

/// A spoke role's statements (both branches of an `Fn::If`), Deny ones included.
fn spoke_statements(role: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for policy in role["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for s in policy["PolicyDocument"]["Statement"]
            .as_array()
            .into_iter()
            .flatten()
        {
            match s.get("Fn::If").and_then(Value::as_array) {
                Some(branches) => out.extend(
                    branches
                        .iter()
                        .skip(1)
                        .filter(|b| b.get("Action").is_some())
                        .cloned(),
                ),
                None => out.push(s.clone()),
            }
        }
    }
    out
}

/// The hub's statement as the spoke writes it: the fleet's name is a parameter there
/// (the hub stack's name here), and any region of the account (the deny below limits them).
fn as_in_spoke(hub: &Value) -> Value {
    let text = hub
        .to_string()
        .replace(r#"{"Ref":"AWS::StackName"}"#, r#"{"Ref":"FleetName"}"#)
        .replace(":eks:${AWS::Region}:", ":eks:*:")
        .replace(":ec2:${AWS::Region}:", ":ec2:*:");
    serde_json::from_str(&text).expect("json")
}

/// Each spoke role: assumable only by its own function's role in the hub (the hub's
/// roles live under `/fleet/<stack>/<function>/`), with the external id when one is set;
/// allowed in the spoke exactly what that function's hub role is allowed there, with the
/// same resources and tag conditions, and nothing outside the account's regions.
#[test]
fn each_spoke_role_is_its_hub_functions_and_no_more() {
    let t = template();
    let s = spoke();
    let fns = functions(&t);
    for (resource, function, suffix) in [
        ("SchedulerRole", "cluster-scheduler", "-scheduler"),
        ("DrainerRole", "spot-drainer", "-drainer"),
        ("DnsRole", "dns-updater", "-dns"),
        ("CostRole", "cost-reporter", "-cost"),
    ] {
        let role = &s["Resources"][resource];
        assert_eq!(role["Condition"], "WithRoles", "{resource}");
        assert_eq!(
            role["Properties"]["RoleName"],
            json!({"Fn::Sub": format!("${{SpokeRoleName}}{suffix}")})
        );
        // The hub function's role path, as the hub template sets it.
        assert_eq!(
            fns[function]["Properties"]["RolePath"],
            json!({"Fn::Sub": format!("/fleet/${{AWS::StackName}}/{function}/")})
        );
        let trust = &role["Properties"]["AssumeRolePolicyDocument"]["Statement"];
        assert_eq!(
            trust.as_array().map(Vec::len),
            Some(1),
            "{resource}: {trust}"
        );
        let trust = &trust[0];
        assert_eq!(trust["Action"], "sts:AssumeRole");
        assert_eq!(
            trust["Principal"]["AWS"],
            json!({"Fn::Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:root"})
        );
        assert_eq!(
            trust["Condition"]["ArnLike"]["aws:PrincipalArn"],
            json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:iam::${{HubAccountId}}:role/fleet/${{FleetName}}/{function}/*")}),
            "{resource}"
        );
        assert_eq!(
            trust["Condition"]["StringEquals"]["Fn::If"][1]["sts:ExternalId"],
            json!({"Ref": "ExternalId"})
        );
        let spoke_statements = spoke_statements(role);
        // Nothing outside the account's regions.
        let deny = spoke_statements
            .iter()
            .find(|st| st["Effect"] == "Deny")
            .unwrap_or_else(|| panic!("{resource}: no region deny"));
        assert_eq!(
            deny["Condition"]["StringNotEquals"]["aws:RequestedRegion"],
            json!({"Ref": "Regions"})
        );
        assert_eq!(deny["Resource"], "*");
        // Every allow is the hub's statement of the same Sid, as the spoke writes it; and
        // every hub statement about the clusters' own resources is there.
        let hub: BTreeMap<String, Value> = statements(&fns[function])
            .into_iter()
            .filter(|st| st["Effect"] == "Allow")
            .filter_map(|st| Some((st["Sid"].as_str()?.to_string(), st)))
            .collect();
        let mut sids = BTreeSet::new();
        for st in spoke_statements.iter().filter(|st| st["Effect"] == "Allow") {
            let sid = st["Sid"].as_str().expect("Sid").to_string();
            let theirs = hub
                .get(&sid)
                .unwrap_or_else(|| panic!("{resource}: {sid} is not the hub's"));
            let theirs = as_in_spoke(theirs);
            assert_eq!(st["Action"], theirs["Action"], "{resource} {sid}");
            assert_eq!(st["Condition"], theirs["Condition"], "{resource} {sid}");
            let resources = st["Resource"]
                .to_string()
                .replace("oidc.eks.*.amazonaws.com", "X");
            let hub_resources = theirs["Resource"]
                .to_string()
                .replace("oidc.eks.*.amazonaws.com", "X");
            assert_eq!(resources, hub_resources, "{resource} {sid}");
            sids.insert(sid);
        }
        // What the hub does only with its own things (state, bus, config, bootstrap
        // sources, spoke roles) is not in a spoke.
        let hub_only = [
            "State",
            "FleetBus",
            "ConfigAndSecrets",
            "DrainLease",
            "Metrics",
            "BootstrapSecrets",
            "BootstrapParameters",
            "BootstrapManifests",
            "AssumeItsSpokeRoles",
            "OnlyTheFleetsRegions",
            "Route53",
            "Records",
            "DnsState",
            "UptimeAndCache",
        ];
        for sid in hub.keys() {
            let eks_or_ec2 = hub[sid].to_string().contains("eks:")
                || hub[sid].to_string().contains("\"ec2:")
                || hub[sid].to_string().contains("iam:");
            if eks_or_ec2 && !hub_only.contains(&sid.as_str()) {
                assert!(sids.contains(sid), "{resource}: the hub's {sid} is missing");
            }
        }
    }
}

/// The hub's functions that reach spokes assume only their own role there, act in the hub
/// account only in its regions, and the bus takes forwarded events only from the spokes.
#[test]
fn the_hub_reaches_spokes_only_through_their_roles() {
    let t = template();
    let fns = functions(&t);
    for (function, suffix) in [
        ("cluster-scheduler", "-scheduler"),
        ("spot-drainer", "-drainer"),
        ("dns-updater", "-dns"),
        ("cost-reporter", "-cost"),
    ] {
        let assume = allowing(&t, function, "sts:AssumeRole");
        assert_eq!(assume.len(), 1, "{function}");
        let text = assume[0]["Resource"].to_string();
        assert!(
            text.contains(&format!("${{Roles}}{suffix}")) && text.contains("SpokeRoleArns"),
            "{function}: {text}"
        );
        let deny: Vec<Value> = statements(&fns[function])
            .into_iter()
            .filter(|s| s["Effect"] == "Deny")
            .collect();
        assert_eq!(deny.len(), 1, "{function}");
        assert!(
            deny[0]["Condition"]["StringNotEquals"]["aws:RequestedRegion"]
                .to_string()
                .contains("FleetRegions")
        );
    }
    for function in ["dora-webhook", "dora-aggregator"] {
        assert!(
            allowing(&t, function, "sts:AssumeRole").is_empty(),
            "{function}"
        );
    }
    let accounts = &t["Resources"]["FleetBusFromSpokeAccounts"]["Properties"]["Statement"];
    assert_eq!(
        accounts["Principal"]["AWS"],
        json!({"Ref": "SpokeAccountIds"})
    );
    assert_eq!(accounts["Action"], "events:PutEvents");
    let org = &t["Resources"]["FleetBusFromSpokeOrganization"]["Properties"]["Statement"];
    assert_eq!(
        org["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
        json!({"Ref": "SpokeOrganizationId"})
    );
    // Only the sources the spokes forward: never the fleet's own events.
    for policy in [accounts, org] {
        assert_eq!(
            policy["Condition"]["StringEquals"]["events:source"],
            json!(["aws.ec2", "aws.health"])
        );
    }
}

/// The spoke forwards exactly the drainer's four patterns to the hub's bus, and the hub
/// routes them from its bus to the drainer with the same patterns.
#[test]
fn spokes_forward_what_the_drainer_listens_to() {
    let t = template();
    let s = spoke();
    let drainer = &functions(&t)["spot-drainer"];
    let mut default_bus = BTreeSet::new();
    let mut fleet_bus = BTreeSet::new();
    for (name, props) in drainer["Properties"]["Events"]
        .as_object()
        .expect("events")
        .iter()
        .map(|(k, v)| (k, &v["Properties"]))
    {
        let pattern = props["Pattern"].to_string();
        if props.get("EventBusName").is_some() {
            assert_eq!(props["EventBusName"], json!({"Ref": "FleetBus"}), "{name}");
            fleet_bus.insert(pattern);
        } else {
            default_bus.insert(pattern);
        }
    }
    assert_eq!(default_bus.len(), 4);
    assert_eq!(fleet_bus, default_bus);
    let forwarded: BTreeSet<String> = s["Resources"]
        .as_object()
        .expect("resources")
        .values()
        .filter(|r| r["Type"] == "AWS::Events::Rule")
        .map(|r| {
            let target = &r["Properties"]["Targets"][0];
            assert_eq!(
                target["Arn"],
                json!({"Fn::Sub": "arn:${AWS::Partition}:events:${HubRegion}:${HubAccountId}:event-bus/${EventBusName}"})
            );
            assert_eq!(target["RoleArn"], json!({"Fn::GetAtt": ["ForwardRole", "Arn"]}));
            r["Properties"]["EventPattern"].to_string()
        })
        .collect();
    assert_eq!(forwarded, default_bus);
    let put =
        &s["Resources"]["ForwardRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    assert_eq!(put.as_array().map(Vec::len), Some(1));
    assert_eq!(put[0]["Action"], "events:PutEvents");
    assert_eq!(
        put[0]["Resource"],
        json!({"Fn::Sub": "arn:${AWS::Partition}:events:${HubRegion}:${HubAccountId}:event-bus/${EventBusName}"})
    );
}
