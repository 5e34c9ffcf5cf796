//! `cargo run -p fleet-tests --bin seed-spot-node`: puts a spot node for the sample
//! instance `i-1234567890abcdef0` into the fake Kubernetes API of `make local-aws`
//! (`FLEET_KUBE_API_URL`): three web pods behind a PodDisruptionBudget that allows one
//! disruption at a time, a DaemonSet pod and a mirror pod. Prints the spot interruption
//! warning for that instance, timed now, for `cargo run -p spot-drainer -- --event -`.

use fleet_shared::kube::{ClusterAccess, KubeConnector};
use jiff::Timestamp;
use serde_json::{json, Value};

use fleet_tests::fixtures::spot_drainer::{objects, INSTANCE, NODE};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(event) => {
            println!("{event}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run() -> Result<Value, String> {
    let url = std::env::var("FLEET_KUBE_API_URL").map_err(|_| {
        "FLEET_KUBE_API_URL is not set: source target/local-aws.env first".to_string()
    })?;
    let sdk = fleet_shared::aws::emulator_config("http://127.0.0.1:0", "eu-west-1");
    let client = KubeConnector::new(&sdk, Some(url))
        .client(&ClusterAccess {
            name: "local".into(),
            endpoint: String::new(),
            ca_data: None,
            place: fleet_shared::place::Place {
                account: None,
                region: "eu-west-1".into(),
            },
        })
        .await
        .map_err(|e| e.to_string())?;
    // The same server-side apply the morning bootstrap uses (JSON is YAML).
    let text: Vec<String> = objects().iter().map(Value::to_string).collect();
    let manifests = cluster_scheduler::bootstrap::parse("seed-spot-node", &text.join("\n---\n"))
        .map_err(|e| e.to_string())?;
    cluster_scheduler::bootstrap::apply(&client, manifests)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("node {NODE} ({INSTANCE}) seeded with 3 web pods behind a budget, a DaemonSet pod and a mirror pod");
    let mut event: Value =
        serde_json::from_str(include_str!("../../../events/spot-interruption.json"))
            .map_err(|e| e.to_string())?;
    // Real time: `make invoke` runs the drainer without `FLEET_NOW`, at the real clock.
    event["time"] = json!(Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    Ok(event)
}
