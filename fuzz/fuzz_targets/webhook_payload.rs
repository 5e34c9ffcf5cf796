//! A verified body of any shape, through normalization (what comes after the signature
//! check): the first byte picks the sender and GitHub event, the rest is the JSON.
#![no_main]

use std::sync::OnceLock;

use fleet_shared::config::{DoraConfig, FleetConfig};

const GITHUB_EVENTS: [&str; 6] = [
    "push",
    "workflow_run",
    "deployment_status",
    "issues",
    "pull_request",
    "star",
];

fn dora() -> &'static DoraConfig {
    static DORA: OnceLock<DoraConfig> = OnceLock::new();
    DORA.get_or_init(|| {
        FleetConfig::parse(include_str!("../../infra/fleet.example.toml"))
            .ok()
            .and_then(|c| c.dora)
            .expect("[dora] in the example")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let now = jiff::Timestamp::UNIX_EPOCH;
    let _ = match pick % 8 {
        6 => dora_webhook::normalize::flux(&payload, dora()),
        7 => dora_webhook::normalize::flagger(&payload, dora(), now),
        n => dora_webhook::normalize::github(GITHUB_EVENTS[n as usize], &payload, dora()),
    };
});
