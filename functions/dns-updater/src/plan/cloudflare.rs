//! The Cloudflare plan: which records to create, update or delete, and which are
//! conflicts (someone else's record, or a CNAME beside another record at the name).

use fleet_shared::config::DnsRecordConfig;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CfRecord {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub content: String,
    #[serde(default)]
    pub proxied: bool,
    #[serde(default)]
    pub ttl: u32,
    #[serde(default)]
    pub comment: Option<String>,
}

/// The body of a create or patch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CfRecordBody {
    #[serde(rename = "type")]
    pub record_type: String,
    pub name: String,
    pub content: String,
    pub proxied: bool,
    pub ttl: u32,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CfWrite {
    Create(CfRecordBody),
    Patch { id: String, body: CfRecordBody },
    Delete { id: String },
}

/// The comment marker of a record the fleet manages for `cluster`.
pub fn marker(cluster: &str) -> String {
    fleet_shared::config::cloudflare_marker(cluster)
}

/// The cluster named by a comment's fleet marker, if it has one.
pub(super) fn marked_for(comment: Option<&str>) -> Option<&str> {
    let words: Vec<&str> = comment?.split_whitespace().collect();
    if !words.contains(&"managed-by=fleet") {
        return None;
    }
    words.iter().find_map(|w| w.strip_prefix("cluster="))
}

pub(super) fn cf_matches(r: &CfRecord, want: &CfRecordBody, cluster: &str) -> bool {
    r.record_type == want.record_type
        && same_value(&r.content, &want.content)
        && r.proxied == want.proxied
        // Cloudflare reports proxied records with TTL 1 whatever was sent: never compare it.
        && (want.proxied || r.ttl == want.ttl)
        && marked_for(r.comment.as_deref()) == Some(cluster)
}

pub(super) fn cf_value(r: &CfRecord) -> String {
    format!("{} {}", r.record_type, r.content)
}

/// Plans one Cloudflare record. `existing` is what a list by the record's name returned.
pub fn plan_cloudflare(
    rec: &DnsRecordConfig,
    cluster: &str,
    goal: &Goal,
    existing: &[CfRecord],
) -> (Change, Vec<CfWrite>) {
    let address: Vec<&CfRecord> = existing
        .iter()
        .filter(|r| {
            same_value(&r.name, &rec.name) && ADDRESS_TYPES.contains(&r.record_type.as_str())
        })
        .collect();
    let (ours, others): (Vec<&CfRecord>, Vec<&CfRecord>) = address
        .iter()
        .partition(|r| marked_for(r.comment.as_deref()) == Some(cluster));
    let mut change = Change {
        provider: "cloudflare",
        name: rec.name.clone(),
        record_type: String::new(),
        action: Action::None,
        from: address.first().map(|r| cf_value(r)),
        to: None,
        reason: None,
    };
    let target = match goal {
        Goal::Remove => {
            change.record_type = ours
                .first()
                .or(address.first())
                .map(|r| r.record_type.clone())
                .unwrap_or_default();
            if ours.is_empty() {
                if !others.is_empty() {
                    change.reason = Some("not the fleet's record; left alone".into());
                }
                return (change, vec![]);
            }
            change.action = Action::Delete;
            change.from = ours.first().map(|r| cf_value(r));
            let writes = ours
                .iter()
                .map(|r| CfWrite::Delete { id: r.id.clone() })
                .collect();
            return (change, writes);
        }
        Goal::PointAt(t) => t,
    };
    let want = CfRecordBody {
        record_type: target.record_type().to_string(),
        name: rec.name.clone(),
        content: target.value(),
        proxied: rec.proxied,
        ttl: rec.effective_ttl(),
        comment: marker(cluster),
    };
    change.record_type = want.record_type.clone();
    change.to = Some(format!("{} {}", want.record_type, want.content));
    // Cloudflare refuses a CNAME beside any other record of its name (error 81053/81054),
    // TXT and MX included: report it instead of failing every sync on the write. Not at
    // the zone apex, where CNAME flattening lets a CNAME sit beside MX and TXT, and not
    // when a CNAME is already there (Cloudflare took it beside them: it is only patched).
    let apex = rec
        .zone
        .as_deref()
        .is_some_and(|z| same_value(z, &rec.name));
    let cname_there = address.iter().any(|r| r.record_type == "CNAME");
    let mut beside: Vec<&str> = existing
        .iter()
        .filter(|r| same_value(&r.name, &rec.name))
        .map(|r| r.record_type.as_str())
        .filter(|t| !ADDRESS_TYPES.contains(t))
        .collect();
    beside.sort();
    beside.dedup();
    if want.record_type == "CNAME" && !beside.is_empty() && !apex && !cname_there {
        change.action = Action::Conflict;
        change.reason = Some(format!(
            "a CNAME cannot share its name with other records ({} here)",
            beside.join(", ")
        ));
        return (change, vec![]);
    }
    if let Some(other) = others.iter().find_map(|r| marked_for(r.comment.as_deref())) {
        change.action = Action::Conflict;
        change.reason = Some(format!("the record belongs to fleet cluster `{other}`"));
        return (change, vec![]);
    }
    if !others.is_empty() && !rec.adopt {
        change.action = Action::Conflict;
        change.reason = Some(
            "a record of this name exists without the fleet's marker; set adopt = true to take it over"
                .into(),
        );
        return (change, vec![]);
    }
    // Ours first, then (adopting) the others: one is kept and patched, the rest deleted.
    let candidates: Vec<&CfRecord> = ours.iter().chain(others.iter()).copied().collect();
    let Some(keep) = candidates
        .iter()
        .find(|r| cf_matches(r, &want, cluster))
        .or(candidates.first())
        .copied()
    else {
        change.action = Action::Create;
        return (change, vec![CfWrite::Create(want)]);
    };
    change.from = Some(cf_value(keep));
    // The extra records go first: a CNAME cannot be patched in while an A of the same
    // name exists, and the kept record answers throughout.
    let mut writes: Vec<CfWrite> = candidates
        .iter()
        .filter(|r| r.id != keep.id)
        .map(|r| CfWrite::Delete { id: r.id.clone() })
        .collect();
    if !cf_matches(keep, &want, cluster) {
        let mut body = want.clone();
        // A comment that already carries our marker keeps the words people added to it.
        if let Some(c) = keep.comment.as_deref() {
            if marked_for(Some(c)) == Some(cluster) {
                body.comment = c.to_string();
            }
        }
        writes.push(CfWrite::Patch {
            id: keep.id.clone(),
            body,
        });
        if keep.record_type != want.record_type {
            change.reason = Some(format!("type {} -> {}", keep.record_type, want.record_type));
        }
        if !ours.iter().any(|r| r.id == keep.id) {
            change.reason = Some("adopted (adopt = true)".into());
        }
    }
    if !writes.is_empty() {
        change.action = Action::Update;
    }
    (change, writes)
}

// ---------------------------------------------------------------- Route53
