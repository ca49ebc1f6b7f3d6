//! The server keys and their rotation. The current key signs and issues
//! everything new; a previous key (after a rotation) and a next one (before it)
//! are still accepted, so a rotation signs no one out. Tokens name their key
//! (`kid`); XSRF tokens and code digests are checked under every accepted key.
//!
//! Locally the keys come from `KEY` and `KEY_PREVIOUS`; in AWS from one Secrets
//! Manager secret (see [`KeyRing::from_secret`] for its JSON), read at cold
//! start and again when [`ServerKeys::refresh`] finds it due.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::crypto::{Keys, constant_time_eq, hex, hmac};
use crate::secret::Secret;

/// The shortest key accepted from a secret, or from `KEY` in release mode.
pub const MIN_KEY_BYTES: usize = 32;

/// After a failed re-read, the keys held are kept and the secret is tried again this much later.
pub const RETRY_AFTER_FAILURE: i64 = 30;

/// Why keys could not be had. Never carries key material.
#[derive(Debug, Clone, thiserror::Error)]
#[error("server key: {0}")]
pub struct KeyError(pub String);

/// One server key: its id (public: it travels in JWT headers) and its bytes.
#[derive(Clone)]
pub struct ServerKey {
    pub id: String,
    pub master: Secret<Vec<u8>>,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerKey({}, [redacted])", self.id)
    }
}

impl ServerKey {
    /// A key under `id`, or under the id derived from its bytes when none is given.
    pub fn new(id: Option<&str>, master: Vec<u8>) -> Result<Self, KeyError> {
        let id = match id {
            Some(id) if valid_id(id) => id.to_string(),
            Some(_) => {
                return Err(KeyError(
                    "an id must be 1 to 64 letters, digits, '.', '_' or '-'".into(),
                ));
            }
            None => derived_id(&master),
        };
        Ok(Self {
            id,
            master: Secret::new(master),
        })
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A key's default id: 8 hex digits of a keyed digest of it. The same key gets
/// the same id wherever it is configured, so moving `KEY` to `KEY_PREVIOUS`
/// keeps the id its tokens carry; the digest reveals nothing of the key.
pub fn derived_id(master: &[u8]) -> String {
    hex(&hmac(master, &[b"planx/key-id"])[..4])
}

/// The keys in force at one time: the current one first, then the others accepted.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<(String, Keys)>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing(current {}", self.current_id())?;
        for id in self.accepted_ids() {
            write!(f, ", accepted {id}")?;
        }
        f.write_str(")")
    }
}

impl KeyRing {
    /// `current`, plus `others` accepted; ids must differ.
    pub fn new(current: ServerKey, others: Vec<ServerKey>) -> Result<Self, KeyError> {
        let mut keys: Vec<(String, Keys)> = vec![];
        for key in std::iter::once(current).chain(others) {
            if keys.iter().any(|(id, _)| *id == key.id) {
                return Err(KeyError(format!("two keys have the id {:?}", key.id)));
            }
            keys.push((key.id.clone(), Keys::derive(key.master.expose())));
        }
        Ok(Self { keys })
    }

    /// One key, under its derived id (tests, tools, a throwaway key).
    pub fn single(master: &[u8]) -> Self {
        let id = derived_id(master);
        Self {
            keys: vec![(id, Keys::derive(master))],
        }
    }

    /// The keys of the Secrets Manager secret's JSON:
    ///
    /// ```json
    /// {"id": "k2", "key": "...",                 // current: signs and issues
    ///  "previous": {"id": "k1", "key": "..."},   // optional: still accepted
    ///  "next": {"id": "k3", "key": "..."}}       // optional: already accepted
    /// ```
    ///
    /// The current key is at the top level so CloudFormation's
    /// `GenerateSecretString` (template `{"id":"k1"}`, generated key `key`) can
    /// create it. Each `key` is at least [`MIN_KEY_BYTES`] bytes (its UTF-8, as
    /// `KEY`); an `id` may be left out (then derived, as for `KEY`). Errors name
    /// the field, never a value.
    pub fn from_secret(text: &str) -> Result<Self, KeyError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            KeyError(format!(
                "the secret is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(top) = value else {
            return Err(KeyError(
                "the secret must be a JSON object: {\"id\", \"key\", \"previous\", \"next\"}"
                    .into(),
            ));
        };
        let current = entry(&top, "", &["id", "key", "previous", "next"])?;
        let mut others = vec![];
        for slot in ["previous", "next"] {
            match top.get(slot) {
                None | Some(Value::Null) => {}
                Some(Value::Object(inner)) => {
                    others.push(entry(inner, &format!("{slot}."), &["id", "key"])?)
                }
                Some(_) => {
                    return Err(KeyError(format!(
                        "`{slot}` must be an object {{\"id\", \"key\"}}"
                    )));
                }
            }
        }
        Self::new(current, others)
    }

    /// The id and subkeys everything new is issued under.
    pub fn current(&self) -> (&str, &Keys) {
        let (id, keys) = &self.keys[0];
        (id, keys)
    }

    pub fn current_id(&self) -> &str {
        &self.keys[0].0
    }

    /// The ids of the keys accepted besides the current one.
    pub fn accepted_ids(&self) -> impl Iterator<Item = &str> {
        self.keys[1..].iter().map(|(id, _)| id.as_str())
    }

    /// The subkeys of the key named `id`, if it is accepted.
    pub fn get(&self, id: &str) -> Option<&Keys> {
        self.keys
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, keys)| keys)
    }

    /// Every accepted key's subkeys, the current one first.
    pub fn all(&self) -> impl Iterator<Item = &Keys> {
        self.keys.iter().map(|(_, keys)| keys)
    }
}

/// One `{"id", "key"}` of the secret, at `prefix` (for messages).
fn entry(obj: &Map<String, Value>, prefix: &str, allowed: &[&str]) -> Result<ServerKey, KeyError> {
    if let Some(unknown) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(KeyError(format!(
            "unknown field `{prefix}{unknown}` in the secret (expected {})",
            allowed.join(", ")
        )));
    }
    let key = match obj.get("key") {
        Some(Value::String(key)) if key.len() >= MIN_KEY_BYTES => key.as_bytes().to_vec(),
        Some(Value::String(key)) => {
            return Err(KeyError(format!(
                "`{prefix}key` is {} bytes; at least {MIN_KEY_BYTES} are needed",
                key.len()
            )));
        }
        Some(_) => return Err(KeyError(format!("`{prefix}key` must be a string"))),
        None => return Err(KeyError(format!("`{prefix}key` is missing"))),
    };
    let id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.as_str()),
        Some(_) => return Err(KeyError(format!("`{prefix}id` must be a string"))),
    };
    ServerKey::new(id, key).map_err(|e| KeyError(format!("`{prefix}id`: {}", e.0)))
}

/// Where keys are re-read from (the Secrets Manager secret, in AWS).
#[async_trait]
pub trait LoadKeys: Send + Sync {
    async fn load(&self) -> Result<KeyRing, KeyError>;
}

struct Reload {
    source: Arc<dyn LoadKeys>,
    /// Seconds between reads.
    every: i64,
    /// When the next read is due.
    due: std::sync::atomic::AtomicI64,
    /// One read at a time; the others wait for it rather than read again.
    reading: tokio::sync::Mutex<()>,
}

/// The keys in use, shared by every handler: a snapshot that a reload swaps.
#[derive(Clone)]
pub struct ServerKeys(Arc<Live>);

struct Live {
    ring: RwLock<Arc<KeyRing>>,
    reload: Option<Reload>,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.ring().fmt(f)
    }
}

impl ServerKeys {
    /// Keys that never change (`KEY` and `KEY_PREVIOUS`, tests).
    pub fn fixed(ring: KeyRing) -> Self {
        Self(Arc::new(Live {
            ring: RwLock::new(Arc::new(ring)),
            reload: None,
        }))
    }

    /// Reads the keys from `source` now (an error here stops the start) and
    /// again every `every` seconds from `now`, through [`refresh`](Self::refresh).
    pub async fn load(
        source: Arc<dyn LoadKeys>,
        every: i64,
        now: Timestamp,
    ) -> Result<Self, KeyError> {
        let ring = source.load().await?;
        tracing::info!(keys = ?ring, "server keys loaded");
        Ok(Self(Arc::new(Live {
            ring: RwLock::new(Arc::new(ring)),
            reload: Some(Reload {
                source,
                every,
                due: (now + every).into(),
                reading: tokio::sync::Mutex::new(()),
            }),
        })))
    }

    /// The keys in force now.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.0
            .ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Puts `ring` in force (a reload; tests that rotate).
    pub fn replace(&self, ring: KeyRing) {
        *self
            .0
            .ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(ring);
    }

    /// Re-reads the keys if a read is due. A failed read keeps the keys held
    /// (logged, without key material) and is retried [`RETRY_AFTER_FAILURE`]
    /// seconds later, so an unreadable secret never takes a warm function down.
    pub async fn refresh(&self, now: Timestamp) {
        use std::sync::atomic::Ordering::SeqCst;
        let Some(reload) = &self.0.reload else {
            return;
        };
        if now < reload.due.load(SeqCst) {
            return;
        }
        let _reading = reload.reading.lock().await;
        if now < reload.due.load(SeqCst) {
            return; // another request read it meanwhile
        }
        match reload.source.load().await {
            Ok(ring) => {
                let before = self.ring();
                let changed = before.current_id() != ring.current_id()
                    || !before.accepted_ids().eq(ring.accepted_ids());
                if changed {
                    tracing::info!(keys = ?ring, "server keys changed");
                }
                self.replace(ring);
                reload.due.store(now + reload.every, SeqCst);
            }
            Err(e) => {
                tracing::error!(error = %e, "server keys not re-read; keeping the ones held");
                reload.due.store(now + RETRY_AFTER_FAILURE, SeqCst);
            }
        }
    }

    /// The XSRF token that matches a salt, under the current key: what the
    /// page must echo in `X-XSRF-TOKEN`.
    pub fn xsrf_token(&self, salt: &str) -> String {
        self.ring().current().1.xsrf_token(salt)
    }

    /// Whether `sent` is the XSRF token of `salt` under any accepted key.
    pub fn xsrf_matches(&self, salt: &str, sent: &str) -> bool {
        self.ring()
            .all()
            .any(|keys| constant_time_eq(keys.xsrf_token(salt).as_bytes(), sent.as_bytes()))
    }

    /// The digest a new code is stored under (the current key).
    pub fn code_digest(&self, purpose: &str, subject: &str, code: &str) -> String {
        self.ring().current().1.code_digest(purpose, subject, code)
    }

    /// The digests `code` may have been stored under, one per accepted key,
    /// the current one first.
    pub fn code_digests(&self, purpose: &str, subject: &str, code: &str) -> Vec<String> {
        self.ring()
            .all()
            .map(|keys| keys.code_digest(purpose, subject, code))
            .collect()
    }

    /// The MAC of a device cookie's fields, under the current key.
    pub fn device_mac(&self, parts: &[&[u8]]) -> String {
        self.ring().current().1.device_mac(parts)
    }

    /// Whether `mac` is the MAC of a device cookie's fields under any accepted key.
    pub fn device_mac_matches(&self, parts: &[&[u8]], mac: &str) -> bool {
        self.ring()
            .all()
            .any(|keys| constant_time_eq(keys.device_mac(parts).as_bytes(), mac.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const OLD: &str = "old-key-old-key-old-key-old-key-old!";
    const NEW: &str = "new-key-new-key-new-key-new-key-new!";

    fn key(id: &str, master: &str) -> ServerKey {
        ServerKey::new(Some(id), master.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn the_secret_json_with_every_slot() {
        let ring = KeyRing::from_secret(&format!(
            r#"{{"id":"k2","key":"{NEW}","previous":{{"id":"k1","key":"{OLD}"}},"next":{{"key":"{}"}}}}"#,
            "n".repeat(40)
        ))
        .unwrap();
        assert_eq!(ring.current_id(), "k2");
        let accepted: Vec<&str> = ring.accepted_ids().collect();
        assert_eq!(
            accepted,
            ["k1", derived_id("n".repeat(40).as_bytes()).as_str()]
        );
        let current = Keys::derive(NEW.as_bytes());
        assert_eq!(ring.current().1.xsrf_token("s"), current.xsrf_token("s"));
        assert_eq!(
            ring.get("k1").unwrap().xsrf_token("s"),
            Keys::derive(OLD.as_bytes()).xsrf_token("s")
        );
    }

    #[test]
    fn the_generated_secret_is_a_ring_of_one() {
        // What GenerateSecretString makes from the template's {"id":"k1"}.
        let ring =
            KeyRing::from_secret(&format!(r#"{{"id":"k1","key":"{}"}}"#, "A".repeat(64))).unwrap();
        assert_eq!(ring.current_id(), "k1");
        assert_eq!(ring.accepted_ids().count(), 0);
        let null_slots = format!(r#"{{"key":"{NEW}","previous":null}}"#);
        let ring = KeyRing::from_secret(&null_slots).unwrap();
        assert_eq!(ring.current_id(), derived_id(NEW.as_bytes()));
    }

    #[test]
    fn a_bad_secret_is_named_without_its_values() {
        let cases = [
            ("", "not JSON (line 1, column 0)"),
            (r#"["x"]"#, "must be a JSON object"),
            (r#"{"id":"k1"}"#, "`key` is missing"),
            (
                r#"{"key":"short-secret-value"}"#,
                "`key` is 18 bytes; at least 32",
            ),
            (r#"{"key":12345}"#, "`key` must be a string"),
            (
                &format!(r#"{{"key":"{NEW}","prevoius":{{}}}}"#),
                "unknown field `prevoius`",
            ),
            (
                &format!(r#"{{"key":"{NEW}","previous":"{OLD}"}}"#),
                "`previous` must be an object",
            ),
            (
                &format!(r#"{{"key":"{NEW}","previous":{{"id":"k1","key":"short-old-value"}}}}"#),
                "`previous.key` is 15 bytes",
            ),
            (
                &format!(r#"{{"id":"a b","key":"{NEW}"}}"#),
                "`id`: an id must be 1 to 64",
            ),
            (
                &format!(r#"{{"id":"k1","key":"{NEW}","previous":{{"id":"k1","key":"{OLD}"}}}}"#),
                "two keys have the id \"k1\"",
            ),
        ];
        for (json, needle) in cases {
            let e = KeyRing::from_secret(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
            for secret in [NEW, OLD, "short-secret-value", "short-old-value"] {
                assert!(!e.contains(secret), "{json}: the message shows a key: {e}");
            }
        }
    }

    #[test]
    fn derived_ids_are_stable_and_differ() {
        assert_eq!(derived_id(OLD.as_bytes()), derived_id(OLD.as_bytes()));
        assert_ne!(derived_id(OLD.as_bytes()), derived_id(NEW.as_bytes()));
        assert_eq!(derived_id(OLD.as_bytes()).len(), 8);
        assert_eq!(
            KeyRing::single(OLD.as_bytes()).current_id(),
            derived_id(OLD.as_bytes())
        );
    }

    #[test]
    fn issues_under_the_current_key_and_accepts_every_one() {
        let keys = ServerKeys::fixed(KeyRing::single(OLD.as_bytes()));
        let old_xsrf = keys.xsrf_token("salt");
        let old_digest = keys.code_digest("sms-login", "+1", "123456");
        keys.replace(KeyRing::new(key("new", NEW), vec![key("old", OLD)]).unwrap());
        assert_ne!(
            keys.xsrf_token("salt"),
            old_xsrf,
            "new tokens use the new key"
        );
        assert!(keys.xsrf_matches("salt", &old_xsrf));
        assert!(keys.xsrf_matches("salt", &keys.xsrf_token("salt")));
        assert!(!keys.xsrf_matches("other", &old_xsrf));
        let digests = keys.code_digests("sms-login", "+1", "123456");
        assert_eq!(digests[0], keys.code_digest("sms-login", "+1", "123456"));
        assert_eq!(digests[1], old_digest);
        keys.replace(KeyRing::new(key("new", NEW), vec![]).unwrap());
        assert!(!keys.xsrf_matches("salt", &old_xsrf));
        assert_eq!(keys.code_digests("sms-login", "+1", "123456").len(), 1);
    }

    /// A source that hands out the rings it is given, counting reads.
    struct Script {
        rings: std::sync::Mutex<Vec<Result<KeyRing, KeyError>>>,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl LoadKeys for Script {
        async fn load(&self) -> Result<KeyRing, KeyError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.rings.lock().unwrap().remove(0)
        }
    }

    #[tokio::test]
    async fn reloads_when_due_and_keeps_its_keys_when_a_read_fails() {
        let source = Arc::new(Script {
            rings: std::sync::Mutex::new(vec![
                Ok(KeyRing::new(key("k1", OLD), vec![]).unwrap()),
                Err(KeyError("secret unreadable".into())),
                Ok(KeyRing::new(key("k2", NEW), vec![key("k1", OLD)]).unwrap()),
            ]),
            reads: AtomicUsize::new(0),
        });
        let keys = ServerKeys::load(source.clone(), 300, 1000).await.unwrap();
        assert_eq!(keys.ring().current_id(), "k1");
        keys.refresh(1299).await;
        assert_eq!(source.reads.load(Ordering::SeqCst), 1, "not due yet");
        keys.refresh(1300).await;
        assert_eq!(source.reads.load(Ordering::SeqCst), 2);
        assert_eq!(
            keys.ring().current_id(),
            "k1",
            "a failed read keeps the keys"
        );
        keys.refresh(1300 + RETRY_AFTER_FAILURE - 1).await;
        assert_eq!(source.reads.load(Ordering::SeqCst), 2, "retried later");
        keys.refresh(1300 + RETRY_AFTER_FAILURE).await;
        assert_eq!(keys.ring().current_id(), "k2");
        assert_eq!(keys.ring().accepted_ids().collect::<Vec<_>>(), ["k1"]);
    }

    #[tokio::test]
    async fn a_failed_first_read_stops_the_start() {
        let source = Arc::new(Script {
            rings: std::sync::Mutex::new(vec![Err(KeyError("no such secret".into()))]),
            reads: AtomicUsize::new(0),
        });
        let e = ServerKeys::load(source, 300, 0).await.unwrap_err();
        assert_eq!(e.to_string(), "server key: no such secret");
    }

    #[test]
    fn debug_shows_ids_only() {
        let ring = KeyRing::new(key("k2", NEW), vec![key("k1", OLD)]).unwrap();
        let shown = format!("{ring:?} {:?}", key("k1", OLD));
        assert_eq!(
            shown,
            "KeyRing(current k2, accepted k1) ServerKey(k1, [redacted])"
        );
    }
}
