//! One-time codes: `code/<purpose>/<subject>`, checked and spent in one transaction.

use async_trait::async_trait;

use super::EmbeddedStore;
use super::items::code_key;
use crate::clock::Timestamp;
use crate::crypto::constant_time_eq;
use crate::model::{Code, Purpose};
use crate::store::records::live;
use crate::store::{Codes, Redemption, StoreResult};

#[async_trait]
impl Codes for EmbeddedStore {
    async fn put_code(&self, code: &Code) -> StoreResult<()> {
        let code = code.clone();
        self.write(move |tx| tx.put(&code_key(code.purpose, &code.subject), &code))
            .await
    }

    async fn redeem_code(
        &self,
        purpose: Purpose,
        subject: &str,
        digests: &[String],
        max_attempts: u32,
        now: Timestamp,
    ) -> StoreResult<Redemption> {
        let key = code_key(purpose, subject);
        let digests = digests.to_vec();
        self.write(move |tx| {
            let Some(mut code) = live(tx.get::<Code>(&key)?, now) else {
                tx.delete(&key)?;
                return Ok(Redemption::Rejected);
            };
            if digests
                .iter()
                .any(|d| constant_time_eq(code.digest.as_bytes(), d.as_bytes()))
            {
                tx.delete(&key)?;
                return Ok(Redemption::Accepted(code));
            }
            code.attempts += 1;
            if code.attempts >= max_attempts {
                tx.delete(&key)?;
            } else {
                tx.put(&key, &code)?;
            }
            Ok(Redemption::Rejected)
        })
        .await
    }

    async fn drop_code(&self, purpose: Purpose, subject: &str) -> StoreResult<()> {
        let key = code_key(purpose, subject);
        self.write(move |tx| tx.delete(&key)).await
    }
}
