//! The signed-in account: profile, password, phone and TOTP binding, unbinding.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::clock::rfc3339;
use shared::codes::CodeError;
use shared::codes::{self, Channel, Issue};
use shared::error::Body as ErrorBody;
use shared::http::{Auth, Client, Json, NoStore, Query};
use shared::model::{LoginMethod, Purpose, Totp, User};
use shared::secret::Secret;
use shared::store::{StoreError, UserChange};
use shared::{ApiError, ApiResult, AppState, lockout, password, totp, validate};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// This function's operations in the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(paths(
        profile,
        set_profile,
        set_password,
        phone_code,
        bind_phone,
        totp_url,
        bind_totp,
        unset,
        unset_password,
        unset_phone_code,
        unset_phone,
        unset_totp
    ))]
    struct Doc;
    Doc::openapi()
}

/// The profile of `GET /user`: phone and TOTP only as masked markers.
#[derive(Serialize, ToSchema)]
struct Profile {
    #[serde(rename = "_id")]
    id: String,
    email: String,
    name: String,
    avatar: String,
    /// The bound phone, masked (`""` when none).
    phone: String,
    /// Logins ever made.
    sessions: u64,
    /// The most recent login, `null` before the first.
    history: Option<LoginHistory>,
    /// `"******"` when a TOTP app is bound, `""` otherwise.
    totp: String,
    /// The bound Lark account, if any.
    #[schema(value_type = Option<Object>)]
    lark: Option<Value>,
    /// Whether the account is active.
    status: bool,
    #[schema(format = DateTime)]
    create_time: String,
    #[schema(format = DateTime)]
    update_time: String,
}

#[derive(Serialize, ToSchema)]
struct LoginHistory {
    #[schema(format = DateTime)]
    time: String,
    ip: String,
    user_agent: String,
    method: LoginMethod,
}

/// `{"totp": URI}`: a pending TOTP secret to scan.
#[derive(Serialize, ToSchema)]
struct TotpUri {
    /// An `otpauth://totp/...` URI.
    #[schema(
        example = "otpauth://totp/planx:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=planx"
    )]
    totp: String,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/user", get(profile).patch(set_profile))
        .route("/user/password", post(set_password).delete(unset_password))
        .route("/user/phone_code", get(phone_code).delete(unset_phone_code))
        .route("/user/phone", post(bind_phone).delete(unset_phone))
        .route(
            "/user/totp",
            get(totp_url).post(bind_totp).delete(unset_totp),
        )
        .route("/user/{key}", delete(unset))
}

async fn load(state: &AppState, auth: &Auth) -> ApiResult<User> {
    state
        .store
        .user(&auth.user_id)
        .await?
        .ok_or(ApiError::SessionEnded)
}

async fn change(state: &AppState, auth: &Auth, change: UserChange) -> ApiResult<StatusCode> {
    match state
        .store
        .update_user(&auth.user_id, change, state.now())
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        // The signed-in account is gone: so is its session.
        Err(StoreError::NoSuchUser) => Err(ApiError::SessionEnded),
        Err(e) => Err(e.into()),
    }
}

impl From<&User> for Profile {
    fn from(user: &User) -> Self {
        Profile {
            id: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            avatar: user.avatar.clone(),
            phone: user
                .phone
                .as_deref()
                .map(|p| validate::mask(p, 4))
                .unwrap_or_default(),
            sessions: user.sessions,
            history: user.history.as_ref().map(|h| LoginHistory {
                time: rfc3339(h.time),
                ip: h.ip.clone(),
                user_agent: h.user_agent.clone(),
                method: h.method,
            }),
            totp: if user.totp.is_some() { "******" } else { "" }.into(),
            lark: user.lark.clone(),
            status: user.active,
            create_time: rfc3339(user.created_at),
            update_time: rfc3339(user.updated_at),
        }
    }
}

#[utoipa::path(
    get,
    path = "/user",
    tag = "user",
    summary = "User Info",
    description = "The signed-in account's profile.",
    security(("token" = [])),
    responses(
        (status = 200, description = "The profile.", body = Profile),
    )
)]
async fn profile(State(state): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Profile>> {
    Ok(axum::Json(Profile::from(&load(&state, &auth).await?)))
}

#[derive(Deserialize, ToSchema)]
struct SetProfile {
    /// The field to change: `email`, `name` or `avatar` (any case).
    #[schema(example = "name")]
    key: String,
    /// Required when `key` is `email`.
    email: Option<String>,
    /// Required when `key` is `name`.
    name: Option<String>,
    /// Required when `key` is `avatar`.
    avatar: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/user",
    tag = "user",
    summary = "Set User",
    description = "Changes one profile field, named by `key`.",
    request_body = SetProfile,
    security(("token" = [])),
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `EMAIL_TAKEN`.", body = ErrorBody),
    )
)]
async fn set_profile(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<SetProfile>,
) -> ApiResult<StatusCode> {
    let update = match body.key.trim().to_ascii_lowercase().as_str() {
        "email" => UserChange::Email(validate::email(
            "email",
            validate::required("email", &body.email)?,
        )?),
        "name" => UserChange::Name(validate::text(
            "name",
            validate::required("name", &body.name)?,
            validate::MAX_NAME,
            true,
        )?),
        "avatar" => UserChange::Avatar(validate::text(
            "avatar",
            validate::required("avatar", &body.avatar)?,
            validate::MAX_AVATAR,
            false,
        )?),
        _ => return Err(ApiError::field("key", "must be email, name or avatar")),
    };
    change(&state, &auth, update).await
}

#[derive(Deserialize, ToSchema)]
struct SetPassword {
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
    tag = "user",
    summary = "Set Password",
    description = "Changes the password after checking the old one; ends every other session.",
    request_body = SetPassword,
    security(("token" = [])),
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `WEAK_PASSWORD`, `WRONG_PASSWORD`.", body = ErrorBody),
        (status = 429, description = "Code: `RATE_LIMITED` (IP cap or account back-off).", body = ErrorBody),
    )
)]
async fn set_password(
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
    lockout::check_user(store, limits, &client.ip, &user, state.now()).await?;
    if !state
        .passwords
        .verify(body.old.expose(), Some(&user.password))
        .await
    {
        lockout::fail(
            store,
            limits,
            &client.ip,
            Some(&user),
            &user.email,
            state.now(),
        )
        .await?;
        return Err(ApiError::WrongPassword);
    }
    let hash = state.passwords.hash(body.password.expose()).await?;
    change(&state, &auth, UserChange::Password(hash)).await?;
    state
        .store
        .end_sessions(&auth.user_id, Some(&auth.session_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PhoneQuery {
    /// The phone number to bind, in E.164 form, e.g. `+14155550123`.
    #[param(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+14155550123")]
    phone: String,
}

/// Sends a code to the phone to be bound; the code is valid only for that number.
#[utoipa::path(
    get,
    path = "/user/phone_code",
    tag = "user",
    summary = "User SMS Code",
    description = "Sends a code by SMS to the phone to be bound.",
    params(PhoneQuery),
    security(("token" = [])),
    responses(
        (status = 204, description = "Sent."),
        (status = 400, description = "Codes: `INVALID_FIELD`, `PHONE_TAKEN`.", body = ErrorBody),
        (status = 429, description = "Code: `RATE_LIMITED` (IP cap, recipient cooldown or hourly cap).", body = ErrorBody),
    )
)]
async fn phone_code(
    State(state): State<AppState>,
    auth: Auth,
    client: Client,
    Query(q): Query<PhoneQuery>,
) -> ApiResult<StatusCode> {
    let phone = validate::phone("phone", &q.phone)?;
    if let Some(owner) = state.store.user_by_phone(&phone).await?
        && owner.id != auth.user_id
    {
        return Err(ApiError::PhoneTaken);
    }
    let channel = Channel::Sms(phone.clone());
    let permit = codes::permit(&state, &client.ip, &channel).await?;
    let issue = Issue {
        purpose: Purpose::PhoneBind,
        subject: &auth.user_id,
        bound: Some(&phone),
        ttl: state.config.lifetimes.sms_code,
        channel,
    };
    codes::issue(&state, permit, issue).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
struct BindPhone {
    #[schema(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+14155550123")]
    phone: String,
    /// The six-digit code sent by SMS.
    #[schema(value_type = String, format = Password, pattern = "^[0-9]{6}$")]
    code: Secret<String>,
}

#[utoipa::path(
    post,
    path = "/user/phone",
    tag = "user",
    summary = "Bind User's Phone",
    description = "Binds the phone the code was sent to.",
    request_body = BindPhone,
    security(("token" = [])),
    responses(
        (status = 204, description = "Bound."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `INVALID_CODE`, `PHONE_TAKEN`.", body = ErrorBody),
    )
)]
async fn bind_phone(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<BindPhone>,
) -> ApiResult<StatusCode> {
    let phone = validate::phone("phone", &body.phone)?;
    let code = validate::code("code", body.code.expose())?;
    codes::redeem(
        &state,
        Purpose::PhoneBind,
        &auth.user_id,
        Some(&phone),
        &code,
    )
    .await?;
    change(&state, &auth, UserChange::Phone(Some(phone))).await
}

/// A new TOTP secret as an otpauth URI, pending until bound with two codes.
/// Only the secret's digest is kept meanwhile. The answer carries the secret,
/// so no cache may keep it.
#[utoipa::path(
    get,
    path = "/user/totp",
    tag = "user",
    summary = "Generate TOTP URL",
    description = "A new TOTP secret as an otpauth URI, pending until bound.",
    security(("token" = [])),
    responses(
        (status = 200, description = "The URI (`Cache-Control: no-store`).", body = TotpUri),
    )
)]
async fn totp_url(State(state): State<AppState>, auth: Auth) -> ApiResult<NoStore<TotpUri>> {
    let user = load(&state, &auth).await?;
    let secret = totp::new_secret();
    let uri = totp::url(&secret, &state.config.namespace, &user.email)
        .ok_or_else(|| ApiError::Internal("could not build an otpauth URI".into()))?;
    let ttl = state.config.lifetimes.totp_bind;
    codes::store(
        &state,
        Purpose::TotpBind,
        &auth.user_id,
        None,
        ttl,
        Some(secret),
    )
    .await?;
    Ok(NoStore(TotpUri { totp: uri }))
}

#[derive(Deserialize, ToSchema)]
struct BindTotp {
    /// The otpauth URI from `GET /user/totp`.
    #[schema(value_type = String, format = Password)]
    totp: Secret<String>,
    /// Two codes of consecutive steps: the previous one, then the current one.
    #[schema(value_type = Vec<String>, min_items = 2, max_items = 2)]
    tss: Vec<Secret<String>>,
}

/// Binds the pending secret once the app shows two codes of consecutive steps,
/// the later one no older than the previous step.
#[utoipa::path(
    post,
    path = "/user/totp",
    tag = "user",
    summary = "Bind TOTP",
    description = "Binds the pending TOTP secret with two consecutive codes.",
    request_body = BindTotp,
    security(("token" = [])),
    responses(
        (status = 204, description = "Bound."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `INVALID_TOTP`.", body = ErrorBody),
    )
)]
async fn bind_totp(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<BindTotp>,
) -> ApiResult<StatusCode> {
    let secret = totp::secret_from_url(body.totp.expose())
        .ok_or_else(|| ApiError::field("totp", "is not an otpauth://totp URI"))?;
    let [first, second] = body.tss.as_slice() else {
        return Err(ApiError::field("tss", "must hold exactly two codes"));
    };
    let first = validate::code("tss[0]", first.expose())?;
    let second = validate::code("tss[1]", second.expose())?;
    let now = totp::step_of(state.now());
    let step = (now.saturating_sub(1)..=now + 1).find(|&s| {
        s > 0
            && totp::code_at_step(&secret, s - 1).as_deref() == Some(first.as_str())
            && totp::code_at_step(&secret, s).as_deref() == Some(second.as_str())
    });
    let step = step.ok_or(ApiError::InvalidTotp)?;
    codes::redeem(&state, Purpose::TotpBind, &auth.user_id, None, &secret)
        .await
        .map_err(|e| match e {
            CodeError::Rejected => ApiError::field(
                "totp",
                "is not the pending secret or has expired; request a new one",
            ),
            other => other.into(),
        })?;
    let bound = Totp {
        secret: Secret::new(secret),
        last_step: step,
    };
    change(&state, &auth, UserChange::Totp(Some(bound))).await
}

#[utoipa::path(
    delete,
    path = "/user/{key}",
    tag = "user",
    summary = "Unset User",
    description = "Unbinds the phone, the TOTP app or the Lark account.",
    params(("key" = String, Path, description = "`phone`, `totp` or `lark` (any case).", example = "phone")),
    security(("token" = [])),
    responses(
        (status = 204, description = "Unbound (or was not bound)."),
        (status = 400, description = "Code: `INVALID_FIELD` (`key` is not `phone`, `totp` or `lark`).", body = ErrorBody),
    )
)]
async fn unset(
    State(state): State<AppState>,
    auth: Auth,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    unset_key(&state, &auth, &key).await
}

// `DELETE /user/{key}` where `{key}` is also a static path of this router: the
// static path wins the match, so without its own DELETE the request would get
// 405 and never reach [`unset`] (`DELETE /user/phone` could not unbind).

#[utoipa::path(
    delete,
    path = "/user/phone",
    tag = "user",
    summary = "Unset User (phone)",
    description = "`DELETE /user/{key}` with `key` = `phone`: unbinds the phone.",
    security(("token" = [])),
    responses(
        (status = 204, description = "Unbound (or was not bound)."),
    )
)]
async fn unset_phone(State(state): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    unset_key(&state, &auth, "phone").await
}

#[utoipa::path(
    delete,
    path = "/user/totp",
    tag = "user",
    summary = "Unset User (totp)",
    description = "`DELETE /user/{key}` with `key` = `totp`: unbinds the TOTP app.",
    security(("token" = [])),
    responses(
        (status = 204, description = "Unbound (or was not bound)."),
    )
)]
async fn unset_totp(State(state): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    unset_key(&state, &auth, "totp").await
}

#[utoipa::path(
    delete,
    path = "/user/password",
    tag = "user",
    summary = "Unset User (password)",
    description = "`DELETE /user/{key}` with `key` = `password`: always refused, a password cannot be unset.",
    security(("token" = [])),
    responses(
        (status = 400, description = "Code: `INVALID_FIELD` (`key` must be `phone`, `totp` or `lark`).", body = ErrorBody),
    )
)]
async fn unset_password(State(state): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    unset_key(&state, &auth, "password").await
}

#[utoipa::path(
    delete,
    path = "/user/phone_code",
    tag = "user",
    summary = "Unset User (phone_code)",
    description = "`DELETE /user/{key}` with `key` = `phone_code`: always refused, it is not a field.",
    security(("token" = [])),
    responses(
        (status = 400, description = "Code: `INVALID_FIELD` (`key` must be `phone`, `totp` or `lark`).", body = ErrorBody),
    )
)]
async fn unset_phone_code(State(state): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    unset_key(&state, &auth, "phone_code").await
}

async fn unset_key(state: &AppState, auth: &Auth, key: &str) -> ApiResult<StatusCode> {
    let update = match key.to_ascii_lowercase().as_str() {
        "phone" => UserChange::Phone(None),
        "totp" => UserChange::Totp(None),
        "lark" => UserChange::Lark(None),
        _ => return Err(ApiError::field("key", "must be phone, totp or lark")),
    };
    change(state, auth, update).await
}
