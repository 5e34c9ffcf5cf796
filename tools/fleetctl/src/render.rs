//! The functions' answers as tables and lines for people (colour only on a terminal).
//!
//! The answers are read through small views of the fields shown, not the functions'
//! own types: a deployed function answers JSON, and a field added to an answer must not
//! break an older fleetctl.

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

/// Colour on or off: on only when stdout is a terminal and `NO_COLOR` is unset.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        Style {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn table(self, header: &[&str]) -> Table {
        let mut t = Table::new();
        t.load_preset(comfy_table::presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
        if self.colour {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        t.set_header(
            header
                .iter()
                .map(|h| Cell::new(h).add_attribute(Attribute::Bold)),
        );
        t
    }
}

/// `2026-11-23T19:00:00Z` as `2026-11-23 19:00Z`; anything else as it is.
pub fn when(t: &str) -> String {
    match t.parse::<Timestamp>() {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%MZ").to_string(),
        Err(_) => t.to_string(),
    }
}

fn desired_cell(desired: &str) -> Cell {
    let c = Cell::new(desired);
    match desired {
        "up" => c.fg(Color::Green),
        _ => c.fg(Color::DarkGrey),
    }
}

/// The table's text without trailing spaces on its lines.
fn text(t: &Table) -> String {
    t.lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Deserialize)]
pub struct Recorded {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub announced: bool,
    #[serde(default)]
    pub backoff_until: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Hold {
    pub desired: String,
    pub until: String,
    pub reason: String,
}

/// One row of the scheduler's `status` answer.
#[derive(Debug, Deserialize)]
pub struct StatusRow {
    pub name: String,
    #[serde(default)]
    pub eks_name: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub protect: bool,
    pub desired: String,
    pub reason: String,
    pub actual: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub certificate_authority: Option<String>,
    pub recorded: Recorded,
    #[serde(rename = "override", default)]
    pub over: Option<Hold>,
    #[serde(default)]
    pub next_change: Option<String>,
    #[serde(default)]
    pub uptime_hours_this_month: f64,
}

impl StatusRow {
    /// `Cluster Ready` published for the incarnation that runs.
    pub fn ready(&self) -> bool {
        self.recorded.phase.as_deref() == Some("up") && self.recorded.announced
    }

    fn place(&self) -> String {
        format!(
            "{}/{}",
            self.account.as_deref().unwrap_or("hub"),
            self.region.as_deref().unwrap_or("?")
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct Status {
    pub at: String,
    pub clusters: Vec<StatusRow>,
    #[serde(default)]
    pub networks: Vec<NetworkStatus>,
}

#[derive(Debug, Deserialize)]
pub struct NetworkStatus {
    pub name: String,
    pub desired: String,
    #[serde(default)]
    pub clusters: Vec<String>,
    #[serde(default)]
    pub recorded: Value,
    #[serde(default)]
    pub uptime_hours_this_month: f64,
}

/// Reads an answer through its view.
pub fn view<T: serde::de::DeserializeOwned>(answer: &Value) -> Result<T, String> {
    T::deserialize(answer)
        .map_err(|e| format!("an answer fleetctl does not understand ({e}); --json shows it whole"))
}

fn hold_text(h: &Option<Hold>) -> String {
    match h {
        Some(h) => format!("{} until {} ({})", h.desired, when(&h.until), h.reason),
        None => "-".into(),
    }
}

/// The `status` table, then a line per cluster in trouble.
pub fn status(s: &Status, style: Style) -> String {
    let mut t = style.table(&[
        "CLUSTER",
        "WHERE",
        "DESIRED",
        "ACTUAL",
        "READY",
        "OVERRIDE",
        "NEXT CHANGE",
        "UP H (MONTH)",
    ]);
    let mut notes = vec![];
    for c in &s.clusters {
        let ready = match (c.ready(), c.recorded.phase.as_deref()) {
            (true, _) => Cell::new("yes").fg(Color::Green),
            (false, _) if c.desired == "up" => Cell::new("no").fg(Color::Yellow),
            _ => Cell::new("-"),
        };
        let name = match &c.eks_name {
            Some(eks) if eks != &c.name => format!("{} ({eks})", c.name),
            _ => c.name.clone(),
        };
        let name = if c.protect {
            format!("{name} [protected]")
        } else {
            name
        };
        t.add_row(vec![
            Cell::new(name),
            Cell::new(c.place()),
            desired_cell(&c.desired),
            Cell::new(&c.actual),
            ready,
            Cell::new(hold_text(&c.over)),
            Cell::new(
                c.next_change
                    .as_deref()
                    .map(when)
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::new(format!("{:.1}", c.uptime_hours_this_month)),
        ]);
        if let Some(e) = &c.recorded.last_error {
            let retry = c
                .recorded
                .backoff_until
                .as_deref()
                .map(|u| format!("; next try {}", when(u)))
                .unwrap_or_default();
            notes.push(format!(
                "{}: failing ({} in a row): {e}{retry}",
                c.name, c.recorded.attempts
            ));
        }
    }
    let mut out = format!("at {}\n{}", when(&s.at), text(&t));
    if !s.networks.is_empty() {
        let mut n = style.table(&["NETWORK", "DESIRED", "PHASE", "CLUSTERS", "UP H (MONTH)"]);
        for net in &s.networks {
            n.add_row(vec![
                Cell::new(&net.name),
                desired_cell(&net.desired),
                Cell::new(net.recorded["phase"].as_str().unwrap_or("never up")),
                Cell::new(net.clusters.join(", ")),
                Cell::new(format!("{:.1}", net.uptime_hours_this_month)),
            ]);
        }
        out.push_str("\n\n");
        out.push_str(&text(&n));
    }
    for note in notes {
        out.push('\n');
        out.push_str(&note);
    }
    out
}

#[derive(Debug, Deserialize)]
pub struct PlanRow {
    pub name: String,
    pub desired: String,
    pub actual: String,
    pub next_step: String,
    pub reason: String,
    #[serde(default)]
    pub next_change: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Plan {
    pub at: String,
    pub clusters: Vec<PlanRow>,
    #[serde(default)]
    pub networks: Vec<NetworkPlan>,
}

#[derive(Debug, Deserialize)]
pub struct NetworkPlan {
    pub name: String,
    pub desired: String,
    pub actual: String,
    pub next_step: String,
}

/// The `plan` table.
pub fn plan(p: &Plan, style: Style) -> String {
    let mut t = style.table(&[
        "CLUSTER",
        "DESIRED",
        "ACTUAL",
        "NEXT STEP",
        "NEXT CHANGE",
        "WHY",
    ]);
    for c in &p.clusters {
        t.add_row(vec![
            Cell::new(&c.name),
            desired_cell(&c.desired),
            Cell::new(&c.actual),
            Cell::new(&c.next_step),
            Cell::new(
                c.next_change
                    .as_deref()
                    .map(when)
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::new(&c.reason),
        ]);
    }
    let mut out = format!("plan at {}\n{}", when(&p.at), text(&t));
    if !p.networks.is_empty() {
        let mut n = style.table(&["NETWORK", "DESIRED", "PHASE", "NEXT STEP"]);
        for net in &p.networks {
            n.add_row(vec![
                Cell::new(&net.name),
                desired_cell(&net.desired),
                Cell::new(&net.actual),
                Cell::new(&net.next_step),
            ]);
        }
        out.push_str("\n\n");
        out.push_str(&text(&n));
    }
    out
}

/// What the tick an override made at once did.
#[derive(Debug, Deserialize)]
pub struct Outcome {
    pub step: String,
    pub result: String,
    #[serde(default)]
    pub error: Option<String>,
}

impl Outcome {
    fn line(&self) -> String {
        let mut s = format!("this tick: {} ({})", self.step, self.result);
        if let Some(e) = &self.error {
            s.push_str(&format!(": {e}"));
        }
        s
    }
}

#[derive(Debug, Deserialize)]
pub struct OverrideSet {
    pub cluster: String,
    #[serde(rename = "override")]
    pub over: Hold,
    pub reconcile: Outcome,
}

#[derive(Debug, Deserialize)]
pub struct OverrideCleared {
    pub cluster: String,
    pub cleared: bool,
    pub reconcile: Outcome,
}

/// `up`/`down`: the override and what its tick did.
pub fn override_set(o: &OverrideSet) -> String {
    format!(
        "{}: held {} until {} ({})\n{}",
        o.cluster,
        o.over.desired,
        when(&o.over.until),
        o.over.reason,
        o.reconcile.line()
    )
}

/// `clear`: whether there was an override, and what the tick did.
pub fn override_cleared(o: &OverrideCleared) -> String {
    let what = if o.cleared {
        "override cleared; its schedule decides again"
    } else {
        "had no override"
    };
    format!("{}: {what}\n{}", o.cluster, o.reconcile.line())
}

/// Any other answer: its plain fields as `key: value` lines, each list of objects as a
/// table of their plain fields (a nested list is shown as its items joined, or counted).
pub fn generic(answer: &Value, style: Style) -> String {
    let mut lines = vec![];
    let mut tables = vec![];
    walk(answer, "", style, &mut lines, &mut tables);
    let mut out = lines.join("\n");
    for (title, table) in tables {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&title);
        out.push('\n');
        out.push_str(&table);
    }
    out
}

fn plain(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("-".into()),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.into()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(when(s)),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            Some(if items.is_empty() {
                "-".into()
            } else {
                // Sentences (a report's warnings) apart with "; ", words with ", ".
                let parts: Vec<String> = items.iter().filter_map(plain).collect();
                let sep = if parts.iter().any(|p| p.contains(' ')) {
                    "; "
                } else {
                    ", "
                };
                parts.join(sep)
            })
        }
        Value::Array(items) => Some(format!("{} items", items.len())),
        Value::Object(_) => None,
    }
}

fn walk(
    v: &Value,
    prefix: &str,
    style: Style,
    lines: &mut Vec<String>,
    tables: &mut Vec<(String, String)>,
) {
    let Value::Object(map) = v else {
        lines.push(plain(v).unwrap_or_default());
        return;
    };
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                let mut columns: Vec<&String> = vec![];
                for item in items {
                    for (c, cv) in item.as_object().into_iter().flatten() {
                        if !cv.is_object() && !columns.contains(&c) {
                            columns.push(c);
                        }
                    }
                }
                let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
                let header: Vec<&str> = header.iter().map(String::as_str).collect();
                let mut t = style.table(&header);
                for item in items {
                    t.add_row(
                        columns
                            .iter()
                            .map(|c| Cell::new(plain(&item[c.as_str()]).unwrap_or_default()))
                            .collect::<Vec<_>>(),
                    );
                }
                tables.push((format!("{key}:"), text(&t)));
            }
            Value::Object(_) => walk(v, &key, style, lines, tables),
            _ => lines.push(format!("{key}: {}", plain(v).unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PLAIN: Style = Style { colour: false };

    #[test]
    fn times_are_shown_to_the_minute_in_utc() {
        assert_eq!(when("2026-11-23T19:00:00+01:00"), "2026-11-23 18:00Z");
        assert_eq!(when("staging"), "staging");
    }

    #[test]
    fn a_status_table_says_where_what_and_why() {
        let answer = json!({
            "at": "2026-11-23T07:30:00Z",
            "clusters": [{
                "name": "staging", "eks_name": "staging", "account": null, "region": "eu-west-1",
                "mode": "destroy", "protect": false, "desired": "up", "reason": "inside uptime",
                "actual": "ACTIVE, 2 nodegroups", "endpoint": "https://x", "recorded":
                {"phase": "up", "announced": true, "attempts": 0},
                "override": {"desired": "up", "until": "2026-11-23T23:00:00Z", "reason": "late release", "set_at": "2026-11-23T07:00:00Z"},
                "next_change": "2026-11-23T23:00:00Z", "uptime_hours_this_month": 101.25,
                "future_field": 1
            }, {
                "name": "sandbox", "account": "production", "region": "us-east-1",
                "desired": "down", "reason": "outside uptime", "actual": "absent",
                "recorded": {"phase": "down", "announced": true, "attempts": 2,
                "last_error": "AccessDenied", "backoff_until": "2026-11-23T07:34:00Z"},
                "override": null, "next_change": null
            }]
        });
        let s: Status = view(&answer).expect("view");
        let out = status(&s, PLAIN);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "at 2026-11-23 07:30Z");
        assert!(lines[1].starts_with(" CLUSTER"), "{out}");
        assert!(lines[2].contains("hub/eu-west-1"), "{out}");
        assert!(
            lines[2].contains("up until 2026-11-23 23:00Z (late release)"),
            "{out}"
        );
        assert!(lines[2].contains(" yes "), "{out}");
        assert!(lines[3].contains("production/us-east-1"), "{out}");
        assert_eq!(
            lines[4],
            "sandbox: failing (2 in a row): AccessDenied; next try 2026-11-23 07:34Z"
        );
        // Columns line up: every row's WHERE starts where the header's does.
        let col = lines[1].find("WHERE").expect("WHERE");
        assert_eq!(lines[2].find("hub/"), Some(col), "{out}");
        assert_eq!(lines[3].find("production/"), Some(col), "{out}");
        assert!(!out.contains('\u{1b}'), "no colour off a terminal");
    }

    #[test]
    fn any_other_answer_is_lines_and_tables() {
        let answer = json!({"month": "2026-11", "total": 12.5, "clusters": [
            {"cluster": "staging", "spend": 10.0, "tags": ["a", "b"]},
            {"cluster": "sandbox", "spend": 2.5, "extra": true}
        ], "leftovers": []});
        let out = generic(&answer, PLAIN);
        assert!(
            out.starts_with("month: 2026-11\ntotal: 12.5\nleftovers: -\n\nclusters:\n"),
            "{out}"
        );
        assert!(out.contains("staging"), "{out}");
        assert!(out.contains("a, b"), "{out}");
    }
}
