//! `GET /refresh_code` and `/refresh_token`: a new token for the same session,
//! in exchange for a one-time code bound to it.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use shared::codes;
use shared::http::{Auth, Json, NoStore, Query};
use shared::model::Purpose;
use shared::secret::Secret;
use shared::{ApiResult, AppState, validate};
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
    description = "A one-time code bound to the caller's session, to exchange at `/refresh_token`.",
    security(("token" = [])),
    responses(
        (status = 200, description = "The code (`Cache-Control: no-store`).", body = RefreshCode),
    )
)]
pub(crate) async fn refresh_code(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<NoStore<RefreshCode>> {
    let ttl = state.config.lifetimes.refresh_code;
    let code = codes::store(&state, Purpose::Refresh, &auth.session_id, None, ttl, None).await?;
    Ok(NoStore(RefreshCode { code }))
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
        (status = 400, description = "Codes: `INVALID_FIELD`, `INVALID_CODE`."),
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
        (status = 400, description = "Codes: `INVALID_JSON`, `INVALID_FIELD`, `INVALID_CODE`."),
    )
)]
pub(crate) async fn refresh_token_post(
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
    let ttl = state.config.lifetimes.token;
    let jwt = state
        .tokens
        .issue(&auth.user_id, &auth.session_id, state.now(), ttl);
    Ok(no_content_with(token_cookie(&state, &jwt)))
}
