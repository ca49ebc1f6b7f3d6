//! The OpenAPI document (`planx::openapi`) against the committed `openapi.json`,
//! the routers, and what the handlers answer.

use std::collections::BTreeSet;

use axum::http::Method;
use serde_json::{Value, json};

use crate::routes::{EXTRA, SEED, gateway_path};
use crate::support::TestApp;

fn document() -> Value {
    serde_json::from_str(&planx::openapi::json()).expect("the document is JSON")
}

/// Every (method, path) of the document, as `("GET", "/user/{key}")`.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&method.as_str())
            {
                ops.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn committed_openapi_json_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == planx::openapi::json(),
        "openapi.json differs from the document the code generates; \
         run `cargo run -- openapi > openapi.json`"
    );
}

#[test]
fn document_is_openapi_3_1() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["token"],
        json!({"type": "apiKey", "in": "cookie", "name": "TOKEN",
               "description": doc["components"]["securitySchemes"]["token"]["description"]})
    );
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["code", "message"]));
}

/// Exactly the operations the routers serve: the seed's twenty and the extras
/// (`routes.rs` checks that these are what the routers serve).
#[test]
fn document_has_every_served_route_and_no_other() {
    let doc = document();
    let served: BTreeSet<(String, String)> = SEED
        .iter()
        .map(|(m, p, _)| (m.to_string(), gateway_path(p)))
        .chain(EXTRA.iter().map(|(m, p, _)| (m.to_string(), p.to_string())))
        .collect();
    assert_eq!(served.len(), 32);
    let documented = operations(&doc);
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "not in the document: {missing:?}");
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
}

/// Every write operation requires the CSRF header and documents its 403;
/// every error response has the `{code, message}` body.
#[test]
fn writes_require_the_csrf_header_and_errors_share_one_body() {
    let doc = document();
    let mut errors = vec![];
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_ascii_lowercase()];
        let write = ["POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str());
        let header = op["parameters"].as_array().and_then(|ps| {
            ps.iter()
                .find(|p| p["in"] == "header" && p["name"] == "X-XSRF-TOKEN")
        });
        match (write, header) {
            (true, Some(h)) if h["required"] == true => {}
            (true, _) => errors.push(format!("{method} {path}: no required X-XSRF-TOKEN header")),
            (false, Some(_)) => errors.push(format!("{method} {path}: X-XSRF-TOKEN on a read")),
            (false, None) => {}
        }
        if write && op["responses"]["403"].is_null() {
            errors.push(format!("{method} {path}: no 403 CSRF_FAILED"));
        }
        for (status, response) in op["responses"].as_object().unwrap() {
            let schema = &response["content"]["application/json"]["schema"]["$ref"];
            if status.starts_with('4') || status.starts_with('5') {
                if schema != "#/components/schemas/ErrorBody" {
                    errors.push(format!("{method} {path} {status}: not an ErrorBody"));
                }
                let text = response["description"].as_str().unwrap_or_default();
                if !text.contains('`') {
                    errors.push(format!("{method} {path} {status}: names no code"));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Limits on the seed's operations are 400s, since its console shows a 400's
/// message and nothing for a 429; each answer that can be a limit documents
/// `Retry-After` (the Lark callback's redirect too: the browser follows it, and
/// the wait goes in the console's route); and these are the operations that have limits.
#[test]
fn limits_are_400s_with_retry_after() {
    let doc = document();
    let seed: BTreeSet<(String, String)> = SEED
        .iter()
        .map(|(m, p, _)| (m.to_string(), gateway_path(p)))
        .collect();
    let mut limited = BTreeSet::new();
    let mut errors = vec![];
    for (method, path) in operations(&doc) {
        let responses = &doc["paths"][&path][method.to_ascii_lowercase()]["responses"];
        if seed.contains(&(method.clone(), path.clone())) && !responses["429"].is_null() {
            errors.push(format!(
                "{method} {path}: a 429 on an operation of the seed"
            ));
        }
        for (status, response) in responses.as_object().unwrap() {
            let text = response["description"].as_str().unwrap_or_default();
            for code in shared::error::LIMIT_CODES {
                if !text.contains(&format!("`{code}`")) {
                    continue;
                }
                limited.insert(format!("{method} {path} {status} {code}"));
                let waits = match status.as_str() {
                    "302" => text.contains("`&retry_after=`"),
                    _ => !response["headers"]["Retry-After"].is_null(),
                };
                if !waits {
                    errors.push(format!("{method} {path} {status}: no Retry-After"));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let expected: BTreeSet<String> = [
        "POST /login 400 AUTH_MANY_INCORRECT",
        "GET /login/sms 400 RATE_LIMITED",
        "POST /login/sms 400 AUTH_MANY_INCORRECT",
        "POST /login/totp 400 AUTH_MANY_INCORRECT",
        "GET /forget_code 400 RATE_LIMITED",
        "POST /forget_reset 400 RATE_LIMITED",
        "POST /user/password 400 RATE_LIMITED",
        "GET /user/phone_code 400 RATE_LIMITED",
        "POST /user/phone 400 RATE_LIMITED",
        "POST /user/reauthenticate 400 RATE_LIMITED",
        "GET /lark 302 AUTH_MANY_INCORRECT",
    ]
    .map(String::from)
    .into();
    assert_eq!(limited, expected);
}

/// A value for a path parameter when a documented path is sent as a request.
fn concrete(path: &str) -> String {
    path.replace("{key}", "lark")
}

/// Each operation, sent with a valid XSRF pair and an empty body (`{}` for
/// writes), anonymously and then signed in: the answer's status is documented,
/// an error's code is named in that response's description, and 401 comes only
/// from operations that need `TOKEN`.
#[tokio::test]
async fn answers_match_the_document() {
    let anonymous = TestApp::spawn().await;
    anonymous.ping().await.expect(200);
    let mut errors = check_answers(&anonymous).await;
    let (signed_in, _) = TestApp::signed_in().await;
    errors.extend(check_answers(&signed_in).await);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

async fn check_answers(app: &TestApp) -> Vec<String> {
    let doc = document();
    let mut errors = vec![];
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_ascii_lowercase()];
        let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then(|| json!({}));
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let r = app.request(m, &concrete(&path), body).await;
        let status = r.status.as_u16().to_string();
        let Some(response) = op["responses"].get(&status) else {
            errors.push(format!(
                "{method} {path}: answered undocumented {status} {}",
                r.text
            ));
            continue;
        };
        if r.status.is_client_error() || r.status.is_server_error() {
            let code = format!("`{}`", r.code());
            if !response["description"]
                .as_str()
                .unwrap_or_default()
                .contains(&code)
            {
                errors.push(format!(
                    "{method} {path}: {status} {code} is not documented"
                ));
            }
        }
        let secured = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|req| !req["token"].is_null()));
        if r.code() == "UNAUTHENTICATED" && !secured {
            errors.push(format!(
                "{method} {path}: answers 401 but has no TOKEN security"
            ));
        }
    }
    errors
}

#[tokio::test]
async fn serves_the_document_outside_release_mode() {
    let app = TestApp::spawn().await;
    let r = app.get("/openapi.json").await;
    r.expect(200);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.text, planx::openapi::json());
    assert_eq!(r.body, document());
}

#[tokio::test]
async fn does_not_serve_it_in_release_mode() {
    let key = "release-key-release-key-release-key-0123";
    let app = TestApp::spawn_with(&[("MODE", "release"), ("KEY", key)]).await;
    app.get("/openapi.json")
        .await
        .expect_error(404, "NOT_FOUND", "no such route");
}
