//! `GET /options?type=`: public settings the console needs before sign-in
//! (upload target, Lark OAuth), and fresh random credentials.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use shared::http::{NoStore, Query};
use shared::{ApiError, ApiResult, AppState, crypto};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// This function's operations in the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(paths(options))]
    struct Doc;
    Doc::openapi()
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn router() -> Router<AppState> {
    Router::new().route("/options", get(options))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OptionsQuery {
    /// `upload`, `collaboration` or `generate-secret`.
    #[serde(rename = "type")]
    #[param(
        example = "upload",
        pattern = "^(upload|collaboration|generate-secret)$"
    )]
    kind: String,
}

/// The bodies of `GET /options`, one per `type`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum Options {
    Upload(UploadOptions),
    Collaboration(CollaborationOptions),
    Secret(GeneratedSecret),
}

/// `type=upload`: where and how much the console may upload.
#[derive(Serialize, ToSchema)]
struct UploadOptions {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    /// The size limit in bytes.
    limit: u64,
}

/// `type=collaboration`: the Lark OAuth sign-in URL and its parts.
#[derive(Serialize, ToSchema)]
struct CollaborationOptions {
    url: String,
    redirect: String,
    app_id: String,
}

/// `type=generate-secret`: a fresh random id (8 characters) and key (16).
#[derive(Serialize, ToSchema)]
struct GeneratedSecret {
    #[schema(pattern = "^[A-Za-z0-9]{8}$")]
    id: String,
    #[schema(pattern = "^[A-Za-z0-9]{16}$")]
    key: String,
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

#[utoipa::path(
    get,
    path = "/options",
    summary = "Load Option",
    description = "Public settings the console needs before sign-in, or fresh random credentials.",
    params(OptionsQuery),
    responses(
        (status = 200, description = "The options of that type (`Cache-Control: no-store`).", body = Options),
        (status = 400, description = "Code: `INVALID_FIELD`."),
    )
)]
async fn options(
    State(state): State<AppState>,
    Query(q): Query<OptionsQuery>,
) -> ApiResult<NoStore<Options>> {
    let c = &state.config;
    let body = match q.kind.trim() {
        "upload" => Options::Upload(UploadOptions {
            kind: c.upload.kind.clone(),
            url: c.upload.url.clone(),
            limit: c.upload.limit,
        }),
        "collaboration" => Options::Collaboration(CollaborationOptions {
            url: format!(
                "{}?redirect_uri={}&app_id={}",
                c.lark.auth_url,
                encode(&c.lark.redirect),
                encode(&c.lark.app_id)
            ),
            redirect: c.lark.redirect.clone(),
            app_id: c.lark.app_id.clone(),
        }),
        "generate-secret" => Options::Secret(GeneratedSecret {
            id: crypto::random_string(ALPHANUMERIC, 8),
            key: crypto::random_string(ALPHANUMERIC, 16),
        }),
        _ => {
            return Err(ApiError::field(
                "type",
                "must be upload, collaboration or generate-secret",
            ));
        }
    };
    Ok(NoStore(body))
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
