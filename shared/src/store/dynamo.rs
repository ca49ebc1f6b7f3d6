//! The DynamoDB store: one table, `pk`/`sk` keys, TTL on `expires_at`.
//!
//! | item         | pk                          | sk              |
//! |--------------|-----------------------------|-----------------|
//! | user         | `USER#<id>`                 | `PROFILE`       |
//! | email guard  | `EMAIL#<lowercased email>`  | `EMAIL`         |
//! | phone guard  | `PHONE#<E.164>`             | `PHONE`         |
//! | session      | `USER#<id>`                 | `SESSION#<jti>` |
//! | code         | `CODE#<purpose>#<subject>`  | `CODE`          |
//! | limiter      | `RATE#<key>`                | `RATE`          |
//! | failures     | `FAIL#<identifier>`         | `FAIL`          |
//!
//! TTL deletion is lazy, so every read checks `expires_at` itself. Every
//! read-check-write is one conditional write, so races cannot double-spend a
//! code, lose a counter increment or accept a TOTP step twice. Each SDK call is
//! counted ([`DynamoStore::round_trips`]) so tests can hold the counts down.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, DeleteRequest, KeySchemaElement,
    KeyType, KeysAndAttributes, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update, WriteRequest,
};
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::aws::Sdk;
use serde::de::DeserializeOwned;

use super::{
    Decision, LoginSubject, Lookup, Redemption, Store, StoreError, StoreResult, Unique, UserChange,
};
use crate::clock::Timestamp;
use crate::model::{
    Backoff, Code, FailureKey, Lockout, LoginRecord, Purpose, RateState, Rule, Session, User,
};

type Item = HashMap<String, AttributeValue>;

/// How long failures of an identifier without an account are remembered.
const UNKNOWN_FAILURE_MEMORY: i64 = 86_400;

#[derive(Clone)]
pub struct DynamoStore {
    sdk: Sdk,
    /// Built on first use, from the lazily loaded SDK configuration.
    client: Arc<OnceCell<Client>>,
    table: Arc<str>,
    calls: Arc<AtomicU64>,
}

fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(&e).to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn user_pk(id: &str) -> String {
    format!("USER#{id}")
}
fn user_key(id: &str) -> Item {
    key(user_pk(id), "PROFILE")
}
fn email_key(email: &str) -> Item {
    key(format!("EMAIL#{}", email.to_lowercase()), "EMAIL")
}
fn phone_key(phone: &str) -> Item {
    key(format!("PHONE#{phone}"), "PHONE")
}
fn session_key(user_id: &str, id: &str) -> Item {
    key(user_pk(user_id), &format!("SESSION#{id}"))
}
fn code_key(purpose: Purpose, subject: &str) -> Item {
    key(format!("CODE#{}#{subject}", purpose.as_str()), "CODE")
}
fn rate_key(k: &str) -> Item {
    key(format!("RATE#{k}"), "RATE")
}
fn fail_key(identifier: &str) -> Item {
    key(format!("FAIL#{identifier}"), "FAIL")
}

/// A record as an item under `key`.
fn item<T: Serialize>(key: Item, value: &T) -> StoreResult<Item> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt {
        key: format!("{key:?}"),
        detail: e.to_string(),
    })?;
    item.extend(key);
    Ok(item)
}

fn value<T: Serialize>(v: &T) -> StoreResult<AttributeValue> {
    serde_dynamo::to_attribute_value(v).map_err(|e| StoreError::Corrupt {
        key: "value".into(),
        detail: e.to_string(),
    })
}

fn parse<T: DeserializeOwned>(item: Item) -> StoreResult<T> {
    let pk = item
        .get("pk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt {
        key: pk,
        detail: e.to_string(),
    })
}

fn number(item: &Item, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn string(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// Items whose `expires_at` has passed are treated as absent.
fn alive(item: Option<Item>, now: Timestamp) -> Option<Item> {
    item.filter(|i| number(i, "expires_at") > now)
}

fn rate_state(item: &Item) -> RateState {
    RateState {
        window_start: number(item, "window_start"),
        count: number(item, "count") as u32,
        last: number(item, "last"),
    }
}

fn decide(state: &RateState, rule: &Rule, now: Timestamp) -> Decision {
    match state.check(rule, now) {
        Ok(()) => Decision::Allowed,
        Err(retry_after) => Decision::Refused { retry_after },
    }
}

fn lockout_of(item: &Item) -> Lockout {
    Lockout {
        failures: number(item, "failures") as u32,
        locked_until: number(item, "locked_until"),
    }
}

/// Which transaction item's condition failed, by position.
fn cancelled_at<R>(
    e: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<Vec<bool>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => Some(
            t.cancellation_reasons()
                .iter()
                .map(|r| r.code() == Some("ConditionalCheckFailed"))
                .collect(),
        ),
        _ => None,
    }
}

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> StoreResult<T> {
    r.map_err(|e| StoreError::Unavailable(format!("request: {e}")))
}

impl DynamoStore {
    pub fn new(sdk: Sdk, table: &str) -> Self {
        Self {
            sdk,
            client: Arc::new(OnceCell::new()),
            table: table.into(),
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async { Client::new(self.sdk.get().await) })
            .await
    }

    /// SDK calls made so far (each is one round trip, retries aside).
    pub fn round_trips(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }

    /// Creates the table (on-demand, `pk`/`sk`) and turns on TTL for `expires_at`.
    pub async fn create_table(&self) -> StoreResult<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        self.count();
        self.client()
            .await
            .create_table()
            .table_name(&*self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(build(attr("pk"))?)
            .attribute_definitions(build(attr("sk"))?)
            .key_schema(build(key("pk", KeyType::Hash))?)
            .key_schema(build(key("sk", KeyType::Range))?)
            .send()
            .await
            .map_err(unavailable)?;
        self.count();
        self.client()
            .await
            .update_time_to_live()
            .table_name(&*self.table)
            .time_to_live_specification(build(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build(),
            )?)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, key: Item) -> StoreResult<Option<Item>> {
        self.count();
        let out = self
            .client()
            .await
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    async fn put(&self, item: Item) -> StoreResult<()> {
        self.count();
        self.client()
            .await
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete(&self, key: Item) -> StoreResult<()> {
        self.count();
        self.client()
            .await
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Several items by key in one call, in consistent reads.
    async fn get_many(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        self.count();
        let request = build(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build(),
        )?;
        let out = self
            .client()
            .await
            .batch_get_item()
            .request_items(&*self.table, request)
            .send()
            .await
            .map_err(unavailable)?;
        if out.unprocessed_keys.as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(StoreError::Unavailable(
                "batch read throttled; try again".into(),
            ));
        }
        Ok(out
            .responses
            .and_then(|mut r| r.remove(&*self.table))
            .unwrap_or_default())
    }

    async fn user_via_guard(&self, guard: Item) -> StoreResult<Option<User>> {
        let Some(g) = self.get(guard).await? else {
            return Ok(None);
        };
        match string(&g, "user_id") {
            Some(id) => self.user(&id).await,
            None => Ok(None),
        }
    }

    /// One `UpdateItem` on the user that must exist.
    async fn update_profile(
        &self,
        id: &str,
        set: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<()> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        self.count();
        let mut req = self
            .client()
            .await
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(user_key(id)))
            .update_expression(set)
            .condition_expression("attribute_exists(pk)");
        for (k, v) in names {
            req = req.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Err(StoreError::NoSuchUser)
                }
                _ => Err(unavailable(e)),
            },
        }
    }

    /// Moves a uniqueness guard with the attribute it guards, in one transaction
    /// conditioned on the user still holding `old` (another change raced us otherwise).
    async fn move_guard(
        &self,
        user: &User,
        what: Unique,
        old: Option<String>,
        new: Option<String>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let (attr, guard_key): (&str, fn(&str) -> Item) = match what {
            Unique::Email => ("email", email_key),
            Unique::Phone => ("phone", phone_key),
        };
        let same_guard = match (&old, &new) {
            (Some(o), Some(n)) => guard_key(o) == guard_key(n),
            _ => false,
        };
        let mut items = vec![];
        let mut update = Update::builder()
            .table_name(&*self.table)
            .set_key(Some(user_key(&user.id)))
            .update_expression("SET #a = :new, updated_at = :now")
            .expression_attribute_names("#a", attr)
            .expression_attribute_values(":new", new.clone().map_or(AttributeValue::Null(true), s))
            .expression_attribute_values(":now", n(now));
        update = match &old {
            Some(o) => update
                .condition_expression("#a = :old")
                .expression_attribute_values(":old", s(o.clone())),
            None => update.condition_expression("attribute_exists(pk) AND (attribute_not_exists(#a) OR attribute_type(#a, :null))")
                .expression_attribute_values(":null", s("NULL")),
        };
        items.push(
            TransactWriteItem::builder()
                .update(build(update.build())?)
                .build(),
        );
        let mut new_guard_at = None;
        if !same_guard {
            if let Some(n) = &new {
                let guard = HashMap::from_iter(
                    guard_key(n)
                        .into_iter()
                        .chain([("user_id".to_string(), s(user.id.clone()))]),
                );
                new_guard_at = Some(items.len());
                items.push(
                    TransactWriteItem::builder()
                        .put(build(
                            Put::builder()
                                .table_name(&*self.table)
                                .set_item(Some(guard))
                                .condition_expression("attribute_not_exists(pk) OR user_id = :me")
                                .expression_attribute_values(":me", s(user.id.clone()))
                                .build(),
                        )?)
                        .build(),
                );
            }
            if let Some(o) = &old {
                items.push(
                    TransactWriteItem::builder()
                        .delete(build(
                            Delete::builder()
                                .table_name(&*self.table)
                                .set_key(Some(guard_key(o)))
                                .build(),
                        )?)
                        .build(),
                );
            }
        }
        self.count();
        match self
            .client()
            .await
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match cancelled_at(&e) {
                Some(failed) if new_guard_at.is_some_and(|i| failed.get(i) == Some(&true)) => {
                    Err(StoreError::Taken(what))
                }
                Some(failed) if failed.first() == Some(&true) => Err(StoreError::Unavailable(
                    "the account changed meanwhile; try again".into(),
                )),
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn bump_failures(
        &self,
        key: Item,
        backoff: &Backoff,
        now: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> StoreResult<Lockout> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        self.count();
        let mut req = self
            .client()
            .await
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key.clone()))
            .return_values(ReturnValue::AllNew);
        req = match expires_at {
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
        };
        let out = match req.expression_attribute_values(":one", n(1)).send().await {
            Ok(out) => out,
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_))
                    if expires_at.is_none() =>
                {
                    return Err(StoreError::NoSuchUser);
                }
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    // An expired record: start again from one failure.
                    self.delete(key.clone()).await?;
                    return Box::pin(self.bump_failures(key, backoff, now, expires_at)).await;
                }
                _ => return Err(unavailable(e)),
            },
        };
        let current = lockout_of(&out.attributes.unwrap_or_default());
        let before = Lockout {
            failures: current.failures.saturating_sub(1),
            locked_until: current.locked_until,
        };
        let next = backoff.after_failure(before, now);
        if next.locked_until > current.locked_until {
            // Keep the latest lock when concurrent failures race.
            self.count();
            let mut req = self
                .client()
                .await
                .update_item()
                .table_name(&*self.table)
                .set_key(Some(key))
                .update_expression("SET locked_until = :lu")
                .condition_expression("attribute_not_exists(locked_until) OR locked_until < :lu")
                .expression_attribute_values(":lu", n(next.locked_until));
            if expires_at.is_some() {
                req = req
                    .update_expression("SET locked_until = :lu, expires_at = :exp")
                    .expression_attribute_values(
                        ":exp",
                        n(next.locked_until + UNKNOWN_FAILURE_MEMORY),
                    );
            }
            let r = req.send().await;
            if let Err(e) = r
                && !matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                )
            {
                return Err(unavailable(e));
            }
        }
        Ok(Lockout {
            failures: current.failures,
            locked_until: next.locked_until.max(current.locked_until),
        })
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let guard = |k: Item| -> StoreResult<TransactWriteItem> {
            let item = HashMap::from_iter(
                k.into_iter()
                    .chain([("user_id".to_string(), s(user.id.clone()))]),
            );
            Ok(TransactWriteItem::builder()
                .put(build(
                    Put::builder()
                        .table_name(&*self.table)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(pk)")
                        .build(),
                )?)
                .build())
        };
        let mut items = vec![
            TransactWriteItem::builder()
                .put(build(
                    Put::builder()
                        .table_name(&*self.table)
                        .set_item(Some(item(user_key(&user.id), user)?))
                        .condition_expression("attribute_not_exists(pk)")
                        .build(),
                )?)
                .build(),
            guard(email_key(&user.email))?,
        ];
        if let Some(phone) = &user.phone {
            items.push(guard(phone_key(phone))?);
        }
        self.count();
        match self
            .client()
            .await
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match cancelled_at(&e) {
                Some(failed) if failed.get(1) == Some(&true) => {
                    Err(StoreError::Taken(Unique::Email))
                }
                Some(failed) if failed.get(2) == Some(&true) => {
                    Err(StoreError::Taken(Unique::Phone))
                }
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        self.get(user_key(id)).await?.map(parse).transpose()
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.user_via_guard(email_key(email)).await
    }

    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>> {
        self.user_via_guard(phone_key(phone)).await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let mut users = vec![];
        let mut start = None;
        loop {
            self.count();
            let out = self
                .client()
                .await
                .scan()
                .table_name(&*self.table)
                .filter_expression("sk = :p")
                .expression_attribute_values(":p", s("PROFILE"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items.unwrap_or_default() {
                users.push(parse(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(users);
            }
        }
    }

    async fn update_user(&self, id: &str, change: UserChange, now: Timestamp) -> StoreResult<()> {
        let set = |attr: &str, value: AttributeValue| {
            (
                "SET #a = :v, updated_at = :now".to_string(),
                attr.to_string(),
                value,
            )
        };
        let (expr, attr, value) = match change {
            UserChange::Email(email) => {
                let user = self.user(id).await?.ok_or(StoreError::NoSuchUser)?;
                let old = Some(user.email.clone());
                return self
                    .move_guard(&user, Unique::Email, old, Some(email), now)
                    .await;
            }
            UserChange::Phone(phone) => {
                let user = self.user(id).await?.ok_or(StoreError::NoSuchUser)?;
                let old = user.phone.clone();
                if old == phone {
                    return Ok(());
                }
                return self.move_guard(&user, Unique::Phone, old, phone, now).await;
            }
            UserChange::Name(v) => set("name", s(v)),
            UserChange::Avatar(v) => set("avatar", s(v)),
            UserChange::Password(v) => set("password", s(v.expose().clone())),
            UserChange::Active(v) => set("active", AttributeValue::Bool(v)),
            UserChange::Totp(v) => set("totp", value(&v)?),
            UserChange::Lark(v) => set("lark", value(&v)?),
        };
        self.update_profile(
            id,
            &expr,
            &[("#a", &attr)],
            vec![(":v", value), (":now", n(now))],
        )
        .await
    }

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
        Ok(alive(self.get(fail_key(identifier)).await?, now)
            .map(|i| lockout_of(&i))
            .unwrap_or_default())
    }

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
        let items = self
            .get_many(vec![guard.clone(), fail.clone(), rate.clone()])
            .await?;
        let find = |k: &Item| {
            items
                .iter()
                .find(|i| i.get("pk") == k.get("pk") && i.get("sk") == k.get("sk"))
                .cloned()
        };
        let ip = decide(
            &alive(find(&rate), now)
                .map(|i| rate_state(&i))
                .unwrap_or_default(),
            ip_rule,
            now,
        );
        let user = match find(&guard).and_then(|g| string(&g, "user_id")) {
            Some(id) => self.user(&id).await?,
            None => None,
        };
        let lockout = match &user {
            Some(u) => u.lockout(),
            None => alive(find(&fail), now)
                .map(|i| lockout_of(&i))
                .unwrap_or_default(),
        };
        Ok(LoginSubject { user, lockout, ip })
    }

    async fn begin_session(&self, session: &Session, login: &LoginRecord) -> StoreResult<()> {
        let history = serde_dynamo::to_attribute_value(login).map_err(|e| StoreError::Corrupt {
            key: "history".into(),
            detail: e.to_string(),
        })?;
        let put = Put::builder()
            .table_name(&*self.table)
            .set_item(Some(item(
                session_key(&session.user_id, &session.id),
                session,
            )?))
            .build();
        let update = Update::builder()
            .table_name(&*self.table)
            .set_key(Some(user_key(&session.user_id)))
            .update_expression(
                "ADD sessions :one SET history = :h, failures = :zero, locked_until = :zero",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":h", history)
            .build();
        self.count();
        match self
            .client()
            .await
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(build(put)?).build())
            .transact_items(TransactWriteItem::builder().update(build(update)?).build())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match cancelled_at(&e) {
                Some(failed) if failed.get(1) == Some(&true) => Err(StoreError::NoSuchUser),
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn session(
        &self,
        user_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Session>> {
        alive(self.get(session_key(user_id, id)).await?, now)
            .map(parse)
            .transpose()
    }

    async fn renew_session(
        &self,
        user_id: &str,
        id: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        self.count();
        let r = self
            .client()
            .await
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(session_key(user_id, id)))
            .update_expression("SET expires_at = :e")
            .condition_expression("attribute_exists(pk) AND expires_at > :now AND expires_at < :e")
            .expression_attribute_values(":e", n(expires_at))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                // Gone, expired, or already renewed further by a racing request.
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Ok(self.session(user_id, id, now).await?.is_some())
                }
                _ => Err(unavailable(e)),
            },
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
            self.count();
            let out = self
                .client()
                .await
                .query()
                .table_name(&*self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :s)")
                .expression_attribute_values(":pk", s(user_pk(user_id)))
                .expression_attribute_values(":s", s("SESSION#"))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            keys.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let keep = keep.map(|k| s(format!("SESSION#{k}")));
        keys.retain(|k| k.get("sk") != keep.as_ref());
        let ended = keys.len();
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    Ok(WriteRequest::builder()
                        .delete_request(build(
                            DeleteRequest::builder().set_key(Some(k.clone())).build(),
                        )?)
                        .build())
                })
                .collect::<StoreResult<_>>()?;
            for _ in 0..5 {
                self.count();
                let out = self
                    .client()
                    .await
                    .batch_write_item()
                    .request_items(&*self.table, requests)
                    .send()
                    .await
                    .map_err(unavailable)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&*self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
            }
            if !requests.is_empty() {
                return Err(StoreError::Unavailable(
                    "could not end every session; try again".into(),
                ));
            }
        }
        Ok(ended)
    }

    async fn put_code(&self, code: &Code) -> StoreResult<()> {
        self.put(item(code_key(code.purpose, &code.subject), code)?)
            .await
    }

    /// A right code is spent by one conditional delete; a wrong one adds an
    /// attempt by one conditional update (and the last attempt deletes it).
    async fn redeem_code(
        &self,
        purpose: Purpose,
        subject: &str,
        digest: &str,
        max_attempts: u32,
        now: Timestamp,
    ) -> StoreResult<Redemption> {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        let key = code_key(purpose, subject);
        self.count();
        let r = self
            .client()
            .await
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(key.clone()))
            .condition_expression("digest = :d AND expires_at > :now AND attempts < :max")
            .expression_attribute_values(":d", s(digest))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":max", n(max_attempts))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match r {
            Ok(out) => {
                return Ok(Redemption::Accepted(parse(
                    out.attributes.unwrap_or_default(),
                )?));
            }
            Err(e) => match e.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => {}
                _ => return Err(unavailable(e)),
            },
        }
        self.count();
        let r = self
            .client()
            .await
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key.clone()))
            .update_expression("ADD attempts :one")
            .condition_expression("attribute_exists(pk) AND expires_at > :now AND attempts < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":max", n(max_attempts))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(out) => {
                let attempts = number(&out.attributes.unwrap_or_default(), "attempts");
                if attempts >= i64::from(max_attempts) {
                    self.delete(key).await?;
                }
            }
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {}
                _ => return Err(unavailable(e)),
            },
        }
        Ok(Redemption::Rejected)
    }

    async fn drop_code(&self, purpose: Purpose, subject: &str) -> StoreResult<()> {
        self.delete(code_key(purpose, subject)).await
    }

    async fn advance_totp(&self, user_id: &str, step: u64) -> StoreResult<bool> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        self.count();
        let r = self
            .client()
            .await
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(user_key(user_id)))
            .update_expression("SET totp.last_step = :s")
            .condition_expression("attribute_exists(totp.last_step) AND totp.last_step < :s")
            .expression_attribute_values(":s", n(step))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(unavailable(e)),
            },
        }
    }

    /// One conditional update in the common case: it creates the record or
    /// counts in the live window; a stale window is replaced by a second write.
    async fn hit(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Decision> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        let k = rate_key(key);
        let fresh = RateState::default().hit(rule, now);
        self.count();
        let r = self
            .client()
            .await
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(k.clone()))
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
            .expression_attribute_values(":exp", n(fresh.expires_at(rule)))
            .expression_attribute_values(":stale", n(now - rule.window))
            .expression_attribute_values(":max", n(rule.max))
            .expression_attribute_values(":cool", n(now - rule.cooldown))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match r {
            Ok(_) => return Ok(Decision::Allowed),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    c.item().cloned().unwrap_or_default()
                }
                _ => return Err(unavailable(e)),
            },
        };
        let state = rate_state(&old);
        if state.window_start + rule.window > now {
            return Ok(decide(&state, rule, now));
        }
        // The stored window is over: start a new one unless a racing request just did.
        self.count();
        let r = self
            .client()
            .await
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item(
                k,
                &serde_json::json!({
                    "window_start": fresh.window_start,
                    "count": fresh.count,
                    "last": fresh.last,
                    "expires_at": fresh.expires_at(rule),
                }),
            )?))
            .condition_expression("window_start = :old")
            .expression_attribute_values(":old", n(state.window_start))
            .send()
            .await;
        match r {
            Ok(_) => Ok(Decision::Allowed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Box::pin(self.hit(key, rule, now)).await
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn peek(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Decision> {
        let state = alive(self.get(rate_key(key)).await?, now)
            .map(|i| rate_state(&i))
            .unwrap_or_default();
        Ok(decide(&state, rule, now))
    }

    async fn unhit(&self, key: &str, _now: Timestamp) -> StoreResult<()> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        self.count();
        let r = self
            .client()
            .await
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(rate_key(key)))
            .update_expression("SET #c = #c - :one, #l = :zero")
            .condition_expression("attribute_exists(pk) AND #c > :zero")
            .expression_attribute_names("#c", "count")
            .expression_attribute_names("#l", "last")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(unavailable(e)),
            },
        }
    }
}
