//! Cross-cutting failure paths: CSRF, malformed and oversized bodies, media
//! types, unknown routes and methods, and the error format itself.

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::json;

use crate::support::{PASSWORD, TestApp};

fn login_body() -> String {
    json!({ "email": "ada@example.com", "password": PASSWORD }).to_string()
}

#[tokio::test]
async fn writes_without_the_xsrf_header_are_forbidden() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    let salt = app.cookie("XSRF-SALT").unwrap();

    // No header.
    let req = Request::post("/login")
        .header(header::COOKIE, format!("XSRF-SALT={salt}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(login_body()))
        .unwrap();
    app.send(req)
        .await
        .expect_error(403, "CSRF_FAILED", "X-XSRF-TOKEN");

    // A header that does not match the salt.
    let req = Request::post("/login")
        .header(header::COOKIE, format!("XSRF-SALT={salt}"))
        .header("x-xsrf-token", "forged")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(login_body()))
        .unwrap();
    app.send(req).await.expect_error(403, "CSRF_FAILED", "");

    // A valid token without its salt cookie.
    let token = app.cookie("XSRF-TOKEN").unwrap();
    let req = Request::post("/login")
        .header("x-xsrf-token", token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(login_body()))
        .unwrap();
    app.send(req).await.expect_error(403, "CSRF_FAILED", "");
}

#[tokio::test]
async fn every_write_method_is_guarded_and_reads_are_not() {
    let (app, _) = TestApp::signed_in().await;
    app.drop_cookie("XSRF-TOKEN");
    for (method, path) in [
        (Method::POST, "/logout"),
        (Method::PATCH, "/user"),
        (Method::DELETE, "/user/phone"),
        (Method::POST, "/user/password"),
        (Method::POST, "/forget_reset"),
        (Method::PUT, "/user"),
        (Method::DELETE, "/user/sessions"),
        (
            Method::DELETE,
            "/user/sessions/006b49d200AAAAAAAAAAAAAAAAAAAAAA",
        ),
    ] {
        let r = app.request(method.clone(), path, Some(json!({}))).await;
        r.expect_error(403, "CSRF_FAILED", "");
    }
    app.get("/verify").await.expect(204);
    app.get("/user").await.expect(200);
    app.get("/user/sessions").await.expect(200);
}

#[tokio::test]
async fn a_token_from_another_server_key_is_refused() {
    let app = TestApp::spawn().await;
    app.ping().await;
    let other = TestApp::spawn_with(&[("KEY", "another-key-another-key-another-key!")]).await;
    other.ping().await;
    // Salt from this server, token computed by another key.
    app.set_cookie(
        "XSRF-TOKEN",
        &other
            .state
            .keys
            .xsrf_token(&app.cookie("XSRF-SALT").unwrap()),
    );
    app.post("/logout", json!({})).await.expect(403);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    app.ping().await;
    let token = app.cookie("XSRF-TOKEN").unwrap();
    let salt = app.cookie("XSRF-SALT").unwrap();
    for body in [
        "{",
        "{\"email\":",
        "not json",
        "{\"email\":\"a@b.co\",}",
        "",
    ] {
        let req = Request::post("/login")
            .header(header::COOKIE, format!("XSRF-SALT={salt}"))
            .header("x-xsrf-token", &token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        app.send(req)
            .await
            .expect_error(400, "INVALID_JSON", "malformed JSON");
    }
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = TestApp::spawn().await;
    app.ping().await;
    let token = app.cookie("XSRF-TOKEN").unwrap();
    let salt = app.cookie("XSRF-SALT").unwrap();
    let req = Request::post("/login")
        .header(header::COOKIE, format!("XSRF-SALT={salt}"))
        .header("x-xsrf-token", &token)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(login_body()))
        .unwrap();
    app.send(req)
        .await
        .expect_error(415, "UNSUPPORTED_MEDIA_TYPE", "application/json");
}

#[tokio::test]
async fn oversize_body_is_413() {
    let app = TestApp::spawn().await;
    app.ping().await;
    let big = json!({ "email": "a@example.com", "password": "x".repeat(17 * 1024) });
    app.post("/login", big)
        .await
        .expect_error(413, "PAYLOAD_TOO_LARGE", "16384");
    // Just under the limit is parsed (and refused for its content, not its size).
    let fits = json!({ "email": "a@example.com", "password": "x".repeat(15 * 1024) });
    app.post("/login", fits)
        .await
        .expect_error(400, "INVALID_FIELD", "password");
}

#[tokio::test]
async fn unknown_route_and_method_answer_in_the_error_format() {
    let app = TestApp::spawn().await;
    app.get("/nope")
        .await
        .expect_error(404, "NOT_FOUND", "route");
    app.ping().await;
    app.request(Method::PUT, "/verify", None)
        .await
        .expect_error(405, "METHOD_NOT_ALLOWED", "method");
    app.get("/logout")
        .await
        .expect_error(405, "METHOD_NOT_ALLOWED", "");
}

#[tokio::test]
async fn every_authenticated_route_says_401_without_a_session() {
    let app = TestApp::spawn().await;
    app.ping().await;
    for (method, path, body) in [
        (Method::GET, "/verify", None),
        (Method::GET, "/refresh_code", None),
        (Method::GET, "/user", None),
        (
            Method::PATCH,
            "/user",
            Some(json!({ "key": "name", "name": "x" })),
        ),
        (
            Method::POST,
            "/user/password",
            Some(json!({ "old": "a", "password": "b" })),
        ),
        (Method::GET, "/user/phone_code?phone=%2B14155550123", None),
        (
            Method::POST,
            "/user/phone",
            Some(json!({ "phone": "+14155550123", "code": "123456" })),
        ),
        (Method::GET, "/user/totp", None),
        (
            Method::POST,
            "/user/totp",
            Some(json!({ "totp": "x", "tss": [] })),
        ),
        (Method::DELETE, "/user/phone", None),
        (Method::GET, "/user/sessions", None),
        (Method::DELETE, "/user/sessions", None),
        (
            Method::DELETE,
            "/user/sessions/006b49d200AAAAAAAAAAAAAAAAAAAAAA",
            None,
        ),
    ] {
        let r = app.request(method.clone(), path, body).await;
        assert_eq!(r.status.as_u16(), 401, "{method} {path}: {}", r.text);
        assert_eq!(r.code(), "UNAUTHENTICATED", "{method} {path}");
    }
}

#[tokio::test]
async fn no_secret_reaches_a_response() {
    let (app, user) = TestApp::signed_in().await;
    let hash = user.password.expose().clone();
    let token = app.cookie("TOKEN").unwrap();
    let mut bodies = vec![];
    for path in ["/", "/user", "/verify", "/options?type=upload"] {
        bodies.push(app.get(path).await.text);
    }
    bodies.push(app.login("ada@example.com", "wrong password").await.text);
    for body in bodies {
        for secret in [hash.as_str(), PASSWORD, token.as_str(), "test-key-test-key"] {
            assert!(!body.contains(secret), "a secret leaked into {body}");
        }
    }
}
