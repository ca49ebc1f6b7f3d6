//! The one error type of the HTTP layer, and its one mapping to status, code and message.
//! The domain's errors (fields, codes, lockouts, the store) become it here, in
//! one `From` each.

use std::fmt;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::codes::CodeError;
use crate::lockout::LockoutError;
use crate::notify::NotifyError;
use crate::password::PasswordError;
use crate::store::{StoreError, Unique};
use crate::validate::FieldError;

pub type ApiResult<T> = Result<T, ApiError>;

/// What went wrong behind a 500 or 503: kept for the log, never shown to the client.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Every failure a client can see. Variants carry only what is safe to show;
/// the cause of a 500 or 503 rides along to the request log (see [`Failure`]).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("no such route")]
    NotFound,
    #[error("no such session")]
    NoSuchSession,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("the sign-in details are incorrect")]
    InvalidCredentials,
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("the code is wrong, expired or already used")]
    InvalidCode,
    /// As many refresh codes as allowed are pending for the session (a limit
    /// of a seed operation: 400, with `Retry-After`).
    #[error("too many refresh codes pending; retry in {retry_after} s")]
    TooManyCodes { retry_after: i64 },
    /// No try is left at a session's refresh codes; a new code brings one.
    #[error("too many wrong codes; ask for a new code")]
    TooManyAttempts,
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
    Unavailable(#[source] Cause),
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl ApiError {
    /// A missing or invalid field, named so the client can point at it.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidField(FieldError::new(field, reason))
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidField(_)
            | InvalidJson(_)
            | InvalidCredentials
            | AccountDisabled
            | InvalidCode
            | TooManyCodes { .. }
            | TooManyAttempts
            | WeakPassword(_)
            | WrongPassword
            | EmailTaken
            | PhoneTaken
            | InvalidTotp => StatusCode::BAD_REQUEST,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            NotFound | NoSuchSession => StatusCode::NOT_FOUND,
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
            InvalidField(_) => "INVALID_FIELD",
            InvalidJson(_) => "INVALID_JSON",
            UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            NotFound => "NOT_FOUND",
            NoSuchSession => "SESSION_NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            InvalidCredentials => "INVALID_CREDENTIALS",
            AccountDisabled => "ACCOUNT_DISABLED",
            InvalidCode => "INVALID_CODE",
            TooManyCodes { .. } => "TOO_MANY_CODES",
            TooManyAttempts => "TOO_MANY_ATTEMPTS",
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

/// The cause of a 500 or 503, left in the response's extensions by
/// [`ApiError::into_response`] so that the request log prints it once, with
/// the request it belongs to.
#[derive(Debug, Clone)]
pub struct Failure(pub Arc<dyn std::error::Error + Send + Sync>);

/// The cause and its sources, `outer: inner: ...`.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code(),
            message: self.to_string(),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        match self {
            ApiError::TooManyRequests { retry_after } | ApiError::TooManyCodes { retry_after } => {
                let secs = retry_after.max(1).to_string();
                if let Ok(value) = HeaderValue::from_str(&secs) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => {
                response.extensions_mut().insert(Failure(cause.into()));
            }
            _ => {}
        }
        response
    }
}

/// The one mapping of store failures: a uniqueness guard names its field, an
/// unreachable database is 503, anything else (a corrupt record, a missing
/// account where one must exist) is 500.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Taken(Unique::Email) => ApiError::EmailTaken,
            StoreError::Taken(Unique::Phone) => ApiError::PhoneTaken,
            StoreError::Unavailable(_) => ApiError::Unavailable(Box::new(e)),
            StoreError::NoSuchUser | StoreError::Corrupt { .. } => ApiError::Internal(Box::new(e)),
        }
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        ApiError::Internal(Box::new(e))
    }
}

impl From<NotifyError> for ApiError {
    fn from(e: NotifyError) -> Self {
        ApiError::Unavailable(Box::new(e))
    }
}

/// A refused or unsendable code; a code presented wrong is `INVALID_CODE`
/// (handlers that mean something else by it map [`CodeError::Rejected`] first).
impl From<CodeError> for ApiError {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::Limited { retry_after } => ApiError::TooManyRequests { retry_after },
            CodeError::Rejected => ApiError::InvalidCode,
            CodeError::Store(e) => e.into(),
            CodeError::Send(e) => e.into(),
        }
    }
}

impl From<LockoutError> for ApiError {
    fn from(e: LockoutError) -> Self {
        match e {
            LockoutError::Locked { retry_after } => ApiError::TooManyRequests { retry_after },
            LockoutError::Store(e) => e.into(),
        }
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

    #[tokio::test]
    async fn the_cause_goes_to_the_log_not_the_client() {
        let e: ApiError = StoreError::Unavailable("connection refused at 10.0.0.1".into()).into();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let r = e.into_response();
        let failure = r.extensions().get::<Failure>().expect("the cause is kept");
        assert_eq!(
            failure.to_string(),
            "the store is unavailable: connection refused at 10.0.0.1"
        );
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(!body.contains("10.0.0.1"), "{body}");
        assert!(body.contains("SERVICE_UNAVAILABLE"), "{body}");
    }

    #[test]
    fn a_cause_prints_with_its_sources() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] NotifyError);
        let r = ApiError::Internal(Box::new(Outer(NotifyError("inner".into())))).into_response();
        let failure = r.extensions().get::<Failure>().unwrap();
        assert_eq!(failure.to_string(), "outer: notifier unavailable: inner");
    }

    #[test]
    fn client_errors_carry_no_failure() {
        let r = ApiError::field("email", "is required").into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.extensions().get::<Failure>().is_none());
    }
}
