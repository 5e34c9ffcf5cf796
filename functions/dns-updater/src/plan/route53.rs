//! The Route53 plan: the change batch (alias or CNAME records), what counts as already
//! applied, and conflicts with records the fleet does not own.

use fleet_shared::config::{normalize_name, DnsRecordConfig};

use crate::target::{elb_alias_zone, elb_region, Target};

use super::*;

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
