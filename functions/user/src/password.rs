//! `POST /user/password`: changing the password, which ends the other sessions.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use shared::device::Device;
use shared::http::{Auth, Client, Json};
use shared::secret::Secret;
use shared::store::UserChange;
use shared::{ApiError, ApiResult, AppState, password, sessions};
use utoipa::ToSchema;

use crate::{own_secret_guess, settle_change};

#[derive(Deserialize, ToSchema)]
pub(crate) struct SetPassword {
    /// The current password.
    #[schema(value_type = String, format = Password)]
    old: Secret<String>,
    /// The new password.
    #[schema(value_type = String, format = Password)]
    password: Secret<String>,
}

/// Changes the password after checking the old one (a guess like a sign-in's,
/// counted under the account's email before it is checked), and ends every
/// other session of the account: the same write moves the credential version
/// on and this session with it.
#[utoipa::path(
    post,
    path = "/user/password",
    summary = "Set Password",
    description = "Changes the password after checking the old one; ends every other session.",
    request_body = SetPassword,
    security(("token" = [])),
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `WEAK_PASSWORD`, `WRONG_PASSWORD`, `RATE_LIMITED` (a guessing limit; `Retry-After` says when to try again)."),
    )
)]
pub(crate) async fn set_password(
    State(state): State<AppState>,
    auth: Auth,
    client: Client,
    device: Device,
    Json(body): Json<SetPassword>,
) -> ApiResult<StatusCode> {
    if let Some(why) = password::policy_violation(body.password.expose()) {
        return Err(ApiError::WeakPassword(why));
    }
    let (user, settle) = own_secret_guess(&state, &auth, &client, &device).await?;
    if !state
        .passwords
        .verify(body.old.expose(), Some(&user.password))
        .await
    {
        return Err(ApiError::WrongPassword);
    }
    let hash = state.passwords.hash(body.password.expose()).await?;
    let change = UserChange::Password {
        hash,
        keep: Some(auth.session_id.clone()),
    };
    settle_change(&state, &user, change, &settle).await?;
    // The other sessions are refused from here on (the credential version
    // moved on); deleting them only tidies up, so a failure is logged, not answered.
    sessions::end_others(&state, &user.id, Some(&auth.session_id)).await;
    Ok(StatusCode::NO_CONTENT)
}
