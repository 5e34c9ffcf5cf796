//! `make demo`: a day of the fleet, run locally through the same binaries and event shapes
//! that run in Lambda, against moto and the fakes, with a virtual clock (`FLEET_NOW`).
//!
//! The library form is run by a test, so the demo cannot silently rot.

use std::path::{Path, PathBuf};

use jiff::{Timestamp, ToSpan};
use serde_json::{json, Value};

use crate::fake_kube::FakeKube;
use crate::fake_slack::FakeSlack;
use crate::{
    seed_local_account, workspace_root, BusTap, MotoServer, LOCAL_BUS, LOCAL_TABLE, REGION,
};

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub at: Timestamp,
    pub source: String,
    pub what: String,
}

impl Entry {
    pub fn to_json(&self) -> Value {
        json!({"at": self.at.to_string(), "source": self.source, "what": self.what})
    }
}

/// What the demo saw, for the caller to print or check.
#[derive(Debug, Default)]
pub struct Report {
    pub timeline: Vec<Entry>,
    /// (detail-type, cluster) of every event on the fleet bus, in order.
    pub events: Vec<(String, String)>,
    pub slack: Vec<String>,
    /// The scheduler's final `status` response.
    pub status: Value,
}

/// Where the function binaries are: next to the running executable, or one level up
/// when it is a test in `target/<profile>/deps`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

struct Fleet {
    endpoint: String,
    kube_url: String,
    bin_dir: PathBuf,
    config: PathBuf,
}

impl Fleet {
    /// Runs a function binary's local runner on an event file at virtual time `at`. Async,
    /// so that the fakes on this runtime keep answering while the binary runs.
    async fn invoke(&self, function: &str, event: &str, at: Timestamp) -> Result<Value, String> {
        let bin = self.bin_dir.join(function);
        let out = tokio::process::Command::new(&bin)
            .arg("--event")
            .arg(workspace_root().join("events").join(event))
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("FLEET_TABLE", LOCAL_TABLE)
            .env("FLEET_CONFIG", &self.config)
            .env("FLEET_NOW", at.to_string())
            .env("FLEET_KUBE_API_URL", &self.kube_url)
            .env("RUST_LOG", "warn")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .await
            .map_err(|e| format!("cannot run {} (build it first): {e}", bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{function} --event {event} at {at} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{function} printed no JSON response: {e}"))
    }
}

fn short(t: Timestamp) -> String {
    t.strftime("%a %H:%M").to_string()
}

/// Runs the demo day; `on_entry` sees each timeline line as it happens.
pub async fn run(mut on_entry: impl FnMut(&Entry)) -> Result<Report, String> {
    let moto = MotoServer::start(0)?;
    let sdk = fleet_shared::aws::emulator_config(&moto.endpoint, REGION);
    let slack = FakeSlack::start().await;
    seed_local_account(&sdk, &slack.url).await?;
    let tap = BusTap::new(&sdk, LOCAL_BUS).await;
    // Every cluster's Kubernetes API is played by one fake API server.
    let kube = FakeKube::start().await;
    let fleet = Fleet {
        endpoint: moto.endpoint.clone(),
        kube_url: kube.url.clone(),
        bin_dir: bin_dir(),
        config: workspace_root().join("infra/fleet.example.toml"),
    };
    let mut report = Report::default();
    let mut log = |report: &mut Report, at: Timestamp, source: &str, what: String| {
        let e = Entry {
            at,
            source: source.into(),
            what,
        };
        on_entry(&e);
        report.timeline.push(e);
    };

    // Monday 2026-11-23 05:00 UTC to Tuesday 06:30 UTC, a tick every 15 minutes, plus a
    // late release that holds staging up for 3 hours past its evening.
    let start: Timestamp = "2026-11-23T05:00:00Z".parse().map_err(|e| format!("{e}"))?;
    let end: Timestamp = "2026-11-24T06:30:00Z".parse().map_err(|e| format!("{e}"))?;
    let release: Timestamp = "2026-11-23T18:30:00Z".parse().map_err(|e| format!("{e}"))?;
    let mut at = start;
    while at < end {
        if at == release {
            let r = fleet
                .invoke("cluster-scheduler", "scheduler-up.json", at)
                .await?;
            log(
                &mut report,
                at,
                "operator",
                format!(
                    "holds staging up: {} until {}",
                    r["override"]["reason"].as_str().unwrap_or_default(),
                    r["override"]["until"].as_str().unwrap_or_default()
                ),
            );
        }
        let tick = fleet
            .invoke("cluster-scheduler", "scheduler-tick.json", at)
            .await?;
        for c in tick["clusters"].as_array().into_iter().flatten() {
            let result = c["result"].as_str().unwrap_or_default();
            if matches!(result, "steady" | "waiting") {
                continue;
            }
            let mut what = format!(
                "{}: {} ({})",
                c["name"].as_str().unwrap_or_default(),
                c["step"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default()
            );
            if let Some(err) = c["error"].as_str() {
                what.push_str(&format!(" error: {err}"));
            }
            log(&mut report, at, "cluster-scheduler", what);
        }
        for e in tap.drain().await {
            let dt = e["detail-type"].as_str().unwrap_or_default().to_string();
            let cluster = e["detail"]["cluster"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            log(&mut report, at, "fleet bus", format!("{dt}: {cluster}"));
            report.events.push((dt, cluster));
        }
        for t in slack.texts().iter().skip(report.slack.len()) {
            log(&mut report, at, "slack", t.clone());
        }
        report.slack = slack.texts();
        at = at.checked_add(15.minutes()).map_err(|e| e.to_string())?;
    }
    report.status = fleet
        .invoke("cluster-scheduler", "scheduler-status.json", end)
        .await?;
    Ok(report)
}

/// The outcome the demo promises; the demo exits non-zero when it does not hold.
pub fn check(report: &Report) -> Result<(), String> {
    let events: Vec<(&str, &str)> = report
        .events
        .iter()
        .map(|(d, c)| (d.as_str(), c.as_str()))
        .collect();
    let expected = vec![
        // Sunday's late window (22:00-01:00 New York) is still open at 05:00 UTC.
        ("Cluster Ready", "sandbox-us"),
        ("Cluster Destroyed", "sandbox-us"),
        ("Cluster Ready", "staging"),
        ("Cluster Ready", "sandbox-us"),
        ("Cluster Destroyed", "staging"),
        ("Cluster Destroyed", "sandbox-us"),
        ("Cluster Ready", "sandbox-us"),
        ("Cluster Destroyed", "sandbox-us"),
    ];
    if events != expected {
        return Err(format!(
            "the fleet bus saw {events:?}, expected {expected:?}"
        ));
    }
    let uptime = |name: &str| {
        report.status["clusters"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .and_then(|c| c["uptime_hours_this_month"].as_f64())
    };
    // Up from Ready to Destroyed, ticks 15 minutes apart. staging: 07:30-22:00 UTC (the
    // release held it past 19:00); sandbox-us: 05:30-06:15, 12:15-00:15, 03:15-06:15.
    for (name, hours) in [("staging", 14.5), ("sandbox-us", 15.75)] {
        match uptime(name) {
            Some(h) if (h - hours).abs() < 0.01 => {}
            other => {
                return Err(format!(
                    "{name} was up {other:?} hours, expected about {hours}"
                ))
            }
        }
    }
    Ok(())
}

/// A readable summary table of the final status.
pub fn summary(report: &Report) -> String {
    let mut s =
        String::from("\ncluster      mode      now       uptime this month   next change\n");
    for c in report.status["clusters"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "{:<12} {:<9} {:<9} {:>8.2} h          {}\n",
            c["name"].as_str().unwrap_or_default(),
            c["mode"].as_str().unwrap_or_default(),
            c["recorded"]["phase"].as_str().unwrap_or("-"),
            c["uptime_hours_this_month"].as_f64().unwrap_or_default(),
            c["next_change"].as_str().unwrap_or("-"),
        ));
    }
    s
}

pub fn format_entry(e: &Entry) -> String {
    format!("{:<10} {:<18} {}", short(e.at), e.source, e.what)
}
