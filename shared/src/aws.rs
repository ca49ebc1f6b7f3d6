//! The AWS backend's clients, configured once per cold start. They honour the
//! standard AWS configuration (region, credentials, `AWS_ENDPOINT_URL`), so the
//! same code runs against moto in tests.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::tls;
use tokio::sync::OnceCell;

use crate::config::Config;
use crate::notify::aws::AwsNotifier;
use crate::store::dynamo::DynamoStore;

/// The standard AWS configuration with [`configure`]'s timeouts and retries.
pub async fn sdk_config() -> SdkConfig {
    configure(aws_config::defaults(BehaviorVersion::latest()))
        .load()
        .await
}

/// A Lambda has seconds, not minutes: fail fast and let the client retry.
/// Three attempts of at most 1.5 s each, 4 s in all. HTTPS is rustls on ring.
pub fn configure(loader: ConfigLoader) -> ConfigLoader {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    loader
        .http_client(https)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_attempt_timeout(Duration::from_millis(1500))
                .operation_timeout(Duration::from_secs(4))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
}

/// The SDK configuration, loaded on first use and shared by the clients made
/// from it. Loading it (the credential chain builds HTTPS connectors, which
/// read the TLS trust roots) takes milliseconds a cold start need not spend
/// before its first event, nor at all for requests that never reach AWS.
#[derive(Clone)]
pub struct Sdk(Arc<OnceCell<SdkConfig>>);

impl Sdk {
    /// The standard configuration ([`sdk_config`]), loaded when first needed.
    pub fn from_env() -> Self {
        Self(Arc::new(OnceCell::new()))
    }

    /// A configuration already loaded (tests point it at moto).
    pub fn ready(sdk: SdkConfig) -> Self {
        Self(Arc::new(OnceCell::new_with(Some(sdk))))
    }

    pub async fn get(&self) -> &SdkConfig {
        self.0.get_or_init(sdk_config).await
    }
}

pub fn store(sdk: &Sdk, config: &Config) -> DynamoStore {
    DynamoStore::new(sdk.clone(), &config.table_name)
}

pub fn notifier(sdk: &Sdk, config: &Config) -> AwsNotifier {
    AwsNotifier::new(sdk.clone(), &config.sms_sender_id, &config.mail_from)
}
