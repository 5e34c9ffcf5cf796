//! The decisions: given a record's config, where it should point and what the provider
//! holds now, what to write. Pure functions; the adapters read and write.
//!
//! Ownership is never guessed from a TXT record. Cloudflare records carry a marker in
//! their comment; Route53 records are the fleet's when the state table says the fleet
//! created them, or when they still point at one of the cluster's past load balancers.
//! Anything else of the same name is a conflict and is left alone, unless the record's
//! config says `adopt = true`.

use fleet_shared::config::normalize_name;
use serde::Serialize;

use crate::target::Target;

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
mod cloudflare;
mod route53;

pub use cloudflare::*;
pub use route53::*;

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_shared::config::{DnsRecordConfig, FleetConfig};

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
