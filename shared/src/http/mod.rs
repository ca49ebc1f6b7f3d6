//! HTTP glue shared by every function: extractors, cookies, CSRF, request logs,
//! and [`app`], which wraps routers the same way in Lambda and in `planx serve`.

pub mod auth;
pub mod cookies;
pub mod extract;
mod no_store;

use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

pub use auth::{Auth, Recent};
pub use extract::{BODY_LIMIT, Json, PhoneQuery, Query};
pub use no_store::NoStore;

use crate::error::{ApiError, Failure};
use crate::state::AppState;

/// The client's address as the edge saw it, put in request extensions by the
/// entry point (the Lambda request context, or the local socket).
#[derive(Debug, Clone)]
pub struct SourceIp(pub String);

/// The request id to log (Lambda's, or one made locally).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Who is calling: recorded with logins and used for per-IP limits.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: String,
    pub user_agent: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<SourceIp>()
            .map(|s| s.0.clone())
            .or_else(|| {
                parts
                    .extensions
                    .get::<ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        // Stored with sessions and the login history, shown in device lists
        // and notices: no control characters (a header can carry a tab).
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(256)
            .collect();
        Ok(Client { ip, user_agent })
    }
}

/// Refuses state-changing requests whose `X-XSRF-TOKEN` header does not match
/// the HMAC of the `XSRF-SALT` cookie (double-submit, keyed by the server).
async fn csrf(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let guarded = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if guarded {
        let headers = req.headers();
        let sent = headers
            .get("x-xsrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let ok = cookies::get(headers, cookies::XSRF_SALT)
            .filter(|salt| !salt.is_empty() && !sent.is_empty())
            .is_some_and(|salt| state.keys.xsrf_matches(salt, sent));
        if !ok {
            return ApiError::Csrf.into_response();
        }
    }
    next.run(req).await
}

/// Re-reads the server keys when a read is due (keys from a secret; a no-op
/// for `KEY`), before anything checks or issues a credential.
async fn fresh_keys(State(state): State<AppState>, req: Request, next: Next) -> Response {
    state.keys.refresh(state.now()).await;
    next.run(req).await
}

/// One log line per request: id, method, route, status, latency. Never bodies,
/// headers or query strings, which can carry secrets. A 500 or 503 adds one
/// error line with its cause (the [`Failure`] its [`ApiError`] left behind):
/// the one place a failure is logged.
async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let request_id = req.extensions().get::<RequestId>().map_or_else(
        || crate::crypto::hex(&crate::crypto::random_bytes::<8>()),
        |r| r.0.clone(),
    );
    let response = next.run(req).await;
    if let Some(failure) = response.extensions().get::<Failure>() {
        tracing::error!(request_id, error = %failure, "request failed");
    }
    tracing::info!(
        request_id,
        method = %method,
        route,
        status = response.status().as_u16(),
        latency_us = start.elapsed().as_micros() as u64,
        "request"
    );
    response
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Merges function routers into one service with the common layers: fresh
/// keys, CSRF, body limit, JSON 404/405, request logs. Lambda mains pass their one router;
/// `planx serve` passes all of them, so both run identical handler code.
pub fn app(routers: impl IntoIterator<Item = Router<AppState>>, state: AppState) -> Router {
    let merged = routers
        .into_iter()
        .fold(Router::new(), |acc, r| acc.merge(r));
    merged
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), csrf))
        .layer(middleware::from_fn_with_state(state.clone(), fresh_keys))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::config::Config;
    use crate::notify::terminal::TerminalNotifier;
    use crate::store::embedded::EmbeddedStore;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The user agent is stored and shown: control characters (a header may
    /// carry a tab) become spaces, and it is cut at 256 characters.
    #[tokio::test]
    async fn the_user_agent_is_kept_printable_and_short() {
        let ua = format!("Mozilla/5.0\tevil{}", "x".repeat(300));
        let (mut parts, ()) = Request::builder()
            .header(header::USER_AGENT, ua)
            .body(())
            .unwrap()
            .into_parts();
        let client = Client::from_request_parts(&mut parts, &()).await.unwrap();
        assert!(client.user_agent.starts_with("Mozilla/5.0 evilx"));
        assert_eq!(client.user_agent.chars().count(), 256);
        assert_eq!(client.ip, "unknown");
    }

    /// A 500's cause reaches the log once, from the request log with the
    /// request's id, and never the client.
    #[test]
    fn a_failure_is_logged_once_with_its_request() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let body = tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                let config = Config::from_vars(&[]).unwrap();
                let store = Arc::new(EmbeddedStore::in_memory());
                let notifier = Arc::new(TerminalNotifier::quiet());
                let state = AppState::with_system_clock(config, store, notifier).unwrap();
                let boom = Router::new().route(
                    "/boom",
                    get(|| async { ApiError::Internal("disk on fire at /dev/sda".into()) }),
                );
                let mut req = Request::builder().uri("/boom").body(Body::empty()).unwrap();
                req.extensions_mut().insert(RequestId("req-42".into()));
                let response = app([boom], state).oneshot(req).await.unwrap();
                assert_eq!(response.status().as_u16(), 500);
                let bytes = axum::body::to_bytes(response.into_body(), 1024).await;
                String::from_utf8(bytes.unwrap().to_vec()).unwrap()
            })
        });
        assert!(!body.contains("disk"), "{body}");
        let log = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(log.matches("disk on fire at /dev/sda").count(), 1, "{log}");
        let failed = log.lines().find(|l| l.contains("disk on fire")).unwrap();
        assert!(
            failed.contains("ERROR") && failed.contains("req-42"),
            "{failed}"
        );
        assert!(log.contains("status=500"), "{log}");
    }
}
