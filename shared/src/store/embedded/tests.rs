//! The embedded store on a real file and in memory.

use super::EmbeddedStore;
use super::items::{ITEMS, rate_key};
use crate::model::{Code, LoginRecord, Purpose, Rule, Session, User};
use crate::secret::Secret;
use crate::store::prelude::*;
use crate::store::{Decision, Settle, StoreError, Unique, UserChange};

fn user(id: &str, email: &str) -> User {
    User {
        id: id.into(),
        email: email.into(),
        name: "n".into(),
        avatar: String::new(),
        phone: None,
        totp: None,
        lark: None,
        password: Secret::new("$argon2id$fake".into()),
        active: true,
        sessions: 0,
        history: None,
        created_at: 1,
        updated_at: 1,
        cred_version: 0,
    }
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "planx-test-{name}-{}",
        crate::crypto::hex(&crate::crypto::random_bytes::<6>())
    ));
    dir.join("planx.redb")
}

#[tokio::test]
async fn accounts_survive_a_restart_and_expired_items_are_pruned() {
    let path = temp_path("restart");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        store
            .insert_user(&user("u1", "Ada@Example.com"))
            .await
            .unwrap();
        let session = Session {
            user_id: "u1".into(),
            id: "s1".into(),
            created_at: 0,
            expires_at: 100,
            ..Session::default()
        };
        store
            .put_code(&Code {
                purpose: Purpose::SmsLogin,
                subject: "+1555".into(),
                digest: "d".into(),
                attempts: 0,
                expires_at: 100,
            })
            .await
            .unwrap();
        let login = LoginRecord::new(0, "", "", crate::model::LoginMethod::Password);
        let settle = Settle::default();
        assert!(
            store
                .begin_session(&session, &login, &settle)
                .await
                .unwrap()
        );
    }
    let store = EmbeddedStore::open(&path).unwrap();
    let u = store
        .user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((u.id.as_str(), u.sessions), ("u1", 1));
    assert!(store.session("u1", "s1", 50).await.unwrap().is_some());
    assert!(
        store.session("u1", "s1", 100).await.unwrap().is_none(),
        "expired reads as gone"
    );
    assert_eq!(store.prune(100).unwrap(), 2, "the session and the code");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn a_second_handle_on_the_same_file_sees_and_makes_writes() {
    // What `planx user add` does while `planx serve` runs.
    let path = temp_path("two-handles");
    let server = EmbeddedStore::open(&path).unwrap();
    let admin = EmbeddedStore::open(&path).unwrap();
    admin
        .insert_user(&user("u1", "ada@example.com"))
        .await
        .unwrap();
    assert!(server.user("u1").await.unwrap().is_some());
    assert!(matches!(
        server.insert_user(&user("u2", "ADA@example.com")).await,
        Err(StoreError::Taken(Unique::Email))
    ));
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn guards_move_with_email_and_phone_changes() {
    let store = EmbeddedStore::in_memory();
    store
        .insert_user(&user("u1", "a@example.com"))
        .await
        .unwrap();
    store
        .insert_user(&user("u2", "b@example.com"))
        .await
        .unwrap();
    store
        .update_user("u1", UserChange::Phone(Some("+14155550123".into())), 2)
        .await
        .unwrap();
    assert!(matches!(
        store
            .update_user("u2", UserChange::Phone(Some("+14155550123".into())), 2)
            .await,
        Err(StoreError::Taken(Unique::Phone))
    ));
    store
        .update_user("u1", UserChange::Phone(None), 3)
        .await
        .unwrap();
    assert!(store.user_by_phone("+14155550123").await.unwrap().is_none());
    store
        .update_user("u2", UserChange::Phone(Some("+14155550123".into())), 4)
        .await
        .unwrap();
    store
        .update_user("u1", UserChange::Email("C@example.com".into()), 5)
        .await
        .unwrap();
    assert!(
        store
            .user_by_email("a@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .user_by_email("c@EXAMPLE.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        "u1"
    );
    assert_eq!(store.user("u1").await.unwrap().unwrap().updated_at, 5);
    // Changing only the case keeps the guard.
    store
        .update_user("u1", UserChange::Email("c@example.com".into()), 6)
        .await
        .unwrap();
    assert_eq!(
        store
            .user_by_email("C@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        "u1"
    );
    assert!(matches!(
        store
            .update_user("nobody", UserChange::Name("x".into()), 7)
            .await,
        Err(StoreError::NoSuchUser)
    ));
}

#[tokio::test]
async fn limiter_refund_lets_a_retry_through() {
    let store = EmbeddedStore::in_memory();
    let rule = Rule {
        window: 3600,
        max: 5,
        cooldown: 60,
    };
    assert_eq!(store.hit("k", &rule, 10).await.unwrap(), Decision::Allowed);
    assert_eq!(
        store.hit("k", &rule, 20).await.unwrap(),
        Decision::Refused { retry_after: 50 }
    );
    store.unhit("k", 20).await.unwrap();
    assert_eq!(store.hit("k", &rule, 20).await.unwrap(), Decision::Allowed);
}

#[tokio::test]
async fn older_files_keep_their_limiters_and_drop_their_failures() {
    // How this store kept them before the backends shared their records, and
    // before guessing buckets replaced failure counts.
    let path = temp_path("nested");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        let txn = store.db.begin_write().unwrap();
        {
            let mut table = txn.open_table(ITEMS).unwrap();
            let rate = r#"{"state":{"window_start":10,"count":1,"last":10},"expires_at":3610}"#;
            let fail = r#"{"lockout":{"failures":6,"locked_until":40},"expires_at":86440}"#;
            table
                .insert(rate_key("k").as_str(), rate.as_bytes())
                .unwrap();
            table.insert("fail/who", fail.as_bytes()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    let rule = Rule {
        window: 3600,
        max: 5,
        cooldown: 60,
    };
    assert_eq!(
        store.hit("k", &rule, 20).await.unwrap(),
        Decision::Refused { retry_after: 50 }
    );
    assert!(
        store
            .read::<serde_json::Value>("fail/who")
            .unwrap()
            .is_none()
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
