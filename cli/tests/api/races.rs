//! Concurrency: two requests racing for one code or one counter.

use std::sync::Arc;

use serde_json::json;
use shared::model::{Backoff, FailureKey, Purpose};
use shared::store::Redemption;

use crate::support::{PASSWORD, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_redemptions_of_one_code_give_exactly_one_success() {
    let app = Arc::new(TestApp::spawn().await);
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
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            let code = code.clone();
            tokio::spawn(async move {
                shared::codes::redeem(
                    &app.state,
                    Purpose::PasswordReset,
                    "ada@example.com",
                    None,
                    &code,
                )
                .await
                .is_ok()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap() as usize;
    }
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_sms_logins_with_one_code_sign_in_once() {
    let app = Arc::new(TestApp::spawn().await);
    app.add_user_full("ada@example.com", PASSWORD, Some("+14155550123"))
        .await;
    app.ping().await;
    app.get("/login/sms?phone=%2B14155550123").await.expect(204);
    let code = app.last_code("+14155550123");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            let code = code.clone();
            tokio::spawn(async move {
                let browser = app.new_browser();
                browser.ping().await;
                browser
                    .post(
                        "/login/sms",
                        json!({ "phone": "+14155550123", "code": code }),
                    )
                    .await
                    .status
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = vec![];
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        // The losers' failures count against the account, so late ones may meet its back-off.
        statuses.iter().all(|s| [204, 400, 429].contains(s)),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_count_exactly() {
    let app = Arc::new(TestApp::spawn_with(&[("LOGIN_BACKOFF_AFTER", "1000")]).await);
    let user = app.add_user("ada@example.com").await;
    app.ping().await;
    let n = 40;
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.login("ada@example.com", "wrong password")
                    .await
                    .status
                    .as_u16()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 400);
    }
    assert_eq!(app.user(&user.id).await.failures, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_failures_of_an_unknown_identifier_count_exactly() {
    let app = TestApp::spawn().await;
    let store = app.state.store.clone();
    let backoff = Backoff {
        threshold: 1000,
        max: 900,
    };
    let key = FailureKey::Unknown("ghost@example.com".into());
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.record_failure(&key, &backoff, 0).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        store
            .unknown_lockout("ghost@example.com", 0)
            .await
            .unwrap()
            .failures,
        40
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_code_requests_respect_the_cooldown() {
    let app = Arc::new(TestApp::spawn().await);
    app.add_user_full("ada@example.com", PASSWORD, Some("+14155550123"))
        .await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.get("/login/sms?phone=%2B14155550123")
                    .await
                    .status
                    .as_u16()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += (t.await.unwrap() == 204) as usize;
    }
    assert_eq!(ok, 1);
    assert_eq!(app.sent_to("+14155550123"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_spent_by_wrong_guesses_cannot_be_won_by_a_racing_right_one() {
    let app = Arc::new(TestApp::spawn_with(&[("CODE_ATTEMPTS", "1")]).await);
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
            &digest,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_accounts_racing_for_one_email_give_one_winner() {
    let app = Arc::new(TestApp::spawn().await);
    let a = app.add_user("a@example.com").await;
    let b = app.add_user("b@example.com").await;
    let tasks: Vec<_> = [a.id, b.id]
        .into_iter()
        .map(|id| {
            let app = app.clone();
            tokio::spawn(async move {
                app.state
                    .store
                    .update_user(
                        &id,
                        shared::store::UserChange::Email("c@example.com".into()),
                        0,
                    )
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap() as usize;
    }
    assert_eq!(wins, 1);
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
    let app = Arc::new(TestApp::spawn().await);
    let user = app.add_user("ada@example.com").await;
    let secret = shared::totp::new_secret();
    let bound = Totp {
        secret: Secret::new(secret.clone()),
        last_step: 0,
    };
    app.state
        .store
        .update_user(&user.id, shared::store::UserChange::Totp(Some(bound)), 0)
        .await
        .unwrap();
    let code = shared::totp::code_at_step(&secret, shared::totp::step_of(app.clock_now())).unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let app = app.clone();
            let code = code.clone();
            tokio::spawn(async move {
                let browser = app.new_browser();
                browser.ping().await;
                browser
                    .post(
                        "/login/totp",
                        json!({ "email": "ada@example.com", "code": code }),
                    )
                    .await
                    .status
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = vec![];
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_accounts_racing_for_one_phone_give_one_winner() {
    let app = Arc::new(TestApp::spawn().await);
    let ids = [
        app.add_user("a@example.com").await.id,
        app.add_user("b@example.com").await.id,
    ];
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let app = app.clone();
            tokio::spawn(async move {
                app.state
                    .store
                    .update_user(
                        &id,
                        shared::store::UserChange::Phone(Some("+14155550123".into())),
                        0,
                    )
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap() as usize;
    }
    assert_eq!(wins, 1);
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
    let app = Arc::new(TestApp::spawn().await);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let new = shared::accounts::NewUser {
                    email: "same@example.com".into(),
                    password: crate::support::PASSWORD.into(),
                    ..Default::default()
                };
                shared::accounts::create(app.state.store.as_ref(), &app.state.passwords, new, 0)
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap() as usize;
    }
    assert_eq!(wins, 1);
    assert_eq!(app.state.store.users().await.unwrap().len(), 1);
}
