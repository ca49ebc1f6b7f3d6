//! `/user*`: the profile and its masked markers, profile edits, password
//! change, phone binding with its code limits, and unbinding.

use serde_json::json;
use shared::clock::rfc3339;
use shared::model::Totp;
use shared::secret::Secret;
use shared::store::UserChange;

use crate::support::{PASSWORD, START, TestApp, TestResponse, USER_AGENT};

const PHONE: &str = "+14155550123";
const MASKED: &str = "+*******0123";
const OTHER_PHONE: &str = "+8613800138000";
const NEW_PASSWORD: &str = "a brand new passphrase";
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// `GET /user/phone_code` for `phone`, percent-encoded as a browser would
/// (a raw `+` in a query string means a space).
fn phone_code_path(phone: &str) -> String {
    let encoded: String = phone
        .chars()
        .map(|c| match c {
            '+' => "%2B".to_string(),
            ' ' => "%20".to_string(),
            c => c.to_string(),
        })
        .collect();
    format!("/user/phone_code?phone={encoded}")
}

/// A six-digit code that is certainly not `code`.
fn wrong(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

/// A fresh browser on `app`'s server, signed in as `email`.
async fn browser_as(app: &TestApp, email: &str, password: &str) -> TestApp {
    let b = app.new_browser();
    b.ping().await.expect(200);
    b.login(email, password).await.expect(204);
    b
}

/// Requests a phone-binding code for `phone` and returns it.
async fn request_code(app: &TestApp, phone: &str) -> String {
    app.get(&phone_code_path(phone)).await.expect(204);
    app.last_code(phone)
}

async fn bind(app: &TestApp, phone: &str, code: &str) -> TestResponse {
    app.post("/user/phone", json!({ "phone": phone, "code": code }))
        .await
}

// ---------------------------------------------------------------- GET /user

#[tokio::test]
async fn profile_shows_every_field_and_nothing_else() {
    let (app, user) = TestApp::signed_in().await;
    let r = app.get("/user").await;
    r.expect(200);
    let start = rfc3339(START);
    assert_eq!(start, "2027-01-15T08:00:00Z");
    assert_eq!(
        r.body,
        json!({
            "_id": user.id,
            "email": "ada@example.com",
            "name": "ada",
            "avatar": "",
            "phone": "",
            "sessions": 1,
            "history": {
                "time": start,
                "ip": "203.0.113.7",
                "user_agent": USER_AGENT,
                "method": "password",
            },
            "totp": "",
            "lark": null,
            "status": true,
            "create_time": start,
            "update_time": start,
        })
    );
    let hash = app.user(&user.id).await.password.expose().clone();
    assert!(!r.text.contains(&hash), "the password hash leaked");
    assert!(!r.text.contains("argon2"), "{}", r.text);
    assert!(!r.text.contains("password\":"), "{}", r.text);
}

#[tokio::test]
async fn profile_masks_phone_and_totp_and_never_shows_secrets() {
    let app = TestApp::spawn().await;
    let user = app
        .add_user_full("ada@example.com", PASSWORD, Some(PHONE))
        .await;
    let totp = Totp {
        secret: Secret::new(TOTP_SECRET.to_string()),
        last_step: 0,
    };
    app.state
        .store
        .update_user(&user.id, UserChange::Totp(Some(totp)), app.clock_now())
        .await
        .unwrap();
    let b = browser_as(&app, "ada@example.com", PASSWORD).await;

    let r = b.get("/user").await;
    r.expect(200);
    assert_eq!(r.body["phone"], MASKED);
    assert_eq!(r.body["totp"], "******");
    assert!(
        !r.text.contains("4155550"),
        "phone digits leaked: {}",
        r.text
    );
    assert!(!r.text.contains(TOTP_SECRET), "TOTP secret leaked");
    assert!(!r.text.contains("JBSWY3DP"), "TOTP secret leaked");
    assert!(!r.text.contains("argon2"), "password hash leaked");
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 12, "unexpected fields: {keys:?}");
}

#[tokio::test]
async fn history_and_sessions_follow_each_login() {
    let (app, _) = TestApp::signed_in().await;
    app.advance(600);
    let phone = app.new_browser();
    phone.set_ip("198.51.100.23");
    phone.ping().await;
    phone.login("ada@example.com", PASSWORD).await.expect(204);

    for b in [&app, &phone] {
        let r = b.get("/user").await;
        r.expect(200);
        assert_eq!(r.body["sessions"], 2);
        assert_eq!(
            r.body["history"],
            json!({
                "time": rfc3339(START + 600),
                "ip": "198.51.100.23",
                "user_agent": USER_AGENT,
                "method": "password",
            })
        );
    }
    // A failed login is not a session and does not move the history.
    app.login("ada@example.com", "not the password")
        .await
        .expect(400);
    let r = app.get("/user").await;
    assert_eq!(r.body["sessions"], 2);
    assert_eq!(r.body["history"]["time"], rfc3339(START + 600));
}

#[tokio::test]
async fn profile_needs_a_session() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
    app.set_cookie("TOKEN", "not-a-jwt");
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
}

#[tokio::test]
async fn tampered_or_foreign_tokens_are_refused() {
    let (app, user) = TestApp::signed_in().await;
    let token = app.cookie("TOKEN").unwrap();
    app.get("/user").await.expect(200);

    // One character of the signature changed.
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut sig: Vec<char> = parts[2].chars().collect();
    sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
    let sig: String = sig.into_iter().collect();
    app.set_cookie("TOKEN", &format!("{}.{}.{sig}", parts[0], parts[1]));
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");

    // The same claims signed under another key.
    let foreign = shared::token::Tokens::new("planx", b"another-key-another-key-another-k!");
    let forged = foreign.issue(&user.id, "whatever", app.clock_now(), 7200);
    app.set_cookie("TOKEN", &forged);
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");

    // Well signed, but no such server-side session.
    let orphan = app
        .state
        .tokens
        .issue(&user.id, "no-such-session", app.clock_now(), 7200);
    app.set_cookie("TOKEN", &orphan);
    app.get("/user")
        .await
        .expect_error(401, "SESSION_ENDED", "session");

    app.set_cookie("TOKEN", &token);
    app.get("/user").await.expect(200);
}

#[tokio::test]
async fn an_idle_session_expires_and_an_active_one_slides() {
    let (app, _) = TestApp::signed_in().await;
    let idle = app.new_browser();
    idle.ping().await;
    idle.login("ada@example.com", PASSWORD).await.expect(204);

    // Used every 50 minutes, the session outlives its 1 h TTL...
    app.advance(3000);
    app.get("/user").await.expect(200);
    app.advance(3000);
    app.get("/user").await.expect(200);
    // ...while the unused one has ended.
    idle.get("/user")
        .await
        .expect_error(401, "SESSION_ENDED", "session");

    // The JWT itself expires after 2 h, however alive the session is.
    app.advance(1199);
    app.get("/user").await.expect(200);
    app.advance(1);
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
}

#[tokio::test]
async fn logout_ends_access_even_with_a_kept_token() {
    let (app, _) = TestApp::signed_in().await;
    let token = app.cookie("TOKEN").unwrap();
    app.post("/logout", json!({})).await.expect(204);
    assert_eq!(app.cookie("TOKEN"), None);
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
    app.set_cookie("TOKEN", &token);
    app.get("/user")
        .await
        .expect_error(401, "SESSION_ENDED", "session");
}

// -------------------------------------------------------------- PATCH /user

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
    b.login("ada@example.com", PASSWORD).await.expect_error(
        400,
        "INVALID_CREDENTIALS",
        "incorrect",
    );
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
    let b = app.new_browser();
    b.ping().await;
    b.login("bob@example.com", PASSWORD).await.expect(204);
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

// ---------------------------------------------------- POST /user/password

#[tokio::test]
async fn password_change_keeps_this_session_and_ends_the_others() {
    let (app, user) = TestApp::signed_in().await;
    let other = browser_as(&app, "ada@example.com", PASSWORD).await;
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
    b.login("ada@example.com", PASSWORD).await.expect_error(
        400,
        "INVALID_CREDENTIALS",
        "incorrect",
    );
    b.login("ada@example.com", NEW_PASSWORD).await.expect(204);
}

#[tokio::test]
async fn wrong_old_password_changes_nothing() {
    let (app, user) = TestApp::signed_in().await;
    let other = browser_as(&app, "ada@example.com", PASSWORD).await;
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
    b.login("ada@example.com", NEW_PASSWORD).await.expect(400);
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
    // Now even the right old password has to wait.
    let r = app
        .post(
            "/user/password",
            json!({ "old": PASSWORD, "password": NEW_PASSWORD }),
        )
        .await;
    r.expect_error(429, "RATE_LIMITED", "retry");
    assert_eq!(r.headers["retry-after"], "1");
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
    let b = app.new_browser();
    b.ping().await;
    b.login("ada@example.com", "éàüöñçßø").await.expect(204);
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

// ------------------------------------ GET /user/phone_code, POST /user/phone

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
    assert_eq!(phone.get("/user").await.body["history"]["method"], "sms");
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
    let bob = browser_as(&app, "bob@example.com", PASSWORD).await;
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
        bind(&app, PHONE, wrong(&code))
            .await
            .expect_error(400, "INVALID_CODE", "code");
    }
    bind(&app, PHONE, &code)
        .await
        .expect_error(400, "INVALID_CODE", "code");
    assert_eq!(app.get("/user").await.body["phone"], "");
}

#[tokio::test]
async fn four_wrong_codes_leave_it_usable() {
    let (app, _) = TestApp::signed_in().await;
    let code = request_code(&app, PHONE).await;
    for _ in 0..4 {
        bind(&app, PHONE, wrong(&code))
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
    r.expect_error(429, "RATE_LIMITED", "retry");
    assert_eq!(r.headers["retry-after"], "60");
    app.advance(45);
    let r = app.get(&phone_code_path(PHONE)).await;
    r.expect_error(429, "RATE_LIMITED", "retry");
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
    r.expect_error(429, "RATE_LIMITED", "retry");
    assert_eq!(r.headers["retry-after"], "3300");
    assert_eq!(app.sent_to(PHONE), 5);
    app.advance(3300);
    app.get(&phone_code_path(PHONE)).await.expect(204);
    assert_eq!(app.sent_to(PHONE), 6);
}

#[tokio::test]
async fn a_phone_of_another_account_is_taken() {
    let (app, _) = TestApp::signed_in().await;
    app.add_user_full("bob@example.com", PASSWORD, Some(PHONE))
        .await;
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
    let bob = browser_as(&app, "bob@example.com", PASSWORD).await;
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
    let bob = browser_as(&app, "bob@example.com", PASSWORD).await;
    app.advance(60);
    let code = request_code(&bob, PHONE).await;
    bind(&bob, PHONE, &code).await.expect(204);
    assert_eq!(bob.get("/user").await.body["phone"], MASKED);
}

#[tokio::test]
async fn invalid_phone_and_code_are_named() {
    let (app, _) = TestApp::signed_in().await;
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
    assert!(app.notifier.outbox().is_empty());

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

// --------------------------------------------------------- DELETE /user/{key}

#[tokio::test]
async fn unbinding_the_phone_frees_it() {
    let app = TestApp::spawn().await;
    let ada = app
        .add_user_full("ada@example.com", PASSWORD, Some(PHONE))
        .await;
    let ada_b = browser_as(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(ada_b.get("/user").await.body["phone"], MASKED);

    ada_b.delete("/user/phone").await.expect(204);
    assert_eq!(ada_b.get("/user").await.body["phone"], "");
    assert_eq!(app.user(&ada.id).await.phone, None);

    app.add_user("bob@example.com").await;
    let bob = browser_as(&app, "bob@example.com", PASSWORD).await;
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
    let totp = Totp {
        secret: Secret::new(TOTP_SECRET.to_string()),
        last_step: 0,
    };
    let lark = json!({ "open_id": "ou_123", "name": "Ada" });
    for change in [
        UserChange::Totp(Some(totp)),
        UserChange::Lark(Some(lark.clone())),
    ] {
        app.state
            .store
            .update_user(&user.id, change, app.clock_now())
            .await
            .unwrap();
    }
    let r = app.get("/user").await;
    assert_eq!(
        (r.body["totp"].clone(), r.body["lark"].clone()),
        (json!("******"), lark)
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
    let user = app
        .add_user_full("ada@example.com", PASSWORD, Some(PHONE))
        .await;
    let totp = Totp {
        secret: Secret::new(TOTP_SECRET.to_string()),
        last_step: 0,
    };
    for change in [
        UserChange::Totp(Some(totp)),
        UserChange::Lark(Some(json!({ "open_id": "ou_1" }))),
    ] {
        app.state
            .store
            .update_user(&user.id, change, app.clock_now())
            .await
            .unwrap();
    }
    let b = browser_as(&app, "ada@example.com", PASSWORD).await;
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
    let user = app
        .add_user_full("ada@example.com", PASSWORD, Some(PHONE))
        .await;
    let b = browser_as(&app, "ada@example.com", PASSWORD).await;
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
    let user = app
        .add_user_full("ada@example.com", PASSWORD, Some(PHONE))
        .await;
    app.ping().await;
    for key in ["phone", "totp", "lark"] {
        app.delete(&format!("/user/{key}"))
            .await
            .expect_error(401, "UNAUTHENTICATED", "signed in");
    }
    assert_eq!(app.user(&user.id).await.phone.as_deref(), Some(PHONE));
}
