//! Sessions: items beside the profile under `USER#<id>`, sort key
//! `SESSION#<key>`, where the key starts with the sign-in time
//! ([`crate::sessions`]): one descending Query reads a user's newest sessions.
//! Pending refresh codes live on the session item, so issuing and spending
//! them is one conditional write each.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, Update,
};

use super::accounts::at_version;
use super::guesses::Committed;
use super::items::{
    from_item, n, s, session_key, session_sk, take, to_item, to_value, user_key, user_pk,
};
use super::{ConditionalResult, DynamoStore, Table, Write, failed};
use crate::clock::Timestamp;
use crate::model::{LoginRecord, RefreshCodes, RefreshIssue, RefreshRedemption, Session, User};
use crate::sessions::{PENDING_REFRESH_CODES, READ_AT_MOST};
use crate::store::records::{live, newest_first};
use crate::store::{Sessions, Settle, StoreError, StoreResult};

/// Writes an issue may take when its view of the pending codes was stale.
const ISSUE_TRIES: usize = 4;

/// A live session's condition.
const ALIVE: &str = "attribute_exists(pk) AND expires_at > :now";

/// A Query of a user's sessions: their partition, the sessions' sort-key prefix.
fn sessions_of(t: Table<'_>, user_id: &str) -> QueryFluentBuilder {
    t.client
        .query()
        .table_name(t.name)
        .key_condition_expression("pk = :pk AND begins_with(sk, :s)")
        .expression_attribute_values(":pk", s(user_pk(user_id)))
        .expression_attribute_values(":s", s(session_sk("")))
        .consistent_read(true)
}

/// The paths of `refresh_codes` entries to `REMOVE`, each named `#x<i>` in `update`.
fn remove_codes(
    update: UpdateItemFluentBuilder,
    digests: &[String],
) -> (UpdateItemFluentBuilder, Vec<String>) {
    let mut paths = vec![];
    let update = digests
        .iter()
        .enumerate()
        .fold(update, |update, (i, digest)| {
            let name = format!("#x{i}");
            paths.push(format!("refresh_codes.{name}"));
            update.expression_attribute_names(name, digest)
        });
    (update, paths)
}

/// The write that adds `digest` to the pending codes as `view` shows them,
/// granting one try (and the allowance with the first code):
/// - an older session without the map gets one, if it still has none;
/// - otherwise the code goes in on the condition that fewer than the cap are
///   stored, and the expired entries the view shows go unconditionally.
///
/// Only this write adds entries, always under that condition, so the map
/// never holds more than the cap, however many tabs race.
fn issue(
    update: UpdateItemFluentBuilder,
    view: &RefreshCodes,
    digest: &str,
    expires_at: Timestamp,
    allowance: u32,
    now: Timestamp,
) -> UpdateItemFluentBuilder {
    let credit = "refresh_limit = if_not_exists(refresh_limit, :allowance) + :one, \
        refresh_tries = if_not_exists(refresh_tries, :zero)";
    let update = update
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":allowance", n(allowance))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":zero", n(0))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    if view.pending.is_none() {
        let codes = HashMap::from([(digest.to_string(), n(expires_at))]);
        return update
            .update_expression(format!("SET refresh_codes = :codes, {credit}"))
            .condition_expression(format!("{ALIVE} AND attribute_not_exists(refresh_codes)"))
            .expression_attribute_values(":codes", AttributeValue::M(codes));
    }
    let (update, stale) = remove_codes(update, &view.expired(now, &[digest.to_string()]));
    let mut expression = format!("SET refresh_codes.#new = :expires, {credit}");
    if !stale.is_empty() {
        expression += &format!(" REMOVE {}", stale.join(", "));
    }
    update
        .update_expression(expression)
        .condition_expression(format!("{ALIVE} AND size(refresh_codes) < :cap"))
        .expression_attribute_names("#new", digest)
        .expression_attribute_values(":expires", n(expires_at))
        .expression_attribute_values(":cap", n(PENDING_REFRESH_CODES))
}

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
        // The account as the login read it: still active, at the credential
        // version the session carries (no reset, password change or disable
        // landed since); and the TOTP step not used yet.
        let (at_version, version) = at_version(session.cred_version);
        let valid = format!("attribute_exists(pk) AND active = :active AND {at_version}");
        let (set, condition) = match settle.totp_step {
            Some(_) => (
                "ADD sessions :one SET history = :h, totp.last_step = :s",
                format!("{valid} AND totp.last_step < :s"),
            ),
            None => ("ADD sessions :one SET history = :h", valid),
        };
        let user = Update::builder()
            .set_key(Some(user_key(&session.user_id)))
            .update_expression(set)
            .condition_expression(condition)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":active", AttributeValue::Bool(true))
            .expression_attribute_values(":cv", version)
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
            // The account changed (or went) since the login read it, or the
            // TOTP step was used meanwhile.
            Committed::Refused(c) if failed(&c, 1) => Ok(false),
            Committed::Refused(c) => Err(StoreError::unavailable(c)),
        }
    }

    /// One transaction: the session's `auth_time`, the TOTP step (if one was
    /// used), and what the attempt gives back.
    async fn reauthenticate(
        &self,
        session: &Session,
        settle: &Settle,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut writes = vec![Write::Update(
            Update::builder()
                .set_key(Some(session_key(&session.user_id, &session.id)))
                .update_expression("SET auth_time = :now")
                .condition_expression(ALIVE)
                .expression_attribute_values(":now", n(now)),
        )];
        if let Some(step) = settle.totp_step {
            writes.push(Write::Update(
                Update::builder()
                    .set_key(Some(user_key(&session.user_id)))
                    .update_expression("SET totp.last_step = :s")
                    .condition_expression("totp.last_step < :s")
                    .expression_attribute_values(":s", n(step)),
            ));
        }
        match self.commit(writes, settle).await? {
            Committed::Done => Ok(true),
            // The session ended, or the step was used, meanwhile.
            Committed::Lost | Committed::Refused(_) => Ok(false),
        }
    }

    /// One BatchGetItem of the session and the profile, consistent reads.
    async fn session_and_user(
        &self,
        user_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<(Option<Session>, Option<User>)> {
        let (session, user) = (session_key(user_id, id), user_key(user_id));
        let mut items = self.get_many(vec![session.clone(), user.clone()]).await?;
        let session = take(&mut items, &session).map(from_item).transpose()?;
        let user = take(&mut items, &user).map(from_item).transpose()?;
        Ok((live(session, now), user))
    }

    async fn session(
        &self,
        user_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Session>> {
        Ok(live(self.get(session_key(user_id, id)).await?, now))
    }

    /// One Query, newest keys first, at most [`READ_AT_MOST`] items: no Scan,
    /// no second page.
    async fn sessions(&self, user_id: &str, now: Timestamp) -> StoreResult<Vec<Session>> {
        let out = self
            .send(|t| {
                sessions_of(t, user_id)
                    .scan_index_forward(false)
                    .limit(READ_AT_MOST as i32)
                    .send()
            })
            .await?;
        let read = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<StoreResult<Vec<Session>>>()?;
        Ok(newest_first(read, now))
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
                    .update_expression("SET expires_at = :e, last_seen = :now")
                    .condition_expression(format!("{ALIVE} AND expires_at < :e"))
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

    /// One conditional Delete: the key is under the user's own partition, so
    /// another user's session id finds nothing.
    async fn end_live_session(&self, user_id: &str, id: &str, now: Timestamp) -> StoreResult<bool> {
        let ended = self
            .send(|t| {
                t.delete(session_key(user_id, id))
                    .condition_expression(ALIVE)
                    .expression_attribute_values(":now", n(now))
                    .send()
            })
            .await
            .conditional()?;
        Ok(ended.is_ok())
    }

    /// One query for the user's session keys, then batch deletes of 25.
    async fn end_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<usize> {
        let mut items = vec![];
        let mut start = None;
        loop {
            let out = self
                .send(|t| {
                    sessions_of(t, user_id)
                        .projection_expression("pk, sk, expires_at")
                        .set_exclusive_start_key(start)
                        .send()
                })
                .await?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let keep = keep.map(|k| s(session_sk(k)));
        items.retain(|i| i.get("sk") != keep.as_ref());
        let ended = items
            .iter()
            .filter(|i| {
                i.get("expires_at")
                    .and_then(|e| e.as_n().ok())
                    .and_then(|e| e.parse::<Timestamp>().ok())
                    .is_some_and(|e| e > now)
            })
            .count();
        for item in &mut items {
            item.remove("expires_at");
        }
        self.delete_all(&items).await?;
        Ok(ended)
    }

    /// One conditional Update in the common case. A refused write returns the
    /// item as it is, and the next try works from that: a full map of live
    /// codes is refused; one full of expired entries is pruned first.
    async fn add_refresh_code(
        &self,
        seen: &Session,
        digest: &str,
        expires_at: Timestamp,
        allowance: u32,
        now: Timestamp,
    ) -> StoreResult<RefreshIssue> {
        let key = session_key(&seen.user_id, &seen.id);
        let cap = PENDING_REFRESH_CODES;
        let mut view = seen.refresh.clone();
        for _ in 0..ISSUE_TRIES {
            if let Err(retry_after) = view.room(now, cap) {
                return Ok(RefreshIssue::Full { retry_after });
            }
            if view.stored() >= cap {
                // Expired entries fill the map: removing them only shrinks it.
                let expired = view.expired(now, &[]);
                let pruned = self
                    .send(|t| {
                        let (update, stale) = remove_codes(t.update(key.clone()), &expired);
                        update
                            .update_expression(format!("REMOVE {}", stale.join(", ")))
                            .condition_expression(ALIVE)
                            .expression_attribute_values(":now", n(now))
                            .return_values(ReturnValue::AllNew)
                            .send()
                    })
                    .await
                    .conditional()?;
                let Ok(out) = pruned else {
                    return Ok(RefreshIssue::Ended);
                };
                view = from_item::<Session>(out.attributes.unwrap_or_default())?.refresh;
                continue;
            }
            let added = self
                .send(|t| {
                    issue(
                        t.update(key.clone()),
                        &view,
                        digest,
                        expires_at,
                        allowance,
                        now,
                    )
                    .send()
                })
                .await
                .conditional()?;
            match added {
                Ok(_) => return Ok(RefreshIssue::Added),
                Err(None) => return Ok(RefreshIssue::Ended),
                Err(Some(item)) => match live(Some(from_item::<Session>(item)?), now) {
                    Some(current) => view = current.refresh,
                    None => return Ok(RefreshIssue::Ended),
                },
            }
        }
        Err(StoreError::unavailable(
            "the pending refresh codes kept changing; try again",
        ))
    }

    /// One Update that takes the try (`refresh_tries < refresh_limit`, else
    /// refused untried) and removes the entries of every presented digest (one
    /// per server key in force), returning the item as it was: the code was
    /// right if one of its entries was there and live. Of concurrent exchanges
    /// of one code, only the first sees its entry.
    async fn redeem_refresh_code(
        &self,
        seen: &Session,
        digests: &[String],
        now: Timestamp,
    ) -> StoreResult<Option<RefreshRedemption>> {
        let key = session_key(&seen.user_id, &seen.id);
        let removed: Vec<String> = digests
            .iter()
            .cloned()
            .chain(seen.refresh.expired(now, digests))
            .collect();
        let tried = self
            .send(|t| {
                let update = t
                    .update(key)
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":now", n(now))
                    .condition_expression(format!("{ALIVE} AND refresh_tries < refresh_limit"))
                    .return_values(ReturnValue::AllOld)
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                let (update, paths) = remove_codes(update, &removed);
                update
                    .update_expression(format!(
                        "SET refresh_tries = refresh_tries + :one REMOVE {}",
                        paths.join(", ")
                    ))
                    .send()
            })
            .await
            .conditional()?;
        let outcome = match tried {
            Ok(out) => {
                let before: Session = from_item(out.attributes.unwrap_or_default())?;
                if digests.iter().any(|d| before.refresh.is_live(d, now)) {
                    RefreshRedemption::Accepted
                } else {
                    RefreshRedemption::Rejected
                }
            }
            Err(None) => return Ok(None),
            Err(Some(item)) => match live(Some(from_item::<Session>(item)?), now) {
                // No code was ever issued: nothing to try.
                Some(s) if s.refresh.limit.is_none() => RefreshRedemption::Rejected,
                Some(_) => RefreshRedemption::Refused,
                None => return Ok(None),
            },
        };
        Ok(Some(outcome))
    }
}
