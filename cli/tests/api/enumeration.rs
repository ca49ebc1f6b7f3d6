//! Limits that must not tell whether an account exists, and the guessing
//! limits of the operations that are not sign-ins: a password reset (which
//! also clears the account's failures) and phone binding.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{PASSWORD, TestApp, TestResponse, other_than};

const PHONE: &str = "+14155550123";
const PHONE_Q: &str = "%2B14155550123";

/// A request and how long its answer took.
async fn timed(app: &TestApp, path: &str) -> (TestResponse, Duration) {
    let started = Instant::now();
    let r = app.get(path).await;
    (r, started.elapsed())
}

#[tokio::test]
async fn code_requests_answer_no_sooner_than_the_floor_known_or_not() {
    // A send that outlasts the floor is withdrawn, so the floor is generous
    // enough for moto on a loaded machine; the four requests overlap, so the
    // test takes one floor, not four.
    let app = TestApp::spawn_with(&[("CODE_RESPONSE_FLOOR_MS", "2000")]).await;
    app.add_user_with_phone("ada@example.com", PHONE).await;
    let floor = Duration::from_millis(2000);
    let paths = [
        "/forget_code?email=ada@example.com".to_string(),
        "/forget_code?email=nobody@example.com".to_string(),
        format!("/login/sms?phone={PHONE_Q}"),
        "/login/sms?phone=%2B14155550999".to_string(),
    ];
    let [a, b, c, d] = &paths;
    let answers = tokio::join!(
        timed(&app, a),
        timed(&app, b),
        timed(&app, c),
        timed(&app, d)
    );
    for (path, (r, took)) in paths
        .iter()
        .zip([answers.0, answers.1, answers.2, answers.3])
    {
        r.expect(204);
        assert!(r.text.is_empty(), "{path}: {}", r.text);
        assert!(took >= floor, "{path} answered after {took:?}");
    }
    // Only the accounts were sent anything.
    assert_eq!(app.notifier.outbox().len(), 2);
    assert_eq!(app.sent_to("ada@example.com"), 1);
    assert_eq!(app.sent_to(PHONE), 1);
}

#[tokio::test]
async fn phone_code_takes_its_limits_before_saying_a_number_is_taken() {
    let (app, _) = TestApp::signed_in().await;
    app.add_user_with_phone("bob@example.com", PHONE).await;
    let free = "%2B14155550177";
    for (phone_q, first) in [(PHONE_Q, 400), (free, 204)] {
        let path = format!("/user/phone_code?phone={phone_q}");
        app.get(&path).await.expect(first);
        // Asked again at once: the cooldown answers, whether the number is taken or not.
        app.get(&path)
            .await
            .expect_error(400, "RATE_LIMITED", "try again in");
    }
    // And the per-address cap counts the taken number's request too.
    let app = TestApp::spawn_with(&[("IP_CODES_PER_HOUR", "1")]).await;
    app.add_user("ada@example.com").await;
    app.add_user_with_phone("bob@example.com", PHONE).await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.get(&format!("/user/phone_code?phone={PHONE_Q}"))
        .await
        .expect_error(400, "PHONE_TAKEN", "phone");
    app.get(&format!("/user/phone_code?phone={free}"))
        .await
        .expect_error(400, "RATE_LIMITED", "try again in");
}

async fn reset(app: &TestApp, code: &str, password: &str) -> TestResponse {
    let body = json!({ "email": "ada@example.com", "code": code, "password": password });
    app.post("/forget_reset", body).await
}

#[tokio::test]
async fn a_password_reset_clears_the_accounts_failures() {
    let app = TestApp::spawn().await;
    app.add_user_with_phone("ada@example.com", PHONE).await;
    // Strangers spend the account-wide allowance on Ada's email and phone.
    for i in 0..5 {
        let stranger = app.browser_at(&format!("198.51.100.{i}"));
        stranger.ping().await;
        stranger
            .login("ada@example.com", "wrong password")
            .await
            .expect(400);
        stranger
            .post("/login/sms", json!({ "phone": PHONE, "code": "000000" }))
            .await
            .expect(400);
    }
    let owner = app.browser_at("203.0.113.9");
    owner.ping().await;
    owner.login("ada@example.com", PASSWORD).await.expect_error(
        400,
        "AUTH_MANY_INCORRECT",
        "try again in",
    );
    // The reset is not a sign-in: strangers did not spend it. It clears them.
    owner
        .get("/forget_code?email=ada@example.com")
        .await
        .expect(204);
    let code = owner.last_code("ada@example.com");
    reset(&owner, &code, "a completely new passphrase")
        .await
        .expect(204);
    owner
        .login("ada@example.com", "a completely new passphrase")
        .await
        .expect(204);
    let stranger = app.browser_at("198.51.100.0");
    stranger.ping().await;
    stranger
        .post("/login/sms", json!({ "phone": PHONE, "code": "000000" }))
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
}

#[tokio::test]
async fn reset_guesses_back_off_per_address() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    app.get("/forget_code?email=ada@example.com")
        .await
        .expect(204);
    let code = app.last_code("ada@example.com");
    let stranger = app.browser_at("198.51.100.1");
    stranger.ping().await;
    for _ in 0..4 {
        reset(&stranger, &other_than(&code), "a stranger's passphrase")
            .await
            .expect_error(400, "INVALID_CODE", "code");
    }
    reset(&stranger, "000000", "a stranger's passphrase")
        .await
        .expect(400);
    let r = reset(&stranger, &other_than(&code), "a stranger's passphrase").await;
    r.expect_error(
        400,
        "RATE_LIMITED",
        "too many failed attempts; try again in 1 second",
    );
    assert_eq!(r.headers["retry-after"], "1");
    // The code had five tries and they are spent: the owner asks for another.
    app.advance(60);
    app.get("/forget_code?email=ada@example.com")
        .await
        .expect(204);
    let code = app.last_code("ada@example.com");
    reset(&app, &code, "the owner's new passphrase")
        .await
        .expect(204);
}

async fn bind(browser: &TestApp, code: &str) -> TestResponse {
    let body = json!({ "phone": PHONE, "code": code });
    browser.post("/user/phone", body).await
}

#[tokio::test]
async fn phone_binding_guesses_back_off_per_address() {
    // More tries on the code than the back-off lets one address make at once:
    // the back-off is what this is about.
    let app = TestApp::spawn_with(&[("CODE_ATTEMPTS", "10")]).await;
    app.add_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    // The same session from another browser, without the device cookie.
    let other = app.browser_at("198.51.100.1");
    other.ping().await;
    other.set_cookie("TOKEN", &app.cookie("TOKEN").unwrap());
    app.get(&format!("/user/phone_code?phone={PHONE_Q}"))
        .await
        .expect(204);
    let code = app.last_code(PHONE);
    for _ in 0..5 {
        bind(&other, &other_than(&code))
            .await
            .expect_error(400, "INVALID_CODE", "code");
    }
    let r = bind(&other, &code).await;
    r.expect_error(
        400,
        "RATE_LIMITED",
        "too many failed attempts; try again in 1 second",
    );
    // The owner's browser is not held back by that.
    bind(&app, &code).await.expect(204);
}
