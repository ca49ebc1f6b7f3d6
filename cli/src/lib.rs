//! The local entry point's library: the merged API, so `planx serve`, the
//! contract tests and benchmarks all run the routers the Lambda functions run.

use axum::Router;
use shared::AppState;

/// Every function's router, in the order of the design's layout.
pub fn routers() -> Vec<Router<AppState>> {
    vec![
        ping::router(),
        session::router(),
        recovery::router(),
        user::router(),
        options::router(),
    ]
}

/// The whole API as one service.
pub fn app(state: AppState) -> Router {
    shared::http::app(routers(), state)
}
