//! The IRSA adapter (`cluster_scheduler::irsa`) against moto's IAM: a morning's new OIDC
//! provider (made once, found again), a role's trust moved from yesterday's issuer to it
//! with every other statement kept, a role of another cluster left alone, yesterday's
//! provider deleted (twice), a provider someone else made, and IAM's errors.

use std::collections::HashMap;

use cluster_scheduler::irsa::{self, Iam};
use fleet_shared::config::{CLUSTER_TAG, MANAGED_BY_TAG};
use serde_json::{json, Value};

const STACK: &str = "fleet-test";
/// moto's account.
const ACCOUNT: &str = "123456789012";

/// An EKS issuer URL with a fresh id (providers are account-wide; tests run in parallel).
fn issuer(label: &str) -> String {
    format!(
        "https://oidc.eks.eu-west-1.amazonaws.com/id/{}",
        fleet_tests::unique(label)
    )
}

fn host_path(issuer_url: &str) -> String {
    irsa::issuer_host_path(issuer_url).expect("https issuer")
}

/// The trust statement of the AWS docs for IRSA (the load balancer controller's role).
fn irsa_statement(account: &str, host_path: &str) -> Value {
    json!({
        "Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{account}:oidc-provider/{host_path}")},
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

/// A role trusting `policy`, under a path (as IRSA roles often are); its ARN.
async fn role(iam: &aws_sdk_iam::Client, policy: &Value) -> String {
    let out = iam
        .create_role()
        .role_name(fleet_tests::unique("irsa"))
        .path("/irsa/")
        .assume_role_policy_document(policy.to_string())
        .send()
        .await
        .expect("create role");
    out.role.expect("role").arn
}

/// The account of an IAM ARN (`arn:aws:iam::<account>:...`).
fn account_of(arn: &str) -> String {
    arn.split(':').nth(4).expect("account").to_string()
}

fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_rebuilt_clusters_roles_move_to_its_new_issuer() {
    let client = aws_sdk_iam::Client::new(&fleet_tests::sdk());
    let iam = Iam::new(client.clone());
    let (old, new, other) = (issuer("OLD"), issuer("NEW"), issuer("OTHER"));
    let (old_hp, new_hp, other_hp) = (host_path(&old), host_path(&new), host_path(&other));

    // Yesterday's provider, as the fleet made it.
    let old_arn = iam
        .ensure_provider(&old, ACCOUNT, "aws", STACK, &HashMap::new())
        .await
        .expect("old provider")
        .arn;

    // Role 1 trusts yesterday's issuer of this cluster, EC2 and another cluster's issuer;
    // role 2 trusts only the other cluster.
    let trust1 = |account: &str| {
        json!({"Version": "2012-10-17", "Statement": [
            irsa_statement(account, &old_hp),
            ec2_statement(),
            irsa_statement(account, &other_hp),
        ]})
    };
    let trust2 = |account: &str| json!({"Version": "2012-10-17", "Statement": irsa_statement(account, &other_hp)});
    let role1_arn = role(&client, &trust1(ACCOUNT)).await;
    let account = account_of(&role1_arn);
    assert_eq!(account, ACCOUNT);
    assert_eq!(
        irsa::provider_arn("aws", &account, &old_hp),
        old_arn,
        "the ARN IAM gives is the computed one"
    );
    let role2_arn = role(&client, &trust2(&account)).await;
    let role1 = irsa::role_name(&role1_arn).expect("role name");
    let role2 = irsa::role_name(&role2_arn).expect("role name");

    // This morning's provider: made once, found the second time.
    let cluster_tags = tags(&[(CLUSTER_TAG, "alpha")]);
    let first = iam
        .ensure_provider(&new, &account, "aws", STACK, &cluster_tags)
        .await
        .expect("new provider");
    assert!(first.made_by_fleet);
    assert_eq!(first.arn, irsa::provider_arn("aws", &account, &new_hp));
    let again = iam
        .ensure_provider(&new, &account, "aws", STACK, &cluster_tags)
        .await
        .expect("new provider again");
    assert_eq!(again, first, "idempotent");
    let made = iam
        .provider_tags(&first.arn)
        .await
        .expect("tags")
        .expect("exists");
    assert_eq!(made.get(CLUSTER_TAG).map(String::as_str), Some("alpha"));
    assert_eq!(made.get(MANAGED_BY_TAG).map(String::as_str), Some(STACK));
    assert!(iam.provider_exists(&first.arn).await.expect("exists"));

    // Role 1 moves: read (IAM returns it URL-encoded), rewritten, written, read back.
    // moto, like IAM, returns the document URL-encoded: the decoding is what is tested.
    let raw = client
        .get_role()
        .role_name(role1)
        .send()
        .await
        .expect("get role")
        .role
        .and_then(|r| r.assume_role_policy_document)
        .expect("document");
    assert!(raw.starts_with("%7B"), "{raw}");
    let read = iam.trust_policy(role1).await.expect("trust 1");
    assert_eq!(read, trust1(&account), "read as written");
    assert_eq!(
        irsa::referenced_host_paths(&read),
        vec![old_hp.clone(), other_hp.clone()]
    );
    let stale = |hp: &str| hp == old_hp;
    let moved = irsa::rewrite_trust(&read, &stale, &new_hp, &first.arn).expect("changed");
    iam.update_trust(role1, &moved).await.expect("update trust");
    let back = iam.trust_policy(role1).await.expect("trust 1 again");
    assert_eq!(
        back,
        json!({"Version": "2012-10-17", "Statement": [
            irsa_statement(&account, &new_hp),
            ec2_statement(),
            irsa_statement(&account, &other_hp),
        ]})
    );
    assert_eq!(
        irsa::rewrite_trust(&back, &stale, &new_hp, &first.arn),
        None,
        "nothing left to move"
    );

    // Role 2 names no stale issuer: nothing to write, and it is as it was.
    let read2 = iam.trust_policy(role2).await.expect("trust 2");
    assert_eq!(
        irsa::rewrite_trust(&read2, &stale, &new_hp, &first.arn),
        None
    );
    assert_eq!(read2, trust2(&account));

    // Yesterday's provider goes; deleting it again is done.
    assert!(iam.provider_exists(&old_arn).await.expect("exists"));
    iam.delete_provider(&old_arn).await.expect("delete");
    assert!(!iam.provider_exists(&old_arn).await.expect("gone"));
    iam.delete_provider(&old_arn).await.expect("delete again");
    assert_eq!(iam.provider_tags(&old_arn).await.expect("gone"), None);
    assert!(iam
        .provider_exists(&first.arn)
        .await
        .expect("today's stays"));
}

#[tokio::test]
async fn a_provider_someone_else_made_is_found_and_not_the_fleets() {
    let client = aws_sdk_iam::Client::new(&fleet_tests::sdk());
    let iam = Iam::new(client.clone());
    let url = issuer("THEIRS");
    let arn = client
        .create_open_id_connect_provider()
        .url(&url)
        .client_id_list("sts.amazonaws.com")
        .send()
        .await
        .expect("their provider")
        .open_id_connect_provider_arn
        .expect("arn");
    let found = iam
        .ensure_provider(&url, ACCOUNT, "aws", STACK, &HashMap::new())
        .await
        .expect("found");
    assert_eq!(found.arn, arn);
    assert!(!found.made_by_fleet);
    // Another fleet's mark is not this fleet's either.
    let url = issuer("OTHER-FLEET");
    iam.ensure_provider(&url, ACCOUNT, "aws", "other-fleet", &HashMap::new())
        .await
        .expect("other fleet's");
    let found = iam
        .ensure_provider(&url, ACCOUNT, "aws", STACK, &HashMap::new())
        .await
        .expect("found");
    assert!(!found.made_by_fleet);
}

#[tokio::test]
async fn iam_errors_are_named() {
    let iam = Iam::new(aws_sdk_iam::Client::new(&fleet_tests::sdk()));
    let e = iam
        .trust_policy(&fleet_tests::unique("no-such-role"))
        .await
        .expect_err("no role");
    assert!(
        matches!(&e, fleet_shared::FleetError::Aws { service: "IAM", operation: "GetRole", code, .. } if code == "NoSuchEntity"),
        "{e}"
    );
    let e = iam
        .update_trust(
            &fleet_tests::unique("no-such-role"),
            &json!({"Statement": []}),
        )
        .await
        .expect_err("no role");
    assert!(e.to_string().contains("UpdateAssumeRolePolicy"), "{e}");
    let e = iam
        .ensure_provider(
            "http://oidc.example.com",
            ACCOUNT,
            "aws",
            STACK,
            &HashMap::new(),
        )
        .await
        .expect_err("not https");
    assert!(e.to_string().contains("not an https URL"), "{e}");
}
