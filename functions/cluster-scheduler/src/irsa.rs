//! IRSA across rebuilds: every morning's cluster has a new OIDC issuer
//! (`https://oidc.eks.<region>.amazonaws.com/id/<ID>`), so the IAM roles its service
//! accounts assume (the blueprint's `irsa_roles`) must trust a new IAM OIDC provider.
//!
//! - Pure, tested beside the code: [`issuer_host_path`], [`provider_arn`],
//!   [`provider_host_path`], [`referenced_host_paths`] and [`rewrite_trust`], which moves a
//!   trust policy's statements from stale issuers to the new one and leaves every other
//!   statement exactly as it is.
//! - [`Iam`]: the IAM calls (create, look up and delete the OIDC provider; read and
//!   write a role's trust policy). No decisions here: which issuers are stale and which
//!   provider may be deleted are the caller's to decide.

use std::collections::HashMap;

use aws_sdk_iam::types::Tag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use fleet_shared::config::MANAGED_BY_TAG;
use fleet_shared::{FleetError, Result};
use serde_json::{Map, Value};

/// The audience EKS's projected service account tokens carry for STS.
pub const STS_AUDIENCE: &str = "sts.amazonaws.com";

/// What separates the account from the host path in an OIDC provider ARN.
const PROVIDER_MARKER: &str = ":oidc-provider/";

/// IAM's error codes (its API returns them; the shared classifier does not know them,
/// so they are matched here).
const NO_SUCH_ENTITY: &str = "NoSuchEntity";
const ENTITY_ALREADY_EXISTS: &str = "EntityAlreadyExists";

/// The host path of an OIDC issuer URL, as IAM names the provider and the condition keys:
/// `https://oidc.eks.eu-west-1.amazonaws.com/id/ABC/` ->
/// `oidc.eks.eu-west-1.amazonaws.com/id/ABC` (scheme and trailing slashes removed).
///
/// `None` when the URL is not `https://` (IAM accepts no other scheme), has no host, or
/// carries a query, fragment or whitespace (IAM accepts none of them).
pub fn issuer_host_path(issuer_url: &str) -> Option<String> {
    let scheme = issuer_url.get(..8)?;
    if !scheme.eq_ignore_ascii_case("https://") {
        return None;
    }
    let rest = issuer_url.get(8..)?.trim_end_matches('/');
    let bad = |c: char| c == '?' || c == '#' || c.is_whitespace();
    if rest.is_empty() || rest.starts_with('/') || rest.contains(bad) {
        return None;
    }
    Some(rest.to_string())
}

/// The ARN IAM gives the OIDC provider of `host_path` (from [`issuer_host_path`]) in
/// `account` (12 digits) of `partition` (`aws`, `aws-cn`, `aws-us-gov`):
/// `arn:<partition>:iam::<account>:oidc-provider/<host_path>`.
pub fn provider_arn(partition: &str, account: &str, host_path: &str) -> String {
    format!("arn:{partition}:iam::{account}{PROVIDER_MARKER}{host_path}")
}

/// The host path an OIDC provider ARN names (the text after `:oidc-provider/`), the
/// inverse of [`provider_arn`]. `None` for anything that is not such an ARN (a SAML
/// provider, `cognito-identity.amazonaws.com`) or names no host path.
pub fn provider_host_path(provider_arn: &str) -> Option<&str> {
    if !provider_arn.starts_with("arn:") {
        return None;
    }
    let (_, host_path) = provider_arn.split_once(PROVIDER_MARKER)?;
    (!host_path.is_empty()).then_some(host_path)
}

/// The role name in a role ARN: the last path segment after `role/`
/// (`arn:aws:iam::123456789012:role/irsa/lbc` -> `lbc`). `None` when it is not a role ARN.
pub fn role_name(role_arn: &str) -> Option<&str> {
    if !role_arn.starts_with("arn:") {
        return None;
    }
    let (_, path) = role_arn.split_once(":role/")?;
    path.rsplit('/').next().filter(|name| !name.is_empty())
}

/// The statements of a policy: `Statement` may be one object or an array of them (IAM
/// accepts both). Empty when there is none or it is neither.
fn statements(policy: &Value) -> Vec<&Value> {
    match policy.get("Statement") {
        Some(Value::Array(all)) => all.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => Vec::new(),
    }
}

/// A statement's `Principal.Federated` entries that are strings (IAM accepts a string or
/// an array of strings).
fn federated(statement: &Value) -> Vec<&str> {
    match statement.get("Principal").and_then(|p| p.get("Federated")) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(all)) => all.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The OIDC host paths the `Federated` principals of `policy` (a trust policy document)
/// refer to, each once, in the order they appear. For the caller to decide which are
/// stale (this cluster's previous issuers). Empty for a malformed policy.
pub fn referenced_host_paths(policy: &Value) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for statement in statements(policy) {
        for host_path in federated(statement)
            .into_iter()
            .filter_map(provider_host_path)
        {
            if !found.iter().any(|f| f == host_path) {
                found.push(host_path.to_string());
            }
        }
    }
    found
}

/// Moves `policy` (a role's trust policy document) from stale OIDC issuers to the new
/// one.
///
/// A statement is moved when its `Principal.Federated` (a string or an array of strings)
/// names an OIDC provider whose host path `stale` accepts and which is not
/// `new_host_path`. In it, those ARNs become `new_provider_arn` (dropped instead when the
/// array already names it), and in every condition operator block (`StringEquals`,
/// `StringLike`, `ForAnyValue:StringEquals`, any operator) the keys
/// `<stale host path>:<suffix>` (`sub`, `aud`, `amr`) become `<new_host_path>:<suffix>`,
/// in the same place, with the same values. Every other statement, and every other part
/// of a moved one, is kept as it is and where it is.
///
/// A statement whose `Condition`, or one of its operator blocks, is not an object is
/// left alone: what it means cannot be told, so it is not half-rewritten.
///
/// `Some(new policy)` only when something changed, else `None`: calling it again on its
/// own output gives `None`. A malformed policy (no `Statement`, a `Statement` that is not
/// an object or array) gives `None`; this never panics.
pub fn rewrite_trust(
    policy: &Value,
    stale: &dyn Fn(&str) -> bool,
    new_host_path: &str,
    new_provider_arn: &str,
) -> Option<Value> {
    let mut rewritten = policy.clone();
    match rewritten.get_mut("Statement") {
        Some(Value::Array(all)) => {
            for statement in all.iter_mut() {
                rewrite_statement(statement, stale, new_host_path, new_provider_arn);
            }
        }
        Some(statement @ Value::Object(_)) => {
            rewrite_statement(statement, stale, new_host_path, new_provider_arn);
        }
        _ => return None,
    }
    // Comparing the result, rather than tracking every edit, makes "changed" exact.
    (rewritten != *policy).then_some(rewritten)
}

/// One statement of [`rewrite_trust`], in place.
fn rewrite_statement(
    statement: &mut Value,
    stale: &dyn Fn(&str) -> bool,
    new_host_path: &str,
    new_provider_arn: &str,
) {
    let is_stale =
        |arn: &str| provider_host_path(arn).is_some_and(|hp| hp != new_host_path && stale(hp));
    let old_host_paths: Vec<String> = federated(statement)
        .into_iter()
        .filter(|arn| is_stale(arn))
        .filter_map(provider_host_path)
        .map(str::to_string)
        .collect();
    if old_host_paths.is_empty() {
        return;
    }
    // Checked before anything is touched: a malformed condition leaves the whole
    // statement as it is.
    match statement.get("Condition") {
        None => {}
        Some(Value::Object(blocks)) if blocks.values().all(Value::is_object) => {}
        Some(_) => return,
    }

    if let Some(principal) = statement
        .get_mut("Principal")
        .and_then(|p| p.get_mut("Federated"))
    {
        match principal {
            Value::String(arn) => *arn = new_provider_arn.to_string(),
            Value::Array(all) => {
                let already_new = all.iter().any(|v| v.as_str() == Some(new_provider_arn));
                let mut moved = Vec::with_capacity(all.len());
                let mut placed = already_new;
                for entry in all.drain(..) {
                    match entry.as_str() {
                        Some(arn) if is_stale(arn) => {
                            // The new ARN once, where the first stale one was.
                            if !placed {
                                moved.push(Value::String(new_provider_arn.to_string()));
                                placed = true;
                            }
                        }
                        _ => moved.push(entry),
                    }
                }
                *all = moved;
            }
            _ => {}
        }
    }

    if let Some(Value::Object(blocks)) = statement.get_mut("Condition") {
        for block in blocks.values_mut() {
            if let Value::Object(keys) = block {
                *keys = rename_keys(std::mem::take(keys), &old_host_paths, new_host_path);
            }
        }
    }
}

/// `<old>:<suffix>` keys renamed `<new>:<suffix>`, in the same order (the map keeps
/// insertion order). Should the new key be there already, the renamed one wins: it is
/// what the statement said for the issuer it trusted.
fn rename_keys(
    keys: Map<String, Value>,
    old_host_paths: &[String],
    new_host_path: &str,
) -> Map<String, Value> {
    let entries: Vec<(String, Value, bool)> = keys
        .into_iter()
        .map(|(key, value)| {
            let suffix = old_host_paths.iter().find_map(|old| {
                key.strip_prefix(old.as_str())
                    .and_then(|rest| rest.strip_prefix(':'))
            });
            match suffix {
                Some(suffix) => (format!("{new_host_path}:{suffix}"), value, true),
                None => (key, value, false),
            }
        })
        .collect();
    let targets: Vec<String> = entries
        .iter()
        .filter(|(_, _, renamed)| *renamed)
        .map(|(key, _, _)| key.clone())
        .collect();
    entries
        .into_iter()
        .filter(|(key, _, renamed)| *renamed || !targets.contains(key))
        .map(|(key, value, _)| (key, value))
        .collect()
}

/// What [`Iam::ensure_provider`] found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOutcome {
    /// The provider's ARN (`arn:aws:iam::<account>:oidc-provider/<host path>`).
    pub arn: String,
    /// Created now, or found carrying `fleet:managed-by` = this fleet's stack: the fleet's
    /// to delete when the cluster goes. `false` for a provider someone else made.
    pub made_by_fleet: bool,
}

/// IAM adapter for IRSA: OIDC providers and roles' trust policies. Errors are
/// [`FleetError::Aws`] with service `IAM` and the operation's name.
#[derive(Clone, Debug)]
pub struct Iam {
    client: aws_sdk_iam::Client,
}

impl Iam {
    /// An adapter over `client`.
    pub fn new(client: aws_sdk_iam::Client) -> Self {
        Iam { client }
    }

    /// Makes sure IAM has an OIDC provider for `issuer_url` (the cluster's
    /// `identity.oidc.issuer`) in `account` (12 digits) of `partition` (`aws`), with the
    /// audience `sts.amazonaws.com`.
    ///
    /// Creates it tagged with `tags` plus `fleet:managed-by` = `stack` (the mark that it is
    /// the fleet's to delete). If it exists already (`EntityAlreadyExists`), it is looked
    /// up and left as it is; `made_by_fleet` then says whether it carries that mark.
    ///
    /// Errors: [`FleetError::Internal`] when `issuer_url` is not an https URL;
    /// [`FleetError::Aws`] from `CreateOpenIDConnectProvider` or
    /// `GetOpenIDConnectProvider` (code `NoSuchEntity` if it vanished in between).
    pub async fn ensure_provider(
        &self,
        issuer_url: &str,
        account: &str,
        partition: &str,
        stack: &str,
        tags: &HashMap<String, String>,
    ) -> Result<ProviderOutcome> {
        let host_path = issuer_host_path(issuer_url).ok_or_else(|| {
            FleetError::Internal(format!("OIDC issuer `{issuer_url}` is not an https URL"))
        })?;
        let arn = provider_arn(partition, account, &host_path);
        let mut tags = tags.clone();
        tags.insert(MANAGED_BY_TAG.into(), stack.into());
        let mut iam_tags = Vec::with_capacity(tags.len());
        for (key, value) in tags {
            let tag = Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| FleetError::Internal(format!("IAM tag: {e}")))?;
            iam_tags.push(tag);
        }
        // No ThumbprintList: it has been optional since July 2024, and IAM verifies the
        // JWKS endpoint's TLS certificate against its own library of trusted root CAs,
        // using thumbprints only for an IdP whose certificate no such CA signed (EKS's
        // issuers chain to Amazon's public roots). Sources: the IAM API reference,
        // CreateOpenIDConnectProvider, `ThumbprintList` ("This parameter is optional")
        // and the operation's note on trusted root CAs, as quoted in aws-sdk-iam 1.133
        // (`operation/create_open_id_connect_provider/builders.rs`).
        let created = self
            .client
            .create_open_id_connect_provider()
            .url(format!("https://{host_path}"))
            .client_id_list(STS_AUDIENCE)
            .set_tags(Some(iam_tags))
            .send()
            .await;
        match created {
            Ok(out) => Ok(ProviderOutcome {
                arn: out.open_id_connect_provider_arn.unwrap_or(arn),
                made_by_fleet: true,
            }),
            Err(e) if e.code() == Some(ENTITY_ALREADY_EXISTS) => {
                let tags = self
                    .provider_tags(&arn)
                    .await?
                    .ok_or_else(|| FleetError::Aws {
                        service: "IAM",
                        operation: "GetOpenIDConnectProvider",
                        code: NO_SUCH_ENTITY.into(),
                        message: format!("{arn} existed a moment ago and is gone"),
                        kind: fleet_shared::error::AwsErrorKind::Retryable,
                    })?;
                Ok(ProviderOutcome {
                    made_by_fleet: tags.get(MANAGED_BY_TAG).map(String::as_str) == Some(stack),
                    arn,
                })
            }
            Err(e) => Err(FleetError::aws("IAM", "CreateOpenIDConnectProvider", e)),
        }
    }

    /// The tags (key to value) of the OIDC provider `arn`; `None` when there is no such
    /// provider (`NoSuchEntity`). Errors: [`FleetError::Aws`] from
    /// `GetOpenIDConnectProvider`.
    pub async fn provider_tags(&self, arn: &str) -> Result<Option<HashMap<String, String>>> {
        let got = self
            .client
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await;
        match got {
            Ok(out) => Ok(Some(
                out.tags
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| (t.key, t.value))
                    .collect(),
            )),
            Err(e) if e.code() == Some(NO_SUCH_ENTITY) => Ok(None),
            Err(e) => Err(FleetError::aws("IAM", "GetOpenIDConnectProvider", e)),
        }
    }

    /// Whether the OIDC provider `arn` exists (`NoSuchEntity`: `false`). Errors:
    /// [`FleetError::Aws`] from `GetOpenIDConnectProvider`.
    pub async fn provider_exists(&self, arn: &str) -> Result<bool> {
        Ok(self.provider_tags(arn).await?.is_some())
    }

    /// Deletes the OIDC provider `arn`; one already gone (`NoSuchEntity`) is done. Deletes
    /// whatever it is given: only a provider the fleet made (see
    /// [`ProviderOutcome::made_by_fleet`]) should be. Errors: [`FleetError::Aws`] from
    /// `DeleteOpenIDConnectProvider`.
    pub async fn delete_provider(&self, arn: &str) -> Result<()> {
        let deleted = self
            .client
            .delete_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(NO_SUCH_ENTITY) => Ok(()),
            Err(e) => Err(FleetError::aws("IAM", "DeleteOpenIDConnectProvider", e)),
        }
    }

    /// The trust policy (`AssumeRolePolicyDocument`) of the role `role_name` (a name, not
    /// an ARN: see [`role_name`]), as JSON. IAM returns it URL-encoded; a document that is
    /// already JSON is taken as it is (JSON first: decoding plain JSON would mangle a
    /// literal `%` in it).
    ///
    /// Errors: [`FleetError::Aws`] from `GetRole` (code `NoSuchEntity` for no such role);
    /// [`FleetError::Internal`] when the role has no trust policy or it is not JSON.
    pub async fn trust_policy(&self, role_name: &str) -> Result<Value> {
        let out = self
            .client
            .get_role()
            .role_name(role_name)
            .send()
            .await
            .map_err(FleetError::aws_call("IAM", "GetRole"))?;
        let document = out
            .role
            .as_ref()
            .and_then(|r| r.assume_role_policy_document())
            .ok_or_else(|| {
                FleetError::Internal(format!("IAM role `{role_name}` has no trust policy"))
            })?;
        parse_policy(document).ok_or_else(|| {
            FleetError::Internal(format!("IAM role `{role_name}`: trust policy is not JSON"))
        })
    }

    /// Replaces the trust policy of the role `role_name` with `policy` (a JSON policy
    /// document). Errors: [`FleetError::Aws`] from `UpdateAssumeRolePolicy`
    /// (`NoSuchEntity` for no such role, `MalformedPolicyDocument`).
    pub async fn update_trust(&self, role_name: &str, policy: &Value) -> Result<()> {
        self.client
            .update_assume_role_policy()
            .role_name(role_name)
            .policy_document(policy.to_string())
            .send()
            .await
            .map_err(FleetError::aws_call("IAM", "UpdateAssumeRolePolicy"))?;
        Ok(())
    }
}

/// A policy document as IAM returns it: URL-encoded JSON, or JSON.
fn parse_policy(document: &str) -> Option<Value> {
    if let Ok(policy) = serde_json::from_str(document) {
        return Some(policy);
    }
    let decoded = percent_encoding::percent_decode_str(document)
        .decode_utf8()
        .ok()?;
    serde_json::from_str(&decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OLD: &str = "oidc.eks.eu-west-1.amazonaws.com/id/OLD";
    const NEW: &str = "oidc.eks.eu-west-1.amazonaws.com/id/NEW";
    const OTHER: &str = "oidc.eks.eu-west-1.amazonaws.com/id/OTHER";
    const OLD_ARN: &str =
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/OLD";
    const NEW_ARN: &str =
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/NEW";
    const OTHER_ARN: &str =
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/OTHER";

    fn only_old(host_path: &str) -> bool {
        host_path == OLD
    }

    fn rewrite(policy: &Value) -> Option<Value> {
        rewrite_trust(policy, &only_old, NEW, NEW_ARN)
    }

    /// The IRSA statement of the AWS docs, for the issuer `host_path`.
    fn irsa_statement(host_path: &str) -> Value {
        json!({
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::123456789012:oidc-provider/{host_path}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{host_path}:sub"): "system:serviceaccount:kube-system:aws-load-balancer-controller",
                format!("{host_path}:aud"): "sts.amazonaws.com"
            }}
        })
    }

    fn ec2_statement() -> Value {
        json!({
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole"
        })
    }

    #[test]
    fn issuer_urls_become_host_paths() {
        assert_eq!(
            issuer_host_path("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC").as_deref(),
            Some("oidc.eks.eu-west-1.amazonaws.com/id/ABC")
        );
        assert_eq!(
            issuer_host_path("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC/").as_deref(),
            Some("oidc.eks.eu-west-1.amazonaws.com/id/ABC")
        );
        assert_eq!(
            issuer_host_path("HTTPS://example.com").as_deref(),
            Some("example.com")
        );
        for bad in [
            "",
            "https://",
            "https:///",
            "http://oidc.eks.eu-west-1.amazonaws.com/id/ABC",
            "oidc.eks.eu-west-1.amazonaws.com/id/ABC",
            "https://example.com/?x=1",
            "https://exa mple.com",
            "httpsé",
        ] {
            assert_eq!(issuer_host_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn provider_arns_round_trip() {
        let arn = provider_arn("aws", "123456789012", OLD);
        assert_eq!(arn, OLD_ARN);
        assert_eq!(provider_host_path(&arn), Some(OLD));
        assert_eq!(
            provider_host_path(&provider_arn("aws-cn", "1", "a.example/x")),
            Some("a.example/x")
        );
        for bad in [
            "",
            "cognito-identity.amazonaws.com",
            "arn:aws:iam::123456789012:saml-provider/okta",
            "arn:aws:iam::123456789012:oidc-provider/",
            "oidc-provider/x",
        ] {
            assert_eq!(provider_host_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn role_names_are_the_last_path_segment() {
        assert_eq!(role_name("arn:aws:iam::123456789012:role/lbc"), Some("lbc"));
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/irsa/kube-system/lbc"),
            Some("lbc")
        );
        for bad in [
            "",
            "lbc",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/irsa/",
            "arn:aws:iam::123456789012:user/lbc",
        ] {
            assert_eq!(role_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_stale_statement_moves_and_the_others_stay() {
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [ec2_statement(), irsa_statement(OLD), irsa_statement(OTHER)]
        });
        let moved = rewrite(&policy).expect("changed");
        assert_eq!(
            moved,
            json!({
                "Version": "2012-10-17",
                "Statement": [ec2_statement(), irsa_statement(NEW), irsa_statement(OTHER)]
            })
        );
        // Same keys in the same order, so the written document reads as before.
        assert_eq!(moved.to_string(), policy.to_string().replace(OLD, NEW));
        assert_eq!(rewrite(&moved), None, "idempotent");
    }

    #[test]
    fn the_aws_docs_policy_moves() {
        let policy: Value = serde_json::from_str(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/OLD"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.eu-west-1.amazonaws.com/id/OLD:sub":"system:serviceaccount:kube-system:aws-load-balancer-controller","oidc.eks.eu-west-1.amazonaws.com/id/OLD:aud":"sts.amazonaws.com"}}}]}"#).expect("json");
        let moved = rewrite(&policy).expect("changed");
        assert_eq!(
            moved.to_string(),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/NEW"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.eu-west-1.amazonaws.com/id/NEW:sub":"system:serviceaccount:kube-system:aws-load-balancer-controller","oidc.eks.eu-west-1.amazonaws.com/id/NEW:aud":"sts.amazonaws.com"}}}]}"#
        );
    }

    #[test]
    fn a_single_object_statement_moves() {
        let policy = json!({"Version": "2012-10-17", "Statement": irsa_statement(OLD)});
        assert_eq!(
            rewrite(&policy),
            Some(json!({"Version": "2012-10-17", "Statement": irsa_statement(NEW)}))
        );
    }

    #[test]
    fn federated_arrays_and_any_operator_move() {
        let policy = json!({"Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": ["cognito-identity.amazonaws.com", OLD_ARN, OTHER_ARN]},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringLike": {format!("{OLD}:sub"): "system:serviceaccount:apps:*"},
                "ForAnyValue:StringEquals": {format!("{OLD}:amr"): ["authenticated"]},
                "StringEquals": {format!("{OTHER}:aud"): "sts.amazonaws.com", "aws:SourceAccount": "123456789012"}
            }
        }]});
        let moved = rewrite(&policy).expect("changed");
        assert_eq!(
            moved,
            json!({"Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": ["cognito-identity.amazonaws.com", NEW_ARN, OTHER_ARN]},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringLike": {format!("{NEW}:sub"): "system:serviceaccount:apps:*"},
                    "ForAnyValue:StringEquals": {format!("{NEW}:amr"): ["authenticated"]},
                    "StringEquals": {format!("{OTHER}:aud"): "sts.amazonaws.com", "aws:SourceAccount": "123456789012"}
                }
            }]})
        );
        assert_eq!(rewrite(&moved), None);
    }

    #[test]
    fn an_array_naming_both_keeps_the_new_arn_once() {
        let policy = json!({"Statement": {
            "Effect": "Allow",
            "Principal": {"Federated": [NEW_ARN, OLD_ARN]},
            "Action": "sts:AssumeRoleWithWebIdentity"
        }});
        assert_eq!(
            rewrite(&policy),
            Some(json!({"Statement": {
                "Effect": "Allow",
                "Principal": {"Federated": [NEW_ARN]},
                "Action": "sts:AssumeRoleWithWebIdentity"
            }}))
        );
    }

    #[test]
    fn a_renamed_key_replaces_a_new_key_already_there() {
        let policy = json!({"Statement": {
            "Principal": {"Federated": OLD_ARN},
            "Condition": {"StringEquals": {
                format!("{NEW}:sub"): "stray",
                format!("{OLD}:sub"): "system:serviceaccount:a:b",
                "aws:PrincipalTag/team": "x"
            }}
        }});
        assert_eq!(
            rewrite(&policy),
            Some(json!({"Statement": {
                "Principal": {"Federated": NEW_ARN},
                "Condition": {"StringEquals": {
                    format!("{NEW}:sub"): "system:serviceaccount:a:b",
                    "aws:PrincipalTag/team": "x"
                }}
            }}))
        );
    }

    #[test]
    fn statements_already_on_the_new_issuer_or_not_stale_stay() {
        let policy =
            json!({"Statement": [irsa_statement(NEW), irsa_statement(OTHER), ec2_statement()]});
        assert_eq!(rewrite(&policy), None);
        // Even when `stale` says yes to everything, the new issuer is not moved to itself.
        assert_eq!(
            rewrite_trust(
                &json!({"Statement": [irsa_statement(NEW)]}),
                &|_| true,
                NEW,
                NEW_ARN
            ),
            None
        );
        // Only the names `stale` accepts are moved.
        assert_eq!(
            rewrite_trust(
                &json!({"Statement": irsa_statement(OTHER)}),
                &|hp| hp == OTHER,
                NEW,
                NEW_ARN
            ),
            Some(json!({"Statement": irsa_statement(NEW)}))
        );
    }

    #[test]
    fn malformed_policies_stay_and_never_panic() {
        let condition_not_object = json!({"Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": OLD_ARN},
            "Condition": "StringEquals"
        }]});
        let block_not_object = json!({"Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": OLD_ARN},
            "Condition": {"StringEquals": [format!("{OLD}:sub")]}
        }]});
        for policy in [
            json!({}),
            json!(null),
            json!([]),
            json!("policy"),
            json!({"Version": "2012-10-17"}),
            json!({"Statement": "Allow"}),
            json!({"Statement": 7}),
            json!({"Statement": [null, "x", 3, [], {}]}),
            json!({"Statement": [{"Principal": "*"}]}),
            json!({"Statement": [{"Principal": {"Federated": 3}}]}),
            json!({"Statement": [{"Principal": {"Federated": [3, null, {}]}}]}),
            json!({"Statement": [{"Principal": {"Federated": format!("arn:aws:iam::1:oidc-provider/")}}]}),
            condition_not_object,
            block_not_object,
        ] {
            assert_eq!(rewrite(&policy), None, "{policy}");
        }
    }

    #[test]
    fn referenced_host_paths_lists_each_once() {
        let policy = json!({"Statement": [
            irsa_statement(OLD),
            ec2_statement(),
            {"Principal": {"Federated": [OTHER_ARN, OLD_ARN, "cognito-identity.amazonaws.com"]}}
        ]});
        assert_eq!(
            referenced_host_paths(&policy),
            vec![OLD.to_string(), OTHER.to_string()]
        );
        assert_eq!(
            referenced_host_paths(&json!({"Statement": irsa_statement(NEW)})),
            vec![NEW.to_string()]
        );
        assert!(referenced_host_paths(&json!({"Statement": "x"})).is_empty());
        assert!(referenced_host_paths(&json!(null)).is_empty());
    }

    #[test]
    fn policies_are_read_encoded_or_not() {
        let plain = r#"{"Statement":[{"Condition":{"StringLike":{"k":"100%"}}}]}"#;
        let expected: Value = serde_json::from_str(plain).expect("json");
        assert_eq!(parse_policy(plain), Some(expected.clone()));
        let encoded = "%7B%22Statement%22%3A%5B%7B%22Condition%22%3A%7B%22StringLike%22%3A%7B%22k%22%3A%22100%25%22%7D%7D%7D%5D%7D";
        assert_eq!(parse_policy(encoded), Some(expected));
        assert_eq!(parse_policy("%7B"), None);
        assert_eq!(parse_policy("%FF%FE"), None);
    }
}
