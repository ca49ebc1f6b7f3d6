//! `planx serve`: every function's router on one local port, on the embedded store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderValue;
use axum::response::Redirect;
use axum::routing::get;
use tower_http::services::ServeDir;

use shared::AppState;
use shared::accounts::{self, AccountError, NewUser};
use shared::clock::{Clock, SystemClock};
use shared::config::Config;
use shared::notify::Notifier;
use shared::notify::terminal::TerminalNotifier;
use shared::store::Store;
use shared::store::embedded::EmbeddedStore;

use crate::StoreArgs;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PLANX_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on.
    #[arg(long, env = "PLANX_PORT", default_value_t = 3000)]
    port: u16,
    /// Keep everything in memory: nothing survives a restart.
    #[arg(long)]
    memory: bool,
    /// Create this account at start if its email is free (repeatable).
    #[arg(long = "user", value_name = "EMAIL:PASSWORD")]
    users: Vec<String>,
    /// Let a web console on ORIGIN (`https://console.example.com`) call the API
    /// with credentials, answering CORS as the gateway does for `ConsoleOrigins`.
    /// Repeatable; the variable takes a comma-separated list. Off by default.
    #[arg(
        long = "cors-origin",
        env = "PLANX_CORS_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    cors_origins: Vec<String>,
    /// Serve the reference console (the web/ folder) at /console/, on the
    /// API's own origin.
    #[arg(long, env = "PLANX_CONSOLE", value_name = "DIR")]
    console: Option<PathBuf>,
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 3000,
            memory: false,
            users: vec![],
            cors_origins: vec![],
            console: None,
        }
    }
}

/// `RUST_LOG` (default `info`), but the crates that log bodies never below INFO.
fn init_logs() {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, fmt};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter)
        .with_filter(shared::logs::without_bodies(LevelFilter::TRACE));
    let _ = tracing_subscriber::registry().with(lines).try_init();
}

/// The API, with the console's files under `/console/` and CORS when asked.
/// The console is added after the API's layers: static GETs need no CSRF check.
fn app(state: AppState, origins: Vec<HeaderValue>, console: Option<&Path>) -> Router {
    let mut app = planx::app(state);
    if let Some(dir) = console {
        app = app
            .route(
                "/console",
                get(|| async { Redirect::permanent("/console/") }),
            )
            .nest_service("/console/", ServeDir::new(dir));
    }
    if !origins.is_empty() {
        app = app.layer(crate::cors::layer(origins));
    }
    app
}

/// [`app`] on an in-memory store, for the CORS tests.
#[cfg(test)]
pub fn test_app(origins: Vec<HeaderValue>, console: Option<&Path>) -> Router {
    let config =
        Config::from_vars(&[("MODE", "debug")]).expect("the default configuration is valid");
    let store = Arc::new(EmbeddedStore::in_memory());
    let notifier = Arc::new(TerminalNotifier::quiet());
    let state = AppState::with_system_clock(config, store, notifier).expect("state");
    app(state, origins, console)
}

pub async fn run(args: ServeArgs, store_args: &StoreArgs) -> Result<(), String> {
    init_logs();
    let origins = args
        .cors_origins
        .iter()
        .map(|o| crate::cors::origin(o))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(dir) = &args.console
        && !dir.join("index.html").is_file()
    {
        return Err(format!(
            "--console {}: no index.html there (the console is the repository's web/ folder)",
            dir.display()
        ));
    }
    let mut config = Config::from_env().map_err(|e| e.to_string())?;
    // One SDK configuration for the table and the messages, loaded on first use.
    let sdk = shared::aws::Sdk::from_env();
    let (store, where_): (Arc<dyn Store>, String) = if args.memory {
        (
            Arc::new(EmbeddedStore::in_memory()),
            "in memory (nothing is kept)".into(),
        )
    } else {
        store_args.open(&config, &sdk).await?
    };
    let notifier: Arc<dyn Notifier> = if store_args.aws {
        Arc::new(shared::aws::notifier(&sdk, &config))
    } else {
        Arc::new(TerminalNotifier::new())
    };
    if config.key_generated {
        eprintln!(
            "warning: KEY is not set, so a throwaway signing key is in use: sessions end when the server stops. Set KEY (32+ bytes) to keep them."
        );
    }
    // `KEY` and `KEY_PREVIOUS`, or the secret `KEY_SECRET_ARN` names (read now).
    let keys = shared::aws::server_keys(&sdk, &config, SystemClock.now())
        .await
        .map_err(|e| e.to_string())?;
    // `LARK_APP_SECRET`, or the secret `LARK_APP_SECRET_ARN` names (read now).
    if let Some(secret) = shared::aws::lark_secret(&sdk, &config.lark).await {
        config.lark.app_secret = Some(secret);
    }
    // (Off while a setting is missing: the state's start logs which.)
    if config.lark.missing().is_empty() {
        eprintln!(
            "Lark sign-in is on: {} (the console: {})",
            config.lark.start_url(),
            config.lark.console_url
        );
    }
    let state = AppState::with_keys(config, keys, store, notifier, Arc::new(SystemClock))
        .map_err(|e| e.to_string())?;
    for spec in &args.users {
        add_startup_user(&state, spec).await?;
    }

    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .map_err(|e| format!("--host/--port: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let base = format!("http://localhost:{}", local.port());
    eprintln!("planx is serving the API on http://{local} ({base}); store: {where_}");
    if !store_args.aws {
        eprintln!("codes sent by SMS or mail are printed here as [outbox] lines");
    }
    if let Some(dir) = &args.console {
        eprintln!("the console ({}) is on {base}/console/", dir.display());
        if dir.join("package.json").is_file() && !dir.join("node_modules").is_dir() {
            eprintln!(
                "  its QR code library is missing: run `npm ci` in {}",
                dir.display()
            );
        }
    }
    for origin in &origins {
        eprintln!(
            "CORS: a console on {} may call the API with credentials",
            origin.to_str().unwrap_or_default()
        );
    }
    eprintln!("sign in (see the README's walk-through):");
    eprintln!("  curl -s -c jar -b jar {base}/ >/dev/null");
    eprintln!(
        "  curl -i -c jar -b jar -H \"X-XSRF-TOKEN: $(awk '$6==\"XSRF-TOKEN\"{{print $7}}' jar)\" -H 'Content-Type: application/json' -d '{{\"email\":\"EMAIL\",\"password\":\"PASSWORD\"}}' {base}/login"
    );

    let app = app(state, origins, args.console.as_deref())
        .into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

/// `--user EMAIL:PASSWORD`: created if the email is free, left alone if not.
async fn add_startup_user(state: &AppState, spec: &str) -> Result<(), String> {
    let (email, password) = spec
        .split_once(':')
        .ok_or_else(|| format!("--user {spec:?}: expected EMAIL:PASSWORD"))?;
    let new = NewUser {
        email: email.into(),
        password: password.into(),
        ..NewUser::default()
    };
    match accounts::create(state.store.as_ref(), &state.passwords, new, state.now()).await {
        Ok(user) => {
            eprintln!("created account {} ({})", user.email, user.id);
            Ok(())
        }
        Err(AccountError::Taken(_)) => {
            eprintln!("account {email} already exists; left as it is");
            Ok(())
        }
        Err(e) => Err(format!("--user {email}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    use super::*;

    async fn get(app: &Router, uri: &str) -> (StatusCode, String, String) {
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .or(headers.get(header::LOCATION))
            .map_or(String::new(), |v| v.to_str().unwrap().to_string());
        (status, content_type, String::from_utf8_lossy(&bytes).into())
    }

    #[tokio::test]
    async fn console_is_served_beside_the_api() {
        let web = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../web"));
        let app = test_app(vec![], Some(web));
        let (status, location, _) = get(&app, "/console").await;
        assert_eq!(
            (status, location.as_str()),
            (StatusCode::PERMANENT_REDIRECT, "/console/")
        );
        let (status, kind, body) = get(&app, "/console/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(kind.starts_with("text/html"), "{kind}");
        assert!(body.contains("app.js"), "the console's page: {body}");
        let (status, kind, _) = get(&app, "/console/api.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(kind.contains("javascript"), "{kind}");
        let (status, kind, body) = get(&app, "/").await;
        assert_eq!(status, StatusCode::OK, "GET / is still the ping");
        assert!(
            kind.starts_with("application/json") && body.contains("\"now\""),
            "{body}"
        );
    }
}
