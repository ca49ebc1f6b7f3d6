//! `GET /user/sessions`, `DELETE /user/sessions/{id}`, `DELETE /user/sessions`:
//! the devices signed in to an account, and signing them out.

use serde_json::{Value, json};
use shared::clock::rfc3339;
use shared::model::{LoginMethod, LoginRecord, Session};
use shared::sessions;
use shared::store::Settle;

use crate::support::{PASSWORD, START, TestApp, USER_AGENT};

/// The fields of one listed session, and nothing else.
const FIELDS: [&str; 7] = [
    "current",
    "id",
    "ip",
    "last_seen",
    "method",
    "signed_in",
    "user_agent",
];

/// `GET /user/sessions` from `app`, checked for its shape.
async fn list(app: &TestApp) -> Value {
    let r = app.get("/user/sessions").await;
    r.expect(200);
    assert_eq!(r.headers["cache-control"], "no-store");
    for s in r.body["sessions"].as_array().expect("a list") {
        let keys: Vec<_> = s.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, FIELDS, "{s}");
    }
    r.body
}

/// The listed ids, in order.
fn ids(list: &Value) -> Vec<String> {
    let sessions = list["sessions"].as_array().unwrap();
    sessions
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// The id `app`'s own session has in the list.
async fn own_id(app: &TestApp) -> String {
    let list = list(app).await;
    let own = list["sessions"].as_array().unwrap().iter();
    let current: Vec<_> = own.filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "one current session: {list}");
    current[0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn three_browsers_list_end_one_and_end_all_others() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    let browsers = [
        ("198.51.100.1", 0),
        ("198.51.100.2", 60),
        ("198.51.100.3", 60),
    ]
    .map(|(ip, wait)| (ip, wait, app.new_browser()));
    for (ip, wait, browser) in &browsers {
        app.advance(*wait);
        browser.set_ip(ip);
        browser.sign_in("ada@example.com", PASSWORD).await;
    }
    let [(_, _, a), (_, _, b), (_, _, c)] = &browsers;
    app.advance(90);
    a.get("/verify").await.expect(204); // renews A: seen now

    let listed = list(a).await;
    assert_eq!(listed["total"], 3);
    let sessions = listed["sessions"].as_array().unwrap();
    // Newest sign-in first: C, B, A.
    let ips: Vec<_> = sessions.iter().map(|s| s["ip"].clone()).collect();
    assert_eq!(ips, ["198.51.100.3", "198.51.100.2", "198.51.100.1"]);
    let current: Vec<_> = sessions.iter().map(|s| s["current"].clone()).collect();
    assert_eq!(current, [false, false, true]);
    let a_entry = &sessions[2];
    assert_eq!(a_entry["method"], "password");
    assert_eq!(a_entry["user_agent"], USER_AGENT);
    assert_eq!(a_entry["signed_in"], rfc3339(START));
    assert_eq!(a_entry["last_seen"], rfc3339(START + 210));
    assert_eq!(sessions[0]["signed_in"], rfc3339(START + 120));
    assert_eq!(sessions[0]["last_seen"], rfc3339(START + 120));
    // Each browser sees the same list with itself as current.
    assert_eq!(ids(&list(b).await), ids(&listed));
    assert_eq!(own_id(b).await, sessions[1]["id"].as_str().unwrap());

    // A signs B out: B is refused at once, and the list drops it.
    let b_id = sessions[1]["id"].as_str().unwrap();
    let r = a.delete(&format!("/user/sessions/{b_id}")).await;
    r.expect(204);
    assert!(r.set_cookie("TOKEN").is_none(), "A stays signed in");
    b.get("/verify")
        .await
        .expect_error(401, "SESSION_ENDED", "");
    b.get("/user/sessions").await.expect(401);
    let listed = list(a).await;
    assert_eq!(listed["total"], 2);
    assert!(!ids(&listed).contains(&b_id.to_string()));
    // Ending it again: there is no such session any more.
    a.delete(&format!("/user/sessions/{b_id}"))
        .await
        .expect_error(404, "SESSION_NOT_FOUND", "no such session");

    // A signs every other device out: C; A stays.
    let r = a.delete("/user/sessions").await;
    r.expect(200);
    assert_eq!(r.body, json!({ "ended": 1 }));
    c.get("/verify")
        .await
        .expect_error(401, "SESSION_ENDED", "");
    a.get("/verify").await.expect(204);
    let listed = list(a).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["sessions"][0]["current"], true);
    // Nothing left to end.
    assert_eq!(a.delete("/user/sessions").await.body, json!({ "ended": 0 }));
}

#[tokio::test]
async fn another_accounts_session_is_not_found_like_an_unknown_one() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.add_user("bob@example.com").await;
    let ada = app.signed_in_as("ada@example.com").await;
    let bob = app.signed_in_as("bob@example.com").await;
    let bobs = own_id(&bob).await;
    let unknown = format!("{}{}", &bobs[..10], "A".repeat(22));
    let long = "a".repeat(2000);
    for id in [
        bobs.as_str(),
        unknown.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAA",
        "nope",
        "%FF",
        long.as_str(),
    ] {
        ada.delete(&format!("/user/sessions/{id}"))
            .await
            .expect_error(404, "SESSION_NOT_FOUND", "no such session");
    }
    bob.get("/verify").await.expect(204);
    assert_eq!(list(&bob).await["total"], 1);
    // Nor does signing out everywhere else reach another account.
    assert_eq!(ada.delete("/user/sessions").await.body["ended"], 0);
    bob.get("/verify").await.expect(204);
}

#[tokio::test]
async fn ending_the_current_session_signs_this_browser_out() {
    let (app, _) = TestApp::signed_in().await;
    let id = own_id(&app).await;
    let r = app.delete(&format!("/user/sessions/{id}")).await;
    r.expect(204);
    let cleared = r.set_cookie("TOKEN").expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    app.get("/verify").await.expect(401);
}

/// The list shows no `jti`, token, code digest or password hash: only the
/// documented fields, and an id that is not the token's.
#[tokio::test]
async fn the_list_never_shows_a_jti_token_or_hash() {
    let (app, user) = TestApp::signed_in().await;
    let other = app.signed_in_as("ada@example.com").await;
    app.refresh_code().await; // a pending code's digest is on the session
    let mut secrets = vec![user.password.expose().clone(), PASSWORD.to_string()];
    for browser in [&app, &other] {
        let token = browser.cookie("TOKEN").unwrap();
        let claims = app.state.tokens.verify(&token, app.clock_now()).unwrap();
        secrets.push(token.clone());
        secrets.push(claims.jti.clone());
        // Its random half, alone.
        secrets.push(claims.jti.split_once('.').unwrap().1.to_string());
        let key = sessions::key_of(&claims.jti).unwrap();
        let stored = app.state.store.session(&user.id, &key, app.clock_now());
        let stored = stored.await.unwrap().unwrap();
        secrets.extend(stored.refresh.pending.into_iter().flatten().map(|(d, _)| d));
    }
    let r = app.get("/user/sessions").await;
    r.expect(200);
    for secret in &secrets {
        assert!(!r.text.contains(secret.as_str()), "{secret} in {}", r.text);
    }
    assert!(secrets.len() >= 8, "{secrets:?}");
    assert_eq!(r.body["total"], 2);
}

/// Sessions begun at `times` for `user_id`, straight into the store.
async fn stored_sessions(app: &TestApp, user_id: &str, times: impl Iterator<Item = i64>) {
    let user = app.user(user_id).await;
    for time in times {
        let login = LoginRecord::new(time, "192.0.2.1", "old", LoginMethod::Sms);
        let key = sessions::key_of(&sessions::new_jti(time)).unwrap();
        let session = Session::begin(&user, key, &login, 3600);
        let settle = Settle::default();
        let begun = app.state.store.begin_session(&session, &login, &settle);
        assert!(begun.await.unwrap());
    }
}

/// Hundreds of sessions: the newest 50 are listed, and all are counted, in
/// one bounded read; expired ones are neither.
#[tokio::test]
async fn the_newest_fifty_are_listed_and_all_are_counted() {
    let app = TestApp::spawn().await;
    let user = app.add_user("ada@example.com").await;
    // 20 that expired, then 179 alive, a second apart, older than the browser's.
    stored_sessions(&app, &user.id, (0..20).map(|i| START - 7200 + i)).await;
    stored_sessions(&app, &user.id, (0..179).map(|i| START - 1000 + i)).await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let before = app.round_trips();
    let listed = list(&app).await;
    if let (Some(before), Some(after)) = (before, app.round_trips()) {
        assert_eq!(after - before, 2, "Get session · one Query");
    }
    assert_eq!(listed["total"], 180);
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 50);
    assert_eq!(sessions[0]["current"], true);
    let times: Vec<_> = sessions[1..]
        .iter()
        .map(|s| s["signed_in"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<_> = (0..49).map(|i| rfc3339(START - 1000 + 178 - i)).collect();
    assert_eq!(times, expected);
    assert!(sessions[1..].iter().all(|s| s["method"] == "sms"));
    // Signing out everywhere else ends the live ones and counts only them.
    assert_eq!(app.delete("/user/sessions").await.body["ended"], 179);
    assert_eq!(list(&app).await["total"], 1);
}

/// A session stored before sessions recorded their method and last-seen time,
/// keyed by its `jti` (no time in it), still signs in, lists and ends.
#[tokio::test]
async fn older_sessions_still_work() {
    let app = TestApp::spawn().await;
    let user = app.add_user("ada@example.com").await;
    app.ping().await;
    let jti = "b2xkZXItc2Vzc2lvbi0wMQ"; // 22 characters, as tokens had then
    let older = Session {
        user_id: user.id.clone(),
        id: jti.into(),
        created_at: START - 600,
        expires_at: START + 3600, // not due for renewal: never seen since

        ip: "192.0.2.9".into(),
        user_agent: "older".into(),
        ..Session::default()
    };
    let login = LoginRecord::new(
        START - 600,
        &older.ip,
        &older.user_agent,
        LoginMethod::Password,
    );
    let settle = Settle::default();
    let begun = app.state.store.begin_session(&older, &login, &settle);
    assert!(begun.await.unwrap());
    let token = app.state.tokens.issue(&user.id, jti, START - 600, 7200);
    app.set_cookie("TOKEN", &token);
    app.get("/verify").await.expect(204);

    let listed = list(&app).await;
    let entry = &listed["sessions"][0];
    assert_eq!(entry["method"], Value::Null);
    assert_eq!(entry["signed_in"], rfc3339(START - 600));
    assert_eq!(entry["last_seen"], rfc3339(START - 600));
    assert_eq!(entry["current"], true);
    let id = entry["id"].as_str().unwrap().to_string();
    assert_ne!(id, jti);
    assert!(!listed.to_string().contains(jti));

    // Its first refresh code gives it the codes it lacked.
    let code = app.refresh_code().await;
    app.post("/refresh_token", json!({ "code": code }))
        .await
        .expect(204);

    // Another device ends it by its listed id.
    let other = app.signed_in_as("ada@example.com").await;
    other
        .delete(&format!("/user/sessions/{id}"))
        .await
        .expect(204);
    app.get("/verify")
        .await
        .expect_error(401, "SESSION_ENDED", "");
    other
        .delete(&format!("/user/sessions/{id}"))
        .await
        .expect(404);
}
