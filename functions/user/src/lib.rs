//! The signed-in account: profile, password, phone and TOTP binding, unbinding.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Json as JsonResponse, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::clock::rfc3339;
use shared::codes::{self, Channel, Issue};
use shared::http::{Auth, Client, Json, Query};
use shared::model::{Purpose, Totp, User};
use shared::secret::Secret;
use shared::store::{StoreError, Unique, UserChange};
use shared::{ApiError, ApiResult, AppState, lockout, password, totp, validate};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/user", get(profile).patch(set_profile))
        .route(
            "/user/password",
            post(set_password).merge(unset_at("password")),
        )
        .route(
            "/user/phone_code",
            get(phone_code).merge(unset_at("phone_code")),
        )
        .route("/user/phone", post(bind_phone).merge(unset_at("phone")))
        .route(
            "/user/totp",
            get(totp_url).post(bind_totp).merge(unset_at("totp")),
        )
        .route("/user/{key}", delete(unset))
}

/// `DELETE /user/{key}` where `{key}` is also a static path of this router: the
/// static path wins the match, so without its own DELETE the request would get
/// 405 and never reach [`unset`] (`DELETE /user/phone` could not unbind).
fn unset_at(key: &'static str) -> MethodRouter<AppState> {
    delete(
        move |State(state): State<AppState>, auth: Auth| async move {
            unset_key(&state, &auth, key).await
        },
    )
}

/// Maps a uniqueness conflict to the error that names the field.
fn taken(e: StoreError) -> ApiError {
    match e {
        StoreError::Taken(Unique::Email) => ApiError::EmailTaken,
        StoreError::Taken(Unique::Phone) => ApiError::PhoneTaken,
        StoreError::NoSuchUser => ApiError::SessionEnded,
        other => other.into(),
    }
}

async fn load(state: &AppState, auth: &Auth) -> ApiResult<User> {
    state
        .store
        .user(&auth.user_id)
        .await?
        .ok_or(ApiError::SessionEnded)
}

async fn change(state: &AppState, auth: &Auth, change: UserChange) -> ApiResult<StatusCode> {
    state
        .store
        .update_user(&auth.user_id, change, state.now())
        .await
        .map_err(taken)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The profile as the console shows it: phone and TOTP only as masked markers.
fn view(user: &User) -> Value {
    json!({
        "_id": user.id,
        "email": user.email,
        "name": user.name,
        "avatar": user.avatar,
        "phone": user.phone.as_deref().map(|p| validate::mask(p, 4)).unwrap_or_default(),
        "sessions": user.sessions,
        "history": user.history.as_ref().map(|h| json!({
            "time": rfc3339(h.time),
            "ip": h.ip,
            "user_agent": h.user_agent,
            "method": h.method,
        })),
        "totp": if user.totp.is_some() { "******" } else { "" },
        "lark": user.lark,
        "status": user.active,
        "create_time": rfc3339(user.created_at),
        "update_time": rfc3339(user.updated_at),
    })
}

async fn profile(State(state): State<AppState>, auth: Auth) -> ApiResult<JsonResponse<Value>> {
    Ok(JsonResponse(view(&load(&state, &auth).await?)))
}

#[derive(Deserialize)]
struct SetProfile {
    key: String,
    email: Option<String>,
    name: Option<String>,
    avatar: Option<String>,
}

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

#[derive(Deserialize)]
struct SetPassword {
    old: Secret<String>,
    password: Secret<String>,
}

/// Changes the password after checking the old one (throttled like a login),
/// and ends every other session of the account.
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
    lockout::check_user(&state, &client.ip, &user).await?;
    if !state
        .passwords
        .verify(body.old.expose(), Some(&user.password))
        .await
    {
        let key = lockout::failure_key(Some(&user), &user.email);
        return Err(lockout::fail(&state, &client.ip, &key, ApiError::WrongPassword).await);
    }
    let hash = state.passwords.hash(body.password.expose()).await?;
    change(&state, &auth, UserChange::Password(hash)).await?;
    state
        .store
        .end_sessions(&auth.user_id, Some(&auth.session_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct PhoneQuery {
    phone: String,
}

/// Sends a code to the phone to be bound; the code is valid only for that number.
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

#[derive(Deserialize)]
struct BindPhone {
    phone: String,
    code: Secret<String>,
}

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
async fn totp_url(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<impl axum::response::IntoResponse> {
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
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        JsonResponse(json!({ "totp": uri })),
    ))
}

#[derive(Deserialize)]
struct BindTotp {
    totp: Secret<String>,
    tss: Vec<Secret<String>>,
}

/// Binds the pending secret once the app shows two codes of consecutive steps,
/// the later one no older than the previous step.
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
            ApiError::InvalidCode => ApiError::field(
                "totp",
                "is not the pending secret or has expired; request a new one",
            ),
            other => other,
        })?;
    let bound = Totp {
        secret: Secret::new(secret),
        last_step: step,
    };
    change(&state, &auth, UserChange::Totp(Some(bound))).await
}

async fn unset(
    State(state): State<AppState>,
    auth: Auth,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    unset_key(&state, &auth, &key).await
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
