//! The three ways to sign in (password, SMS code, TOTP code) and the SMS code
//! for the second. Each takes its guessing slots first ([`throttle::begin`])
//! and ends in [`sign_in`], which gives them back and leaves a device cookie.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::codes::{self, Channel, Floor, Issue};
use shared::device::{self, Device};
use shared::http::cookies::SetCookie;
use shared::http::{Client, Json, PhoneQuery, Query};
use shared::model::{LoginMethod, LoginRecord, Purpose, Session, User};
use shared::notices::{self, Notice};
use shared::secret::Secret;
use shared::store::{CodeRef, Lookup, Settle};
use shared::throttle::{self, Began, Guess, GuessKind};
use shared::{ApiError, ApiResult, AppState, password, sessions, totp, validate};
use utoipa::ToSchema;

use crate::token_cookie;

/// Takes the slots of a sign-in attempt on `account` from this client.
pub(crate) async fn begin(
    state: &AppState,
    client: &Client,
    device: &Device,
    account: Lookup<'_>,
    code: Option<CodeRef>,
) -> ApiResult<Began> {
    let guess = Guess {
        account,
        ip: &client.ip,
        device: device.0.as_ref(),
        code,
        kind: GuessKind::SignIn,
    };
    Ok(throttle::begin(state, guess).await?)
}

/// Starts a session for `user` with what its attempt gives back: 204 with
/// its token and device cookies ([`session_cookies`]).
async fn sign_in(
    state: &AppState,
    client: &Client,
    device: &Device,
    user: &User,
    method: LoginMethod,
    settle: Settle,
) -> ApiResult<Response> {
    let cookies = session_cookies(state, client, device, user, method, settle).await?;
    Ok((StatusCode::NO_CONTENT, cookies).into_response())
}

/// Starts a session for `user` with what its attempt gives back (telling the
/// owner of a new device), and returns its token and device cookies. A code or
/// TOTP step a racing attempt used first makes it a failed attempt.
pub(crate) async fn session_cookies(
    state: &AppState,
    client: &Client,
    device: &Device,
    user: &User,
    method: LoginMethod,
    settle: Settle,
) -> ApiResult<(SetCookie, SetCookie)> {
    if !user.active {
        return Err(ApiError::AccountDisabled);
    }
    let now = state.now();
    let login = LoginRecord::new(now, &client.ip, &client.user_agent, method);
    let jti = sessions::new_jti(now);
    let key = sessions::key_of(&jti).expect("a new jti names a session");
    let session = Session::begin(user, key, &login, state.config.lifetimes.session);
    // Refused when a racing attempt spent the code or used the TOTP step, and
    // when a reset, password change or disable landed after `user` was read:
    // the secret checked is no longer the one in force.
    if !state.store.begin_session(&session, &login, &settle).await? {
        return Err(ApiError::AuthIncorrect);
    }
    // A browser without this account's device cookie has not signed in to
    // it before (or was cleared): the owner hears of it.
    if device.0.as_ref().is_none_or(|d| d.user_id != user.id) {
        notices::send(state, &user.email, Notice::NewDevice { login: &login }).await;
    }
    let ttl = state.config.lifetimes.token;
    let jwt = state.tokens.issue(&user.id, &jti, now, ttl);
    let device_cookie = device::cookie_after_sign_in(state, &user.id, device);
    Ok((token_cookie(state, &jwt), device_cookie))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct PasswordLogin {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: Secret<String>,
}

#[utoipa::path(
    post,
    path = "/login",
    summary = "Login",
    description = "Signs in with email and password; sets the `TOKEN` cookie.",
    request_body = PasswordLogin,
    responses(
        (status = 204, description = "Signed in; `Set-Cookie: TOKEN=...` and `DEVICE=...` (both HttpOnly).",
            headers(("Set-Cookie" = String, description = "The `TOKEN` and `DEVICE` cookies"))),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `AUTH_INCORRECT` (wrong email or password), `ACCOUNT_DISABLED`, `AUTH_MANY_INCORRECT` (a guessing limit; `Retry-After` says when to try again)."),
    )
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    client: Client,
    device: Device,
    Json(body): Json<PasswordLogin>,
) -> ApiResult<Response> {
    let email = validate::email("email", &body.email)?;
    let password = body.password.expose();
    if password.is_empty() {
        return Err(ApiError::field("password", "is required"));
    }
    if password.chars().count() > password::MAX_LEN {
        return Err(ApiError::field(
            "password",
            "must be at most 128 characters",
        ));
    }
    let began = begin(&state, &client, &device, Lookup::Email(&email), None).await?;
    let hash = began.user.as_ref().map(|u| &u.password);
    let ok = state.passwords.verify(password, hash).await;
    match &began.user {
        Some(u) if ok => {
            let method = LoginMethod::Password;
            sign_in(&state, &client, &device, u, method, began.settle).await
        }
        _ => Err(ApiError::AuthIncorrect),
    }
}

/// Sends a sign-in code to a phone. Answers 204 whether or not an account has
/// that phone, and sends nothing if none (or a disabled one) does; in the same
/// time either way (`CODE_RESPONSE_FLOOR_MS`), and the same if SNS fails.
#[utoipa::path(
    get,
    path = "/login/sms",
    summary = "SMS Login Code",
    description = "Sends a sign-in code by SMS. 204 whether or not an account has that phone.",
    params(PhoneQuery),
    responses(
        (status = 204, description = "Sent, if an active account has that phone."),
        (status = 400, description = "Codes: `INVALID_FIELD`, `RATE_LIMITED` (IP cap, recipient cooldown or hourly cap)."),
    )
)]
pub(crate) async fn sms_code(
    State(state): State<AppState>,
    client: Client,
    Query(q): Query<PhoneQuery>,
) -> ApiResult<StatusCode> {
    let floor = Floor::start(&state);
    let phone = q.phone()?;
    let channel = Channel::Sms(phone.clone());
    let permit = codes::permit(&state, &client.ip, &channel).await?;
    let user = state.store.user_by_phone(&phone).await?;
    if user.is_some_and(|u| u.active) {
        let issue = Issue {
            purpose: Purpose::SmsLogin,
            subject: &phone,
            bound: None,
            ttl: state.config.lifetimes.sms_code,
            channel,
        };
        floor.issue(&state, permit, issue).await?;
    }
    floor.wait().await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct SmsLogin {
    #[schema(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+14155550123")]
    phone: String,
    /// The six-digit code sent by SMS.
    #[schema(value_type = String, format = Password, pattern = "^[0-9]{6}$")]
    code: Secret<String>,
}

#[utoipa::path(
    post,
    path = "/login/sms",
    summary = "SMS Login",
    description = "Signs in with a code sent by SMS; sets the `TOKEN` cookie.",
    request_body = SmsLogin,
    responses(
        (status = 204, description = "Signed in; `Set-Cookie: TOKEN=...` and `DEVICE=...` (both HttpOnly).",
            headers(("Set-Cookie" = String, description = "The `TOKEN` and `DEVICE` cookies"))),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `AUTH_INCORRECT` (the code is wrong, expired or spent), `ACCOUNT_DISABLED`, `AUTH_MANY_INCORRECT` (a guessing limit; `Retry-After` says when to try again)."),
    )
)]
pub(crate) async fn sms_login(
    State(state): State<AppState>,
    client: Client,
    device: Device,
    Json(body): Json<SmsLogin>,
) -> ApiResult<Response> {
    let phone = validate::phone("phone", &body.phone)?;
    let code = validate::code("code", body.code.expose())?;
    let presented = CodeRef {
        purpose: Purpose::SmsLogin,
        subject: phone.clone(),
    };
    let lookup = Lookup::Phone(&phone);
    let began = begin(&state, &client, &device, lookup, Some(presented)).await?;
    if let (Some(u), Some(stored)) = (&began.user, &began.code)
        && codes::matches(&state, stored, None, &code)
    {
        let settle = began.settle.spending(stored);
        return sign_in(&state, &client, &device, u, LoginMethod::Sms, settle).await;
    }
    Err(ApiError::AuthIncorrect)
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct TotpLogin {
    email: String,
    /// The six-digit code the authenticator app shows.
    #[schema(value_type = String, format = Password, pattern = "^[0-9]{6}$")]
    code: Secret<String>,
}

/// Accepts a code of the current step or one either side, never a step at or
/// before the last one accepted (the advance is a conditional write).
#[utoipa::path(
    post,
    path = "/login/totp",
    summary = "TOTP Login",
    description = "Signs in with email and a TOTP code; sets the `TOKEN` cookie.",
    request_body = TotpLogin,
    responses(
        (status = 204, description = "Signed in; `Set-Cookie: TOKEN=...` and `DEVICE=...` (both HttpOnly).",
            headers(("Set-Cookie" = String, description = "The `TOKEN` and `DEVICE` cookies"))),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `AUTH_INCORRECT` (wrong or replayed code, or no TOTP bound), `ACCOUNT_DISABLED`, `AUTH_MANY_INCORRECT` (a guessing limit; `Retry-After` says when to try again)."),
    )
)]
pub(crate) async fn totp_login(
    State(state): State<AppState>,
    client: Client,
    device: Device,
    Json(body): Json<TotpLogin>,
) -> ApiResult<Response> {
    let email = validate::email("email", &body.email)?;
    let code = validate::code("code", body.code.expose())?;
    let began = begin(&state, &client, &device, Lookup::Email(&email), None).await?;
    if let Some(u) = &began.user
        && let Some(t) = &u.totp
        && let Some(step) = totp::matching_step(t.secret.expose(), &code, state.now())
        && step > t.last_step
    {
        let settle = began.settle.at_step(step);
        return sign_in(&state, &client, &device, u, LoginMethod::Totp, settle).await;
    }
    Err(ApiError::AuthIncorrect)
}
