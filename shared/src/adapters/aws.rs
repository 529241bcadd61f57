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
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};

/// The roots every AWS service endpoint chains to: Amazon Trust Services' Amazon Root CA
/// 1–4 and the cross-signing Starfield Services Root Certificate Authority – G2
/// (<https://www.amazontrust.com/repository/>; SHA-256 fingerprints 8E:CD:E6:88…,
/// 1B:A5:B2:AA…, 18:CE:6C:FE…, E3:5D:28:41…, 56:8D:69:05…; valid to 2037–2040).
///
/// Why not the system store: loading and parsing it (~150 certificates) was the whole
/// difference between a function with an SDK client and one without at cold start — about
/// 6 ms of init here (README "Performance"). Trusting only the CAs AWS endpoints use is
/// also the smaller trust set. `TLS_TRUST_ROOTS=system` goes back to the system store
/// (for a TLS-inspecting proxy, say).
const AWS_ROOTS: &[u8] = include_bytes!("aws-roots.pem");

/// The trust store of every SDK client (see `AWS_ROOTS`).
fn tls_context() -> TlsContext {
    let store = match var("TLS_TRUST_ROOTS").as_deref() {
        Some("system") => TrustStore::default(),
        _ => TrustStore::empty().with_pem_certificate(AWS_ROOTS),
    };
    TlsContext::builder()
        .with_trust_store(store)
        .build()
        .unwrap_or_default()
}

/// The services this crate calls, by the suffix of their endpoint variable.
#[derive(Clone, Copy, Debug)]
pub enum Service {
    DynamoDb,
    DynamoDbStreams,
    SesV2,
    SecretsManager,
    EventBridge,
}

impl Service {
    fn env_suffix(self) -> &'static str {
        match self {
            Service::DynamoDb => "DYNAMODB",
            Service::DynamoDbStreams => "DYNAMODB_STREAMS",
            Service::SesV2 => "SESV2",
            Service::SecretsManager => "SECRETS_MANAGER",
            Service::EventBridge => "EVENTBRIDGE",
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
        .tls_context(tls_context())
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

#[cfg(test)]
mod tests {
    use base64::Engine;

    #[test]
    fn the_embedded_roots_are_the_five_aws_roots_in_valid_pem() {
        let pem = std::str::from_utf8(super::AWS_ROOTS).unwrap();
        let blocks: Vec<&str> = pem
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|b| b.split("-----END CERTIFICATE-----").next().unwrap())
            .collect();
        assert_eq!(blocks.len(), 5);
        for b in blocks {
            let der = base64::engine::general_purpose::STANDARD
                .decode(b.split_whitespace().collect::<String>())
                .unwrap();
            // An X.509 certificate: a DER SEQUENCE with a two-byte length.
            assert_eq!(&der[..2], &[0x30, 0x82]);
        }
    }
}

/// Times every call of an SDK client (all attempts and back-off included) into the
/// current request's metrics (`metrics::add_dependency`); outside a request it records
/// nothing.
#[derive(Debug)]
pub struct DependencyTimer(pub crate::metrics::Dependency);

#[derive(Debug, Clone)]
struct CallStarted(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for CallStarted {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for DependencyTimer {
    fn name(&self) -> &'static str {
        "DependencyTimer"
    }

    fn read_before_execution(
        &self,
        _ctx: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state()
            .store_put(CallStarted(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _ctx: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _rc: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(started) = cfg.load::<CallStarted>() {
            crate::metrics::add_dependency(self.0, started.0.elapsed());
        }
        Ok(())
    }
}
