//! `GET /`: who answered, the caller's IP, the time, the redacted configuration
//! outside release mode; and the XSRF cookies every later write must echo,
//! with the token also in a header for consoles that cannot read the cookie.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{AppendHeaders, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use shared::clock::rfc3339;
use shared::config::Mode;
use shared::http::{Client, cookies};
use shared::{AppState, crypto};
use utoipa::{OpenApi, ToSchema};

/// This function's operations in the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(paths(ping))]
    struct Doc;
    Doc::openapi()
}

/// The body of `GET /`.
#[derive(Serialize, ToSchema)]
struct Ping {
    /// The server's name (`NAME`).
    name: String,
    /// The caller's IP address as the edge saw it.
    ip: String,
    /// The server's time, RFC 3339.
    #[schema(format = DateTime)]
    now: String,
    /// The redacted configuration; only outside release mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    values: Option<serde_json::Value>,
}

/// How long the XSRF cookies last: a week, refreshed by every ping.
const XSRF_MAX_AGE: i64 = 7 * 86_400;

/// The response header with the XSRF token (the request header's name). A
/// console on another site cannot read the `XSRF-TOKEN` cookie, which belongs
/// to the API's site; CORS exposes this header to the allowed origins only.
const XSRF_HEADER: &str = "x-xsrf-token";

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(ping))
}

/// A salt we issued: 22 URL-safe base64 characters (128 bits).
fn valid_salt(salt: &str) -> bool {
    salt.len() == 22
        && salt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[utoipa::path(
    get,
    path = "/",
    summary = "Ping",
    description = "Who answered, and the XSRF cookies: `XSRF-SALT` (HttpOnly) and `XSRF-TOKEN`, \
        whose value every POST, PATCH, PUT and DELETE echoes in the `X-XSRF-TOKEN` header. \
        The same value is in the `X-XSRF-TOKEN` response header (exposed through CORS), \
        for a console on another site, which cannot read the cookie.",
    responses(
        (status = 200, description = "Sets the `XSRF-SALT` and `XSRF-TOKEN` cookies.", body = Ping,
            headers(
                ("Set-Cookie" = String, description = "`XSRF-SALT` (HttpOnly) and `XSRF-TOKEN`"),
                ("X-XSRF-TOKEN" = String, description = "The value of `XSRF-TOKEN`"),
                ("Cache-Control" = String, description = "`no-store`: the token is per browser"),
            )),
    )
)]
async fn ping(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
) -> impl IntoResponse {
    // Keep a salt the browser already holds so open tabs keep a valid token.
    let salt = cookies::get(&headers, cookies::XSRF_SALT)
        .filter(|s| valid_salt(s))
        .map_or_else(crypto::random_id, str::to_string);
    let token = state.keys.xsrf_token(&salt);
    let config = &state.config;
    let body = Ping {
        name: config.name.clone(),
        ip: client.ip,
        now: rfc3339(state.now()),
        values: (config.mode != Mode::Release).then(|| config.redacted()),
    };
    (
        AppendHeaders([
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                HeaderName::from_static(XSRF_HEADER),
                HeaderValue::from_str(&token).unwrap_or_else(|_| HeaderValue::from_static("")),
            ),
        ]),
        cookies::set(config, cookies::XSRF_SALT, &salt, XSRF_MAX_AGE),
        cookies::set(config, cookies::XSRF_TOKEN, &token, XSRF_MAX_AGE),
        Json(body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salts() {
        assert!(valid_salt(&crypto::random_id()));
        assert!(!valid_salt("short"));
        assert!(!valid_salt("aaaaaaaaaaaaaaaaaaaa;b"));
    }
}
