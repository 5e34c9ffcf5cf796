//! The replay: moto, the fakes and the function binaries run through the day on a
//! virtual clock, a tick every 15 minutes, with the operator's hold, the spot warning and
//! the webhooks at their instants, then the reports.

use std::path::PathBuf;

use jiff::{Timestamp, ToSpan};
use serde_json::{json, Value};

use super::inputs::{example_config, seed_history, webhooks};
use super::{bin_dir, Day, Entry, Report, LOAD_BALANCER, RECORD};
use crate::fakes::cloudflare::FakeCloudflare;
use crate::fakes::karpenter;
use crate::fakes::kube::FakeKube;
use crate::fakes::slack::FakeSlack;
use crate::fixtures::dns::{INGRESS_NAME, INGRESS_NS};
use crate::{
    seed_local_account, workspace_root, BusTap, MotoServer, LOCAL_BUS, LOCAL_CLOUDFLARE_TOKEN,
    LOCAL_HOSTED_ZONE_ID, LOCAL_TABLE, LOCAL_ZONE, REGION,
};

/// The example's scale-mode cluster, whose other nodes Karpenter launches.
const SANDBOX: &str = "sandbox-us";

struct Fleet {
    endpoint: String,
    kube_url: String,
    cloudflare_url: String,
    bin_dir: PathBuf,
    config: PathBuf,
}

impl Fleet {
    /// Runs a function binary's local runner on an event file at virtual time `at`.
    async fn invoke(&self, function: &str, event: &str, at: Timestamp) -> Result<Value, String> {
        let path = workspace_root().join("events").join(event);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{event}: {e}"))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| format!("{event}: {e}"))?;
        self.invoke_value(function, &value, Some(at)).await
    }

    /// Runs a function binary's local runner on `event` (through stdin, `--event -`), at
    /// virtual time `at` (`None`: the real clock, for work that waits in real time). Async,
    /// so that the fakes on this runtime keep answering while the binary runs.
    async fn invoke_value(
        &self,
        function: &str,
        event: &Value,
        at: Option<Timestamp>,
    ) -> Result<Value, String> {
        use tokio::io::AsyncWriteExt;
        let bin = self.bin_dir.join(function);
        let mut command = tokio::process::Command::new(&bin);
        command
            .arg("--event")
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("FLEET_TABLE", LOCAL_TABLE)
            .env("FLEET_CONFIG", &self.config)
            .env("FLEET_KUBE_API_URL", &self.kube_url)
            .env("CLOUDFLARE_API_URL", &self.cloudflare_url)
            .env("RUST_LOG", "warn")
            .env_remove("FLEET_NOW")
            .env_remove("AWS_LAMBDA_RUNTIME_API");
        if let Some(at) = at {
            command.env("FLEET_NOW", at.to_string());
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {} (build it first): {e}", bin.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(event.to_string().as_bytes())
                .await
                .map_err(|e| format!("{function}: writing the event: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| format!("{function}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{function} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{function} printed no JSON response: {e}"))
    }
}

/// Runs the demo `day`; `on_entry` sees each timeline line as it happens.
pub async fn run(day: Day, mut on_entry: impl FnMut(&Entry)) -> Result<Report, String> {
    example_config(&day)?;
    let moto = MotoServer::start(0)?;
    let sdk = fleet_shared::aws::emulator_config(&moto.endpoint, REGION);
    let slack = FakeSlack::start().await;
    seed_local_account(&sdk, &slack.url).await?;
    let history_hours = seed_history(&sdk, &moto.endpoint, &day).await?;
    let tap = BusTap::new(&sdk, LOCAL_BUS).await;
    // Every cluster's Kubernetes API is played by one fake API server; the ingress
    // controller's Service has its load balancer (the bootstrap would install it).
    let kube = FakeKube::start().await;
    // Replacement pods Ready after 5 s, not the fake's default 30 s (what the drain tests
    // run against): the story shows the budget pacing the drain without a minute's wait.
    kube.set_ready_delay(std::time::Duration::from_secs(5));
    kube.set_load_balancer_cleanup(crate::fakes::kube::LoadBalancerCleanup::After(
        std::time::Duration::from_millis(500),
    ));
    kube.insert(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingress-nginx"}}),
    );
    // sandbox-us's other nodes are Karpenter's: its CRDs, an EC2NodeClass and a spot
    // NodePool (100 CPUs), its controller on `general`, not running until that is up.
    karpenter::install_crds(&kube);
    kube.insert(
        karpenter::Ec2NodeClass::new("default", SANDBOX)
            .tag("fleet:cluster", SANDBOX)
            .build(),
    );
    kube.insert(
        karpenter::NodePool::new("spot", "default")
            .limits(json!({"cpu": "100"}))
            .capacity_type("spot")
            .build(),
    );
    kube.insert(karpenter::controller_deployment(0, 0));
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let controller =
        karpenter::FakeKarpenter::start_on(&kube, ec2.clone(), SANDBOX, moto.endpoint.clone());
    controller.set_running(false);
    let cloudflare = FakeCloudflare::start(LOCAL_CLOUDFLARE_TOKEN).await;
    let cf_zone = cloudflare.add_zone(LOCAL_ZONE);
    let route53 = aws_sdk_route53::Client::new(&sdk);
    let fleet = Fleet {
        endpoint: moto.endpoint.clone(),
        kube_url: kube.url.clone(),
        cloudflare_url: cloudflare.url.clone(),
        bin_dir: bin_dir(),
        config: workspace_root().join("infra/fleet.example.toml"),
    };
    let mut report = Report {
        day,
        history_hours,
        ..Report::default()
    };
    let mut log = |report: &mut Report, at: Timestamp, source: &str, what: String| {
        let e = Entry {
            at,
            source: source.into(),
            what,
        };
        on_entry(&e);
        report.timeline.push(e);
    };
    let hooks = webhooks(&day)?;

    // Monday 05:00 UTC to Tuesday 06:30 UTC, a tick every 15 minutes, plus a late release
    // that holds staging up for 3 hours past its evening.
    let (start, end) = (day.start()?, day.end()?);
    let (release, interruption) = (day.release()?, day.interruption()?);
    let mut at = start;
    while at < end {
        if at == release {
            let r = fleet
                .invoke("cluster-scheduler", "scheduler-up.json", at)
                .await?;
            log(
                &mut report,
                at,
                "operator",
                format!(
                    "holds staging up: {} until {}",
                    r["override"]["reason"].as_str().unwrap_or_default(),
                    r["override"]["until"].as_str().unwrap_or_default()
                ),
            );
        }
        if at == interruption {
            for obj in crate::fixtures::spot_drainer::objects() {
                kube.insert(obj);
            }
            let mut warning: Value =
                serde_json::from_str(include_str!("../../../events/spot-interruption.json"))
                    .map_err(|e| e.to_string())?;
            // Sent at the virtual instant: the drainer turns its two minutes into real time.
            warning["time"] = json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
            log(
                &mut report,
                at,
                "aws.ec2",
                format!(
                    "EC2 Spot Instance Interruption Warning: {}",
                    crate::fixtures::spot_drainer::INSTANCE
                ),
            );
            let d = fleet
                .invoke_value("spot-drainer", &warning, Some(at))
                .await?;
            log(
                &mut report,
                at,
                "spot-drainer",
                format!(
                    "{} node {} of {}: {} evicted through their PodDisruptionBudget, {} forced, {} skipped (DaemonSet, mirror), in {} ms",
                    d["status"].as_str().unwrap_or_default(),
                    d["node"].as_str().unwrap_or_default(),
                    d["cluster"].as_str().unwrap_or_default(),
                    d["evicted"],
                    d["forced"],
                    d["skipped"].as_array().map(Vec::len).unwrap_or(0),
                    d["duration_ms"],
                ),
            );
            report.drain = d;
            // Evicted pods terminate for their grace period (2 s) after the drain
            // returns: give them that, then read what the API holds.
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !drained_node_state(&kube).1.is_empty() && std::time::Instant::now() < until {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            report.drained_node = drained_node_state(&kube);
        }
        for hook in hooks.iter().filter(|h| h.at == at) {
            let delivery = format!("demo-{:?}-{}", hook.sender, hook.at);
            let r = fleet
                .invoke_value("dora-webhook", &hook.request(&delivery), Some(at))
                .await?;
            let status = r["statusCode"].as_i64().unwrap_or(0);
            let body: Value = r["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or_default();
            log(
                &mut report,
                at,
                "dora-webhook",
                format!(
                    "{} {}: {status} {}",
                    hook.source(),
                    hook.what,
                    body["status"].as_str().unwrap_or_default()
                ),
            );
            report.webhooks.push(status);
        }
        let tick = fleet
            .invoke("cluster-scheduler", "scheduler-tick.json", at)
            .await?;
        for c in tick["clusters"].as_array().into_iter().flatten() {
            let result = c["result"].as_str().unwrap_or_default();
            // The wait for the platform (the bootstrap, then `ready_when`) is the story too.
            let awaiting = c["step"]
                .as_str()
                .is_some_and(|s| s.starts_with("await-ready") || s.starts_with("bootstrap"));
            if result == "steady" || (result == "waiting" && !awaiting) {
                continue;
            }
            let mut what = format!(
                "{}: {} ({})",
                c["name"].as_str().unwrap_or_default(),
                c["step"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default()
            );
            if let Some(err) = c["error"].as_str() {
                what.push_str(&format!(" error: {err}"));
            }
            if c["name"] == "staging" && c["step"] == "create-cluster" {
                // The rebuilt cluster's ingress controller gets a new load balancer, and its
                // Deployment (Flux installs it from Git) has its pods available a tick
                // after the bootstrap; Flux's Kustomization is Ready at its first look.
                crate::fixtures::dns::morning_ingress(&kube, LOAD_BALANCER);
            }
            let step = c["step"].as_str().unwrap_or_default();
            if c["name"] == "staging" && step.starts_with("delete-loadbalancer-services") {
                // The service controller deletes the load balancer and releases the
                // Service within the 15 minutes to the next tick.
                kube.wait_gone(
                    "v1",
                    "Service",
                    INGRESS_NS,
                    INGRESS_NAME,
                    std::time::Duration::from_secs(10),
                )
                .await;
            }
            if c["name"] == SANDBOX {
                if let Some(line) =
                    karpenter_side(&kube, &controller, &ec2, step, &mut report).await?
                {
                    log(&mut report, at, "karpenter", line);
                }
            }
            if c["name"] == "staging" && step.starts_with("delete-nodegroups") {
                let gone = kube
                    .get("v1", "Service", INGRESS_NS, INGRESS_NAME)
                    .is_none();
                report.ingress_gone_before_nodegroups = Some(gone);
            }
            log(&mut report, at, "cluster-scheduler", what);
        }
        for e in tap.drain().await {
            let dt = e["detail-type"].as_str().unwrap_or_default().to_string();
            // A cluster's event names its cluster, a network's its network.
            let cluster = e["detail"]["cluster"]
                .as_str()
                .or(e["detail"]["network"].as_str())
                .unwrap_or_default()
                .to_string();
            log(&mut report, at, "fleet bus", format!("{dt}: {cluster}"));
            report.events.push((at, dt.clone(), cluster.clone()));
            if dt == "Network Down" {
                // The night: nothing of the network may bill from now on.
                report.network_at_end = network_left(&ec2).await;
            }
            if dt.starts_with("Cluster") {
                let r = fleet.invoke_value("dns-updater", &e, Some(at)).await?;
                for ch in r["changes"].as_array().into_iter().flatten() {
                    log(
                        &mut report,
                        at,
                        "dns-updater",
                        format!(
                            "{} {} {}: {} -> {}",
                            ch["provider"].as_str().unwrap_or_default(),
                            ch["action"].as_str().unwrap_or_default(),
                            ch["name"].as_str().unwrap_or_default(),
                            ch["from"].as_str().unwrap_or("(none)"),
                            ch["to"].as_str().unwrap_or("(none)"),
                        ),
                    );
                }
                if cluster == "staging" && dt == "Cluster Ready" {
                    let (cf, r53, _) = records(&cloudflare, &cf_zone, &route53).await;
                    report.dns_while_up = Some((cf, r53));
                    if report.morning.is_none() {
                        let facts = morning_facts(&sdk, &kube).await;
                        let took = e["detail"]["took_seconds"].as_i64();
                        log(
                            &mut report,
                            at,
                            "cluster-scheduler",
                            format!(
                                "staging's morning took {} min: {}",
                                took.unwrap_or(0) / 60,
                                facts
                                    .iter()
                                    .map(|(what, held)| format!(
                                        "{what}{}",
                                        if *held { "" } else { " (NOT)" }
                                    ))
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            ),
                        );
                        report.morning = Some(super::Morning {
                            took_seconds: took,
                            facts,
                        });
                    }
                }
                if cluster == PRODUCTION && dt.starts_with("Cluster") {
                    let facts = production_facts(&sdk, dt == "Cluster Ready").await;
                    log(
                        &mut report,
                        at,
                        "cluster-scheduler",
                        facts
                            .iter()
                            .map(|(what, held)| {
                                format!("{what}{}", if *held { "" } else { " (NOT)" })
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    );
                    report.production.extend(facts);
                }
                if cluster == "staging" && dt == "Cluster Destroyed" {
                    // A volume a PersistentVolumeClaim left behind: the cost report finds it.
                    leave_volume(&sdk).await?;
                    log(
                        &mut report,
                        at,
                        "aws",
                        "an EBS volume of staging's PVC was left behind".into(),
                    );
                }
                report.dns.push(r);
            }
        }
        for t in slack.texts().iter().skip(report.slack.len()) {
            log(
                &mut report,
                at,
                "slack",
                t.lines().next().unwrap_or_default().to_string(),
            );
        }
        report.slack = slack.texts();
        at = at.checked_add(15.minutes()).map_err(|e| e.to_string())?;
    }
    report.dns_records_at_end = records(&cloudflare, &cf_zone, &route53).await.2;
    let sandbox = sandbox_facts(&sdk).await;
    log(
        &mut report,
        end,
        "cluster-scheduler",
        sandbox
            .iter()
            .map(|(what, held)| format!("{what}{}", if *held { "" } else { " (NOT)" }))
            .collect::<Vec<_>>()
            .join("; "),
    );
    if let Some(m) = report.morning.as_mut() {
        m.facts.extend(sandbox);
    }
    report.status = fleet
        .invoke("cluster-scheduler", "scheduler-status.json", end)
        .await?;
    report.dora = fleet
        .invoke_value(
            "dora-aggregator",
            &json!({"action": "report", "from": day.utc(0, 0)?.to_string(), "to": day.utc(24, 0)?.to_string()}),
            Some(end),
        )
        .await?;
    log(
        &mut report,
        end,
        "dora-aggregator",
        "the DORA report for Monday".into(),
    );
    // The Monday's month, even when Tuesday begins the next one.
    let month = day.monday.strftime("%Y-%m").to_string();
    let cost = fleet
        .invoke_value(
            "cost-reporter",
            &json!({"action": "report", "month": month}),
            Some(end),
        )
        .await?;
    log(
        &mut report,
        end,
        "cost-reporter",
        format!(
            "{} so far ${:.2}; the schedule saved ${:.2}; {} leftover(s)",
            day.monday.strftime("%B"),
            cost["month_to_date"]["total_usd"].as_f64().unwrap_or(0.0),
            cost["savings"]["saved_to_date_usd"].as_f64().unwrap_or(0.0),
            cost["leftovers"].as_array().map(Vec::len).unwrap_or(0)
        ),
    );
    report.cost = cost;
    Ok(report)
}

/// What staging's morning must have brought back, read from moto and the fake API when
/// its `Cluster Ready` came.
async fn morning_facts(sdk: &aws_types::SdkConfig, kube: &FakeKube) -> Vec<(String, bool)> {
    let eks = aws_sdk_eks::Client::new(sdk);
    let applies: Vec<_> = kube
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    let first = |needle: &str| applies.iter().position(|r| r.path.contains(needle));
    let key_first = matches!(
        (first("/namespaces/flux-system/secrets/flux-system"), first("customresourcedefinitions")),
        (Some(k), Some(f)) if k < f
    );
    let issuer = eks
        .describe_cluster()
        .name("staging")
        .send()
        .await
        .ok()
        .and_then(|o| o.cluster)
        .and_then(|c| c.identity)
        .and_then(|i| i.oidc)
        .and_then(|o| o.issuer)
        .unwrap_or_default();
    let host = issuer.trim_start_matches("https://").to_string();
    let trust = aws_sdk_iam::Client::new(sdk)
        .get_role()
        .role_name(crate::LOCAL_IRSA_ROLE)
        .send()
        .await
        .ok()
        .and_then(|r| r.role)
        .and_then(|r| r.assume_role_policy_document)
        .unwrap_or_default();
    let trust = percent_encoding::percent_decode_str(&trust)
        .decode_utf8_lossy()
        .to_string();
    let has_association = |cluster: &'static str, sa: &'static str| {
        let eks = eks.clone();
        async move {
            eks.list_pod_identity_associations()
                .cluster_name(cluster)
                .send()
                .await
                .ok()
                .map(|o| o.associations.unwrap_or_default())
                .unwrap_or_default()
                .iter()
                .any(|a| a.service_account.as_deref() == Some(sa))
        }
    };
    let pod_identity = has_association("staging", "ebs-csi-controller-sa").await;
    let ingress = kube
        .get("apps/v1", "Deployment", INGRESS_NS, INGRESS_NAME)
        .is_some_and(|d| d["status"]["availableReplicas"] == 2);
    let flux = kube
        .get(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            "flux-system",
            "flux-system",
        )
        .is_some_and(|k| k["status"]["conditions"][0]["status"] == "True");
    let previous_provider = aws_sdk_iam::Client::new(sdk)
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(format!(
            "arn:aws:iam::123456789012:oidc-provider/{}",
            crate::LOCAL_PREVIOUS_ISSUER
        ))
        .send()
        .await
        .is_err();
    vec![
        ("Flux's deploy key applied before Flux".into(), key_first),
        (
            "the previous issuer's OIDC provider deleted".into(),
            previous_provider,
        ),
        (
            "the IRSA role trusts the new OIDC issuer".into(),
            !host.is_empty() && trust.contains(&format!("oidc-provider/{host}")),
        ),
        ("Pod Identity for the EBS CSI driver".into(), pod_identity),
        (
            "Flux's Kustomization Ready and the ingress controller available".into(),
            flux && ingress,
        ),
    ]
}

/// The example config's cluster in the production account, in us-east-1.
pub(super) const PRODUCTION: &str = "storefront-preview";

/// Where the production cluster is: when `up`, in the production account's us-east-1
/// and nowhere else (the hub's account in either region, production's eu-west-1); else
/// gone from there too. Read with Organizations' access role into the account, not with
/// the fleet's.
async fn production_facts(sdk: &aws_types::SdkConfig, up: bool) -> Vec<(String, bool)> {
    use crate::fixtures::accounts::as_organization;
    let exists = |sdk: aws_types::SdkConfig| async move {
        aws_sdk_eks::Client::new(&sdk)
            .describe_cluster()
            .name(PRODUCTION)
            .send()
            .await
            .is_ok()
    };
    let account = crate::LOCAL_PRODUCTION_ACCOUNT;
    let there = exists(as_organization(sdk, account, "us-east-1").await).await;
    let elsewhere = exists(as_organization(sdk, account, "eu-west-1").await).await
        || exists(fleet_shared::aws::in_region(sdk, "us-east-1")).await
        || exists(sdk.clone()).await;
    if up {
        vec![(
            format!("{PRODUCTION}: up in account {account} us-east-1, and nowhere else"),
            there && !elsewhere,
        )]
    } else {
        vec![(
            format!("{PRODUCTION}: gone from account {account} us-east-1, and nowhere else"),
            !there && !elsewhere,
        )]
    }
}

/// What sandbox-us's first morning gave it that stays with its control plane (scale
/// mode): its Karpenter node role's `EC2_LINUX` entry and its controller's association.
async fn sandbox_facts(sdk: &aws_types::SdkConfig) -> Vec<(String, bool)> {
    let eks = aws_sdk_eks::Client::new(sdk);
    let association = eks
        .list_pod_identity_associations()
        .cluster_name(SANDBOX)
        .send()
        .await
        .ok()
        .map(|o| o.associations.unwrap_or_default())
        .unwrap_or_default()
        .iter()
        .any(|a| a.service_account.as_deref() == Some("karpenter"));
    let node_entry = eks
        .describe_access_entry()
        .cluster_name(SANDBOX)
        .principal_arn("arn:aws:iam::123456789012:role/karpenter-node")
        .send()
        .await
        .ok()
        .and_then(|o| o.access_entry)
        .and_then(|e| e.r#type)
        .is_some_and(|t| t == "EC2_LINUX");
    vec![
        (
            "sandbox-us: Pod Identity for Karpenter's controller".into(),
            association,
        ),
        (
            "sandbox-us: the Karpenter node role's EC2_LINUX entry".into(),
            node_entry,
        ),
    ]
}

async fn network_left(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    use crate::fixtures::network::{addresses, billing_nat_gateways, default_route};
    let Ok(config) = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .map_err(|e| e.to_string())
        .and_then(|t| fleet_shared::config::FleetConfig::parse(&t).map_err(|e| e.to_string()))
    else {
        return vec!["the example config does not parse".into()];
    };
    let mut left = vec![];
    for n in &config.networks {
        for g in &n.nat_gateways {
            left.extend(
                billing_nat_gateways(ec2, &g.subnet_id)
                    .await
                    .into_iter()
                    .map(|id| format!("NAT gateway {id}")),
            );
            for rtb in &g.route_table_ids {
                if let Some(target) = default_route(ec2, rtb).await {
                    left.push(format!("{rtb} -> {target}"));
                }
            }
        }
        left.extend(
            addresses(ec2, &n.name)
                .await
                .into_iter()
                .map(|a| format!("Elastic IP {a}")),
        );
    }
    left
}

/// `app.example.com` now: (Cloudflare CNAME content, Route53 alias target), and how
/// many records of that name both hold.
async fn records(
    cloudflare: &FakeCloudflare,
    zone_id: &str,
    route53: &aws_sdk_route53::Client,
) -> (String, String, usize) {
    let cf = cloudflare.records(zone_id, RECORD);
    let sets = route53
        .list_resource_record_sets()
        .hosted_zone_id(LOCAL_HOSTED_ZONE_ID)
        .send()
        .await
        .map(|o| o.resource_record_sets)
        .unwrap_or_default();
    let r53: Vec<_> = sets
        .iter()
        .filter(|s| s.name().trim_end_matches('.') == RECORD)
        .collect();
    (
        cf.first()
            .and_then(|r| r["content"].as_str())
            .unwrap_or_default()
            .to_string(),
        r53.first()
            .and_then(|s| s.alias_target())
            .map(|a| a.dns_name().trim_end_matches('.').to_string())
            .unwrap_or_default(),
        cf.len() + r53.len(),
    )
}

/// The drained node as the fake API holds it: cordoned, the pods left on it that a drain
/// must move (not DaemonSet, not mirror), the web budget's worst shortfall.
/// What Karpenter (the fake controller, on sandbox-us's `general` nodegroup) does after
/// the scheduler's step on sandbox-us, and what the demo checks of it: the controller
/// comes and goes with `general`; a NodeClaim launches once the cluster is ready (the
/// NodePool's limit restored by then); deleted NodeClaims are drained before the next
/// tick; nothing of Karpenter's runs once a scale-down is announced.
async fn karpenter_side(
    kube: &FakeKube,
    controller: &karpenter::FakeKarpenter,
    ec2: &aws_sdk_ec2::Client,
    step: &str,
    report: &mut Report,
) -> Result<Option<String>, String> {
    let host_down = step.starts_with("scale-nodegroups general=0/0/");
    if step.starts_with("scale-nodegroups general=") && !host_down
        || step.starts_with("create-nodegroups")
    {
        karpenter::set_controller_replicas(kube, 2, 2).await?;
        controller.set_running(true);
        return Ok(Some("the controller runs again on general".into()));
    }
    if host_down {
        controller.set_running(false);
        karpenter::set_controller_replicas(kube, 0, 0).await?;
        return Ok(Some("the controller is gone with general".into()));
    }
    if step.starts_with("delete-nodeclaims") {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !kube.list(karpenter::KARPENTER_API, "NodeClaim").is_empty()
            && std::time::Instant::now() < until
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        return Ok(Some(
            "NodeClaims drained, their instances terminated".into(),
        ));
    }
    if step.starts_with("announce-ready") {
        let limits = kube
            .get(karpenter::KARPENTER_API, "NodePool", "", "spot")
            .map(|np| np["spec"]["limits"].clone())
            .unwrap_or_default();
        if limits != json!({"cpu": "100"}) {
            report
                .karpenter_problems
                .push(format!("NodePool spot's limits at Cluster Ready: {limits}"));
        }
        let claim = controller.launch("spot").await?;
        return Ok(Some(format!("launched NodeClaim {claim} (NodePool spot)")));
    }
    if step.starts_with("announce-destroyed") {
        let live = live_instances(ec2, SANDBOX).await?;
        if !live.is_empty() {
            report.karpenter_problems.push(format!(
                "Karpenter instances still running after the scale-down: {}",
                live.join(", ")
            ));
        }
        return Ok(Some(format!(
            "{} Karpenter instance(s) running",
            live.len()
        )));
    }
    Ok(None)
}

/// Instances tagged for `cluster` that are not terminated.
async fn live_instances(ec2: &aws_sdk_ec2::Client, cluster: &str) -> Result<Vec<String>, String> {
    let out = ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:eks:eks-cluster-name")
                .values(cluster)
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("DescribeInstances: {e}"))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(String::from))
        .collect())
}

fn drained_node_state(kube: &FakeKube) -> (bool, Vec<String>, Option<i64>) {
    let node = kube
        .get("v1", "Node", "", crate::fixtures::spot_drainer::NODE)
        .unwrap_or_default();
    let cordoned = node["spec"]["unschedulable"] == true;
    let left = kube
        .list("v1", "Pod")
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == crate::fixtures::spot_drainer::NODE)
        .filter(|p| {
            let daemon = p["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| o.iter().any(|r| r["kind"] == "DaemonSet"));
            let mirror = !p["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_null();
            !daemon && !mirror
        })
        .map(|p| {
            format!(
                "{}/{}",
                p["metadata"]["namespace"].as_str().unwrap_or_default(),
                p["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    (cordoned, left, kube.budget_shortfall("shop/web"))
}

async fn leave_volume(sdk: &aws_types::SdkConfig) -> Result<(), String> {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification, VolumeType};
    aws_sdk_ec2::Client::new(sdk)
        .create_volume()
        .availability_zone("eu-west-1a")
        .size(50)
        .volume_type(VolumeType::Gp3)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Volume)
                .tags(
                    Tag::builder()
                        .key("kubernetes.io/cluster/staging")
                        .value("owned")
                        .build(),
                )
                .tags(
                    Tag::builder()
                        .key("kubernetes.io/created-for/pvc/name")
                        .value("data-postgres-0")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("EC2 CreateVolume: {e}"))?;
    Ok(())
}
