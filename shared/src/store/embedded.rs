//! The embedded store: one redb table of JSON items keyed like the DynamoDB design
//! (`user/<id>`, `email/<email>`, `session/<user>/<id>`, `code/<purpose>/<subject>`...).
//!
//! redb because it is a real embedded database: ACID transactions that survive a
//! crash, one writer at a time (so every read-check-write below is atomic, which
//! is what makes codes single-use and counters exact under races), and a
//! multi-process mode so `planx user add` works while `planx serve` runs.
//! `in_memory` uses the same code on redb's in-memory backend.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{
    Accounts, Cause, Codes, Decision, Limits, Lockouts, Redemption, Sessions, Store, StoreError,
    StoreResult, Unique, UserChange,
};
use crate::clock::Timestamp;
use crate::crypto::constant_time_eq;
use crate::model::{
    Backoff, Code, FailureKey, Lockout, LoginRecord, Purpose, RateState, Rule, Session, User,
};

const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");

/// How long failures of an identifier without an account are remembered.
const UNKNOWN_FAILURE_MEMORY: i64 = 86_400;

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

fn unavailable(e: impl Into<Cause>) -> StoreError {
    StoreError::unavailable(e)
}

fn user_key(id: &str) -> String {
    format!("user/{id}")
}
fn email_key(email: &str) -> String {
    format!("email/{}", email.to_lowercase())
}
fn phone_key(phone: &str) -> String {
    format!("phone/{phone}")
}
fn session_prefix(user_id: &str) -> String {
    format!("session/{user_id}/")
}
fn session_key(user_id: &str, id: &str) -> String {
    format!("session/{user_id}/{id}")
}
fn code_key(purpose: Purpose, subject: &str) -> String {
    format!("code/{}/{subject}", purpose.as_str())
}
fn rate_key(key: &str) -> String {
    format!("rate/{key}")
}
fn fail_key(identifier: &str) -> String {
    format!("fail/{identifier}")
}

/// A limiter's state with the time it stops mattering.
#[derive(Serialize, Deserialize)]
struct Rate {
    state: RateState,
    expires_at: Timestamp,
}

/// Failures of an identifier that has no account.
#[derive(Serialize, Deserialize)]
struct Failures {
    lockout: Lockout,
    expires_at: Timestamp,
}

/// Items that carry `expires_at`, read as absent once it has passed.
trait Expiring {
    fn expires_at(&self) -> Timestamp;
}
impl Expiring for Session {
    fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}
impl Expiring for Code {
    fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}
impl Expiring for Rate {
    fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}
impl Expiring for Failures {
    fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

fn live<T: Expiring>(item: Option<T>, now: Timestamp) -> Option<T> {
    item.filter(|i| i.expires_at() > now)
}

fn get<T, Tab>(table: &Tab, key: &str) -> StoreResult<Option<T>>
where
    T: DeserializeOwned,
    Tab: ReadableTable<&'static str, &'static [u8]>,
{
    let Some(guard) = table.get(key).map_err(unavailable)? else {
        return Ok(None);
    };
    serde_json::from_slice(guard.value())
        .map(Some)
        .map_err(|e| StoreError::corrupt(key, e))
}

fn keys_with_prefix<Tab>(table: &Tab, prefix: &str) -> StoreResult<Vec<String>>
where
    Tab: ReadableTable<&'static str, &'static [u8]>,
{
    let mut keys = vec![];
    for entry in table.range(prefix..).map_err(unavailable)? {
        let (k, _) = entry.map_err(unavailable)?;
        let k = k.value();
        if !k.starts_with(prefix) {
            break;
        }
        keys.push(k.to_string());
    }
    Ok(keys)
}

/// The table inside one write transaction.
struct Tx<'t> {
    table: redb::Table<'t, &'static str, &'static [u8]>,
}

impl Tx<'_> {
    fn get<T: DeserializeOwned>(&self, key: &str) -> StoreResult<Option<T>> {
        get(&self.table, key)
    }

    fn put<T: Serialize>(&mut self, key: &str, value: &T) -> StoreResult<()> {
        let bytes = serde_json::to_vec(value).map_err(unavailable)?;
        self.table
            .insert(key, bytes.as_slice())
            .map_err(unavailable)?;
        Ok(())
    }

    fn delete(&mut self, key: &str) -> StoreResult<()> {
        self.table.remove(key).map_err(unavailable)?;
        Ok(())
    }

    fn user(&self, id: &str) -> StoreResult<User> {
        self.get(&user_key(id))?.ok_or(StoreError::NoSuchUser)
    }

    /// Fails when `key` guards a value for another account.
    fn check_guard(&self, key: &str, owner: &str, what: Unique) -> StoreResult<()> {
        match self.get::<String>(key)? {
            Some(other) if other != owner => Err(StoreError::Taken(what)),
            _ => Ok(()),
        }
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the database file, dropping items whose time has passed.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(unavailable)?;
        }
        let db = Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(path)
            .map_err(unavailable)?;
        Self::init(db)
    }

    /// A store that lives only as long as the process.
    pub fn in_memory() -> Self {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("an in-memory database always opens");
        Self::init(db).expect("an in-memory database always initialises")
    }

    fn init(db: Database) -> StoreResult<Self> {
        let store = Self { db: Arc::new(db) };
        store.transact(|_| Ok(()))?;
        Ok(store)
    }

    /// Deletes expired sessions, codes and limiter state (TTL for the embedded store).
    pub fn prune(&self, now: Timestamp) -> StoreResult<usize> {
        self.transact(move |tx| {
            let mut dropped = 0;
            for prefix in ["session/", "code/", "rate/", "fail/"] {
                for key in keys_with_prefix(&tx.table, prefix)? {
                    let expires_at = tx
                        .get::<serde_json::Value>(&key)?
                        .and_then(|v| v.get("expires_at").and_then(|e| e.as_i64()))
                        .unwrap_or(0);
                    if expires_at <= now {
                        tx.delete(&key)?;
                        dropped += 1;
                    }
                }
            }
            Ok(dropped)
        })
    }

    /// Runs `f` in one write transaction; committed only if it returns `Ok`.
    fn transact<T>(&self, f: impl FnOnce(&mut Tx) -> StoreResult<T>) -> StoreResult<T> {
        let txn = self.db.begin_write().map_err(unavailable)?;
        let out = {
            let table = txn.open_table(ITEMS).map_err(unavailable)?;
            let mut tx = Tx { table };
            f(&mut tx)?
        };
        txn.commit().map_err(unavailable)?;
        Ok(out)
    }

    /// [`Self::transact`] on the blocking pool: a commit waits for the disk.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx) -> StoreResult<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.transact(f))
            .await
            .map_err(unavailable)?
    }

    /// A consistent snapshot read; never waits for writers.
    fn read<T: DeserializeOwned>(&self, key: &str) -> StoreResult<Option<T>> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(ITEMS).map_err(unavailable)?;
        get(&table, key)
    }

    fn read_prefix<T: DeserializeOwned>(&self, prefix: &str) -> StoreResult<Vec<T>> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(ITEMS).map_err(unavailable)?;
        keys_with_prefix(&table, prefix)?
            .iter()
            .filter_map(|k| get(&table, k).transpose())
            .collect()
    }
}

impl Store for EmbeddedStore {}

#[async_trait]
impl Accounts for EmbeddedStore {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let user = user.clone();
        self.write(move |tx| {
            let email = email_key(&user.email);
            if tx.get::<String>(&email)?.is_some() {
                return Err(StoreError::Taken(Unique::Email));
            }
            if let Some(phone) = &user.phone {
                if tx.get::<String>(&phone_key(phone))?.is_some() {
                    return Err(StoreError::Taken(Unique::Phone));
                }
                tx.put(&phone_key(phone), &user.id)?;
            }
            tx.put(&email, &user.id)?;
            tx.put(&user_key(&user.id), &user)
        })
        .await
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        self.read(&user_key(id))
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        match self.read::<String>(&email_key(email))? {
            Some(id) => self.read(&user_key(&id)),
            None => Ok(None),
        }
    }

    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>> {
        match self.read::<String>(&phone_key(phone))? {
            Some(id) => self.read(&user_key(&id)),
            None => Ok(None),
        }
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        self.read_prefix("user/")
    }

    async fn update_user(&self, id: &str, change: UserChange, now: Timestamp) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |tx| {
            let mut user = tx.user(&id)?;
            match change {
                UserChange::Email(email) => {
                    let (old, new) = (email_key(&user.email), email_key(&email));
                    if old != new {
                        tx.check_guard(&new, &id, Unique::Email)?;
                        tx.delete(&old)?;
                        tx.put(&new, &id)?;
                    }
                    user.email = email;
                }
                UserChange::Phone(phone) => {
                    if let Some(p) = &phone {
                        tx.check_guard(&phone_key(p), &id, Unique::Phone)?;
                    }
                    if let Some(old) = &user.phone {
                        tx.delete(&phone_key(old))?;
                    }
                    if let Some(p) = &phone {
                        tx.put(&phone_key(p), &id)?;
                    }
                    user.phone = phone;
                }
                UserChange::Name(name) => user.name = name,
                UserChange::Avatar(avatar) => user.avatar = avatar,
                UserChange::Password(hash) => user.password = hash,
                UserChange::Totp(totp) => user.totp = totp,
                UserChange::Lark(lark) => user.lark = lark,
                UserChange::Active(active) => user.active = active,
            }
            user.updated_at = now;
            tx.put(&user_key(&id), &user)
        })
        .await
    }

    async fn advance_totp(&self, user_id: &str, step: u64) -> StoreResult<bool> {
        let id = user_id.to_string();
        self.write(move |tx| {
            let mut user = tx.user(&id)?;
            match user.totp.as_mut() {
                Some(totp) if step > totp.last_step => {
                    totp.last_step = step;
                    tx.put(&user_key(&id), &user)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await
    }
}

#[async_trait]
impl Lockouts for EmbeddedStore {
    async fn record_failure(
        &self,
        key: &FailureKey,
        backoff: &Backoff,
        now: Timestamp,
    ) -> StoreResult<Lockout> {
        let (key, backoff) = (key.clone(), *backoff);
        self.write(move |tx| match key {
            FailureKey::User(id) => {
                let mut user = tx.user(&id)?;
                let current = user.lockout();
                let next = backoff.after_failure(current, now);
                (user.failures, user.locked_until) = (next.failures, next.locked_until);
                tx.put(&user_key(&id), &user)?;
                Ok(next)
            }
            FailureKey::Unknown(identifier) => {
                let key = fail_key(&identifier);
                let current = live(tx.get::<Failures>(&key)?, now)
                    .map(|f| f.lockout)
                    .unwrap_or_default();
                let lockout = backoff.after_failure(current, now);
                let expires_at = lockout.locked_until.max(now) + UNKNOWN_FAILURE_MEMORY;
                tx.put(
                    &key,
                    &Failures {
                        lockout,
                        expires_at,
                    },
                )?;
                Ok(lockout)
            }
        })
        .await
    }

    async fn unknown_lockout(&self, identifier: &str, now: Timestamp) -> StoreResult<Lockout> {
        Ok(live(self.read::<Failures>(&fail_key(identifier))?, now)
            .map(|f| f.lockout)
            .unwrap_or_default())
    }
}

#[async_trait]
impl Sessions for EmbeddedStore {
    async fn begin_session(&self, session: &Session, login: &LoginRecord) -> StoreResult<()> {
        let (session, login) = (session.clone(), login.clone());
        self.write(move |tx| {
            let mut user = tx.user(&session.user_id)?;
            user.sessions += 1;
            user.history = Some(login);
            user.failures = 0;
            user.locked_until = 0;
            tx.put(&user_key(&user.id), &user)?;
            tx.put(&session_key(&session.user_id, &session.id), &session)
        })
        .await
    }

    async fn session(
        &self,
        user_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Session>> {
        Ok(live(self.read(&session_key(user_id, id))?, now))
    }

    async fn renew_session(
        &self,
        user_id: &str,
        id: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let key = session_key(user_id, id);
        self.write(move |tx| {
            let Some(mut session) = live(tx.get::<Session>(&key)?, now) else {
                return Ok(false);
            };
            session.expires_at = session.expires_at.max(expires_at);
            tx.put(&key, &session)?;
            Ok(true)
        })
        .await
    }

    async fn end_session(&self, user_id: &str, id: &str) -> StoreResult<()> {
        let key = session_key(user_id, id);
        self.write(move |tx| tx.delete(&key)).await
    }

    async fn end_sessions(&self, user_id: &str, keep: Option<&str>) -> StoreResult<usize> {
        let prefix = session_prefix(user_id);
        let keep = keep.map(|k| session_key(user_id, k));
        self.write(move |tx| {
            let mut ended = 0;
            for key in keys_with_prefix(&tx.table, &prefix)? {
                if Some(&key) != keep.as_ref() {
                    tx.delete(&key)?;
                    ended += 1;
                }
            }
            Ok(ended)
        })
        .await
    }
}

#[async_trait]
impl Codes for EmbeddedStore {
    async fn put_code(&self, code: &Code) -> StoreResult<()> {
        let code = code.clone();
        self.write(move |tx| tx.put(&code_key(code.purpose, &code.subject), &code))
            .await
    }

    async fn redeem_code(
        &self,
        purpose: Purpose,
        subject: &str,
        digest: &str,
        max_attempts: u32,
        now: Timestamp,
    ) -> StoreResult<Redemption> {
        let key = code_key(purpose, subject);
        let digest = digest.to_string();
        self.write(move |tx| {
            let Some(mut code) = live(tx.get::<Code>(&key)?, now) else {
                tx.delete(&key)?;
                return Ok(Redemption::Rejected);
            };
            if constant_time_eq(code.digest.as_bytes(), digest.as_bytes()) {
                tx.delete(&key)?;
                return Ok(Redemption::Accepted(code));
            }
            code.attempts += 1;
            if code.attempts >= max_attempts {
                tx.delete(&key)?;
            } else {
                tx.put(&key, &code)?;
            }
            Ok(Redemption::Rejected)
        })
        .await
    }

    async fn drop_code(&self, purpose: Purpose, subject: &str) -> StoreResult<()> {
        let key = code_key(purpose, subject);
        self.write(move |tx| tx.delete(&key)).await
    }
}

#[async_trait]
impl Limits for EmbeddedStore {
    async fn hit(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Decision> {
        let (key, rule) = (rate_key(key), *rule);
        self.write(move |tx| {
            let state = live(tx.get::<Rate>(&key)?, now)
                .map(|r| r.state)
                .unwrap_or_default();
            if let Err(retry_after) = state.check(&rule, now) {
                return Ok(Decision::Refused { retry_after });
            }
            let state = state.hit(&rule, now);
            let expires_at = state.expires_at(&rule);
            tx.put(&key, &Rate { state, expires_at })?;
            Ok(Decision::Allowed)
        })
        .await
    }

    async fn peek(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Decision> {
        let state = live(self.read::<Rate>(&rate_key(key))?, now)
            .map(|r| r.state)
            .unwrap_or_default();
        Ok(match state.check(rule, now) {
            Ok(()) => Decision::Allowed,
            Err(retry_after) => Decision::Refused { retry_after },
        })
    }

    async fn unhit(&self, key: &str, now: Timestamp) -> StoreResult<()> {
        let key = rate_key(key);
        self.write(move |tx| {
            if let Some(mut rate) = live(tx.get::<Rate>(&key)?, now) {
                rate.state.count = rate.state.count.saturating_sub(1);
                rate.state.last = 0;
                tx.put(&key, &rate)?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

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
            failures: 0,
            locked_until: 0,
            created_at: 1,
            updated_at: 1,
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
                ip: String::new(),
                user_agent: String::new(),
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
            let login = LoginRecord {
                time: 0,
                ip: String::new(),
                user_agent: String::new(),
                method: crate::model::LoginMethod::Password,
            };
            store.begin_session(&session, &login).await.unwrap();
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
        assert_eq!(store.peek("k", &rule, 20).await.unwrap(), Decision::Allowed);
        assert_eq!(store.hit("k", &rule, 20).await.unwrap(), Decision::Allowed);
    }
}
