//! `GET /forget_code` and `POST /forget_reset`: a mailed code exchanged for a new
//! password, which ends every session; no enumeration; code lifetime and limits.

use serde_json::json;
use shared::notify::Message;
use shared::store::UserChange;

use crate::support::{PASSWORD, TestApp, TestResponse, other_than};

const NEW_PASSWORD: &str = "a completely new passphrase";

async fn ask(app: &TestApp, email_q: &str) -> TestResponse {
    app.get(&format!("/forget_code?email={email_q}")).await
}

async fn reset(app: &TestApp, email: &str, code: &str, password: &str) -> TestResponse {
    app.post(
        "/forget_reset",
        json!({ "email": email, "code": code, "password": password }),
    )
    .await
}

/// A server with Ada's account (stored as `Ada@Example.com`) and a browser with XSRF cookies.
async fn with_account() -> (TestApp, shared::model::User) {
    let app = TestApp::spawn().await;
    let user = app.add_user("Ada@Example.com").await;
    app.ping().await.expect(200);
    (app, user)
}

#[tokio::test]
async fn reset_sets_the_password_and_ends_every_session() {
    let (app, user) = with_account().await;
    // Two devices signed in before the reset.
    let laptop = app.signed_in_as("ada@example.com").await;
    let phone = app.signed_in_as("ada@example.com").await;
    for b in [&laptop, &phone] {
        b.get("/verify").await.expect(204);
    }

    // (Each sign-in from a new browser sent its notice.)
    let notices = app.sent_to("Ada@Example.com");
    let r = ask(&app, "ada@example.com").await;
    r.expect(204);
    assert!(r.text.is_empty(), "{}", r.text);
    // Sent to the address as stored, not as typed.
    assert_eq!(app.sent_to("Ada@Example.com"), notices + 1);
    assert_eq!(app.sent_to("ada@example.com"), 0);
    let code = app.last_code("Ada@Example.com");

    reset(&app, "ada@example.com", &code, NEW_PASSWORD)
        .await
        .expect(204);
    for b in [&laptop, &phone] {
        b.get("/verify").await.expect(401);
        b.get("/user").await.expect(401);
    }
    app.login("ada@example.com", PASSWORD)
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    app.login("ada@example.com", NEW_PASSWORD).await.expect(204);
    app.get("/verify").await.expect(204);
    let stored = app.user(&user.id).await;
    assert_ne!(stored.password.expose(), user.password.expose());
    assert!(!stored.password.expose().contains(NEW_PASSWORD));
}

#[tokio::test]
async fn unknown_email_gets_204_and_nothing_is_sent() {
    let (app, _) = with_account().await;
    let r = ask(&app, "nobody@example.com").await;
    r.expect(204);
    assert!(r.text.is_empty(), "{}", r.text);
    assert_eq!(app.sent_to("nobody@example.com"), 0);
    assert!(app.notifier.outbox().is_empty());
    // A guess for it fails like a wrong code for a real account.
    let ghost = reset(&app, "nobody@example.com", "123456", NEW_PASSWORD).await;
    ghost.expect_error(400, "INVALID_CODE", "code");
    ask(&app, "ada@example.com").await.expect(204);
    let code = app.last_code("Ada@Example.com");
    let wrong = reset(&app, "ada@example.com", &other_than(&code), NEW_PASSWORD).await;
    wrong.expect_error(400, "INVALID_CODE", "code");
    assert_eq!(ghost.text, wrong.text);
}

#[tokio::test]
async fn disabled_account_is_sent_nothing() {
    let (app, user) = with_account().await;
    app.change_user(&user.id, UserChange::Active(false)).await;
    ask(&app, "ada@example.com").await.expect(204);
    assert!(app.notifier.outbox().is_empty());
}

#[tokio::test]
async fn email_is_case_insensitive() {
    let (app, user) = with_account().await;
    ask(&app, "ADA@EXAMPLE.COM").await.expect(204);
    assert_eq!(app.sent_to("Ada@Example.com"), 1);
    // The cooldown is per address, whatever its case.
    ask(&app, "ada@example.com")
        .await
        .expect_error(400, "RATE_LIMITED", "try again in");
    let code = app.last_code("Ada@Example.com");
    reset(&app, "aDa@eXample.cOm", &code, NEW_PASSWORD)
        .await
        .expect(204);
    app.login("Ada@Example.com", NEW_PASSWORD).await.expect(204);
    assert_eq!(app.user(&user.id).await.email, "Ada@Example.com");
}

#[tokio::test]
async fn wrong_code_is_refused_and_the_right_one_still_works() {
    let (app, _) = with_account().await;
    ask(&app, "ada@example.com").await.expect(204);
    let code = app.last_code("Ada@Example.com");
    for _ in 0..4 {
        reset(&app, "ada@example.com", &other_than(&code), NEW_PASSWORD)
            .await
            .expect_error(400, "INVALID_CODE", "code");
    }
    app.login("ada@example.com", NEW_PASSWORD)
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    // Those were five failures on the account from this address: 1 s to wait.
    app.advance(1);
    reset(&app, "ada@example.com", &code, NEW_PASSWORD)
        .await
        .expect(204);
    app.login("ada@example.com", NEW_PASSWORD).await.expect(204);
}

#[tokio::test]
async fn five_wrong_tries_spend_the_code() {
    let (app, _) = with_account().await;
    ask(&app, "ada@example.com").await.expect(204);
    let code = app.last_code("Ada@Example.com");
    for _ in 0..5 {
        reset(&app, "ada@example.com", &other_than(&code), NEW_PASSWORD)
            .await
            .expect_error(400, "INVALID_CODE", "code");
    }
    // The failures back this address off (1 s, then 2 s); the right code,
    // tried after that, is spent and not even compared.
    reset(&app, "ada@example.com", &code, NEW_PASSWORD)
        .await
        .expect_error(
            400,
            "RATE_LIMITED",
            "too many failed attempts; try again in 1 second",
        );
    app.advance(1);
    let compared = app.comparisons();
    reset(&app, "ada@example.com", &code, NEW_PASSWORD)
        .await
        .expect_error(400, "INVALID_CODE", "code");
    assert_eq!(app.comparisons(), compared);
    app.advance(2);
    app.login("ada@example.com", PASSWORD).await.expect(204);
}

#[tokio::test]
async fn code_expires_after_ten_minutes() {
    let (app, _) = with_account().await;
    ask(&app, "ada@example.com").await.expect(204);
    let code = app.last_code("Ada@Example.com");
    app.advance(599);
    reset(&app, "ada@example.com", &code, NEW_PASSWORD)
        .await
        .expect(204);

    ask(&app, "ada@example.com").await.expect(204);
    let code = app.last_code("Ada@Example.com");
    app.advance(600);
    reset(&app, "ada@example.com", &code, "yet another passphrase")
        .await
        .expect_error(400, "INVALID_CODE", "code");
    app.login("ada@example.com", NEW_PASSWORD).await.expect(204);
}

#[tokio::test]
async fn used_code_cannot_be_reused() {
    let (app, _) = with_account().await;
    ask(&app, "ada@example.com").await.expect(204);
    let code = app.last_code("Ada@Example.com");
    reset(&app, "ada@example.com", &code, NEW_PASSWORD)
        .await
        .expect(204);
    reset(&app, "ada@example.com", &code, "the attacker's passphrase")
        .await
        .expect_error(400, "INVALID_CODE", "code");
    app.login("ada@example.com", "the attacker's passphrase")
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    app.login("ada@example.com", NEW_PASSWORD).await.expect(204);
}

#[tokio::test]
async fn weak_password_is_refused_without_spending_the_code() {
    let (app, _) = with_account().await;
    ask(&app, "ada@example.com").await.expect(204);
    let code = app.last_code("Ada@Example.com");
    let long = "x".repeat(129);
    // More refusals than the code has attempts: none of them counts.
    for weak in [
        "short",
        "1234567",
        "password",
        "PASSWORD",
        "12345678",
        "qwertyuiop",
        long.as_str(),
    ] {
        reset(&app, "ada@example.com", &code, weak)
            .await
            .expect_error(400, "WEAK_PASSWORD", "password");
    }
    app.login("ada@example.com", PASSWORD).await.expect(204);
    reset(&app, "ada@example.com", &code, NEW_PASSWORD)
        .await
        .expect(204);
    app.login("ada@example.com", NEW_PASSWORD).await.expect(204);
}

#[tokio::test]
async fn resend_waits_sixty_seconds() {
    let (app, _) = with_account().await;
    ask(&app, "ada@example.com").await.expect(204);
    let first = app.last_code("Ada@Example.com");
    let r = ask(&app, "ada@example.com").await;
    r.expect_error(400, "RATE_LIMITED", "try again in");
    assert_eq!(r.headers["retry-after"], "60");
    app.advance(59);
    let r = ask(&app, "ada@example.com").await;
    r.expect_error(400, "RATE_LIMITED", "try again in");
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(
        r.message(),
        "too many codes requested; try again in 1 second"
    );
    assert_eq!(app.sent_to("Ada@Example.com"), 1);

    app.advance(1);
    ask(&app, "ada@example.com").await.expect(204);
    assert_eq!(app.sent_to("Ada@Example.com"), 2);
    let second = app.last_code("Ada@Example.com");
    if second != first {
        reset(&app, "ada@example.com", &first, NEW_PASSWORD)
            .await
            .expect_error(400, "INVALID_CODE", "code");
    }
    reset(&app, "ada@example.com", &second, NEW_PASSWORD)
        .await
        .expect(204);
}

#[tokio::test]
async fn at_most_five_mails_an_hour_known_or_not() {
    let (app, _) = with_account().await;
    let mut seen = vec![];
    for email in ["ada@example.com", "nobody@example.com"] {
        let mut answers = vec![];
        for _ in 0..5 {
            answers.push(ask(&app, email).await.expect(204).status.as_u16());
            app.advance(60);
        }
        let r = ask(&app, email).await;
        r.expect_error(400, "RATE_LIMITED", "try again in");
        answers.push(400);
        let retry = r.headers["retry-after"].to_str().unwrap().to_string();
        assert_eq!(retry, "3300");
        assert_eq!(
            r.message(),
            "too many codes requested; try again in 55 minutes"
        );
        seen.push((answers, retry));
        app.advance(3300);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(app.sent_to("Ada@Example.com"), 5);
    assert_eq!(app.notifier.outbox().len(), 5);
}

#[tokio::test]
async fn invalid_email_is_named() {
    let (app, _) = with_account().await;
    for q in [
        "/forget_code?email=not-an-email",
        "/forget_code?email=a%40b",
        "/forget_code?email=",
        "/forget_code",
    ] {
        app.get(q).await.expect_error(400, "INVALID_FIELD", "email");
    }
    for email in [json!("not-an-email"), json!(""), json!(42)] {
        app.post(
            "/forget_reset",
            json!({ "email": email, "code": "123456", "password": NEW_PASSWORD }),
        )
        .await
        .expect_error(400, "INVALID_FIELD", "email");
    }
    assert!(app.notifier.outbox().is_empty());
}

#[tokio::test]
async fn missing_or_malformed_fields_are_named() {
    let (app, _) = with_account().await;
    ask(&app, "ada@example.com").await.expect(204);
    let code = app.last_code("Ada@Example.com");
    for (body, field) in [
        (json!({}), "email"),
        (json!({ "code": code, "password": NEW_PASSWORD }), "email"),
        (
            json!({ "email": "ada@example.com", "password": NEW_PASSWORD }),
            "code",
        ),
        (
            json!({ "email": "ada@example.com", "code": code }),
            "password",
        ),
        (
            json!({ "email": "ada@example.com", "code": "12345", "password": NEW_PASSWORD }),
            "code",
        ),
        (
            json!({ "email": "ada@example.com", "code": "abcdef", "password": NEW_PASSWORD }),
            "code",
        ),
        (
            json!({ "email": "ada@example.com", "code": code, "password": null }),
            "password",
        ),
    ] {
        app.post("/forget_reset", body)
            .await
            .expect_error(400, "INVALID_FIELD", field);
    }
    // None of that spent the code.
    reset(&app, "ada@example.com", &code, NEW_PASSWORD)
        .await
        .expect(204);
}

#[tokio::test]
async fn mail_carries_the_code_and_its_lifetime() {
    let (app, _) = with_account().await;
    ask(&app, "ada@example.com").await.expect(204);
    let outbox = app.notifier.outbox();
    assert_eq!(outbox.len(), 1);
    let Message::Mail {
        to,
        subject,
        text,
        html,
    } = &outbox[0]
    else {
        panic!("a mail, not an SMS: {:?}", outbox[0]);
    };
    assert_eq!(to, "Ada@Example.com");
    assert!(subject.contains("planx"), "{subject}");
    assert!(subject.to_lowercase().contains("password"), "{subject}");
    let code = app.last_code("Ada@Example.com");
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    for body in [text, html] {
        assert!(body.contains(&code), "{body}");
        assert!(body.contains("10 minutes"), "{body}");
    }
    assert!(
        !subject.contains(&code),
        "the code stays out of the subject"
    );
}
