//! The OpenAPI 3.1 document of the API, generated from the handlers'
//! `#[utoipa::path]` annotations: each function crate's `openapi()`, merged,
//! with what the common layers add (the `TOKEN` cookie scheme, and the CSRF
//! header, cookie and 403 on every state-changing operation).
//!
//! `planx openapi` prints it (committed as `openapi.json`); `planx serve`
//! serves it at `GET /openapi.json` outside release mode.

use std::sync::LazyLock;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use shared::AppState;
use shared::http::cookies;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, Required, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

/// The name of the `TOKEN` cookie's security scheme, as the handlers' `security(...)` use it.
pub const TOKEN_SCHEME: &str = "token";

/// The header every POST, PATCH, PUT and DELETE must carry (see `shared::http`'s CSRF layer).
pub const XSRF_HEADER: &str = "X-XSRF-TOKEN";

#[derive(OpenApi)]
#[openapi(info(
    title = "planx",
    description = "The planx account API. Sign in sets the `TOKEN` cookie (HttpOnly); \
            `GET /` sets `XSRF-SALT` (HttpOnly) and `XSRF-TOKEN`, and every POST, PATCH, PUT \
            and DELETE echoes `XSRF-TOKEN` in the `X-XSRF-TOKEN` header. Every error body is \
            `ErrorBody` (`{code, message}`); each response lists the codes it can carry. \
            Any path answers 404 `NOT_FOUND` when unknown and 405 `METHOD_NOT_ALLOWED` for \
            an unserved method."
))]
struct ApiDoc;

/// What the common layers of `shared::http::app` and the auth extractor add to every function's operations.
struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            TOKEN_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                cookies::TOKEN,
                "The session token (a JWT), set by the login operations and `/refresh_token`.",
            ))),
        );
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                guard(operation);
            }
        }
    }
}

fn string_parameter(name: &str, place: ParameterIn, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        ))
        .build()
}

/// The double-submit CSRF check: the header, the salt cookie, and its 403.
fn guard(operation: &mut Operation) {
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    parameters.push(string_parameter(
        XSRF_HEADER,
        ParameterIn::Header,
        "The value of the `XSRF-TOKEN` cookie set by `GET /`.",
    ));
    parameters.push(string_parameter(
        cookies::XSRF_SALT,
        ParameterIn::Cookie,
        "The HttpOnly salt cookie set by `GET /`; the header must be its keyed digest.",
    ));
    let forbidden = ResponseBuilder::new()
        .description("Code: `CSRF_FAILED` (missing or invalid `X-XSRF-TOKEN` header).")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    operation
        .responses
        .responses
        .insert("403".into(), forbidden.into());
}

/// The whole document: every function's operations, merged.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for part in [
        ping::openapi(),
        session::openapi(),
        recovery::openapi(),
        user::openapi(),
        options::openapi(),
    ] {
        doc.merge(part);
    }
    Common.modify(&mut doc);
    doc
}

/// The document as committed in `openapi.json`: pretty-printed, with a final newline.
pub fn json() -> String {
    let mut text = document()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}

static JSON: LazyLock<String> = LazyLock::new(json);

/// `GET /openapi.json`, for `planx::app` outside release mode.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(|| async {
            ([(header::CONTENT_TYPE, "application/json")], JSON.as_str()).into_response()
        }),
    )
}
