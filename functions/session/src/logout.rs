//! `POST /logout`: ends the caller's session, signed in or not.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use shared::http::cookies;
use shared::{ApiResult, AppState, sessions};

use crate::{no_content_with, token_cookie};

/// Ends the caller's session, if any, and clears the cookie. Always 204.
#[utoipa::path(
    post,
    path = "/logout",
    summary = "Logout",
    description = "Ends the caller's session, if any, and clears the `TOKEN` cookie.",
    security((), ("token" = [])),
    responses(
        (status = 204, description = "Signed out; the `TOKEN` cookie is cleared.",
            headers(("Set-Cookie" = String, description = "`TOKEN=` with `Max-Age=0`"))),
    )
)]
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let claims =
        cookies::get(&headers, cookies::TOKEN).and_then(|t| state.tokens.verify(t, state.now()));
    if let Some(claims) = claims
        && let Some(key) = sessions::key_of(&claims.jti)
    {
        state.store.end_session(&claims.sub, &key).await?;
    }
    Ok(no_content_with(token_cookie(&state, "")))
}
