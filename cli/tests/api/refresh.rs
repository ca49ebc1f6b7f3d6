//! `/refresh_code` and `/refresh_token`: a new token for the same session. Any
//! number of tabs refresh independently (up to 20 codes pending), each code
//! works once, and every exchange takes its try before its code is compared:
//! a session has 5 tries (`CODE_ATTEMPTS`) plus one for each code issued.

use std::collections::BTreeSet;

use axum::http::header;
use serde_json::json;

use crate::support::{TestApp, TestResponse, other_than};

/// `POST /refresh_token` with `code`.
async fn exchange(app: &TestApp, code: &str) -> TestResponse {
    app.post("/refresh_token", json!({ "code": code })).await
}

/// The pending refresh codes of `app`'s session, as stored.
async fn pending(app: &TestApp, user_id: &str) -> usize {
    let (key, now) = (app.session_key(), app.clock_now());
    let session = app.state.store.session(user_id, &key, now).await.unwrap();
    session.expect("the session lives").refresh.stored()
}

#[tokio::test]
async fn refresh_code_exchanges_for_a_new_token_of_the_same_session() {
    let (app, user) = TestApp::signed_in().await;
    let old = app.cookie("TOKEN").unwrap();
    for _ in 0..2 {
        app.advance(50 * 60);
        app.get("/verify").await.expect(204);
    }

    let r = app.get("/refresh_code").await;
    r.expect(200);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let code = r.body["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 6);

    let r = app.post("/refresh_token", json!({ "code": code })).await;
    r.expect(204);
    let new = app.cookie("TOKEN").unwrap();
    assert_ne!(old, new);
    let (a, b) = (
        app.state.tokens.verify(&old, app.clock_now()).unwrap(),
        app.state.tokens.verify(&new, app.clock_now()).unwrap(),
    );
    assert_eq!((a.sub, a.jti.clone()), (user.id.clone(), b.jti.clone()));
    assert_eq!(b.exp, app.clock_now() + 7200);
    // The new token outlives the old one.
    app.advance(30 * 60);
    app.get("/verify").await.expect(204);

    // Single use.
    app.post("/refresh_token", json!({ "code": code }))
        .await
        .expect_error(400, "INVALID_CODE", "");
}

#[tokio::test]
async fn refresh_token_by_get_query_as_the_seed_lists() {
    let (app, _) = TestApp::signed_in().await;
    let code = app.refresh_code().await;
    app.get(&format!("/refresh_token?code={code}"))
        .await
        .expect(204);
    app.get("/refresh_token")
        .await
        .expect_error(400, "INVALID_FIELD", "code");
}

#[tokio::test]
async fn refresh_code_expires_and_is_bound_to_its_session() {
    let (app, _) = TestApp::signed_in().await;
    let code = app.refresh_code().await;
    app.advance(16);
    app.post("/refresh_token", json!({ "code": code }))
        .await
        .expect_error(400, "INVALID_CODE", "");

    let code = app.refresh_code().await;
    let other = app.signed_in_as("ada@example.com").await;
    other
        .post("/refresh_token", json!({ "code": code }))
        .await
        .expect_error(400, "INVALID_CODE", "");
    // The right session can still use it.
    app.post("/refresh_token", json!({ "code": code }))
        .await
        .expect(204);
}

#[tokio::test]
async fn refresh_needs_a_session() {
    let app = TestApp::spawn().await;
    app.ping().await;
    app.get("/refresh_code").await.expect(401);
    app.post("/refresh_token", json!({ "code": "123456" }))
        .await
        .expect(401);
}

#[tokio::test]
async fn each_code_brings_its_own_try_beside_five_for_wrong_ones() {
    let (app, _) = TestApp::signed_in().await;
    let code = app.refresh_code().await;
    let wrong = other_than(&code);
    for _ in 0..5 {
        exchange(&app, &wrong)
            .await
            .expect_error(400, "INVALID_CODE", "");
    }
    // Five wrong tries leave the code its own try.
    exchange(&app, &code).await.expect(204);
    // None is left: refused without being compared, right or wrong.
    exchange(&app, &wrong)
        .await
        .expect_error(400, "TOO_MANY_ATTEMPTS", "ask for a new code");
    // A new code brings one try; a wrong guess can take it.
    let code = app.refresh_code().await;
    exchange(&app, &other_than(&code))
        .await
        .expect_error(400, "INVALID_CODE", "");
    exchange(&app, &code)
        .await
        .expect_error(400, "TOO_MANY_ATTEMPTS", "");
    let code = app.refresh_code().await;
    exchange(&app, &code).await.expect(204);
}

/// Before any code is issued there is nothing to try: such exchanges are
/// refused as wrong and take no try.
#[tokio::test]
async fn exchanges_before_any_code_take_no_try() {
    let (app, _) = TestApp::signed_in().await;
    for _ in 0..10 {
        exchange(&app, "123456")
            .await
            .expect_error(400, "INVALID_CODE", "");
    }
    let code = app.refresh_code().await;
    for _ in 0..5 {
        exchange(&app, &other_than(&code)).await.expect(400);
    }
    exchange(&app, &code).await.expect(204);
}

/// The multi-tab refresh: five tabs of one browser ask for codes at once, then
/// exchange them at once. Every one succeeds, at two DynamoDB calls each, and
/// no code works twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_tabs_refresh_at_once_and_each_code_works_once() {
    let (app, user) = TestApp::signed_in().await;
    // Two DynamoDB calls a request, racing or not.
    let calls = |before: Option<u64>| {
        if let (Some(before), Some(after)) = (before, app.round_trips()) {
            assert_eq!(after - before, 10, "DynamoDB calls of five requests");
        }
    };
    let before = app.round_trips();
    let codes = app
        .race_tabs(5, |tab| async move { tab.refresh_code().await })
        .await;
    calls(before);
    assert_eq!(codes.iter().collect::<BTreeSet<_>>().len(), 5, "{codes:?}");
    assert_eq!(pending(&app, &user.id).await, 5);
    let mut each = codes.clone().into_iter();
    let before = app.round_trips();
    let statuses = app
        .race_tabs(5, |tab| {
            let code = each.next().unwrap();
            async move { exchange(&tab, &code).await.status.as_u16() }
        })
        .await;
    calls(before);
    assert_eq!(statuses, [204; 5]);
    for code in &codes {
        exchange(&app, code)
            .await
            .expect_error(400, "INVALID_CODE", "");
    }
    assert_eq!(pending(&app, &user.id).await, 0);
    app.get("/verify").await.expect(204);
}

/// One code exchanged by five tabs at once: exactly one gets the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_code_raced_by_five_tabs_works_once() {
    let (app, _) = TestApp::signed_in().await;
    let code = app.refresh_code().await;
    let statuses = app
        .race_tabs(5, |tab| {
            let code = code.clone();
            async move { exchange(&tab, &code).await.status.as_u16() }
        })
        .await;
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, [204, 400, 400, 400, 400], "{statuses:?}");
}

/// Tries are taken before comparison, atomically: of 50 wrong codes at once,
/// exactly the session's tries (5, plus 1 for its one code) are compared;
/// the rest are refused untried.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_wrong_codes_at_once_are_compared_only_as_often_as_allowed() {
    let (app, _) = TestApp::signed_in().await;
    let code = app.refresh_code().await;
    let wrong = other_than(&code);
    let answers = app
        .race_tabs(50, |tab| {
            let wrong = wrong.clone();
            async move { exchange(&tab, &wrong).await.code().to_string() }
        })
        .await;
    let count = |code: &str| answers.iter().filter(|a| *a == code).count();
    assert_eq!(
        (count("INVALID_CODE"), count("TOO_MANY_ATTEMPTS")),
        (6, 44),
        "{answers:?}"
    );
    // The guesses used the code's own try too; a new code brings another.
    exchange(&app, &code)
        .await
        .expect_error(400, "TOO_MANY_ATTEMPTS", "");
    let code = app.refresh_code().await;
    exchange(&app, &code).await.expect(204);
}

/// At most 20 live codes per session: a 21st waits for the first to expire.
/// Expired ones are dropped as new ones come.
#[tokio::test]
async fn twenty_codes_may_be_pending_and_expired_ones_are_dropped() {
    let (app, user) = TestApp::signed_in().await;
    let first = app.refresh_code().await;
    app.advance(5);
    let mut codes = vec![];
    for _ in 0..19 {
        codes.push(app.refresh_code().await);
    }
    assert_eq!(pending(&app, &user.id).await, 20);
    let r = app.get("/refresh_code").await;
    r.expect_error(400, "TOO_MANY_CODES", "try again in 10 seconds");
    assert_eq!(r.headers[header::RETRY_AFTER], "10");
    assert_eq!(pending(&app, &user.id).await, 20);
    // The first expires: its place is free, and it is gone.
    app.advance(10);
    let last = app.refresh_code().await;
    assert_eq!(pending(&app, &user.id).await, 20);
    exchange(&app, &first)
        .await
        .expect_error(400, "INVALID_CODE", "");
    for code in codes.iter().chain([&last]) {
        exchange(&app, code).await.expect(204);
    }
    assert_eq!(pending(&app, &user.id).await, 0);
    // Expired entries are dropped by the next code.
    app.refresh_code().await;
    app.advance(16);
    app.refresh_code().await;
    assert_eq!(pending(&app, &user.id).await, 1);
}

/// 30 tabs at once on an empty session: 20 get codes, 10 are told to wait,
/// and no more than 20 are ever stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_tabs_at_once_get_twenty_codes() {
    let (app, user) = TestApp::signed_in().await;
    let answers = app
        .race_tabs(30, |tab| async move {
            let r = tab.get("/refresh_code").await;
            (r.status.as_u16(), r.code().to_string())
        })
        .await;
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    let waiting = answers
        .iter()
        .filter(|a| *a == &(400, "TOO_MANY_CODES".to_string()))
        .count();
    assert_eq!((ok, waiting), (20, 10), "{answers:?}");
    assert_eq!(pending(&app, &user.id).await, 20);
}
