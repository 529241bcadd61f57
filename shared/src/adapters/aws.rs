//! AWS SDK configuration shared by every adapter: rustls with ring (no aws-lc C build,
//! which keeps cross-compiling to arm64 simple), short timeouts so a stuck dependency
//! becomes a quick 503, and the environment Lambda gives a function.
//!
//! Not `aws_config::defaults(..).load()`: its default credential chain (profile files, SSO,
//! web identity through STS, ECS, IMDS) is linked into every binary that calls it, about
//! 1 MB per function, and a Lambda function only ever uses the first link of that chain,
//! the execution role's keys in `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//! `AWS_SESSION_TOKEN`. So: region from `AWS_REGION`, credentials from aws-config's own
//! `EnvironmentVariableCredentialsProvider`, and the standard endpoint overrides
//! (`AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`) that point the SDK at the local
//! emulators.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// The services this crate calls, by the suffix of their endpoint variable.
#[derive(Clone, Copy, Debug)]
pub enum Service {
    DynamoDb,
    DynamoDbStreams,
    SesV2,
    SecretsManager,
}

impl Service {
    fn env_suffix(self) -> &'static str {
        match self {
            Service::DynamoDb => "DYNAMODB",
            Service::DynamoDbStreams => "DYNAMODB_STREAMS",
            Service::SesV2 => "SESV2",
            Service::SecretsManager => "SECRETS_MANAGER",
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The endpoint override for `service`, as the SDK's environment convention names it.
pub fn endpoint_override(service: Service) -> Option<String> {
    var(&format!("AWS_ENDPOINT_URL_{}", service.env_suffix())).or_else(|| var("AWS_ENDPOINT_URL"))
}

pub fn sdk_config(service: Service) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(
            var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .map(Region::new),
        )
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(http)
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        );
    if let Some(url) = endpoint_override(service) {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}
