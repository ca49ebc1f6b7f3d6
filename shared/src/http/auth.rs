//! The signed-in caller: a valid `TOKEN` cookie whose server-side session is alive.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::cookies;
use crate::error::ApiError;
use crate::model::Session;
use crate::sessions;
use crate::state::AppState;

/// A session is renewed at most once a minute, so most requests only read it.
pub const RENEW_EVERY: i64 = 60;

#[derive(Debug, Clone)]
pub struct Auth {
    pub user_id: String,
    /// The session's key ([`sessions::key_of`] the token's `jti`).
    pub session_id: String,
    /// The token's `jti`, for a new token of the same session.
    pub jti: String,
    /// The session as read (before any renewal).
    pub session: Session,
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token =
            cookies::get(&parts.headers, cookies::TOKEN).ok_or(ApiError::Unauthenticated)?;
        let now = state.now();
        let claims = state
            .tokens
            .verify(token, now)
            .ok_or(ApiError::Unauthenticated)?;
        let key = sessions::key_of(&claims.jti).ok_or(ApiError::SessionEnded)?;
        let session = state
            .store
            .session(&claims.sub, &key, now)
            .await?
            .ok_or(ApiError::SessionEnded)?;
        let ttl = state.config.lifetimes.session;
        if session.expires_at - now < ttl - RENEW_EVERY
            && !state
                .store
                .renew_session(&claims.sub, &key, now + ttl, now)
                .await?
        {
            return Err(ApiError::SessionEnded);
        }
        Ok(Auth {
            user_id: claims.sub,
            session_id: key,
            jti: claims.jti,
            session,
        })
    }
}
