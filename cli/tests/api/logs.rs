//! No secret in a log line: a whole set of flows runs under a capturing
//! subscriber, then the log is searched for every secret the flows handled.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

use crate::support::{PASSWORD, TestApp};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test]
async fn logs_carry_no_secrets() {
    let capture = Capture::default();
    // Everything at TRACE, through the filter production uses.
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::{Layer, fmt};
    let subscriber =
        tracing_subscriber::registry().with(fmt::layer().with_writer(capture.clone()).with_filter(
            shared::logs::without_bodies(tracing::level_filters::LevelFilter::TRACE),
        ));
    // Global, not thread-local: a scoped subscriber misses callsites whose
    // interest other test threads cached first. Under `cargo test` it also
    // captures the other tests' lines, which must be just as clean.
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets it");

    let app = TestApp::spawn().await;
    let user = app
        .add_user_with_phone("ada@example.com", "+14155550123")
        .await;
    app.ping().await;
    app.login("ada@example.com", "a wrong password guess")
        .await
        .expect(400);
    app.login("ada@example.com", PASSWORD).await.expect(204);
    let token = app.cookie("TOKEN").unwrap();
    let refresh = app.refresh_code().await;
    app.post("/refresh_token", json!({ "code": refresh }))
        .await
        .expect(204);
    let totp = app.get("/user/totp").await;
    let secret = shared::totp::secret_from_url(totp.body["totp"].as_str().unwrap()).unwrap();
    app.get("/login/sms?phone=%2B14155550123").await.expect(204);
    let sms = app.last_code("+14155550123");
    app.get("/forget_code?email=ada@example.com")
        .await
        .expect(204);
    let mail = app.last_code("ada@example.com");
    app.post(
        "/forget_reset",
        json!({ "email": "ada@example.com", "code": mail, "password": "the next passphrase" }),
    )
    .await
    .expect(204);

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("request"),
        "the request lines were captured: {log}"
    );
    for secret in [
        PASSWORD,
        "a wrong password guess",
        "the next passphrase",
        user.password.expose().as_str(),
        token.as_str(),
        refresh.as_str(),
        sms.as_str(),
        mail.as_str(),
        secret.as_str(),
        "test-key-test-key",
    ] {
        assert!(
            !log.contains(secret),
            "{secret:?} appears in the log:\n{log}"
        );
    }
}
