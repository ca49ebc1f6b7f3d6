//! The local entry point's library: the merged API, so `planx serve`, the
//! contract tests and benchmarks all run the routers the Lambda functions run.

pub mod functions;
pub mod openapi;

use axum::Router;
use shared::AppState;
use shared::config::Mode;

pub use functions::{FUNCTIONS, Function};

/// Every function's router, in the order of [`FUNCTIONS`].
pub fn routers() -> Vec<Router<AppState>> {
    FUNCTIONS.iter().map(|f| (f.router)()).collect()
}

/// The whole API as one service; outside release mode it also serves its
/// OpenAPI document at `GET /openapi.json` (the Lambda functions never do).
pub fn app(state: AppState) -> Router {
    let mut routers = routers();
    if state.config.mode != Mode::Release {
        routers.push(openapi::router());
    }
    shared::http::app(routers, state)
}
