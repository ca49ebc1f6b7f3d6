//! Login throttling shared by every way of signing in: per-account exponential
//! back-off and a per-IP cap on failures (password spraying).

use crate::error::{ApiError, ApiResult};
use crate::model::{FailureKey, Lockout, User};
use crate::state::AppState;
use crate::store::Decision;

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

/// Refuses the attempt (429) while the IP is over its cap or the account (or
/// the unknown identifier, identically) is backing off.
pub async fn check(
    state: &AppState,
    ip: &str,
    user: Option<&User>,
    identifier: &str,
) -> ApiResult<()> {
    let now = state.now();
    let limits = &state.config.limits;
    if let Decision::Refused { retry_after } = state
        .store
        .peek(&ip_key(ip), &limits.ip_login_failures, now)
        .await?
    {
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let lockout = match user {
        Some(u) => Lockout {
            failures: u.failures,
            locked_until: u.locked_until,
        },
        None => {
            state
                .store
                .unknown_lockout(&identifier.to_lowercase(), now)
                .await?
        }
    };
    if lockout.locked_until > now {
        return Err(ApiError::TooManyRequests {
            retry_after: lockout.locked_until - now,
        });
    }
    Ok(())
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
