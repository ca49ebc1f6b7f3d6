//! One-time codes: one item per purpose and subject, spent by conditional writes.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::items::{code_key, from_item, n, s, to_item};
use super::{ConditionalResult, DynamoStore};
use crate::clock::Timestamp;
use crate::model::{Code, Purpose};
use crate::store::{Codes, Redemption, StoreResult};

#[async_trait]
impl Codes for DynamoStore {
    async fn put_code(&self, code: &Code) -> StoreResult<()> {
        self.put(to_item(code_key(code.purpose, &code.subject), code)?)
            .await
    }

    /// A right code is spent by one conditional delete (its digest `IN` the
    /// digests under each key in force); a wrong one adds an attempt by one
    /// conditional update (and the last attempt deletes it).
    async fn redeem_code(
        &self,
        purpose: Purpose,
        subject: &str,
        digests: &[String],
        max_attempts: u32,
        now: Timestamp,
    ) -> StoreResult<Redemption> {
        let key = code_key(purpose, subject);
        let names: Vec<String> = (0..digests.len()).map(|i| format!(":d{i}")).collect();
        let condition = format!(
            "digest IN ({}) AND expires_at > :now AND attempts < :max",
            names.join(", ")
        );
        let spent = self
            .send(|t| {
                names
                    .iter()
                    .zip(digests)
                    .fold(t.delete(key.clone()), |d, (name, digest)| {
                        d.expression_attribute_values(name, s(digest))
                    })
                    .condition_expression(&condition)
                    .expression_attribute_values(":now", n(now))
                    .expression_attribute_values(":max", n(max_attempts))
                    .return_values(ReturnValue::AllOld)
                    .send()
            })
            .await
            .conditional()?;
        if let Ok(out) = spent {
            let code = from_item(out.attributes.unwrap_or_default())?;
            return Ok(Redemption::Accepted(code));
        }
        let tried = self
            .send(|t| {
                t.update(key.clone())
                    .update_expression("ADD attempts :one")
                    .condition_expression(
                        "attribute_exists(pk) AND expires_at > :now AND attempts < :max",
                    )
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":now", n(now))
                    .expression_attribute_values(":max", n(max_attempts))
                    .return_values(ReturnValue::AllNew)
                    .send()
            })
            .await
            .conditional()?;
        // Refused: gone, expired or out of attempts already; nothing to count.
        if let Ok(out) = tried {
            let code: Code = from_item(out.attributes.unwrap_or_default())?;
            if code.attempts >= max_attempts {
                self.delete(key).await?;
            }
        }
        Ok(Redemption::Rejected)
    }

    async fn drop_code(&self, purpose: Purpose, subject: &str) -> StoreResult<()> {
        self.delete(code_key(purpose, subject)).await
    }
}
