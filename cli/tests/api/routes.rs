//! `template.yaml` and the routers agree: every operation of the seed is routed
//! by the HTTP API to exactly one function, that function's router serves it,
//! no other router does, and nothing a router serves is left unrouted.
//!
//! Each function is driven as Lambda runs it, `shared::lambda::service(router, state)`.
//! A route counts as served unless the router's fallbacks answer it: 404
//! `NOT_FOUND` for an unknown path, 405 `METHOD_NOT_ALLOWED` for a known path
//! with another method. Every request carries a valid XSRF pair, so the CSRF
//! layer never answers first.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use planx::FUNCTIONS;
use shared::http::cookies;
use tower::ServiceExt;

use crate::support::TestApp;
use crate::template::{Route, logical_id, routes as template_routes, template};

/// The seed's operations (`shared/seed-api.md`): method, `baseUrl` as the seed
/// writes it, and its `summary`. Twenty in all.
pub(crate) const SEED: [(&str, &str, &str); 20] = [
    ("GET", "/", "Ping"),
    ("POST", "/login", "Login"),
    ("GET", "/login/sms", "SMS Login Code"),
    ("POST", "/login/sms", "SMS Login"),
    ("POST", "/login/totp", "TOTP Login"),
    ("GET", "/forget_code", "Reset Password Code"),
    ("POST", "/forget_reset", "Reset Password"),
    ("GET", "/verify", "Verify"),
    ("GET", "/refresh_code", "Token Refresh Code"),
    ("GET", "/refresh_token", "Refresh Token"),
    ("POST", "/logout", "Logout"),
    ("GET", "/user", "User Info"),
    ("PATCH", "/user", "Set User"),
    ("POST", "/user/password", "Set Password"),
    ("GET", "/user/phone_code", "User SMS Code"),
    ("POST", "/user/phone", "Bind User's Phone"),
    ("GET", "/user/totp", "Generate TOTP URL"),
    ("POST", "/user/totp", "Bind TOTP"),
    ("DELETE", "/user/:key", "Unset User"),
    ("GET", "/options", "Load Option"),
];

/// What the routers serve beyond the seed, and why.
pub(crate) const EXTRA: [(&str, &str, &str); 12] = [
    (
        "POST",
        "/user/reauthenticate",
        "step-up: a recent sign-in for sensitive changes",
    ),
    (
        "POST",
        "/refresh_token",
        "design: the refresh code in a JSON body (the seed lists GET)",
    ),
    // `/user/{key}` where the key is also a static path of the user router: the
    // static path wins axum's match, so the router serves DELETE there itself.
    (
        "DELETE",
        "/user/password",
        "user router: DELETE on a static path",
    ),
    (
        "DELETE",
        "/user/reauthenticate",
        "user router: DELETE on a static path",
    ),
    (
        "DELETE",
        "/user/phone_code",
        "user router: DELETE on a static path",
    ),
    (
        "DELETE",
        "/user/phone",
        "user router: DELETE on a static path",
    ),
    (
        "DELETE",
        "/user/totp",
        "user router: DELETE on a static path",
    ),
    (
        "GET",
        "/user/sessions",
        "design: devices, the account's live sessions",
    ),
    (
        "DELETE",
        "/user/sessions",
        "design: devices, end all other sessions",
    ),
    (
        "DELETE",
        "/user/sessions/{id}",
        "design: devices, end one session",
    ),
    (
        "GET",
        "/lark/authorize",
        "issue 15: begins a Lark sign-in or link (the collaboration option's url)",
    ),
    ("GET", "/lark", "issue 15: Lark's OAuth callback"),
];

/// The methods probed on every path. OPTIONS is left to the gateway (CORS
/// preflight) and HEAD is not routed by it.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A value for every path parameter when a route is sent as a request.
const PARAMETER: &str = "lark";

/// `/user/:key` (the seed's way) as the gateway writes it: `/user/{key}`.
pub(crate) fn gateway_path(seed_path: &str) -> String {
    seed_path
        .split('/')
        .map(|s| match s.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A concrete request path for a route: parameters get [`PARAMETER`].
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                PARAMETER
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The route API Gateway picks for a request: a route without parameters that
/// matches exactly wins over one with a `{parameter}` segment.
fn gateway_target<'a>(routes: &'a [Route], method: &str, path: &str) -> Option<&'a Route> {
    let same_method = || routes.iter().filter(move |r| r.method == method);
    if let Some(exact) = same_method().find(|r| r.path == path) {
        return Some(exact);
    }
    same_method().find(|r| {
        let (route, request): (Vec<_>, Vec<_>) =
            (r.path.split('/').collect(), path.split('/').collect());
        route.len() == request.len()
            && route
                .iter()
                .zip(&request)
                .all(|(a, b)| (a.starts_with('{') && a.ends_with('}') && !b.is_empty()) || a == b)
    })
}

/// The five functions' services as Lambda runs them, and an XSRF pair they accept.
struct Services {
    by_function: BTreeMap<String, Router>,
    salt: String,
    token: String,
}

impl Services {
    async fn new() -> Services {
        let app = TestApp::spawn().await;
        let salt = "routes-test-salt-0123456".to_string();
        let token = app.state.keys.xsrf_token(&salt);
        let by_function = FUNCTIONS
            .iter()
            .map(|f| {
                let service = shared::lambda::service((f.router)(), app.state.clone());
                (logical_id(f), service)
            })
            .collect();
        Services {
            by_function,
            salt,
            token,
        }
    }

    /// Whether `function`'s router serves `method path`, and what it answered.
    async fn serves(&self, function: &str, method: &str, path: &str) -> (bool, String) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(
                header::COOKIE,
                format!("{}={}", cookies::XSRF_SALT, self.salt),
            )
            .header("x-xsrf-token", &self.token);
        let body = if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from("{}")
        } else {
            Body::empty()
        };
        let service = self.by_function[function].clone();
        let response = service.oneshot(req.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let code = body["code"].as_str().unwrap_or_default();
        let fallback = (status == StatusCode::NOT_FOUND && code == "NOT_FOUND")
            || (status == StatusCode::METHOD_NOT_ALLOWED && code == "METHOD_NOT_ALLOWED");
        (!fallback, format!("{} {code}", status.as_u16()))
    }
}

#[test]
fn seed_list_is_the_seeds_twenty_operations() {
    let keys: BTreeSet<(&str, &str)> = SEED.iter().map(|(m, p, _)| (*m, *p)).collect();
    assert_eq!(keys.len(), 20, "no operation listed twice");
    for (method, path, why) in EXTRA {
        assert!(
            !keys.contains(&(method, path)),
            "{method} {path} is in the seed, not an extra ({why})"
        );
    }
}

#[test]
fn template_routes_every_operation_to_one_function() {
    let routes = template_routes(&template());
    let mut errors = vec![];
    let mut keys = BTreeMap::<(String, String), Vec<&Route>>::new();
    for r in &routes {
        keys.entry((r.method.clone(), r.path.clone()))
            .or_default()
            .push(r);
    }
    for (key, owners) in &keys {
        if owners.len() > 1 {
            errors.push(format!(
                "{} {} is routed more than once: {owners:?}",
                key.0, key.1
            ));
        }
    }
    let wanted: Vec<(String, String, &str)> = SEED
        .iter()
        .map(|(m, p, s)| (m.to_string(), gateway_path(p), *s))
        .chain(
            EXTRA
                .iter()
                .map(|(m, p, s)| (m.to_string(), p.to_string(), *s)),
        )
        .collect();
    for (method, path, what) in &wanted {
        if !keys.contains_key(&(method.clone(), path.clone())) {
            errors.push(format!(
                "{method} {path} ({what}) is not routed by template.yaml"
            ));
        }
    }
    for r in &routes {
        if !wanted
            .iter()
            .any(|(m, p, _)| *m == r.method && *p == r.path)
        {
            errors.push(format!(
                "{}.{} routes {} {}, which is neither a seed operation nor a listed extra",
                r.function, r.event, r.method, r.path
            ));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[tokio::test]
async fn each_route_is_served_by_its_function_and_no_other() {
    let routes = template_routes(&template());
    let services = Services::new().await;
    let mut errors = vec![];
    for r in &routes {
        let path = concrete(&r.path);
        for function in services.by_function.keys() {
            let (served, answer) = services.serves(function, &r.method, &path).await;
            if *function == r.function && !served {
                errors.push(format!(
                    "{}.{} routes {} {} to {function}, whose router does not serve it ({answer})",
                    r.function, r.event, r.method, path
                ));
            }
            if *function != r.function && served {
                errors.push(format!(
                    "{} {path} is routed to {} but {function}'s router serves it too ({answer})",
                    r.method, r.function
                ));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Every method on every known path, against every router: what a router
/// serves, the gateway must route to that function, and nothing else there.
#[tokio::test]
async fn routers_serve_nothing_the_gateway_does_not_route() {
    let routes = template_routes(&template());
    let services = Services::new().await;
    let paths: BTreeSet<String> = SEED
        .iter()
        .map(|(_, p, _)| concrete(&gateway_path(p)))
        .chain(EXTRA.iter().map(|(_, p, _)| concrete(p)))
        .chain(routes.iter().map(|r| concrete(&r.path)))
        .collect();
    let mut errors = vec![];
    for path in &paths {
        for method in METHODS {
            let target = gateway_target(&routes, method, path).map(|r| r.function.as_str());
            for function in services.by_function.keys() {
                let (served, answer) = services.serves(function, method, path).await;
                match (served, target == Some(function.as_str())) {
                    (true, false) => errors.push(format!(
                        "{function}'s router serves {method} {path} ({answer}) but the gateway routes it to {target:?}"
                    )),
                    (false, true) => errors.push(format!(
                        "the gateway routes {method} {path} to {function}, whose router does not serve it ({answer})"
                    )),
                    _ => {}
                }
            }
        }
    }
    assert!(
        paths.contains("/user/lark"),
        "the parameter route is probed"
    );
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// The `cargo lambda watch` router in the root `Cargo.toml`
/// (`[workspace.metadata.lambda.watch.router]`) as (method, path, function
/// logical id). Its lines are `"/path" = [{ method = "GET", function = "user" }, ...]`.
fn watch_routes() -> BTreeSet<(String, String, String)> {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .expect("the root Cargo.toml is readable");
    let table = manifest
        .split("[workspace.metadata.lambda.watch.router]")
        .nth(1)
        .expect("Cargo.toml has the watch router");
    let mut routes = BTreeSet::new();
    for line in table.lines().take_while(|l| !l.starts_with('[')) {
        let Some((path, targets)) = line.split_once(" = ") else {
            continue;
        };
        let path = path.trim_matches('"');
        let quoted = |after: &str, field: &str| -> Option<String> {
            let rest = after.split_once(&format!("{field} = \""))?.1;
            Some(rest.split('"').next()?.to_string())
        };
        for target in targets.split('{').skip(1) {
            let method = quoted(target, "method").expect("a method");
            let name = quoted(target, "function").expect("a function");
            let function = planx::functions::function(&name)
                .unwrap_or_else(|| panic!("{path}: no function {name}"));
            routes.insert((method, path.to_string(), logical_id(function)));
        }
    }
    routes
}

/// `scripts/e2e` runs the functions behind `cargo lambda watch`'s router: it
/// must route what the gateway routes, to the same function (including the
/// static `/user/*` paths, which win over `/user/{key}` there too).
#[test]
fn the_watch_router_routes_what_the_template_routes() {
    let template: BTreeSet<_> = template_routes(&template())
        .into_iter()
        .map(|r| (r.method, r.path, r.function))
        .collect();
    let watch = watch_routes();
    assert!(watch.len() >= 20, "few watch routes read: {watch:?}");
    let only_template: Vec<_> = template.difference(&watch).collect();
    let only_watch: Vec<_> = watch.difference(&template).collect();
    assert!(
        only_template.is_empty() && only_watch.is_empty(),
        "routed by template.yaml only: {only_template:?}; by the watch router only: {only_watch:?}"
    );
}
