//! Security notices: a mail to the account's address for every change its
//! owner should hear of, with the right recipient and no secret in it; and a
//! notice that cannot be sent undoes nothing. (On moto, read back from SES.)

use serde_json::json;
use shared::codes::code_in;

use crate::support::{PASSWORD, TestApp, mails_to};

const ADA: &str = "ada@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// The one mail to `to` since `before` were, checked for secrets.
fn notice(app: &TestApp, to: &str, before: usize) -> (String, String) {
    let mails = mails_to(app, to);
    assert_eq!(mails.len(), before + 1, "{mails:?}");
    let (subject, text) = mails.last().unwrap().clone();
    assert_eq!(code_in(&text), None, "a code in a notice: {text}");
    for secret in [PASSWORD, NEW_PASSWORD, "JBSWY3DP", "$argon2"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    (subject, text)
}

#[tokio::test]
async fn a_sign_in_from_a_new_device_is_noticed_once() {
    let app = TestApp::spawn().await;
    app.add_user(ADA).await;
    app.sign_in(ADA, PASSWORD).await;
    let (subject, text) = notice(&app, ADA, 0);
    assert!(subject.contains("New sign-in"), "{subject}");
    assert!(
        text.contains("203.0.113.7") && text.contains("password"),
        "{text}"
    );
    // The same browser again (its device cookie): nothing new.
    app.post("/logout", json!({})).await;
    app.login(ADA, PASSWORD).await.expect(204);
    assert_eq!(mails_to(&app, ADA).len(), 1);
    // Another browser: a notice.
    app.signed_in_as(ADA).await;
    notice(&app, ADA, 1);
}

#[tokio::test]
async fn password_change_and_reset_are_noticed() {
    let (app, _) = TestApp::signed_in().await;
    let before = mails_to(&app, ADA).len();
    app.post(
        "/user/password",
        json!({ "old": PASSWORD, "password": NEW_PASSWORD }),
    )
    .await
    .expect(204);
    let (subject, _) = notice(&app, ADA, before);
    assert!(subject.contains("password was changed"), "{subject}");

    let browser = app.new_browser();
    browser.ping().await;
    browser
        .get("/forget_code?email=ada@example.com")
        .await
        .expect(204);
    let code = app.last_code(ADA);
    browser
        .post(
            "/forget_reset",
            json!({ "email": ADA, "code": code, "password": PASSWORD }),
        )
        .await
        .expect(204);
    // The code's mail, then the notice, which does not repeat the code.
    let (subject, text) = notice(&app, ADA, before + 2);
    assert!(subject.contains("password was reset"), "{subject}");
    assert!(!text.contains(&code));
}

#[tokio::test]
async fn an_email_change_is_noticed_at_the_old_address_with_the_new_one_masked() {
    let (app, _) = TestApp::signed_in().await;
    let before = mails_to(&app, ADA).len();
    app.patch(
        "/user",
        json!({ "key": "email", "email": "mallory@evil.example" }),
    )
    .await
    .expect(204);
    let (subject, text) = notice(&app, ADA, before);
    assert!(subject.contains("email address was changed"), "{subject}");
    assert!(text.contains("m***@evil.example"), "{text}");
    assert!(!text.contains("mallory"), "{text}");
    assert!(mails_to(&app, "mallory@evil.example").is_empty());
}

#[tokio::test]
async fn phone_and_totp_bound_and_removed_are_noticed() {
    let (app, _) = TestApp::signed_in().await;
    let count = std::cell::Cell::new(mails_to(&app, ADA).len());
    let expect = |app: &TestApp, words: &str| {
        let (subject, _) = notice(app, ADA, count.get());
        assert!(subject.contains(words), "{subject}");
        count.set(count.get() + 1);
    };
    app.get("/user/phone_code?phone=%2B14155550123")
        .await
        .expect(204);
    let code = app.last_code("+14155550123");
    app.post(
        "/user/phone",
        json!({ "phone": "+14155550123", "code": code }),
    )
    .await
    .expect(204);
    expect(&app, "new phone number");
    app.delete("/user/phone").await.expect(204);
    expect(&app, "phone number was removed");
    // Removing what is not bound tells nothing.
    app.delete("/user/phone").await.expect(204);
    assert_eq!(mails_to(&app, ADA).len(), count.get());

    let r = app.get("/user/totp").await;
    let uri = r.body["totp"].as_str().unwrap().to_string();
    let secret = shared::totp::secret_from_url(&uri).unwrap();
    let step = shared::totp::step_of(app.clock_now());
    let tss = [
        shared::totp::code_at_step(&secret, step - 1).unwrap(),
        shared::totp::code_at_step(&secret, step).unwrap(),
    ];
    app.post("/user/totp", json!({ "totp": uri, "tss": tss }))
        .await
        .expect(204);
    expect(&app, "new authenticator app");
    app.delete("/user/totp").await.expect(204);
    expect(&app, "authenticator app was removed");
    // Name and avatar changes are not security events.
    app.patch("/user", json!({ "key": "name", "name": "Ada" }))
        .await
        .expect(204);
    assert_eq!(mails_to(&app, ADA).len(), count.get());
}

#[tokio::test]
async fn a_notice_that_cannot_be_sent_undoes_nothing() {
    let (app, user) = TestApp::signed_in().await;
    app.notifier.refuse(true);
    app.post(
        "/user/password",
        json!({ "old": PASSWORD, "password": NEW_PASSWORD }),
    )
    .await
    .expect(204);
    app.patch(
        "/user",
        json!({ "key": "email", "email": "ada@example.org" }),
    )
    .await
    .expect(204);
    let other = app.new_browser();
    other.ping().await;
    other
        .login("ada@example.org", NEW_PASSWORD)
        .await
        .expect(204);
    app.notifier.refuse(false);
    assert_eq!(app.user(&user.id).await.email, "ada@example.org");
    app.get("/user").await.expect(200);
}
