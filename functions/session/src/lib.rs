//! Signing in and out: password, SMS, TOTP and Lark logins (and linking a
//! Lark account), session verification, token refresh, logout. One module per operation group; this file routes
//! them and lists them for the OpenAPI document.

mod lark;
mod login;
mod logout;
mod refresh;
mod verify;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use shared::AppState;
use shared::http::cookies::{self, SetCookie};
use utoipa::OpenApi;

/// This function's operations in the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(paths(
        login::login,
        login::sms_code,
        login::sms_login,
        login::totp_login,
        lark::authorize,
        lark::callback,
        verify::verify,
        refresh::refresh_code,
        refresh::refresh_token_get,
        refresh::refresh_token_post,
        logout::logout
    ))]
    struct Doc;
    Doc::openapi()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(login::login))
        .route("/login/sms", get(login::sms_code).post(login::sms_login))
        .route("/login/totp", post(login::totp_login))
        .route("/lark/authorize", get(lark::authorize))
        .route("/lark", get(lark::callback))
        .route("/verify", get(verify::verify))
        .route("/refresh_code", get(refresh::refresh_code))
        .route(
            "/refresh_token",
            get(refresh::refresh_token_get).post(refresh::refresh_token_post),
        )
        .route("/logout", post(logout::logout))
}

/// The `TOKEN` cookie carrying `jwt` (empty, it clears the cookie).
fn token_cookie(state: &AppState, jwt: &str) -> SetCookie {
    let ttl = if jwt.is_empty() {
        0
    } else {
        state.config.lifetimes.token
    };
    cookies::set(&state.config, cookies::TOKEN, jwt, ttl)
}

/// 204 with a `Set-Cookie`.
fn no_content_with(cookie: SetCookie) -> Response {
    (StatusCode::NO_CONTENT, cookie).into_response()
}
