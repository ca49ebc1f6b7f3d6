//! Consecutive login failures, on the profile item or a `FAIL#` item for an
//! identifier without an account, and the read a login starts with.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::items::{
    Guard, Item, email_key, fail_key, from_item, n, phone_key, rate_key, take, user_key,
};
use super::{ConditionalResult, DynamoStore};
use crate::clock::Timestamp;
use crate::model::{Backoff, FailureKey, Lockout, Rule};
use crate::store::records::{FailureRecord, RateRecord, UNKNOWN_FAILURE_MEMORY};
use crate::store::{
    Accounts, Decision, Lockouts, LoginSubject, Lookup, Store, StoreError, StoreResult,
};

impl DynamoStore {
    /// Adds a failure to the item at `key`: a profile (`expires_at` is `None`),
    /// or an unknown identifier's record that lives until `expires_at`.
    async fn bump_failures(
        &self,
        key: Item,
        backoff: &Backoff,
        now: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> StoreResult<Lockout> {
        let current: Lockout = loop {
            let counted = self
                .send(|t| {
                    let req = t.update(key.clone()).return_values(ReturnValue::AllNew);
                    match expires_at {
                        // An account: it must exist.
                        None => req
                            .update_expression("ADD failures :one")
                            .condition_expression("attribute_exists(pk)"),
                        // An unknown identifier: counting restarts once the record has expired.
                        Some(exp) => req
                            .update_expression(
                                "SET failures = if_not_exists(failures, :zero) + :one, expires_at = :exp",
                            )
                            .condition_expression("attribute_not_exists(pk) OR expires_at > :now")
                            .expression_attribute_values(":zero", n(0))
                            .expression_attribute_values(":exp", n(exp))
                            .expression_attribute_values(":now", n(now)),
                    }
                    .expression_attribute_values(":one", n(1))
                    .send()
                })
                .await
                .conditional()?;
            match counted {
                Ok(out) => break from_item(out.attributes.unwrap_or_default())?,
                Err(_) if expires_at.is_none() => return Err(StoreError::NoSuchUser),
                // An expired record: start again from one failure.
                Err(_) => self.delete(key.clone()).await?,
            }
        };
        let before = Lockout {
            failures: current.failures.saturating_sub(1),
            locked_until: current.locked_until,
        };
        let next = backoff.after_failure(before, now);
        if next.locked_until > current.locked_until {
            // Keep the latest lock when concurrent failures race: a refusal
            // means a later one is already stored.
            let _later_stored = self
                .send(|t| {
                    let req = t
                        .update(key)
                        .update_expression("SET locked_until = :lu")
                        .condition_expression(
                            "attribute_not_exists(locked_until) OR locked_until < :lu",
                        )
                        .expression_attribute_values(":lu", n(next.locked_until));
                    match expires_at {
                        None => req,
                        Some(_) => req
                            .update_expression("SET locked_until = :lu, expires_at = :exp")
                            .expression_attribute_values(
                                ":exp",
                                n(next.locked_until + UNKNOWN_FAILURE_MEMORY),
                            ),
                    }
                    .send()
                })
                .await
                .conditional()?;
        }
        Ok(Lockout {
            failures: current.failures,
            locked_until: next.locked_until.max(current.locked_until),
        })
    }
}

#[async_trait]
impl Lockouts for DynamoStore {
    async fn record_failure(
        &self,
        key: &FailureKey,
        backoff: &Backoff,
        now: Timestamp,
    ) -> StoreResult<Lockout> {
        match key {
            FailureKey::User(id) => self.bump_failures(user_key(id), backoff, now, None).await,
            FailureKey::Unknown(identifier) => {
                let exp = now + UNKNOWN_FAILURE_MEMORY;
                self.bump_failures(fail_key(identifier), backoff, now, Some(exp))
                    .await
            }
        }
    }

    async fn unknown_lockout(&self, identifier: &str, now: Timestamp) -> StoreResult<Lockout> {
        Ok(FailureRecord::current(
            self.get(fail_key(identifier)).await?,
            now,
        ))
    }
}

#[async_trait]
impl Store for DynamoStore {
    /// One batch read of the guard, the unknown-identifier failures and the IP
    /// limiter, then the user: two round trips.
    async fn login_subject(
        &self,
        lookup: Lookup<'_>,
        ip_key: &str,
        ip_rule: &Rule,
        now: Timestamp,
    ) -> StoreResult<LoginSubject> {
        let guard = match lookup {
            Lookup::Email(e) => email_key(e),
            Lookup::Phone(p) => phone_key(p),
        };
        let fail = fail_key(&lookup.identifier());
        let rate = rate_key(ip_key);
        let mut items = self
            .get_many(vec![guard.clone(), fail.clone(), rate.clone()])
            .await?;
        let rate: Option<RateRecord> = take(&mut items, &rate).map(from_item).transpose()?;
        let ip = Decision::of(&RateRecord::current(rate, now), ip_rule, now);
        let user = match take(&mut items, &guard).map(from_item::<Guard>) {
            Some(g) => self.user(&g?.user_id).await?,
            None => None,
        };
        let lockout = match &user {
            Some(u) => u.lockout(),
            None => {
                let fail = take(&mut items, &fail).map(from_item).transpose()?;
                FailureRecord::current(fail, now)
            }
        };
        Ok(LoginSubject { user, lockout, ip })
    }
}
