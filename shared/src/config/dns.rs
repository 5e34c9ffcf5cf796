//! `[cluster.dns]`: the records that follow a cluster's ingress load balancer (read by
//! the DNS updater).

use serde::Deserialize;

use crate::error::{FleetError, Result};

/// `[cluster.dns]`.
#[derive(Debug, Clone, Deserialize)]
pub struct DnsConfig {
    /// `namespace/name` of the ingress controller's LoadBalancer Service.
    pub ingress_service: ServiceRef,
    /// What the records do while the cluster is down.
    #[serde(default)]
    pub on_destroy: OnDestroy,
    /// How long one invocation waits for the Service to get its load balancer address
    /// before it fails (and EventBridge retries).
    #[serde(default = "default_ingress_wait")]
    pub ingress_wait_seconds: u32,
    /// `[[cluster.dns.record]]`: the records, each in Cloudflare or Route53.
    #[serde(default, rename = "record")]
    pub records: Vec<DnsRecordConfig>,
}

fn default_ingress_wait() -> u32 {
    120
}

/// A namespaced object name written `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ServiceRef {
    /// The namespace (`ingress-nginx`).
    pub namespace: String,
    /// The Service's name (`ingress-nginx-controller`).
    pub name: String,
}

impl TryFrom<String> for ServiceRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.split_once('/') {
            Some((ns, name)) if is_dns_label(ns) && is_dns_label(name) => Ok(ServiceRef {
                namespace: ns.into(),
                name: name.into(),
            }),
            _ => Err(format!(
                "`{s}` is not `namespace/name` of a Service (e.g. ingress-nginx/ingress-nginx-controller)"
            )),
        }
    }
}

impl std::fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What happens to a cluster's records when it is torn down.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum OnDestroy {
    /// Leave them pointing at the old (gone) load balancer.
    #[default]
    Keep,
    /// Delete the records the fleet owns.
    Delete,
    /// Point them at this hostname (a maintenance page) until the cluster is back.
    PointAt(String),
}

impl TryFrom<String> for OnDestroy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "keep" => Ok(OnDestroy::Keep),
            "delete" => Ok(OnDestroy::Delete),
            host if is_hostname(host) => Ok(OnDestroy::PointAt(normalize_name(host))),
            _ => Err(format!(
                "`{s}` is neither `keep`, `delete` nor a hostname to point the records at"
            )),
        }
    }
}

/// Where a record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsProvider {
    /// Cloudflare's DNS API (a CNAME, or A/AAAA for an IP ingress).
    Cloudflare,
    /// Route53 (an alias A record to the load balancer, or a CNAME).
    Route53,
}

impl DnsProvider {
    /// `cloudflare` or `route53`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DnsProvider::Cloudflare => "cloudflare",
            DnsProvider::Route53 => "route53",
        }
    }
}

/// `[[cluster.dns.record]]`: one record.
#[derive(Debug, Clone, Deserialize)]
pub struct DnsRecordConfig {
    /// `cloudflare` or `route53`.
    pub provider: DnsProvider,
    /// The record's fully qualified name (stored lowercase, without a trailing dot).
    #[serde(deserialize_with = "hostname")]
    pub name: String,
    /// Cloudflare: the zone's name (looked up once per cold start) ...
    #[serde(default)]
    pub zone: Option<String>,
    /// ... or its id. Route53: the hosted zone id (required).
    #[serde(default)]
    pub zone_id: Option<String>,
    /// Cloudflare only: through Cloudflare's proxy. Proxied records always use TTL 1 (auto).
    #[serde(default)]
    pub proxied: bool,
    /// Seconds; default 60 (Cloudflare: 1 = auto for proxied records).
    #[serde(default)]
    pub ttl: Option<u32>,
    /// Take over a record of this name that the fleet did not create.
    #[serde(default)]
    pub adopt: bool,
    /// Route53 alias records: let Route53 check the load balancer's health.
    #[serde(default = "yes")]
    pub evaluate_target_health: bool,
    /// Route53: wait until the change is INSYNC on every name server.
    #[serde(default)]
    pub wait_insync: bool,
    /// Route53: the `[[account]]` the hosted zone is in (a shared DNS account); absent:
    /// the hub's own. The DNS updater changes it with its spoke role there.
    #[serde(default)]
    pub zone_account: Option<String>,
}

fn yes() -> bool {
    true
}

/// TTL of records that are not proxied, unless configured: short, so a rebuild's new load
/// balancer is picked up quickly.
pub const DEFAULT_TTL: u32 = 60;

/// The longest comment Cloudflare keeps on a record on its Free plan (paid plans: 500).
/// Source: Cloudflare DNS docs, "Record attributes: Comments".
pub const CLOUDFLARE_COMMENT_MAX: usize = 100;

/// The comment marker of a Cloudflare record the fleet manages for `cluster`:
/// `managed-by=fleet cluster=<name>` (25 characters and the name).
pub fn cloudflare_marker(cluster: &str) -> String {
    format!("managed-by=fleet cluster={cluster}")
}

impl DnsRecordConfig {
    /// The TTL to write: 1 (auto) for proxied Cloudflare records, so a sync never flaps.
    pub fn effective_ttl(&self) -> u32 {
        if self.provider == DnsProvider::Cloudflare && self.proxied {
            1
        } else {
            self.ttl.unwrap_or(DEFAULT_TTL)
        }
    }
}

fn hostname<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if is_hostname(&s) {
        Ok(normalize_name(&s))
    } else {
        Err(serde::de::Error::custom(format!(
            "`{s}` is not a DNS name such as app.example.com"
        )))
    }
}

/// Lowercase, without the trailing dot: how names are compared everywhere.
pub fn normalize_name(s: &str) -> String {
    s.trim_end_matches('.').to_ascii_lowercase()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A DNS name of at least two labels; the first may be `*`.
pub fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    let labels: Vec<&str> = s.split('.').collect();
    s.len() <= 253
        && labels.len() >= 2
        && labels
            .iter()
            .enumerate()
            .all(|(i, l)| (i == 0 && *l == "*") || is_dns_label(l))
}

impl DnsConfig {
    pub(crate) fn validate(&self, key: &str) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.records.iter().enumerate() {
            let key = |k: &str| format!("{key}.record[{i}].{k}");
            if !seen.insert((r.provider, r.name.clone())) {
                return Err(FleetError::config(
                    key("name"),
                    format!(
                        "{} record `{}` is listed twice",
                        r.provider.as_str(),
                        r.name
                    ),
                ));
            }
            match r.provider {
                DnsProvider::Cloudflare => {
                    if r.zone_account.is_some() {
                        return Err(FleetError::config(
                            key("zone_account"),
                            "only Route53 zones live in an AWS account",
                        ));
                    }
                    if r.zone.is_none() && r.zone_id.is_none() {
                        return Err(FleetError::config(
                            key("zone"),
                            "missing: give the zone's name (or its `zone_id`)",
                        ));
                    }
                    if let Some(zone) = &r.zone {
                        let zone = normalize_name(zone);
                        if r.name != zone && !r.name.ends_with(&format!(".{zone}")) {
                            return Err(FleetError::config(
                                key("name"),
                                format!("`{}` is not in zone `{zone}`", r.name),
                            ));
                        }
                    }
                    match r.ttl {
                        Some(t) if r.proxied && t != 1 => {
                            return Err(FleetError::config(
                                key("ttl"),
                                "proxied records always use TTL 1 (auto); remove `ttl`",
                            ))
                        }
                        // Cloudflare's minimum is 60 s (30 s on Enterprise zones only).
                        Some(t) if t != 1 && !(60..=86400).contains(&t) => {
                            return Err(FleetError::config(
                                key("ttl"),
                                format!("{t} is out of range: 1 (auto) or 60 to 86400 seconds"),
                            ))
                        }
                        _ => {}
                    }
                }
                DnsProvider::Route53 => {
                    let ok = r.zone_id.as_deref().is_some_and(|z| {
                        !z.is_empty() && z.chars().all(|c| c.is_ascii_alphanumeric())
                    });
                    if !ok {
                        return Err(FleetError::config(
                            key("zone_id"),
                            "missing or not a hosted zone id such as Z0123456789ABCDEFGHIJ",
                        ));
                    }
                    if r.proxied {
                        return Err(FleetError::config(
                            key("proxied"),
                            "only Cloudflare records can be proxied",
                        ));
                    }
                    if r.zone_account.as_deref() == Some("") {
                        return Err(FleetError::config(
                            key("zone_account"),
                            "must name an [[account]] (leave it out for the hub's own account)",
                        ));
                    }
                    if r.ttl == Some(0) {
                        return Err(FleetError::config(key("ttl"), "must be at least 1"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether any record lives with `provider`.
    pub fn uses(&self, provider: DnsProvider) -> bool {
        self.records.iter().any(|r| r.provider == provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(is_hostname("app.example.com"));
        assert!(is_hostname("*.apps.example.com."));
        assert!(!is_hostname("example"));
        assert!(!is_hostname("a..example.com"));
        assert!(!is_hostname("a b.example.com"));
        assert_eq!(normalize_name("App.Example.COM."), "app.example.com");
    }

    #[test]
    fn on_destroy_values() {
        assert_eq!(OnDestroy::try_from("keep".to_string()), Ok(OnDestroy::Keep));
        assert_eq!(
            OnDestroy::try_from("delete".to_string()),
            Ok(OnDestroy::Delete)
        );
        assert_eq!(
            OnDestroy::try_from("Maintenance.Example.com".to_string()),
            Ok(OnDestroy::PointAt("maintenance.example.com".into()))
        );
        assert!(OnDestroy::try_from("remove".to_string()).is_err());
    }

    #[test]
    fn service_refs() {
        let s = ServiceRef::try_from("ingress-nginx/ingress-nginx-controller".to_string());
        assert_eq!(
            s.map(|s| s.to_string()).ok().as_deref(),
            Some("ingress-nginx/ingress-nginx-controller")
        );
        assert!(ServiceRef::try_from("no-namespace".to_string()).is_err());
        assert!(ServiceRef::try_from("a/b/c".to_string()).is_err());
    }

    fn parse(token: bool, dns: &str) -> crate::Result<crate::config::FleetConfig> {
        let token = if token {
            "cloudflare_api_token = \"ssm:/fleet/cf\""
        } else {
            ""
        };
        crate::config::FleetConfig::parse(&format!(
            r#"
[fleet]
region = "eu-west-1"
{token}
[[cluster]]
name = "staging"
protect = true
[cluster.blueprint]
version = "1.32"
role_arn = "arn:aws:iam::123456789012:role/eks"
subnet_ids = ["a", "b"]
[cluster.dns]
{dns}
"#
        ))
    }

    /// Every record's comment carries the marker, and Cloudflare keeps 100 characters:
    /// a cluster with Cloudflare records has a name of at most 75.
    #[test]
    fn cloudflare_markers_fit_in_a_comment() {
        let cf = "ingress_service = \"ns/svc\"\n[[cluster.dns.record]]\nprovider = \"cloudflare\"\nzone = \"example.com\"\nname = \"app.example.com\"\n";
        let named = |n: usize| {
            let text = format!(
                "[fleet]\nregion = \"eu-west-1\"\ncloudflare_api_token = \"ssm:/fleet/cf\"\n[[cluster]]\nname = \"{}\"\nprotect = true\n[cluster.blueprint]\nversion = \"1.32\"\nrole_arn = \"arn:aws:iam::123456789012:role/eks\"\nsubnet_ids = [\"a\", \"b\"]\n[cluster.dns]\n{cf}",
                "c".repeat(n)
            );
            crate::config::FleetConfig::parse(&text)
        };
        assert_eq!(
            cloudflare_marker(&"c".repeat(75)).len(),
            CLOUDFLARE_COMMENT_MAX
        );
        assert!(named(75).is_ok());
        match named(76) {
            Err(crate::FleetError::Config { key, message }) => {
                assert_eq!(key, "cluster[0].name");
                assert!(message.contains("at most 75"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    fn key_of(token: bool, dns: &str) -> String {
        match parse(token, dns) {
            Err(crate::FleetError::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cf = "ingress_service = \"ns/svc\"\n[[cluster.dns.record]]\nprovider = \"cloudflare\"\nname = \"app.example.com\"\n";
        assert_eq!(key_of(true, cf), "cluster[0].dns.record[0].zone");
        assert_eq!(
            key_of(false, &format!("{cf}zone = \"example.com\"")),
            "fleet.cloudflare_api_token"
        );
        assert_eq!(
            key_of(true, &format!("{cf}zone = \"example.org\"")),
            "cluster[0].dns.record[0].name"
        );
        assert_eq!(
            key_of(
                true,
                &format!("{cf}zone = \"example.com\"\nproxied = true\nttl = 300")
            ),
            "cluster[0].dns.record[0].ttl"
        );
        // Cloudflare's minimum TTL is 60 s (1 = auto).
        for ttl in [30, 59] {
            assert_eq!(
                key_of(true, &format!("{cf}zone = \"example.com\"\nttl = {ttl}")),
                "cluster[0].dns.record[0].ttl"
            );
        }
        assert!(parse(true, &format!("{cf}zone = \"example.com\"\nttl = 60")).is_ok());
        let r53 = "ingress_service = \"ns/svc\"\n[[cluster.dns.record]]\nprovider = \"route53\"\nname = \"app.example.com\"\n";
        assert_eq!(key_of(false, r53), "cluster[0].dns.record[0].zone_id");
        assert_eq!(
            key_of(false, &format!("{r53}zone_id = \"Z1\"\nproxied = true")),
            "cluster[0].dns.record[0].proxied"
        );
        assert_eq!(
            key_of(false, "ingress_service = \"svc\""),
            "cluster[0].dns.ingress_service"
        );
        assert_eq!(
            key_of(false, "ingress_service = \"ns/svc\"\non_destroy = \"nuke\""),
            "cluster[0].dns.on_destroy"
        );
        assert_eq!(
            key_of(false, "ingress_service = \"ns/svc\"\n[[cluster.dns.record]]\nprovider = \"bind\"\nname = \"a.b.c\""),
            "cluster[0].dns.record[0].provider"
        );
        let ok = parse(false, &format!("{r53}zone_id = \"Z1\"")).expect("valid");
        assert_eq!(
            ok.clusters[0]
                .dns
                .as_ref()
                .map(|d| d.records[0].effective_ttl()),
            Some(60)
        );
    }
}
