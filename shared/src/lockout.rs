//! Login throttling shared by every way of signing in: per-account exponential
//! back-off and a per-IP cap on failures (password spraying).

use crate::error::{ApiError, ApiResult};
use crate::model::{FailureKey, Lockout, User};
use crate::state::AppState;
use crate::store::{Decision, Lookup};

fn ip_key(ip: &str) -> String {
    format!("login-fail-ip:{ip}")
}

/// Whose failures count for a login attempt on `identifier` resolving to `user`.
pub fn failure_key(user: Option<&User>, identifier: &str) -> FailureKey {
    match user {
        Some(u) => FailureKey::User(u.id.clone()),
        None => FailureKey::Unknown(identifier.to_lowercase()),
    }
}

fn refuse(ip: Decision, lockout: Lockout, now: i64) -> ApiResult<()> {
    if let Decision::Refused { retry_after } = ip {
        return Err(ApiError::TooManyRequests { retry_after });
    }
    if lockout.locked_until > now {
        return Err(ApiError::TooManyRequests {
            retry_after: lockout.locked_until - now,
        });
    }
    Ok(())
}

/// Starts a login attempt: finds the account and refuses (429) while the IP is
/// over its cap or the account (or the unknown identifier, identically) backs off.
pub async fn begin(state: &AppState, ip: &str, lookup: Lookup<'_>) -> ApiResult<Option<User>> {
    let now = state.now();
    let rule = &state.config.limits.ip_login_failures;
    let subject = state
        .store
        .login_subject(lookup, &ip_key(ip), rule, now)
        .await?;
    refuse(subject.ip, subject.lockout, now)?;
    Ok(subject.user)
}

/// The same gate for re-checking a signed-in user's password.
pub async fn check_user(state: &AppState, ip: &str, user: &User) -> ApiResult<()> {
    let now = state.now();
    let rule = &state.config.limits.ip_login_failures;
    let decision = state.store.peek(&ip_key(ip), rule, now).await?;
    let lockout = user.lockout();
    refuse(decision, lockout, now)
}

/// Counts a failed attempt against the account (or identifier) and the IP,
/// then answers with `error` (or 503 if it could not be counted).
pub async fn fail(state: &AppState, ip: &str, key: &FailureKey, error: ApiError) -> ApiError {
    let now = state.now();
    let limits = &state.config.limits;
    let counted = async {
        state
            .store
            .record_failure(key, &limits.backoff, now)
            .await?;
        state
            .store
            .hit(&ip_key(ip), &limits.ip_login_failures, now)
            .await
    };
    match counted.await {
        Ok(_) => error,
        Err(e) => e.into(),
    }
}
