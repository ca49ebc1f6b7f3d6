//! The one list of the API's functions. `planx serve` ([`crate::app`]), the
//! merged OpenAPI document ([`crate::openapi`]) and the route and event tests
//! all read it; `template.yaml` deploys each as its own Lambda function.

use axum::Router;
use shared::AppState;
use utoipa::openapi::OpenApi;

/// One Lambda function crate.
pub struct Function {
    /// Its binary, as `template.yaml`'s `BuildProperties` names it; also its
    /// folder under `events/`.
    pub name: &'static str,
    pub router: fn() -> Router<AppState>,
    /// Its operations in the OpenAPI document, before the common answers.
    pub openapi: fn() -> OpenApi,
    /// Whether it reads the store or sends messages, so that any of its
    /// operations may answer 500 or 503. The others run on
    /// `shared::lambda::run_stateless`.
    pub stateful: bool,
}

/// Every function, in the order of the design's layout.
pub static FUNCTIONS: [Function; 5] = [
    Function {
        name: "ping",
        router: ping::router,
        openapi: ping::openapi,
        stateful: false,
    },
    Function {
        name: "session",
        router: session::router,
        openapi: session::openapi,
        stateful: true,
    },
    Function {
        name: "recovery",
        router: recovery::router,
        openapi: recovery::openapi,
        stateful: true,
    },
    Function {
        name: "user",
        router: user::router,
        openapi: user::openapi,
        stateful: true,
    },
    Function {
        name: "options",
        router: options::router,
        openapi: options::openapi,
        stateful: false,
    },
];

/// The function named `name`.
pub fn function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}
