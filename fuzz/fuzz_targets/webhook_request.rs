//! Any bytes that are JSON, as a Function URL request to the webhook: always a 4xx answer
//! (no valid signature can come out of a fuzzer), never a panic, never storage.
#![no_main]

use std::sync::{Arc, OnceLock};

use dora_webhook::handler::{Secrets, Webhook};
use fleet_shared::config::{FleetConfig, Secret};
use fleet_shared::dora::DoraStore;

fn webhook() -> &'static (Webhook, tokio::runtime::Runtime) {
    static HOOK: OnceLock<(Webhook, tokio::runtime::Runtime)> = OnceLock::new();
    HOOK.get_or_init(|| {
        let config = FleetConfig::parse(include_str!("../../infra/fleet.example.toml"))
            .expect("the example config parses");
        let dora = config.dora.expect("[dora] in the example");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // Nothing listens on port 9: a request reaching storage would answer 500.
        let sdk = fleet_shared::aws::emulator_config("http://127.0.0.1:9", "eu-west-1");
        let secret = || Secret::new("fuzz-secret".into());
        let hook = Webhook {
            store: DoraStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                "unreachable",
                dora.retention_days,
            ),
            dora: Arc::new(dora),
            secrets: Secrets {
                github: secret(),
                flux: secret(),
                flagger: secret(),
            },
        };
        (hook, runtime)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let (hook, runtime) = webhook();
    let now = jiff::Timestamp::UNIX_EPOCH;
    let answer = runtime
        .block_on(hook.handle(event, fleet_shared::runner::Invocation::at(now)))
        .expect("the webhook answers every request");
    let status = answer["statusCode"].as_i64().unwrap_or(0);
    assert!((400..500).contains(&status), "answered {status}: {answer}");
});
