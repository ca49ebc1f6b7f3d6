//! `GET /user` and `PATCH /user`: the profile, and changing one field of it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::clock::rfc3339;
use shared::http::{Auth, Json};
use shared::model::{LarkIdentity, LoginMethod, LoginRecord, User};
use shared::store::UserChange;
use shared::{ApiError, ApiResult, AppState, validate};
use utoipa::ToSchema;

use crate::change;

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
    /// The linked Lark account's public fields, `null` when none is linked.
    lark: Option<LarkIdentity>,
    /// Whether the account is active.
    status: bool,
    #[schema(format = DateTime)]
    create_time: String,
    #[schema(format = DateTime)]
    update_time: String,
}

/// The most recent login, as the weplanx console's profile reads it
/// (`history.timestamp`, `history.metadata.client_ip`). No `metadata.version`
/// or `detail`: the console shows geolocation only for version
/// `shuliancloud.v4`, and this API looks up none.
#[derive(Serialize, ToSchema)]
struct LoginHistory {
    /// When the login was made.
    #[schema(format = DateTime)]
    timestamp: String,
    metadata: LoginHistoryMetadata,
    /// The `User-Agent` of the client that signed in.
    user_agent: String,
}

#[derive(Serialize, ToSchema)]
struct LoginHistoryMetadata {
    /// The client's IP address, as the gateway saw it.
    client_ip: String,
    /// The sign-in method: `password`, `sms`, `totp` or `lark`.
    source: LoginMethod,
}

impl From<&LoginRecord> for LoginHistory {
    fn from(h: &LoginRecord) -> Self {
        LoginHistory {
            timestamp: rfc3339(h.timestamp),
            metadata: LoginHistoryMetadata {
                client_ip: h.metadata.client_ip.clone(),
                source: h.metadata.source,
            },
            user_agent: h.user_agent.clone(),
        }
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
            history: user.history.as_ref().map(LoginHistory::from),
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
pub(crate) async fn profile(auth: Auth) -> axum::Json<Profile> {
    axum::Json(Profile::from(&auth.user))
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
    /// Required when `key` is `avatar`: an `https:` URL (stored as parsed and
    /// re-serialised), or `""` for none.
    #[schema(example = "https://cdn.example.com/avatars/ada.png")]
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
        (status = 401, description = "Codes: `UNAUTHENTICATED`, `SESSION_ENDED`, `REAUTHENTICATE` (`key` is `email` and the session's sign-in is older than `REAUTH_WINDOW`: `POST /user/reauthenticate`, then retry)."),
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
            let email = validate::email("email", email)?;
            // The address resets the password: moving it is a takeover
            // unless the session's holder just proved who they are.
            auth.require_recent(&state)?;
            UserChange::Email(email)
        }
        "name" => UserChange::Name(text("name", &body.name, validate::MAX_NAME, true)?),
        "avatar" => {
            let avatar = validate::required("avatar", &body.avatar)?;
            UserChange::Avatar(validate::avatar("avatar", avatar)?)
        }
        _ => return Err(ApiError::field("key", "must be email, name or avatar")),
    };
    change(&state, &auth, update).await
}
