//! `POST /login`: password sign-in, its cookies, and the guessing limits every
//! way of signing in shares: back-off per (account, address) over decaying
//! failures, device cookies, the account-wide cap, the per-address cap.

use serde_json::json;
use shared::store::UserChange;

use crate::support::{PASSWORD, TestApp, TestResponse, USER_AGENT};

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
    let device = r.set_cookie("DEVICE").expect("a device cookie is set");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Max-Age=31536000"] {
        assert!(device.contains(attr), "{device} lacks {attr}");
    }
    assert!(!device.contains("Domain"), "host-only: {device}");
    assert!(device.contains(&user.id), "it names the account: {device}");

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

/// `n` wrong passwords for `email` from `browser`, each answered `AUTH_INCORRECT`.
async fn fail(browser: &TestApp, email: &str, n: usize) {
    for _ in 0..n {
        browser.login(email, "wrong password").await.expect_error(
            400,
            "AUTH_INCORRECT",
            "incorrect",
        );
    }
}

/// Asserts a refusal by a guessing limit, and returns its `Retry-After`.
#[track_caller]
fn refused(r: &TestResponse) -> i64 {
    r.expect_error(400, "AUTH_MANY_INCORRECT", "try again in");
    r.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

/// Ada's account and a browser that signed in to it before (holding its
/// device cookie, so only its own back-off counts its attempts).
async fn with_device() -> (TestApp, TestApp) {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    let laptop = app.signed_in_as("ada@example.com").await;
    laptop.post("/logout", json!({})).await.expect(204);
    (app, laptop)
}

#[tokio::test]
async fn backoff_after_five_failures_doubles_and_success_resets_it() {
    let (_app, laptop) = with_device().await;
    fail(&laptop, "ada@example.com", 5).await;
    // Five failures: 1 s before the next attempt, even with the right password,
    // which is then not checked at all.
    let r = laptop.login("ada@example.com", PASSWORD).await;
    assert_eq!(refused(&r), 1);
    assert!(
        r.message().contains("try again in 1 second"),
        "{}",
        r.message()
    );
    laptop.advance(1);
    fail(&laptop, "ada@example.com", 1).await;
    assert_eq!(refused(&laptop.login("ada@example.com", PASSWORD).await), 2);
    laptop.advance(2);
    laptop.login("ada@example.com", PASSWORD).await.expect(204);
    // The success started the count over: five more before a wait.
    fail(&laptop, "ada@example.com", 5).await;
    assert_eq!(refused(&laptop.login("ada@example.com", PASSWORD).await), 1);
}

#[tokio::test]
async fn backoff_is_capped_at_fifteen_minutes() {
    let (_app, laptop) = with_device().await;
    for _ in 0..20 {
        laptop.login("ada@example.com", "wrong password").await;
        laptop.advance(900);
    }
    fail(&laptop, "ada@example.com", 1).await;
    assert_eq!(
        refused(&laptop.login("ada@example.com", PASSWORD).await),
        900
    );
    assert_eq!(
        laptop.login("ada@example.com", PASSWORD).await.message(),
        "too many failed sign-ins; try again in 15 minutes"
    );
}

#[tokio::test]
async fn failures_decay_after_their_window() {
    let (_app, laptop) = with_device().await;
    fail(&laptop, "ada@example.com", 5).await;
    laptop.advance(3600);
    // Within the hour the count goes on: the sixth waits 2 s.
    fail(&laptop, "ada@example.com", 1).await;
    assert_eq!(refused(&laptop.login("ada@example.com", PASSWORD).await), 2);
    // An hour without a failure forgets them: four go through unhindered,
    // and only the fifth starts a wait again.
    laptop.advance(3601);
    fail(&laptop, "ada@example.com", 4).await;
    laptop
        .login("ada@example.com", "wrong password")
        .await
        .expect(400);
    assert_eq!(refused(&laptop.login("ada@example.com", PASSWORD).await), 1);
}

#[tokio::test]
async fn unknown_email_is_limited_exactly_like_an_account() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    let mut answers = vec![];
    for email in ["ada@example.com", "ghost@example.com"] {
        let b = app.new_browser();
        b.ping().await;
        fail(&b, email, 5).await;
        let r = b.login(email, "wrong password").await;
        answers.push((refused(&r), r.text.clone()));
    }
    assert_eq!(answers[0], answers[1]);
    // The account-wide cap for clients without a device cookie answers: a day.
    assert_eq!(answers[0].0, 86_400);
}

#[tokio::test]
async fn a_stranger_failing_at_one_address_does_not_stop_the_owner_at_another() {
    // The property here is the back-off's: per (account, address). The cap on
    // clients without a device cookie would stop the owner's fresh browser
    // too (the next tests), so it is out of the way here.
    let app = TestApp::spawn_with(&[("ACCOUNT_FAILURES_PER_DAY", "1000")]).await;
    app.add_user("ada@example.com").await;
    let stranger = app.browser_at("198.51.100.66");
    stranger.ping().await;
    let mut checked = 0;
    for _ in 0..40 {
        let r = stranger.login("ada@example.com", "wrong password").await;
        if r.code() == "AUTH_INCORRECT" {
            checked += 1;
        } else {
            refused(&r);
        }
        app.advance(1);
    }
    // 40 tries in 40 s: five at once, then 1 s, 2 s, 4 s, 8 s, 16 s apart.
    assert_eq!(checked, 5 + 5);
    let owner = app.browser_at("203.0.113.50");
    owner.sign_in("ada@example.com", PASSWORD).await;
    owner.get("/verify").await.expect(204);
    assert_eq!(
        refused(&stranger.login("ada@example.com", PASSWORD).await),
        32 - 5
    );
}

#[tokio::test]
async fn many_addresses_trip_the_account_cap_but_not_the_owners_device() {
    let (app, laptop) = with_device().await;
    // Six strangers at six addresses: five guesses are checked, the sixth is
    // refused account-wide, and so is everyone else without a device cookie.
    for i in 0..6 {
        let stranger = app.browser_at(&format!("198.51.100.{i}"));
        stranger.ping().await;
        let r = stranger.login("ada@example.com", "wrong password").await;
        if i < 5 {
            r.expect_error(400, "AUTH_INCORRECT", "incorrect");
        } else {
            assert_eq!(refused(&r), 86_400);
        }
    }
    let fresh = app.browser_at("203.0.113.99");
    fresh.ping().await;
    assert_eq!(
        refused(&fresh.login("ada@example.com", PASSWORD).await),
        86_400
    );
    // The owner's browser signs in at once, from anywhere.
    laptop.set_ip("192.0.2.44");
    laptop.login("ada@example.com", PASSWORD).await.expect(204);
    laptop.get("/verify").await.expect(204);
    // A day later the window has passed.
    app.advance(86_400);
    fresh.login("ada@example.com", PASSWORD).await.expect(204);
}

#[tokio::test]
async fn a_forged_expired_or_other_accounts_device_cookie_is_worth_nothing() {
    let app = TestApp::spawn_with(&[("DEVICE_TTL", "600")]).await;
    app.add_user("ada@example.com").await;
    app.add_user("bob@example.com").await;
    let ada = app.signed_in_as("ada@example.com").await;
    let bob = app.signed_in_as("bob@example.com").await;
    let ada_cookie = ada.cookie("DEVICE").unwrap();
    let [user, device, issued, mac] = ada_cookie.split('.').collect::<Vec<_>>()[..] else {
        panic!("a device cookie has four fields: {ada_cookie}");
    };
    let flipped = if mac.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{user}.{device}.{issued}.{flipped}{}", &mac[1..]);
    let other_device = format!("{user}.{device}x.{issued}.{mac}");
    // Trip Ada's account-wide cap from strangers.
    for i in 0..5 {
        let stranger = app.browser_at(&format!("198.51.100.{i}"));
        stranger.ping().await;
        fail(&stranger, "ada@example.com", 1).await;
    }
    let present = |cookie: &str| {
        let b = app.browser_at("192.0.2.7");
        b.set_cookie("DEVICE", cookie);
        b
    };
    for (what, cookie) in [
        ("forged MAC", tampered),
        ("forged device id", other_device),
        ("another account's", bob.cookie("DEVICE").unwrap()),
    ] {
        let b = present(&cookie);
        b.ping().await;
        let r = b.login("ada@example.com", PASSWORD).await;
        assert_eq!(refused(&r), 86_400, "{what}");
    }
    // Ada's genuine cookie works, until it expires.
    let b = present(&ada_cookie);
    b.ping().await;
    b.login("ada@example.com", PASSWORD).await.expect(204);
    let expired = present(&ada_cookie);
    expired.ping().await;
    app.advance(600);
    assert_eq!(
        refused(&expired.login("ada@example.com", PASSWORD).await),
        86_400 - 600
    );
}

#[tokio::test]
async fn a_success_refunds_its_slot_in_the_account_cap() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    // More cookie-less sign-ins than the cap has slots, each from a fresh browser.
    for i in 0..8 {
        app.browser_at(&format!("203.0.113.{i}"))
            .sign_in("ada@example.com", PASSWORD)
            .await;
    }
    // Four failures leave one slot, and that one still works.
    for i in 0..4 {
        let b = app.browser_at(&format!("198.51.100.{i}"));
        b.ping().await;
        fail(&b, "ada@example.com", 1).await;
    }
    app.browser_at("203.0.113.200")
        .sign_in("ada@example.com", PASSWORD)
        .await;
}

#[tokio::test]
async fn failures_per_ip_are_capped() {
    let app = TestApp::spawn_with(&[("IP_LOGIN_FAILURES_PER_HOUR", "3")]).await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    for i in 0..3 {
        fail(&app, &format!("spray{i}@example.com"), 1).await;
    }
    // The IP is over its cap: even a right password waits, unchecked.
    let before = app.verifications();
    assert_eq!(refused(&app.login("ada@example.com", PASSWORD).await), 3600);
    assert_eq!(app.verifications(), before);
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
