//! A kubeconfig for one running cluster, as `aws eks update-kubeconfig` writes one: the
//! API server and its CA from the scheduler's status, a user that runs
//! `aws eks get-token` (client.authentication.k8s.io/v1beta1 exec) in the cluster's region.

use serde_json::json;

use crate::render::StatusRow;

/// How the user authenticates: `aws eks get-token` with these.
#[derive(Debug, Clone, Default)]
pub struct TokenOptions {
    /// `AWS_PROFILE` for `aws` (the cluster's account).
    pub aws_profile: Option<String>,
    /// `--role-arn` for `aws eks get-token`.
    pub role_arn: Option<String>,
}

/// The kubeconfig YAML for `row`; its context is named after the fleet name.
///
/// # Errors
/// The cluster has no API server now (down, or still being built): a line saying so.
pub fn kubeconfig(row: &StatusRow, token: &TokenOptions) -> Result<String, String> {
    let (Some(server), Some(ca)) = (&row.endpoint, &row.certificate_authority) else {
        return Err(format!(
            "{} has no API server now ({}; the schedule wants it {}): `fleetctl up {} --for 3h --reason …` then `fleetctl wait {}`",
            row.name, row.actual, row.desired, row.name, row.name
        ));
    };
    let region = row.region.as_deref().unwrap_or_default();
    let eks_name = row.eks_name.as_deref().unwrap_or(&row.name);
    let mut args = vec![
        "--region".to_string(),
        region.to_string(),
        "eks".into(),
        "get-token".into(),
        "--cluster-name".into(),
        eks_name.to_string(),
        "--output".into(),
        "json".into(),
    ];
    if let Some(role) = &token.role_arn {
        args.extend(["--role-arn".to_string(), role.clone()]);
    }
    let mut exec = json!({
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "aws",
        "args": args,
        "interactiveMode": "Never",
    });
    if let Some(p) = &token.aws_profile {
        exec["env"] = json!([{"name": "AWS_PROFILE", "value": p}]);
    }
    let name = &row.name;
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": name, "user": {"exec": exec}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    });
    serde_saphyr::to_string(&doc).map_err(|e| format!("kubeconfig: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(endpoint: Option<&str>) -> StatusRow {
        serde_json::from_value(json!({
            "name": "sandbox-us", "eks_name": "sandbox", "account": "production",
            "region": "us-east-1", "desired": "up", "reason": "inside uptime",
            "actual": "ACTIVE, 1 nodegroup", "endpoint": endpoint,
            "certificate_authority": endpoint.map(|_| "LS0tLS1CRUdJTg=="),
            "recorded": {"phase": "up", "announced": true}
        }))
        .expect("row")
    }

    #[test]
    fn the_user_gets_a_token_for_the_eks_name_in_its_region() {
        let yaml = kubeconfig(
            &row(Some("https://ABC.gr7.us-east-1.eks.amazonaws.com")),
            &TokenOptions {
                aws_profile: Some("production".into()),
                role_arn: None,
            },
        )
        .expect("kubeconfig");
        let doc: serde_json::Value = serde_saphyr::from_str(&yaml).expect("yaml");
        assert_eq!(doc["current-context"], "sandbox-us");
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://ABC.gr7.us-east-1.eks.amazonaws.com"
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            "LS0tLS1CRUdJTg=="
        );
        let exec = &doc["users"][0]["user"]["exec"];
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1beta1");
        assert_eq!(
            exec["args"],
            json!([
                "--region",
                "us-east-1",
                "eks",
                "get-token",
                "--cluster-name",
                "sandbox",
                "--output",
                "json"
            ])
        );
        assert_eq!(exec["env"][0]["value"], "production");
    }

    #[test]
    fn a_cluster_without_an_api_server_says_how_to_get_one() {
        let e = kubeconfig(&row(None), &TokenOptions::default()).expect_err("down");
        assert!(e.starts_with("sandbox-us has no API server now"), "{e}");
        assert!(e.contains("fleetctl up sandbox-us"), "{e}");
    }
}
