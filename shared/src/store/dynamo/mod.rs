//! The DynamoDB store: one table, `pk`/`sk` keys, TTL on `expires_at`.
//!
//! | item         | pk                          | sk              |
//! |--------------|-----------------------------|-----------------|
//! | user         | `USER#<id>`                 | `PROFILE`       |
//! | email guard  | `EMAIL#<lowercased email>`  | `EMAIL`         |
//! | phone guard  | `PHONE#<E.164>`             | `PHONE`         |
//! | Lark guard   | `LARK#<open_id>`            | `LARK`          |
//! | Lark flow    | `FLOW#<digest of the state>`| `LARK`          |
//! | session      | `USER#<id>`                 | `SESSION#<key>` |
//! | code         | `CODE#<purpose>#<subject>`  | `CODE`          |
//! | limiter      | `RATE#<key>`                | `RATE`          |
//! | guessing     | `LIMIT#<identifier>`, `LIMIT-IP#<ip>` | see [`crate::store::slots`] |
//!
//! A session's key is its sign-in time and a digest of its token's `jti`
//! ([`crate::sessions`]), so a user's sessions sort by sign-in time; its
//! pending refresh codes are a map on its item.
//!
//! TTL deletion is lazy, so every read checks `expires_at` itself. Every
//! read-check-write is one conditional write, so races cannot double-spend a
//! code, lose a counter increment or accept a TOTP step twice. Every request
//! goes through [`DynamoStore::send`], which counts it
//! ([`DynamoStore::round_trips`]) so tests can hold the counts down.

mod accounts;
mod codes;
mod flows;
mod guesses;
mod items;
mod limits;
mod sessions;
mod table;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::builders::{DeleteBuilder, PutBuilder, UpdateBuilder};
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, TransactWriteItem, WriteRequest};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use super::{StoreError, StoreResult};
use crate::aws::Sdk;
use items::{Item, from_item, s};

#[derive(Clone)]
pub struct DynamoStore {
    sdk: Sdk,
    /// Built on first use, from the lazily loaded SDK configuration.
    client: Arc<OnceCell<Client>>,
    table: Arc<str>,
    calls: Arc<AtomicU64>,
}

type SdkResult<T, E> = Result<T, SdkError<E, HttpResponse>>;

/// The client, addressed to the table: every request starts here.
struct Table<'a> {
    client: &'a Client,
    name: &'a str,
}

impl Table<'_> {
    /// A consistent read of one item.
    fn get(&self, key: Item) -> GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(self.name)
            .set_key(Some(key))
            .consistent_read(true)
    }

    fn put(&self, item: Item) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(self.name)
            .set_item(Some(item))
    }

    fn update(&self, key: Item) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(self.name)
            .set_key(Some(key))
    }

    fn delete(&self, key: Item) -> DeleteItemFluentBuilder {
        self.client
            .delete_item()
            .table_name(self.name)
            .set_key(Some(key))
    }
}

/// How many deletes one `BatchWriteItem` takes, and how often its leftovers are retried.
const BATCH: usize = 25;
const BATCH_TRIES: usize = 5;

/// One write of a transaction; [`DynamoStore::transact`] addresses it to the table.
#[derive(Clone)]
enum Write {
    Put(PutBuilder),
    Update(UpdateBuilder),
    Delete(DeleteBuilder),
}

impl<E> From<SdkError<E, HttpResponse>> for StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(e: SdkError<E, HttpResponse>) -> Self {
        StoreError::unavailable(e)
    }
}

impl From<BuildError> for StoreError {
    fn from(e: BuildError) -> Self {
        StoreError::unavailable(e)
    }
}

/// Service errors that can say a request's condition failed.
trait Conditional: std::error::Error + Send + Sync + Sized + 'static {
    /// What the failure tells: the item as it was (when asked for), or which
    /// writes of a transaction failed.
    type Refusal;
    /// `Ok` when this error is the condition failing, else the error back.
    fn refusal(self) -> Result<Self::Refusal, Self>;
}

macro_rules! single_item_conditions {
    ($($error:ty),*) => {$(
        impl Conditional for $error {
            type Refusal = Option<Item>;
            fn refusal(self) -> Result<Option<Item>, Self> {
                match self {
                    Self::ConditionalCheckFailedException(c) => Ok(c.item),
                    other => Err(other),
                }
            }
        }
    )*};
}
single_item_conditions!(PutItemError, UpdateItemError, DeleteItemError);

impl Conditional for TransactWriteItemsError {
    type Refusal = TransactionCanceledException;
    fn refusal(self) -> Result<TransactionCanceledException, Self> {
        match self {
            Self::TransactionCanceledException(t) => Ok(t),
            other => Err(other),
        }
    }
}

trait ConditionalResult<T, E: Conditional> {
    /// A failed condition as `Ok(Err(refusal))`, an outcome of the operation;
    /// any other failure is [`StoreError::Unavailable`].
    fn conditional(self) -> StoreResult<Result<T, E::Refusal>>;
}

impl<T, E: Conditional> ConditionalResult<T, E> for SdkResult<T, E> {
    fn conditional(self) -> StoreResult<Result<T, E::Refusal>> {
        match self {
            Ok(out) => Ok(Ok(out)),
            Err(SdkError::ServiceError(e)) => e
                .into_err()
                .refusal()
                .map(Err)
                .map_err(StoreError::unavailable),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether write `at` of a cancelled transaction is the one whose condition failed.
fn failed(cancelled: &TransactionCanceledException, at: usize) -> bool {
    cancelled
        .cancellation_reasons()
        .get(at)
        .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
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

    /// SDK calls made so far (each is one round trip, retries aside).
    pub fn round_trips(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The one way to the table: `request` gets the client addressed to it,
    /// and each call is counted here.
    async fn send<'a, T, E, Fut>(
        &'a self,
        request: impl FnOnce(Table<'a>) -> Fut,
    ) -> SdkResult<T, E>
    where
        Fut: Future<Output = SdkResult<T, E>>,
    {
        let client = self
            .client
            .get_or_init(|| async { Client::new(self.sdk.get().await) })
            .await;
        self.calls.fetch_add(1, Ordering::SeqCst);
        request(Table {
            client,
            name: &self.table,
        })
        .await
    }

    async fn get<T: DeserializeOwned>(&self, key: Item) -> StoreResult<Option<T>> {
        let out = self.send(|t| t.get(key).send()).await?;
        out.item.map(from_item).transpose()
    }

    async fn put(&self, item: Item) -> StoreResult<()> {
        self.send(|t| t.put(item).send()).await?;
        Ok(())
    }

    async fn delete(&self, key: Item) -> StoreResult<()> {
        self.send(|t| t.delete(key).send()).await?;
        Ok(())
    }

    /// Several items by key in one call, in consistent reads.
    async fn get_many(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()?;
        let out = self
            .send(|t| {
                t.client
                    .batch_get_item()
                    .request_items(t.name, request)
                    .send()
            })
            .await?;
        if out.unprocessed_keys.as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(StoreError::unavailable("batch read throttled; try again"));
        }
        Ok(out
            .responses
            .and_then(|mut r| r.remove(&*self.table))
            .unwrap_or_default())
    }

    /// Writes all of `writes` or none; a refused condition cancels them all.
    async fn transact(
        &self,
        writes: Vec<Write>,
    ) -> StoreResult<Result<(), TransactionCanceledException>> {
        self.transact_as(writes, &new_token()).await
    }

    /// [`Self::transact`] under `token`: DynamoDB applies a transaction sent
    /// again with the same token (the SDK re-sends after a timeout) only once.
    async fn transact_as(
        &self,
        writes: Vec<Write>,
        token: &str,
    ) -> StoreResult<Result<(), TransactionCanceledException>> {
        let table = &*self.table;
        let items = writes
            .into_iter()
            .map(|w| {
                let item = TransactWriteItem::builder();
                Ok(match w {
                    Write::Put(p) => item.put(p.table_name(table).build()?),
                    Write::Update(u) => item.update(u.table_name(table).build()?),
                    Write::Delete(d) => item.delete(d.table_name(table).build()?),
                }
                .build())
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let done = self
            .send(|t| {
                t.client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .client_request_token(token)
                    .send()
            })
            .await
            .conditional()?;
        Ok(done.map(|_| ()))
    }

    /// The keys of the items in partition `pk` whose sort key starts with
    /// `sk_prefix` (all of them for ""), in consistent reads.
    async fn query_keys(&self, pk: String, sk_prefix: &str) -> StoreResult<Vec<Item>> {
        let mut keys = vec![];
        let mut start = None;
        loop {
            let out = self
                .send(|t| {
                    let query = t
                        .client
                        .query()
                        .table_name(t.name)
                        .expression_attribute_values(":pk", s(pk.clone()))
                        .projection_expression("pk, sk")
                        .consistent_read(true)
                        .set_exclusive_start_key(start);
                    // A key condition may not hold an empty string.
                    match sk_prefix {
                        "" => query.key_condition_expression("pk = :pk"),
                        prefix => query
                            .key_condition_expression("pk = :pk AND begins_with(sk, :s)")
                            .expression_attribute_values(":s", s(prefix)),
                    }
                    .send()
                })
                .await?;
            keys.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(keys);
            }
        }
    }

    /// Deletes the items at `keys`, in batches of 25.
    async fn delete_all(&self, keys: &[Item]) -> StoreResult<()> {
        for chunk in keys.chunks(BATCH) {
            let mut requests = chunk
                .iter()
                .map(|k| {
                    let delete = DeleteRequest::builder().set_key(Some(k.clone())).build()?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<StoreResult<Vec<_>>>()?;
            for _ in 0..BATCH_TRIES {
                let out = self
                    .send(|t| {
                        t.client
                            .batch_write_item()
                            .request_items(t.name, requests)
                            .send()
                    })
                    .await?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&*self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
            }
            if !requests.is_empty() {
                return Err(StoreError::unavailable(
                    "could not delete every item; try again",
                ));
            }
        }
        Ok(())
    }
}

/// A fresh idempotency token for one transaction (DynamoDB takes up to 36 characters).
fn new_token() -> String {
    crate::crypto::hex(&crate::crypto::random_bytes::<16>())
}
