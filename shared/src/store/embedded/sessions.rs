//! Sessions: `session/<user>/<id>`, so a prefix scan finds a user's, in key
//! (sign-in time) order. Each operation is one write transaction.

use async_trait::async_trait;

use super::EmbeddedStore;
use super::items::{Tx, keys_with_prefix, session_key, session_prefix, user_key};
use crate::clock::Timestamp;
use crate::model::{LoginRecord, RefreshIssue, RefreshRedemption, Session, User};
use crate::sessions::{PENDING_REFRESH_CODES, READ_AT_MOST};
use crate::store::records::{live, newest_first};
use crate::store::{Sessions, Settle, StoreResult};

impl Tx<'_> {
    /// The live session under `key`, if any.
    fn live_session(&self, key: &str, now: Timestamp) -> StoreResult<Option<Session>> {
        Ok(live(self.get::<Session>(key)?, now))
    }
}

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
            let Some(mut user) = tx.get::<User>(&user_key(&session.user_id))? else {
                return Ok(false);
            };
            if !session.is_valid_for(&user) {
                return Ok(false);
            }
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

    async fn reauthenticate(
        &self,
        session: &Session,
        settle: &Settle,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (key, user_id, settle) = (
            session_key(&session.user_id, &session.id),
            session.user_id.clone(),
            settle.clone(),
        );
        self.write(move |tx| {
            let Some(mut session) = live(tx.get::<Session>(&key)?, now) else {
                return Ok(false);
            };
            if !tx.code_unspent(&settle)? {
                return Ok(false);
            }
            if let Some(step) = settle.totp_step {
                let mut user = tx.user(&user_id)?;
                match user.totp.as_mut() {
                    Some(totp) if step > totp.last_step => totp.last_step = step,
                    _ => return Ok(false),
                }
                tx.put(&user_key(&user_id), &user)?;
            }
            session.auth_time = Some(now);
            tx.put(&key, &session)?;
            tx.settle(&settle)?;
            Ok(true)
        })
        .await
    }

    /// One snapshot read of both.
    async fn session_and_user(
        &self,
        user_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<(Option<Session>, Option<User>)> {
        let (session, user) = self.read_two(&session_key(user_id, id), &user_key(user_id))?;
        Ok((live(session, now), user))
    }

    async fn session(
        &self,
        user_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Session>> {
        Ok(live(self.read(&session_key(user_id, id))?, now))
    }

    /// The newest keys first, as DynamoDB's descending query reads them.
    async fn sessions(&self, user_id: &str, now: Timestamp) -> StoreResult<Vec<Session>> {
        let read: Vec<Session> = self.read_prefix_newest(&session_prefix(user_id), READ_AT_MOST)?;
        Ok(newest_first(read, now))
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
            let Some(mut session) = tx.live_session(&key, now)? else {
                return Ok(false);
            };
            session.expires_at = session.expires_at.max(expires_at);
            session.last_seen = Some(now);
            tx.put(&key, &session)?;
            Ok(true)
        })
        .await
    }

    async fn end_session(&self, user_id: &str, id: &str) -> StoreResult<()> {
        let key = session_key(user_id, id);
        self.write(move |tx| tx.delete(&key)).await
    }

    async fn end_live_session(&self, user_id: &str, id: &str, now: Timestamp) -> StoreResult<bool> {
        let key = session_key(user_id, id);
        self.write(move |tx| {
            let ended = tx.live_session(&key, now)?.is_some();
            if ended {
                tx.delete(&key)?;
            }
            Ok(ended)
        })
        .await
    }

    async fn end_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<usize> {
        let prefix = session_prefix(user_id);
        let keep = keep.map(|k| session_key(user_id, k));
        self.write(move |tx| {
            let mut ended = 0;
            for key in keys_with_prefix(&tx.table, &prefix)? {
                if Some(&key) != keep.as_ref() {
                    ended += usize::from(tx.live_session(&key, now)?.is_some());
                    tx.delete(&key)?;
                }
            }
            Ok(ended)
        })
        .await
    }

    async fn add_refresh_code(
        &self,
        seen: &Session,
        digest: &str,
        expires_at: Timestamp,
        allowance: u32,
        now: Timestamp,
    ) -> StoreResult<RefreshIssue> {
        let key = session_key(&seen.user_id, &seen.id);
        let digest = digest.to_string();
        self.write(move |tx| {
            let Some(mut session) = tx.live_session(&key, now)? else {
                return Ok(RefreshIssue::Ended);
            };
            let cap = PENDING_REFRESH_CODES;
            let issued = session
                .refresh
                .issue(&digest, expires_at, now, cap, allowance);
            if issued == RefreshIssue::Added {
                tx.put(&key, &session)?;
            }
            Ok(issued)
        })
        .await
    }

    async fn redeem_refresh_code(
        &self,
        seen: &Session,
        digests: &[String],
        now: Timestamp,
    ) -> StoreResult<Option<RefreshRedemption>> {
        let key = session_key(&seen.user_id, &seen.id);
        let digests = digests.to_vec();
        self.write(move |tx| {
            let Some(mut session) = tx.live_session(&key, now)? else {
                return Ok(None);
            };
            let outcome = session.refresh.redeem(&digests, now);
            if outcome != RefreshRedemption::Refused {
                tx.put(&key, &session)?;
            }
            Ok(Some(outcome))
        })
        .await
    }
}
