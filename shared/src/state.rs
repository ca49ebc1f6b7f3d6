//! What every handler shares, built once per process (once per Lambda cold start).

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, KeySource};
use crate::keys::{KeyError, ServerKeys};
use crate::lark::LarkClient;
use crate::notify::Notifier;
use crate::password::{PasswordError, Passwords};
use crate::store::Store;
use crate::token::Tokens;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    /// The server keys in force: XSRF tokens and code digests.
    pub keys: ServerKeys,
    /// JWTs under the same keys.
    pub tokens: Tokens,
    pub passwords: Passwords,
    /// Lark sign-in's client; `None` while a setting is missing (`config.lark.missing()`).
    pub lark: Option<LarkClient>,
    /// One-time codes compared with a stored one so far ([`crate::codes::matches`]),
    /// so tests can hold guesses checked to the limits.
    pub code_comparisons: AtomicU64,
}

/// Why the state could not be built at start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl AppState {
    /// State with the keys of `KEY` and `KEY_PREVIOUS` (a configuration that
    /// names a secret needs [`with_keys`](Self::with_keys) and the keys read from it).
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let keys = match &config.key {
            KeySource::Env(ring) => ServerKeys::fixed(ring.clone()),
            KeySource::Secret { .. } => {
                return Err(KeyError("the key is in a secret: read it first".into()).into());
            }
        };
        Self::with_keys(config, keys, store, notifier, clock)
    }

    /// State with keys already had (read from a secret, or rotated by a test).
    pub fn with_keys(
        config: Config,
        keys: ServerKeys,
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let tokens = Tokens::new(&config.namespace, keys.clone());
        let passwords = Passwords::new(&config.argon2)?;
        let lark = LarkClient::new(&config.lark);
        let missing = config.lark.missing();
        if lark.is_none() && !config.lark.app_id.is_empty() {
            tracing::warn!(missing = ?missing, "Lark sign-in is off until these are set");
        }
        Ok(Self(Arc::new(Inner {
            config,
            store,
            notifier,
            clock,
            keys,
            tokens,
            passwords,
            lark,
            code_comparisons: AtomicU64::new(0),
        })))
    }

    /// State on the wall clock.
    pub fn with_system_clock(
        config: Config,
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
    ) -> Result<Self, StartError> {
        Self::new(config, store, notifier, Arc::new(SystemClock))
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
