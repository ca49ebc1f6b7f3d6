//! `POST /user/password`: changing the password, which ends the other sessions.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use shared::http::{Auth, Client, Json};
use shared::lockout::{self, LockoutError};
use shared::secret::Secret;
use shared::store::{Lookup, UserChange};
use shared::{ApiError, ApiResult, AppState, password};
use utoipa::ToSchema;

use crate::{change, load};

#[derive(Deserialize, ToSchema)]
pub(crate) struct SetPassword {
    /// The current password.
    #[schema(value_type = String, format = Password)]
    old: Secret<String>,
    /// The new password.
    #[schema(value_type = String, format = Password)]
    password: Secret<String>,
}

/// Changes the password after checking the old one (throttled like a login),
/// and ends every other session of the account.
#[utoipa::path(
    post,
    path = "/user/password",
    summary = "Set Password",
    description = "Changes the password after checking the old one; ends every other session.",
    request_body = SetPassword,
    security(("token" = [])),
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `WEAK_PASSWORD`, `WRONG_PASSWORD`, `RATE_LIMITED` (IP cap or account back-off)."),
    )
)]
pub(crate) async fn set_password(
    State(state): State<AppState>,
    auth: Auth,
    client: Client,
    Json(body): Json<SetPassword>,
) -> ApiResult<StatusCode> {
    if let Some(why) = password::policy_violation(body.password.expose()) {
        return Err(ApiError::WeakPassword(why));
    }
    let user = load(&state, &auth).await?;
    let (store, limits) = (&*state.store, &state.config.limits);
    // Not a sign-in, so not the console's AUTH_MANY_INCORRECT ("failed to log in").
    lockout::check_user(store, limits, &client.ip, &user, state.now())
        .await
        .map_err(|e| match e {
            LockoutError::Locked { retry_after } => ApiError::RateLimited {
                reason: "too many failed attempts",
                retry_after,
            },
            e => e.into(),
        })?;
    if !state
        .passwords
        .verify(body.old.expose(), Some(&user.password))
        .await
    {
        let lookup = Lookup::Email(&user.email);
        let now = state.now();
        lockout::fail(store, limits, &client.ip, Some(&user), lookup, now).await?;
        return Err(ApiError::WrongPassword);
    }
    let hash = state.passwords.hash(body.password.expose()).await?;
    change(&state, &auth, UserChange::Password(hash)).await?;
    state
        .store
        .end_sessions(&auth.user_id, Some(&auth.session_id), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
