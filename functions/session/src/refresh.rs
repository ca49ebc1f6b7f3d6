//! `GET /refresh_code` and `/refresh_token`: a new token for the same session,
//! in exchange for a one-time code bound to it.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use shared::crypto;
use shared::http::{Auth, Json, NoStore, Query};
use shared::model::{Purpose, RefreshIssue, RefreshRedemption};
use shared::secret::Secret;
use shared::{ApiError, ApiResult, AppState, validate};
use utoipa::{IntoParams, ToSchema};

use crate::{no_content_with, token_cookie};

/// `{"code": ...}`: a refresh code for `/refresh_token`.
#[derive(Serialize, ToSchema)]
pub(crate) struct RefreshCode {
    /// Six digits, valid for a few seconds and once.
    #[schema(pattern = "^[0-9]{6}$", example = "123456")]
    code: String,
}

/// A one-time code, bound to the caller's session, to exchange for a new token.
#[utoipa::path(
    get,
    path = "/refresh_code",
    summary = "Token Refresh Code",
    description = "A one-time code bound to the caller's session, to exchange at `/refresh_token` \
        within 15 s. Several may be pending for one session (each tab asks for its own; at most 20, \
        a 21st replaces the one that expires first), and each works once.",
    security(("token" = [])),
    responses(
        (status = 200, description = "The code (`Cache-Control: no-store`).", body = RefreshCode),
        (status = 400, description = "Code: `TOO_MANY_CODES` (20 codes of this session are \
            pending; `Retry-After` says when one expires).",
            headers(("Retry-After" = i64, description = "Seconds until a pending code expires"))),
    )
)]
pub(crate) async fn refresh_code(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<NoStore<RefreshCode>> {
    let now = state.now();
    let code = crypto::random_code();
    let expires_at = now + state.config.lifetimes.refresh_code;
    let allowance = state.config.limits.guessing.code_attempts;
    let digest = digest(&state, &auth, &code);
    match state
        .store
        .add_refresh_code(&auth.session, &digest, expires_at, allowance, now)
        .await?
    {
        RefreshIssue::Added => Ok(NoStore(RefreshCode { code })),
        RefreshIssue::Full { retry_after } => Err(ApiError::TooManyCodes { retry_after }),
        RefreshIssue::Ended => Err(ApiError::SessionEnded),
    }
}

/// What the session keeps of a refresh code: its keyed digest under the
/// current server key, bound to the session.
fn digest(state: &AppState, auth: &Auth, code: &str) -> String {
    let purpose = Purpose::Refresh.as_str();
    state.keys.code_digest(purpose, &auth.session_id, code)
}

/// The digests a presented code may be stored under: one per server key in
/// force, so a code issued just before a rotation step still works.
fn digests(state: &AppState, auth: &Auth, code: &str) -> Vec<String> {
    let purpose = Purpose::Refresh.as_str();
    state.keys.code_digests(purpose, &auth.session_id, code)
}

#[derive(Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RefreshBody {
    /// The six-digit code from `GET /refresh_code`.
    #[schema(value_type = String, format = Password, pattern = "^[0-9]{6}$")]
    #[param(value_type = String, format = Password, pattern = "^[0-9]{6}$")]
    code: Secret<String>,
}

#[utoipa::path(
    get,
    path = "/refresh_token",
    summary = "Refresh Token",
    description = "Exchanges a refresh code (in the query) for a new `TOKEN` of the same session.",
    params(RefreshBody),
    security(("token" = [])),
    responses(
        (status = 204, description = "A new `TOKEN` cookie is set.",
            headers(("Set-Cookie" = String, description = "The `TOKEN` cookie"))),
        (status = 400, description = "Codes: `INVALID_FIELD`, `INVALID_CODE`, `TOO_MANY_ATTEMPTS` \
            (no try left: the session's tries are 5 plus one per code issued; ask for a new code)."),
    )
)]
pub(crate) async fn refresh_token_get(
    state: State<AppState>,
    auth: Auth,
    Query(q): Query<RefreshBody>,
) -> ApiResult<Response> {
    refresh_token(state, auth, q).await
}

#[utoipa::path(
    post,
    path = "/refresh_token",
    summary = "Refresh Token (JSON body)",
    description = "Exchanges a refresh code (in a JSON body) for a new `TOKEN` of the same session.",
    request_body = RefreshBody,
    security(("token" = [])),
    responses(
        (status = 204, description = "A new `TOKEN` cookie is set.",
            headers(("Set-Cookie" = String, description = "The `TOKEN` cookie"))),
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `INVALID_CODE`, \
            `TOO_MANY_ATTEMPTS` (no try left: the session's tries are 5 plus one per code issued; \
            ask for a new code)."),
    )
)]
pub(crate) async fn refresh_token_post(
    state: State<AppState>,
    auth: Auth,
    Json(body): Json<RefreshBody>,
) -> ApiResult<Response> {
    refresh_token(state, auth, body).await
}

/// Exchanges a refresh code for a new token of the same session. The try is
/// counted before the code is looked up (see `RefreshCodes`).
async fn refresh_token(
    State(state): State<AppState>,
    auth: Auth,
    body: RefreshBody,
) -> ApiResult<Response> {
    let code = validate::code("code", body.code.expose())?;
    let now = state.now();
    let digests = digests(&state, &auth, &code);
    match state
        .store
        .redeem_refresh_code(&auth.session, &digests, now)
        .await?
    {
        Some(RefreshRedemption::Accepted) => {}
        Some(RefreshRedemption::Rejected) => return Err(ApiError::InvalidCode),
        Some(RefreshRedemption::Refused) => return Err(ApiError::TooManyAttempts),
        None => return Err(ApiError::SessionEnded),
    }
    let ttl = state.config.lifetimes.token;
    let jwt = state.tokens.issue(&auth.user_id, &auth.jti, now, ttl);
    Ok(no_content_with(token_cookie(&state, &jwt)))
}
