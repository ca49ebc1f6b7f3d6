//! `POST /user/password` (Set Password): the old password proves the caller,
//! the new one must be strong, and every other session ends.

use serde_json::json;

use super::NEW_PASSWORD;
use crate::support::{PASSWORD, TestApp};

#[tokio::test]
async fn password_change_keeps_this_session_and_ends_the_others() {
    let (app, user) = TestApp::signed_in().await;
    let other = app.signed_in_as("ada@example.com").await;
    let old_hash = app.user(&user.id).await.password.expose().clone();

    app.post(
        "/user/password",
        json!({ "old": PASSWORD, "password": NEW_PASSWORD }),
    )
    .await
    .expect(204);

    app.get("/user").await.expect(200);
    other
        .get("/user")
        .await
        .expect_error(401, "SESSION_ENDED", "session");
    let new_hash = app.user(&user.id).await.password.expose().clone();
    assert_ne!(new_hash, old_hash);
    assert!(new_hash.starts_with("$argon2id$"), "{new_hash}");

    let b = app.new_browser();
    b.ping().await;
    b.login("ada@example.com", PASSWORD)
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    b.login("ada@example.com", NEW_PASSWORD).await.expect(204);
}

#[tokio::test]
async fn wrong_old_password_changes_nothing() {
    let (app, user) = TestApp::signed_in().await;
    let other = app.signed_in_as("ada@example.com").await;
    let hash = app.user(&user.id).await.password.expose().clone();
    app.post(
        "/user/password",
        json!({ "old": "not the password", "password": NEW_PASSWORD }),
    )
    .await
    .expect_error(400, "WRONG_PASSWORD", "old");
    assert_eq!(app.user(&user.id).await.password.expose(), &hash);
    other.get("/user").await.expect(200);
    let b = app.new_browser();
    b.ping().await;
    b.login("ada@example.com", NEW_PASSWORD)
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    b.login("ada@example.com", PASSWORD).await.expect(204);
}

#[tokio::test]
async fn guessing_the_old_password_backs_off() {
    let (app, _) = TestApp::signed_in().await;
    for _ in 0..5 {
        app.post(
            "/user/password",
            json!({ "old": "guess guess guess", "password": NEW_PASSWORD }),
        )
        .await
        .expect_error(400, "WRONG_PASSWORD", "old");
    }
    // Now even the right old password has to wait, unchecked; and the
    // guesses count as sign-in failures of the account, from this device.
    let before = app.verifications();
    let r = app
        .post(
            "/user/password",
            json!({ "old": PASSWORD, "password": NEW_PASSWORD }),
        )
        .await;
    r.expect_error(400, "RATE_LIMITED", "try again in");
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(
        r.message(),
        "too many failed attempts; try again in 1 second"
    );
    assert_eq!(app.verifications(), before);
    app.login("ada@example.com", PASSWORD).await.expect_error(
        400,
        "AUTH_MANY_INCORRECT",
        "try again in",
    );
    app.advance(1);
    app.post(
        "/user/password",
        json!({ "old": PASSWORD, "password": NEW_PASSWORD }),
    )
    .await
    .expect(204);
}

#[tokio::test]
async fn weak_new_passwords_are_refused() {
    let (app, user) = TestApp::signed_in().await;
    let hash = app.user(&user.id).await.password.expose().clone();
    for (weak, why) in [
        ("short", "at least 8"),
        ("seven77", "at least 8"),
        ("éàüöñçß", "at least 8"),
        ("password1", "common"),
        ("QWERTYUIOP", "common"),
        ("iloveyou1", "common"),
    ] {
        let r = app
            .post(
                "/user/password",
                json!({ "old": PASSWORD, "password": weak }),
            )
            .await;
        r.expect_error(400, "WEAK_PASSWORD", "password");
        assert!(r.message().contains(why), "{weak}: {}", r.message());
    }
    let r = app
        .post(
            "/user/password",
            json!({ "old": PASSWORD, "password": "x".repeat(129) }),
        )
        .await;
    r.expect_error(400, "WEAK_PASSWORD", "at most 128");
    assert_eq!(app.user(&user.id).await.password.expose(), &hash);
    // Eight characters, counted as characters, are enough.
    app.post(
        "/user/password",
        json!({ "old": PASSWORD, "password": "éàüöñçßø" }),
    )
    .await
    .expect(204);
    app.new_browser()
        .sign_in("ada@example.com", "éàüöñçßø")
        .await;
}

#[tokio::test]
async fn password_fields_are_required_and_a_session_too() {
    let (app, _) = TestApp::signed_in().await;
    app.post("/user/password", json!({ "password": NEW_PASSWORD }))
        .await
        .expect_error(400, "INVALID_FIELD", "old");
    app.post("/user/password", json!({ "old": PASSWORD }))
        .await
        .expect_error(400, "INVALID_FIELD", "password");
    app.post(
        "/user/password",
        json!({ "old": PASSWORD, "password": 12345678 }),
    )
    .await
    .expect_error(400, "INVALID_FIELD", "password");

    let stranger = app.new_browser();
    stranger.ping().await;
    stranger
        .post(
            "/user/password",
            json!({ "old": PASSWORD, "password": NEW_PASSWORD }),
        )
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
    // Nothing changed: the old password still signs in.
    stranger
        .login("ada@example.com", PASSWORD)
        .await
        .expect(204);
}
