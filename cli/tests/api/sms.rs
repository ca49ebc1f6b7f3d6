//! `GET /login/sms` and `POST /login/sms`: sign-in codes by SMS, their lifetime,
//! single use, attempts, resend limits, no enumeration, and back-off.

use serde_json::json;
use shared::model::LoginMethod;
use shared::store::UserChange;

use crate::support::{PASSWORD, TestApp, other_than};

const PHONE: &str = "+14155550123";
/// `PHONE` as it goes in a query string (`+` must be escaped there).
const PHONE_Q: &str = "%2B14155550123";
const GHOST: &str = "+14155550999";
const GHOST_Q: &str = "%2B14155550999";

/// A server with one account that has `PHONE`, and a browser with XSRF cookies.
async fn with_phone() -> (TestApp, shared::model::User) {
    let app = TestApp::spawn().await;
    let user = app.add_user_with_phone("ada@example.com", PHONE).await;
    app.ping().await.expect(200);
    (app, user)
}

async fn ask(app: &TestApp, phone_q: &str) -> crate::support::TestResponse {
    app.get(&format!("/login/sms?phone={phone_q}")).await
}

async fn sms_login(app: &TestApp, phone: &str, code: &str) -> crate::support::TestResponse {
    app.post("/login/sms", json!({ "phone": phone, "code": code }))
        .await
}

#[tokio::test]
async fn code_is_sent_and_signs_in() {
    let (app, user) = with_phone().await;
    ask(&app, PHONE_Q).await.expect(204);
    assert_eq!(app.sent_to(PHONE), 1);
    let text = app.notifier.last_to(PHONE).unwrap();
    assert!(text.contains("2 minutes"), "{text}");
    let code = app.last_code(PHONE);
    assert_eq!(code.len(), 6);

    app.get("/verify").await.expect(401);
    let r = sms_login(&app, PHONE, &code).await;
    r.expect(204);
    let cookie = r.set_cookie("TOKEN").expect("TOKEN is set");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    app.get("/verify").await.expect(204);

    let stored = app.user(&user.id).await;
    assert_eq!(stored.sessions, 1);
    let h = stored.history.expect("history recorded");
    assert_eq!(h.metadata.source, LoginMethod::Sms);
    assert_eq!(h.timestamp, app.clock_now());
    let profile = app.get("/user").await;
    profile.expect(200);
    assert_eq!(profile.body["history"]["metadata"]["source"], "sms");
    assert_eq!(profile.body["sessions"], 1);
}

#[tokio::test]
async fn phone_is_normalised_to_e164() {
    let (app, user) = with_phone().await;
    // "+1 (415) 555-0123", as people type it.
    ask(&app, "%2B1%20(415)%20555-0123").await.expect(204);
    assert_eq!(app.sent_to(PHONE), 1);
    let code = app.last_code(PHONE);
    sms_login(&app, "+1 415-555-0123", &code).await.expect(204);
    assert_eq!(app.user(&user.id).await.sessions, 1);
}

#[tokio::test]
async fn unknown_phone_gets_204_and_nothing_is_sent() {
    let (app, _) = with_phone().await;
    let r = ask(&app, GHOST_Q).await;
    r.expect(204);
    assert!(r.text.is_empty(), "{}", r.text);
    assert_eq!(app.sent_to(GHOST), 0);
    assert!(app.notifier.outbox().is_empty());

    // A guess for the unknown phone fails exactly like a wrong code for a known one.
    ask(&app, PHONE_Q).await.expect(204);
    let code = app.last_code(PHONE);
    let wrong = sms_login(&app, PHONE, &other_than(&code)).await;
    wrong.expect_error(400, "AUTH_INCORRECT", "incorrect");
    let ghost = sms_login(&app, GHOST, &code).await;
    ghost.expect_error(400, "AUTH_INCORRECT", "incorrect");
    assert_eq!(wrong.text, ghost.text);
    assert!(ghost.set_cookie("TOKEN").is_none());
}

#[tokio::test]
async fn disabled_account_is_sent_nothing() {
    let (app, user) = with_phone().await;
    app.change_user(&user.id, UserChange::Active(false)).await;
    ask(&app, PHONE_Q).await.expect(204);
    assert_eq!(app.sent_to(PHONE), 0);
    sms_login(&app, PHONE, "123456")
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    assert_eq!(app.user(&user.id).await.sessions, 0);
}

#[tokio::test]
async fn wrong_code_is_refused_and_the_right_one_still_works() {
    let (app, user) = with_phone().await;
    ask(&app, PHONE_Q).await.expect(204);
    let code = app.last_code(PHONE);
    let r = sms_login(&app, PHONE, &other_than(&code)).await;
    r.expect_error(400, "AUTH_INCORRECT", "incorrect");
    assert!(r.set_cookie("TOKEN").is_none());
    app.get("/verify").await.expect(401);
    // Four wrong tries leave the code alive.
    for _ in 0..3 {
        sms_login(&app, PHONE, &other_than(&code))
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    sms_login(&app, PHONE, &code).await.expect(204);
    assert_eq!(app.user(&user.id).await.sessions, 1);
}

#[tokio::test]
async fn five_wrong_tries_spend_the_code() {
    let (app, user) = with_phone().await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.post("/logout", json!({})).await.expect(204);
    ask(&app, PHONE_Q).await.expect(204);
    let code = app.last_code(PHONE);
    for _ in 0..5 {
        sms_login(&app, PHONE, &other_than(&code))
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    // Five failures also back this device off for 1 s; wait that out.
    app.advance(1);
    let compared = app.comparisons();
    sms_login(&app, PHONE, &code)
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    assert_eq!(app.comparisons(), compared, "a spent code is not compared");
    app.get("/verify").await.expect(401);
    assert_eq!(app.user(&user.id).await.sessions, 1);
}

#[tokio::test]
async fn code_expires_after_two_minutes() {
    let (app, user) = with_phone().await;
    ask(&app, PHONE_Q).await.expect(204);
    let code = app.last_code(PHONE);
    app.advance(119);
    sms_login(&app, PHONE, &code).await.expect(204);

    let later = app.new_browser();
    later.ping().await;
    ask(&later, PHONE_Q).await.expect(204);
    let code = later.last_code(PHONE);
    later.advance(120);
    later
        .post("/login/sms", json!({ "phone": PHONE, "code": code }))
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    later.get("/verify").await.expect(401);
    assert_eq!(app.user(&user.id).await.sessions, 1);
}

#[tokio::test]
async fn used_code_cannot_be_reused() {
    let (app, user) = with_phone().await;
    ask(&app, PHONE_Q).await.expect(204);
    let code = app.last_code(PHONE);
    sms_login(&app, PHONE, &code).await.expect(204);

    let thief = app.new_browser();
    thief.ping().await;
    sms_login(&thief, PHONE, &code)
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    thief.get("/verify").await.expect(401);
    assert_eq!(app.user(&user.id).await.sessions, 1);
}

#[tokio::test]
async fn resend_waits_sixty_seconds_and_replaces_the_code() {
    let (app, _) = with_phone().await;
    ask(&app, PHONE_Q).await.expect(204);
    let first = app.last_code(PHONE);

    let r = ask(&app, PHONE_Q).await;
    r.expect_error(400, "RATE_LIMITED", "try again in");
    assert_eq!(r.headers["retry-after"], "60");
    assert_eq!(
        r.message(),
        "too many codes requested; try again in 1 minute"
    );
    app.advance(45);
    let r = ask(&app, PHONE_Q).await;
    r.expect_error(400, "RATE_LIMITED", "try again in");
    assert_eq!(r.headers["retry-after"], "15");
    assert_eq!(
        r.message(),
        "too many codes requested; try again in 15 seconds"
    );
    assert_eq!(app.sent_to(PHONE), 1);

    app.advance(15);
    ask(&app, PHONE_Q).await.expect(204);
    assert_eq!(app.sent_to(PHONE), 2);
    let second = app.last_code(PHONE);
    if second != first {
        // Only the latest code is pending.
        sms_login(&app, PHONE, &first)
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    sms_login(&app, PHONE, &second).await.expect(204);
}

#[tokio::test]
async fn at_most_five_codes_an_hour_and_unknown_phones_alike() {
    let (app, _) = with_phone().await;
    // The same schedule for a phone with an account and one without.
    let mut seen = vec![];
    for phone_q in [PHONE_Q, GHOST_Q] {
        let start = app.clock_now();
        let mut answers = vec![];
        for _ in 0..5 {
            answers.push(ask(&app, phone_q).await.expect(204).status.as_u16());
            app.advance(60);
        }
        // Sixth in the hour: refused although the cooldown has passed.
        let r = ask(&app, phone_q).await;
        r.expect_error(400, "RATE_LIMITED", "try again in");
        let retry: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert_eq!(retry, start + 3600 - app.clock_now());
        assert_eq!(retry, 3300);
        answers.push(400);
        app.advance(retry);
        answers.push(ask(&app, phone_q).await.status.as_u16());
        app.advance(60);
        seen.push((answers, retry));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0].0, [204, 204, 204, 204, 204, 400, 204]);
    assert_eq!(app.sent_to(PHONE), 6);
    assert_eq!(app.sent_to(GHOST), 0);
}

#[tokio::test]
async fn code_requests_per_ip_are_capped() {
    let app = TestApp::spawn_with(&[("IP_CODES_PER_HOUR", "3")]).await;
    let phones: Vec<String> = (0..4).map(|i| format!("+1415555010{i}")).collect();
    for (i, p) in phones.iter().enumerate() {
        app.add_user_with_phone(&format!("u{i}@example.com"), p)
            .await;
    }
    app.ping().await;
    for p in &phones[..3] {
        ask(&app, &p.replace('+', "%2B")).await.expect(204);
        assert_eq!(app.sent_to(p), 1);
    }
    let fourth = phones[3].replace('+', "%2B");
    let r = ask(&app, &fourth).await;
    r.expect_error(400, "RATE_LIMITED", "try again in");
    assert_eq!(r.headers["retry-after"], "3600");
    assert_eq!(app.sent_to(&phones[3]), 0);

    // Another client is not held back, and the refusal did not start the phone's cooldown.
    app.set_ip("198.51.100.1");
    ask(&app, &fourth).await.expect(204);
    assert_eq!(app.sent_to(&phones[3]), 1);
    let code = app.last_code(&phones[3]);
    sms_login(&app, &phones[3], &code).await.expect(204);

    // The first IP is free again after the hour.
    app.set_ip("203.0.113.7");
    app.advance(3600);
    ask(&app, &phones[0].replace('+', "%2B")).await.expect(204);
    assert_eq!(app.sent_to(&phones[0]), 2);
}

#[tokio::test]
async fn invalid_phone_is_named() {
    let (app, _) = with_phone().await;
    for q in [
        "/login/sms?phone=14155550123",
        "/login/sms?phone=%2B0123456789",
        "/login/sms?phone=%2B123",
        "/login/sms?phone=%2B1415abc0123",
        "/login/sms?phone=",
        "/login/sms",
    ] {
        app.get(q).await.expect_error(400, "INVALID_FIELD", "phone");
    }
    for phone in [json!("not a phone"), json!(""), json!(14155550123u64)] {
        app.post("/login/sms", json!({ "phone": phone, "code": "123456" }))
            .await
            .expect_error(400, "INVALID_FIELD", "phone");
    }
    app.post("/login/sms", json!({ "code": "123456" }))
        .await
        .expect_error(400, "INVALID_FIELD", "phone");
    assert!(app.notifier.outbox().is_empty());
}

#[tokio::test]
async fn malformed_code_is_named_and_costs_no_attempt() {
    let (app, user) = with_phone().await;
    ask(&app, PHONE_Q).await.expect(204);
    let code = app.last_code(PHONE);
    for bad in [
        json!("12345"),
        json!("1234567"),
        json!("abcdef"),
        json!("12345a"),
        json!(""),
        json!(123456),
    ] {
        app.post("/login/sms", json!({ "phone": PHONE, "code": bad }))
            .await
            .expect_error(400, "INVALID_FIELD", "code");
    }
    app.post("/login/sms", json!({ "phone": PHONE }))
        .await
        .expect_error(400, "INVALID_FIELD", "code");
    assert_eq!(app.comparisons(), 0);
    sms_login(&app, PHONE, &code).await.expect(204);
    assert_eq!(app.user(&user.id).await.sessions, 1);
}

#[tokio::test]
async fn repeated_failures_back_the_device_off() {
    let (app, _) = with_phone().await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.post("/logout", json!({})).await.expect(204);
    ask(&app, PHONE_Q).await.expect(204);
    let first = app.last_code(PHONE);
    for _ in 0..5 {
        sms_login(&app, PHONE, &other_than(&first))
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    let r = sms_login(&app, PHONE, &other_than(&first)).await;
    r.expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
    assert_eq!(r.headers["retry-after"], "1");
    // It is the phone's: signing in by email is counted under the email.
    app.login("ada@example.com", PASSWORD).await.expect(204);
    app.post("/logout", json!({})).await.expect(204);

    app.advance(60);
    ask(&app, PHONE_Q).await.expect(204);
    let code = app.last_code(PHONE);
    sms_login(&app, PHONE, &other_than(&code))
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    // Sixth failure: 2 s, and even the right code waits (without being tried).
    let r = sms_login(&app, PHONE, &code).await;
    r.expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
    assert_eq!(r.headers["retry-after"], "2");
    app.advance(2);
    sms_login(&app, PHONE, &code).await.expect(204);
}

#[tokio::test]
async fn unknown_phone_is_limited_exactly_like_an_account() {
    let (app, _) = with_phone().await;
    let mut answers = vec![];
    for phone in [PHONE, GHOST] {
        for _ in 0..5 {
            sms_login(&app, phone, "000000")
                .await
                .expect_error(400, "AUTH_INCORRECT", "incorrect");
        }
        let r = sms_login(&app, phone, "000000").await;
        r.expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
        answers.push((r.headers["retry-after"].clone(), r.text));
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn failures_per_ip_are_capped() {
    let app = TestApp::spawn_with(&[("IP_LOGIN_FAILURES_PER_HOUR", "3")]).await;
    app.add_user_with_phone("ada@example.com", PHONE).await;
    app.ping().await;
    ask(&app, PHONE_Q).await.expect(204);
    let code = app.last_code(PHONE);
    for i in 0..3 {
        sms_login(&app, &format!("+1415555020{i}"), &code)
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    // The IP is over its cap: even the right code waits, and is not tried.
    sms_login(&app, PHONE, &code)
        .await
        .expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
    app.set_ip("198.51.100.1");
    sms_login(&app, PHONE, &code).await.expect(204);
}

#[tokio::test]
async fn a_phone_binding_code_does_not_sign_in() {
    let (app, user) = with_phone().await;
    app.login("ada@example.com", PASSWORD).await.expect(204);
    // Ada re-verifies her own number: the code is for binding, not for signing in.
    app.get(&format!("/user/phone_code?phone={PHONE_Q}"))
        .await
        .expect(204);
    let code = app.last_code(PHONE);
    let stranger = app.new_browser();
    stranger.ping().await;
    sms_login(&stranger, PHONE, &code)
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    stranger.get("/verify").await.expect(401);
    assert_eq!(app.user(&user.id).await.sessions, 1);
}

#[tokio::test]
async fn retry_after_covers_the_hourly_cap_during_a_cooldown() {
    let (app, _) = with_phone().await;
    for _ in 0..4 {
        ask(&app, PHONE_Q).await.expect(204);
        app.advance(60);
    }
    ask(&app, PHONE_Q).await.expect(204);
    // 10 s after the fifth code: the cooldown ends in 50 s, but the hour is spent.
    app.advance(10);
    let r = ask(&app, PHONE_Q).await;
    r.expect_error(400, "RATE_LIMITED", "try again in");
    let retry: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    // Waiting as told must not meet another refusal.
    app.advance(retry);
    ask(&app, PHONE_Q).await.expect(204);
}
