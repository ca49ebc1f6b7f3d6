//! `GET /options?type=`: public settings the console needs before sign-in
//! (upload target, Lark OAuth), and fresh random credentials.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use shared::http::Query;
use shared::{ApiError, ApiResult, AppState, crypto};

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn router() -> Router<AppState> {
    Router::new().route("/options", get(options))
}

#[derive(Deserialize)]
struct OptionsQuery {
    #[serde(rename = "type")]
    kind: String,
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn options(
    State(state): State<AppState>,
    Query(q): Query<OptionsQuery>,
) -> ApiResult<impl IntoResponse> {
    let c = &state.config;
    let body = match q.kind.trim() {
        "upload" => json!({ "type": c.upload.kind, "url": c.upload.url, "limit": c.upload.limit }),
        "collaboration" => json!({
            "url": format!(
                "{}?redirect_uri={}&app_id={}",
                c.lark.auth_url,
                encode(&c.lark.redirect),
                encode(&c.lark.app_id)
            ),
            "redirect": c.lark.redirect,
            "app_id": c.lark.app_id,
        }),
        "generate-secret" => json!({
            "id": crypto::random_string(ALPHANUMERIC, 8),
            "key": crypto::random_string(ALPHANUMERIC, 16),
        }),
        _ => {
            return Err(ApiError::field(
                "type",
                "must be upload, collaboration or generate-secret",
            ));
        }
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)))
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn encodes_query_values() {
        assert_eq!(
            encode("https://a.b/c?d=e f"),
            "https%3A%2F%2Fa.b%2Fc%3Fd%3De%20f"
        );
        assert_eq!(encode("cli_a1-B2.~"), "cli_a1-B2.~");
    }
}
