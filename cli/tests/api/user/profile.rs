//! `GET /user` (User Info): every field, the masked phone and TOTP markers,
//! history and session count, and the session the profile needs.

use serde_json::json;
use shared::clock::rfc3339;

use super::{MASKED, PHONE, TOTP_SECRET, bound_totp};
use crate::support::{PASSWORD, START, TestApp, USER_AGENT};

#[tokio::test]
async fn profile_shows_every_field_and_nothing_else() {
    let (app, user) = TestApp::signed_in().await;
    let r = app.get("/user").await;
    r.expect(200);
    let start = rfc3339(START);
    assert_eq!(start, "2027-01-15T08:00:00Z");
    assert_eq!(
        r.body,
        json!({
            "_id": user.id,
            "email": "ada@example.com",
            "name": "ada",
            "avatar": "",
            "phone": "",
            "sessions": 1,
            "history": {
                "timestamp": start,
                "metadata": { "client_ip": "203.0.113.7", "source": "password" },
                "user_agent": USER_AGENT,
            },
            "totp": "",
            "lark": null,
            "status": true,
            "create_time": start,
            "update_time": start,
        })
    );
    let hash = app.user(&user.id).await.password.expose().clone();
    assert!(!r.text.contains(&hash), "the password hash leaked");
    assert!(!r.text.contains("argon2"), "{}", r.text);
    assert!(!r.text.contains("password\":"), "{}", r.text);
}

#[tokio::test]
async fn profile_masks_phone_and_totp_and_never_shows_secrets() {
    let app = TestApp::spawn().await;
    let user = app.add_user_with_phone("ada@example.com", PHONE).await;
    app.change_user(&user.id, bound_totp()).await;
    let b = app.signed_in_as("ada@example.com").await;

    let r = b.get("/user").await;
    r.expect(200);
    assert_eq!(r.body["phone"], MASKED);
    assert_eq!(r.body["totp"], "******");
    assert!(
        !r.text.contains("4155550"),
        "phone digits leaked: {}",
        r.text
    );
    assert!(!r.text.contains(TOTP_SECRET), "TOTP secret leaked");
    assert!(!r.text.contains("JBSWY3DP"), "TOTP secret leaked");
    assert!(!r.text.contains("argon2"), "password hash leaked");
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 12, "unexpected fields: {keys:?}");
}

#[tokio::test]
async fn history_and_sessions_follow_each_login() {
    let (app, _) = TestApp::signed_in().await;
    app.advance(600);
    let phone = app.new_browser();
    phone.set_ip("198.51.100.23");
    phone.sign_in("ada@example.com", PASSWORD).await;

    for b in [&app, &phone] {
        let r = b.get("/user").await;
        r.expect(200);
        assert_eq!(r.body["sessions"], 2);
        assert_eq!(
            r.body["history"],
            json!({
                "timestamp": rfc3339(START + 600),
                "metadata": { "client_ip": "198.51.100.23", "source": "password" },
                "user_agent": USER_AGENT,
            })
        );
    }
    // A failed login is not a session and does not move the history.
    app.login("ada@example.com", "not the password")
        .await
        .expect(400);
    let r = app.get("/user").await;
    assert_eq!(r.body["sessions"], 2);
    assert_eq!(r.body["history"]["timestamp"], rfc3339(START + 600));
}

#[tokio::test]
async fn profile_needs_a_session() {
    let app = TestApp::spawn().await;
    app.add_user("ada@example.com").await;
    app.ping().await;
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
    app.set_cookie("TOKEN", "not-a-jwt");
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
}

#[tokio::test]
async fn tampered_or_foreign_tokens_are_refused() {
    let (app, user) = TestApp::signed_in().await;
    let token = app.cookie("TOKEN").unwrap();
    app.get("/user").await.expect(200);

    // One character of the signature changed.
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut sig: Vec<char> = parts[2].chars().collect();
    sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
    let sig: String = sig.into_iter().collect();
    app.set_cookie("TOKEN", &format!("{}.{}.{sig}", parts[0], parts[1]));
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");

    // The same claims signed under another key.
    let foreign = shared::token::Tokens::fixed("planx", b"another-key-another-key-another-k!");
    let forged = foreign.issue(&user.id, "whatever", app.clock_now(), 7200);
    app.set_cookie("TOKEN", &forged);
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");

    // Well signed, but no such server-side session.
    let orphan = app
        .state
        .tokens
        .issue(&user.id, "no-such-session", app.clock_now(), 7200);
    app.set_cookie("TOKEN", &orphan);
    app.get("/user")
        .await
        .expect_error(401, "SESSION_ENDED", "session");

    app.set_cookie("TOKEN", &token);
    app.get("/user").await.expect(200);
}

#[tokio::test]
async fn an_idle_session_expires_and_an_active_one_slides() {
    let (app, _) = TestApp::signed_in().await;
    let idle = app.signed_in_as("ada@example.com").await;

    // Used every 50 minutes, the session outlives its 1 h TTL...
    app.advance(3000);
    app.get("/user").await.expect(200);
    app.advance(3000);
    app.get("/user").await.expect(200);
    // ...while the unused one has ended.
    idle.get("/user")
        .await
        .expect_error(401, "SESSION_ENDED", "session");

    // The JWT itself expires after 2 h, however alive the session is.
    app.advance(1199);
    app.get("/user").await.expect(200);
    app.advance(1);
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
}

#[tokio::test]
async fn logout_ends_access_even_with_a_kept_token() {
    let (app, _) = TestApp::signed_in().await;
    let token = app.cookie("TOKEN").unwrap();
    app.post("/logout", json!({})).await.expect(204);
    assert_eq!(app.cookie("TOKEN"), None);
    app.get("/user")
        .await
        .expect_error(401, "UNAUTHENTICATED", "signed in");
    app.set_cookie("TOKEN", &token);
    app.get("/user")
        .await
        .expect_error(401, "SESSION_ENDED", "session");
}

/// A login stored in the flat shape written before the console's
/// (`{time, ip, user_agent, method}`) reads in the console's, with nothing lost,
/// and the next login stores the new shape. The old record is written straight
/// into the backend: a DynamoDB map attribute, or the redb item's JSON.
#[tokio::test]
async fn a_login_stored_in_the_old_shape_reads_in_the_new_one() {
    let dir = std::env::temp_dir().join(format!(
        "planx-test-history-{}",
        shared::crypto::hex(&shared::crypto::random_bytes::<6>())
    ));
    let path = dir.join("planx.redb");
    let app = TestApp::spawn_on_disk(&path).await;
    let user = app.add_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;

    let (time, ip, agent) = (START - 86_400, "198.51.100.23", "old-browser/0.9");
    match &app.aws {
        Some(aws) => {
            use aws_sdk_dynamodb::types::AttributeValue::{M, N, S};
            let flat = M([
                ("time".to_string(), N(time.to_string())),
                ("ip".to_string(), S(ip.into())),
                ("user_agent".to_string(), S(agent.into())),
                ("method".to_string(), S("sms".into())),
            ]
            .into());
            aws.dynamodb()
                .await
                .update_item()
                .table_name(&aws.table)
                .key("pk", S(format!("USER#{}", user.id)))
                .key("sk", S("PROFILE".into()))
                .update_expression("SET history = :h")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":h", flat)
                .send()
                .await
                .expect("the old item is written");
        }
        None => {
            use redb::ReadableTable;
            let items: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("items");
            let db = redb::Database::builder()
                .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
                .create(&path)
                .unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(items).unwrap();
                let key = format!("user/{}", user.id);
                let mut item: serde_json::Value =
                    serde_json::from_slice(table.get(key.as_str()).unwrap().unwrap().value())
                        .unwrap();
                item["history"] =
                    json!({ "time": time, "ip": ip, "user_agent": agent, "method": "sms" });
                let bytes = serde_json::to_vec(&item).unwrap();
                table.insert(key.as_str(), bytes.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
    }

    let r = app.get("/user").await;
    r.expect(200);
    assert_eq!(
        r.body["history"],
        json!({
            "timestamp": rfc3339(time),
            "metadata": { "client_ip": ip, "source": "sms" },
            "user_agent": agent,
        })
    );
    assert_eq!(r.body["sessions"], 1, "the rest of the account is intact");

    app.advance(60);
    app.new_browser().sign_in("ada@example.com", PASSWORD).await;
    let stored = app.user(&user.id).await.history.unwrap();
    assert_eq!(stored.timestamp, START + 60);
    assert_eq!(
        app.get("/user").await.body["history"]["metadata"]["source"],
        "password"
    );
    let _ = std::fs::remove_dir_all(dir);
}
