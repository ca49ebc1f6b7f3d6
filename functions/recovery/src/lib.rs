//! Password reset by mail: a code to the account's address, exchanged with a
//! new password. Reveals nothing about whether an address has an account.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use shared::codes::{self, Channel, Floor, Issue};
use shared::device::Device;
use shared::http::{Client, Json, Query};
use shared::model::Purpose;
use shared::notices::{self, Notice};
use shared::secret::Secret;
use shared::store::{CodeRef, Lookup, UserChange};
use shared::throttle::{self, Guess, GuessKind};
use shared::{ApiError, ApiResult, AppState, password, sessions, validate};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// This function's operations in the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(paths(forget_code, forget_reset))]
    struct Doc;
    Doc::openapi()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/forget_code", get(forget_code))
        .route("/forget_reset", post(forget_reset))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EmailQuery {
    /// The account's email address (a raw `+` in it, which decodes to a
    /// space, is read as `+`).
    email: String,
}

/// Mails a reset code. 204 whether or not the address has an active account,
/// in the same time either way (`CODE_RESPONSE_FLOOR_MS`), and the same when
/// SES fails; only an active account is sent anything.
#[utoipa::path(
    get,
    path = "/forget_code",
    summary = "Reset Password Code",
    description = "Mails a password reset code. 204 whether or not the address has an active account.",
    params(EmailQuery),
    responses(
        (status = 204, description = "Sent, if an active account has that address."),
        (status = 400, description = "Codes: `INVALID_FIELD`, `RATE_LIMITED` (IP cap, recipient cooldown or hourly cap)."),
    )
)]
async fn forget_code(
    State(state): State<AppState>,
    client: Client,
    Query(q): Query<EmailQuery>,
) -> ApiResult<StatusCode> {
    let floor = Floor::start(&state);
    let email = validate::email_query("email", &q.email)?;
    let channel = Channel::Mail(email.clone());
    let permit = codes::permit(&state, &client.ip, &channel).await?;
    if let Some(user) = state.store.user_by_email(&email).await?
        && user.active
    {
        let subject = email.to_lowercase();
        let issue = Issue {
            purpose: Purpose::PasswordReset,
            subject: &subject,
            bound: None,
            ttl: state.config.lifetimes.mail_code,
            channel: Channel::Mail(user.email),
        };
        floor.issue(&state, permit, issue).await?;
    }
    floor.wait().await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct Reset {
    email: String,
    /// The six-digit code from the mail.
    #[schema(value_type = String, format = Password, pattern = "^[0-9]{6}$")]
    code: Secret<String>,
    /// The new password.
    #[schema(value_type = String, format = Password)]
    password: Secret<String>,
}

/// Sets a new password with a mailed code, ends every session of the account
/// and clears its guessing failures. The password is checked before the code,
/// so a refused password spends nothing; the code's try is counted, with the
/// client's guessing slots, before it is compared.
#[utoipa::path(
    post,
    path = "/forget_reset",
    summary = "Reset Password",
    description = "Sets a new password with a mailed code and ends every session of the account.",
    request_body = Reset,
    responses(
        (status = 204, description = "The password is changed."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `WEAK_PASSWORD`, `INVALID_CODE`, `RATE_LIMITED` (a guessing limit; `Retry-After` says when to try again)."),
    )
)]
async fn forget_reset(
    State(state): State<AppState>,
    client: Client,
    device: Device,
    Json(body): Json<Reset>,
) -> ApiResult<StatusCode> {
    let email = validate::email("email", &body.email)?;
    let code = validate::code("code", body.code.expose())?;
    if let Some(why) = password::policy_violation(body.password.expose()) {
        return Err(ApiError::WeakPassword(why));
    }
    let identifier = email.to_lowercase();
    let guess = Guess {
        account: Lookup::Email(&email),
        ip: &client.ip,
        device: device.0.as_ref(),
        code: Some(CodeRef {
            purpose: Purpose::PasswordReset,
            subject: identifier.clone(),
        }),
        kind: GuessKind::Code,
    };
    let began = throttle::begin(&state, guess).await?;
    let (Some(user), Some(stored)) = (&began.user, &began.code) else {
        return Err(ApiError::InvalidCode);
    };
    if !codes::matches(&state, stored, None, &code) {
        return Err(ApiError::InvalidCode);
    }
    let hash = state.passwords.hash(body.password.expose()).await?;
    let settle = began.settle.spending(stored);
    let store = &*state.store;
    let change = UserChange::Password { hash, keep: None };
    if !store
        .settle_change(user, change, &settle, state.now())
        .await?
    {
        return Err(ApiError::InvalidCode);
    }
    // The password is changed and every session refused (its credential
    // version moved on): what follows tidies up, and a failure is logged,
    // not answered, as the code is spent and the change stands.
    let mut identifiers = vec![identifier];
    identifiers.extend(user.phone.clone());
    let clear = async {
        if let Err(e) = store.clear_failures(&identifiers).await {
            tracing::warn!(error = %e, "guessing failures not cleared after a reset");
        }
    };
    tokio::join!(
        sessions::end_others(&state, &user.id, None),
        clear,
        notices::send(&state, &user.email, Notice::PasswordReset),
    );
    Ok(StatusCode::NO_CONTENT)
}
