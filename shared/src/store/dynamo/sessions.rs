//! Sessions: items beside the profile under `USER#<id>`, so one query finds them all.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, Put, Update, WriteRequest};

use super::items::{n, s, session_key, session_sk, to_item, to_value, user_key, user_pk};
use super::{ConditionalResult, DynamoStore, Write, failed};
use crate::clock::Timestamp;
use crate::model::{LoginRecord, Session};
use crate::store::records::live;
use crate::store::{Sessions, StoreError, StoreResult};

/// How many deletes one `BatchWriteItem` takes, and how often its leftovers are retried.
const BATCH: usize = 25;
const BATCH_TRIES: usize = 5;

#[async_trait]
impl Sessions for DynamoStore {
    async fn begin_session(&self, session: &Session, login: &LoginRecord) -> StoreResult<()> {
        let item = to_item(session_key(&session.user_id, &session.id), session)?;
        let user = Update::builder()
            .set_key(Some(user_key(&session.user_id)))
            .update_expression(
                "ADD sessions :one SET history = :h, failures = :zero, locked_until = :zero",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":h", to_value(login)?);
        let writes = vec![
            Write::Put(Put::builder().set_item(Some(item))),
            Write::Update(user),
        ];
        match self.transact(writes).await? {
            Ok(()) => Ok(()),
            Err(c) if failed(&c, 1) => Err(StoreError::NoSuchUser),
            Err(c) => Err(StoreError::unavailable(c)),
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
        let mut keys = vec![];
        let mut start = None;
        loop {
            let out = self
                .send(|t| {
                    t.client
                        .query()
                        .table_name(t.name)
                        .key_condition_expression("pk = :pk AND begins_with(sk, :s)")
                        .expression_attribute_values(":pk", s(user_pk(user_id)))
                        .expression_attribute_values(":s", s(session_sk("")))
                        .projection_expression("pk, sk")
                        .consistent_read(true)
                        .set_exclusive_start_key(start)
                        .send()
                })
                .await?;
            keys.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let keep = keep.map(|k| s(session_sk(k)));
        keys.retain(|k| k.get("sk") != keep.as_ref());
        let ended = keys.len();
        for chunk in keys.chunks(BATCH) {
            let mut requests = chunk
                .iter()
                .map(|k| {
                    let delete = DeleteRequest::builder().set_key(Some(k.clone())).build()?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<StoreResult<Vec<_>>>()?;
            for _ in 0..BATCH_TRIES {
                let out = self
                    .send(|t| {
                        t.client
                            .batch_write_item()
                            .request_items(t.name, requests)
                            .send()
                    })
                    .await?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&*self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
            }
            if !requests.is_empty() {
                return Err(StoreError::unavailable(
                    "could not end every session; try again",
                ));
            }
        }
        Ok(ended)
    }
}
