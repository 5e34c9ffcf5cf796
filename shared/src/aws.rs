//! AWS client construction and the one SSM read every function does at cold start.

use aws_config::{BehaviorVersion, Region};

/// The SDK's shared config (region, credentials, endpoint), as every handler's
/// constructor takes it.
pub use aws_config::SdkConfig;
use aws_credential_types::Credentials;

use crate::error::{FleetError, Result};

/// The SDK config every function starts from: region, credentials and endpoint from the
/// environment. `AWS_ENDPOINT_URL` (the SDK's own variable) points every client at moto.
pub async fn sdk_config_from_env() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The same config in `region`: the fleet's clusters live in `fleet.region`, whatever
/// region the function itself runs in.
pub fn in_region(base: &SdkConfig, region: &str) -> SdkConfig {
    base.to_builder()
        .region(Region::new(region.to_string()))
        .build()
}

/// A config for a local AWS emulator (moto) at `endpoint`, with throwaway credentials.
/// Used by the test support and local tools; never in Lambda.
pub fn emulator_config(endpoint: &str, region: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        // As the SDK's loader sets it: the assume-role provider needs one.
        .time_source(aws_types::sdk_config::SharedTimeSource::default())
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            Credentials::for_tests(),
        ))
        .build()
}

/// Reads one SSM parameter, decrypting SecureStrings. The value is returned to the caller
/// only; the error names the parameter, never its value.
pub async fn read_parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| FleetError::aws("SSM", "GetParameter", e))?;
    out.parameter
        .and_then(|p| p.value)
        .ok_or_else(|| FleetError::config(format!("ssm:{name}"), "the parameter has no value"))
}
