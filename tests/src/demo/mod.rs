//! `make demo`: a day of the fleet, run locally through the same binaries and event shapes
//! that run in Lambda, against moto and the fakes, with a virtual clock (`FLEET_NOW`):
//! the morning rebuild, DNS following the new ingress, a spot interruption drained past a
//! PodDisruptionBudget, a day of GitHub webhooks (a failed deploy, then the fix, and an
//! incident), the evening teardown with DNS `on_destroy`, then the DORA and cost reports.
//!
//! The library form is run by a test, so the demo cannot silently rot.
//!
//! One job a file: `day` (the virtual day: its instants and what the schedules make
//! of it), `inputs` (what the day is fed: the example config, the month's history,
//! GitHub's deliveries), `replay` (running the binaries through the day), `check`
//! (whether it went as promised) and `print` (the timeline and the tables).

mod check;
mod day;
mod inputs;
mod print;
mod replay;

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::{json, Value};

pub use check::check;
pub use day::{Day, UpInterval};
pub(crate) use inputs::webhooks;
pub use print::{format_entry, summary};
pub use replay::run;

/// The example's record.
const RECORD: &str = "app.example.com";

/// The ingress load balancer of the rebuilt staging cluster.
const LOAD_BALANCER: &str = "k8s-ingress-0a1b2c3d4e-1234567890.eu-west-1.elb.amazonaws.com";

/// The Monday `make demo` replays unless `--date` names another.
pub const DEFAULT_MONDAY: &str = "2026-11-23";

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
    /// The day replayed.
    pub day: Day,
    /// The production account's cluster (another account, another region): where it was
    /// when its `Cluster Ready` came and after its `Cluster Destroyed`, each fact with
    /// whether it held.
    pub production: Vec<(String, bool)>,
    pub timeline: Vec<Entry>,
    /// (virtual time, detail-type, cluster) of every event on the fleet bus, in order.
    pub events: Vec<(Timestamp, String, String)>,
    pub slack: Vec<String>,
    /// The scheduler's final `status` response.
    pub status: Value,
    /// The DNS updater's answers to the bus events, in order.
    pub dns: Vec<Value>,
    /// `app.example.com` while staging was up: (Cloudflare content, Route53 alias target).
    pub dns_while_up: Option<(String, String)>,
    /// How many `app.example.com` records were left in Cloudflare and Route53 at the end.
    pub dns_records_at_end: usize,
    /// The spot drain's report.
    pub drain: Value,
    /// The fake API's state right after the drain: the node's `spec.unschedulable`, the
    /// pods still on it that are neither DaemonSet nor mirror pods, and the web budget's
    /// worst shortfall during the drain ([`FakeKube::budget_shortfall`](crate::fakes::kube::FakeKube::budget_shortfall)).
    pub drained_node: (bool, Vec<String>, Option<i64>),
    /// The ingress controller's Service was gone before staging's nodegroups were deleted
    /// (checked at the tick that deleted them).
    pub ingress_gone_before_nodegroups: Option<bool>,
    /// The webhook's HTTP status per delivery.
    pub webhooks: Vec<i64>,
    pub dora: Value,
    pub cost: Value,
    /// Hours each cluster was up in November before the demo day (the seeded history).
    pub history_hours: std::collections::BTreeMap<String, f64>,
    /// What went wrong with sandbox-us's Karpenter nodes: one still running after a
    /// scale-down was announced, a NodePool limit not restored by the morning.
    pub karpenter_problems: Vec<String>,
    /// What of staging's network still bills once `Network Down` is announced (NAT
    /// gateways not `deleted`, Elastic IPs), and where its route tables' default routes
    /// point.
    pub network_at_end: Vec<String>,
    /// Staging's morning, read when its `Cluster Ready` came: its `took_seconds`, and
    /// what a working platform needs, each with whether it held (the deploy key before
    /// Flux, IRSA on the new issuer, Pod Identity, the node role's entry, the objects of
    /// `ready_when` ready).
    pub morning: Option<Morning>,
}

/// What staging's morning brought back (see [`Report::morning`]).
#[derive(Debug, Default)]
pub struct Morning {
    /// `Cluster Ready`'s `took_seconds`.
    pub took_seconds: Option<i64>,
    /// What a working platform needs, each with whether it held.
    pub facts: Vec<(String, bool)>,
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
