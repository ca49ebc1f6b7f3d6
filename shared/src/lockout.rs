//! Login throttling shared by every way of signing in: per-account exponential
//! back-off and a per-IP cap on failures (password spraying). It reads only the
//! store, the limits and the time it is given.

use crate::clock::Timestamp;
use crate::config::Limits;
use crate::model::{FailureKey, Lockout, User};
use crate::store::{Decision, Lookup, Store, StoreError, StoreResult};

/// Why a login attempt may not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum LockoutError {
    /// The IP is over its failure cap, or the account (or the unknown
    /// identifier, identically) is backing off.
    #[error("too many failed sign-ins; retry in {retry_after} s")]
    Locked { retry_after: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn ip_key(ip: &str) -> String {
    format!("login-fail-ip:{ip}")
}

fn refuse(ip: Decision, lockout: Lockout, now: Timestamp) -> Result<(), LockoutError> {
    if let Decision::Refused { retry_after } = ip {
        return Err(LockoutError::Locked { retry_after });
    }
    if lockout.locked_until > now {
        return Err(LockoutError::Locked {
            retry_after: lockout.locked_until - now,
        });
    }
    Ok(())
}

/// Starts a login attempt: finds the account and refuses while the IP is over
/// its cap or the account (or the unknown identifier, identically) backs off.
pub async fn begin(
    store: &dyn Store,
    limits: &Limits,
    ip: &str,
    lookup: Lookup<'_>,
    now: Timestamp,
) -> Result<Option<User>, LockoutError> {
    let rule = &limits.ip_login_failures;
    let subject = store.login_subject(lookup, &ip_key(ip), rule, now).await?;
    refuse(subject.ip, subject.lockout, now)?;
    Ok(subject.user)
}

/// The same gate for re-checking a signed-in user's password.
pub async fn check_user(
    store: &dyn Store,
    limits: &Limits,
    ip: &str,
    user: &User,
    now: Timestamp,
) -> Result<(), LockoutError> {
    let decision = store
        .peek(&ip_key(ip), &limits.ip_login_failures, now)
        .await?;
    refuse(decision, user.lockout(), now)
}

/// Counts a failed attempt against its account (`user`, or the unknown
/// identifier of `lookup` when there is none) and against the IP.
pub async fn fail(
    store: &dyn Store,
    limits: &Limits,
    ip: &str,
    user: Option<&User>,
    lookup: Lookup<'_>,
    now: Timestamp,
) -> StoreResult<()> {
    let key = match user {
        Some(u) => FailureKey::User(u.id.clone()),
        None => FailureKey::Unknown(lookup.identifier()),
    };
    store.record_failure(&key, &limits.backoff, now).await?;
    store
        .hit(&ip_key(ip), &limits.ip_login_failures, now)
        .await?;
    Ok(())
}
