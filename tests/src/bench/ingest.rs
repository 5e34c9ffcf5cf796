//! Section 5: the webhook's signature check, parse and normalization of a large push.

use std::fmt::Write as _;
use std::time::Instant;

use fleet_shared::config::FleetConfig;
use serde_json::{json, Value};

use super::{percentile, verdict};
use crate::workspace_root;

/// 5. Webhook ingest of a 25 KB push: signature, parse, normalize (storage excluded).
pub(super) fn webhook_ingest(md: &mut String) -> Result<(), String> {
    let mut push = crate::fixtures::dora::github_examples("push")
        .into_iter()
        .find(|e| e["ref"] == "refs/heads/master")
        .ok_or("no push example (make setup)")?;
    push["ref"] = json!("refs/heads/main");
    push["repository"]["full_name"] = json!("your-org/infra-fleet");
    let commit = push["commits"][0].clone();
    let mut commits = Vec::new();
    while serde_json::to_vec(&push).map(|b| b.len()).unwrap_or(0) < 25_000 {
        let mut c = commit.clone();
        c["id"] = json!(format!("{:040x}", commits.len()));
        commits.push(c);
        push["commits"] = json!(commits);
    }
    let body = serde_json::to_vec(&push).map_err(|e| e.to_string())?;
    let secret = crate::LOCAL_WEBHOOK_SECRET.as_bytes();
    let sig = dora_webhook::signature::sign_sha256(secret, &body);
    let config = FleetConfig::parse(
        &std::fs::read_to_string(workspace_root().join("infra/fleet.example.toml"))
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let dora = config.dora.ok_or("no [dora] in the example")?;
    let mut samples = Vec::new();
    for _ in 0..20_000 {
        let t0 = Instant::now();
        dora_webhook::signature::verify_sha256("X-Hub-Signature-256", &[&sig], secret, &body)
            .map_err(|e| e.to_string())?;
        let payload: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let n = dora_webhook::normalize::github("push", &payload, &dora).map_err(|e| e.0)?;
        std::hint::black_box(n);
        samples.push(t0.elapsed().as_secs_f64() * 1_000_000.0);
    }
    let (p50, p99) = (percentile(samples.clone(), 0.5), percentile(samples, 0.99));
    writeln!(md, "## 5. Webhook ingest\n\nSignature check, JSON parse and normalization of a {} KB `push` ({} commits), 20,000 times, storage excluded. Target p99 ≤ 1 ms.\n\n| p50 | p99 | verdict |\n|---|---|---|\n| {p50:.0} µs | {p99:.0} µs | {} |\n", body.len() / 1000, commits.len(), verdict(p99 <= 1000.0)).ok();
    eprintln!("webhook: p50 {p50:.0} µs, p99 {p99:.0} µs");
    Ok(())
}
