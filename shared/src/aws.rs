//! The AWS backend's clients, configured once per cold start. They honour the
//! standard AWS configuration (region, credentials, `AWS_ENDPOINT_URL`), so the
//! same code runs against moto in tests.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_smithy_http_client::tls;
use tokio::sync::OnceCell;

use crate::clock::Timestamp;
use crate::config::{Config, KeySource, Lark};
use crate::keys::{KeyError, KeyRing, LoadKeys, ServerKeys};
use crate::notify::aws::AwsNotifier;
use crate::secret::Secret;
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

/// The server keys in a Secrets Manager secret (its JSON: [`KeyRing::from_secret`]).
pub struct SecretKeys {
    sdk: Sdk,
    id: String,
    client: OnceCell<aws_sdk_secretsmanager::Client>,
}

impl SecretKeys {
    /// The secret named `id` (its ARN or name).
    pub fn new(sdk: Sdk, id: &str) -> Self {
        Self {
            sdk,
            id: id.to_string(),
            client: OnceCell::new(),
        }
    }
}

/// The text of a secret's current version: one `GetSecretValue`. The error
/// names the secret and the cause, never a value.
async fn secret_text(client: &aws_sdk_secretsmanager::Client, id: &str) -> Result<String, String> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| format!("secret {id}: {}", DisplayErrorContext(&e)))?;
    out.secret_string()
        .map(str::to_string)
        .ok_or_else(|| format!("secret {id}: no SecretString (it must be text, not binary)"))
}

#[async_trait]
impl LoadKeys for SecretKeys {
    /// One `GetSecretValue` (its current version).
    async fn load(&self) -> Result<KeyRing, KeyError> {
        let client = self
            .client
            .get_or_init(|| async { aws_sdk_secretsmanager::Client::new(self.sdk.get().await) })
            .await;
        let text = secret_text(client, &self.id).await.map_err(KeyError)?;
        KeyRing::from_secret(&text).map_err(|e| KeyError(format!("secret {}: {}", self.id, e.0)))
    }
}

/// The Lark app secret in the Secrets Manager secret `LARK_APP_SECRET_ARN`
/// names (its text is the app secret itself), read at start. `None` without
/// one; unreadable or empty, `None` too and an error line: Lark sign-in stays
/// off and answers `LARK_DISABLED`, while every other route works.
pub async fn lark_secret(sdk: &Sdk, lark: &Lark) -> Option<Secret<String>> {
    let id = lark.app_secret_arn.as_deref()?;
    let client = aws_sdk_secretsmanager::Client::new(sdk.get().await);
    match secret_text(&client, id).await {
        Ok(text) if !text.trim().is_empty() => Some(Secret::new(text.trim().to_string())),
        Ok(_) => {
            tracing::error!(secret = id, "Lark sign-in is off: its app secret is empty");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "Lark sign-in is off: its app secret could not be read");
            None
        }
    }
}

/// The server keys `config` names: `KEY`'s, or the secret's, read now (a
/// missing, unreadable or malformed secret is an error: the start stops).
pub async fn server_keys(
    sdk: &Sdk,
    config: &Config,
    now: Timestamp,
) -> Result<ServerKeys, KeyError> {
    match &config.key {
        KeySource::Env(ring) => Ok(ServerKeys::fixed(ring.clone())),
        KeySource::Secret { id, refresh } => {
            let source = Arc::new(SecretKeys::new(sdk.clone(), id));
            ServerKeys::load(source, *refresh, now).await
        }
    }
}
