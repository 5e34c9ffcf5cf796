//! `fleetctl --local` drives the example fleet (the demo's) through every command, as a
//! person would: the binary, its exit codes and its output, against moto and the fakes.
//! The decision time is fixed (`FLEET_NOW`, a Monday 07:00 UTC); any year would do.

use std::process::Output;

use fleet_tests::demo::bin_dir;
use fleet_tests::fakes::cloudflare::FakeCloudflare;
use fleet_tests::fakes::kube::FakeKube;
use fleet_tests::fakes::slack::FakeSlack;
use fleet_tests::fixtures::dns::{morning_ingress, INGRESS_NS};
use fleet_tests::{
    seed_local_account, workspace_root, MotoServer, LOCAL_CLOUDFLARE_TOKEN, LOCAL_TABLE,
    LOCAL_ZONE, REGION,
};
use serde_json::{json, Value};

const NOW: &str = "2026-11-23T07:00:00Z";
const LOAD_BALANCER: &str = "k8s-ingress-0a1b2c3d4e-1234567890.eu-west-1.elb.amazonaws.com";

struct Fleetctl {
    env: Vec<(&'static str, String)>,
}

impl Fleetctl {
    /// Runs `fleetctl --local <args>`; async, so the fakes on this runtime keep answering.
    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let bin = bin_dir().join("fleetctl");
        let mut command = tokio::process::Command::new(&bin);
        command
            .arg("--local")
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let Output {
            status,
            stdout,
            stderr,
        } = command.output().await.unwrap_or_else(|e| {
            panic!(
                "cannot run {} (cargo build --workspace --bins): {e}",
                bin.display()
            )
        });
        (
            status.code().unwrap_or(-1),
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args).await;
        assert_eq!(code, 0, "fleetctl {args:?}: {err}\n{out}");
        out
    }

    /// Exits `code` with one line on stderr and nothing on stdout.
    async fn fails(&self, args: &[&str], code: i32) -> String {
        let (got, out, err) = self.run(args).await;
        assert_eq!(got, code, "fleetctl {args:?}: {err}\n{out}");
        assert!(err.starts_with("error: "), "fleetctl {args:?}: {err}");
        err
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetctl_drives_the_example_fleet_through_every_command() {
    let moto = MotoServer::start(0).expect("moto");
    let sdk = fleet_shared::aws::emulator_config(&moto.endpoint, REGION);
    let slack = FakeSlack::start().await;
    seed_local_account(&sdk, &slack.url).await.expect("seed");
    let today: jiff::Timestamp = NOW.parse().expect("now");
    fleet_tests::seed_local_costs(
        &moto.endpoint,
        today.to_zoned(jiff::tz::TimeZone::UTC).date(),
    )
    .await
    .expect("costs");
    // staging's morning: its ingress controller (a load balancer, pods available after
    // two looks) and Flux's Kustomization (Ready at its first look).
    let kube = FakeKube::start().await;
    kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INGRESS_NS}}));
    morning_ingress(&kube, LOAD_BALANCER);
    let cloudflare = FakeCloudflare::start(LOCAL_CLOUDFLARE_TOKEN).await;
    let zone = cloudflare.add_zone(LOCAL_ZONE);
    let config = workspace_root().join("infra/fleet.example.toml");
    let f = Fleetctl {
        env: vec![
            ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("FLEET_TABLE", LOCAL_TABLE.into()),
            ("FLEET_CONFIG", config.display().to_string()),
            ("FLEET_KUBE_API_URL", kube.url.clone()),
            ("CLOUDFLARE_API_URL", cloudflare.url.clone()),
            ("FLEET_NOW", NOW.into()),
        ],
    };

    // The config, as the functions check it; no AWS needed.
    let out = f
        .ok(&["config", "check", &config.display().to_string()])
        .await;
    assert!(
        out.starts_with("ok: ") && out.contains("3 cluster(s)"),
        "{out}"
    );
    let err = f.fails(&["config", "check", "/nonexistent.toml"], 1).await;
    assert!(err.contains("cannot read /nonexistent.toml"), "{err}");

    // Status and plan before the morning: staging wanted up and absent.
    let out = f.ok(&["status"]).await;
    let header = out.lines().nth(1).unwrap_or_default();
    assert!(
        header.contains("CLUSTER") && header.contains("WHERE"),
        "{out}"
    );
    let staging = out
        .lines()
        .find(|l| l.trim_start().starts_with("staging "))
        .unwrap_or_default();
    assert!(
        staging.contains("hub/eu-west-1") && staging.contains(" up "),
        "{out}"
    );
    assert!(out.contains("production/us-east-1"), "{out}");
    let out = f.ok(&["plan", "staging"]).await;
    assert!(out.contains("create-cluster"), "{out}");
    assert!(
        !out.contains("sandbox-us"),
        "a plan for one cluster has only its row: {out}"
    );
    let out = f.ok(&["plan", "--at", "2026-11-23T20:00:00Z"]).await;
    assert!(out.starts_with("plan at 2026-11-23 20:00Z"), "{out}");

    // Bad usage: named, exit 2, nothing done.
    let err = f
        .fails(&["up", "staging", "--for", "3x", "--reason", "r"], 2)
        .await;
    assert!(err.contains("--for: `3x`"), "{err}");
    let err = f
        .fails(
            &[
                "up",
                "staging",
                "--until",
                "2026-11-23T06:00:00Z",
                "--reason",
                "r",
            ],
            2,
        )
        .await;
    assert!(err.contains("is not in the future"), "{err}");
    let err = f
        .fails(&["up", "nosuch", "--for", "3h", "--reason", "r"], 2)
        .await;
    assert!(err.contains("unknown cluster `nosuch`"), "{err}");
    let (code, _, _) = f.run(&["up", "staging", "--for", "3h"]).await;
    assert_eq!(code, 2, "--reason is required");
    let err = f.fails(&["wait", "staging", "--timeout", "soon"], 2).await;
    assert!(err.contains("--timeout: `soon`"), "{err}");

    // Not ready: no API server yet; a cluster the schedule wants down will not come up.
    let err = f.fails(&["kubeconfig", "staging"], 3).await;
    assert!(err.contains("staging has no API server now"), "{err}");
    let err = f
        .fails(&["wait", "sandbox-us", "--timeout", "10s"], 3)
        .await;
    assert!(err.contains("sandbox-us is wanted down"), "{err}");
    let (code, out, _) = f.run(&["--json", "wait", "sandbox-us"]).await;
    assert_eq!(code, 3);
    let said: Value = serde_json::from_str(&out).expect("--json says why too");
    assert_eq!(said["ready"], false, "{said}");
    let out = f.ok(&["status", "sandbox-us"]).await;
    assert!(
        out.contains("absent") && !out.contains("sandbox-us: failing"),
        "waiting on a cluster wanted down ticked nothing: {out}"
    );

    // The morning: wait runs the ticks itself (--local) until Cluster Ready.
    let out = f
        .ok(&["wait", "staging", "--timeout", "5m", "--interval", "1s"])
        .await;
    assert!(out.contains("create-cluster (done)"), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap_or_default()
            .starts_with("staging is ready after"),
        "{out}"
    );
    let out = f.ok(&["wait", "staging", "--timeout", "1s"]).await;
    assert!(
        out.starts_with("staging is ready after 0s"),
        "ready at the first look: {out}"
    );
    let out = f.ok(&["--json", "status", "staging"]).await;
    let status: Value = serde_json::from_str(&out).expect("--json is JSON");
    assert_eq!(status["clusters"][0]["recorded"]["phase"], "up", "{status}");
    assert_eq!(
        status["clusters"][0]["recorded"]["announced"], true,
        "{status}"
    );
    assert_eq!(status["clusters"].as_array().map(Vec::len), Some(1));
    let yaml = f
        .ok(&["kubeconfig", "staging", "--aws-profile", "hub"])
        .await;
    let kubeconfig: Value = serde_saphyr::from_str(&yaml).expect("kubeconfig YAML");
    assert_eq!(kubeconfig["current-context"], "staging");
    assert_eq!(
        kubeconfig["users"][0]["user"]["exec"]["args"],
        json!([
            "--region",
            "eu-west-1",
            "eks",
            "get-token",
            "--cluster-name",
            "staging",
            "--output",
            "json"
        ])
    );
    assert!(kubeconfig["clusters"][0]["cluster"]["server"]
        .as_str()
        .is_some_and(|s| s.starts_with("https://")));

    // Overrides: held up, shown in status, cleared.
    let out = f
        .ok(&["up", "sandbox-us", "--for", "3h", "--reason", "load test"])
        .await;
    assert!(
        out.starts_with("sandbox-us: held up until 2026-11-23 10:00Z (load test)"),
        "{out}"
    );
    assert!(out.contains("this tick: create-cluster (done)"), "{out}");
    let out = f.ok(&["status"]).await;
    assert!(
        out.contains("up until 2026-11-23 10:00Z (load test)"),
        "{out}"
    );
    let out = f.ok(&["clear", "sandbox-us"]).await;
    assert!(out.starts_with("sandbox-us: override cleared"), "{out}");
    let out = f.ok(&["clear", "sandbox-us"]).await;
    assert!(
        out.starts_with("sandbox-us: had no override"),
        "twice is harmless: {out}"
    );

    // The other functions' reports.
    let out = f.ok(&["dns", "sync", "staging", "--dry-run"]).await;
    assert!(
        out.contains("app.example.com") && out.contains(LOAD_BALANCER),
        "{out}"
    );
    assert!(
        cloudflare.records(&zone, "app.example.com").is_empty(),
        "a dry run writes nothing"
    );
    let out = f.ok(&["dns", "sync", "staging"]).await;
    assert!(out.contains("create"), "{out}");
    // An instance that is no node of the fleet: nothing drained, said, exit 1.
    let (code, out, _) = f.run(&["drain", "i-0abc1234def567890", "--dry-run"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("status: not-ours") && out.contains("i-0abc1234def567890"),
        "{out}"
    );
    let out = f
        .ok(&["dora", "report", "--from", "2026-11-01T00:00:00Z"])
        .await;
    assert!(out.contains("services:"), "{out}");
    let out = f
        .ok(&["--json", "cost", "report", "--month", "2026-11"])
        .await;
    let cost: Value = serde_json::from_str(&out).expect("cost JSON");
    assert_eq!(cost["month"], "2026-11", "{cost}");
    let err = f.fails(&["cost", "report", "--month", "November"], 2).await;
    assert!(err.contains("--month"), "{err}");
    let out = f.ok(&["completions", "bash"]).await;
    assert!(out.contains("fleetctl"), "{out}");
    let out = f.ok(&["--help"]).await;
    assert!(
        out.contains("Exit codes: 0 ok, 1 failed, 2 bad usage, 3 not ready"),
        "{out}"
    );
}
