//! The one error type of the HTTP layer, and its one mapping to status, code and message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::notify::NotifyError;
use crate::password::PasswordError;
use crate::store::StoreError;

pub type ApiResult<T> = Result<T, ApiError>;

/// Every failure a client can see. Variants carry only what is safe to show;
/// internal detail goes to the log in [`ApiError::into_response`], never to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("no such route")]
    NotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("the sign-in details are incorrect")]
    InvalidCredentials,
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("the code is wrong, expired or already used")]
    InvalidCode,
    #[error("password: {0}")]
    WeakPassword(String),
    #[error("old: the current password is incorrect")]
    WrongPassword,
    #[error("email: already used by another account")]
    EmailTaken,
    #[error("phone: already used by another account")]
    PhoneTaken,
    #[error("tss: the codes do not match the pending TOTP secret")]
    InvalidTotp,
    #[error("not signed in")]
    Unauthenticated,
    #[error("the session has ended; sign in again")]
    SessionEnded,
    #[error("missing or invalid X-XSRF-TOKEN header")]
    Csrf,
    #[error("too many requests; retry in {retry_after} s")]
    TooManyRequests { retry_after: i64 },
    #[error("a backing service is unavailable; try again shortly")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A missing or invalid field, named so the client can point at it.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidField { .. }
            | InvalidJson(_)
            | InvalidCredentials
            | AccountDisabled
            | InvalidCode
            | WeakPassword(_)
            | WrongPassword
            | EmailTaken
            | PhoneTaken
            | InvalidTotp => StatusCode::BAD_REQUEST,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Unauthenticated | SessionEnded => StatusCode::UNAUTHORIZED,
            Csrf => StatusCode::FORBIDDEN,
            TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable business code.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidField { .. } => "INVALID_FIELD",
            InvalidJson(_) => "INVALID_JSON",
            UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            NotFound => "NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            InvalidCredentials => "INVALID_CREDENTIALS",
            AccountDisabled => "ACCOUNT_DISABLED",
            InvalidCode => "INVALID_CODE",
            WeakPassword(_) => "WEAK_PASSWORD",
            WrongPassword => "WRONG_PASSWORD",
            EmailTaken => "EMAIL_TAKEN",
            PhoneTaken => "PHONE_TAKEN",
            InvalidTotp => "INVALID_TOTP",
            Unauthenticated => "UNAUTHENTICATED",
            SessionEnded => "SESSION_ENDED",
            Csrf => "CSRF_FAILED",
            TooManyRequests { .. } => "RATE_LIMITED",
            Unavailable(_) => "SERVICE_UNAVAILABLE",
            Internal(_) => "INTERNAL",
        }
    }
}

/// The body of every error response (`ErrorBody` in the OpenAPI document).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
pub struct Body<'a> {
    /// The stable, machine-readable business code; each response of the
    /// document lists the codes it can carry.
    #[schema(example = "INVALID_FIELD")]
    code: &'a str,
    /// A human-readable explanation; for `INVALID_FIELD` it starts with the field's path.
    #[schema(example = "email: is not a valid address")]
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unavailable(detail) => {
                tracing::error!(error = %detail, "backend unavailable")
            }
            ApiError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            _ => {}
        }
        let status = self.status();
        let body = Body {
            code: self.code(),
            message: self.to_string(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after } = self {
            let secs = retry_after.max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let detail = with_causes(&e);
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable(detail),
            _ => ApiError::Internal(detail),
        }
    }
}

/// An error and the chain of its causes, for the log.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<NotifyError> for ApiError {
    fn from(e: NotifyError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_sets_retry_after() {
        let r = ApiError::TooManyRequests { retry_after: 7 }.into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn internal_detail_is_not_in_the_message() {
        let e = ApiError::Unavailable("dynamodb: connection refused at 10.0.0.1".into());
        assert!(!e.to_string().contains("dynamodb"));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
