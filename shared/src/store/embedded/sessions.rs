//! Sessions: `session/<user>/<id>`, so a prefix scan finds a user's.

use async_trait::async_trait;

use super::EmbeddedStore;
use super::items::{keys_with_prefix, session_key, session_prefix, user_key};
use crate::clock::Timestamp;
use crate::model::{LoginRecord, Session};
use crate::store::records::live;
use crate::store::{Sessions, Settle, StoreResult};

#[async_trait]
impl Sessions for EmbeddedStore {
    async fn begin_session(
        &self,
        session: &Session,
        login: &LoginRecord,
        settle: &Settle,
    ) -> StoreResult<bool> {
        let (session, login, settle) = (session.clone(), login.clone(), settle.clone());
        self.write(move |tx| {
            let mut user = tx.user(&session.user_id)?;
            if let Some(step) = settle.totp_step {
                match user.totp.as_mut() {
                    Some(totp) if step > totp.last_step => totp.last_step = step,
                    _ => return Ok(false),
                }
            }
            if !tx.code_unspent(&settle)? {
                return Ok(false);
            }
            user.sessions += 1;
            user.history = Some(login);
            tx.put(&user_key(&user.id), &user)?;
            tx.put(&session_key(&session.user_id, &session.id), &session)?;
            tx.settle(&settle)?;
            Ok(true)
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
