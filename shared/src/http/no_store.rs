//! A JSON answer no cache may keep: one-time codes, TOTP secrets, fresh credentials.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// `T` as JSON with `Cache-Control: no-store`.
pub struct NoStore<T>(pub T);

impl<T: Serialize> IntoResponse for NoStore<T> {
    fn into_response(self) -> Response {
        ([(header::CACHE_CONTROL, "no-store")], axum::Json(self.0)).into_response()
    }
}
