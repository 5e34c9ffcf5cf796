//! The checks a config must pass before it is deployed: [`FleetConfig::parse`], then no
//! secret written out. `fleet-config check` (before `make deploy` stores the config) and
//! `fleetctl config check` run exactly this.

use super::{FleetConfig, SecretRef};

/// Every secret key of the config with its reference (`None`: not set), in a fixed order.
pub fn secret_keys(config: &FleetConfig) -> Vec<(&'static str, Option<&SecretRef>)> {
    let dora = config.dora.as_ref();
    vec![
        ("fleet.slack_webhook", config.fleet.slack_webhook.as_ref()),
        (
            "fleet.cloudflare_api_token",
            config.fleet.cloudflare_api_token.as_ref(),
        ),
        ("dora.webhook_secret", dora.map(|d| &d.webhook_secret)),
        (
            "slack.signing_secret",
            config.slack.as_ref().map(|s| &s.signing_secret),
        ),
        (
            "dora.flux_secret",
            dora.and_then(|d| d.flux_secret.as_ref()),
        ),
        (
            "dora.flagger_token",
            dora.and_then(|d| d.flagger_token.as_ref()),
        ),
        (
            "dora.pushgateway_url",
            dora.and_then(|d| d.pushgateway_url.as_ref()),
        ),
        (
            "dora.argocd_token",
            dora.and_then(|d| d.argocd_token.as_ref()),
        ),
        (
            "dora.pagerduty_secret",
            dora.and_then(|d| d.pagerduty_secret.as_ref()),
        ),
        (
            "dora.github_token",
            dora.and_then(|d| d.github_token.as_ref()),
        ),
    ]
}

/// Parses `text` as a config the functions will read in Lambda: everything
/// [`FleetConfig::parse`] checks, and every secret (and each `[[account]]`'s
/// `external_id`) an `ssm:` parameter name, since a secret written in the config is
/// readable by everyone who can read the config. `dora.pushgateway_url` may be written out
/// (it is a secret only when its URL carries credentials).
///
/// # Errors
/// One line naming the key: `` `fleet.slack_webhook`: must be an ssm: reference … ``, or
/// the parse error.
pub fn check_deployed(text: &str) -> Result<FleetConfig, String> {
    let config = FleetConfig::parse(text).map_err(|e| e.to_string())?;
    let external_ids = config
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("account[{i}].external_id"), a.external_id.as_ref()));
    let keyed = secret_keys(&config)
        .into_iter()
        .map(|(k, s)| (k.to_string(), s))
        .chain(external_ids);
    for (key, secret) in keyed {
        let problem = match secret {
            Some(SecretRef::Literal(_)) if key != "dora.pushgateway_url" => Some(
                "must be an ssm: reference in a deployed config (a secret written in the config is readable by everyone who can read the config; put it in SSM as a SecureString and write ssm:/its/name)",
            ),
            Some(SecretRef::Ssm(name))
                if name.trim_start_matches('/').is_empty() || name.starts_with("arn:") =>
            {
                Some("ssm: takes a parameter name such as ssm:/fleet/slack-webhook (not empty, not an ARN)")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(format!("`{key}`: {problem}"));
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_passes_and_a_literal_secret_does_not() {
        let text = include_str!("../../../infra/fleet.example.toml");
        let config = check_deployed(text).expect("the example is deployable");
        assert!(!config.clusters.is_empty());
        let literal = text.replacen(
            "slack_webhook = \"ssm:",
            "slack_webhook = \"https://hooks.slack.com/x\" # \"ssm:",
            1,
        );
        assert_ne!(literal, text, "the example names its Slack webhook in SSM");
        let e = check_deployed(&literal).expect_err("literal");
        assert!(
            e.starts_with("`fleet.slack_webhook`: must be an ssm: reference"),
            "{e}"
        );
        let arn = text.replacen(
            "slack_webhook = \"ssm:",
            "slack_webhook = \"ssm:arn:aws:ssm:eu-west-1:1:parameter\" # \"",
            1,
        );
        assert!(check_deployed(&arn)
            .expect_err("arn")
            .contains("not empty, not an ARN"));
        assert!(check_deployed("[fleet]\nbogus = 1\n").is_err());
    }
}
