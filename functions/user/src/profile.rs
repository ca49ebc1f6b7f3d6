//! `GET /user` and `PATCH /user`: the profile, and changing one field of it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::clock::rfc3339;
use shared::http::{Auth, Json};
use shared::model::{LoginMethod, User};
use shared::store::UserChange;
use shared::{ApiError, ApiResult, AppState, validate};
use utoipa::ToSchema;

use crate::{change, load};

/// The profile of `GET /user`: phone and TOTP only as masked markers.
#[derive(Serialize, ToSchema)]
pub(crate) struct Profile {
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
    summary = "User Info",
    description = "The signed-in account's profile.",
    security(("token" = [])),
    responses(
        (status = 200, description = "The profile.", body = Profile),
    )
)]
pub(crate) async fn profile(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<Profile>> {
    Ok(axum::Json(Profile::from(&load(&state, &auth).await?)))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct SetProfile {
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
    summary = "Set User",
    description = "Changes one profile field, named by `key`.",
    request_body = SetProfile,
    security(("token" = [])),
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `EMAIL_TAKEN`."),
    )
)]
pub(crate) async fn set_profile(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<SetProfile>,
) -> ApiResult<StatusCode> {
    // The named field must be present; `non_empty` as `validate::text` has it.
    let text = |field, value, max, non_empty| {
        validate::text(field, validate::required(field, value)?, max, non_empty)
    };
    let update = match body.key.trim().to_ascii_lowercase().as_str() {
        "email" => {
            let email = validate::required("email", &body.email)?;
            UserChange::Email(validate::email("email", email)?)
        }
        "name" => UserChange::Name(text("name", &body.name, validate::MAX_NAME, true)?),
        "avatar" => UserChange::Avatar(text("avatar", &body.avatar, validate::MAX_AVATAR, false)?),
        _ => return Err(ApiError::field("key", "must be email, name or avatar")),
    };
    change(&state, &auth, update).await
}
