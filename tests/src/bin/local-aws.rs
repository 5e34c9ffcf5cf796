//! `make local-aws`: a local stand-in for the fleet's AWS account, for `make invoke`.
//!
//! Starts moto server on 127.0.0.1:5000 (or `--port N`), creates the state table and the
//! `fleet` bus, stores the SSM parameters the example config names (the Slack webhook
//! points at a fake Slack that prints what it receives), and prints the environment to
//! export. Every cluster's Kubernetes API is played by the fake API server from the test
//! support (`FLEET_KUBE_API_URL`), which already has the ingress controller's Service with
//! a load balancer; Cloudflare is played by the fake Cloudflare API (`CLOUDFLARE_API_URL`)
//! with the example's zone, and Route53 (moto) has it too. Runs until Ctrl-C; moto stops
//! with it. Cost Explorer (moto) answers the first usage query with 40 days of costs for
//! the example's clusters.

use std::time::Duration;

use fleet_tests::fakes::cloudflare::FakeCloudflare;
use fleet_tests::fakes::kube::FakeKube;
use fleet_tests::fakes::slack::FakeSlack;
use fleet_tests::fixtures::dns::ingress_service;
use fleet_tests::{
    seed_local_account, workspace_root, MotoServer, LOCAL_BUS, LOCAL_CLOUDFLARE_TOKEN, LOCAL_TABLE,
    LOCAL_ZONE, REGION,
};

/// The load balancer the local ingress controller has.
const LOCAL_LOAD_BALANCER: &str = "a1b2c3d4e5f6-1234567890.eu-west-1.elb.amazonaws.com";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let port = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 5000,
        [flag, n] if flag == "--port" => match n.parse() {
            Ok(p) => p,
            Err(_) => {
                eprintln!("error: --port takes a number");
                return std::process::ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: local-aws [--port N]");
            return std::process::ExitCode::from(2);
        }
    };
    match run(port).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(port: u16) -> Result<(), String> {
    let moto = MotoServer::start(port)?;
    let sdk = fleet_shared::aws::emulator_config(&moto.endpoint, REGION);
    let slack = FakeSlack::start().await;
    seed_local_account(&sdk, &slack.url).await?;
    // Real time: `make invoke` runs without `FLEET_NOW`, so the costs lead up to today.
    fleet_tests::seed_local_costs(
        &moto.endpoint,
        jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date(),
    )
    .await?;
    let kube = FakeKube::start().await;
    kube.insert(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ingress-nginx"}}));
    kube.insert(ingress_service(Some(LOCAL_LOAD_BALANCER)));
    let cloudflare = FakeCloudflare::start(LOCAL_CLOUDFLARE_TOKEN).await;
    cloudflare.add_zone(LOCAL_ZONE);
    let config = workspace_root().join("infra/fleet.example.toml");
    let env = format!(
        "export AWS_ENDPOINT_URL={endpoint}\nexport AWS_REGION={REGION}\nexport AWS_ACCESS_KEY_ID=testing\nexport AWS_SECRET_ACCESS_KEY=testing\nexport FLEET_TABLE={LOCAL_TABLE}\nexport FLEET_CONFIG={config}\nexport FLEET_KUBE_API_URL={kube_url}\nexport CLOUDFLARE_API_URL={cloudflare_url}\n",
        endpoint = moto.endpoint,
        config = config.display(),
        kube_url = kube.url,
        cloudflare_url = cloudflare.url,
    );
    let env_file = workspace_root().join("target/local-aws.env");
    if let Some(dir) = env_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&env_file, &env).map_err(|e| format!("writing {}: {e}", env_file.display()))?;
    println!(
        "moto server on {} with table `{LOCAL_TABLE}`, bus `{LOCAL_BUS}` and the example's SSM parameters.",
        moto.endpoint
    );
    println!(
        "In another shell:\n\n  source {}\n\nor export:\n\n{env}",
        env_file.display()
    );
    println!("Slack messages and Cloudflare writes appear below. Ctrl-C stops everything.");
    let mut seen = 0;
    let mut seen_writes = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                let texts = slack.texts();
                for t in texts.iter().skip(seen) {
                    println!("[slack] {t}");
                }
                seen = texts.len();
                let writes = cloudflare.writes();
                for w in writes.iter().skip(seen_writes) {
                    println!("[cloudflare] {} {}", w.method, w.path);
                }
                seen_writes = writes.len();
            }
        }
    }
    drop(moto);
    Ok(())
}
