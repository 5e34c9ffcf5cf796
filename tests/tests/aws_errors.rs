//! Every AWS error reaches people with what AWS (or whatever answered) said: its error code
//! or HTTP status, and its message or body. Never the SDK's bare "unhandled error".

use fleet_shared::FleetError;
use fleet_tests::faults::{Fault, Faults};

async fn describe_missing_cluster() -> String {
    let eks = aws_sdk_eks::Client::new(&fleet_tests::sdk());
    let err = eks
        .describe_cluster()
        .name("no-such-cluster")
        .send()
        .await
        .expect_err("no such cluster");
    FleetError::aws("EKS", "DescribeCluster", err).to_string()
}

#[tokio::test]
async fn a_moto_error_renders_with_its_code_and_message() {
    let text = describe_missing_cluster().await;
    assert!(
        text.starts_with("EKS DescribeCluster failed: ResourceNotFoundException: "),
        "{text}"
    );
    assert!(text.contains("no-such-cluster"), "{text}");
}

/// moto answers an action it does not implement with a 500 and an HTML page.
#[tokio::test]
async fn an_answer_without_an_error_code_renders_its_status_and_body() {
    let sdk = fleet_tests::sdk()
        .into_builder()
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .build();
    let ce = aws_sdk_costexplorer::Client::new(&sdk);
    let err = ce
        .get_anomaly_monitors()
        .send()
        .await
        .expect_err("not implemented by moto");
    let text = FleetError::aws("CostExplorer", "GetAnomalyMonitors", err).to_string();
    assert!(
        text.starts_with("CostExplorer GetAnomalyMonitors failed: HTTP 500: "),
        "{text}"
    );
    assert!(text.contains("Internal Server Error"), "{text}");
    assert!(!text.contains("unhandled"), "{text}");
}

#[tokio::test]
async fn injected_faults_render_with_their_code() {
    let endpoint = fleet_tests::moto().endpoint.clone();
    for (fault, code, says) in [
        (Fault::Throttle, "ThrottlingException", "Rate exceeded"),
        (
            Fault::Unavailable,
            "HTTP 503",
            "Service Unavailable (empty body)",
        ),
        (Fault::Reset, "DispatchFailure", "dispatch failure"),
        (Fault::Lost, "DispatchFailure", "dispatch failure"),
    ] {
        let faults = Faults::default();
        faults.arm(1, fault, true);
        let text = faults.scope(&endpoint, describe_missing_cluster()).await;
        assert!(
            text.starts_with(&format!("EKS DescribeCluster failed: {code}: ")),
            "{fault:?}: {text}"
        );
        assert!(text.contains(says), "{fault:?}: {text}");
        assert!(!text.contains("unhandled"), "{fault:?}: {text}");
    }
}
