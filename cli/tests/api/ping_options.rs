//! `GET /` (who answered, the caller, the time, the redacted configuration,
//! the XSRF cookies) and `GET /options` (upload, collaboration, generate-secret).

use serde_json::json;
use shared::clock::rfc3339;

use crate::support::{START, TestApp, TestResponse, attributes};

/// The `KEY` every test app runs with (see the harness).
const TEST_KEY: &str = "test-key-test-key-test-key-test-key!";
const RELEASE_KEY: &str = "release-key-0123456789-abcdefghijklmnop";

/// The value of a `Set-Cookie` header.
fn value(cookie: &str) -> String {
    let pair = cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}

fn is_alphanumeric(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

// ------------------------------------------------------------------- GET /

#[tokio::test]
async fn ping_answers_name_ip_and_time() {
    let app = TestApp::spawn().await;
    let r = app.ping().await;
    r.expect(200);
    assert_eq!(r.body["name"], "planx");
    assert_eq!(r.body["ip"], "203.0.113.7");
    assert_eq!(r.body["now"], "2027-01-15T08:00:00Z");
    assert_eq!(r.body["now"], rfc3339(START).as_str());

    app.advance(90);
    app.set_ip("198.51.100.9");
    let r = app.ping().await;
    assert_eq!(r.body["now"], "2027-01-15T08:01:30Z");
    assert_eq!(r.body["ip"], "198.51.100.9");
}

#[tokio::test]
async fn ping_name_is_configurable() {
    let app = TestApp::spawn_with(&[("NAME", "pod-7")]).await;
    let r = app.ping().await;
    r.expect(200);
    assert_eq!(r.body["name"], "pod-7");
    assert_eq!(r.body["values"]["name"], "pod-7");
}

#[tokio::test]
async fn debug_mode_shows_redacted_values() {
    let app = TestApp::spawn_with(&[("UPLOAD_URL", "https://uploads.example.com")]).await;
    let r = app.ping().await;
    r.expect(200);
    let values = &r.body["values"];
    assert!(values.is_object(), "values missing: {}", r.text);
    assert_eq!(values["mode"], "debug");
    assert_eq!(values["namespace"], "planx");
    assert_eq!(values["key"], "[redacted]");
    assert_eq!(values["key_generated"], false);
    assert_eq!(values["upload"]["url"], "https://uploads.example.com");
    assert_eq!(values["lifetimes"]["sms_code"], 120);
    assert_eq!(values["cookie"]["same_site"], "Lax");
    assert!(!r.text.contains(TEST_KEY), "the KEY leaked: {}", r.text);
    assert!(!r.text.contains("test-key"), "the KEY leaked: {}", r.text);
}

#[tokio::test]
async fn release_mode_hides_values() {
    let app = TestApp::spawn_with(&[("MODE", "release"), ("KEY", RELEASE_KEY)]).await;
    let r = app.ping().await;
    r.expect(200);
    let body = r.body.as_object().unwrap();
    assert!(!body.contains_key("values"), "{}", r.text);
    assert_eq!(
        r.body,
        json!({ "name": "planx", "ip": "203.0.113.7", "now": rfc3339(START) })
    );
    assert!(!r.text.contains(RELEASE_KEY));
    assert!(r.set_cookie("XSRF-TOKEN").is_some());
}

#[tokio::test]
async fn ping_sets_the_xsrf_cookies() {
    let app = TestApp::spawn().await;
    let r = app.ping().await;
    let salt = r.set_cookie("XSRF-SALT").expect("XSRF-SALT is set");
    let token = r.set_cookie("XSRF-TOKEN").expect("XSRF-TOKEN is set");
    for cookie in [&salt, &token] {
        let attrs = attributes(cookie);
        for attr in ["Path=/", "Secure", "SameSite=Lax"] {
            assert!(attrs.iter().any(|a| a == attr), "{cookie} lacks {attr}");
        }
        assert!(
            attrs
                .iter()
                .any(|a| a.starts_with("Max-Age=") && a != "Max-Age=0"),
            "{cookie} is not kept"
        );
        assert!(!value(cookie).is_empty(), "{cookie} is empty");
    }
    assert!(attributes(&salt).iter().any(|a| a == "HttpOnly"), "{salt}");
    assert!(
        !attributes(&token).iter().any(|a| a == "HttpOnly"),
        "the page must be able to read {token}"
    );
    assert_ne!(value(&salt), value(&token), "the token is not the salt");
    assert_eq!(app.cookie("XSRF-SALT"), Some(value(&salt)));
    assert_eq!(app.cookie("XSRF-TOKEN"), Some(value(&token)));
}

/// A console on another site cannot read the cookie: the same token comes in
/// a header (exposed through CORS), and the answer is never cached.
#[tokio::test]
async fn ping_returns_the_token_in_a_header_too() {
    let app = TestApp::spawn().await;
    let r = app.ping().await;
    let token = value(&r.set_cookie("XSRF-TOKEN").expect("XSRF-TOKEN is set"));
    let header = r.headers.get("x-xsrf-token").expect("X-XSRF-TOKEN is sent");
    assert_eq!(header.to_str().unwrap(), token);
    assert_eq!(r.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn a_second_ping_keeps_the_salt() {
    let app = TestApp::spawn().await;
    let first = app.ping().await;
    let second = app.ping().await;
    let salt = |r: &TestResponse| value(&r.set_cookie("XSRF-SALT").unwrap());
    let token = |r: &TestResponse| value(&r.set_cookie("XSRF-TOKEN").unwrap());
    assert_eq!(salt(&first), salt(&second));
    assert_eq!(token(&first), token(&second));

    // Another browser gets its own salt and token.
    let other = app.new_browser().ping().await;
    assert_ne!(salt(&other), salt(&first));
    assert_ne!(token(&other), token(&first));
}

#[tokio::test]
async fn a_malformed_salt_is_replaced() {
    let app = TestApp::spawn().await;
    app.set_cookie("XSRF-SALT", "short");
    let r = app.ping().await;
    let salt = value(&r.set_cookie("XSRF-SALT").unwrap());
    assert_ne!(salt, "short");
    assert_eq!(salt.len(), 22, "{salt}");
    assert!(
        salt.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{salt}"
    );
}

#[tokio::test]
async fn the_xsrf_token_from_ping_lets_writes_through() {
    let app = TestApp::spawn().await;
    // Without a ping there is no token to echo.
    app.post("/logout", json!({}))
        .await
        .expect_error(403, "CSRF_FAILED", "X-XSRF-TOKEN");
    app.ping().await.expect(200);
    app.post("/logout", json!({})).await.expect(204);

    // A token made for another browser's salt does not fit this one.
    let other = app.new_browser();
    other.ping().await;
    app.set_cookie("XSRF-TOKEN", &other.cookie("XSRF-TOKEN").unwrap());
    app.post("/logout", json!({}))
        .await
        .expect_error(403, "CSRF_FAILED", "X-XSRF-TOKEN");
}

#[tokio::test]
async fn cookie_samesite_is_configurable() {
    for (setting, shown) in [("strict", "SameSite=Strict"), ("none", "SameSite=None")] {
        let app = TestApp::spawn_with(&[("COOKIE_SAMESITE", setting)]).await;
        let r = app.ping().await;
        r.expect(200);
        for name in ["XSRF-SALT", "XSRF-TOKEN"] {
            let cookie = r.set_cookie(name).unwrap();
            let attrs = attributes(&cookie);
            assert!(attrs.iter().any(|a| a == shown), "{cookie} lacks {shown}");
            assert!(!attrs.iter().any(|a| a == "SameSite=Lax"), "{cookie}");
            assert!(attrs.iter().any(|a| a == "Secure"), "{cookie}");
            assert_eq!(
                attrs.iter().any(|a| a == "Partitioned"),
                setting == "none",
                "only cross-site cookies are partitioned: {cookie}"
            );
        }
        assert_eq!(
            r.body["values"]["cookie"]["same_site"],
            shown.trim_start_matches("SameSite=")
        );
    }
}

// ------------------------------------------------------------ GET /options

#[tokio::test]
async fn upload_options_are_the_configured_ones() {
    let app = TestApp::spawn_with(&[
        ("UPLOAD_URL", "https://uploads.example.com/bucket"),
        ("UPLOAD_TYPE", "cos"),
        ("UPLOAD_LIMIT_KB", "10240"),
    ])
    .await;
    let r = app.get("/options?type=upload").await;
    r.expect(200);
    assert_eq!(
        r.body,
        json!({ "type": "cos", "url": "https://uploads.example.com/bucket", "limit": 10240 })
    );

    let defaults = TestApp::spawn().await;
    let r = defaults.get("/options?type=upload").await;
    r.expect(200);
    assert_eq!(r.body, json!({ "type": "s3", "url": "", "limit": 5120 }));
}

/// The collaboration option's `url` is this API's `GET /lark/authorize`, beside
/// the configured callback, whatever Lark's authorize page is (the console adds
/// its own query; `console.rs` checks the parts it reads); empty without a callback.
#[tokio::test]
async fn collaboration_url_is_this_apis_lark_authorize() {
    let app = TestApp::spawn_with(&[
        ("LARK_REDIRECT", "https://console.example.com/api/lark"),
        (
            "LARK_AUTH_URL",
            "https://accounts.feishu.cn/open-apis/authen/v1/authorize",
        ),
        ("LARK_API_URL", "https://open.feishu.cn"),
    ])
    .await;
    let r = app.get("/options?type=collaboration").await;
    r.expect(200);
    assert_eq!(
        r.body,
        json!({
            "url": "https://console.example.com/api/lark/authorize",
            "redirect": "https://console.example.com/api/lark",
            "app_id": "",
        })
    );
    let r = TestApp::spawn()
        .await
        .get("/options?type=collaboration")
        .await;
    assert_eq!(r.body, json!({ "url": "", "redirect": "", "app_id": "" }));
}

#[tokio::test]
async fn generate_secret_gives_fresh_random_credentials() {
    let app = TestApp::spawn().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        let r = app.get("/options?type=generate-secret").await;
        r.expect(200);
        assert_eq!(r.headers["cache-control"], "no-store");
        let id = r.body["id"].as_str().unwrap().to_string();
        let key = r.body["key"].as_str().unwrap().to_string();
        assert!(is_alphanumeric(&id, 8), "id {id:?}");
        assert!(is_alphanumeric(&key, 16), "key {key:?}");
        assert_eq!(r.body.as_object().unwrap().len(), 2, "{}", r.text);
        assert!(seen.insert(id), "an id came twice");
        assert!(seen.insert(key), "a key came twice");
    }
}

#[tokio::test]
async fn options_need_no_session_and_no_xsrf() {
    let app = TestApp::spawn_with(&[("LARK_APP_ID", "cli_x")]).await;
    // A fresh browser: no cookies at all.
    for kind in ["upload", "collaboration", "generate-secret"] {
        app.get(&format!("/options?type={kind}")).await.expect(200);
    }
    assert_eq!(app.cookie("TOKEN"), None);
}

#[tokio::test]
async fn unknown_or_missing_type_is_named() {
    let app = TestApp::spawn().await;
    for path in [
        "/options?type=download",
        "/options?type=",
        "/options?type=generate_secret",
        "/options",
        "/options?kind=upload",
    ] {
        app.get(path)
            .await
            .expect_error(400, "INVALID_FIELD", "type");
    }
}
