//! Concurrency: requests released together (`TestApp::race`) racing for one code,
//! one counter, one unique value, or the guessing limits' slots.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use shared::model::Purpose;
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
    // The losers are wrong guesses (the code is spent) or met the back-off.
    assert!(
        statuses.iter().all(|s| [204, 400].contains(s)),
        "{statuses:?}"
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

/// A server with Ada's account, an authenticator bound, and its secret.
async fn with_totp() -> (TestApp, String) {
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
    (app, secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_totp_logins_with_one_code_sign_in_once() {
    let (app, secret) = with_totp().await;
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

/// How `n` racing answers split: `(checked, refused)`, where checked ones
/// answered `wrong` and refused ones `AUTH_MANY_INCORRECT` with a `Retry-After`.
fn split(answers: &[(u16, String, Option<String>)], wrong: &str) -> (usize, usize) {
    for (status, code, retry) in answers {
        assert_eq!(*status, 400, "{answers:?}");
        assert!(
            code == wrong || code == "AUTH_MANY_INCORRECT",
            "{answers:?}"
        );
        if code == "AUTH_MANY_INCORRECT" {
            let retry: i64 = retry.as_deref().expect("Retry-After").parse().unwrap();
            assert!(retry >= 1, "{answers:?}");
        }
    }
    let checked = answers.iter().filter(|(_, c, _)| c == wrong).count();
    (checked, answers.len() - checked)
}

fn answer(r: crate::support::TestResponse) -> (u16, String, Option<String>) {
    let retry = r
        .headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status.as_u16(), r.code().to_string(), retry)
}

/// 50 wrong passwords for Ada at once from `browser` (or, with `spread`, from
/// 50 addresses); how they split, and how many passwords were verified.
async fn fifty_wrong_passwords(
    app: &TestApp,
    browser: &TestApp,
    spread: bool,
) -> ((usize, usize), u64) {
    let before = app.verifications();
    let mut i = 0;
    let answers = browser
        .race(50, |b| {
            i += 1;
            if spread {
                b.set_ip(&format!("198.51.100.{i}"));
            }
            async move { answer(b.login("ada@example.com", "wrong password").await) }
        })
        .await;
    (
        split(&answers, "AUTH_INCORRECT"),
        app.verifications() - before,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_wrong_passwords_from_one_address_check_exactly_five() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    let (split, verified) = fifty_wrong_passwords(&app, &app, false).await;
    assert_eq!((split, verified), ((5, 45), 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_wrong_passwords_from_fifty_addresses_check_exactly_five() {
    // Here only the account-wide cap on clients without a device cookie binds.
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    let laptop = app.signed_in_as("ada@example.com").await;
    app.ping().await;
    let (split, verified) = fifty_wrong_passwords(&app, &app, true).await;
    assert_eq!((split, verified), ((5, 45), 5));
    // The owner's device is not held back by them.
    laptop.login("ada@example.com", PASSWORD).await.expect(204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_wrong_passwords_from_the_owners_device_check_exactly_five() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    let laptop = app.signed_in_as("ada@example.com").await;
    let (split, verified) = fifty_wrong_passwords(&app, &laptop, false).await;
    assert_eq!((split, verified), ((5, 45), 5));
    // Only the device's own back-off was spent: a stranger still has the account's five.
    let stranger = app.browser_at("198.51.100.200");
    stranger.ping().await;
    stranger
        .login("ada@example.com", "wrong password")
        .await
        .expect_error(400, "AUTH_INCORRECT", "incorrect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_wrong_totp_codes_check_exactly_five() {
    let (app, secret) = with_totp().await;
    let step = shared::totp::step_of(app.clock_now());
    let valid: Vec<String> = (step - 1..=step + 1)
        .map(|s| shared::totp::code_at_step(&secret, s).unwrap())
        .collect();
    let wrong = (0..)
        .map(|n: u32| format!("{:06}", n * 7))
        .find(|c| !valid.contains(c))
        .unwrap();
    app.ping().await;
    let answers = app
        .race(50, |b| {
            let wrong = wrong.clone();
            async move {
                let body = json!({ "email": "ada@example.com", "code": wrong });
                answer(b.post("/login/totp", body).await)
            }
        })
        .await;
    assert_eq!(split(&answers, "AUTH_INCORRECT"), (5, 45));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_wrong_guesses_on_one_reset_code_compare_at_most_five() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    app.get("/forget_code?email=ada@example.com")
        .await
        .expect(204);
    let code = app.last_code("ada@example.com");
    let wrong = crate::support::other_than(&code);
    let mut i = 0;
    // Fifty addresses: no back-off binds, only the code's own tries.
    let answers = app
        .race(50, |b| {
            i += 1;
            b.set_ip(&format!("198.51.100.{i}"));
            let body = json!({ "email": "ada@example.com", "code": wrong, "password": "a stranger's passphrase" });
            async move { answer(b.post("/forget_reset", body).await) }
        })
        .await;
    assert_eq!(split(&answers, "INVALID_CODE"), (50, 0));
    let max = app.state.config.limits.guessing.code_attempts as u64;
    assert_eq!(app.comparisons(), max, "{answers:?}");
    // The tries are spent: the right code is not even compared now.
    let owner = app.browser_at("203.0.113.99");
    owner.ping().await;
    owner
        .post(
            "/forget_reset",
            json!({ "email": "ada@example.com", "code": code, "password": "the owner's passphrase" }),
        )
        .await
        .expect_error(400, "INVALID_CODE", "code");
    assert_eq!(app.comparisons(), max);
    app.login("ada@example.com", PASSWORD).await.expect(204);
}
