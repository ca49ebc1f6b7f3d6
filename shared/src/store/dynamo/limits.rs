//! Limiters: one item per key holding its window, counted by conditional updates.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::items::{from_item, n, rate_key, to_item};
use super::{ConditionalResult, DynamoStore};
use crate::clock::Timestamp;
use crate::model::{RateState, Rule};
use crate::store::records::RateRecord;
use crate::store::{Decision, Limits, StoreResult};

#[async_trait]
impl Limits for DynamoStore {
    /// One conditional update in the common case: it creates the record or
    /// counts in the live window; a stale window is replaced by a second write,
    /// and the whole is tried again if a racing request replaced it first.
    async fn hit(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Decision> {
        let fresh = RateState::default().hit(rule, now);
        let expires_at = fresh.expires_at(rule);
        let replacement = to_item(
            rate_key(key),
            &RateRecord {
                record: fresh,
                expires_at,
            },
        )?;
        loop {
            let counted = self
                .send(|t| {
                    t.update(rate_key(key))
                        .update_expression(
                            "SET #c = if_not_exists(#c, :zero) + :one, window_start = if_not_exists(window_start, :now), #l = :now, expires_at = if_not_exists(expires_at, :exp)",
                        )
                        .condition_expression(
                            "attribute_not_exists(pk) OR (window_start > :stale AND #c < :max AND #l <= :cool)",
                        )
                        .expression_attribute_names("#c", "count")
                        .expression_attribute_names("#l", "last")
                        .expression_attribute_values(":zero", n(0))
                        .expression_attribute_values(":one", n(1))
                        .expression_attribute_values(":now", n(now))
                        .expression_attribute_values(":exp", n(expires_at))
                        .expression_attribute_values(":stale", n(now - rule.window))
                        .expression_attribute_values(":max", n(rule.max))
                        .expression_attribute_values(":cool", n(now - rule.cooldown))
                        .return_values_on_condition_check_failure(
                            ReturnValuesOnConditionCheckFailure::AllOld,
                        )
                        .send()
                })
                .await
                .conditional()?;
            let old: RateState = match counted {
                Ok(_) => return Ok(Decision::Allowed),
                Err(old) => from_item(old.unwrap_or_default())?,
            };
            if old.window_start + rule.window > now {
                return Ok(Decision::of(&old, rule, now));
            }
            // The stored window is over: start a new one unless a racing request just did.
            let replaced = self
                .send(|t| {
                    t.put(replacement.clone())
                        .condition_expression("window_start = :old")
                        .expression_attribute_values(":old", n(old.window_start))
                        .send()
                })
                .await
                .conditional()?;
            if replaced.is_ok() {
                return Ok(Decision::Allowed);
            }
        }
    }

    async fn unhit(&self, key: &str, _now: Timestamp) -> StoreResult<()> {
        // Refused when there is nothing to take back: the key was never hit.
        let _taken_back = self
            .send(|t| {
                t.update(rate_key(key))
                    .update_expression("SET #c = #c - :one, #l = :zero")
                    .condition_expression("attribute_exists(pk) AND #c > :zero")
                    .expression_attribute_names("#c", "count")
                    .expression_attribute_names("#l", "last")
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":zero", n(0))
                    .send()
            })
            .await
            .conditional()?;
        Ok(())
    }
}
