//! `/verify` and `/logout`: the life of a session (refreshing it: `refresh.rs`).

use axum::body::Body;
use axum::http::{Request, header};
use serde_json::json;
use shared::http::auth::RENEW_EVERY;

use crate::support::TestApp;

#[tokio::test]
async fn verify_needs_a_live_session() {
    let (app, _) = TestApp::signed_in().await;
    app.get("/verify").await.expect(204);

    let stranger = app.new_browser();
    stranger
        .get("/verify")
        .await
        .expect_error(401, "UNAUTHENTICATED", "not signed in");
    stranger.set_cookie("TOKEN", "garbage");
    stranger
        .get("/verify")
        .await
        .expect_error(401, "UNAUTHENTICATED", "");
}

#[tokio::test]
async fn tampered_token_is_refused() {
    let (app, _) = TestApp::signed_in().await;
    let token = app.cookie("TOKEN").unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[2] = parts[2].chars().rev().collect();
    app.set_cookie("TOKEN", &parts.join("."));
    app.get("/verify")
        .await
        .expect_error(401, "UNAUTHENTICATED", "");
}

#[tokio::test]
async fn idle_session_expires_and_activity_slides_it() {
    let (app, user) = TestApp::signed_in().await;
    // Activity at 50 minutes slides the one-hour session past its first hour.
    app.advance(50 * 60);
    app.get("/verify").await.expect(204);
    let session_id = app.session_key();
    let s = app
        .state
        .store
        .session(&user.id, &session_id, app.clock_now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.expires_at,
        app.clock_now() + 3600,
        "renewed to a full hour"
    );
    // Idle for over an hour: the session is gone although the token is not expired.
    app.advance(3601);
    app.get("/verify")
        .await
        .expect_error(401, "SESSION_ENDED", "sign in again");
}

#[tokio::test]
async fn renewal_is_skipped_when_recent() {
    let (app, user) = TestApp::signed_in().await;
    let key = app.session_key();
    let before = app
        .state
        .store
        .session(&user.id, &key, app.clock_now())
        .await
        .unwrap()
        .unwrap();
    app.advance(RENEW_EVERY - 1);
    app.get("/verify").await.expect(204);
    let same = app
        .state
        .store
        .session(&user.id, &key, app.clock_now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        same.expires_at, before.expires_at,
        "no write within a minute"
    );
    app.advance(2);
    app.get("/verify").await.expect(204);
    let renewed = app
        .state
        .store
        .session(&user.id, &key, app.clock_now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.expires_at, app.clock_now() + 3600);
    assert_eq!(same.last_seen, before.last_seen);
    assert_eq!(
        renewed.last_seen,
        Some(app.clock_now()),
        "last seen at renewal"
    );
}

#[tokio::test]
async fn expired_token_is_refused_even_with_a_live_session() {
    let (app, _) = TestApp::signed_in().await;
    for _ in 0..3 {
        app.advance(35 * 60);
        app.get("/verify").await.expect(204);
    }
    app.advance(20 * 60); // 2 h 5 min after login: token expired, session alive
    app.get("/verify")
        .await
        .expect_error(401, "UNAUTHENTICATED", "");
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let (app, _) = TestApp::signed_in().await;
    let token = app.cookie("TOKEN").unwrap();
    let r = app.post("/logout", json!({})).await;
    r.expect(204);
    let cleared = r.set_cookie("TOKEN").unwrap();
    assert!(
        cleared.starts_with("TOKEN=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // Replaying the old token after logout fails: the session is gone server-side.
    app.set_cookie("TOKEN", &token);
    app.get("/verify")
        .await
        .expect_error(401, "SESSION_ENDED", "");
}

#[tokio::test]
async fn logout_without_a_session_still_answers_204() {
    let app = TestApp::spawn().await;
    app.ping().await;
    app.post("/logout", json!({})).await.expect(204);
    // A body is not required either.
    let xsrf = app.cookie("XSRF-TOKEN").unwrap();
    let salt = app.cookie("XSRF-SALT").unwrap();
    let req = Request::post("/logout")
        .header("x-xsrf-token", xsrf)
        .header(header::COOKIE, format!("XSRF-SALT={salt}"))
        .body(Body::empty())
        .unwrap();
    app.send(req).await.expect(204);
}
