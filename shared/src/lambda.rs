//! The Lambda entry point every function's `main` calls: logs, state built once
//! per cold start, the request context mapped to what handlers read, then the
//! runtime loop.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::http::{RequestId, SourceIp};
use crate::notify::terminal::TerminalNotifier;
use crate::state::AppState;
use crate::store::embedded::EmbeddedStore;
use crate::{aws, http};

/// Copies the caller's IP and the Lambda request id from the API Gateway
/// (HTTP API, payload 2.0) event into the extensions the handlers and logs read.
pub async fn from_gateway(mut req: Request, next: Next) -> Response {
    let ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    };
    let id = req.lambda_context_ref().map(|c| c.request_id.clone());
    if let Some(ip) = ip {
        req.extensions_mut().insert(SourceIp(ip));
    }
    if let Some(id) = id {
        req.extensions_mut().insert(RequestId(id));
    }
    next.run(req).await
}

/// One function's service: its router behind the common layers, with the
/// gateway's context mapped. Also what the event tests drive.
pub fn service(router: Router<AppState>, state: AppState) -> Router {
    http::app([router], state).layer(middleware::from_fn(from_gateway))
}

/// Log lines as Lambda's advanced logging controls ask: JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, at `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`, a
/// plain level), INFO by default, with [`crate::logs::without_bodies`]. Levels and
/// targets, not `EnvFilter`: that keeps a regex engine out of the binary.
fn init_logs() {
    use tracing_subscriber::filter::LevelFilter;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, fmt};
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let lines = if json {
        fmt::layer().json().with_current_span(false).boxed()
    } else {
        fmt::layer().without_time().with_ansi(false).boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(lines.with_filter(crate::logs::without_bodies(level)))
        .try_init();
}

/// Runs a function that uses the AWS backend: JSON logs when Lambda asks for
/// them (`AWS_LAMBDA_LOG_FORMAT`), configuration validated and the server keys
/// read at cold start (a bad configuration or an unreadable key stops the
/// function with its message), with the Lark app secret when a secret holds
/// it (only the session function's does), then the runtime loop.
pub async fn run(router: Router<AppState>) -> Result<(), lambda_http::Error> {
    init_logs();
    let mut config = Config::from_env().inspect_err(cannot_start)?;
    let sdk = aws::Sdk::from_env();
    let (keys, lark_secret) = tokio::join!(
        aws::server_keys(&sdk, &config, SystemClock.now()),
        aws::lark_secret(&sdk, &config.lark)
    );
    let keys = keys.inspect_err(cannot_start)?;
    if lark_secret.is_some() {
        config.lark.app_secret = lark_secret;
    }
    let store = Arc::new(aws::store(&sdk, &config));
    let notifier = Arc::new(aws::notifier(&sdk, &config));
    let state = AppState::with_keys(config, keys, store, notifier, Arc::new(SystemClock))
        .inspect_err(cannot_start)?;
    lambda_http::run(service(router, state)).await
}

/// Runs a function that never reads the store or sends a message but holds
/// the server key (ping, which issues XSRF tokens): an empty in-memory store
/// stands in, so its IAM role needs no table or messaging rights.
pub async fn run_stateless(router: Router<AppState>) -> Result<(), lambda_http::Error> {
    init_logs();
    let config = Config::from_env().inspect_err(cannot_start)?;
    let keys = aws::server_keys(&aws::Sdk::from_env(), &config, SystemClock.now())
        .await
        .inspect_err(cannot_start)?;
    let (store, notifier) = nothing();
    let state = AppState::with_keys(config, keys, store, notifier, Arc::new(SystemClock))
        .inspect_err(cannot_start)?;
    lambda_http::run(service(router, state)).await
}

/// Runs a function that holds no server key either (options: it signs and
/// checks nothing, and the gateway routes it no write for CSRF to check), so
/// the AWS SDK is not linked into it and its role may read no secret.
pub async fn run_without_key(router: Router<AppState>) -> Result<(), lambda_http::Error> {
    init_logs();
    let config = Config::from_env_without_key().inspect_err(cannot_start)?;
    let (store, notifier) = nothing();
    let state = AppState::with_system_clock(config, store, notifier).inspect_err(cannot_start)?;
    lambda_http::run(service(router, state)).await
}

/// The store and notifier of a function that uses neither.
fn nothing() -> (Arc<EmbeddedStore>, Arc<TerminalNotifier>) {
    (
        Arc::new(EmbeddedStore::in_memory()),
        Arc::new(TerminalNotifier::quiet()),
    )
}

/// The reason a cold start stops, as a log line (the runtime's own report of
/// the exit does not carry it in Lambda's JSON format).
fn cannot_start(e: &impl std::fmt::Display) {
    tracing::error!(error = %e, "cannot start");
}
