//! Karpenter platforms (issue #20) on moto, the fake Kubernetes API and the fake
//! Karpenter controller ([`FakeKarpenter`]): a day in each mode with two NodePools and a
//! host nodegroup, a NodeClaim that never goes, a controller gone before its NodeClaims,
//! and Flux putting a limit back.
//!
//! Ticks are virtual instants five minutes apart; the fake controller acts in real time
//! between them (a short pause after each tick lets it).

use std::time::Duration;

use fleet_tests::fakes::karpenter::{
    controller_deployment, install_crds, set_controller_replicas, Ec2NodeClass, FakeKarpenter,
    NodePool, KARPENTER_API,
};
use fleet_tests::fixtures::scheduler::{cluster_toml, detail_types, outcome, ts, SchedulerFixture};
use jiff::{Timestamp, ToSpan};
use serde_json::{json, Value};

/// Up 07:00-19:00 UTC on a November weekday.
const WEEKDAYS: &str = "Mon-Fri 08:00-20:00 Europe/Berlin";
/// How long the fake controller gets between two ticks.
const BETWEEN_TICKS: Duration = Duration::from_millis(400);

struct Platform {
    f: SchedulerFixture,
    name: String,
    ec2: aws_sdk_ec2::Client,
    karpenter: FakeKarpenter,
}

/// A cluster of `mode` whose `system` nodegroup runs Karpenter, with NodePools `spot`
/// (limit 100 CPUs) and `on-demand` (no limits) on EC2NodeClass `default`, the
/// controller running and available.
async fn platform(mode: &str) -> Platform {
    let toml = cluster_toml(
        mode,
        WEEKDAYS,
        "[cluster.karpenter]\nhost_nodegroups = [\"system\"]\ndrain_minutes = 10\n",
    );
    let f = SchedulerFixture::start(&[toml], None).await;
    let name = f.names[0].clone();
    install_crds(&f.kube);
    f.kube.insert(
        Ec2NodeClass::new("default", &name)
            .tag("fleet:cluster", &name)
            .build(),
    );
    f.kube.insert(
        NodePool::new("spot", "default")
            .limits(json!({"cpu": "100"}))
            .capacity_type("spot")
            .build(),
    );
    f.kube.insert(NodePool::new("on-demand", "default").build());
    f.kube.insert(controller_deployment(2, 2));
    let ec2 = aws_sdk_ec2::Client::new(&f.sdk);
    let karpenter = FakeKarpenter::start(&f.kube, ec2.clone(), &name);
    Platform {
        f,
        name,
        ec2,
        karpenter,
    }
}

impl Platform {
    /// Ticks every 5 minutes from `from` until `done` says so after a tick (at most
    /// `max` ticks); returns `step -> result` of each.
    async fn ticks_until(
        &self,
        from: &str,
        max: usize,
        done: impl Fn(&Value) -> bool,
    ) -> Vec<String> {
        let mut at: Timestamp = ts(from);
        let mut steps = Vec::new();
        for _ in 0..max {
            let r = self.f.tick(at).await;
            let o = outcome(&r, &self.name).clone();
            steps.push(format!(
                "{} -> {}",
                o["step"].as_str().unwrap_or_default(),
                o["result"].as_str().unwrap_or_default()
            ));
            tokio::time::sleep(BETWEEN_TICKS).await;
            if done(&o) {
                break;
            }
            at = at.checked_add(5.minutes()).expect("time");
        }
        steps
    }

    /// The morning: the cluster built and announced.
    async fn morning(&self) {
        let steps = self
            .ticks_until("2026-11-23T07:00:00Z", 12, |o| o["step"] == "none")
            .await;
        assert!(
            steps.iter().any(|s| s.starts_with("announce-ready")),
            "{steps:?}"
        );
        self.f.tap.drain().await;
    }

    /// Karpenter's instances of this cluster that still exist (not terminated).
    async fn live_instances(&self) -> Vec<String> {
        let out = self
            .ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:eks:eks-cluster-name")
                    .values(&self.name)
                    .build(),
            )
            .send()
            .await
            .expect("describe instances");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| {
                let state = i.state().and_then(|s| s.name()).map(|n| n.as_str());
                !matches!(state, Some("terminated" | "shutting-down"))
            })
            .filter_map(|i| i.instance_id().map(String::from))
            .collect()
    }

    /// The cluster's launch templates still there.
    async fn launch_templates(&self) -> Vec<String> {
        let out = self
            .ec2
            .describe_launch_templates()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:eks:eks-cluster-name")
                    .values(&self.name)
                    .build(),
            )
            .send()
            .await
            .expect("describe launch templates");
        out.launch_templates()
            .iter()
            .filter_map(|t| t.launch_template_id().map(String::from))
            .collect()
    }

    /// The NodePool limits recorded in the state table.
    async fn recorded(&self) -> Option<fleet_shared::state::RecordedLimits> {
        self.f
            .store
            .cluster(&self.name)
            .await
            .expect("record")
            .state
            .nodepool_limits
    }

    fn nodeclaims(&self) -> Vec<Value> {
        self.f.kube.list(KARPENTER_API, "NodeClaim")
    }

    fn limits(&self, nodepool: &str) -> Value {
        self.f
            .kube
            .get(KARPENTER_API, "NodePool", "", nodepool)
            .expect("nodepool")["spec"]["limits"]
            .clone()
    }

    /// Flux's kustomize-controller applying the NodePool's manifest again (server-side
    /// apply, forced, as Flux applies).
    async fn flux_applies_limit(&self, nodepool: &str, cpu: &str) {
        let url = format!(
            "{}/apis/karpenter.sh/v1/nodepools/{nodepool}?fieldManager=kustomize-controller&force=true",
            self.f.kube.url
        );
        let body = json!({
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": nodepool},
            "spec": {"limits": {"cpu": cpu}},
        });
        let status = reqwest::Client::new()
            .patch(url)
            .header("content-type", "application/apply-patch+yaml")
            .body(body.to_string())
            .send()
            .await
            .expect("apply")
            .status();
        assert!(status.is_success(), "{status}");
    }
}

/// Where the first step that takes `step` is (a cap takes the evening's next step in the
/// same tick: `cap-nodepools spot; then delete-nodeclaims …`).
fn position(steps: &[String], step: &str) -> usize {
    steps
        .iter()
        .position(|s| s.starts_with(step) || s.contains(&format!("; then {step}")))
        .unwrap_or_else(|| panic!("no `{step}` in {steps:#?}"))
}

#[tokio::test]
async fn a_destroy_mode_evening_leaves_nothing_of_karpenter_running() {
    let p = platform("destroy").await;
    p.morning().await;
    p.karpenter.launch("spot").await.expect("launch");
    p.karpenter.launch("on-demand").await.expect("launch");
    assert_eq!(p.live_instances().await.len(), 2);

    let steps = p
        .ticks_until("2026-11-23T19:00:00Z", 20, |o| {
            o["step"]
                .as_str()
                .is_some_and(|s| s.starts_with("announce-destroyed"))
        })
        .await;
    let order = [
        "cap-nodepools",
        "delete-nodeclaims",
        "delete-ec2nodeclasses",
        "delete-nodegroups spot",
        "delete-nodegroups system",
        "delete-cluster",
        "announce-destroyed",
    ];
    let positions: Vec<usize> = order.iter().map(|s| position(&steps, s)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] <= w[1]),
        "in this order: {order:?}\n{steps:#?}"
    );
    assert!(p.live_instances().await.is_empty(), "{steps:#?}");
    assert!(p.launch_templates().await.is_empty(), "{steps:#?}");
    assert!(p.nodeclaims().is_empty());
    assert!(!p.f.cluster_exists(&p.name).await);
    assert_eq!(
        detail_types(&p.f.tap.drain().await),
        vec!["Cluster Destroyed"]
    );
}

#[tokio::test]
async fn a_scale_mode_night_keeps_only_the_control_plane_and_the_morning_restores_the_limits() {
    let p = platform("scale").await;
    p.morning().await;
    p.karpenter.launch("spot").await.expect("launch");
    p.karpenter.launch("on-demand").await.expect("launch");

    // The first evening tick records and caps; Flux then puts the spot limit back.
    let first = p.ticks_until("2026-11-23T19:00:00Z", 1, |_| true).await;
    assert!(first[0].starts_with("cap-nodepools"), "{first:?}");
    assert_eq!(p.limits("spot"), json!({"cpu": "0"}));
    p.flux_applies_limit("spot", "100").await;

    let steps = p
        .ticks_until("2026-11-23T19:05:00Z", 20, |o| {
            o["step"]
                .as_str()
                .is_some_and(|s| s.starts_with("announce-destroyed"))
        })
        .await;
    // Capped again, with the evening's next step, and never recorded as 0.
    assert!(
        steps[0].starts_with("cap-nodepools spot; then"),
        "Flux's limit is capped again: {steps:#?}"
    );
    let steps: Vec<String> = first.into_iter().chain(steps).collect();
    let order = [
        "scale-nodegroups spot=0/0/3",
        "delete-nodeclaims",
        "scale-nodegroups system=0/0/1",
        "announce-destroyed",
    ];
    let positions: Vec<usize> = order.iter().map(|s| position(&steps, s)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] <= w[1]),
        "in this order: {order:?}\n{steps:#?}"
    );
    assert!(p.live_instances().await.is_empty(), "{steps:#?}");
    assert!(p.nodeclaims().is_empty());
    assert!(p.f.cluster_exists(&p.name).await, "the control plane stays");
    assert_eq!(
        p.f.nodegroups(&p.name).await,
        vec![
            ("spot".to_string(), 0, 0, 3),
            ("system".to_string(), 0, 0, 1)
        ]
    );
    assert_eq!(p.limits("spot"), json!({"cpu": "0"}));
    assert_eq!(p.limits("on-demand"), json!({"cpu": "0"}));
    let recorded = p.recorded().await.expect("limits recorded");
    assert_eq!(recorded.limits["spot"], Some(json!({"cpu": "100"})));
    assert_eq!(recorded.limits["on-demand"], None);

    // Night: the controller's nodes are gone with the system nodegroup.
    p.karpenter.set_running(false);
    set_controller_replicas(&p.f.kube, 0, 0)
        .await
        .expect("replicas");
    p.f.tap.drain().await;

    // Morning: system first, then spot; the limits wait for the controller.
    let waiting = p
        .ticks_until("2026-11-24T07:00:00Z", 6, |o| {
            o["step"].as_str().is_some_and(|s| s.contains("controller"))
        })
        .await;
    assert!(
        position(&waiting, "scale-nodegroups system") < position(&waiting, "scale-nodegroups spot"),
        "{waiting:#?}"
    );
    assert_eq!(
        p.limits("spot"),
        json!({"cpu": "0"}),
        "not before the controller"
    );
    set_controller_replicas(&p.f.kube, 2, 2)
        .await
        .expect("replicas");
    p.karpenter.set_running(true);
    let rest = p
        .ticks_until("2026-11-24T07:30:00Z", 6, |o| o["step"] == "none")
        .await;
    assert!(
        position(&rest, "restore-nodepool-limits") < position(&rest, "announce-ready"),
        "{rest:#?}"
    );
    assert_eq!(
        p.limits("spot"),
        json!({"cpu": "100"}),
        "exactly the recorded value"
    );
    let on_demand = p.limits("on-demand");
    assert!(
        on_demand.is_null() || on_demand == json!({}),
        "no limits, as before: {on_demand}"
    );
    assert_eq!(detail_types(&p.f.tap.drain().await), vec!["Cluster Ready"]);
    assert!(p.recorded().await.is_none(), "forgotten once restored");
}

#[tokio::test]
async fn a_nodeclaim_that_never_goes_is_terminated_by_the_backstop() {
    let p = platform("destroy").await;
    p.morning().await;
    let stuck = p.karpenter.launch("spot").await.expect("launch");
    p.karpenter.set_stuck(&stuck, true);

    let steps = p
        .ticks_until("2026-11-23T19:00:00Z", 20, |o| {
            o["step"]
                .as_str()
                .is_some_and(|s| s.starts_with("announce-destroyed"))
        })
        .await;
    let draining = position(&steps, "wait: Karpenter is draining");
    let backstop = position(&steps, "terminate-karpenter-instances i-");
    assert!(draining < backstop, "{steps:#?}");
    assert!(p.live_instances().await.is_empty(), "{steps:#?}");
    assert!(p.launch_templates().await.is_empty(), "{steps:#?}");
    assert!(!p.f.cluster_exists(&p.name).await);
    assert!(
        p.f.slack
            .texts()
            .iter()
            .any(|t| t.contains("still there after 10 minutes")),
        "{:?}",
        p.f.slack.texts()
    );
}

#[tokio::test]
async fn a_controller_gone_before_its_nodeclaims_is_not_waited_for() {
    let p = platform("destroy").await;
    p.morning().await;
    p.karpenter.launch("spot").await.expect("launch");
    p.karpenter.launch("spot").await.expect("launch");
    p.karpenter.set_running(false);
    set_controller_replicas(&p.f.kube, 0, 0)
        .await
        .expect("replicas");

    let steps = p
        .ticks_until("2026-11-23T19:00:00Z", 20, |o| {
            o["step"]
                .as_str()
                .is_some_and(|s| s.starts_with("announce-destroyed"))
        })
        .await;
    assert!(
        !steps.iter().any(|s| s.starts_with("wait: Karpenter")),
        "nobody drains: no wait {steps:#?}"
    );
    assert!(
        position(&steps, "terminate-karpenter-instances i-")
            < position(&steps, "delete-nodegroups"),
        "{steps:#?}"
    );
    assert!(p.live_instances().await.is_empty(), "{steps:#?}");
    assert!(!p.f.cluster_exists(&p.name).await);
}

#[tokio::test]
async fn gitops_putting_the_limit_back_every_tick_does_not_hold_the_evening_up() {
    let p = platform("destroy").await;
    p.morning().await;
    p.karpenter.launch("spot").await.expect("launch");
    // Argo CD's self-heal: the limit is back before every tick.
    let mut at = ts("2026-11-23T19:00:00Z");
    let mut steps = Vec::new();
    for _ in 0..20 {
        if p.f.cluster_exists(&p.name).await {
            p.flux_applies_limit("spot", "100").await;
        }
        let r = p.f.tick(at).await;
        let step = outcome(&r, &p.name)["step"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        tokio::time::sleep(BETWEEN_TICKS).await;
        let done = step.starts_with("announce-destroyed");
        steps.push(step);
        if done {
            break;
        }
        at = at.checked_add(5.minutes()).expect("time");
    }
    assert!(
        steps
            .last()
            .is_some_and(|s| s.starts_with("announce-destroyed")),
        "{steps:#?}"
    );
    assert!(p.live_instances().await.is_empty(), "{steps:#?}");
    let recorded = p.recorded().await;
    assert!(
        recorded.is_none()
            || recorded.is_some_and(|r| r.limits["spot"] == Some(json!({"cpu": "100"})))
    );
}
