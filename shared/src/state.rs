//! What every handler shares, built once per process (once per Lambda cold start).

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::crypto::Keys;
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
    pub keys: Keys,
    pub tokens: Tokens,
    pub passwords: Passwords,
    /// One-time codes compared with a stored one so far ([`crate::codes::matches`]),
    /// so tests can hold guesses checked to the limits.
    pub code_comparisons: AtomicU64,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PasswordError> {
        let keys = Keys::derive(config.key.expose());
        let tokens = Tokens::new(&config.namespace, keys.jwt.expose());
        let passwords = Passwords::new(&config.argon2)?;
        Ok(Self(Arc::new(Inner {
            config,
            store,
            notifier,
            clock,
            keys,
            tokens,
            passwords,
            code_comparisons: AtomicU64::new(0),
        })))
    }

    /// State on the wall clock.
    pub fn with_system_clock(
        config: Config,
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
    ) -> Result<Self, PasswordError> {
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
