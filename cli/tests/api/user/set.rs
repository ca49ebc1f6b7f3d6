//! `PATCH /user` (Set User): name, avatar and email, one field per request named by `key`.

use serde_json::json;
use shared::clock::rfc3339;

use super::{NEW_PASSWORD, PHONE};
use crate::support::{PASSWORD, START, TestApp};

#[tokio::test]
async fn patch_sets_name_and_avatar_with_key_in_any_case() {
    let (app, _) = TestApp::signed_in().await;
    app.advance(10);
    app.patch("/user", json!({ "key": "Name", "name": "  Ada Lovelace " }))
        .await
        .expect(204);
    app.advance(5);
    app.patch(
        "/user",
        json!({ "key": "AVATAR", "avatar": "https://cdn.example.com/ada.png" }),
    )
    .await
    .expect(204);
    let r = app.get("/user").await;
    assert_eq!(r.body["name"], "Ada Lovelace");
    assert_eq!(r.body["avatar"], "https://cdn.example.com/ada.png");
    assert_eq!(r.body["create_time"], rfc3339(START));
    assert_eq!(r.body["update_time"], rfc3339(START + 15));

    // Fields other than the one named by `key` are ignored.
    app.patch(
        "/user",
        json!({ "key": "name", "name": "Countess", "avatar": "ignored", "email": "x@example.com" }),
    )
    .await
    .expect(204);
    let r = app.get("/user").await;
    assert_eq!(r.body["name"], "Countess");
    assert_eq!(r.body["avatar"], "https://cdn.example.com/ada.png");
    assert_eq!(r.body["email"], "ada@example.com");

    // An avatar may be cleared.
    app.patch("/user", json!({ "key": "avatar", "avatar": "" }))
        .await
        .expect(204);
    assert_eq!(app.get("/user").await.body["avatar"], "");
}

#[tokio::test]
async fn email_change_moves_the_sign_in() {
    let (app, user) = TestApp::signed_in().await;
    app.patch(
        "/user",
        json!({ "key": "eMaIl", "email": " Ada.Lovelace@Example.org " }),
    )
    .await
    .expect(204);
    assert_eq!(
        app.get("/user").await.body["email"],
        "Ada.Lovelace@Example.org"
    );

    let b = app.new_browser();
    b.ping().await;
    b.login("ada@example.com", PASSWORD)
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    b.login("ada.lovelace@example.org", PASSWORD)
        .await
        .expect(204);
    assert_eq!(b.get("/user").await.body["_id"], user.id.as_str());

    // The old address is free again.
    let newcomer = app.add_user("ADA@example.com").await;
    assert_ne!(newcomer.id, user.id);
}

#[tokio::test]
async fn email_taken_by_another_account_is_refused() {
    let (app, _) = TestApp::signed_in().await;
    app.add_user("bob@example.com").await;
    let r = app
        .patch(
            "/user",
            json!({ "key": "email", "email": "BOB@Example.com" }),
        )
        .await;
    r.expect_error(400, "EMAIL_TAKEN", "email");
    assert_eq!(app.get("/user").await.body["email"], "ada@example.com");
    let b = app.signed_in_as("bob@example.com").await;
    b.login("ada@example.com", PASSWORD).await.expect(204);

    // Changing only the case of one's own address is no conflict.
    app.patch(
        "/user",
        json!({ "key": "email", "email": "Ada@Example.COM" }),
    )
    .await
    .expect(204);
    assert_eq!(app.get("/user").await.body["email"], "Ada@Example.COM");
}

#[tokio::test]
async fn invalid_email_is_named() {
    let (app, _) = TestApp::signed_in().await;
    for bad in [
        json!({ "key": "email", "email": "not-an-email" }),
        json!({ "key": "email", "email": "a@b" }),
        json!({ "key": "email", "email": "" }),
        json!({ "key": "email", "email": "a b@example.com" }),
        json!({ "key": "email", "email": format!("{}@example.com", "a".repeat(250)) }),
        json!({ "key": "email" }),
        json!({ "key": "email", "email": 42 }),
    ] {
        app.patch("/user", bad)
            .await
            .expect_error(400, "INVALID_FIELD", "email");
    }
    assert_eq!(app.get("/user").await.body["email"], "ada@example.com");
}

#[tokio::test]
async fn name_length_and_content_are_checked() {
    let (app, _) = TestApp::signed_in().await;
    for bad in [
        json!({ "key": "name", "name": "x".repeat(65) }),
        json!({ "key": "name", "name": "é".repeat(65) }),
        json!({ "key": "name", "name": "" }),
        json!({ "key": "name", "name": "   " }),
        json!({ "key": "name", "name": "Ada\u{7}" }),
        json!({ "key": "name" }),
        json!({ "key": "name", "name": null }),
    ] {
        app.patch("/user", bad.clone())
            .await
            .expect_error(400, "INVALID_FIELD", "name");
    }
    assert_eq!(app.get("/user").await.body["name"], "ada");
    // 64 characters (128 bytes) is the limit, counted in characters.
    let longest = "é".repeat(64);
    app.patch("/user", json!({ "key": "name", "name": longest }))
        .await
        .expect(204);
    assert_eq!(app.get("/user").await.body["name"], longest.as_str());
}

#[tokio::test]
async fn avatar_length_is_checked() {
    let (app, _) = TestApp::signed_in().await;
    let base = "https://cdn.example.com/";
    let too_long = format!("{base}{}", "a".repeat(2049 - base.len()));
    app.patch("/user", json!({ "key": "avatar", "avatar": too_long }))
        .await
        .expect_error(400, "INVALID_FIELD", "avatar");
    app.patch("/user", json!({ "key": "avatar" }))
        .await
        .expect_error(400, "INVALID_FIELD", "avatar");
    assert_eq!(app.get("/user").await.body["avatar"], "");
    let longest = format!("{base}{}", "a".repeat(2048 - base.len()));
    app.patch("/user", json!({ "key": "avatar", "avatar": longest }))
        .await
        .expect(204);
    assert_eq!(app.get("/user").await.body["avatar"], longest.as_str());
}

/// An avatar is empty or an https URL, stored as the parsed URL serialises
/// it: no script, data, plain-http or relative URL, no control characters.
#[tokio::test]
async fn avatar_must_be_an_https_url() {
    let (app, user) = TestApp::signed_in().await;
    for (sent, stored) in [
        (
            "HTTPS://CDN.Example.com/Ada.png",
            "https://cdn.example.com/Ada.png",
        ),
        (
            "https://cdn.example.com/a b\"<x>.png",
            "https://cdn.example.com/a%20b%22%3Cx%3E.png",
        ),
        ("", ""),
    ] {
        app.patch("/user", json!({ "key": "avatar", "avatar": sent }))
            .await
            .expect(204);
        assert_eq!(app.get("/user").await.body["avatar"], stored, "{sent}");
    }
    app.patch(
        "/user",
        json!({ "key": "avatar", "avatar": "https://cdn.example.com/ada.png" }),
    )
    .await
    .expect(204);
    for bad in [
        "javascript:alert(document.cookie)",
        "JAVASCRIPT:alert(1)",
        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
        "http://cdn.example.com/ada.png",
        "//cdn.example.com/ada.png",
        "/avatars/ada.png",
        "avatars/ada.png",
        "https://cdn.example.com/\u{0}ada.png",
        "https://cdn.example.com/a\nda.png",
        "java\tscript:alert(1)",
        "https://ada:secret@cdn.example.com/ada.png",
    ] {
        app.patch("/user", json!({ "key": "avatar", "avatar": bad }))
            .await
            .expect_error(400, "INVALID_FIELD", "avatar");
    }
    let stored = app.user(&user.id).await.avatar;
    assert_eq!(stored, "https://cdn.example.com/ada.png");
}

#[tokio::test]
async fn unknown_or_missing_key_is_named() {
    let (app, _) = TestApp::signed_in().await;
    for bad in [
        json!({ "key": "phone", "phone": PHONE }),
        json!({ "key": "password", "password": NEW_PASSWORD }),
        json!({ "key": "", "name": "x" }),
        json!({ "key": "names", "name": "x" }),
        json!({ "name": "x" }),
        json!({ "key": 1, "name": "x" }),
    ] {
        app.patch("/user", bad)
            .await
            .expect_error(400, "INVALID_FIELD", "key");
    }
    let r = app.get("/user").await;
    assert_eq!(
        (r.body["name"].as_str(), r.body["phone"].as_str()),
        (Some("ada"), Some(""))
    );
}

#[tokio::test]
async fn patch_needs_a_session() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    app.patch("/user", json!({ "key": "name", "name": "Mallory" }))
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
}
