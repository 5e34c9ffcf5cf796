//! A dns-updater wired to moto (EKS, Route53, DynamoDB, CloudWatch), the fake Kubernetes
//! API, the fake Cloudflare API and the fake Slack, with its own cluster, zones and table.

use std::time::Duration;

use aws_types::SdkConfig;
use dns_updater::cloudflare::{Cloudflare, RetryPolicy};
use dns_updater::Updater;
use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::kube::KubeConnector;
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_shared::schedule::Desired;
use fleet_shared::state::StateStore;
use fleet_shared::Result;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::fakes::cloudflare::FakeCloudflare;
use crate::fakes::kube::FakeKube;
use crate::fakes::slack::FakeSlack;
use crate::scheduler::cluster_toml;
use crate::{sdk, state_table, unique};

pub const TOKEN: &str = "cf-test-token";
pub const INGRESS_NS: &str = "ingress-nginx";
pub const INGRESS_NAME: &str = "ingress-nginx-controller";

pub struct DnsFixture {
    pub sdk: SdkConfig,
    pub updater: Updater,
    pub cloudflare: FakeCloudflare,
    /// The Cloudflare zone's id.
    pub cf_zone: String,
    pub kube: FakeKube,
    pub store: StateStore,
    pub slack: FakeSlack,
    pub route53: aws_sdk_route53::Client,
    /// The Route53 hosted zone's id (without `/hostedzone/`).
    pub hosted_zone: String,
    /// The zone both providers serve; records are `<x>.<zone>`.
    pub zone: String,
    pub cluster: String,
}

impl DnsFixture {
    /// `dns` is the `[cluster.dns]` section; `{zone}` and `{zone_id}` in it stand for the
    /// fixture's zone name and Route53 hosted zone id.
    pub async fn start(dns: &str) -> DnsFixture {
        let sdk = sdk();
        let store = state_table(&sdk).await;
        let slack = FakeSlack::start().await;
        let kube = FakeKube::start().await;
        let cloudflare = FakeCloudflare::start(TOKEN).await;
        let zone = format!("{}.example.com", unique("z"));
        let cf_zone = cloudflare.add_zone(&zone);
        let route53 = aws_sdk_route53::Client::new(&sdk);
        let hosted = route53
            .create_hosted_zone()
            .name(&zone)
            .caller_reference(unique("ref"))
            .send()
            .await
            .expect("create hosted zone");
        let hosted_zone = hosted
            .hosted_zone()
            .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
            .expect("zone id");
        let cluster = unique("staging");
        let eks = aws_sdk_eks::Client::new(&sdk);
        crate::active_cluster(&eks, &cluster).await;
        let mut text = format!(
            "[fleet]\nregion = \"eu-west-1\"\ncloudflare_api_token = \"{TOKEN}\"\n{}",
            cluster_toml("destroy", "Mon-Fri 08:00-20:00 Europe/Berlin", "")
                .replace("{name}", &cluster)
        );
        text.push_str(
            &dns.replace("{zone_id}", &hosted_zone)
                .replace("{zone}", &zone),
        );
        let config = FleetConfig::parse(&text).expect("test config");
        let cloudflare_client = Cloudflare::new(
            Some(&cloudflare.url),
            Secret::new(TOKEN.into()),
            RetryPolicy {
                max_attempts: 4,
                max_wait: Duration::from_secs(5),
                first_backoff: Duration::from_millis(20),
            },
        )
        .expect("cloudflare client");
        let updater = Updater::new(
            &sdk,
            config,
            store.table(),
            Notifier::new(Some(Secret::new(slack.url.clone()))),
            KubeConnector::new(&sdk, Some(kube.url.clone())),
            Some(cloudflare_client),
        );
        DnsFixture {
            sdk,
            updater,
            cloudflare,
            cf_zone,
            kube,
            store,
            slack,
            route53,
            hosted_zone,
            zone,
            cluster,
        }
    }

    /// The Route53 record `<label>.<zone>`'s owner in the state table.
    pub async fn owner(&self, label: &str) -> Option<String> {
        self.store
            .dns_owner(&self.hosted_zone, &self.name(label))
            .await
            .expect("dns owner")
    }

    /// `<label>.<zone>`.
    pub fn name(&self, label: &str) -> String {
        format!("{label}.{}", self.zone)
    }

    /// The ingress Service, with this load balancer hostname (or none yet).
    pub fn set_ingress(&self, hostname: Option<&str>) {
        self.kube.insert(ingress_service(hostname));
    }

    /// Records the cluster's phase as the scheduler would.
    pub async fn record_phase(&self, phase: Desired, generation: &str) {
        self.store
            .record_transition(&self.cluster, phase, generation, Timestamp::now(), "test")
            .await
            .expect("record transition");
    }

    pub async fn call(&self, event: Value) -> Result<Value> {
        self.updater
            .handle(event, Invocation::at(Timestamp::now()))
            .await
    }

    /// The scheduler's event of `detail_type` (`Cluster Ready` or `Cluster Destroyed`) for
    /// the cluster, as it reaches the bus: the detail is the scheduler's own typed event.
    pub fn bus_event(&self, detail_type: &str, generation: &str) -> Value {
        use fleet_shared::config::Mode;
        use fleet_shared::events::{BusEvent, ClusterDestroyed, ClusterReady};
        let at: Timestamp = "2026-11-23T07:20:00Z".parse().expect("a timestamp");
        let detail = match detail_type {
            ClusterReady::DETAIL_TYPE => json!(ClusterReady {
                cluster: self.cluster.clone(),
                endpoint: "https://example.eks.amazonaws.com".into(),
                region: "eu-west-1".into(),
                mode: Mode::Destroy,
                generation: generation.into(),
                at,
            }),
            ClusterDestroyed::DETAIL_TYPE => json!(ClusterDestroyed {
                cluster: self.cluster.clone(),
                region: "eu-west-1".into(),
                mode: Mode::Destroy,
                at,
            }),
            other => panic!("not a scheduler event: {other}"),
        };
        json!({
            "version": "0", "id": unique("ev"), "detail-type": detail_type,
            "source": "fleet.cluster-scheduler", "account": "123456789012",
            "time": "2026-11-23T07:20:00Z", "region": "eu-west-1", "resources": [],
            "detail": detail,
        })
    }

    /// The scheduler's `Cluster Ready` (recording the phase first, as the scheduler does).
    pub async fn ready(&self, generation: &str) -> Result<Value> {
        self.record_phase(Desired::Up, generation).await;
        self.call(self.bus_event("Cluster Ready", generation)).await
    }

    /// The scheduler's `Cluster Destroyed`.
    pub async fn destroyed(&self, generation: &str) -> Result<Value> {
        self.record_phase(Desired::Down, generation).await;
        self.call(self.bus_event("Cluster Destroyed", generation))
            .await
    }

    /// A CNAME the fleet did not create, in Route53.
    pub async fn seed_route53_cname(&self, label: &str, value: &str) {
        use aws_sdk_route53::types::{
            Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
        };
        let set = ResourceRecordSet::builder()
            .name(self.name(label))
            .r#type(RrType::Cname)
            .ttl(300)
            .resource_records(
                ResourceRecord::builder()
                    .value(value)
                    .build()
                    .expect("record"),
            )
            .build()
            .expect("record set");
        let change = Change::builder()
            .action(ChangeAction::Create)
            .resource_record_set(set)
            .build()
            .expect("change");
        self.route53
            .change_resource_record_sets()
            .hosted_zone_id(&self.hosted_zone)
            .change_batch(
                ChangeBatch::builder()
                    .changes(change)
                    .build()
                    .expect("batch"),
            )
            .send()
            .await
            .expect("seed route53");
    }

    /// The Cloudflare records named `<label>.<zone>`.
    pub fn cf_records(&self, label: &str) -> Vec<Value> {
        self.cloudflare.records(&self.cf_zone, &self.name(label))
    }

    /// Route53 record sets named `<label>.<zone>`: (type, alias target or values).
    pub async fn r53_records(&self, label: &str) -> Vec<(String, String)> {
        self.r53_named(&self.name(label)).await
    }

    /// Route53 record sets at the zone apex (its SOA and NS among them).
    pub async fn r53_apex(&self) -> Vec<(String, String)> {
        self.r53_named(&self.zone).await
    }

    async fn r53_named(&self, name: &str) -> Vec<(String, String)> {
        let name = format!("{name}.");
        let out = self
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(&self.hosted_zone)
            .send()
            .await
            .expect("list record sets");
        out.resource_record_sets()
            .iter()
            .filter(|s| s.name() == name)
            .map(|s| {
                let value = match s.alias_target() {
                    // Route53 answers with a trailing dot, moto without: compare without.
                    Some(a) => format!(
                        "alias {} {}",
                        a.hosted_zone_id(),
                        a.dns_name().trim_end_matches('.')
                    ),
                    None => s
                        .resource_records()
                        .iter()
                        .map(|r| r.value().to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                };
                (s.r#type().as_str().to_string(), value)
            })
            .collect()
    }
}

/// A `[cluster.dns]` section for [`DnsFixture::start`]: the example's ingress Service, no
/// wait for its load balancer, and one record per (provider, name); the name may use
/// `{zone}`, and a Route53 record's hosted zone is the fixture's (`{zone_id}`).
pub fn dns_section(records: &[(&str, &str)]) -> String {
    let mut text = "[cluster.dns]\ningress_service = \"ingress-nginx/ingress-nginx-controller\"\ningress_wait_seconds = 0\n".to_string();
    for (provider, name) in records {
        let zone = match *provider {
            "route53" => "zone_id = \"{zone_id}\"",
            _ => "zone = \"{zone}\"",
        };
        text.push_str(&format!(
            "\n[[cluster.dns.record]]\nprovider = \"{provider}\"\n{zone}\nname = \"{name}\"\n"
        ));
    }
    text
}

/// The ingress controller's LoadBalancer Service (`ingress-nginx/ingress-nginx-controller`,
/// as the example config names it), with this load balancer hostname or none yet.
pub fn ingress_service(hostname: Option<&str>) -> Value {
    let status = match hostname {
        Some(h) => json!({"loadBalancer": {"ingress": [{"hostname": h}]}}),
        None => json!({"loadBalancer": {}}),
    };
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": INGRESS_NAME, "namespace": INGRESS_NS},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": status,
    })
}

/// The actions of a response's changes, as `(provider, action)`.
pub fn actions(response: &Value) -> Vec<(String, String)> {
    response["changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["provider"].as_str().unwrap_or_default().to_string(),
                        c["action"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
