//! The decisions: given a record's config, where it should point and what the provider
//! holds now, what to write. Pure functions; the adapters read and write.
//!
//! Ownership is never guessed from a TXT record. Cloudflare records carry a marker in
//! their comment; Route53 records are the fleet's when the state table says the fleet
//! created them, or when they still point at one of the cluster's past load balancers.
//! Anything else of the same name is a conflict and is left alone, unless the record's
//! config says `adopt = true`.

use fleet_shared::config::{normalize_name, DnsRecordConfig};
use serde::{Deserialize, Serialize};

use crate::target::{elb_alias_zone, elb_region, Target};

/// What the records of a cluster should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    PointAt(Target),
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    None,
    Conflict,
    /// The record cannot be written as configured (e.g. a CNAME at a zone apex): the
    /// reason says why; the sync reports it as that record's error and goes on.
    Error,
}

/// One line of the response: what happened (or, in a dry run, would happen) to a record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub provider: &'static str,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub action: Action,
    pub from: Option<String>,
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Change {
    pub fn writes(&self) -> bool {
        matches!(
            self.action,
            Action::Create | Action::Update | Action::Delete
        )
    }
}

/// The record types that point a name somewhere; a CNAME cannot share its name with them.
const ADDRESS_TYPES: [&str; 3] = ["A", "AAAA", "CNAME"];

fn same_value(a: &str, b: &str) -> bool {
    normalize_name(a) == normalize_name(b)
}

// ---------------------------------------------------------------- Cloudflare

/// A DNS record as Cloudflare lists it (only the fields the decisions need).
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
fn marked_for(comment: Option<&str>) -> Option<&str> {
    let words: Vec<&str> = comment?.split_whitespace().collect();
    if !words.contains(&"managed-by=fleet") {
        return None;
    }
    words.iter().find_map(|w| w.strip_prefix("cluster="))
}

fn cf_matches(r: &CfRecord, want: &CfRecordBody, cluster: &str) -> bool {
    r.record_type == want.record_type
        && same_value(&r.content, &want.content)
        && r.proxied == want.proxied
        // Cloudflare reports proxied records with TTL 1 whatever was sent: never compare it.
        && (want.proxied || r.ttl == want.ttl)
        && marked_for(r.comment.as_deref()) == Some(cluster)
}

fn cf_value(r: &CfRecord) -> String {
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub zone_id: String,
    pub dns_name: String,
    pub evaluate_target_health: bool,
}

/// A Route53 record set (only what the decisions need).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    pub name: String,
    pub record_type: String,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    pub alias: Option<Alias>,
    /// Weighted, latency, failover... records: never the fleet's.
    pub set_identifier: Option<String>,
}

impl RecordSet {
    /// Where it points: the alias target or its values.
    pub fn value(&self) -> String {
        match &self.alias {
            Some(a) => normalize_name(a.dns_name.trim_start_matches("dualstack.")),
            None => {
                let mut v: Vec<String> = self.values.iter().map(|v| normalize_name(v)).collect();
                v.sort();
                v.join(",")
            }
        }
    }

    fn describe(&self) -> String {
        match &self.alias {
            Some(_) => format!("{} alias {}", self.record_type, self.value()),
            None => format!("{} {}", self.record_type, self.value()),
        }
    }

    fn same_as(&self, other: &RecordSet) -> bool {
        self.record_type == other.record_type
            && self.value() == other.value()
            && match (&self.alias, &other.alias) {
                (Some(a), Some(b)) => {
                    a.zone_id == b.zone_id && a.evaluate_target_health == b.evaluate_target_health
                }
                (None, None) => self.ttl == other.ttl,
                _ => false,
            }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum R53Op {
    Create,
    Upsert,
    Delete,
}

/// Whether `batch` is already in effect among `existing` (the record sets now at its
/// names): Route53 refuses a change whose first attempt went through with only its answer
/// lost ("already exists", "not found"), and that retry has nothing left to do.
pub fn already_applied(batch: &[(R53Op, RecordSet)], existing: &[RecordSet]) -> bool {
    batch.iter().all(|(op, set)| {
        let present = existing
            .iter()
            .any(|e| normalize_name(&e.name) == normalize_name(&set.name) && e.same_as(set));
        match op {
            R53Op::Delete => !present,
            R53Op::Create | R53Op::Upsert => present,
        }
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct R53Plan {
    pub change: Change,
    /// One change batch: applied atomically by Route53.
    pub batch: Vec<(R53Op, RecordSet)>,
    /// Record in the state table that the fleet owns the record now.
    pub claim: bool,
    /// Forget the ownership (the record is gone).
    pub release: bool,
}

/// The record set the target needs: an alias A for a load balancer Route53 can alias,
/// else a CNAME (or A/AAAA for an address).
pub fn desired_set(rec: &DnsRecordConfig, target: &Target) -> RecordSet {
    let alias_zone = match target {
        Target::Hostname(h) => elb_alias_zone(h),
        Target::Ip(_) => None,
    };
    match alias_zone {
        Some(zone) => RecordSet {
            name: rec.name.clone(),
            record_type: "A".into(),
            ttl: None,
            values: vec![],
            alias: Some(Alias {
                zone_id: zone.into(),
                dns_name: target.value(),
                evaluate_target_health: rec.evaluate_target_health,
            }),
            set_identifier: None,
        },
        None => RecordSet {
            name: rec.name.clone(),
            record_type: target.record_type().into(),
            ttl: Some(i64::from(rec.effective_ttl())),
            values: vec![target.value()],
            alias: None,
            set_identifier: None,
        },
    }
}

/// Plans one Route53 record. `existing` is what a list starting at the record's name
/// returned; `owner` the state table's owner of the record; `known_targets` where the
/// cluster's records pointed before.
pub fn plan_route53(
    rec: &DnsRecordConfig,
    cluster: &str,
    goal: &Goal,
    existing: &[RecordSet],
    owner: Option<&str>,
    known_targets: &[String],
) -> R53Plan {
    let address: Vec<&RecordSet> = existing
        .iter()
        .filter(|r| {
            same_value(&r.name, &rec.name) && ADDRESS_TYPES.contains(&r.record_type.as_str())
        })
        .collect();
    let want = match goal {
        Goal::PointAt(t) => Some(desired_set(rec, t)),
        Goal::Remove => None,
    };
    let mut plan = R53Plan {
        change: Change {
            provider: "route53",
            name: rec.name.clone(),
            record_type: want
                .as_ref()
                .or(address.first().copied())
                .map(|w| w.record_type.clone())
                .unwrap_or_default(),
            action: Action::None,
            from: address.first().map(|r| r.describe()),
            to: want.as_ref().map(RecordSet::describe),
            reason: None,
        },
        batch: vec![],
        claim: false,
        release: false,
    };
    let conflict = |mut plan: R53Plan, reason: String| {
        plan.change.action = Action::Conflict;
        plan.change.reason = Some(reason);
        plan
    };
    if let Some(w) = want.as_ref().filter(|w| w.record_type == "CNAME") {
        let here = existing.iter().filter(|r| same_value(&r.name, &rec.name));
        // The apex holds the zone's SOA; Route53 refuses a CNAME there (RFC 1034 3.6.2).
        if here.clone().any(|r| r.record_type == "SOA") {
            plan.change.action = Action::Error;
            plan.change.reason = Some(match goal {
                Goal::PointAt(Target::Hostname(h)) => match elb_region(h) {
                    Some(region) => format!(
                        "the load balancer is in region `{region}`, whose Elastic Load Balancing hosted zone this version does not know, so no alias can be made, and Route53 refuses a CNAME at the zone apex {}",
                        rec.name
                    ),
                    None => format!(
                        "`{}` is not a load balancer Route53 can alias, and Route53 refuses a CNAME at the zone apex {}",
                        w.values.join(","),
                        rec.name
                    ),
                },
                _ => format!("Route53 refuses a CNAME at the zone apex {}", rec.name),
            });
            return plan;
        }
        let mut others: Vec<&str> = here
            .filter(|r| !ADDRESS_TYPES.contains(&r.record_type.as_str()))
            .map(|r| r.record_type.as_str())
            .collect();
        others.dedup();
        if !others.is_empty() {
            return conflict(
                plan,
                format!(
                    "a CNAME cannot share its name with other records ({} here)",
                    others.join(", ")
                ),
            );
        }
    }
    if address.iter().any(|r| r.set_identifier.is_some()) {
        return conflict(
            plan,
            "records with a routing policy (SetIdentifier) are not managed by the fleet".into(),
        );
    }
    let points_at_ours = |r: &&RecordSet| {
        let v = r.value();
        known_targets.iter().any(|t| same_value(t, &v))
            || want.as_ref().is_some_and(|w| w.value() == v)
    };
    let owned = match owner {
        Some(c) if c == cluster => true,
        Some(other) => {
            if want.is_some() {
                return conflict(
                    plan,
                    format!("the record belongs to fleet cluster `{other}`"),
                );
            }
            false
        }
        None => !address.is_empty() && address.iter().all(points_at_ours),
    };
    let Some(want) = want else {
        if address.is_empty() || !owned {
            plan.release = owner == Some(cluster);
            if !address.is_empty() {
                plan.change.reason = Some("not the fleet's record; left alone".into());
            }
            return plan;
        }
        plan.change.action = Action::Delete;
        plan.batch = address
            .iter()
            .map(|r| (R53Op::Delete, (*r).clone()))
            .collect();
        plan.release = true;
        return plan;
    };
    if !address.is_empty() && !owned && !rec.adopt {
        return conflict(
            plan,
            "a record of this name exists that the fleet did not create; set adopt = true to take it over"
                .into(),
        );
    }
    plan.claim = owner != Some(cluster);
    if address.is_empty() {
        plan.change.action = Action::Create;
        plan.batch = vec![(R53Op::Create, want)];
        return plan;
    }
    if address.len() == 1 && address[0].same_as(&want) {
        return plan;
    }
    // Other types go in the same batch as the new one: Route53 applies it atomically, so
    // the name never resolves to nothing, and a CNAME never meets an A of the same name.
    let mut batch: Vec<(R53Op, RecordSet)> = address
        .iter()
        .filter(|r| r.record_type != want.record_type)
        .map(|r| (R53Op::Delete, (*r).clone()))
        .collect();
    if let Some(old) = address.iter().find(|r| r.record_type != want.record_type) {
        plan.change.reason = Some(format!("type {} -> {}", old.describe(), want.record_type));
    }
    // UPSERT creates it when no record of this type exists (the list just showed every
    // type of the name, and the others are deleted in this batch). Not CREATE: moto, the
    // tests' Route53, rejects a CREATE that repeats an earlier identical one even after
    // the record was deleted, which is exactly what every morning after a maintenance
    // CNAME does.
    batch.push((R53Op::Upsert, want));
    plan.change.action = Action::Update;
    plan.batch = batch;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_shared::config::FleetConfig;

    const ELB: &str = "a1-123.eu-west-1.elb.amazonaws.com";
    const ELB2: &str = "b2-456.eu-west-1.elb.amazonaws.com";

    fn records(extra: &str) -> Vec<DnsRecordConfig> {
        let text = format!(
            r#"
[fleet]
region = "eu-west-1"
cloudflare_api_token = "t"
[[cluster]]
name = "staging"
protect = true
[cluster.blueprint]
version = "1.32"
role_arn = "arn:aws:iam::123456789012:role/eks"
subnet_ids = ["a", "b"]
[cluster.dns]
ingress_service = "ingress-nginx/controller"
[[cluster.dns.record]]
provider = "cloudflare"
zone = "example.com"
name = "app.example.com"
{extra}
[[cluster.dns.record]]
provider = "route53"
zone_id = "Z1"
name = "app.example.com"
{extra}
"#
        );
        let c = FleetConfig::parse(&text).expect("config");
        c.clusters[0].dns.clone().expect("dns").records
    }

    fn host(h: &str) -> Goal {
        Goal::PointAt(Target::Hostname(h.into()))
    }

    fn cf(id: &str, t: &str, content: &str, comment: Option<&str>) -> CfRecord {
        CfRecord {
            id: id.into(),
            name: "app.example.com".into(),
            record_type: t.into(),
            content: content.into(),
            proxied: false,
            ttl: 60,
            comment: comment.map(String::from),
        }
    }

    #[test]
    fn cloudflare_create_then_nothing() {
        let r = &records("")[0];
        let (c, w) = plan_cloudflare(r, "staging", &host(ELB), &[]);
        assert_eq!(c.action, Action::Create);
        let CfWrite::Create(body) = &w[0] else {
            panic!("{w:?}")
        };
        assert_eq!(body.comment, "managed-by=fleet cluster=staging");
        assert_eq!((body.record_type.as_str(), body.ttl), ("CNAME", 60));
        let existing = cf("1", "CNAME", ELB, Some(&marker("staging")));
        let (c, w) = plan_cloudflare(r, "staging", &host(ELB), &[existing]);
        assert_eq!((c.action, w.len()), (Action::None, 0));
    }

    #[test]
    fn cloudflare_proxied_ttl_never_flaps() {
        let mut r = records("")[0].clone();
        r.proxied = true;
        let r = &r;
        let mut existing = cf("1", "CNAME", ELB, Some(&marker("staging")));
        existing.proxied = true;
        existing.ttl = 1;
        let (c, _) = plan_cloudflare(r, "staging", &host(ELB), &[existing.clone()]);
        assert_eq!(c.action, Action::None);
        existing.ttl = 300;
        let (c, _) = plan_cloudflare(r, "staging", &host(ELB), &[existing]);
        assert_eq!(
            c.action,
            Action::None,
            "proxied TTL is Cloudflare's business"
        );
    }

    #[test]
    fn cloudflare_update_conflict_adopt() {
        let r = &records("")[0];
        let ours = cf(
            "1",
            "CNAME",
            ELB,
            Some(&format!("{} rebuilt daily", marker("staging"))),
        );
        let (c, w) = plan_cloudflare(r, "staging", &host(ELB2), &[ours]);
        assert_eq!(c.action, Action::Update);
        let CfWrite::Patch { body, .. } = &w[0] else {
            panic!("{w:?}")
        };
        assert_eq!(body.content, ELB2);
        assert!(body.comment.ends_with("rebuilt daily"));

        let foreign = cf("2", "A", "192.0.2.1", Some("hand-made"));
        let (c, w) = plan_cloudflare(r, "staging", &host(ELB), std::slice::from_ref(&foreign));
        assert_eq!((c.action, w.len()), (Action::Conflict, 0));
        let other_cluster = cf("3", "CNAME", ELB, Some(&marker("prod")));
        let (c, _) = plan_cloudflare(
            &records("adopt = true")[0],
            "staging",
            &host(ELB),
            &[other_cluster],
        );
        assert_eq!(
            c.action,
            Action::Conflict,
            "adopt never takes another cluster's record"
        );

        let (c, w) = plan_cloudflare(
            &records("adopt = true")[0],
            "staging",
            &host(ELB),
            &[foreign],
        );
        assert_eq!(c.action, Action::Update);
        let CfWrite::Patch { id, body } = &w[0] else {
            panic!("{w:?}")
        };
        assert_eq!((id.as_str(), body.record_type.as_str()), ("2", "CNAME"));
        assert_eq!(body.comment, marker("staging"));
    }

    #[test]
    fn cloudflare_remove_only_ours() {
        let r = &records("")[0];
        let foreign = cf("2", "CNAME", ELB, None);
        let (c, w) = plan_cloudflare(r, "staging", &Goal::Remove, &[foreign]);
        assert_eq!((c.action, w.len()), (Action::None, 0));
        let ours = cf("1", "CNAME", ELB, Some(&marker("staging")));
        let (c, w) = plan_cloudflare(r, "staging", &Goal::Remove, &[ours]);
        assert_eq!(c.action, Action::Delete);
        assert_eq!(w, vec![CfWrite::Delete { id: "1".into() }]);
    }

    fn alias_set(target: &str) -> RecordSet {
        RecordSet {
            name: "app.example.com.".into(),
            record_type: "A".into(),
            ttl: None,
            values: vec![],
            alias: Some(Alias {
                zone_id: "Z32O12XQLNTSW2".into(),
                dns_name: format!("{target}."),
                evaluate_target_health: true,
            }),
            set_identifier: None,
        }
    }

    #[test]
    fn route53_alias_for_load_balancers() {
        let r = &records("")[1];
        let p = plan_route53(r, "staging", &host(ELB), &[], None, &[]);
        assert_eq!(p.change.action, Action::Create);
        assert!(p.claim);
        assert_eq!(
            p.batch[0].1.alias.as_ref().map(|a| a.zone_id.as_str()),
            Some("Z32O12XQLNTSW2")
        );
        // Listed back with a trailing dot and dualstack prefix: still the same.
        let mut listed = alias_set(ELB);
        if let Some(a) = listed.alias.as_mut() {
            a.dns_name = format!("dualstack.{ELB}.");
        }
        let p = plan_route53(r, "staging", &host(ELB), &[listed], Some("staging"), &[]);
        assert_eq!(
            (p.change.action, p.batch.len(), p.claim),
            (Action::None, 0, false)
        );
    }

    fn plain_set(name: &str, record_type: &str, value: &str) -> RecordSet {
        RecordSet {
            name: name.into(),
            record_type: record_type.into(),
            ttl: Some(300),
            values: vec![value.into()],
            alias: None,
            set_identifier: None,
        }
    }

    /// Route53 refuses a CNAME at a zone apex (it holds the SOA): a load balancer whose
    /// region has no known ELB zone is an error there, naming the region; elsewhere it
    /// gets a CNAME. A CNAME beside a TXT is a conflict, never a failing write.
    #[test]
    fn route53_never_plans_a_cname_where_route53_refuses_one() {
        let r = &records("")[1];
        let unknown = "k8s-web-0123456789abcdef.elb.xx-nowhere-9.amazonaws.com";
        let apex = [
            plain_set("app.example.com", "NS", "ns-1.awsdns-01.org."),
            plain_set(
                "app.example.com",
                "SOA",
                "ns-1.awsdns-01.org. hostmaster 1 7200 900 1209600 86400",
            ),
        ];
        let p = plan_route53(r, "staging", &host(unknown), &apex, None, &[]);
        assert_eq!(p.change.action, Action::Error);
        assert!(p.batch.is_empty());
        let reason = p.change.reason.expect("reason");
        assert!(
            reason.contains("`xx-nowhere-9`") && reason.contains("zone apex"),
            "{reason}"
        );
        // Not a load balancer at all: refused at the apex too.
        let p = plan_route53(
            r,
            "staging",
            &host("maintenance.example.net"),
            &apex,
            None,
            &[],
        );
        assert_eq!(p.change.action, Action::Error);
        // A known region at the apex: an alias.
        let known = "k8s-web-0123456789abcdef.elb.ca-west-1.amazonaws.com";
        let p = plan_route53(r, "staging", &host(known), &apex, None, &[]);
        assert_eq!(p.change.action, Action::Create);
        assert_eq!(p.batch[0].1.record_type, "A");
        // Below the apex, the unknown region gets a CNAME.
        let p = plan_route53(r, "staging", &host(unknown), &[], None, &[]);
        assert_eq!(
            (p.change.action, p.batch[0].1.record_type.as_str()),
            (Action::Create, "CNAME")
        );
        // A TXT (or MX) at the name: a CNAME cannot join it.
        let txt = [plain_set("app.example.com", "TXT", "\"v=spf1 -all\"")];
        let p = plan_route53(r, "staging", &host(unknown), &txt, None, &[]);
        assert_eq!(p.change.action, Action::Conflict);
        assert!(p.change.reason.is_some_and(|r| r.contains("TXT")));
        // An alias A beside a TXT is fine.
        let p = plan_route53(r, "staging", &host(ELB), &txt, None, &[]);
        assert_eq!(p.change.action, Action::Create);
    }

    #[test]
    fn cloudflare_cname_never_joins_other_records() {
        let r = &records("")[0];
        for other in ["TXT", "MX", "CAA"] {
            let existing = [cf("9", other, "something", None)];
            let (c, w) = plan_cloudflare(r, "staging", &host(ELB), &existing);
            assert_eq!(c.action, Action::Conflict, "{other}");
            assert!(c.reason.is_some_and(|s| s.contains(other)));
            assert!(w.is_empty());
        }
        // Our CNAME already beside a TXT (Cloudflare took it): a rebuild patches it.
        let ours = cf("1", "CNAME", ELB, Some(&marker("staging")));
        let (c, w) = plan_cloudflare(
            r,
            "staging",
            &host(ELB2),
            &[ours, cf("9", "TXT", "verify", None)],
        );
        assert_eq!((c.action, w.len()), (Action::Update, 1));
        // At the zone apex CNAME flattening lets it join MX and TXT.
        let mut apex = r.clone();
        apex.name = "example.com".into();
        let mx = CfRecord {
            name: "example.com".into(),
            ..cf("8", "MX", "mail.example.net", None)
        };
        let (c, _) = plan_cloudflare(&apex, "staging", &host(ELB), &[mx]);
        assert_eq!(c.action, Action::Create);
        // An address target beside a TXT: an A record may join it.
        let ip = Goal::PointAt(Target::Ip("203.0.113.7".parse().expect("ip")));
        let (c, _) = plan_cloudflare(r, "staging", &ip, &[cf("9", "TXT", "x", None)]);
        assert_eq!(c.action, Action::Create);
    }

    #[test]
    fn route53_ownership() {
        let r = &records("")[1];
        // Pointing at a past load balancer of the cluster: ours, upserted.
        let p = plan_route53(
            r,
            "staging",
            &host(ELB2),
            &[alias_set(ELB)],
            None,
            &[ELB.into()],
        );
        assert_eq!(p.change.action, Action::Update);
        assert_eq!(p.batch[0].0, R53Op::Upsert);
        // Pointing elsewhere, never ours: a conflict, unless adopted.
        let p = plan_route53(
            r,
            "staging",
            &host(ELB2),
            &[alias_set("other.example.net")],
            None,
            &[ELB.into()],
        );
        assert_eq!(p.change.action, Action::Conflict);
        let p = plan_route53(
            &records("adopt = true")[1],
            "staging",
            &host(ELB2),
            &[alias_set("other.example.net")],
            None,
            &[],
        );
        assert_eq!((p.change.action, p.claim), (Action::Update, true));
        // Another cluster's: a conflict, even adopting.
        let p = plan_route53(
            &records("adopt = true")[1],
            "staging",
            &host(ELB2),
            &[alias_set(ELB)],
            Some("prod"),
            &[],
        );
        assert_eq!(p.change.action, Action::Conflict);
    }

    #[test]
    fn route53_type_change_is_one_batch() {
        let r = &records("")[1];
        let p = plan_route53(
            r,
            "staging",
            &host("maintenance.example.org"),
            &[alias_set(ELB)],
            Some("staging"),
            &[],
        );
        assert_eq!(p.change.action, Action::Update);
        let ops: Vec<(R53Op, &str)> = p
            .batch
            .iter()
            .map(|(op, s)| (*op, s.record_type.as_str()))
            .collect();
        assert_eq!(ops, vec![(R53Op::Delete, "A"), (R53Op::Upsert, "CNAME")]);
        assert_eq!(
            p.batch[0].1,
            alias_set(ELB),
            "the delete names the record exactly as listed"
        );
    }

    #[test]
    fn route53_remove() {
        let r = &records("")[1];
        let p = plan_route53(
            r,
            "staging",
            &Goal::Remove,
            &[alias_set(ELB)],
            Some("staging"),
            &[],
        );
        assert_eq!((p.change.action, p.release), (Action::Delete, true));
        let p = plan_route53(
            r,
            "staging",
            &Goal::Remove,
            &[alias_set("x.example.net")],
            None,
            &[],
        );
        assert_eq!((p.change.action, p.batch.len()), (Action::None, 0));
    }

    #[test]
    fn a_change_already_in_effect_is_recognized() {
        let new = alias_set(ELB);
        let old = alias_set("old-lb.eu-west-1.elb.amazonaws.com");
        let batch = [(R53Op::Delete, old.clone()), (R53Op::Upsert, new.clone())];
        assert!(already_applied(&batch, std::slice::from_ref(&new)));
        assert!(!already_applied(&batch, &[old.clone(), new.clone()]));
        assert!(!already_applied(&batch, &[]));
        assert!(already_applied(
            &[(R53Op::Create, new.clone())],
            std::slice::from_ref(&new)
        ));
        // Listed back with a trailing dot on the name: the same record.
        let mut listed = new.clone();
        listed.name = "app.example.com".into();
        assert!(already_applied(&[(R53Op::Create, new)], &[listed]));
    }
}
