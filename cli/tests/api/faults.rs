//! Backend failures on the AWS backend: the client gets 503 quickly (or, for
//! a code request, the answer a recipient without an account gets), nothing
//! half-done stays behind, and the flow completes once the backend is back.
//! (On the embedded backend these tests have nothing to cut and return early.)

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{PASSWORD, TestApp};

const PHONE: &str = "+14155550123";

/// An outage answer must come within the SDK's budget (4 s), not a Lambda timeout.
const BOUND: Duration = Duration::from_secs(8);

async fn aws_app() -> Option<TestApp> {
    let app = TestApp::spawn().await;
    if app.aws.is_none() {
        eprintln!("fault tests cut the AWS backend (PLANX_TEST_BACKEND=aws)");
        return None;
    }
    Some(app)
}

#[tokio::test]
async fn database_outage_is_503_and_recovers() {
    let Some(app) = aws_app().await else { return };
    app.add_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let aws = app.aws.clone().unwrap();

    aws.database.down();
    let started = Instant::now();
    app.get("/user")
        .await
        .expect_error(503, "SERVICE_UNAVAILABLE", "unavailable");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    let r = app.login("ada@example.com", PASSWORD).await;
    r.expect_error(503, "SERVICE_UNAVAILABLE", "");
    assert!(
        !r.text.contains("dynamodb") && !r.text.contains("127.0.0.1"),
        "{}",
        r.text
    );

    aws.database.up();
    app.get("/user").await.expect(200);
}

#[tokio::test]
async fn a_login_that_fails_midway_leaves_no_session() {
    let Some(app) = aws_app().await else { return };
    let user = app.add_user("ada@example.com").await;
    app.ping().await;
    let aws = app.aws.clone().unwrap();
    aws.database.down();
    app.login("ada@example.com", PASSWORD).await.expect(503);
    aws.database.up();
    assert!(app.cookie("TOKEN").is_none());
    let now = app.clock_now();
    let left = app.state.store.sessions(&user.id, now).await.unwrap();
    assert!(left.is_empty(), "no session was left behind");
    assert_eq!(app.user(&user.id).await.sessions, 0);
    app.login("ada@example.com", PASSWORD).await.expect(204);
}

#[tokio::test]
async fn an_unsent_code_does_not_block_a_retry() {
    let Some(app) = aws_app().await else { return };
    app.add_user_with_phone("ada@example.com", PHONE).await;
    app.ping().await;
    let aws = app.aws.clone().unwrap();

    aws.messaging.down();
    let started = Instant::now();
    // The answer a phone without an account gets: SNS failing must not tell them apart.
    let r = app.get("/login/sms?phone=%2B14155550123").await;
    r.expect(204);
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    assert_eq!(app.sent_to(PHONE), 0);
    // The code was withdrawn with the message.
    app.post("/login/sms", json!({ "phone": PHONE, "code": "123456" }))
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
    assert_eq!(app.comparisons(), 0);

    aws.messaging.up();
    // No 60 s cooldown: the failed send was taken back.
    app.get("/login/sms?phone=%2B14155550123").await.expect(204);
    let code = app.last_code(PHONE);
    app.post("/login/sms", json!({ "phone": PHONE, "code": code }))
        .await
        .expect(204);
}

#[tokio::test]
async fn a_mail_outage_answers_known_and_unknown_addresses_alike() {
    let Some(app) = aws_app().await else { return };
    app.add_user("ada@example.com").await;
    app.ping().await;
    let aws = app.aws.clone().unwrap();
    aws.messaging.down();
    let known = app.get("/forget_code?email=ada@example.com").await;
    let unknown = app.get("/forget_code?email=nobody@example.com").await;
    known.expect(204);
    assert_eq!(
        (known.status, known.text.as_str()),
        (unknown.status, unknown.text.as_str())
    );
    aws.messaging.up();
    // Nothing was held back: the reset completes at once.
    app.get("/forget_code?email=ada@example.com")
        .await
        .expect(204);
    let code = app.last_code("ada@example.com");
    app.post(
        "/forget_reset",
        json!({ "email": "ada@example.com", "code": code, "password": "a brand new passphrase" }),
    )
    .await
    .expect(204);
    app.login("ada@example.com", "a brand new passphrase")
        .await
        .expect(204);
}

#[tokio::test]
async fn a_database_outage_during_a_code_request_is_still_503() {
    let Some(app) = aws_app().await else { return };
    app.add_user("ada@example.com").await;
    app.ping().await;
    let aws = app.aws.clone().unwrap();
    aws.database.down();
    // Known or not, the limiter cannot be read: nothing tells the two apart.
    for email in ["ada@example.com", "nobody@example.com"] {
        app.get(&format!("/forget_code?email={email}"))
            .await
            .expect_error(503, "SERVICE_UNAVAILABLE", "");
    }
    aws.database.up();
    app.get("/forget_code?email=ada@example.com")
        .await
        .expect(204);
}
