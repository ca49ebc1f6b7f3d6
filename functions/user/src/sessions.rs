//! `GET /user/sessions`, `DELETE /user/sessions/{id}` and `DELETE /user/sessions`:
//! the devices signed in to the account, and signing them out. Ending sessions
//! protects the account, so it needs no recent sign-in; CSRF applies as to every write.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::clock::rfc3339;
use shared::http::{Auth, NoStore, cookies};
use shared::model::{LoginMethod, Session};
use shared::sessions::{self, LISTED};
use shared::{ApiError, ApiResult, AppState};
use utoipa::ToSchema;

/// `GET /user/sessions`: the newest live sessions and how many there are.
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionList {
    /// Newest sign-in first, at most 50.
    sessions: Vec<Device>,
    /// Live sessions of the account (counted exactly up to 1,000 stored).
    total: usize,
}

/// One signed-in device.
#[derive(Serialize, ToSchema)]
struct Device {
    /// Opaque: for `DELETE /user/sessions/{id}`. Not the token's `jti`, and no
    /// use as a credential.
    #[schema(example = "006b49d200q3Zr0xQm0b9XzK3r1vYy8w")]
    id: String,
    /// How it signed in; `null` for sessions from before it was recorded.
    method: Option<LoginMethod>,
    #[schema(format = DateTime)]
    signed_in: String,
    /// Its last renewal (requests renew a session at most once a minute).
    #[schema(format = DateTime)]
    last_seen: String,
    /// The client address at sign-in, as the gateway saw it.
    ip: String,
    /// The user agent at sign-in.
    user_agent: String,
    /// Whether it is the session making this request.
    current: bool,
}

impl Device {
    fn of(session: &Session, current: &str) -> Self {
        Device {
            id: sessions::public_id(&session.id),
            method: session.method,
            signed_in: rfc3339(session.created_at),
            last_seen: rfc3339(session.seen_at()),
            ip: session.ip.clone(),
            user_agent: session.user_agent.clone(),
            current: session.id == current,
        }
    }
}

#[utoipa::path(
    get,
    path = "/user/sessions",
    summary = "User Sessions",
    description = "The account's live sessions (signed-in devices), newest sign-in first: at \
        most 50, and how many there are.",
    security(("token" = [])),
    responses(
        (status = 200, description = "The sessions (`Cache-Control: no-store`).", body = SessionList),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<NoStore<SessionList>> {
    let live = state.store.sessions(&auth.user_id, state.now()).await?;
    Ok(NoStore(SessionList {
        total: live.len(),
        sessions: live
            .iter()
            .take(LISTED)
            .map(|s| Device::of(s, &auth.session_id))
            .collect(),
    }))
}

#[utoipa::path(
    delete,
    path = "/user/sessions/{id}",
    summary = "End User Session",
    description = "Signs one device out: the session with this `id` from `GET /user/sessions`. \
        Ending the current session also clears this browser's `TOKEN` cookie.",
    params(("id" = String, Path, description = "A session's `id` from `GET /user/sessions`.")),
    security(("token" = [])),
    responses(
        (status = 204, description = "Ended; its token now gets 401."),
        (status = 404, description = "Code: `SESSION_NOT_FOUND` (no live session of this account \
            has this id; another account's session answers the same)."),
    )
)]
pub(crate) async fn end_one(
    State(state): State<AppState>,
    auth: Auth,
    uri: Uri,
) -> ApiResult<Response> {
    // The last segment as sent: ids are URL-safe, so anything escaped names no
    // session (and cannot fail to decode into a non-JSON 400).
    let id = uri
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let now = state.now();
    let key = if sessions::is_key(&id) {
        Some(id)
    } else if sessions::is_older_public_id(&id) {
        // Sessions keyed by their jti: found by the digest the list shows.
        let live = state.store.sessions(&auth.user_id, now).await?;
        live.into_iter()
            .map(|s| s.id)
            .find(|key| sessions::public_id(key) == id)
    } else {
        None
    };
    let Some(key) = key else {
        return Err(ApiError::NoSuchSession);
    };
    if !state
        .store
        .end_live_session(&auth.user_id, &key, now)
        .await?
    {
        return Err(ApiError::NoSuchSession);
    }
    if key == auth.session_id {
        let cleared = cookies::set(&state.config, cookies::TOKEN, "", 0);
        return Ok((StatusCode::NO_CONTENT, cleared).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /user/sessions`: how many sessions ended.
#[derive(Serialize, ToSchema)]
pub(crate) struct Ended {
    /// Live sessions ended (the current one is kept).
    ended: usize,
}

#[utoipa::path(
    delete,
    path = "/user/sessions",
    summary = "End Other User Sessions",
    description = "Signs every other device out (\"sign out everywhere else\"); the current \
        session stays.",
    security(("token" = [])),
    responses(
        (status = 200, description = "How many sessions ended.", body = Ended),
    )
)]
pub(crate) async fn end_others(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<Ended>> {
    let ended = state
        .store
        .end_sessions(&auth.user_id, Some(&auth.session_id), state.now())
        .await?;
    Ok(axum::Json(Ended { ended }))
}
