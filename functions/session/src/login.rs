//! The three ways to sign in (password, SMS code, TOTP code) and the SMS code
//! for the second. Each goes through the same lockout gate and ends in [`sign_in`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use shared::codes::{self, Channel, CodeError, Issue};
use shared::http::{Client, Json, Query};
use shared::model::{LoginMethod, LoginRecord, Purpose, Session, User};
use shared::secret::Secret;
use shared::store::Lookup;
use shared::{ApiError, ApiResult, AppState, lockout, password, sessions, totp, validate};
use utoipa::{IntoParams, ToSchema};

use crate::{no_content_with, token_cookie};

/// One login attempt from a client on an account, through the lockout gate.
struct Attempt<'a> {
    state: &'a AppState,
    client: &'a Client,
    lookup: Lookup<'a>,
}

impl Attempt<'_> {
    /// The account, unless the IP or the account is locked out.
    async fn begin(&self) -> ApiResult<Option<User>> {
        let state = self.state;
        let (store, limits, ip) = (&*state.store, &state.config.limits, &self.client.ip);
        Ok(lockout::begin(store, limits, ip, self.lookup, state.now()).await?)
    }

    /// Counts the failure, then answers with `error`.
    async fn fail(&self, user: Option<&User>, error: ApiError) -> ApiResult<Response> {
        let state = self.state;
        let (store, limits, ip) = (&*state.store, &state.config.limits, &self.client.ip);
        lockout::fail(store, limits, ip, user, self.lookup, state.now()).await?;
        Err(error)
    }

    /// Starts a session for `user` and sets its token cookie.
    async fn sign_in(&self, user: &User, method: LoginMethod) -> ApiResult<Response> {
        if !user.active {
            return Err(ApiError::AccountDisabled);
        }
        let (state, client) = (self.state, self.client);
        let now = state.now();
        let login = LoginRecord::new(now, &client.ip, &client.user_agent, method);
        let jti = sessions::new_jti(now);
        let key = sessions::key_of(&jti).expect("a new jti names a session");
        let session = Session::begin(&user.id, key, &login, state.config.lifetimes.session);
        state.store.begin_session(&session, &login).await?;
        let ttl = state.config.lifetimes.token;
        let jwt = state.tokens.issue(&user.id, &jti, now, ttl);
        Ok(no_content_with(token_cookie(state, &jwt)))
    }
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
        (status = 204, description = "Signed in; `Set-Cookie: TOKEN=...` (HttpOnly).",
            headers(("Set-Cookie" = String, description = "The `TOKEN` cookie"))),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `AUTH_INCORRECT` (wrong email or password), `ACCOUNT_DISABLED`, `AUTH_MANY_INCORRECT` (IP cap or account back-off)."),
    )
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    client: Client,
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
    let attempt = Attempt {
        state: &state,
        client: &client,
        lookup: Lookup::Email(&email),
    };
    let user = attempt.begin().await?;
    let hash = user.as_ref().map(|u| &u.password);
    let ok = state.passwords.verify(password, hash).await;
    match &user {
        Some(u) if ok => attempt.sign_in(u, LoginMethod::Password).await,
        _ => attempt.fail(user.as_ref(), ApiError::AuthIncorrect).await,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PhoneQuery {
    /// A phone number in E.164 form, e.g. `+14155550123` (`%2B`; a raw `+`,
    /// which decodes to a space, is read as `+` too).
    #[param(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+14155550123")]
    phone: String,
}

/// Sends a sign-in code to a phone. Answers 204 whether or not an account has
/// that phone, and sends nothing if none (or a disabled one) does.
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
    let phone = validate::phone_query("phone", &q.phone)?;
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
        codes::issue(&state, permit, issue).await?;
    }
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
        (status = 204, description = "Signed in; `Set-Cookie: TOKEN=...` (HttpOnly).",
            headers(("Set-Cookie" = String, description = "The `TOKEN` cookie"))),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `AUTH_INCORRECT` (the code is wrong, expired or spent), `ACCOUNT_DISABLED`, `AUTH_MANY_INCORRECT` (IP cap or account back-off)."),
    )
)]
pub(crate) async fn sms_login(
    State(state): State<AppState>,
    client: Client,
    Json(body): Json<SmsLogin>,
) -> ApiResult<Response> {
    let phone = validate::phone("phone", &body.phone)?;
    let code = validate::code("code", body.code.expose())?;
    let attempt = Attempt {
        state: &state,
        client: &client,
        lookup: Lookup::Phone(&phone),
    };
    let user = attempt.begin().await?;
    let redeemed = codes::redeem(&state, Purpose::SmsLogin, &phone, None, &code).await;
    match (redeemed, &user) {
        (Ok(_), Some(u)) => attempt.sign_in(u, LoginMethod::Sms).await,
        (Ok(_), None) | (Err(CodeError::Rejected), _) => {
            attempt.fail(user.as_ref(), ApiError::AuthIncorrect).await
        }
        (Err(e), _) => Err(e.into()),
    }
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
        (status = 204, description = "Signed in; `Set-Cookie: TOKEN=...` (HttpOnly).",
            headers(("Set-Cookie" = String, description = "The `TOKEN` cookie"))),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `AUTH_INCORRECT` (wrong or replayed code, or no TOTP bound), `ACCOUNT_DISABLED`, `AUTH_MANY_INCORRECT` (IP cap or account back-off)."),
    )
)]
pub(crate) async fn totp_login(
    State(state): State<AppState>,
    client: Client,
    Json(body): Json<TotpLogin>,
) -> ApiResult<Response> {
    let email = validate::email("email", &body.email)?;
    let code = validate::code("code", body.code.expose())?;
    let attempt = Attempt {
        state: &state,
        client: &client,
        lookup: Lookup::Email(&email),
    };
    let user = attempt.begin().await?;
    let now = state.now();
    if let Some(u) = &user
        && let Some(t) = &u.totp
        && let Some(step) = totp::matching_step(t.secret.expose(), &code, now)
        && step > t.last_step
        && state.store.advance_totp(&u.id, step).await?
    {
        return attempt.sign_in(u, LoginMethod::Totp).await;
    }
    attempt.fail(user.as_ref(), ApiError::AuthIncorrect).await
}
