//! Sessions: items beside the profile under `USER#<id>`, so one query finds them all.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, Update};

use super::guesses::Committed;
use super::items::{n, s, session_key, session_sk, to_item, to_value, user_key, user_pk};
use super::{ConditionalResult, DynamoStore, Write, failed};
use crate::clock::Timestamp;
use crate::model::{LoginRecord, Session};
use crate::store::records::live;
use crate::store::{Sessions, Settle, StoreError, StoreResult};

#[async_trait]
impl Sessions for DynamoStore {
    /// One transaction: the session, the account's counters and history (and
    /// the TOTP step, conditionally), and what the attempt gives back.
    async fn begin_session(
        &self,
        session: &Session,
        login: &LoginRecord,
        settle: &Settle,
    ) -> StoreResult<bool> {
        let item = to_item(session_key(&session.user_id, &session.id), session)?;
        let (set, condition) = match settle.totp_step {
            Some(_) => (
                "ADD sessions :one SET history = :h, totp.last_step = :s",
                "attribute_exists(pk) AND totp.last_step < :s",
            ),
            None => ("ADD sessions :one SET history = :h", "attribute_exists(pk)"),
        };
        let user = Update::builder()
            .set_key(Some(user_key(&session.user_id)))
            .update_expression(set)
            .condition_expression(condition)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":h", to_value(login)?);
        let user = match settle.totp_step {
            Some(step) => user.expression_attribute_values(":s", n(step)),
            None => user,
        };
        let writes = vec![
            Write::Put(Put::builder().set_item(Some(item))),
            Write::Update(user),
        ];
        match self.commit(writes, settle).await? {
            Committed::Done => Ok(true),
            Committed::Lost => Ok(false),
            // A TOTP step used meanwhile, or the account is gone.
            Committed::Refused(c) if failed(&c, 1) && settle.totp_step.is_some() => Ok(false),
            Committed::Refused(c) if failed(&c, 1) => Err(StoreError::NoSuchUser),
            Committed::Refused(c) => Err(StoreError::unavailable(c)),
        }
    }

    async fn session(
        &self,
        user_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Session>> {
        Ok(live(self.get(session_key(user_id, id)).await?, now))
    }

    async fn renew_session(
        &self,
        user_id: &str,
        id: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let renewed = self
            .send(|t| {
                t.update(session_key(user_id, id))
                    .update_expression("SET expires_at = :e")
                    .condition_expression(
                        "attribute_exists(pk) AND expires_at > :now AND expires_at < :e",
                    )
                    .expression_attribute_values(":e", n(expires_at))
                    .expression_attribute_values(":now", n(now))
                    .send()
            })
            .await
            .conditional()?;
        match renewed {
            Ok(_) => Ok(true),
            // Gone, expired, or already renewed further by a racing request.
            Err(_) => Ok(self.session(user_id, id, now).await?.is_some()),
        }
    }

    async fn end_session(&self, user_id: &str, id: &str) -> StoreResult<()> {
        self.delete(session_key(user_id, id)).await
    }

    /// One query for the user's session keys, then batch deletes of 25.
    async fn end_sessions(&self, user_id: &str, keep: Option<&str>) -> StoreResult<usize> {
        let mut keys = self.query_keys(user_pk(user_id), &session_sk("")).await?;
        let keep = keep.map(|k| s(session_sk(k)));
        keys.retain(|k| k.get("sk") != keep.as_ref());
        self.delete_all(&keys).await?;
        Ok(keys.len())
    }
}
