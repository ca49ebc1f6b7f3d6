//! No session outlives the credentials it began under: a reset, a password
//! change or a disable refuses every older session, even one whose login
//! raced the change (parked between its checks and its write by `paused.rs`),
//! and even one whose deletion failed.

use std::sync::Arc;

use serde_json::json;
use shared::store::UserChange;

use crate::paused::Paused;
use crate::support::{PASSWORD, TestApp, TestResponse};

const ADA: &str = "ada@example.com";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// A server whose store can park a login, with Ada's account.
async fn parkable() -> (TestApp, Arc<Paused>, shared::model::User) {
    let app = TestApp::spawn().await;
    let user = app.add_user(ADA).await;
    let paused = Arc::new(Paused::new(app.state.store.clone()));
    let app = app.with_store(paused.clone());
    (app, paused, user)
}

/// Starts a login with `password` from a new browser that parks before its
/// write; returns once it is parked.
async fn parked_login(
    app: &TestApp,
    paused: &Paused,
    password: &'static str,
) -> (
    crate::paused::Parked,
    tokio::task::JoinHandle<(TestApp, TestResponse)>,
) {
    let mut parked = paused.park_next_login();
    let browser = app.new_browser();
    browser.ping().await;
    let login = tokio::spawn(async move {
        let r = browser.login(ADA, password).await;
        (browser, r)
    });
    parked.arrived().await;
    (parked, login)
}

/// The login lost: no cookie that works, no session stored.
async fn lost(app: &TestApp, user_id: &str, (browser, r): (TestApp, TestResponse)) {
    r.expect_error(400, "AUTH_INCORRECT", "incorrect");
    browser.get("/user").await.expect(401);
    let sessions = app.state.store.sessions(user_id, app.clock_now());
    assert!(sessions.await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_racing_a_reset_leaves_no_usable_session() {
    let (app, paused, user) = parkable().await;
    let (parked, login) = parked_login(&app, &paused, PASSWORD).await;
    // The password it checked is reset meanwhile.
    let owner = app.new_browser();
    owner.ping().await;
    owner
        .get("/forget_code?email=ada@example.com")
        .await
        .expect(204);
    let code = app.last_code(ADA);
    owner
        .post(
            "/forget_reset",
            json!({ "email": ADA, "code": code, "password": NEW_PASSWORD }),
        )
        .await
        .expect(204);
    parked.resume();
    lost(&app, &user.id, login.await.unwrap()).await;
    owner.login(ADA, NEW_PASSWORD).await.expect(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_racing_a_password_change_or_a_disable_leaves_no_usable_session() {
    let (app, paused, user) = parkable().await;
    let owner = app.signed_in_as(ADA).await;
    let (parked, login) = parked_login(&app, &paused, PASSWORD).await;
    owner
        .post(
            "/user/password",
            json!({ "old": PASSWORD, "password": NEW_PASSWORD }),
        )
        .await
        .expect(204);
    parked.resume();
    let (browser, r) = login.await.unwrap();
    r.expect_error(400, "AUTH_INCORRECT", "incorrect");
    browser.get("/user").await.expect(401);
    // The changer's own session carries on.
    owner.get("/user").await.expect(200);

    // A disable (`planx user disable`) landing in the same gap.
    let (parked, login) = parked_login(&app, &paused, NEW_PASSWORD).await;
    app.change_user(&user.id, UserChange::Active(false)).await;
    parked.resume();
    let (browser, r) = login.await.unwrap();
    assert_eq!(r.status, 400, "{}", r.text);
    browser.get("/user").await.expect(401);
    owner.get("/user").await.expect(401);
}

#[tokio::test]
async fn sessions_are_refused_even_when_deleting_them_failed() {
    let app = TestApp::spawn().await;
    let user = app.add_user(ADA).await;
    let laptop = app.signed_in_as(ADA).await;
    let phone = app.signed_in_as(ADA).await;
    // A reset whose deletion of the sessions never ran: the change alone.
    let hash = app.state.passwords.hash(NEW_PASSWORD).await.unwrap();
    app.change_user(&user.id, UserChange::Password { hash, keep: None })
        .await;
    for b in [&laptop, &phone] {
        b.get("/user").await.expect_error(401, "SESSION_ENDED", "");
    }
    // The same for a disable, and an enable afterwards brings none back.
    let tablet = app.new_browser();
    tablet.sign_in(ADA, NEW_PASSWORD).await;
    tablet.get("/user").await.expect(200);
    app.change_user(&user.id, UserChange::Active(false)).await;
    app.change_user(&user.id, UserChange::Active(true)).await;
    tablet
        .get("/user")
        .await
        .expect_error(401, "SESSION_ENDED", "");
}
