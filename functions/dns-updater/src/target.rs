//! Where the records should point: the ingress Service's load balancer address, and what
//! Route53 needs to alias it. Pure: the Service is read by [`crate::ingress`].

use std::net::IpAddr;

use fleet_shared::config::normalize_name;
use k8s_openapi::api::core::v1::Service;

/// What a record points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Hostname(String),
    Ip(IpAddr),
}

impl Target {
    /// The record's content: the hostname (normalized) or the address.
    pub fn value(&self) -> String {
        match self {
            Target::Hostname(h) => normalize_name(h),
            Target::Ip(ip) => ip.to_string(),
        }
    }

    /// The plain record type for this target (Route53 may use an alias A instead of CNAME).
    pub fn record_type(&self) -> &'static str {
        match self {
            Target::Hostname(_) => "CNAME",
            Target::Ip(IpAddr::V4(_)) => "A",
            Target::Ip(IpAddr::V6(_)) => "AAAA",
        }
    }
}

/// The Service's load balancer address, if it has one yet.
pub fn of_service(svc: &Service) -> Option<Target> {
    let first = svc
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?;
    if let Some(h) = first.hostname.as_deref().filter(|h| !h.is_empty()) {
        return Some(Target::Hostname(normalize_name(h)));
    }
    first
        .ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .map(Target::Ip)
}

/// The kind of Elastic Load Balancing load balancer a hostname belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElbKind {
    /// Application and Classic load balancers: `<name>-<id>.<region>.elb.amazonaws.com`.
    ApplicationOrClassic,
    /// Network load balancers: `<name>-<id>.elb.<region>.amazonaws.com`.
    Network,
}

/// Region and kind of an ELB hostname (`internal-` and `dualstack.` prefixes allowed;
/// `amazonaws.com.cn` in the China regions).
fn elb_of(hostname: &str) -> Option<(&str, ElbKind)> {
    let h = hostname.trim_end_matches('.');
    let h = h
        .strip_suffix(".amazonaws.com")
        .or_else(|| h.strip_suffix(".amazonaws.com.cn"))?;
    let labels: Vec<&str> = h.split('.').collect();
    match labels.as_slice() {
        [.., _, region, "elb"] => Some((region, ElbKind::ApplicationOrClassic)),
        [.., _, "elb", region] => Some((region, ElbKind::Network)),
        _ => None,
    }
}

/// The region of an Elastic Load Balancing hostname, whether or not its hosted zone is
/// known: `None` for any other hostname.
pub fn elb_region(hostname: &str) -> Option<&str> {
    elb_of(hostname).map(|(region, _)| region)
}

/// The canonical hosted zone of Elastic Load Balancing in each region, which a Route53
/// alias record to a load balancer names. Source: AWS General Reference, "Elastic Load
/// Balancing endpoints and quotas" (Route 53 Hosted Zone ID columns), cross-checked with
/// the Terraform AWS provider's `aws_lb_hosted_zone_id` table and external-dns's (Taipei
/// and New Zealand); last checked 2026-11-30. 38 regions. A region missing here (one
/// opened since): a record not at a zone apex then gets a CNAME, one at the apex is
/// refused with the region named (Route53 allows no CNAME there). Kept as a table rather than calling
/// ELB `DescribeLoadBalancers`, which would cost a call per sync (in the cluster's
/// account) and does not cover Classic load balancers.
const ELB_ZONES: [(&str, &str, &str); 38] = [
    // region, Application/Classic, Network
    ("af-south-1", "Z268VQBMOI5EKX", "Z203XCE67M25HM"),
    ("ap-east-1", "Z3DQVH9N71FHZ0", "Z12Y7K3UBGUAD1"),
    ("ap-east-2", "Z02789141MW7T1WBU19PO", "Z09176273OC2HWIAUNYW"),
    ("ap-northeast-1", "Z14GRHDCWA56QT", "Z31USIVHYNEOWT"),
    ("ap-northeast-2", "ZWKZPGTI48KDX", "ZIBE1TIR4HY56"),
    ("ap-northeast-3", "Z5LXEXXYW11ES", "Z1GWIQ4HH19I5X"),
    ("ap-south-1", "ZP97RAFLXTNZK", "ZVDDRBQ08TROA"),
    (
        "ap-south-2",
        "Z0173938T07WNTVAEPZN",
        "Z0711778386UTO08407HT",
    ),
    ("ap-southeast-1", "Z1LMS91P8CMLE5", "ZKVM4W9LS7TM"),
    ("ap-southeast-2", "Z1GM3OXH4ZPM65", "ZCT6FZBF4DROD"),
    (
        "ap-southeast-3",
        "Z08888821HLRG5A9ZRTER",
        "Z01971771FYVNCOVWJU1G",
    ),
    (
        "ap-southeast-4",
        "Z09517862IB2WZLPXG76F",
        "Z01156963G8MIIL7X90IV",
    ),
    (
        "ap-southeast-5",
        "Z06010284QMVVW7WO5J",
        "Z026317210H9ACVTRO6FB",
    ),
    (
        "ap-southeast-6",
        "Z023301818UFJ50CIO0MV",
        "Z01392953RKV2Q3RBP0KU",
    ),
    (
        "ap-southeast-7",
        "Z0390008CMBRTHFGWBCB",
        "Z054363131YWATEMWRG5L",
    ),
    ("ca-central-1", "ZQSVJUPU6J1EY", "Z2EPGBW3API2WT"),
    (
        "ca-west-1",
        "Z06473681N0SF6OS049SD",
        "Z02754302KBB00W2LKWZ9",
    ),
    ("cn-north-1", "Z1GDH35T77C1KE", "Z3QFB96KMJ7ED6"),
    ("cn-northwest-1", "ZM7IZAIOVVDZF", "ZQEIKTCZ8352D"),
    ("eu-central-1", "Z215JYRZR1TBD5", "Z3F0SRJ5LGBH90"),
    (
        "eu-central-2",
        "Z06391101F2ZOEP8P5EB3",
        "Z02239872DOALSIDCX66S",
    ),
    ("eu-north-1", "Z23TAZ6LKFMNIO", "Z1UDT6IFJ4EJM"),
    ("eu-south-1", "Z3ULH7SSC9OV64", "Z23146JA1KNAFP"),
    (
        "eu-south-2",
        "Z0956581394HF5D5LXGAP",
        "Z1011216NVTVYADP1SSV",
    ),
    ("eu-west-1", "Z32O12XQLNTSW2", "Z2IFOLAFXWLO4F"),
    ("eu-west-2", "ZHURV8PSTC4K8", "ZD4D7Y8KGAS4G"),
    ("eu-west-3", "Z3Q77PNBQS71R4", "Z1CMS0P5QUZ6D5"),
    (
        "il-central-1",
        "Z09170902867EHPV2DABU",
        "Z0313266YDI6ZRHTGQY4",
    ),
    (
        "me-central-1",
        "Z08230872XQRWHG2XF6I",
        "Z00282643NTTLPANJJG2P",
    ),
    ("me-south-1", "ZS929ML54UICD", "Z3QSRYVP46NYYV"),
    (
        "mx-central-1",
        "Z023552324OKD1BB28BH5",
        "Z02031231H3ID6HYJ9A7U",
    ),
    ("sa-east-1", "Z2P70J7HTTTPLU", "ZTK26PT1VY4CU"),
    ("us-east-1", "Z35SXDOTRQ7X7K", "Z26RNL4JYFTOTI"),
    ("us-east-2", "Z3AADJGX6KTTL2", "ZLMOA37VPKANP"),
    ("us-gov-east-1", "Z166TLBEWOO7G0", "Z1ZSMQQ6Q24QQ8"),
    ("us-gov-west-1", "Z33AYJ8TM3BH4J", "ZMG1MZ2THAWF1"),
    ("us-west-1", "Z368ELLRRE2KJ0", "Z24FKFUX50B4VW"),
    ("us-west-2", "Z1H1FL5HABSF5", "Z18D5FSROUN65G"),
];

/// The hosted zone to alias `hostname` with, when it is a load balancer Route53 can alias.
pub fn elb_alias_zone(hostname: &str) -> Option<&'static str> {
    let (region, kind) = elb_of(hostname)?;
    let (_, alb, nlb) = ELB_ZONES.iter().find(|(r, _, _)| *r == region)?;
    Some(match kind {
        ElbKind::ApplicationOrClassic => alb,
        ElbKind::Network => nlb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn alias_zones_by_region_and_kind() {
        assert_eq!(
            elb_alias_zone("a1b2-123456789.eu-west-1.elb.amazonaws.com"),
            Some("Z32O12XQLNTSW2")
        );
        assert_eq!(
            elb_alias_zone("internal-k8s-ingress-abc.eu-west-1.elb.amazonaws.com."),
            Some("Z32O12XQLNTSW2")
        );
        assert_eq!(
            elb_alias_zone(
                "k8s-ingressn-ingressn-0a1b2c3d4e-0123456789abcdef.elb.us-east-1.amazonaws.com"
            ),
            Some("Z26RNL4JYFTOTI")
        );
        assert_eq!(elb_alias_zone("lb.xx-nowhere-9.elb.amazonaws.com"), None);
        assert_eq!(
            elb_region("lb.xx-nowhere-9.elb.amazonaws.com"),
            Some("xx-nowhere-9")
        );
        // The regions the first table lacked, and China's own domain.
        assert_eq!(
            elb_alias_zone(
                "k8s-ingressn-ingressn-0a1b2c3d4e-0123456789abcdef.elb.ca-west-1.amazonaws.com"
            ),
            Some("Z02754302KBB00W2LKWZ9")
        );
        assert_eq!(
            elb_alias_zone("dualstack.web-1.il-central-1.elb.amazonaws.com"),
            Some("Z09170902867EHPV2DABU")
        );
        assert_eq!(
            elb_alias_zone("web-1.elb.cn-north-1.amazonaws.com.cn"),
            Some("Z3QFB96KMJ7ED6")
        );
        assert_eq!(elb_alias_zone("maintenance.example.com"), None);
    }

    #[test]
    fn the_zone_table_is_sorted_and_whole() {
        let regions: Vec<&str> = ELB_ZONES.iter().map(|(r, _, _)| *r).collect();
        let mut sorted = regions.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(regions, sorted, "sorted, once each");
        for (region, alb, nlb) in ELB_ZONES {
            for zone in [alb, nlb] {
                assert!(
                    zone.starts_with('Z')
                        && zone.len() <= 32
                        && zone.chars().all(|c| c.is_ascii_alphanumeric()),
                    "{region}: {zone}"
                );
            }
        }
    }

    #[test]
    fn service_addresses() {
        let svc = |status: serde_json::Value| -> Service {
            serde_json::from_value(json!({"metadata": {"name": "x"}, "status": status}))
                .expect("service")
        };
        assert_eq!(of_service(&svc(json!({}))), None);
        assert_eq!(
            of_service(&svc(
                json!({"loadBalancer": {"ingress": [{"hostname": "LB.example.com"}]}})
            )),
            Some(Target::Hostname("lb.example.com".into()))
        );
        let ip = of_service(&svc(
            json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}),
        ));
        assert_eq!(ip.as_ref().map(Target::record_type), Some("A"));
    }
}
