//! `POST /login`: password sign-in, its cookie, failures, back-off and per-IP caps.

use serde_json::json;
use shared::store::UserChange;

use crate::support::{PASSWORD, TestApp, USER_AGENT};

#[tokio::test]
async fn login_sets_a_session_cookie_and_records_history() {
    let app = TestApp::spawn().await;
    let user = app.add_user("Ada@Example.com").await;
    app.ping().await.expect(200);

    let r = app.login("ada@example.COM", PASSWORD).await;
    r.expect(204);
    let cookie = r.set_cookie("TOKEN").expect("TOKEN is set");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=7200",
    ] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    app.get("/verify").await.expect(204);

    let stored = app.user(&user.id).await;
    assert_eq!(stored.sessions, 1);
    let h = stored.history.expect("history recorded");
    assert_eq!(
        (h.metadata.client_ip.as_str(), h.user_agent.as_str()),
        ("203.0.113.7", USER_AGENT)
    );
    assert_eq!(h.timestamp, app.clock_now());
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_alike() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.ping().await;

    let wrong = app.login("ada@example.com", "not the password").await;
    wrong.expect_error(400, "AUTH_INCORRECT", "incorrect");
    assert!(wrong.set_cookie("TOKEN").is_none());
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    unknown.expect_error(400, "AUTH_INCORRECT", "incorrect");
    assert_eq!(wrong.text, unknown.text);
    app.get("/verify").await.expect(401);
}

#[tokio::test]
async fn invalid_fields_are_named() {
    let app = TestApp::spawn().await;
    app.ping().await;
    app.post(
        "/login",
        json!({ "email": "not-an-email", "password": "x" }),
    )
    .await
    .expect_error(400, "INVALID_FIELD", "email");
    app.post("/login", json!({ "email": "a@example.com" }))
        .await
        .expect_error(400, "INVALID_FIELD", "password");
    app.post(
        "/login",
        json!({ "email": "a@example.com", "password": "" }),
    )
    .await
    .expect_error(400, "INVALID_FIELD", "password");
    app.post(
        "/login",
        json!({ "email": "a@example.com", "password": "x".repeat(129) }),
    )
    .await
    .expect_error(400, "INVALID_FIELD", "password");
    app.post("/login", json!({ "email": 5, "password": "x" }))
        .await
        .expect_error(400, "INVALID_FIELD", "email");
}

#[tokio::test]
async fn disabled_account_cannot_sign_in() {
    let app = TestApp::spawn().await;
    let user = app.add_user("ada@example.com").await;
    app.change_user(&user.id, UserChange::Active(false)).await;
    app.ping().await;
    app.login("ada@example.com", PASSWORD)
        .await
        .expect_error(400, "ACCOUNT_DISABLED", "disabled");
}

#[tokio::test]
async fn backoff_after_five_failures_doubles_and_success_resets_it() {
    let app = TestApp::spawn().await;
    let user = app.add_user("ada@example.com").await;
    app.ping().await;
    for _ in 0..4 {
        app.login("ada@example.com", "wrong password")
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    assert_eq!(app.user(&user.id).await.locked_until, 0);
    app.login("ada@example.com", "wrong password")
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    // Fifth failure: locked for 1 s, even with the right password.
    let locked = app.login("ada@example.com", PASSWORD).await;
    locked.expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
    assert_eq!(locked.headers["retry-after"], "1");
    app.advance(1);
    app.login("ada@example.com", "wrong password")
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    let r = app.login("ada@example.com", PASSWORD).await;
    r.expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
    assert_eq!(r.headers["retry-after"], "2");
    app.advance(2);
    app.login("ada@example.com", PASSWORD).await.expect(204);
    let stored = app.user(&user.id).await;
    assert_eq!((stored.failures, stored.locked_until), (0, 0));
}

#[tokio::test]
async fn backoff_is_capped_at_fifteen_minutes() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    for _ in 0..20 {
        app.login("ada@example.com", "wrong password").await;
        app.advance(900);
    }
    app.login("ada@example.com", "wrong password")
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    let r = app.login("ada@example.com", PASSWORD).await;
    r.expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
    assert_eq!(r.headers["retry-after"], "900");
    assert_eq!(
        r.message(),
        "too many failed sign-ins; try again in 15 minutes"
    );
}

#[tokio::test]
async fn unknown_email_backs_off_like_an_account() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    for email in ["ada@example.com", "ghost@example.com"] {
        for _ in 0..5 {
            app.login(email, "wrong password").await.expect_error(
                400,
                "AUTH_INCORRECT",
                "incorrect",
            );
        }
        let r = app.login(email, "wrong password").await;
        r.expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
        assert_eq!(r.headers["retry-after"], "1");
    }
}

#[tokio::test]
async fn failures_per_ip_are_capped() {
    let app = TestApp::spawn_with(&[("IP_LOGIN_FAILURES_PER_HOUR", "3")]).await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    for i in 0..3 {
        app.login(&format!("spray{i}@example.com"), "wrong password")
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    // The IP is over its cap: even a right password waits.
    app.login("ada@example.com", PASSWORD).await.expect_error(
        400,
        "AUTH_MANY_INCORRECT",
        "try again in",
    );
    app.set_ip("198.51.100.1");
    app.login("ada@example.com", PASSWORD).await.expect(204);
    app.set_ip("203.0.113.7");
    app.advance(3600);
    app.login("ada@example.com", PASSWORD).await.expect(204);
}

#[tokio::test]
async fn several_devices_hold_separate_sessions() {
    let app = TestApp::spawn().await;
    let user = app.add_user("ada@example.com").await;
    let laptop = app.signed_in_as("ada@example.com").await;
    let phone = app.signed_in_as("ada@example.com").await;
    assert_ne!(laptop.cookie("TOKEN"), phone.cookie("TOKEN"));
    laptop.post("/logout", json!({})).await.expect(204);
    laptop.get("/verify").await.expect(401);
    phone.get("/verify").await.expect(204);
    assert_eq!(app.user(&user.id).await.sessions, 2);
}
