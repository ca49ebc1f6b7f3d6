//! `GET/POST/DELETE /user/totp` and `POST /login/totp`: binding an authenticator
//! with two consecutive codes, signing in with ±1 step and no replay, back-off.

use serde_json::json;
use shared::model::LoginMethod;
use shared::totp::{code_at_step, secret_from_url, step_of};

use crate::support::{PASSWORD, START, TestApp, TestResponse};

/// The step the manual clock starts in.
fn step0() -> u64 {
    step_of(START)
}

fn code(secret: &str, step: u64) -> String {
    code_at_step(secret, step).expect("a valid secret")
}

/// A six-digit code that is none of `taken`.
fn none_of(taken: &[&str]) -> String {
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !taken.contains(&c.as_str()))
        .unwrap()
}

async fn pending_uri(app: &TestApp) -> String {
    let r = app.get("/user/totp").await;
    r.expect(200);
    r.body["totp"]
        .as_str()
        .expect("totp is a string")
        .to_string()
}

async fn bind(app: &TestApp, uri: &str, tss: [&str; 2]) -> TestResponse {
    app.post("/user/totp", json!({ "totp": uri, "tss": tss }))
        .await
}

async fn totp_login(app: &TestApp, email: &str, code: &str) -> TestResponse {
    app.post("/login/totp", json!({ "email": email, "code": code }))
        .await
}

/// Binds an authenticator to the signed-in account at `START` (last step used:
/// `step0()`) and returns its secret.
async fn bind_authenticator(app: &TestApp) -> String {
    let uri = pending_uri(app).await;
    let secret = secret_from_url(&uri).expect("an otpauth URI");
    let s = step0();
    bind(app, &uri, [&code(&secret, s - 1), &code(&secret, s)])
        .await
        .expect(204);
    secret
}

/// A signed-in account with an authenticator bound, and its secret.
async fn bound() -> (TestApp, shared::model::User, String) {
    let (app, user) = TestApp::signed_in().await;
    let secret = bind_authenticator(&app).await;
    (app, user, secret)
}

#[tokio::test]
async fn totp_url_names_the_namespace_and_the_account() {
    let (app, _) = TestApp::signed_in().await;
    let uri = pending_uri(&app).await;
    assert!(
        uri.starts_with("otpauth://totp/planx:ada%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains("issuer=planx"), "{uri}");
    let secret = secret_from_url(&uri).expect("a well-formed otpauth URI");
    // At least 128 bits of secret (base32: 5 bits a character).
    assert!(secret.len() >= 26, "{secret}");
    // It carries a secret: no cache may keep it.
    let r = app.get("/user/totp").await;
    assert_eq!(r.headers["cache-control"], "no-store");
    let again = pending_uri(&app).await;
    assert_ne!(secret_from_url(&again).unwrap(), secret, "fresh every time");

    let other = TestApp::spawn_with(&[("NAMESPACE", "acme")]).await;
    other.add_user("grace@example.org").await;
    other.sign_in("grace@example.org", PASSWORD).await;
    let uri = pending_uri(&other).await;
    assert!(
        uri.starts_with("otpauth://totp/acme:grace%40example.org?"),
        "{uri}"
    );
    assert!(uri.contains("issuer=acme"), "{uri}");
}

#[tokio::test]
async fn totp_routes_need_a_session() {
    let app = TestApp::spawn().await;
    app.ping().await;
    app.get("/user/totp").await.expect(401);
    app.post("/user/totp", json!({ "totp": "x", "tss": ["1", "2"] }))
        .await
        .expect(401);
    app.delete("/user/totp").await.expect(401);
}

#[tokio::test]
async fn two_consecutive_codes_bind_the_secret() {
    let (app, user) = TestApp::signed_in().await;
    assert_eq!(app.get("/user").await.body["totp"], "");
    let uri = pending_uri(&app).await;
    let secret = secret_from_url(&uri).unwrap();
    let s = step0();
    bind(&app, &uri, [&code(&secret, s - 1), &code(&secret, s)])
        .await
        .expect(204);

    let profile = app.get("/user").await;
    profile.expect(200);
    assert_eq!(profile.body["totp"], "******");
    assert!(!profile.text.contains(&secret), "the secret never shows");
    let stored = app.user(&user.id).await.totp.expect("bound");
    assert_eq!(stored.secret.expose(), &secret);
    assert_eq!(stored.last_step, s);

    // The pending secret is used up: binding it again fails.
    bind(&app, &uri, [&code(&secret, s - 1), &code(&secret, s)])
        .await
        .expect_error(400, "INVALID_FIELD", "totp");
}

#[tokio::test]
async fn wrong_or_non_consecutive_codes_are_refused() {
    let (app, user) = TestApp::signed_in().await;
    let uri = pending_uri(&app).await;
    let secret = secret_from_url(&uri).unwrap();
    let s = step0();
    let (c3, c2, c1, c0) = (
        code(&secret, s - 3),
        code(&secret, s - 2),
        code(&secret, s - 1),
        code(&secret, s),
    );
    let wrong = none_of(&[&c2, &c1, &c0, &code(&secret, s + 1)]);
    for tss in [
        // Consecutive, but too old.
        [c3.as_str(), c2.as_str()],
        [c2.as_str(), c0.as_str()],
        [c0.as_str(), c1.as_str()],
        [c0.as_str(), c0.as_str()],
        [wrong.as_str(), c0.as_str()],
        [c1.as_str(), wrong.as_str()],
    ] {
        bind(&app, &uri, tss)
            .await
            .expect_error(400, "INVALID_TOTP", "tss");
    }
    assert!(app.user(&user.id).await.totp.is_none());
    assert_eq!(app.get("/user").await.body["totp"], "");
    // Mistyped codes do not cost the pending secret.
    bind(&app, &uri, [&c1, &c0]).await.expect(204);
}

#[tokio::test]
async fn a_secret_that_is_not_pending_is_refused() {
    let (app, user) = TestApp::signed_in().await;
    let s = step0();
    // Never asked for: a secret of the client's own making.
    let forged = shared::totp::new_secret();
    let forged_uri = shared::totp::url(&forged, "planx", "ada@example.com").unwrap();
    bind(
        &app,
        &forged_uri,
        [&code(&forged, s - 1), &code(&forged, s)],
    )
    .await
    .expect_error(400, "INVALID_FIELD", "totp");

    // Superseded by a newer request.
    let first = pending_uri(&app).await;
    let latest = pending_uri(&app).await;
    let old = secret_from_url(&first).unwrap();
    bind(&app, &first, [&code(&old, s - 1), &code(&old, s)])
        .await
        .expect_error(400, "INVALID_FIELD", "totp");
    assert!(app.user(&user.id).await.totp.is_none());

    let secret = secret_from_url(&latest).unwrap();
    bind(&app, &latest, [&code(&secret, s - 1), &code(&secret, s)])
        .await
        .expect(204);
}

#[tokio::test]
async fn pending_secret_expires_after_five_minutes() {
    let (app, user) = TestApp::signed_in().await;
    let uri = pending_uri(&app).await;
    let secret = secret_from_url(&uri).unwrap();
    app.advance(299);
    let s = step_of(app.clock_now());
    bind(&app, &uri, [&code(&secret, s - 1), &code(&secret, s)])
        .await
        .expect(204);

    app.delete("/user/totp").await.expect(204);
    let uri = pending_uri(&app).await;
    let secret = secret_from_url(&uri).unwrap();
    app.advance(300);
    let s = step_of(app.clock_now());
    bind(&app, &uri, [&code(&secret, s - 1), &code(&secret, s)])
        .await
        .expect_error(400, "INVALID_FIELD", "totp");
    assert!(app.user(&user.id).await.totp.is_none());
}

#[tokio::test]
async fn malformed_bind_requests_are_named() {
    let (app, user) = TestApp::signed_in().await;
    let uri = pending_uri(&app).await;
    let secret = secret_from_url(&uri).unwrap();
    let s = step0();
    let (c1, c0) = (code(&secret, s - 1), code(&secret, s));

    for tss in [json!([c0]), json!([c1, c0, c0]), json!([])] {
        app.post("/user/totp", json!({ "totp": uri, "tss": tss }))
            .await
            .expect_error(400, "INVALID_FIELD", "tss");
    }
    for (tss, field) in [
        (json!(["12345", c0]), "tss[0]"),
        (json!([c1, "abcdef"]), "tss[1]"),
        (json!([c1, "1234567"]), "tss[1]"),
        (json!([123456, c0]), "tss[0]"),
    ] {
        app.post("/user/totp", json!({ "totp": uri, "tss": tss }))
            .await
            .expect_error(400, "INVALID_FIELD", field);
    }
    app.post("/user/totp", json!({ "totp": uri }))
        .await
        .expect_error(400, "INVALID_FIELD", "tss");

    for bad in [
        "https://example.com/?secret=JBSWY3DPEHPK3PXP",
        "otpauth://hotp/planx:ada%40example.com?secret=JBSWY3DPEHPK3PXP&counter=1",
        "otpauth://totp/planx:ada%40example.com?secret=!!!!",
        "not a uri",
        "",
    ] {
        bind(&app, bad, [&c1, &c0])
            .await
            .expect_error(400, "INVALID_FIELD", "totp");
    }
    app.post("/user/totp", json!({ "tss": [c1, c0] }))
        .await
        .expect_error(400, "INVALID_FIELD", "totp");

    assert!(app.user(&user.id).await.totp.is_none());
    // None of that spent the pending secret.
    bind(&app, &uri, [&c1, &c0]).await.expect(204);
}

#[tokio::test]
async fn login_accepts_one_step_either_side_and_no_further() {
    let (app, user, secret) = bound().await;
    app.advance(300);
    let s = step_of(app.clock_now());
    let near = [code(&secret, s - 1), code(&secret, s), code(&secret, s + 1)];
    let device = app.new_browser();
    device.ping().await;
    for far in [code(&secret, s + 2), code(&secret, s - 2)] {
        if !near.contains(&far) {
            totp_login(&device, "ada@example.com", &far)
                .await
                .expect_error(400, "AUTH_INCORRECT", "incorrect");
        }
    }
    device.get("/verify").await.expect(401);

    // A step behind (the phone's clock is slow), then the current and next steps.
    for c in &near {
        let b = app.new_browser();
        b.ping().await;
        let r = totp_login(&b, "ada@example.com", c).await;
        r.expect(204);
        assert!(r.set_cookie("TOKEN").is_some());
        b.get("/verify").await.expect(204);
    }
    let stored = app.user(&user.id).await;
    assert_eq!(stored.sessions, 1 + 3);
    assert_eq!(stored.history.unwrap().metadata.source, LoginMethod::Totp);
    assert_eq!(stored.totp.unwrap().last_step, s + 1);
    assert_eq!(
        app.get("/user").await.body["history"]["metadata"]["source"],
        "totp"
    );
}

#[tokio::test]
async fn a_code_is_never_accepted_twice() {
    let (app, user, secret) = bound().await;
    app.advance(300);
    let s = step_of(app.clock_now());
    let current = code(&secret, s);
    totp_login(&app, "ada@example.com", &current)
        .await
        .expect(204);

    let thief = app.new_browser();
    thief.ping().await;
    let replay = totp_login(&thief, "ada@example.com", &current).await;
    replay.expect_error(400, "AUTH_INCORRECT", "incorrect");
    assert!(replay.set_cookie("TOKEN").is_none());
    // An earlier step, though inside the window, is older than the last one used.
    let earlier = code(&secret, s - 1);
    if earlier != current {
        totp_login(&thief, "ada@example.com", &earlier)
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    thief.get("/verify").await.expect(401);
    assert_eq!(app.user(&user.id).await.totp.unwrap().last_step, s);

    // The next step works.
    app.advance(30);
    totp_login(&thief, "ada@example.com", &code(&secret, s + 1))
        .await
        .expect(204);
}

#[tokio::test]
async fn steps_used_to_bind_cannot_sign_in() {
    let (app, user, secret) = bound().await;
    let s = step0();
    let b = app.new_browser();
    b.ping().await;
    for step in [s, s - 1] {
        totp_login(&b, "ada@example.com", &code(&secret, step))
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    b.get("/verify").await.expect(401);
    totp_login(&b, "ada@example.com", &code(&secret, s + 1))
        .await
        .expect(204);
    assert_eq!(app.user(&user.id).await.totp.unwrap().last_step, s + 1);
}

#[tokio::test]
async fn wrong_code_unknown_email_and_no_totp_answer_alike() {
    let (app, _, secret) = bound().await;
    app.add_user("bob@example.com").await;
    let s = step0();
    let wrong_code = none_of(&[
        &code(&secret, s - 1),
        &code(&secret, s),
        &code(&secret, s + 1),
    ]);
    let b = app.new_browser();
    b.ping().await;
    let wrong = totp_login(&b, "ada@example.com", &wrong_code).await;
    wrong.expect_error(400, "AUTH_INCORRECT", "incorrect");
    let right_code = code(&secret, s + 1);
    let unknown = totp_login(&b, "nobody@example.com", &right_code).await;
    unknown.expect_error(400, "AUTH_INCORRECT", "incorrect");
    let no_totp = totp_login(&b, "bob@example.com", &right_code).await;
    no_totp.expect_error(400, "AUTH_INCORRECT", "incorrect");
    assert_eq!(wrong.text, unknown.text);
    assert_eq!(wrong.text, no_totp.text);
    b.get("/verify").await.expect(401);
    // Ada's next code was not used up by the others' attempts.
    totp_login(&b, "ADA@example.com", &right_code)
        .await
        .expect(204);
}

#[tokio::test]
async fn malformed_login_fields_are_named() {
    let (app, user, secret) = bound().await;
    for (body, field) in [
        (
            json!({ "email": "not-an-email", "code": "123456" }),
            "email",
        ),
        (json!({ "code": "123456" }), "email"),
        (
            json!({ "email": "ada@example.com", "code": "12345" }),
            "code",
        ),
        (
            json!({ "email": "ada@example.com", "code": "abcdef" }),
            "code",
        ),
        (
            json!({ "email": "ada@example.com", "code": 123456 }),
            "code",
        ),
        (json!({ "email": "ada@example.com" }), "code"),
    ] {
        app.post("/login/totp", body)
            .await
            .expect_error(400, "INVALID_FIELD", field);
    }
    // None of them took a guessing slot: the five a device may try at once are all there.
    let s = step0();
    let wrong = &none_of(&[
        &code(&secret, s - 1),
        &code(&secret, s),
        &code(&secret, s + 1),
    ]);
    for _ in 0..5 {
        totp_login(&app, "ada@example.com", wrong).await.expect(400);
    }
    totp_login(&app, "ada@example.com", wrong)
        .await
        .expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
    assert_eq!(app.user(&user.id).await.sessions, 1);
}

#[tokio::test]
async fn failures_back_the_account_off() {
    let (app, user, secret) = bound().await;
    let s = step0();
    let right = code(&secret, step0() + 1);
    let wrong = none_of(&[&code(&secret, s - 1), &code(&secret, s), &right]);
    // A browser that signed in before: its own back-off counts its tries.
    let b = app.signed_in_as("ada@example.com").await;
    b.post("/logout", json!({})).await.expect(204);
    for _ in 0..5 {
        totp_login(&b, "ada@example.com", &wrong)
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    // 1 s to wait: even the right code waits, and so do the other methods.
    let r = totp_login(&b, "ada@example.com", &right).await;
    r.expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
    assert_eq!(r.headers["retry-after"], "1");
    b.login("ada@example.com", PASSWORD).await.expect_error(
        400,
        "AUTH_MANY_INCORRECT",
        "try again in",
    );
    b.get("/verify").await.expect(401);

    app.advance(1);
    totp_login(&b, "ada@example.com", &right).await.expect(204);
    assert_eq!(app.user(&user.id).await.sessions, 3);
}

#[tokio::test]
async fn a_browser_without_the_device_cookie_has_five_guesses_a_day() {
    let (app, user, secret) = bound().await;
    let codes: Vec<String> = (step0() - 1..=step0() + 101)
        .map(|s| code(&secret, s))
        .collect();
    let wrong = none_of(&codes.iter().map(String::as_str).collect::<Vec<_>>());
    // Five strangers, each at its own address and well apart in time.
    for i in 0..5 {
        let b = app.browser_at(&format!("198.51.100.{i}"));
        b.ping().await;
        totp_login(&b, "ada@example.com", &wrong).await.expect(400);
        app.advance(600);
    }
    let right = code(&secret, step0() + 100);
    // No client without Ada's device cookie gets another guess today, the right code included.
    let b = app.browser_at("198.51.100.200");
    b.ping().await;
    let r = totp_login(&b, "ada@example.com", &right).await;
    r.expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
    assert_eq!(
        r.headers["retry-after"],
        (86_400 - 5 * 600).to_string().as_str()
    );
    // Ada's own browser signs in with that code at once.
    totp_login(&app, "ada@example.com", &right)
        .await
        .expect(204);
    assert_eq!(app.user(&user.id).await.sessions, 2);
}

#[tokio::test]
async fn unbinding_stops_totp_login() {
    let (app, user, secret) = bound().await;
    app.delete("/user/totp").await.expect(204);
    assert!(app.user(&user.id).await.totp.is_none());
    assert_eq!(app.get("/user").await.body["totp"], "");

    let b = app.new_browser();
    b.ping().await;
    totp_login(&b, "ada@example.com", &code(&secret, step0() + 1))
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    b.get("/verify").await.expect(401);
    // Unbinding twice is harmless; the password still signs in.
    app.delete("/user/totp").await.expect(204);
    b.login("ada@example.com", PASSWORD).await.expect(204);
}

#[tokio::test]
async fn failures_per_ip_are_capped() {
    let app = TestApp::spawn_with(&[("IP_LOGIN_FAILURES_PER_HOUR", "3")]).await;
    app.add_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let secret = bind_authenticator(&app).await;
    for i in 0..3 {
        totp_login(&app, &format!("spray{i}@example.com"), "123456")
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    // The IP is over its cap: a browser without Ada's device cookie waits
    // even with her right code, which is not used up.
    let right = code(&secret, step0() + 1);
    let b = app.new_browser();
    b.ping().await;
    totp_login(&b, "ada@example.com", &right)
        .await
        .expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
    b.set_ip("198.51.100.1");
    totp_login(&b, "ada@example.com", &right).await.expect(204);
}
