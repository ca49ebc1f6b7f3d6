//! Guessing buckets ([`crate::store::slots`]) on DynamoDB, by optimistic
//! concurrency: the app decides from the buckets' states as last read, and
//! one `TransactWriteItems` writes every new state on condition that each is
//! still at the version read. When a racing attempt got there first, the
//! cancellation carries the items as they now are (`ALL_OLD`), and the
//! decision is made again from them, without another read. No arithmetic
//! happens inside update expressions, so back-off and decay stay exact.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{
    CancellationReason, Delete, Put, ReturnValuesOnConditionCheckFailure, Update,
};

use super::items::{
    Guard, Item, bucket_key, code_key, email_key, from_item, limit_pk, n, phone_key, s, take,
    to_item, user_key,
};
use super::{DynamoStore, Write, failed, new_token};
use crate::clock::Timestamp;
use crate::model::{Code, User};
use crate::store::settle::Taken;
use crate::store::slots::{self, BucketKey, BucketRecord, BucketWrite, Refused, Seen};
use crate::store::{
    Attempt, Guesses, Lookup, Opened, Opening, Settle, Store, StoreError, StoreResult, UserChange,
};

/// How often an attempt decides again after racing attempts changed its buckets.
/// Past that, under contention that heavy, it is refused for a second.
const TAKE_TRIES: usize = 8;
/// How often a success's write is tried again after a refund whose window
/// rolled over is dropped, or a transaction conflict.
const COMMIT_TRIES: usize = 4;

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
const CONFLICT: &str = "TransactionConflict";

/// How a success's transaction ([`DynamoStore::commit`]) ended.
pub(super) enum Committed {
    Done,
    /// Its code was spent by a racing attempt: nothing was written.
    Lost,
    /// A condition of the caller's own writes failed: nothing was written.
    Refused(TransactionCanceledException),
}

/// What one write of a settle does, to read its cancellation reason.
enum Role {
    Clear,
    Refund(usize),
    Spend,
}

fn reason(c: &TransactionCanceledException, at: usize) -> Option<&CancellationReason> {
    c.cancellation_reasons().get(at)
}

fn code_of(r: Option<&CancellationReason>) -> &str {
    r.and_then(|r| r.code()).unwrap_or("None")
}

/// The writes that give back what `settle` lists and spend its code.
fn settle_writes(settle: &Settle) -> StoreResult<Vec<(Write, Role)>> {
    let mut writes = vec![];
    if let Some(key) = &settle.clear {
        let delete = Delete::builder().set_key(Some(bucket_key(key)));
        writes.push((Write::Delete(delete), Role::Clear));
    }
    for (i, (key, window_start)) in settle.refunds.iter().enumerate() {
        let refund = Update::builder()
            .set_key(Some(bucket_key(key)))
            .update_expression("SET #c = #c - :one, ver = ver + :one")
            .condition_expression("window_start = :ws AND #c > :zero")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":ws", n(*window_start));
        writes.push((Write::Update(refund), Role::Refund(i)));
    }
    if let Some(spend) = &settle.code {
        let delete = Delete::builder()
            .set_key(Some(code_key(spend.purpose, &spend.subject)))
            .condition_expression("digest = :d")
            .expression_attribute_values(":d", s(spend.digest.clone()));
        writes.push((Write::Delete(delete), Role::Spend));
    }
    Ok(writes)
}

/// A bucket's new record, written only if the bucket is still at the version seen.
fn bucket_put(w: &BucketWrite) -> StoreResult<Write> {
    let key = bucket_key(&w.key);
    let item = match &w.record {
        BucketRecord::Backoff(b) => to_item(key, b)?,
        BucketRecord::Window(b) => to_item(key, b)?,
    };
    let put = Put::builder()
        .set_item(Some(item))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    Ok(Write::Put(match w.seen {
        0 => put.condition_expression("attribute_not_exists(pk)"),
        ver => put
            .condition_expression("ver = :v")
            .expression_attribute_values(":v", n(ver)),
    }))
}

/// One more try of `code`, if it is still the one seen, alive, with tries left.
fn code_try(code: &Code, max: u32, now: Timestamp) -> Write {
    Write::Update(
        Update::builder()
            .set_key(Some(code_key(code.purpose, &code.subject)))
            .update_expression("SET attempts = attempts + :one")
            .condition_expression("digest = :d AND attempts < :max AND expires_at > :now")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":d", s(code.digest.clone()))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld),
    )
}

/// Records `item` (or its absence) as the state of bucket `key` in `seen`.
fn see(seen: &mut Seen, key: &BucketKey, item: Option<Item>) -> StoreResult<()> {
    match key {
        BucketKey::Backoff { .. } => match item {
            Some(i) => drop(seen.backoffs.insert(key.clone(), from_item(i)?)),
            None => drop(seen.backoffs.remove(key)),
        },
        BucketKey::Anonymous(_) | BucketKey::Address(_) => match item {
            Some(i) => drop(seen.windows.insert(key.clone(), from_item(i)?)),
            None => drop(seen.windows.remove(key)),
        },
    }
    Ok(())
}

impl DynamoStore {
    /// Writes `writes` and what `settle` gives back in one transaction. A
    /// refund whose window rolled over meanwhile is dropped and the rest
    /// written again; so is the whole after a transaction conflict.
    pub(super) async fn commit(
        &self,
        writes: Vec<Write>,
        settle: &Settle,
    ) -> StoreResult<Committed> {
        let mut settle = settle.clone();
        let own = writes.len();
        for _ in 0..COMMIT_TRIES {
            let extra = settle_writes(&settle)?;
            let all = writes
                .iter()
                .cloned()
                .chain(extra.iter().map(|(w, _)| w.clone()))
                .collect();
            let Err(c) = self.transact(all).await? else {
                return Ok(Committed::Done);
            };
            if (0..own).any(|at| failed(&c, at)) {
                return Ok(Committed::Refused(c));
            }
            let mut rolled_over = vec![];
            let mut conflict = (0..own).any(|at| code_of(reason(&c, at)) == CONFLICT);
            for (at, (_, role)) in extra.iter().enumerate() {
                match (code_of(reason(&c, own + at)), role) {
                    (CONDITION_FAILED, Role::Spend) => return Ok(Committed::Lost),
                    (CONDITION_FAILED, Role::Refund(i)) => rolled_over.push(*i),
                    (CONFLICT, _) => conflict = true,
                    (CONDITION_FAILED, Role::Clear) | (_, _) => {}
                }
            }
            if rolled_over.is_empty() && !conflict {
                return Err(StoreError::unavailable(c));
            }
            for i in rolled_over.into_iter().rev() {
                settle.refunds.remove(i);
            }
        }
        Err(StoreError::unavailable(
            "the write kept conflicting with others; try again",
        ))
    }
}

#[async_trait]
impl Guesses for DynamoStore {
    /// One transaction in the common case: every bucket put on condition of
    /// its version, and the code's try on condition of its digest, tries left
    /// and expiry. Each write carries the attempt's token (`op`), so a
    /// transaction the SDK re-sent after it had landed is recognised as done
    /// rather than counted twice (DynamoDB also dedupes it by the token).
    async fn take_slots(
        &self,
        attempt: &Attempt,
        mut seen: Seen,
        now: Timestamp,
    ) -> StoreResult<Result<Taken, Refused>> {
        let max = attempt.rules.code_attempts;
        for _ in 0..TAKE_TRIES {
            let op = new_token();
            let plan = match slots::plan(attempt, &seen, &op, now) {
                Ok(plan) => plan,
                Err(refused) => return Ok(Err(refused)),
            };
            let code = seen.countable_code(max, now).cloned();
            let mut writes = plan
                .writes
                .iter()
                .map(bucket_put)
                .collect::<StoreResult<Vec<_>>>()?;
            if let Some(code) = &code {
                writes.push(code_try(code, max, now));
            }
            let taken = |code: Option<Code>, settle| Taken {
                code: code.map(|mut c| {
                    c.attempts += 1;
                    c
                }),
                settle,
            };
            let Err(c) = self.transact_as(writes, &op).await? else {
                return Ok(Ok(taken(code, plan.settle)));
            };
            let mut landed = false;
            for (at, w) in plan.writes.iter().enumerate() {
                let r = reason(&c, at);
                match code_of(r) {
                    CONDITION_FAILED => {
                        let item = r.and_then(|r| r.item.clone());
                        let ours = item.as_ref().and_then(|i| i.get("op")) == Some(&s(&op));
                        landed |= ours;
                        see(&mut seen, &w.key, item)?;
                    }
                    "None" | CONFLICT => {}
                    _ => return Err(StoreError::unavailable(c)),
                }
            }
            if landed {
                return Ok(Ok(taken(code, plan.settle)));
            }
            if code.is_some() {
                let r = reason(&c, plan.writes.len());
                if code_of(r) == CONDITION_FAILED {
                    let item = r.and_then(|r| r.item.clone());
                    seen.code = item.map(from_item).transpose()?;
                }
            }
        }
        Ok(Err(Refused { retry_after: 1 }))
    }

    async fn settle_change(
        &self,
        user: &User,
        change: UserChange,
        settle: &Settle,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.change_user(user, change, settle, now).await
    }

    /// One query per identifier (at once), then batch deletes.
    async fn clear_failures(&self, identifiers: &[String]) -> StoreResult<()> {
        let queries = identifiers.iter().map(|i| self.query_keys(limit_pk(i), ""));
        let keys: Vec<Item> = futures_util::future::try_join_all(queries)
            .await?
            .into_iter()
            .flatten()
            .collect();
        self.delete_all(&keys).await
    }
}

#[async_trait]
impl Store for DynamoStore {
    /// One batch read: the account (its guard, or its item), the account a
    /// device cookie names, the buckets and the code.
    async fn open_attempt(&self, opening: &Opening<'_>, _now: Timestamp) -> StoreResult<Opened> {
        let account = match opening.account {
            Lookup::Email(e) => email_key(e),
            Lookup::Phone(p) => phone_key(p),
            Lookup::Id(id) => user_key(id),
        };
        let device = opening.device_user.map(user_key).filter(|k| *k != account);
        let buckets: Vec<(BucketKey, Item)> = opening
            .buckets
            .iter()
            .map(|b| (b.clone(), bucket_key(b)))
            .collect();
        let code = opening.code.map(|c| code_key(c.purpose, &c.subject));
        let keys = [account.clone()]
            .into_iter()
            .chain(device.clone())
            .chain(buckets.iter().map(|(_, k)| k.clone()))
            .chain(code.clone())
            .collect();
        let mut items = self.get_many(keys).await?;
        let mut seen = Seen::default();
        for (bucket, key) in &buckets {
            if let Some(item) = take(&mut items, key) {
                see(&mut seen, bucket, Some(item))?;
            }
        }
        if let Some(key) = &code {
            seen.code = take(&mut items, key).map(from_item).transpose()?;
        }
        let found = take(&mut items, &account);
        let (user_id, user) = match opening.account {
            Lookup::Id(_) => {
                let user: Option<User> = found.map(from_item).transpose()?;
                (user.as_ref().map(|u| u.id.clone()), user)
            }
            _ => {
                let id = found
                    .map(from_item::<Guard>)
                    .transpose()?
                    .map(|g| g.user_id);
                let user = match (&device, &id) {
                    (Some(key), Some(id)) if opening.device_user == Some(id.as_str()) => {
                        take(&mut items, key).map(from_item).transpose()?
                    }
                    _ => None,
                };
                (id, user)
            }
        };
        Ok(Opened {
            user_id,
            user,
            seen,
        })
    }
}
