//! Concurrency: requests released together (`TestApp::race`) racing for one code,
//! one counter or one unique value.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use shared::model::{Backoff, FailureKey, Purpose};
use shared::store::{Redemption, UserChange};

use crate::support::{PASSWORD, TestApp};

/// How many of `results` are `value`: `count(&statuses, 204)`, `count(&changed, true)`.
fn count<T: PartialEq>(results: &[T], value: T) -> usize {
    results.iter().filter(|r| **r == value).count()
}

/// `n` browsers, each with a copy of `app`'s cookies, post `body` to `path` at
/// once; the statuses they get.
async fn post_at_once(app: &TestApp, n: usize, path: &'static str, body: Value) -> Vec<u16> {
    app.race(n, |browser| {
        let body = body.clone();
        async move { browser.post(path, body).await.status.as_u16() }
    })
    .await
}

/// The helper itself: no racing request starts before every task is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_race_starts_only_once_every_task_is_ready() {
    let app = TestApp::spawn().await;
    let ready = Arc::new(AtomicUsize::new(0));
    let seen = app
        .race(20, |_| {
            ready.fetch_add(1, Ordering::SeqCst);
            let ready = ready.clone();
            async move { ready.load(Ordering::SeqCst) }
        })
        .await;
    assert_eq!(seen, vec![20; 20]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_redemptions_of_one_code_give_exactly_one_success() {
    let app = TestApp::spawn().await;
    let state = &app.state;
    let code = shared::codes::store(
        state,
        Purpose::PasswordReset,
        "ada@example.com",
        None,
        600,
        None,
    )
    .await
    .unwrap();
    let redeemed = app
        .race(50, |app| {
            let code = code.clone();
            async move {
                shared::codes::redeem(
                    &app.state,
                    Purpose::PasswordReset,
                    "ada@example.com",
                    None,
                    &code,
                )
                .await
                .is_ok()
            }
        })
        .await;
    assert_eq!(count(&redeemed, true), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_sms_logins_with_one_code_sign_in_once() {
    let app = TestApp::spawn().await;
    app.add_user_with_phone("ada@example.com", "+14155550123")
        .await;
    app.ping().await;
    app.get("/login/sms?phone=%2B14155550123").await.expect(204);
    let code = app.last_code("+14155550123");
    let statuses = post_at_once(
        &app,
        20,
        "/login/sms",
        json!({ "phone": "+14155550123", "code": code }),
    )
    .await;
    assert_eq!(count(&statuses, 204), 1, "{statuses:?}");
    assert!(
        // The losers' failures count against the account, so late ones may meet
        // its back-off (400 AUTH_MANY_INCORRECT rather than AUTH_INCORRECT).
        statuses.iter().all(|s| [204, 400].contains(s)),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_count_exactly() {
    let app = TestApp::spawn_with(&[("LOGIN_BACKOFF_AFTER", "1000")]).await;
    let user = app.add_user("ada@example.com").await;
    app.ping().await;
    let n = 40;
    let statuses = app
        .race_tabs(n, |tab| async move {
            tab.login("ada@example.com", "wrong password")
                .await
                .status
                .as_u16()
        })
        .await;
    assert_eq!(statuses, vec![400; n]);
    assert_eq!(app.user(&user.id).await.failures as usize, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_failures_of_an_unknown_identifier_count_exactly() {
    let app = TestApp::spawn().await;
    let backoff = Backoff {
        threshold: 1000,
        max: 900,
    };
    app.race(40, |app| async move {
        let key = FailureKey::Unknown("ghost@example.com".into());
        app.state
            .store
            .record_failure(&key, &backoff, 0)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(
        app.state
            .store
            .unknown_lockout("ghost@example.com", 0)
            .await
            .unwrap()
            .failures,
        40
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_code_requests_respect_the_cooldown() {
    let app = TestApp::spawn().await;
    app.add_user_with_phone("ada@example.com", "+14155550123")
        .await;
    let statuses = app
        .race_tabs(20, |tab| async move {
            tab.get("/login/sms?phone=%2B14155550123")
                .await
                .status
                .as_u16()
        })
        .await;
    assert_eq!(count(&statuses, 204), 1, "{statuses:?}");
    assert_eq!(app.sent_to("+14155550123"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_spent_by_wrong_guesses_cannot_be_won_by_a_racing_right_one() {
    let app = TestApp::spawn_with(&[("CODE_ATTEMPTS", "1")]).await;
    let state = &app.state;
    let code = shared::codes::store(state, Purpose::SmsLogin, "+14155550123", None, 120, None)
        .await
        .unwrap();
    let digest = state
        .keys
        .code_digest("sms-login", "+14155550123", "999999x");
    let wrong = state
        .store
        .redeem_code(
            Purpose::SmsLogin,
            "+14155550123",
            &[digest],
            1,
            app.clock_now(),
        )
        .await
        .unwrap();
    assert!(matches!(wrong, Redemption::Rejected));
    assert!(
        shared::codes::redeem(state, Purpose::SmsLogin, "+14155550123", None, &code)
            .await
            .is_err()
    );
}

/// Two new accounts given the same `change` at once: whether each was stored.
async fn two_accounts_at_once(app: &TestApp, change: UserChange) -> Vec<bool> {
    let mut ids = [
        app.add_user("a@example.com").await.id,
        app.add_user("b@example.com").await.id,
    ]
    .into_iter();
    app.race(2, |app| {
        let (id, change) = (ids.next().unwrap(), change.clone());
        async move { app.state.store.update_user(&id, change, 0).await.is_ok() }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_accounts_racing_for_one_email_give_one_winner() {
    let app = TestApp::spawn().await;
    let changed = two_accounts_at_once(&app, UserChange::Email("c@example.com".into())).await;
    assert_eq!(count(&changed, true), 1);
    let users = app.state.store.users().await.unwrap();
    assert_eq!(
        users.iter().filter(|u| u.email == "c@example.com").count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_totp_logins_with_one_code_sign_in_once() {
    use shared::model::Totp;
    use shared::secret::Secret;
    let app = TestApp::spawn().await;
    let user = app.add_user("ada@example.com").await;
    let secret = shared::totp::new_secret();
    let bound = Totp {
        secret: Secret::new(secret.clone()),
        last_step: 0,
    };
    app.change_user(&user.id, UserChange::Totp(Some(bound)))
        .await;
    let code = shared::totp::code_at_step(&secret, shared::totp::step_of(app.clock_now())).unwrap();
    app.ping().await;
    let statuses = post_at_once(
        &app,
        10,
        "/login/totp",
        json!({ "email": "ada@example.com", "code": code }),
    )
    .await;
    assert_eq!(count(&statuses, 204), 1, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_accounts_racing_for_one_phone_give_one_winner() {
    let app = TestApp::spawn().await;
    let changed = two_accounts_at_once(&app, UserChange::Phone(Some("+14155550123".into()))).await;
    assert_eq!(count(&changed, true), 1);
    let holder = app
        .state
        .store
        .user_by_phone("+14155550123")
        .await
        .unwrap()
        .unwrap();
    let users = app.state.store.users().await.unwrap();
    let with_phone: Vec<_> = users.iter().filter(|u| u.phone.is_some()).collect();
    assert_eq!(with_phone.len(), 1);
    assert_eq!(with_phone[0].id, holder.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_new_accounts_racing_for_one_email_give_one_winner() {
    let app = TestApp::spawn().await;
    let created = app
        .race(2, |app| async move {
            let new = shared::accounts::NewUser {
                email: "same@example.com".into(),
                password: PASSWORD.into(),
                ..Default::default()
            };
            shared::accounts::create(app.state.store.as_ref(), &app.state.passwords, new, 0)
                .await
                .is_ok()
        })
        .await;
    assert_eq!(count(&created, true), 1);
    assert_eq!(app.state.store.users().await.unwrap().len(), 1);
}
