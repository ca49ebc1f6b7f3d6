//! `POST /user/reauthenticate`: the holder of a session proves who they are
//! again (password, or a code of the bound TOTP app), so the sensitive
//! changes ([`shared::http::Recent`]) go through for `REAUTH_WINDOW`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use shared::device::Device;
use shared::http::{Auth, Client, Json};
use shared::secret::Secret;
use shared::{ApiError, ApiResult, AppState, password, totp, validate};
use utoipa::ToSchema;

use crate::own_secret_guess;

/// The password, or a TOTP code: exactly one.
#[derive(Deserialize, ToSchema)]
pub(crate) struct Reauthenticate {
    /// The account's password.
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<Secret<String>>,
    /// A six-digit code of the bound TOTP app, instead of the password.
    #[schema(value_type = Option<String>, format = Password, pattern = "^[0-9]{6}$")]
    code: Option<Secret<String>>,
}

/// Marks the current session as freshly signed in, without starting a new
/// one. The guess is limited like a sign-in's (counted under the account's
/// email before it is checked), so a stolen session cannot try passwords
/// faster than a stranger can.
#[utoipa::path(
    post,
    path = "/user/reauthenticate",
    summary = "Reauthenticate",
    description = "Confirms the password (or a TOTP code) for the current session; sensitive changes are then allowed for `REAUTH_WINDOW` seconds.",
    request_body = Reauthenticate,
    security(("token" = [])),
    responses(
        (status = 204, description = "Confirmed."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `AUTH_INCORRECT` (wrong password, or a wrong, replayed or unbound TOTP code), `RATE_LIMITED` (a guessing limit; `Retry-After` says when to try again)."),
    )
)]
pub(crate) async fn reauthenticate(
    State(state): State<AppState>,
    auth: Auth,
    client: Client,
    device: Device,
    Json(body): Json<Reauthenticate>,
) -> ApiResult<StatusCode> {
    let code = match (&body.password, &body.code) {
        (Some(p), None) if p.expose().chars().count() <= password::MAX_LEN => None,
        (Some(_), None) => {
            return Err(ApiError::field(
                "password",
                "must be at most 128 characters",
            ));
        }
        (None, Some(code)) => Some(validate::code("code", code.expose())?),
        _ => {
            return Err(ApiError::field(
                "password",
                "give the password, or a TOTP code as code (one of the two)",
            ));
        }
    };
    let (user, settle) = own_secret_guess(&state, &auth, &client, &device).await?;
    let settle = match (&body.password, code) {
        (Some(p), _)
            if state
                .passwords
                .verify(p.expose(), Some(&user.password))
                .await =>
        {
            settle
        }
        (_, Some(code)) => match &user.totp {
            Some(t) => match totp::matching_step(t.secret.expose(), &code, state.now()) {
                Some(step) if step > t.last_step => settle.at_step(step),
                _ => return Err(ApiError::AuthIncorrect),
            },
            None => return Err(ApiError::AuthIncorrect),
        },
        _ => return Err(ApiError::AuthIncorrect),
    };
    if !state
        .store
        .reauthenticate(&auth.session, &settle, state.now())
        .await?
    {
        // The session ended, or a racing attempt used the TOTP step.
        return Err(ApiError::AuthIncorrect);
    }
    Ok(StatusCode::NO_CONTENT)
}
