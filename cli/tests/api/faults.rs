//! Backend failures on the AWS backend: the client gets 503 quickly, nothing
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
    app.get("/login/sms?phone=%2B14155550123")
        .await
        .expect_error(503, "SERVICE_UNAVAILABLE", "");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    assert_eq!(app.sent_to(PHONE), 0);

    aws.messaging.up();
    // No 60 s cooldown: the failed send was taken back.
    app.get("/login/sms?phone=%2B14155550123").await.expect(204);
    let code = app.last_code(PHONE);
    app.post("/login/sms", json!({ "phone": PHONE, "code": code }))
        .await
        .expect(204);
}

#[tokio::test]
async fn mail_outage_is_503_and_the_reset_completes_after() {
    let Some(app) = aws_app().await else { return };
    app.add_user("ada@example.com").await;
    app.ping().await;
    let aws = app.aws.clone().unwrap();
    aws.messaging.down();
    app.get("/forget_code?email=ada@example.com")
        .await
        .expect(503);
    aws.messaging.up();
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
