//! Signing in and out: password, SMS and TOTP logins, session verification,
//! token refresh, logout.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use shared::codes::{self, Channel, CodeError, Issue};
use shared::crypto;
use shared::error::Body as ErrorBody;
use shared::http::{Auth, Client, Json, NoStore, Query, cookies};
use shared::model::{LoginMethod, LoginRecord, Purpose, Session, User};
use shared::secret::Secret;
use shared::store::Lookup;
use shared::{ApiError, ApiResult, AppState, lockout, password, totp, validate};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// This function's operations in the OpenAPI document (security schemes and
/// the CSRF header are added where the documents are merged, in the CLI).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(paths(
        login,
        sms_code,
        sms_login,
        totp_login,
        verify,
        refresh_code,
        refresh_token_get,
        refresh_token_post,
        logout
    ))]
    struct Doc;
    Doc::openapi()
}

/// `{"code": ...}`: a refresh code for `/refresh_token`.
#[derive(Serialize, ToSchema)]
struct RefreshCode {
    /// Six digits, valid for a few seconds and once.
    #[schema(pattern = "^[0-9]{6}$", example = "123456")]
    code: String,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/login/sms", get(sms_code).post(sms_login))
        .route("/login/totp", post(totp_login))
        .route("/verify", get(verify))
        .route("/refresh_code", get(refresh_code))
        .route(
            "/refresh_token",
            get(refresh_token_get).post(refresh_token_post),
        )
        .route("/logout", post(logout))
}

fn token_cookie(state: &AppState, jwt: &str) -> HeaderValue {
    let ttl = state.config.lifetimes.token;
    cookies::set(&state.config, cookies::TOKEN, jwt, ttl, true)
}

fn no_content_with(cookie: HeaderValue) -> Response {
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

/// Starts a session for `user` and sets its token cookie.
async fn sign_in(
    state: &AppState,
    user: &User,
    client: &Client,
    method: LoginMethod,
) -> ApiResult<Response> {
    if !user.active {
        return Err(ApiError::AccountDisabled);
    }
    let now = state.now();
    let session = Session {
        user_id: user.id.clone(),
        id: crypto::new_session_id(),
        created_at: now,
        expires_at: now + state.config.lifetimes.session,
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
    };
    let login = LoginRecord {
        time: now,
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        method,
    };
    state.store.begin_session(&session, &login).await?;
    let jwt = state
        .tokens
        .issue(&user.id, &session.id, now, state.config.lifetimes.token);
    Ok(no_content_with(token_cookie(state, &jwt)))
}

#[derive(Deserialize, ToSchema)]
struct PasswordLogin {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: Secret<String>,
}

#[utoipa::path(
    post,
    path = "/login",
    tag = "session",
    summary = "Login",
    description = "Signs in with email and password; sets the `TOKEN` cookie.",
    request_body = PasswordLogin,
    responses(
        (status = 204, description = "Signed in; `Set-Cookie: TOKEN=...` (HttpOnly).",
            headers(("Set-Cookie" = String, description = "The `TOKEN` cookie"))),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `INVALID_CREDENTIALS`, `ACCOUNT_DISABLED`.", body = ErrorBody),
        (status = 429, description = "Code: `RATE_LIMITED` (IP cap or account back-off).", body = ErrorBody),
    )
)]
async fn login(
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
    let (store, limits) = (&*state.store, &state.config.limits);
    let user = lockout::begin(
        store,
        limits,
        &client.ip,
        Lookup::Email(&email),
        state.now(),
    )
    .await?;
    let hash = user.as_ref().map(|u| &u.password);
    let ok = state.passwords.verify(password, hash).await;
    match user {
        Some(u) if ok => sign_in(&state, &u, &client, LoginMethod::Password).await,
        _ => {
            lockout::fail(
                store,
                limits,
                &client.ip,
                user.as_ref(),
                &email,
                state.now(),
            )
            .await?;
            Err(ApiError::InvalidCredentials)
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PhoneQuery {
    /// A phone number in E.164 form, e.g. `+14155550123`.
    #[param(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+14155550123")]
    phone: String,
}

/// Sends a sign-in code to a phone. Answers 204 whether or not an account has
/// that phone, and sends nothing if none (or a disabled one) does.
#[utoipa::path(
    get,
    path = "/login/sms",
    tag = "session",
    summary = "SMS Login Code",
    description = "Sends a sign-in code by SMS. 204 whether or not an account has that phone.",
    params(PhoneQuery),
    responses(
        (status = 204, description = "Sent, if an active account has that phone."),
        (status = 400, description = "Code: `INVALID_FIELD`.", body = ErrorBody),
        (status = 429, description = "Code: `RATE_LIMITED` (IP cap, recipient cooldown or hourly cap).", body = ErrorBody),
    )
)]
async fn sms_code(
    State(state): State<AppState>,
    client: Client,
    Query(q): Query<PhoneQuery>,
) -> ApiResult<StatusCode> {
    let phone = validate::phone("phone", &q.phone)?;
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
struct SmsLogin {
    #[schema(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+14155550123")]
    phone: String,
    /// The six-digit code sent by SMS.
    #[schema(value_type = String, format = Password, pattern = "^[0-9]{6}$")]
    code: Secret<String>,
}

#[utoipa::path(
    post,
    path = "/login/sms",
    tag = "session",
    summary = "SMS Login",
    description = "Signs in with a code sent by SMS; sets the `TOKEN` cookie.",
    request_body = SmsLogin,
    responses(
        (status = 204, description = "Signed in; `Set-Cookie: TOKEN=...` (HttpOnly).",
            headers(("Set-Cookie" = String, description = "The `TOKEN` cookie"))),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `INVALID_CODE`, `ACCOUNT_DISABLED`.", body = ErrorBody),
        (status = 429, description = "Code: `RATE_LIMITED` (IP cap or account back-off).", body = ErrorBody),
    )
)]
async fn sms_login(
    State(state): State<AppState>,
    client: Client,
    Json(body): Json<SmsLogin>,
) -> ApiResult<Response> {
    let phone = validate::phone("phone", &body.phone)?;
    let code = validate::code("code", body.code.expose())?;
    let (store, limits) = (&*state.store, &state.config.limits);
    let user = lockout::begin(
        store,
        limits,
        &client.ip,
        Lookup::Phone(&phone),
        state.now(),
    )
    .await?;
    let redeemed = codes::redeem(&state, Purpose::SmsLogin, &phone, None, &code).await;
    match (redeemed, &user) {
        (Ok(_), Some(u)) => sign_in(&state, u, &client, LoginMethod::Sms).await,
        (Ok(_), None) | (Err(CodeError::Rejected), _) => {
            lockout::fail(
                store,
                limits,
                &client.ip,
                user.as_ref(),
                &phone,
                state.now(),
            )
            .await?;
            Err(ApiError::InvalidCode)
        }
        (Err(e), _) => Err(e.into()),
    }
}

#[derive(Deserialize, ToSchema)]
struct TotpLogin {
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
    tag = "session",
    summary = "TOTP Login",
    description = "Signs in with email and a TOTP code; sets the `TOKEN` cookie.",
    request_body = TotpLogin,
    responses(
        (status = 204, description = "Signed in; `Set-Cookie: TOKEN=...` (HttpOnly).",
            headers(("Set-Cookie" = String, description = "The `TOKEN` cookie"))),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `INVALID_CREDENTIALS`, `ACCOUNT_DISABLED`.", body = ErrorBody),
        (status = 429, description = "Code: `RATE_LIMITED` (IP cap or account back-off).", body = ErrorBody),
    )
)]
async fn totp_login(
    State(state): State<AppState>,
    client: Client,
    Json(body): Json<TotpLogin>,
) -> ApiResult<Response> {
    let email = validate::email("email", &body.email)?;
    let code = validate::code("code", body.code.expose())?;
    let (store, limits) = (&*state.store, &state.config.limits);
    let user = lockout::begin(
        store,
        limits,
        &client.ip,
        Lookup::Email(&email),
        state.now(),
    )
    .await?;
    let now = state.now();
    if let Some(u) = &user
        && let Some(t) = &u.totp
        && let Some(step) = totp::matching_step(t.secret.expose(), &code, now)
        && step > t.last_step
        && state.store.advance_totp(&u.id, step).await?
    {
        return sign_in(&state, u, &client, LoginMethod::Totp).await;
    }
    lockout::fail(
        store,
        limits,
        &client.ip,
        user.as_ref(),
        &email,
        state.now(),
    )
    .await?;
    Err(ApiError::InvalidCredentials)
}

#[utoipa::path(
    get,
    path = "/verify",
    tag = "session",
    summary = "Verify",
    description = "204 while the caller's session lives.",
    security(("token" = [])),
    responses(
        (status = 204, description = "Signed in."),
    )
)]
async fn verify(_: Auth) -> StatusCode {
    StatusCode::NO_CONTENT
}

/// A one-time code, bound to the caller's session, to exchange for a new token.
#[utoipa::path(
    get,
    path = "/refresh_code",
    tag = "session",
    summary = "Token Refresh Code",
    description = "A one-time code bound to the caller's session, to exchange at `/refresh_token`.",
    security(("token" = [])),
    responses(
        (status = 200, description = "The code (`Cache-Control: no-store`).", body = RefreshCode),
    )
)]
async fn refresh_code(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<NoStore<RefreshCode>> {
    let ttl = state.config.lifetimes.refresh_code;
    let code = codes::store(&state, Purpose::Refresh, &auth.session_id, None, ttl, None).await?;
    Ok(NoStore(RefreshCode { code }))
}

#[derive(Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
struct RefreshBody {
    /// The six-digit code from `GET /refresh_code`.
    #[schema(value_type = String, format = Password, pattern = "^[0-9]{6}$")]
    #[param(value_type = String, format = Password, pattern = "^[0-9]{6}$")]
    code: Secret<String>,
}

#[utoipa::path(
    get,
    path = "/refresh_token",
    tag = "session",
    summary = "Refresh Token",
    description = "Exchanges a refresh code (in the query) for a new `TOKEN` of the same session.",
    params(RefreshBody),
    security(("token" = [])),
    responses(
        (status = 204, description = "A new `TOKEN` cookie is set.",
            headers(("Set-Cookie" = String, description = "The `TOKEN` cookie"))),
        (status = 400, description = "Codes: `INVALID_FIELD`, `INVALID_CODE`.", body = ErrorBody),
    )
)]
async fn refresh_token_get(
    state: State<AppState>,
    auth: Auth,
    Query(q): Query<RefreshBody>,
) -> ApiResult<Response> {
    refresh_token(state, auth, q).await
}

#[utoipa::path(
    post,
    path = "/refresh_token",
    tag = "session",
    summary = "Refresh Token (JSON body)",
    description = "Exchanges a refresh code (in a JSON body) for a new `TOKEN` of the same session.",
    request_body = RefreshBody,
    security(("token" = [])),
    responses(
        (status = 204, description = "A new `TOKEN` cookie is set.",
            headers(("Set-Cookie" = String, description = "The `TOKEN` cookie"))),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `INVALID_CODE`.", body = ErrorBody),
    )
)]
async fn refresh_token_post(
    state: State<AppState>,
    auth: Auth,
    Json(body): Json<RefreshBody>,
) -> ApiResult<Response> {
    refresh_token(state, auth, body).await
}

/// Exchanges a refresh code for a new token of the same session.
async fn refresh_token(
    State(state): State<AppState>,
    auth: Auth,
    body: RefreshBody,
) -> ApiResult<Response> {
    let code = validate::code("code", body.code.expose())?;
    codes::redeem(&state, Purpose::Refresh, &auth.session_id, None, &code).await?;
    let now = state.now();
    let jwt = state.tokens.issue(
        &auth.user_id,
        &auth.session_id,
        now,
        state.config.lifetimes.token,
    );
    Ok(no_content_with(token_cookie(&state, &jwt)))
}

/// Ends the caller's session, if any, and clears the cookie. Always 204.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "session",
    summary = "Logout",
    description = "Ends the caller's session, if any, and clears the `TOKEN` cookie.",
    security((), ("token" = [])),
    responses(
        (status = 204, description = "Signed out; the `TOKEN` cookie is cleared.",
            headers(("Set-Cookie" = String, description = "`TOKEN=` with `Max-Age=0`"))),
    )
)]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(claims) =
        cookies::get(&headers, cookies::TOKEN).and_then(|t| state.tokens.verify(t, state.now()))
    {
        state.store.end_session(&claims.sub, &claims.jti).await?;
    }
    Ok(no_content_with(cookies::set(
        &state.config,
        cookies::TOKEN,
        "",
        0,
        true,
    )))
}
