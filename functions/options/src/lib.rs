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
    /// The storage's kind, e.g. `cos` or `s3` (`UPLOAD_TYPE`).
    #[serde(rename = "type")]
    kind: String,
    /// Where uploads go (`UPLOAD_URL`).
    url: String,
    /// The largest upload, in kilobytes (`UPLOAD_LIMIT_KB`), as the console's
    /// upload component reads it.
    limit: u64,
}

/// `type=collaboration`: where a console sends the browser to sign in with
/// Lark or link a Lark account. The weplanx console builds
/// `{url}?redirect_uri={redirect, encoded}&app_id={app_id}&state={"action":"link"}`
/// (or `state={}` to sign in); `url` is this API's `GET /lark/authorize`,
/// which ignores the first two, binds a state nonce to the browser and goes
/// on to Lark's authorize page.
#[derive(Serialize, ToSchema)]
struct CollaborationOptions {
    /// This API's `GET /lark/authorize`, without a query (`LARK_REDIRECT` + `/authorize`;
    /// empty while `LARK_REDIRECT` is).
    url: String,
    /// This API's Lark callback (`LARK_REDIRECT`).
    redirect: String,
    /// The Lark app's id (`LARK_APP_ID`).
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
            limit: c.upload.limit_kb,
        }),
        "collaboration" => Options::Collaboration(CollaborationOptions {
            url: c.lark.start_url(),
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
