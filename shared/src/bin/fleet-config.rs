//! `fleet-config check <file>`: the validation every function runs at cold start in Lambda
//! (unknown keys, types, values, and every secret but `pushgateway_url` an `ssm:`
//! reference: a deployed config holds no secret value), before `make deploy` stores the config (`infra/put-config.py`).
//! Prints `ok: ...` and exits 0, or the error naming the key and exits 1; 2 on bad usage.
//! (The secrets' own length is checked when the functions read them from SSM.)
//!
//! `fleet-config params <file> [<cluster name prefix>]`: the stack parameters the template
//! takes from the config, as `Key=Value` words for `sam deploy --parameter-overrides`
//! (each role's SSM parameters, the access entries' principals and policies, the Pod
//! Identity and IRSA roles, the bootstrap secrets, the Route53 zones and record names, the
//! networks' route tables, the spoke roles and accounts, the hub account's other regions),
//! of the hub's own clusters; with a prefix, every cluster name must start with it.
//!
//! `fleet-config spoke-params <file> <account name>`: the same for `infra/spoke.yaml` in
//! one `[[account]]` (its role name, regions, and what its clusters' blueprints name),
//! as `Key=Value` words; `make deploy-spoke` adds the hub's account, region and name.
//! `hub` for the account name: the hub account's regions other than the hub's (the
//! event forwarding only).

use std::collections::BTreeSet;
use std::process::ExitCode;

use fleet_shared::config::{
    check_deployed, normalize_name, secret_keys, DnsProvider, FleetConfig, SecretRef, SecretSource,
};

const USAGE: &str = "usage: fleet-config check <file.toml>\n       fleet-config params <file.toml> [<cluster name prefix>]\n       fleet-config spoke-params <file.toml> <account name | hub> [<cluster name prefix>]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `prefix` is the account's name for spoke-params.
    let (command, path, prefix, spoke_prefix) = match args.as_slice() {
        [c, p] => (c.as_str(), p, None, None),
        [c, p, prefix] if c == "params" || c == "spoke-params" => {
            (c.as_str(), p, Some(prefix.as_str()), None)
        }
        [c, p, account, prefix] if c == "spoke-params" => {
            (c.as_str(), p, Some(account.as_str()), Some(prefix.as_str()))
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            return ExitCode::from(1);
        }
    };
    // Every command is about a deployed config, which the functions read as Lambda does.
    let config = match check_deployed(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            return ExitCode::from(1);
        }
    };
    match command {
        "check" => {
            println!("ok: {path}: {} cluster(s)", config.clusters.len());
            ExitCode::SUCCESS
        }
        "spoke-params" => match check_prefix(&config, spoke_prefix)
            .and_then(|()| spoke_params(&config, prefix.unwrap_or_default()))
        {
            Ok(words) => {
                println!("{}", words.join(" "));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {path}: {e}");
                ExitCode::from(1)
            }
        },
        "params" => match params(&config, prefix) {
            Ok(words) => {
                println!("{}", words.join(" "));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {path}: {e}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The SSM parameter name of a secret reference, or `/NONE` (a literal secret is refused
/// by the functions in Lambda anyway).
fn parameter(secret: Option<&SecretRef>) -> String {
    match secret {
        Some(SecretRef::Ssm(name)) if name.starts_with('/') => name.clone(),
        Some(SecretRef::Ssm(name)) => format!("/{name}"),
        _ => "/NONE".into(),
    }
}

fn list(values: BTreeSet<String>) -> String {
    if values.is_empty() {
        "NONE".into()
    } else {
        values.into_iter().collect::<Vec<_>>().join(",")
    }
}

/// The stack parameter of each secret key.
const SECRET_PARAMETERS: [(&str, &str); 10] = [
    ("fleet.slack_webhook", "SlackWebhookParameter"),
    ("fleet.cloudflare_api_token", "CloudflareTokenParameter"),
    ("dora.webhook_secret", "GitHubSecretParameter"),
    ("dora.flux_secret", "FluxSecretParameter"),
    ("dora.flagger_token", "FlaggerTokenParameter"),
    ("dora.pushgateway_url", "PushgatewayUrlParameter"),
    ("slack.signing_secret", "SlackSigningSecretParameter"),
    ("dora.argocd_token", "ArgoCdTokenParameter"),
    ("dora.pagerduty_secret", "PagerDutySecretParameter"),
    ("dora.github_token", "GitHubTokenParameter"),
];

/// What the blueprints of the clusters in `account` (`None`: the hub's own) name, as
/// the roles' stack parameters: the cluster and node roles to pass, access entries'
/// principals and policies, Pod Identity and IRSA roles, the networks' route tables.
fn blueprint_params(config: &FleetConfig, account: Option<&str>) -> Vec<String> {
    let mut roles = BTreeSet::new();
    let mut principals = BTreeSet::new();
    let mut policies = BTreeSet::new();
    let mut pod_roles = BTreeSet::new();
    let mut irsa_roles = BTreeSet::new();
    for c in config
        .clusters
        .iter()
        .filter(|c| c.account.as_deref() == account)
    {
        roles.insert(c.blueprint.role_arn.clone());
        roles.extend(
            c.blueprint
                .nodegroups
                .iter()
                .map(|n| n.node_role_arn.clone()),
        );
        for a in &c.blueprint.access {
            principals.insert(a.principal_arn.clone());
            policies.extend(a.policy_arn("aws"));
        }
        pod_roles.extend(c.blueprint.pod_identity.iter().map(|p| p.role_arn.clone()));
        irsa_roles.extend(c.blueprint.irsa_roles.iter().cloned());
    }
    let tables = config
        .networks
        .iter()
        .filter(|n| n.account.as_deref() == account)
        .flat_map(|n| n.route_tables().map(|(_, r)| r.to_string()))
        .collect();
    vec![
        format!("BlueprintRoleArns={}", list(roles)),
        format!("AccessPrincipalArns={}", list(principals)),
        format!("AccessPolicyArns={}", list(policies)),
        format!("PodIdentityRoleArns={}", list(pod_roles)),
        format!("IrsaRoleArns={}", list(irsa_roles)),
        format!("NetworkRouteTableIds={}", list(tables)),
    ]
}

/// The regions of the clusters and networks in `account` (`None`: the hub's own).
fn regions(config: &FleetConfig, account: Option<&str>) -> BTreeSet<String> {
    let clusters = config
        .clusters
        .iter()
        .filter(|c| c.account.as_deref() == account)
        .map(|c| config.place(c).region);
    let networks = config
        .networks
        .iter()
        .filter(|n| n.account.as_deref() == account)
        .map(|n| config.network_place(n).region);
    clusters.chain(networks).collect()
}

/// The Route53 zones in `[[account]]` `account` (`zone_account`) and the record names
/// the config keeps in them.
fn zones_in(config: &FleetConfig, account: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut zones = BTreeSet::new();
    let mut names = BTreeSet::new();
    for r in config
        .clusters
        .iter()
        .flat_map(|c| c.dns.iter().flat_map(|d| d.records.iter()))
        .filter(|r| {
            r.provider == DnsProvider::Route53 && r.zone_account.as_deref() == Some(account)
        })
    {
        zones.extend(r.zone_id.clone());
        names.insert(normalize_name(&r.name));
    }
    (zones, names)
}

/// The parameters of `infra/spoke.yaml` for the hub's own account: only the forwarding
/// of the drainer's events from the regions other than the hub's where the hub account
/// has clusters or networks (the hub stack's own rules serve its region; no roles: the
/// hub's functions act in their own account with their own).
fn hub_forwarding_params(config: &FleetConfig) -> Result<Vec<String>, String> {
    let mut regions = regions(config, None);
    regions.remove(&config.fleet.region);
    if regions.is_empty() {
        return Err(format!(
            "the hub's account has clusters and networks only in {}, where the hub stack forwards its own events: no spoke stack is needed",
            config.fleet.region
        ));
    }
    Ok(vec![
        "SpokeRoleName=fleet-hub-forwarding-only".to_string(),
        format!("HubRegion={}", config.fleet.region),
        format!("EventBusName={}", config.fleet.event_bus),
        format!("Regions={}", list(regions)),
    ])
}

/// The parameters of `infra/spoke.yaml` for `[[account]]` `name`: its role name, the
/// hub's region and bus, its regions, what its blueprints name and the cluster and node
/// roles they pass.
fn spoke_params(config: &FleetConfig, name: &str) -> Result<Vec<String>, String> {
    if name == "hub" {
        return hub_forwarding_params(config);
    }
    let Some(account) = config.account(name) else {
        let known: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
        return Err(format!(
            "no [[account]] is named `{name}` (configured: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    let (zones, names) = zones_in(config, name);
    let mut regions = regions(config, Some(name));
    let holds_the_bill = config
        .cost
        .as_ref()
        .is_some_and(|c| c.account.as_deref() == Some(name));
    if regions.is_empty() && zones.is_empty() && !holds_the_bill {
        return Err(format!(
            "account `{name}` has no cluster, network or Route53 zone of the config, and is not cost.account"
        ));
    }
    if regions.is_empty() {
        // Only Route53 zones or the bill (global): the roles act in no region but the hub's.
        regions.insert(config.fleet.region.clone());
    }
    let mut words = vec![
        format!(
            "SpokeRoleName={}",
            account.role_arn.rsplit('/').next().unwrap_or_default()
        ),
        format!("HubRegion={}", config.fleet.region),
        format!("EventBusName={}", config.fleet.event_bus),
        format!("Regions={}", list(regions)),
        format!("HostedZoneIds={}", list(zones)),
        format!("Route53RecordNames={}", list(names)),
        format!("HoldsTheBill={holds_the_bill}"),
    ];
    words.extend(blueprint_params(config, Some(name)));
    Ok(words)
}

/// Every EKS name of the fleet starts with `prefix` (the stacks' `ClusterNamePrefix`): one
/// prefix for the hub and every spoke.
fn check_prefix(config: &FleetConfig, prefix: Option<&str>) -> Result<(), String> {
    if let Some(prefix) = prefix {
        // IAM binds the EKS name (the cluster's ARN), which `eks_name` may set apart.
        if let Some(c) = config
            .clusters
            .iter()
            .find(|c| !c.eks_name().starts_with(prefix))
        {
            return Err(format!(
                "cluster `{}` (EKS name `{}`) does not start with ClusterNamePrefix `{prefix}`: the functions could not touch it",
                c.name,
                c.eks_name()
            ));
        }
    }
    Ok(())
}

fn params(config: &FleetConfig, prefix: Option<&str>) -> Result<Vec<String>, String> {
    check_prefix(config, prefix)?;
    let mut zones = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut sm_secrets = BTreeSet::new();
    let mut ssm_secrets = BTreeSet::new();
    for c in &config.clusters {
        for b in &c.blueprint.bootstrap_secrets {
            match b.source() {
                // Secrets Manager appends six random characters to a secret's ARN.
                Some(SecretSource::SecretsManager(id)) if id.starts_with("arn:") => {
                    sm_secrets.insert(id.to_string())
                }
                Some(SecretSource::SecretsManager(id)) => sm_secrets.insert(format!(
                    "arn:aws:secretsmanager:{}:*:secret:{id}-??????",
                    config.fleet.region
                )),
                Some(SecretSource::Ssm(name)) => ssm_secrets.insert(format!(
                    "arn:aws:ssm:{}:*:parameter/{}",
                    config.fleet.region,
                    name.trim_start_matches('/')
                )),
                None => false,
            };
        }
        for r in c.dns.iter().flat_map(|d| d.records.iter()) {
            if r.provider == DnsProvider::Route53 {
                let Some(zone) = &r.zone_id else {
                    return Err(format!(
                        "cluster `{}`: the Route53 record {} names no zone_id: the DNS updater's role is scoped to hosted zone ids, so give it",
                        c.name, r.name
                    ));
                };
                // A zone in another account is changed with the spoke's role there.
                if r.zone_account.is_none() {
                    zones.insert(zone.clone());
                    names.insert(normalize_name(&r.name));
                }
            }
        }
    }
    let mut words: Vec<String> = secret_keys(config)
        .into_iter()
        .filter_map(|(key, secret)| {
            let (_, name) = SECRET_PARAMETERS.iter().find(|(k, _)| *k == key)?;
            Some(format!("{name}={}", parameter(secret)))
        })
        .collect();
    let mut other_regions = regions(config, None);
    other_regions.remove(&config.fleet.region);
    words.extend(blueprint_params(config, None));
    words.extend([
        format!("BootstrapSecretArns={}", list(sm_secrets)),
        format!("BootstrapParameterArns={}", list(ssm_secrets)),
        format!("HostedZoneIds={}", list(zones)),
        format!("Route53RecordNames={}", list(names)),
        format!(
            "SpokeRoleArns={}",
            list(config.accounts.iter().map(|a| a.role_arn.clone()).collect())
        ),
        format!(
            "SpokeAccountIds={}",
            list(
                config
                    .accounts
                    .iter()
                    .map(|a| a.account_id().to_string())
                    .collect()
            )
        ),
        format!("FleetRegions={}", list(other_regions)),
        format!(
            "SpokeExternalIdParameters={}",
            list(
                config
                    .accounts
                    .iter()
                    .filter_map(|a| match &a.external_id {
                        Some(SecretRef::Ssm(name)) => Some(format!(
                            "arn:aws:ssm:{}:*:parameter/{}",
                            config.fleet.region,
                            name.trim_start_matches('/')
                        )),
                        _ => None,
                    })
                    .collect()
            )
        ),
    ]);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configs_parameters() {
        let text = include_str!("../../../infra/fleet.example.toml");
        let config = FleetConfig::parse(text).expect("example");
        let words = params(&config, None).expect("params");
        assert!(
            words.contains(&"SlackWebhookParameter=/fleet/slack-webhook".to_string()),
            "{words:?}"
        );
        assert!(words.contains(&"GitHubSecretParameter=/fleet/github-webhook-secret".to_string()));
        assert!(words.contains(&"FlaggerTokenParameter=/NONE".to_string()));
        assert!(words.contains(&"HostedZoneIds=Z0123456789ABCDEFGHIJ".to_string()));
        assert!(words.contains(&"Route53RecordNames=app.example.com".to_string()));
        let has = |w: &str| words.contains(&w.to_string());
        assert!(has("AccessPrincipalArns=arn:aws:iam::123456789012:role/fleet-dns-updater,arn:aws:iam::123456789012:role/fleet-spot-drainer,arn:aws:iam::123456789012:role/karpenter-node"), "{words:?}");
        // Only the STANDARD entries have a policy.
        assert!(has("AccessPolicyArns=arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy,arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"), "{words:?}");
        assert!(has(
            "IrsaRoleArns=arn:aws:iam::123456789012:role/aws-load-balancer-controller"
        ));
        assert!(has("PodIdentityRoleArns=arn:aws:iam::123456789012:role/ebs-csi-driver,arn:aws:iam::123456789012:role/karpenter-controller"), "{words:?}");
        assert!(words.contains(&"BootstrapSecretArns=arn:aws:secretsmanager:eu-west-1:*:secret:fleet/flux-deploy-key-??????".to_string()));
        assert!(words.contains(
            &"BootstrapParameterArns=arn:aws:ssm:eu-west-1:*:parameter/fleet/sops-age-key"
                .to_string()
        ));
        assert!(params(&config, Some("prod-")).is_err());
        // Every secret key has its stack parameter.
        for (key, _) in secret_keys(&config) {
            assert!(SECRET_PARAMETERS.iter().any(|(k, _)| *k == key), "{key}");
        }
        assert!(params(&config, Some("s")).is_ok());
    }

    #[test]
    fn the_spoke_stacks_parameters() {
        let text = include_str!("../../../infra/fleet.example.toml");
        let config = FleetConfig::parse(text).expect("example");
        let words = spoke_params(&config, "production").expect("production");
        let has = |w: &str| words.contains(&w.to_string());
        assert!(has("Regions=us-east-1"), "{words:?}");
        assert!(has("HoldsTheBill=false"), "{words:?}");
        // The bill in production: its cost role may read Cost Explorer.
        let mut billed = config.clone();
        billed.cost.get_or_insert_with(Default::default).account = Some("production".into());
        assert!(spoke_params(&billed, "production")
            .expect("production")
            .contains(&"HoldsTheBill=true".to_string()));
        // The hub's account: forwarding from its regions other than the hub's only.
        let e = spoke_params(&config, "hub").expect_err("every hub cluster in the hub region");
        assert!(e.contains("no spoke stack is needed"), "{e}");
        let mut elsewhere = config.clone();
        elsewhere.clusters[0].region = Some("ap-southeast-2".into());
        let words = spoke_params(&elsewhere, "hub").expect("hub forwarding");
        assert!(
            words.contains(&"Regions=ap-southeast-2".to_string()),
            "{words:?}"
        );
        assert!(
            !words.iter().any(|w| w.starts_with("BlueprintRoleArns")),
            "{words:?}"
        );
        assert!(spoke_params(&config, "nowhere").is_err());
        // One prefix for the fleet, on EKS names.
        assert!(check_prefix(&config, Some("s")).is_ok());
        let e = check_prefix(&config, Some("prod-")).expect_err("staging");
        assert!(
            e.contains("does not start with ClusterNamePrefix `prod-`"),
            "{e}"
        );
        let mut renamed = config.clone();
        renamed.clusters[0].eks_name = Some("web".into());
        let e = check_prefix(&renamed, Some("s")).expect_err("web");
        assert!(e.contains("(EKS name `web`)"), "{e}");
        // The hub's own cluster and node roles are the hub stack's to pass.
        let words = params(&config, None).expect("params");
        assert!(
            words
                .iter()
                .any(|w| w.starts_with("BlueprintRoleArns=arn:aws:iam::123456789012:role/")),
            "{words:?}"
        );
    }
}
