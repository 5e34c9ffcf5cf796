//! `[[account]]` and where each cluster and network lives: the hub (the account and
//! region the fleet's functions run in) or a spoke account, in any region of the hub's
//! partition (README, "Accounts and regions").

use serde::Deserialize;

use crate::error::{FleetError, Result};

use super::SecretRef;

/// `[[account]]`: a spoke account the fleet reaches with the hub functions' own
/// credentials, each function assuming its own role there: `role_arn` + `-scheduler`,
/// `-drainer`, `-dns` (the roles `infra/spoke.yaml` creates).
#[derive(Debug, Clone, Deserialize)]
pub struct AccountConfig {
    /// What clusters' and networks' `account` keys name (1-64 letters, digits, `-`, `_`).
    pub name: String,
    /// The spoke roles' common ARN (`arn:aws:iam::<12 digits>:role/<name>`, the name at
    /// most 54 characters), in the hub's partition.
    pub role_arn: String,
    /// The external id the spoke role's trust requires (`ssm:` in a deployed config);
    /// sent with every `AssumeRole`.
    #[serde(default)]
    pub external_id: Option<SecretRef>,
}

impl AccountConfig {
    /// The 12-digit account id, from `role_arn` (checked at load).
    pub fn account_id(&self) -> &str {
        self.role_arn.split(':').nth(4).unwrap_or_default()
    }
}

/// Where a cluster or a network lives: a spoke account by its config name (`None`: the
/// hub's own account) and a region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Place {
    /// `[[account]].name`, or `None` for the hub's own account.
    pub account: Option<String>,
    /// The AWS region (`us-east-1`).
    pub region: String,
}

impl Place {
    /// The hub's own account in `region`.
    pub fn hub(region: impl Into<String>) -> Place {
        Place {
            account: None,
            region: region.into(),
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.account.as_deref().unwrap_or("hub"),
            self.region
        )
    }
}

/// The partition a region belongs to, by the `regionRegex` of each partition in the
/// SDK's endpoint rules (`partitions.json` of smithy-rs' `aws-sdk` endpoints): `aws`,
/// `aws-cn`, `aws-us-gov`, `aws-iso`, `aws-iso-b`, `aws-iso-e`, `aws-iso-f`, `aws-eusc`.
/// `None`: not a region name any partition knows.
pub fn partition_of(region: &str) -> Option<&'static str> {
    let parts: Vec<&str> = region.split('-').collect();
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let number = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    match parts.as_slice() {
        ["us", "gov", w, n] if word(w) && number(n) => Some("aws-us-gov"),
        ["us", "iso", w, n] if word(w) && number(n) => Some("aws-iso"),
        ["us", "isob", w, n] if word(w) && number(n) => Some("aws-iso-b"),
        ["eu", "isoe", w, n] if word(w) && number(n) => Some("aws-iso-e"),
        ["us", "isof", w, n] if word(w) && number(n) => Some("aws-iso-f"),
        ["eusc", w, n] if word(w) && number(n) => Some("aws-eusc"),
        ["cn", w, n] if word(w) && number(n) => Some("aws-cn"),
        [geo, w, n]
            if ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"].contains(geo)
                && word(w)
                && number(n) =>
        {
            Some("aws")
        }
        _ => None,
    }
}

/// The region at `key`, checked against the hub's partition: the hub's credentials
/// assume roles and sign requests in one partition only.
pub(super) fn check_region(key: &str, region: &str, hub_region: &str) -> Result<()> {
    let Some(partition) = partition_of(region) else {
        return Err(FleetError::config(
            key,
            format!("`{region}` is not an AWS region name (such as `us-east-1`)"),
        ));
    };
    let hub = partition_of(hub_region).unwrap_or("aws");
    if partition != hub {
        return Err(FleetError::config(
            key,
            format!(
                "`{region}` is in partition {partition}, the hub (fleet.region = `{hub_region}`) in {hub}: one deployment reaches one partition"
            ),
        ));
    }
    Ok(())
}

/// Checks `[[account]]`: names valid and unique, one entry per role and per account id,
/// roles in the hub's partition.
pub(super) fn validate_accounts(accounts: &[AccountConfig], hub_region: &str) -> Result<()> {
    let hub = partition_of(hub_region).unwrap_or("aws");
    let mut names = std::collections::HashSet::new();
    let mut ids = std::collections::HashMap::new();
    for (i, a) in accounts.iter().enumerate() {
        let key = |k: &str| format!("account[{i}].{k}");
        let valid = !a.name.is_empty()
            && a.name.len() <= 64
            && a.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(FleetError::config(
                key("name"),
                format!(
                    "`{}` is not a valid account name (1-64 letters, digits, - and _)",
                    a.name
                ),
            ));
        }
        if a.name == "hub" {
            return Err(FleetError::config(
                key("name"),
                "`hub` names the fleet's own account (a cluster without `account` is in it); give the spoke another name",
            ));
        }
        if !names.insert(a.name.as_str()) {
            return Err(FleetError::config(
                key("name"),
                format!("account `{}` is configured twice", a.name),
            ));
        }
        if !super::valid_role_arn(&a.role_arn) {
            return Err(FleetError::config(
                key("role_arn"),
                format!(
                    "`{}` is not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)",
                    a.role_arn
                ),
            ));
        }
        if a.role_arn.matches('/').count() > 1 {
            return Err(FleetError::config(
                key("role_arn"),
                format!(
                    "`{}` has a path: the spoke stack makes its roles at the root (arn:aws:iam::<account>:role/<name>)",
                    a.role_arn
                ),
            ));
        }
        let role_name = a.role_arn.rsplit('/').next().unwrap_or_default();
        if role_name.len() > crate::place::ACCOUNT_ROLE_NAME_MAX {
            return Err(FleetError::config(
                key("role_arn"),
                format!(
                    "the role name `{role_name}` is longer than {} characters: each function's role is <name>-scheduler, -drainer, -dns or -cost, and IAM allows 64",
                    crate::place::ACCOUNT_ROLE_NAME_MAX
                ),
            ));
        }
        let partition = a.role_arn.split(':').nth(1).unwrap_or_default();
        if partition != hub {
            return Err(FleetError::config(
                key("role_arn"),
                format!("the role is in partition {partition}, the hub (fleet.region = `{hub_region}`) in {hub}"),
            ));
        }
        if let Some(other) = ids.insert(a.account_id().to_string(), a.name.clone()) {
            return Err(FleetError::config(
                key("role_arn"),
                format!(
                    "account {} is already configured as `{other}`: one entry per account",
                    a.account_id()
                ),
            ));
        }
    }
    Ok(())
}

/// The place `account`/`region` keys at `key` name, checked: the account configured,
/// the region in the hub's partition.
pub(super) fn resolve_place(
    key: &str,
    account: Option<&str>,
    region: Option<&str>,
    accounts: &[AccountConfig],
    hub_region: &str,
) -> Result<Place> {
    if let Some(name) = account {
        if !accounts.iter().any(|a| a.name == name) {
            let known: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
            let known = if known.is_empty() {
                "no [[account]] is configured".to_string()
            } else {
                format!("configured are {}", known.join(", "))
            };
            return Err(FleetError::config(
                format!("{key}.account"),
                format!(
                    "unknown account `{name}`: {known} (leave it out for the hub's own account)"
                ),
            ));
        }
    }
    if let Some(r) = region {
        check_region(&format!("{key}.region"), r, hub_region)?;
    }
    Ok(Place {
        account: account.map(str::to_string),
        region: region.unwrap_or(hub_region).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_the_sdk_region_patterns() {
        assert_eq!(partition_of("us-east-1"), Some("aws"));
        assert_eq!(partition_of("eu-central-1"), Some("aws"));
        assert_eq!(partition_of("ap-southeast-5"), Some("aws"));
        assert_eq!(partition_of("cn-north-1"), Some("aws-cn"));
        assert_eq!(partition_of("us-gov-west-1"), Some("aws-us-gov"));
        assert_eq!(partition_of("us-isob-east-1"), Some("aws-iso-b"));
        assert_eq!(partition_of("eu-west"), None);
        assert_eq!(partition_of("xx-east-1"), None);
        assert_eq!(partition_of("us-east-1a"), None);
        assert_eq!(partition_of(""), None);
    }
}
