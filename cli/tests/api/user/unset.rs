//! `DELETE /user/{key}` (Unset User): unbinding the phone, TOTP and Lark.

use serde_json::json;
use shared::model::LarkIdentity;
use shared::store::UserChange;

use super::{MASKED, PHONE, bind, bound_totp, request_code};
use crate::support::TestApp;

#[tokio::test]
async fn unbinding_the_phone_frees_it() {
    let app = TestApp::spawn().await;
    let ada = app.add_user_with_phone("ada@example.com", PHONE).await;
    let ada_b = app.signed_in_as("ada@example.com").await;
    assert_eq!(ada_b.get("/user").await.body["phone"], MASKED);

    ada_b.delete("/user/phone").await.expect(204);
    assert_eq!(ada_b.get("/user").await.body["phone"], "");
    assert_eq!(app.user(&ada.id).await.phone, None);

    app.add_user("bob@example.com").await;
    let bob = app.signed_in_as("bob@example.com").await;
    let code = request_code(&bob, PHONE).await;
    bind(&bob, PHONE, &code).await.expect(204);
    assert_eq!(bob.get("/user").await.body["phone"], MASKED);

    // The phone signs in to its new owner.
    app.advance(60);
    let b = app.new_browser();
    b.ping().await;
    b.get("/login/sms?phone=%2B14155550123").await.expect(204);
    let code = app.last_code(PHONE);
    b.post("/login/sms", json!({ "phone": PHONE, "code": code }))
        .await
        .expect(204);
    assert_eq!(b.get("/user").await.body["email"], "bob@example.com");
}

#[tokio::test]
async fn unbinding_totp_and_lark() {
    let (app, user) = TestApp::signed_in().await;
    let lark = LarkIdentity {
        open_id: "ou_123".into(),
        name: "Ada".into(),
        ..LarkIdentity::default()
    };
    for change in [bound_totp(), UserChange::Lark(Some(lark.clone()))] {
        app.change_user(&user.id, change).await;
    }
    let r = app.get("/user").await;
    assert_eq!(
        (r.body["totp"].clone(), r.body["lark"].clone()),
        (json!("******"), serde_json::to_value(&lark).unwrap())
    );

    app.delete("/user/totp").await.expect(204);
    let r = app.get("/user").await;
    assert_eq!(r.body["totp"], "");
    assert!(app.user(&user.id).await.totp.is_none());
    assert_eq!(r.body["lark"]["open_id"], "ou_123");

    app.delete("/user/lark").await.expect(204);
    assert_eq!(app.get("/user").await.body["lark"], json!(null));
    assert!(app.user(&user.id).await.lark.is_none());

    // Unbinding what is not bound is harmless.
    app.delete("/user/totp").await.expect(204);
    app.delete("/user/phone").await.expect(204);
}

#[tokio::test]
async fn unbind_keys_are_case_insensitive() {
    let app = TestApp::spawn().await;
    let user = app.add_user_with_phone("ada@example.com", PHONE).await;
    for change in [
        bound_totp(),
        UserChange::Lark(Some(LarkIdentity {
            open_id: "ou_1".into(),
            ..LarkIdentity::default()
        })),
    ] {
        app.change_user(&user.id, change).await;
    }
    let b = app.signed_in_as("ada@example.com").await;
    for key in ["PHONE", "Totp", "lArK"] {
        b.delete(&format!("/user/{key}")).await.expect(204);
    }
    let stored = app.user(&user.id).await;
    assert_eq!(stored.phone, None);
    assert!(stored.totp.is_none());
    assert!(stored.lark.is_none());
}

#[tokio::test]
async fn unbinding_an_unknown_key_is_400() {
    let app = TestApp::spawn().await;
    let user = app.add_user_with_phone("ada@example.com", PHONE).await;
    let b = app.signed_in_as("ada@example.com").await;
    for key in [
        "email",
        "name",
        "avatar",
        "password",
        "phone_code",
        "phones",
        "x",
    ] {
        b.delete(&format!("/user/{key}"))
            .await
            .expect_error(400, "INVALID_FIELD", "key");
    }
    let stored = app.user(&user.id).await;
    assert_eq!(stored.phone.as_deref(), Some(PHONE));
    assert_eq!(stored.email, "ada@example.com");
}

#[tokio::test]
async fn unbinding_needs_a_session() {
    let app = TestApp::spawn().await;
    let user = app.add_user_with_phone("ada@example.com", PHONE).await;
    app.ping().await;
    for key in ["phone", "totp", "lark"] {
        app.delete(&format!("/user/{key}"))
            .await
            .expect_error(401, "UNAUTHENTICATED", "signed in");
    }
    assert_eq!(app.user(&user.id).await.phone.as_deref(), Some(PHONE));
}
