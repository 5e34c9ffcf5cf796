//! Test support: a real AWS emulator (moto server) on a free loopback port, and helpers
//! to give every test its own table, bus and cluster names on it.
//!
//! One moto server serves all tests of a test binary. It is started on first use and stops
//! by itself when the test process exits (see `support/moto_server.py`). Tests never share
//! resource names, so they run in parallel on one server.

pub mod bench;
pub mod demo;
pub mod eks_auth;
pub mod fakes;
pub mod faults;
pub mod fixtures;
pub mod kubectl_drain;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use aws_types::SdkConfig;
use fleet_shared::state::StateStore;
use serde_json::Value;

pub const REGION: &str = "eu-west-1";

/// A moto server child process. Dropping it (or exiting) stops the server.
pub struct MotoServer {
    pub endpoint: String,
    child: Mutex<Child>,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            // Closing stdin asks the launcher to stop; kill in case it does not.
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The workspace root (the directory holding `Cargo.toml` and `.venv`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// The Python with moto installed: `FLEET_PYTHON`, else `.venv/bin/python` from `make setup`.
pub fn python() -> PathBuf {
    std::env::var_os("FLEET_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"))
}

impl MotoServer {
    /// Starts a moto server on `port` (0 = any free port) on 127.0.0.1.
    pub fn start(port: u16) -> Result<MotoServer, String> {
        let script = workspace_root().join("tests/support/moto_server.py");
        let python = python();
        let mut child = Command::new(&python)
            .env(
                "FLEET_MOTO_ROUTE53_ZONE_IDS",
                format!("{LOCAL_ZONE}={LOCAL_HOSTED_ZONE_ID}"),
            )
            .arg(&script)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {} (run `make setup` first): {e}",
                    python.display()
                )
            })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| "moto server has no stdout".to_string())?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading moto's port: {e}"))?;
        let port: u16 = line
            .trim()
            .parse()
            .map_err(|_| format!("moto server did not start (is moto[server] installed? run `make setup`); it said {line:?}"))?;
        Ok(MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Mutex::new(child),
        })
    }
}

/// The moto server shared by this test binary.
pub fn moto() -> &'static MotoServer {
    static MOTO: OnceLock<MotoServer> = OnceLock::new();
    MOTO.get_or_init(|| MotoServer::start(0).unwrap_or_else(|e| panic!("{e}")))
}

/// SDK config pointed at the shared moto server.
pub fn sdk() -> SdkConfig {
    faults::scoped_sdk()
        .unwrap_or_else(|| fleet_shared::aws::emulator_config(&moto().endpoint, REGION))
}

/// SDK config pointed at the shared moto server, signing with `credentials`.
pub fn sdk_with_credentials(credentials: aws_credential_types::Credentials) -> SdkConfig {
    sdk()
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        )
        .build()
}

/// A function binary (as `make test` builds it) set up to run once on `event` (a file
/// under `events/`) against this process's moto, with `config` as its `FLEET_CONFIG`.
pub fn function_command(function: &str, event: &str, config: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(demo::bin_dir().join(function));
    cmd.arg("--event")
        .arg(workspace_root().join("events").join(event))
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("FLEET_TABLE", LOCAL_TABLE)
        .env("FLEET_CONFIG", config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// A name no other test in this process uses: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An ACTIVE EKS cluster on moto (as a rebuilt cluster looks to the other functions).
pub async fn active_cluster(eks: &aws_sdk_eks::Client, name: &str) {
    eks.create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-0aaa")
                .subnet_ids("subnet-0bbb")
                .build(),
        )
        .send()
        .await
        .expect("create cluster");
}

/// Two default subnets of moto's default VPC, for load balancers.
pub async fn default_subnets(sdk: &aws_types::SdkConfig) -> Vec<String> {
    aws_sdk_ec2::Client::new(sdk)
        .describe_subnets()
        .send()
        .await
        .expect("subnets")
        .subnets
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.subnet_id)
        .take(2)
        .collect()
}

/// A load balancer as the cloud provider creates one for a Service of the cluster.
pub async fn service_load_balancer(sdk: &aws_types::SdkConfig, cluster: &str) -> String {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let name = unique("k8s-ingress").chars().take(32).collect::<String>();
    let out = elb
        .create_load_balancer()
        .name(&name)
        .set_subnets(Some(default_subnets(sdk).await))
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .tags(
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key(format!("kubernetes.io/cluster/{cluster}"))
                .value("owned")
                .build(),
        )
        .send()
        .await
        .expect("create load balancer");
    out.load_balancers()[0]
        .load_balancer_arn
        .clone()
        .expect("arn")
}

/// Counts the HTTP requests (retries included) of the SDK clients it is added to.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(pub std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl CallCounter {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        _: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A fresh state table on moto.
pub async fn state_table(sdk: &SdkConfig) -> StateStore {
    let store = StateStore::new(aws_sdk_dynamodb::Client::new(sdk), unique("fleet-state"));
    store.create_table().await.expect("create table");
    store
}

/// The table and the bus the example config uses on a local account.
pub const LOCAL_TABLE: &str = "fleet";
pub const LOCAL_BUS: &str = "fleet";
/// The DNS zone of the example config's records, in Cloudflare and Route53, and the
/// Route53 hosted zone id the example names (moto gives the zone that id).
pub const LOCAL_ZONE: &str = "example.com";
pub const LOCAL_HOSTED_ZONE_ID: &str = "Z0123456789ABCDEFGHIJ";
pub const LOCAL_CLOUDFLARE_TOKEN: &str = "local-cloudflare-token-0123456789abcdef";
/// The GitHub webhook secret `make local-aws` and the demo store (secrets are at least 32
/// bytes: `fleet_shared::startup::MIN_SECRET_BYTES`).
pub const LOCAL_WEBHOOK_SECRET: &str = "local-webhook-secret-0123456789abcdef";
/// The example's `dora.argocd_token` in the local account (Argo's bearer token).
pub const LOCAL_ARGOCD_TOKEN: &str = "local-argocd-token-0123456789abcdef0123";
/// The example's `dora.pagerduty_secret` in the local account (PagerDuty's signing secret).
pub const LOCAL_PAGERDUTY_SECRET: &str = "local-pagerduty-secret-0123456789abcdef";

/// Makes a moto account look like a deployed fleet for the example config: the state
/// table, the `fleet` bus, the SSM parameters the example names (the Slack webhook
/// pointing at `slack_url`, placeholder values for the others), and the Route53 zone of
/// the example's records.
pub async fn seed_local_account(sdk: &SdkConfig, slack_url: &str) -> Result<(), String> {
    StateStore::new(aws_sdk_dynamodb::Client::new(sdk), LOCAL_TABLE)
        .create_table()
        .await
        .map_err(|e| e.to_string())?;
    let _ = aws_sdk_eventbridge::Client::new(sdk)
        .create_event_bus()
        .name(LOCAL_BUS)
        .send()
        .await;
    let route53 = aws_sdk_route53::Client::new(sdk);
    let zones = route53
        .list_hosted_zones_by_name()
        .dns_name(LOCAL_ZONE)
        .send()
        .await
        .map_err(|e| format!("Route53 ListHostedZonesByName: {e}"))?;
    if !zones
        .hosted_zones()
        .iter()
        .any(|z| z.id().ends_with(LOCAL_HOSTED_ZONE_ID))
    {
        route53
            .create_hosted_zone()
            .name(LOCAL_ZONE)
            .caller_reference("fleet-local")
            .send()
            .await
            .map_err(|e| format!("Route53 CreateHostedZone {LOCAL_ZONE}: {e}"))?;
    }
    let ssm = aws_sdk_ssm::Client::new(sdk);
    for (name, value) in [
        ("/fleet/slack-webhook", slack_url),
        ("/fleet/cloudflare-api-token", LOCAL_CLOUDFLARE_TOKEN),
        ("/fleet/github-webhook-secret", LOCAL_WEBHOOK_SECRET),
        ("/fleet/slack-signing-secret", LOCAL_SLACK_SIGNING_SECRET),
        ("/fleet/argocd-token", LOCAL_ARGOCD_TOKEN),
        ("/fleet/pagerduty-secret", LOCAL_PAGERDUTY_SECRET),
    ] {
        put_secret(&ssm, name, value).await?;
    }
    seed_local_identities(sdk).await?;
    seed_local_accounts(sdk).await?;
    seed_local_networks(sdk).await
}

/// The example config's `slack.signing_secret` in the local account: what a stand-in of
/// Slack signs requests to a local slack-commands with.
pub const LOCAL_SLACK_SIGNING_SECRET: &str = "local-slack-signing-secret-0123456789abcdef";

/// The example config's production account (`[[account]]`): its spoke roles, as
/// `make deploy-spoke` makes them, requiring the external id the hub keeps in SSM.
pub const LOCAL_PRODUCTION_ACCOUNT: &str = "222233334444";
/// The spoke roles' external id in the local account (`/fleet/spoke-external-id`).
pub const LOCAL_SPOKE_EXTERNAL_ID: &str = "local-spoke-external-id-0123456789";

/// Seeds the example config's spoke account: its roles (through AWS Organizations'
/// access role, see `fixtures::accounts`) and the hub's copy of the external id.
pub async fn seed_local_accounts(sdk: &SdkConfig) -> Result<(), String> {
    put_secret(
        &aws_sdk_ssm::Client::new(sdk),
        "/fleet/spoke-external-id",
        LOCAL_SPOKE_EXTERNAL_ID,
    )
    .await?;
    fixtures::accounts::spoke_role(sdk, LOCAL_PRODUCTION_ACCOUNT, Some(LOCAL_SPOKE_EXTERNAL_ID))
        .await;
    Ok(())
}

/// What staging's blueprint in the example config names for its morning: the IRSA role
/// (trusting [`LOCAL_PREVIOUS_ISSUER`], staging's issuer of the last working day, and its
/// provider, tagged as the local fleet's),
/// Flux's deploy key in Secrets Manager, SOPS's age key in SSM, and Flux's manifests in
/// the bootstrap bucket. Values are placeholders. Skipped for what exists.
pub async fn seed_local_identities(sdk: &SdkConfig) -> Result<(), String> {
    let gone = LOCAL_PREVIOUS_ISSUER;
    let iam = aws_sdk_iam::Client::new(sdk);
    let provider = iam
        .create_open_id_connect_provider()
        .url(format!("https://{gone}"))
        .client_id_list("sts.amazonaws.com")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(fleet_shared::config::MANAGED_BY_TAG)
                .value(fleet_shared::startup::LOCAL_STACK)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await;
    if let Err(e) = provider {
        if e.as_service_error()
            .map(|s| s.is_entity_already_exists_exception())
            != Some(true)
        {
            return Err(format!("IAM CreateOpenIDConnectProvider: {e}"));
        }
    }
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::123456789012:oidc-provider/{gone}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{gone}:sub"): "system:serviceaccount:kube-system:aws-load-balancer-controller",
                format!("{gone}:aud"): "sts.amazonaws.com"
            }}
        }]
    });
    let created = iam
        .create_role()
        .role_name(LOCAL_IRSA_ROLE)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await;
    if let Err(e) = created {
        if e.as_service_error()
            .map(|s| s.is_entity_already_exists_exception())
            != Some(true)
        {
            return Err(format!("IAM CreateRole {LOCAL_IRSA_ROLE}: {e}"));
        }
    }
    let deploy_key = serde_json::json!({
        "identity": "-----BEGIN OPENSSH PRIVATE KEY-----\n(a placeholder: the local run's deploy key)\n-----END OPENSSH PRIVATE KEY-----\n",
        "identity.pub": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderPlaceholderPlaceholderPlace fleet-local",
        "known_hosts": "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    });
    let created = aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name("fleet/flux-deploy-key")
        .secret_string(deploy_key.to_string())
        .send()
        .await;
    if let Err(e) = created {
        if e.as_service_error()
            .map(|s| s.is_resource_exists_exception())
            != Some(true)
        {
            return Err(format!(
                "Secrets Manager CreateSecret fleet/flux-deploy-key: {e}"
            ));
        }
    }
    put_secret(
        &aws_sdk_ssm::Client::new(sdk),
        "/fleet/sops-age-key",
        "AGE-SECRET-KEY-1PLACEHOLDERFORTHELOCALRUNPLACEHOLDERFORTHELOCALRUN",
    )
    .await?;
    let s3 = aws_sdk_s3::Client::new(sdk);
    let bucket = "fleet-bootstrap-123456789012";
    let _ = s3
        .create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await;
    for file in ["gotk-components.yaml", "gotk-sync.yaml"] {
        let body = std::fs::read(workspace_root().join("tests/fixtures/bootstrap").join(file))
            .map_err(|e| format!("{file}: {e}"))?;
        s3.put_object()
            .bucket(bucket)
            .key(format!("flux/{file}"))
            .body(body.into())
            .send()
            .await
            .map_err(|e| format!("S3 PutObject flux/{file}: {e}"))?;
    }
    Ok(())
}

/// The VPCs of the example config's `[[network]]`s, with the ids it names: an internet
/// gateway, each NAT gateway's public subnet routed to it, the private route tables (see
/// `fleet-local:id` in `tests/support/moto_server.py`). Skipped for a subnet that exists.
pub async fn seed_local_networks(sdk: &SdkConfig) -> Result<(), String> {
    let text = std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
        .map_err(|e| e.to_string())?;
    let config = fleet_shared::config::FleetConfig::parse(&text).map_err(|e| e.to_string())?;
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let fixed = |kind: aws_sdk_ec2::types::ResourceType, id: &str| {
        aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(kind)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("fleet-local:id")
                    .value(id)
                    .build(),
            )
            .build()
    };
    fn err<E: std::error::Error + 'static, R: std::fmt::Debug>(
        what: &'static str,
    ) -> impl FnOnce(aws_sdk_ec2::error::SdkError<E, R>) -> String {
        move |e| format!("EC2 {what}: {}", aws_sdk_ec2::error::DisplayErrorContext(e))
    }
    for (i, n) in config.networks.iter().enumerate() {
        let exists = ec2
            .describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("subnet-id")
                    .values(&n.nat_gateways[0].subnet_id)
                    .build(),
            )
            .send()
            .await
            .map_err(err("DescribeSubnets"))?;
        if !exists.subnets().is_empty() {
            continue;
        }
        let vpc = ec2
            .create_vpc()
            .cidr_block(format!("10.{i}.0.0/16"))
            .send()
            .await
            .map_err(err("CreateVpc"))?
            .vpc
            .and_then(|v| v.vpc_id)
            .unwrap_or_default();
        let igw = ec2
            .create_internet_gateway()
            .send()
            .await
            .map_err(err("CreateInternetGateway"))?
            .internet_gateway
            .and_then(|g| g.internet_gateway_id)
            .unwrap_or_default();
        ec2.attach_internet_gateway()
            .internet_gateway_id(&igw)
            .vpc_id(&vpc)
            .send()
            .await
            .map_err(err("AttachInternetGateway"))?;
        for (j, g) in n.nat_gateways.iter().enumerate() {
            ec2.create_subnet()
                .vpc_id(&vpc)
                .cidr_block(format!("10.{i}.{j}.0/24"))
                .tag_specifications(fixed(
                    aws_sdk_ec2::types::ResourceType::Subnet,
                    &g.subnet_id,
                ))
                .send()
                .await
                .map_err(err("CreateSubnet"))?;
            for rtb in &g.route_table_ids {
                ec2.create_route_table()
                    .vpc_id(&vpc)
                    .tag_specifications(fixed(aws_sdk_ec2::types::ResourceType::RouteTable, rtb))
                    .send()
                    .await
                    .map_err(err("CreateRouteTable"))?;
            }
        }
    }
    Ok(())
}

/// The IRSA role of the example config's staging blueprint.
pub const LOCAL_IRSA_ROLE: &str = "aws-load-balancer-controller";

/// Staging's OIDC issuer of the last working day before a local run (as host path): the
/// IRSA role trusts it and its provider is there, as the fleet left them.
pub const LOCAL_PREVIOUS_ISSUER: &str =
    "oidc.eks.eu-west-1.amazonaws.com/id/0F1E2D3C4B5A69788796A5B4C3D2E1F0";

/// Stores `value` as the SecureString parameter `name` (overwriting), as `make deploy`'s
/// operator does for each secret. Errors name the parameter.
pub async fn put_secret(ssm: &aws_sdk_ssm::Client, name: &str, value: &str) -> Result<(), String> {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("SSM PutParameter {name}: {e}"))
}

/// Queues Cost Explorer usage in moto for the example's clusters: the 40 days before
/// `today`, weekdays costing what a cluster up 12 hours does, weekends what it leaves.
pub async fn seed_local_costs(endpoint: &str, today: jiff::civil::Date) -> Result<(), String> {
    let mut days = Vec::new();
    for back in (1..=40).rev() {
        let Ok(date) = today.checked_sub(jiff::Span::new().days(back)) else {
            continue;
        };
        let weekday = date.weekday().to_monday_zero_offset() < 5;
        let groups = if weekday {
            vec![
                ("Amazon Elastic Kubernetes Service", "staging", 1.2),
                ("Amazon Elastic Compute Cloud - Compute", "staging", 1.45),
                ("EC2 - Other", "staging", 0.55),
                ("Amazon Elastic Kubernetes Service", "sandbox-us", 2.4),
                ("Amazon Elastic Compute Cloud - Compute", "sandbox-us", 0.5),
            ]
        } else {
            vec![
                ("EC2 - Other", "staging", 0.08),
                ("Amazon Elastic Kubernetes Service", "sandbox-us", 2.4),
            ]
        };
        days.push(cost_day(date, back == 1, &groups)?);
    }
    seed_costs(endpoint, days).await
}

/// One day of Cost Explorer results grouped by service and cluster tag.
pub fn cost_day(
    date: jiff::civil::Date,
    estimated: bool,
    groups: &[(&str, &str, f64)],
) -> Result<Value, String> {
    let next = date.tomorrow().map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "TimePeriod": {"Start": date.to_string(), "End": next.to_string()},
        "Total": {},
        "Groups": groups.iter().map(|(service, cluster, usd)| serde_json::json!({
            "Keys": [service, format!("fleet:cluster${cluster}")],
            "Metrics": {"UnblendedCost": {"Amount": format!("{usd:.4}"), "Unit": "USD"}},
        })).collect::<Vec<_>>(),
        "Estimated": estimated,
    }))
}

/// Queues `days` as moto's answer to the next distinct Cost Explorer usage query.
pub async fn seed_costs(endpoint: &str, days: Vec<Value>) -> Result<(), String> {
    let body = serde_json::json!({"results": [{"ResultsByTime": days}]});
    reqwest::Client::new()
        .post(format!(
            "{endpoint}/moto-api/static/ce/cost-and-usage-results"
        ))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("seeding Cost Explorer: {e}"))?;
    Ok(())
}

/// Every event put on an EventBridge bus, captured through a rule into an SQS queue, the
/// way a real consumer would see them.
pub struct BusTap {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    pub bus: String,
}

impl BusTap {
    /// Creates bus `bus` (if needed), a queue, and a rule sending every event to it.
    pub async fn new(sdk: &SdkConfig, bus: &str) -> BusTap {
        BusTap::with_pattern(sdk, bus, r#"{"source":[{"prefix":""}]}"#).await
    }

    /// The same, for the events matching `pattern` only (EventBridge's own matching).
    pub async fn with_pattern(sdk: &SdkConfig, bus: &str, pattern: &str) -> BusTap {
        let eb = aws_sdk_eventbridge::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let _ = eb.create_event_bus().name(bus).send().await;
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("tap"))
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue arn");
        let rule = unique("tap-rule");
        eb.put_rule()
            .name(&rule)
            .event_bus_name(bus)
            .event_pattern(pattern)
            .send()
            .await
            .expect("put rule");
        eb.put_targets()
            .rule(&rule)
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("tap")
                    .arn(arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("put targets");
        BusTap {
            sqs,
            queue_url,
            bus: bus.to_string(),
        }
    }

    /// Events delivered since the last call, as EventBridge envelopes.
    pub async fn drain(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let msgs = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive")
                .messages
                .unwrap_or_default();
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                if let Some(body) = m.body.as_deref() {
                    out.push(serde_json::from_str(body).expect("event json"));
                }
                if let Some(handle) = m.receipt_handle {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
        }
    }
}
