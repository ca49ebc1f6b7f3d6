//! The OpenAPI 3.1 document of the API, generated from the handlers'
//! `#[utoipa::path]` annotations: each function's `openapi()` (from
//! [`crate::FUNCTIONS`]) with the answers the common layers add, merged.
//! Handlers document only their own answers: success and their 400 codes.
//!
//! `planx openapi` prints it (committed as `openapi.json`); `planx serve`
//! serves it at `GET /openapi.json` outside release mode.

use std::sync::LazyLock;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use shared::AppState;
use shared::error::{Body as ErrorBody, LIMIT_CODES};
use shared::http::cookies;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{KnownFormat, SchemaFormat};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, Ref, RefOr, Required, Response, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi};

use crate::{FUNCTIONS, Function};

/// The name of the `TOKEN` cookie's security scheme, as the handlers' `security(...)` use it.
pub const TOKEN_SCHEME: &str = "token";

/// The header every POST, PATCH, PUT and DELETE must carry (see `shared::http`'s CSRF layer).
pub const XSRF_HEADER: &str = "X-XSRF-TOKEN";

#[derive(OpenApi)]
#[openapi(
    components(schemas(ErrorBody)),
    info(
        title = "planx",
        description = "The planx account API. Sign in sets the `TOKEN` cookie (HttpOnly); \
            `GET /` sets `XSRF-SALT` (HttpOnly) and `XSRF-TOKEN`, and every POST, PATCH, PUT \
            and DELETE echoes `XSRF-TOKEN` in the `X-XSRF-TOKEN` header. Every error body is \
            `ErrorBody` (`{code, message}`); each response lists the codes it can carry. \
            Any path answers 404 `NOT_FOUND` when unknown and 405 `METHOD_NOT_ALLOWED` for \
            an unserved method."
    )
)]
struct ApiDoc;

/// What every operation of one function shares, declared once:
/// - its tag: the function's name;
/// - the `ErrorBody` of every error answer;
/// - every write: the CSRF header and cookie, and 403 (`shared::http`'s CSRF layer);
/// - every operation that requires `TOKEN`: 401 (the `Auth` extractor), with
///   `REAUTHENTICATE` where the requirement names the role `recent` (the
///   `Recent` extractor: a sensitive change);
/// - every operation with a JSON body: 413 and 415 (the body limit, the `Json` extractor);
/// - every operation of a stateful function: 500 and 503 (`ApiError`'s causes);
/// - every answer that lists a limit's code (`shared::error::LIMIT_CODES`): its `Retry-After` header.
struct Common {
    function: &'static Function,
}

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (write, operation) in operations(item) {
                operation.tags = Some(vec![self.function.name.into()]);
                if write {
                    guard(operation);
                }
                let (token, json) = (requires_token(operation), takes_json(operation));
                let recent = requires_recent(operation);
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.into())
                        .or_insert_with(|| error(description));
                };
                if recent {
                    add("401", REAUTHENTICATE_401);
                } else if token {
                    add("401", "Codes: `UNAUTHENTICATED`, `SESSION_ENDED`.");
                }
                if json {
                    add("413", "Code: `PAYLOAD_TOO_LARGE`.");
                    add("415", "Code: `UNSUPPORTED_MEDIA_TYPE`.");
                }
                if self.function.stateful {
                    add("500", "Code: `INTERNAL`.");
                    add("503", "Code: `SERVICE_UNAVAILABLE`.");
                }
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if status.starts_with('4') || status.starts_with('5') {
                        error_body(response);
                    }
                    if LIMIT_CODES
                        .iter()
                        .any(|code| response.description.contains(&format!("`{code}`")))
                    {
                        retry_after(response);
                    }
                }
            }
        }
    }
}

/// A path's operations, each with whether it is a write (CSRF-guarded).
fn operations(item: &mut PathItem) -> impl Iterator<Item = (bool, &mut Operation)> {
    [
        (false, &mut item.get),
        (true, &mut item.post),
        (true, &mut item.put),
        (true, &mut item.patch),
        (true, &mut item.delete),
    ]
    .into_iter()
    .filter_map(|(write, op)| op.as_mut().map(|op| (write, op)))
}

/// Whether every way to call the operation names `TOKEN` (logout, which also
/// works signed out, does not).
fn requires_token(operation: &Operation) -> bool {
    operation.security.as_ref().is_some_and(|requirements| {
        !requirements.is_empty()
            && requirements
                .iter()
                .all(|r| serde_json::to_value(r).is_ok_and(|v| v.get(TOKEN_SCHEME).is_some()))
    })
}

/// The 401 of a sensitive change.
pub const REAUTHENTICATE_401: &str = "Codes: `UNAUTHENTICATED`, `SESSION_ENDED`, \
    `REAUTHENTICATE` (the session's sign-in is older than `REAUTH_WINDOW`: \
    `POST /user/reauthenticate`, then retry).";

/// Whether the operation needs a recent sign-in: its `TOKEN` requirement
/// names the role `recent`.
fn requires_recent(operation: &Operation) -> bool {
    operation.security.iter().flatten().any(|r| {
        serde_json::to_value(r).is_ok_and(|v| {
            v.get(TOKEN_SCHEME)
                .and_then(|roles| roles.as_array())
                .is_some_and(|roles| roles.iter().any(|role| role == "recent"))
        })
    })
}

fn takes_json(operation: &Operation) -> bool {
    operation
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"))
}

/// An error answer with the codes it carries in `description` (its body is
/// added with the handlers' error answers).
fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .build()
        .into()
}

fn error_body(response: &mut Response) {
    response
        .content
        .entry("application/json".into())
        .or_insert_with(|| {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build()
        });
}

fn retry_after(response: &mut Response) {
    let seconds = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)));
    response.headers.insert(
        "Retry-After".into(),
        HeaderBuilder::new()
            .schema(seconds)
            .description(Some("Seconds to wait; sent when a limit is the reason"))
            .build(),
    );
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
    operation.responses.responses.insert(
        "403".into(),
        error("Code: `CSRF_FAILED` (missing or invalid `X-XSRF-TOKEN` header)."),
    );
}

/// The whole document: every function's operations with their common answers,
/// merged, and the `TOKEN` cookie scheme they name.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for function in &FUNCTIONS {
        let mut part = (function.openapi)();
        Common { function }.modify(&mut part);
        doc.merge(part);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        TOKEN_SCHEME,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            cookies::TOKEN,
            "The session token (a JWT), set by the login operations and `/refresh_token`.",
        ))),
    );
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
