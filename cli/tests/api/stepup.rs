//! Step-up: the changes a stolen session must not make (email, phone, TOTP,
//! Lark) need a sign-in within `REAUTH_WINDOW`, and `POST /user/reauthenticate`
//! renews it for the session without starting a new one.

use serde_json::{Value, json};
use shared::model::Totp;
use shared::secret::Secret;
use shared::store::UserChange;
use shared::totp::{code_at_step, step_of};

use crate::support::{PASSWORD, TestApp, TestResponse};

const PHONE_Q: &str = "%2B14155550123";
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// Every sensitive change, as (method, path, body).
fn sensitive() -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        (
            "PATCH",
            "/user".into(),
            Some(json!({ "key": "email", "email": "new@example.com" })),
        ),
        ("GET", format!("/user/phone_code?phone={PHONE_Q}"), None),
        (
            "POST",
            "/user/phone".into(),
            Some(json!({ "phone": "+14155550123", "code": "123456" })),
        ),
        ("GET", "/user/totp".into(), None),
        (
            "POST",
            "/user/totp".into(),
            Some(
                json!({ "totp": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP", "tss": ["123456", "654321"] }),
            ),
        ),
        ("DELETE", "/user/phone".into(), None),
        ("DELETE", "/user/totp".into(), None),
        ("DELETE", "/user/lark".into(), None),
    ]
}

async fn call(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> TestResponse {
    app.request(method.parse().unwrap(), path, body).await
}

async fn reauth(app: &TestApp, body: Value) -> TestResponse {
    app.post("/user/reauthenticate", body).await
}

#[tokio::test]
async fn a_stale_session_gets_reauthenticate_on_every_sensitive_change() {
    let (app, user) = TestApp::signed_in().await;
    app.advance(601);
    for (method, path, body) in sensitive() {
        call(&app, method, &path, body)
            .await
            .expect_error(401, "REAUTHENTICATE", "recent sign-in");
    }
    // Nothing was sent or changed; name, avatar and the session itself still work.
    assert_eq!(app.sent_to("+14155550123"), 0);
    assert_eq!(app.user(&user.id).await.email, "ada@example.com");
    app.patch("/user", json!({ "key": "name", "name": "Ada" }))
        .await
        .expect(204);
    app.patch(
        "/user",
        json!({ "key": "avatar", "avatar": "https://example.com/a.png" }),
    )
    .await
    .expect(204);
    app.get("/user").await.expect(200);

    // Confirming the password makes the same session recent again.
    let session = app.session_key();
    reauth(&app, json!({ "password": PASSWORD }))
        .await
        .expect(204);
    assert_eq!(app.session_key(), session, "no new session");
    app.get(&format!("/user/phone_code?phone={PHONE_Q}"))
        .await
        .expect(204);
    app.get("/user/totp").await.expect(200);
    for key in ["phone", "totp", "lark"] {
        app.delete(&format!("/user/{key}")).await.expect(204);
    }
    app.patch(
        "/user",
        json!({ "key": "email", "email": "new@example.com" }),
    )
    .await
    .expect(204);
    assert_eq!(app.user(&user.id).await.email, "new@example.com");
    // Until the window passes again.
    app.advance(601);
    app.delete("/user/phone")
        .await
        .expect_error(401, "REAUTHENTICATE", "recent");
}

#[tokio::test]
async fn a_refresh_or_a_renewal_does_not_make_a_sign_in_recent() {
    let (app, _) = TestApp::signed_in().await;
    app.advance(500);
    // The session is used and renewed, and its token refreshed...
    app.get("/user").await.expect(200);
    let code = app.refresh_code().await;
    app.post("/refresh_token", json!({ "code": code }))
        .await
        .expect(204);
    app.advance(101);
    app.get("/verify").await.expect(204);
    // ...but its sign-in is 601 s old.
    app.delete("/user/totp")
        .await
        .expect_error(401, "REAUTHENTICATE", "recent");
}

#[tokio::test]
async fn the_window_is_configurable() {
    let app = TestApp::spawn_with(&[("REAUTH_WINDOW", "60")]).await;
    app.add_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.advance(60);
    app.delete("/user/totp").await.expect(204);
    app.advance(1);
    app.delete("/user/totp")
        .await
        .expect_error(401, "REAUTHENTICATE", "recent");
}

#[tokio::test]
async fn reauthenticating_with_a_totp_code_uses_its_step_once() {
    let (app, user) = TestApp::signed_in().await;
    let totp = Totp {
        secret: Secret::new(TOTP_SECRET.to_string()),
        last_step: 0,
    };
    app.change_user(&user.id, UserChange::Totp(Some(totp)))
        .await;
    app.advance(601);
    let code = code_at_step(TOTP_SECRET, step_of(app.clock_now())).unwrap();
    reauth(&app, json!({ "code": code })).await.expect(204);
    app.delete("/user/phone").await.expect(204);
    // The same code again is a replay.
    app.advance(601);
    reauth(&app, json!({ "code": code }))
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    app.delete("/user/phone")
        .await
        .expect_error(401, "REAUTHENTICATE", "recent");
}

#[tokio::test]
async fn a_totp_code_without_an_authenticator_or_a_wrong_password_is_refused() {
    let (app, _) = TestApp::signed_in().await;
    app.advance(601);
    reauth(&app, json!({ "code": "123456" }))
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    reauth(&app, json!({ "password": "not the password" }))
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    app.delete("/user/phone")
        .await
        .expect_error(401, "REAUTHENTICATE", "recent");
}

#[tokio::test]
async fn reauthenticating_is_limited_like_a_sign_in_and_counted_before_the_check() {
    let (app, _) = TestApp::signed_in().await;
    app.advance(601);
    for _ in 0..5 {
        reauth(&app, json!({ "password": "guess guess guess" }))
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    // The sixth waits, even with the right password, which is not checked.
    let before = app.verifications();
    let r = reauth(&app, json!({ "password": PASSWORD })).await;
    r.expect_error(400, "RATE_LIMITED", "try again in");
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(app.verifications(), before);
    // The guesses are this device's sign-in failures at the account too.
    app.login("ada@example.com", PASSWORD).await.expect_error(
        400,
        "AUTH_MANY_INCORRECT",
        "try again in",
    );
    app.advance(1);
    reauth(&app, json!({ "password": PASSWORD }))
        .await
        .expect(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_guesses_from_a_stolen_session_check_at_most_five() {
    let (app, _) = TestApp::signed_in().await;
    app.advance(601);
    let before = app.verifications();
    let answers = app
        .race_tabs(50, |tab| async move {
            let body = json!({ "password": "guess guess guess" });
            tab.post("/user/reauthenticate", body)
                .await
                .code()
                .to_string()
        })
        .await;
    let checked = app.verifications() - before;
    assert!(checked <= 5, "{checked} passwords checked");
    let incorrect = answers.iter().filter(|c| *c == "AUTH_INCORRECT").count();
    assert_eq!(incorrect as u64, checked, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|c| c == "AUTH_INCORRECT" || c == "RATE_LIMITED")
    );
}

#[tokio::test]
async fn reauthenticate_takes_exactly_one_proof_and_a_session() {
    let (app, _) = TestApp::signed_in().await;
    for body in [
        json!({}),
        json!({ "password": PASSWORD, "code": "123456" }),
        json!({ "code": "12345" }),
        json!({ "password": "x".repeat(129) }),
    ] {
        reauth(&app, body)
            .await
            .expect_error(400, "INVALID_FIELD", "");
    }
    let stranger = app.new_browser();
    stranger.ping().await;
    reauth(&stranger, json!({ "password": PASSWORD }))
        .await
        .expect_error(401, "UNAUTHENTICATED", "");
}
