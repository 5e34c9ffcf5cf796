//! A cluster-scheduler wired to moto, the fake Kubernetes API and the fake Slack, with
//! its own bus, table and cluster names, for integration tests.

use aws_types::SdkConfig;
use cluster_scheduler::Scheduler;
use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::kube::KubeConnector;
use fleet_shared::notify::Notifier;
use fleet_shared::runner::Invocation;
use fleet_shared::state::StateStore;
use jiff::{Timestamp, ToSpan};
use serde_json::{json, Value};

use crate::fakes::kube::FakeKube;
use crate::fakes::slack::FakeSlack;
use crate::{sdk, state_table, unique, BusTap};

/// A cluster table whose name is filled in by the fixture: `{name}` stands for it.
pub fn cluster_toml(mode: &str, uptime: &str, extra: &str) -> String {
    format!(
        r#"
[[cluster]]
name = "{{name}}"
mode = "{mode}"
uptime = "{uptime}"
{extra}

[cluster.blueprint]
version = "1.32"
role_arn = "arn:aws:iam::123456789012:role/eks-cluster"
subnet_ids = ["subnet-0aaa", "subnet-0bbb"]
tags = {{ team = "platform" }}

[[cluster.blueprint.nodegroup]]
name = "spot"
capacity_type = "SPOT"
instance_types = ["t3.large", "t3a.large"]
node_role_arn = "arn:aws:iam::123456789012:role/eks-node"
min_size = 1
max_size = 3
desired_size = 2

[[cluster.blueprint.nodegroup]]
name = "system"
instance_types = ["t3.medium"]
node_role_arn = "arn:aws:iam::123456789012:role/eks-node"
min_size = 1
max_size = 1
desired_size = 1
"#
    )
}

pub struct SchedulerFixture {
    pub sdk: SdkConfig,
    pub scheduler: Scheduler,
    pub tap: BusTap,
    pub store: StateStore,
    pub eks: aws_sdk_eks::Client,
    pub kube: FakeKube,
    pub slack: FakeSlack,
    /// The unique cluster names, in config order.
    pub names: Vec<String>,
}

impl SchedulerFixture {
    /// `clusters` are cluster tables from [`cluster_toml`] (or written alike). Kubernetes
    /// calls go to a fresh fake API unless `kube_url` names another one.
    pub async fn start(clusters: &[String], kube_url: Option<String>) -> SchedulerFixture {
        let sdk = sdk();
        let bus = unique("fleet-bus");
        let tap = BusTap::new(&sdk, &bus).await;
        let store = state_table(&sdk).await;
        let slack = FakeSlack::start().await;
        let kube = FakeKube::start().await;
        let names: Vec<String> = clusters.iter().map(|_| unique("staging")).collect();
        let mut text = format!("[fleet]\nregion = \"eu-west-1\"\nevent_bus = \"{bus}\"\n");
        for (name, toml) in names.iter().zip(clusters) {
            text.push_str(&toml.replace("{name}", name));
        }
        let config = FleetConfig::parse(&text).expect("test config");
        let eks = aws_sdk_eks::Client::new(&sdk);
        let scheduler = Scheduler::new(
            &sdk,
            config,
            fleet_shared::startup::LOCAL_STACK,
            store.table(),
            Notifier::new(Some(Secret::new(slack.url.clone()))),
            KubeConnector::new(&sdk, Some(kube_url.unwrap_or_else(|| kube.url.clone()))),
        );
        SchedulerFixture {
            sdk,
            scheduler,
            tap,
            store,
            eks,
            kube,
            slack,
            names,
        }
    }

    pub async fn call(&self, event: Value, at: Timestamp) -> Value {
        self.scheduler
            .handle(event, Invocation::at(at))
            .await
            .expect("handler")
    }

    pub async fn tick(&self, at: Timestamp) -> Value {
        self.call(json!({"action": "reconcile"}), at).await
    }

    /// Ticks every 5 minutes over `[from, to)`; returns each tick's response.
    pub async fn ticks(&self, from: &str, to: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut at = ts(from);
        while at < ts(to) {
            out.push(self.tick(at).await);
            at = at.checked_add(5.minutes()).expect("time");
        }
        out
    }

    pub async fn cluster_exists(&self, name: &str) -> bool {
        self.eks.describe_cluster().name(name).send().await.is_ok()
    }

    /// (name, min, desired, max) of each nodegroup, sorted.
    pub async fn nodegroups(&self, name: &str) -> Vec<(String, i32, i32, i32)> {
        let names = self
            .eks
            .list_nodegroups()
            .cluster_name(name)
            .send()
            .await
            .map(|o| o.nodegroups.unwrap_or_default())
            .unwrap_or_default();
        let mut out = Vec::new();
        for ng in names {
            let d = self
                .eks
                .describe_nodegroup()
                .cluster_name(name)
                .nodegroup_name(&ng)
                .send()
                .await
                .expect("describe nodegroup")
                .nodegroup
                .expect("nodegroup");
            let s = d.scaling_config.expect("scaling");
            out.push((
                ng,
                s.min_size.unwrap_or(-1),
                s.desired_size.unwrap_or(-1),
                s.max_size.unwrap_or(-1),
            ));
        }
        out.sort();
        out
    }
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// One cluster's entry in a plan, tick or status response.
pub fn outcome<'a>(response: &'a Value, name: &str) -> &'a Value {
    response["clusters"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .expect("cluster in response")
}

pub fn detail_types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap_or_default().to_string())
        .collect()
}
