//! `GET /user/phone_code` and `POST /user/phone` (Bind User's Phone): a code
//! sent to the phone, its lifetime, attempts and resend limits, and who may take a number.

use serde_json::json;

use super::{MASKED, OTHER_PHONE, PHONE, bind, phone_code_path, request_code};
use crate::support::{TestApp, other_than};

#[tokio::test]
async fn phone_binding_with_its_code() {
    let (app, user) = TestApp::signed_in().await;
    // Typed with spaces and punctuation, sent to the E.164 form.
    app.get(&phone_code_path("+1 (415) 555-0123"))
        .await
        .expect(204);
    assert_eq!(app.sent_to(PHONE), 1);
    let code = app.last_code(PHONE);
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));

    bind(&app, PHONE, &code).await.expect(204);
    let r = app.get("/user").await;
    assert_eq!(r.body["phone"], MASKED);
    assert!(!r.text.contains("4155550"), "{}", r.text);
    assert_eq!(app.user(&user.id).await.phone.as_deref(), Some(PHONE));

    // The code is spent.
    bind(&app, PHONE, &code)
        .await
        .expect_error(400, "INVALID_CODE", "code");

    // The bound phone now signs in by SMS.
    app.advance(60);
    let phone = app.new_browser();
    phone.ping().await;
    phone
        .get("/login/sms?phone=%2B14155550123")
        .await
        .expect(204);
    let login_code = app.last_code(PHONE);
    phone
        .post("/login/sms", json!({ "phone": PHONE, "code": login_code }))
        .await
        .expect(204);
    assert_eq!(
        phone.get("/user").await.body["history"]["metadata"]["source"],
        "sms"
    );
}

#[tokio::test]
async fn a_code_binds_only_the_phone_it_was_sent_to() {
    let (app, _) = TestApp::signed_in().await;
    let code = request_code(&app, PHONE).await;
    bind(&app, OTHER_PHONE, &code)
        .await
        .expect_error(400, "INVALID_CODE", "code");
    assert_eq!(app.get("/user").await.body["phone"], "");
    // That try used one attempt, not the code.
    bind(&app, PHONE, &code).await.expect(204);
    assert_eq!(app.get("/user").await.body["phone"], MASKED);
}

#[tokio::test]
async fn a_code_binds_only_for_the_account_that_asked() {
    let (app, _) = TestApp::signed_in().await;
    app.add_user("bob@example.com").await;
    let bob = app.signed_in_as("bob@example.com").await;
    let code = request_code(&app, PHONE).await;
    bind(&bob, PHONE, &code)
        .await
        .expect_error(400, "INVALID_CODE", "code");
    assert_eq!(bob.get("/user").await.body["phone"], "");
    bind(&app, PHONE, &code).await.expect(204);
}

#[tokio::test]
async fn five_wrong_codes_spend_it() {
    let (app, _) = TestApp::signed_in().await;
    let code = request_code(&app, PHONE).await;
    for _ in 0..5 {
        bind(&app, PHONE, &other_than(&code))
            .await
            .expect_error(400, "INVALID_CODE", "code");
    }
    // Five failures back this device off for 1 s; then the right code is spent.
    bind(&app, PHONE, &code).await.expect_error(
        400,
        "RATE_LIMITED",
        "too many failed attempts; try again in 1 second",
    );
    app.advance(1);
    let compared = app.comparisons();
    bind(&app, PHONE, &code)
        .await
        .expect_error(400, "INVALID_CODE", "code");
    assert_eq!(app.comparisons(), compared, "a spent code is not compared");
    assert_eq!(app.get("/user").await.body["phone"], "");
}

#[tokio::test]
async fn four_wrong_codes_leave_it_usable() {
    let (app, _) = TestApp::signed_in().await;
    let code = request_code(&app, PHONE).await;
    for _ in 0..4 {
        bind(&app, PHONE, &other_than(&code))
            .await
            .expect_error(400, "INVALID_CODE", "code");
    }
    bind(&app, PHONE, &code).await.expect(204);
}

#[tokio::test]
async fn the_code_lives_two_minutes() {
    let (app, _) = TestApp::signed_in().await;
    let code = request_code(&app, PHONE).await;
    app.advance(119);
    bind(&app, PHONE, &code).await.expect(204);

    app.advance(60);
    let code = request_code(&app, OTHER_PHONE).await;
    app.advance(120);
    bind(&app, OTHER_PHONE, &code)
        .await
        .expect_error(400, "INVALID_CODE", "code");
    assert_eq!(app.get("/user").await.body["phone"], MASKED);
}

#[tokio::test]
async fn a_new_code_replaces_the_old_one() {
    let (app, _) = TestApp::signed_in().await;
    let first = request_code(&app, PHONE).await;
    app.advance(60);
    let second = request_code(&app, PHONE).await;
    if first != second {
        bind(&app, PHONE, &first)
            .await
            .expect_error(400, "INVALID_CODE", "code");
    }
    bind(&app, PHONE, &second).await.expect(204);
}

#[tokio::test]
async fn codes_are_resent_only_after_a_minute() {
    let (app, _) = TestApp::signed_in().await;
    request_code(&app, PHONE).await;
    let r = app.get(&phone_code_path(PHONE)).await;
    r.expect_error(400, "RATE_LIMITED", "try again in");
    assert_eq!(r.headers["retry-after"], "60");
    app.advance(45);
    let r = app.get(&phone_code_path(PHONE)).await;
    r.expect_error(400, "RATE_LIMITED", "try again in");
    assert_eq!(r.headers["retry-after"], "15");
    assert_eq!(app.sent_to(PHONE), 1);
    // Another number is not held up by the first one's cooldown.
    app.get(&phone_code_path(OTHER_PHONE)).await.expect(204);
    app.advance(15);
    app.get(&phone_code_path(PHONE)).await.expect(204);
    assert_eq!(app.sent_to(PHONE), 2);
}

#[tokio::test]
async fn at_most_five_codes_an_hour_per_phone() {
    let (app, _) = TestApp::signed_in().await;
    for _ in 0..5 {
        app.get(&phone_code_path(PHONE)).await.expect(204);
        app.advance(60);
    }
    let r = app.get(&phone_code_path(PHONE)).await;
    r.expect_error(400, "RATE_LIMITED", "try again in");
    assert_eq!(r.headers["retry-after"], "3300");
    assert_eq!(app.sent_to(PHONE), 5);
    app.advance(3300);
    // (An hour on, the sign-in is no longer recent.)
    app.reauthenticate().await;
    app.get(&phone_code_path(PHONE)).await.expect(204);
    assert_eq!(app.sent_to(PHONE), 6);
}

#[tokio::test]
async fn a_phone_of_another_account_is_taken() {
    let (app, _) = TestApp::signed_in().await;
    app.add_user_with_phone("bob@example.com", PHONE).await;
    app.get(&phone_code_path(PHONE))
        .await
        .expect_error(400, "PHONE_TAKEN", "phone");
    assert_eq!(
        app.sent_to(PHONE),
        0,
        "no code goes to someone else's phone"
    );
    // Binding it anyway (with a guess) does not take it either.
    bind(&app, PHONE, "123456").await.expect(400);
    assert_eq!(app.get("/user").await.body["phone"], "");
}

#[tokio::test]
async fn a_phone_bound_meanwhile_by_another_account_is_taken() {
    let (app, _) = TestApp::signed_in().await;
    let bob_user = app.add_user("bob@example.com").await;
    let bob = app.signed_in_as("bob@example.com").await;
    let ada_code = request_code(&app, PHONE).await;
    app.advance(60);
    let bob_code = request_code(&bob, PHONE).await;
    bind(&bob, PHONE, &bob_code).await.expect(204);
    bind(&app, PHONE, &ada_code)
        .await
        .expect_error(400, "PHONE_TAKEN", "phone");
    assert_eq!(app.get("/user").await.body["phone"], "");
    assert_eq!(app.user(&bob_user.id).await.phone.as_deref(), Some(PHONE));
}

#[tokio::test]
async fn rebinding_frees_the_previous_phone() {
    let (app, _) = TestApp::signed_in().await;
    let code = request_code(&app, PHONE).await;
    bind(&app, PHONE, &code).await.expect(204);
    let code = request_code(&app, OTHER_PHONE).await;
    bind(&app, OTHER_PHONE, &code).await.expect(204);
    assert_eq!(app.get("/user").await.body["phone"], "+*********8000");

    app.add_user("bob@example.com").await;
    let bob = app.signed_in_as("bob@example.com").await;
    app.advance(60);
    let code = request_code(&bob, PHONE).await;
    bind(&bob, PHONE, &code).await.expect(204);
    assert_eq!(bob.get("/user").await.body["phone"], MASKED);
}

#[tokio::test]
async fn invalid_phone_and_code_are_named() {
    let (app, _) = TestApp::signed_in().await;
    let sent = app.notifier.outbox().len();
    for bad in [
        "/user/phone_code",
        "/user/phone_code?phone=",
        "/user/phone_code?phone=14155550123",
        "/user/phone_code?phone=%2B0123456789",
        "/user/phone_code?phone=%2B123",
        "/user/phone_code?phone=%2B1415abc0123",
        "/user/phone_code?phone=%2B1234567890123456",
    ] {
        app.get(bad)
            .await
            .expect_error(400, "INVALID_FIELD", "phone");
    }
    assert_eq!(app.notifier.outbox().len(), sent);

    let code = request_code(&app, PHONE).await;
    for body in [
        json!({ "phone": "4155550123", "code": code }),
        json!({ "phone": "", "code": code }),
        json!({ "code": code }),
        json!({ "phone": 14155550123u64, "code": code }),
    ] {
        app.post("/user/phone", body)
            .await
            .expect_error(400, "INVALID_FIELD", "phone");
    }
    for body in [
        json!({ "phone": PHONE, "code": "12345" }),
        json!({ "phone": PHONE, "code": "12345a" }),
        json!({ "phone": PHONE }),
        json!({ "phone": PHONE, "code": 123456 }),
    ] {
        app.post("/user/phone", body)
            .await
            .expect_error(400, "INVALID_FIELD", "code");
    }
    // None of those cost an attempt.
    bind(&app, PHONE, &code).await.expect(204);
}

#[tokio::test]
async fn phone_routes_need_a_session() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    app.get(&phone_code_path(PHONE))
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
    assert_eq!(app.sent_to(PHONE), 0);
    bind(&app, PHONE, "123456")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
    // TOTP binding is tested elsewhere; here only that it is not public.
    app.get("/user/totp")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
}
