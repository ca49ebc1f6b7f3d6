//! Lark sign-in and linking (`GET /lark/authorize`, the callback `GET /lark`)
//! against a stand-in for Lark's open platform ([`standin`]), reached over
//! real HTTP by the API's own client.

mod flow;
mod secret;
mod standin;

use serde_json::{Value, json};
use shared::model::LarkIdentity;

use crate::support::{TestApp, TestResponse};
use standin::{APP_ID, CONSOLE, LarkStandIn, REDIRECT};

/// The open_ids of the two Lark people the tests use.
const ADA_LARK: &str = "ou_7d8a6e6df7621556ce0d21922b676706";
const EVE_LARK: &str = "ou_0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7";

/// An API whose Lark is a fresh stand-in, where Ada approves.
async fn with_lark() -> (TestApp, LarkStandIn) {
    let lark = LarkStandIn::start().await;
    lark.person(standin::person(ADA_LARK, "Ada"));
    let vars = lark.vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&**k, &**v)).collect();
    (TestApp::spawn_with(&vars).await, lark)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /lark/authorize` as the weplanx console builds it from the
/// collaboration option: its `redirect_uri`, `app_id` and JSON `state`.
fn authorize_path(intent: &str) -> String {
    format!(
        "/lark/authorize?redirect_uri={}&app_id={APP_ID}&state={}",
        encode(REDIRECT),
        encode(intent)
    )
}

const LINK: &str = r#"{"action":"link"}"#;
const SIGN_IN: &str = "{}";

/// The `Location` of a 302.
#[track_caller]
fn location(r: &TestResponse) -> String {
    r.expect(302);
    r.headers["location"].to_str().unwrap().to_string()
}

/// The browser begins a flow and is sent on to Lark: Lark's authorize URL.
async fn to_lark(browser: &TestApp, lark: &LarkStandIn, intent: &str) -> String {
    let r = browser.get(&authorize_path(intent)).await;
    let at = location(&r);
    let page = format!("{}/open-apis/authen/v1/authorize?", lark.url);
    assert!(at.starts_with(&page), "{at}");
    at
}

/// The path of the API's callback that Lark sends the browser to.
fn callback_path(back: &str) -> String {
    let path = back.strip_prefix("https://api.example.com").unwrap();
    assert!(path.starts_with("/lark?"), "{back}");
    path.to_string()
}

/// A whole flow in `browser`: to Lark, approved by its current person, back.
async fn round(browser: &TestApp, lark: &LarkStandIn, intent: &str) -> TestResponse {
    let at = to_lark(browser, lark, intent).await;
    let back = lark.approve(&at);
    browser.get(&callback_path(&back)).await
}

/// Asserts the console's success route.
#[track_caller]
fn succeeded(r: &TestResponse) {
    assert_eq!(location(r), format!("{CONSOLE}authorized"));
}

/// Asserts the console's failure route with `code`, and nothing else taken
/// from the request.
#[track_caller]
fn failed(r: &TestResponse, code: &str) {
    assert_eq!(location(r), format!("{CONSOLE}unauthorize?error={code}"));
    assert_eq!(r.text, "", "a redirect with no page");
}

/// What `GET /user` and the store should hold for a linked person.
fn public_fields(person: &Value) -> Value {
    let mut kept = person.clone();
    let kept_map = kept.as_object_mut().unwrap();
    for field in [
        "email",
        "enterprise_email",
        "user_id",
        "mobile",
        "employee_no",
    ] {
        kept_map.remove(field);
    }
    kept
}

fn identity(person: &Value) -> LarkIdentity {
    serde_json::from_value(public_fields(person)).unwrap()
}

/// A server with Ada's account, signed in from the returned browser, and her
/// Lark identity linked to it.
async fn ada_linked() -> (TestApp, LarkStandIn, shared::model::User) {
    let (app, lark) = with_lark().await;
    let ada = app.add_user("ada@example.com").await;
    app.sign_in("ada@example.com", crate::support::PASSWORD)
        .await;
    succeeded(&round(&app, &lark, LINK).await);
    (app, lark, ada)
}

#[tokio::test]
async fn lark_is_off_until_configured_and_says_what_it_needs() {
    let app = TestApp::spawn().await;
    for path in ["/lark?code=x&state=y", "/lark/authorize"] {
        let r = app.get(path).await;
        r.expect_error(404, "LARK_DISABLED", "LARK_APP_ID");
        for needed in ["LARK_APP_SECRET", "LARK_REDIRECT", "CONSOLE_URL"] {
            assert!(r.message().contains(needed), "{}", r.text);
        }
    }
    let lark = LarkStandIn::start().await;
    let vars: Vec<(String, String)> = lark
        .vars()
        .into_iter()
        .filter(|(k, _)| k != "LARK_APP_SECRET")
        .collect();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&**k, &**v)).collect();
    let app = TestApp::spawn_with(&vars).await;
    let r = app.get(&authorize_path(SIGN_IN)).await;
    r.expect_error(404, "LARK_DISABLED", "LARK_APP_SECRET");
    assert!(!r.message().contains("LARK_APP_ID"), "{}", r.text);
}

#[tokio::test]
async fn collaboration_options_lead_the_weplanx_console_through_this_api() {
    let (app, lark) = with_lark().await;
    let r = app.get("/options?type=collaboration").await;
    r.expect(200);
    assert_eq!(
        r.body,
        json!({
            "url": "https://api.example.com/lark/authorize",
            "redirect": REDIRECT,
            "app_id": APP_ID,
        })
    );
    // `app.service.ts` appends its query to `url`, which has none of its own.
    let built = format!(
        "{}?redirect_uri={}&app_id={}&state={}",
        r.body["url"].as_str().unwrap(),
        encode(REDIRECT),
        APP_ID,
        encode(SIGN_IN)
    );
    assert_eq!(built.matches('?').count(), 1, "{built}");
    let path = built.strip_prefix("https://api.example.com").unwrap();
    let r = app.get(path).await;
    let at = location(&r);
    // Lark's authorize page with what it takes, the state a fresh nonce in
    // an HttpOnly cookie for this browser only, and a PKCE challenge.
    let query: std::collections::HashMap<String, String> =
        axum::extract::Query::try_from_uri(&at.parse().unwrap())
            .unwrap()
            .0;
    let state = &query["state"];
    assert_eq!(state.len(), 43, "{at}");
    assert_eq!(query["client_id"], APP_ID);
    assert_eq!(query["redirect_uri"], REDIRECT);
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(
        !query.contains_key("scope"),
        "no scope, so no refresh token"
    );
    assert_eq!(
        r.set_cookie("LARK_STATE").unwrap(),
        format!("LARK_STATE={state}; Path=/; Max-Age=600; SameSite=Lax; HttpOnly; Secure")
    );
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    assert_eq!(lark.calls(standin::Call::Token), 0);
}

#[tokio::test]
async fn the_request_never_chooses_where_the_browser_goes() {
    let (app, lark) = with_lark().await;
    let evil = encode("https://evil.example/steal");
    let r = app
        .get(&format!(
            "/lark/authorize?redirect_uri={evil}&app_id=cli_evil&state=%7B%7D"
        ))
        .await;
    let at = location(&r);
    assert!(!at.contains("evil"), "{at}");
    let back = lark.approve(&at);
    assert!(back.starts_with(REDIRECT), "{back}");
    // Whatever the callback carries, it goes to the console's own routes.
    for path in [
        format!("/lark?code=%3Cscript%3E&state={evil}"),
        format!("/lark?error=%3Cb%3Ex%3C%2Fb%3E&state={evil}"),
        "/lark?redirect_uri=https%3A%2F%2Fevil.example".to_string(),
        "/lark?code=a&code=b&state=c".to_string(),
    ] {
        failed(&app.get(&path).await, "LARK_STATE_INVALID");
    }
    // The console's state is JSON with a known action, or refused.
    for bad in [r#"{"action":"delete"}"#, "<script>", "[1]"] {
        let r = app.get(&authorize_path(bad)).await;
        failed(&r, "INVALID_FIELD");
        assert_eq!(r.set_cookie("LARK_STATE"), None);
    }
}
