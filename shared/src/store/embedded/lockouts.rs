//! Consecutive login failures: on the account, or at `fail/<identifier>`.

use async_trait::async_trait;

use super::EmbeddedStore;
use super::items::{fail_key, user_key};
use crate::clock::Timestamp;
use crate::model::{Backoff, FailureKey, Lockout};
use crate::store::records::{FailureRecord, UNKNOWN_FAILURE_MEMORY};
use crate::store::{Lockouts, StoreResult};

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
                let next = backoff.after_failure(user.lockout(), now);
                (user.failures, user.locked_until) = (next.failures, next.locked_until);
                tx.put(&user_key(&id), &user)?;
                Ok(next)
            }
            FailureKey::Unknown(identifier) => {
                let key = fail_key(&identifier);
                let current = FailureRecord::current(tx.get(&key)?, now);
                let lockout = backoff.after_failure(current, now);
                let expires_at = lockout.locked_until.max(now) + UNKNOWN_FAILURE_MEMORY;
                tx.put(
                    &key,
                    &FailureRecord {
                        record: lockout,
                        expires_at,
                    },
                )?;
                Ok(lockout)
            }
        })
        .await
    }

    async fn unknown_lockout(&self, identifier: &str, now: Timestamp) -> StoreResult<Lockout> {
        Ok(FailureRecord::current(
            self.read(&fail_key(identifier))?,
            now,
        ))
    }
}
