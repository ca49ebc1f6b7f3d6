//! The one error type of the HTTP layer, and its one mapping to status, code and message.
//! The domain's errors (fields, codes, guessing limits, the store) become it
//! here, in one `From` each.

use std::fmt;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::codes::CodeError;
use crate::notify::NotifyError;
use crate::password::PasswordError;
use crate::store::{StoreError, Unique};
use crate::throttle::{GuessKind, ThrottleError};
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
    /// Wrong sign-in details: password, SMS code or TOTP code (the console's code).
    #[error("the sign-in details are incorrect")]
    AuthIncorrect,
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("the code is wrong, expired or already used")]
    InvalidCode,
    /// As many refresh codes as allowed are pending for the session (a limit
    /// of a seed operation: 400, with `Retry-After`).
    #[error("too many refresh codes pending; try again in {}", in_words(*.retry_after))]
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
    /// Lark sign-in is off: the message names the settings it waits for.
    #[error("Lark sign-in is off until {0} is set")]
    LarkDisabled(String),
    /// A Lark callback whose `state` is missing, not this browser's, spent or expired.
    #[error(
        "this Lark sign-in was not begun in this browser, or has expired or been used; start again"
    )]
    LarkState,
    /// The person declined at Lark's authorize page.
    #[error("the Lark sign-in was cancelled")]
    LarkDenied,
    /// Lark refused the code (wrong, spent or expired, or the app's settings).
    #[error("Lark refused the sign-in; start again")]
    LarkRefused(#[source] crate::lark::LarkError),
    #[error("Lark cannot be reached; try again shortly")]
    LarkUnavailable(#[source] Cause),
    #[error("no account is linked to this Lark account")]
    LarkNotLinked,
    #[error("this Lark account is already linked to another account")]
    LarkTaken,
    #[error("not signed in")]
    Unauthenticated,
    #[error("the session has ended; sign in again")]
    SessionEnded,
    /// A sensitive change on a session whose sign-in is not recent: the
    /// console asks for the password (`POST /user/reauthenticate`) and retries.
    #[error("this change needs a recent sign-in; confirm your password or TOTP code first")]
    Reauthenticate,
    #[error("missing or invalid X-XSRF-TOKEN header")]
    Csrf,
    /// A throttled sign-in (the console's code for it); `Retry-After` says when to try again.
    #[error("too many failed sign-ins; try again in {}", in_words(*.retry_after))]
    SignInThrottled { retry_after: i64 },
    /// Any other limit, e.g. a code requested again too soon; `Retry-After` says when.
    #[error("{reason}; try again in {}", in_words(*.retry_after))]
    RateLimited {
        reason: &'static str,
        retry_after: i64,
    },
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
            // Limits too: the seed documents only 400 for its operations, and
            // its console shows a 400's message but nothing for a 429.
            InvalidField(_)
            | InvalidJson(_)
            | AuthIncorrect
            | AccountDisabled
            | InvalidCode
            | TooManyCodes { .. }
            | TooManyAttempts
            | WeakPassword(_)
            | WrongPassword
            | EmailTaken
            | PhoneTaken
            | InvalidTotp
            | LarkState
            | LarkDenied
            | LarkRefused(_)
            | LarkNotLinked
            | LarkTaken
            | SignInThrottled { .. }
            | RateLimited { .. } => StatusCode::BAD_REQUEST,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            NotFound | NoSuchSession | LarkDisabled(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Unauthenticated | SessionEnded | Reauthenticate => StatusCode::UNAUTHORIZED,
            Csrf => StatusCode::FORBIDDEN,
            Unavailable(_) | LarkUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            AuthIncorrect => "AUTH_INCORRECT",
            AccountDisabled => "ACCOUNT_DISABLED",
            InvalidCode => "INVALID_CODE",
            TooManyCodes { .. } => "TOO_MANY_CODES",
            TooManyAttempts => "TOO_MANY_ATTEMPTS",
            WeakPassword(_) => "WEAK_PASSWORD",
            WrongPassword => "WRONG_PASSWORD",
            EmailTaken => "EMAIL_TAKEN",
            PhoneTaken => "PHONE_TAKEN",
            InvalidTotp => "INVALID_TOTP",
            LarkDisabled(_) => "LARK_DISABLED",
            LarkState => "LARK_STATE_INVALID",
            LarkDenied => "LARK_DENIED",
            LarkRefused(_) => "LARK_REFUSED",
            LarkUnavailable(_) => "LARK_UNAVAILABLE",
            LarkNotLinked => "LARK_NOT_LINKED",
            LarkTaken => "LARK_TAKEN",
            Unauthenticated => "UNAUTHENTICATED",
            SessionEnded => "SESSION_ENDED",
            Reauthenticate => "REAUTHENTICATE",
            Csrf => "CSRF_FAILED",
            SignInThrottled { .. } => "AUTH_MANY_INCORRECT",
            RateLimited { .. } => "RATE_LIMITED",
            Unavailable(_) => "SERVICE_UNAVAILABLE",
            Internal(_) => "INTERNAL",
        }
    }
}

/// The codes of limits; their answers carry `Retry-After`.
pub const LIMIT_CODES: [&str; 2] = ["AUTH_MANY_INCORRECT", "RATE_LIMITED"];

/// A wait in words, rounded up so that waiting as told is enough:
/// "42 seconds", "15 minutes", "1 hour 5 minutes".
fn in_words(seconds: i64) -> String {
    fn unit(n: i64, name: &str) -> String {
        format!("{n} {name}{}", if n == 1 { "" } else { "s" })
    }
    let seconds = seconds.max(1);
    if seconds < 60 {
        return unit(seconds, "second");
    }
    let minutes = (seconds + 59) / 60;
    match (minutes / 60, minutes % 60) {
        (0, m) => unit(m, "minute"),
        (h, 0) => unit(h, "hour"),
        (h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
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
            ApiError::SignInThrottled { retry_after }
            | ApiError::RateLimited { retry_after, .. }
            | ApiError::TooManyCodes { retry_after } => {
                let secs = retry_after.max(1).to_string();
                if let Ok(value) = HeaderValue::from_str(&secs) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            ApiError::Unavailable(cause)
            | ApiError::Internal(cause)
            | ApiError::LarkUnavailable(cause) => {
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
            StoreError::Taken(Unique::Lark) => ApiError::LarkTaken,
            StoreError::Unavailable(_) => ApiError::Unavailable(Box::new(e)),
            // Callers that can race a change of credentials say what it means for them.
            StoreError::Changed => ApiError::Unavailable(Box::new(e)),
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
/// (the SMS sign-in, for which it is `AUTH_INCORRECT`, maps [`CodeError::Rejected`] first).
impl From<CodeError> for ApiError {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::Limited { retry_after } => ApiError::RateLimited {
                reason: "too many codes requested",
                retry_after,
            },
            CodeError::Rejected => ApiError::InvalidCode,
            CodeError::Store(e) => e.into(),
            CodeError::Send(e) => e.into(),
        }
    }
}

/// Lark refused, or could not be had.
impl From<crate::lark::LarkError> for ApiError {
    fn from(e: crate::lark::LarkError) -> Self {
        match e {
            crate::lark::LarkError::Refused { .. } => ApiError::LarkRefused(e),
            crate::lark::LarkError::Unavailable { .. } => ApiError::LarkUnavailable(Box::new(e)),
        }
    }
}

/// A guessing limit refused an attempt, unchecked: the console's
/// `AUTH_MANY_INCORRECT` for a sign-in, `RATE_LIMITED` for anything else.
impl From<ThrottleError> for ApiError {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::Limited {
                retry_after,
                kind: GuessKind::SignIn,
            } => ApiError::SignInThrottled { retry_after },
            ThrottleError::Limited { retry_after, .. } => ApiError::RateLimited {
                reason: "too many failed attempts",
                retry_after,
            },
            ThrottleError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_400_with_retry_after_and_the_wait_in_words() {
        let e = ApiError::SignInThrottled { retry_after: 900 };
        assert_eq!(
            e.to_string(),
            "too many failed sign-ins; try again in 15 minutes"
        );
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[header::RETRY_AFTER], "900");
        let e = ApiError::RateLimited {
            reason: "too many codes requested",
            retry_after: 42,
        };
        assert_eq!(e.code(), "RATE_LIMITED");
        assert_eq!(
            e.to_string(),
            "too many codes requested; try again in 42 seconds"
        );
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[header::RETRY_AFTER], "42");
        let limits = [
            ApiError::SignInThrottled { retry_after: 1 },
            ApiError::RateLimited {
                reason: "x",
                retry_after: 1,
            },
        ];
        assert_eq!(LIMIT_CODES, limits.map(|e| e.code()));
        assert!(
            ApiError::AuthIncorrect
                .into_response()
                .headers()
                .get(header::RETRY_AFTER)
                .is_none()
        );
    }

    #[test]
    fn waits_read_naturally_and_never_short() {
        for (seconds, words) in [
            (-3, "1 second"),
            (0, "1 second"),
            (1, "1 second"),
            (42, "42 seconds"),
            (60, "1 minute"),
            (61, "2 minutes"),
            (900, "15 minutes"),
            (3599, "1 hour"),
            (3600, "1 hour"),
            (3660, "1 hour 1 minute"),
            (7500, "2 hours 5 minutes"),
        ] {
            assert_eq!(in_words(seconds), words, "{seconds}");
        }
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
