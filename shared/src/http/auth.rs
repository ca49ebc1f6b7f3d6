//! The signed-in caller: a valid `TOKEN` cookie whose server-side session is
//! alive, on an account that is active at the credentials the session began
//! under. Session and account come in one store read (one DynamoDB
//! `BatchGetItem`), so a reset, a password change or a disable refuses every
//! older session at once, even one whose deletion failed, at no extra call.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::cookies;
use crate::error::ApiError;
use crate::model::{Session, User};
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
    /// The account, as read with the session.
    pub user: User,
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
        let (session, user) = state.store.session_and_user(&claims.sub, &key, now).await?;
        let session = session.ok_or(ApiError::SessionEnded)?;
        let user = user
            .filter(|u| session.is_valid_for(u))
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
            user,
        })
    }
}

impl Auth {
    /// Whether the session's holder proved who they are (signed in, or
    /// `POST /user/reauthenticate`) within `REAUTH_WINDOW`. A refresh or a
    /// renewal does not count: a stolen cookie kept alive stays stale.
    pub fn is_recent(&self, state: &AppState) -> bool {
        state.now() - self.session.authenticated_at() <= state.config.lifetimes.reauth
    }

    /// `REAUTHENTICATE` unless [`is_recent`](Self::is_recent): the check of a
    /// change a stolen session must not make (email, phone, TOTP, Lark).
    pub fn require_recent(&self, state: &AppState) -> Result<(), ApiError> {
        if self.is_recent(state) {
            Ok(())
        } else {
            Err(ApiError::Reauthenticate)
        }
    }
}

/// An [`Auth`] whose sign-in is recent: the extractor of the routes whose
/// every use is a sensitive change, so the check comes before any other work
/// (a code's try, an SMS).
#[derive(Debug, Clone)]
pub struct Recent(pub Auth);

impl FromRequestParts<AppState> for Recent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        auth.require_recent(state)?;
        Ok(Recent(auth))
    }
}
