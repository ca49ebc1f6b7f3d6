//! Guessing buckets (`limit/<identifier>/...`, `limit-ip/<ip>`): read, decided
//! and written in one write transaction, which redb runs one at a time.

use async_trait::async_trait;

use super::EmbeddedStore;
use super::items::{Tx, bucket_key, code_key, keys_with_prefix, limit_prefix};
use crate::clock::Timestamp;
use crate::model::{Code, RateState, User};
use crate::store::records::Bucket;
use crate::store::settle::{self, Settle, Taken};
use crate::store::slots::{self, BucketKey, BucketRecord, Refused, Seen};
use crate::store::{Attempt, Guesses, StoreResult, UserChange};

impl Tx<'_> {
    /// Whether `settle`'s code is still the one its attempt compared.
    pub fn code_unspent(&self, settle: &Settle) -> StoreResult<bool> {
        let Some(spend) = &settle.code else {
            return Ok(true);
        };
        let code = self.get::<Code>(&code_key(spend.purpose, &spend.subject))?;
        Ok(code.is_some_and(|c| c.digest == spend.digest))
    }

    /// Gives back what a successful attempt took and spends its code. Call
    /// [`Tx::code_unspent`] first: this writes unconditionally.
    pub fn settle(&mut self, settle: &Settle) -> StoreResult<()> {
        if let Some(spend) = &settle.code {
            self.delete(&code_key(spend.purpose, &spend.subject))?;
        }
        if let Some(key) = &settle.clear {
            self.delete(&bucket_key(key))?;
        }
        for (key, window_start) in &settle.refunds {
            let key = bucket_key(key);
            if let Some(mut bucket) = self.get::<Bucket<RateState>>(&key)?
                && settle::refund(&mut bucket, *window_start)
            {
                self.put(&key, &bucket)?;
            }
        }
        Ok(())
    }

    fn read_seen(&self, attempt: &Attempt) -> StoreResult<Seen> {
        let mut seen = Seen::default();
        for key in attempt.keys() {
            let at = bucket_key(&key);
            match key {
                BucketKey::Backoff { .. } => {
                    if let Some(b) = self.get(&at)? {
                        seen.backoffs.insert(key, b);
                    }
                }
                BucketKey::Anonymous(_) | BucketKey::Address(_) => {
                    if let Some(b) = self.get(&at)? {
                        seen.windows.insert(key, b);
                    }
                }
            }
        }
        if let Some(c) = &attempt.code {
            seen.code = self.get(&code_key(c.purpose, &c.subject))?;
        }
        Ok(seen)
    }
}

#[async_trait]
impl Guesses for EmbeddedStore {
    async fn take_slots(
        &self,
        attempt: &Attempt,
        _seen: Seen,
        now: Timestamp,
    ) -> StoreResult<Result<Taken, Refused>> {
        let attempt = attempt.clone();
        self.write(move |tx| {
            let seen = tx.read_seen(&attempt)?;
            let plan = match slots::plan(&attempt, &seen, "", now) {
                Ok(plan) => plan,
                Err(refused) => return Ok(Err(refused)),
            };
            for w in &plan.writes {
                let key = bucket_key(&w.key);
                match &w.record {
                    BucketRecord::Backoff(b) => tx.put(&key, b)?,
                    BucketRecord::Window(b) => tx.put(&key, b)?,
                }
            }
            let max = attempt.rules.code_attempts;
            let code = seen.countable_code(max, now).cloned().map(|mut code| {
                code.attempts += 1;
                code
            });
            if let Some(code) = &code {
                tx.put(&code_key(code.purpose, &code.subject), code)?;
            }
            Ok(Ok(Taken {
                code,
                settle: plan.settle,
            }))
        })
        .await
    }

    async fn settle_change(
        &self,
        user: &User,
        change: UserChange,
        settle: &Settle,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (id, settle) = (user.id.clone(), settle.clone());
        self.write(move |tx| {
            if !tx.code_unspent(&settle)? {
                return Ok(false);
            }
            tx.apply_change(&id, change, now)?;
            tx.settle(&settle)?;
            Ok(true)
        })
        .await
    }

    async fn clear_failures(&self, identifiers: &[String]) -> StoreResult<()> {
        let prefixes: Vec<String> = identifiers.iter().map(|i| limit_prefix(i)).collect();
        self.write(move |tx| {
            for prefix in &prefixes {
                for key in keys_with_prefix(&tx.table, prefix)? {
                    tx.delete(&key)?;
                }
            }
            Ok(())
        })
        .await
    }
}
