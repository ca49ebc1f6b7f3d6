//! Limiters: `rate/<key>` holds the window, read and counted in one transaction.

use async_trait::async_trait;

use super::EmbeddedStore;
use super::items::rate_key;
use crate::clock::Timestamp;
use crate::model::Rule;
use crate::store::records::{RateRecord, live};
use crate::store::{Decision, Limits, StoreResult};

#[async_trait]
impl Limits for EmbeddedStore {
    async fn hit(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Decision> {
        let (key, rule) = (rate_key(key), *rule);
        self.write(move |tx| {
            let state = RateRecord::current(tx.get(&key)?, now);
            if let Err(retry_after) = state.check(&rule, now) {
                return Ok(Decision::Refused { retry_after });
            }
            let state = state.hit(&rule, now);
            let record = RateRecord {
                record: state,
                expires_at: state.expires_at(&rule),
            };
            tx.put(&key, &record)?;
            Ok(Decision::Allowed)
        })
        .await
    }

    async fn unhit(&self, key: &str, now: Timestamp) -> StoreResult<()> {
        let key = rate_key(key);
        self.write(move |tx| {
            if let Some(mut rate) = live(tx.get::<RateRecord>(&key)?, now) {
                rate.record.count = rate.record.count.saturating_sub(1);
                rate.record.last = 0;
                tx.put(&key, &rate)?;
            }
            Ok(())
        })
        .await
    }
}
