//! `GET /verify`: whether the caller's session lives (the `Auth` extractor decides).

use axum::http::StatusCode;
use shared::http::Auth;

#[utoipa::path(
    get,
    path = "/verify",
    summary = "Verify",
    description = "204 while the caller's session lives.",
    security(("token" = [])),
    responses(
        (status = 204, description = "Signed in."),
    )
)]
pub(crate) async fn verify(_: Auth) -> StatusCode {
    StatusCode::NO_CONTENT
}
