//! Item keys, the JSON codec, and the table inside a write transaction.

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{Purpose, User};
use crate::store::slots::{BucketKey, Client};
use crate::store::{StoreError, StoreResult, Unique};

/// Every item, as JSON under a key shaped like the DynamoDB item's.
pub(super) const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");

pub(super) fn user_key(id: &str) -> String {
    format!("user/{id}")
}
pub(super) fn email_key(email: &str) -> String {
    format!("email/{}", email.to_lowercase())
}
pub(super) fn phone_key(phone: &str) -> String {
    format!("phone/{phone}")
}
/// The guard of a Lark identity: its `open_id` (letters, digits, `_`, `-`).
pub(super) fn lark_key(open_id: &str) -> String {
    format!("lark/{open_id}")
}
pub(super) fn flow_key(id: &str) -> String {
    format!("flow/{id}")
}
pub(super) fn session_prefix(user_id: &str) -> String {
    format!("session/{user_id}/")
}
pub(super) fn session_key(user_id: &str, id: &str) -> String {
    format!("{}{id}", session_prefix(user_id))
}
pub(super) fn code_key(purpose: Purpose, subject: &str) -> String {
    format!("code/{}/{subject}", purpose.as_str())
}
pub(super) fn rate_key(key: &str) -> String {
    format!("rate/{key}")
}
/// The buckets of one identifier. Neither an email's domain nor a phone holds
/// a `/`, so no identifier's prefix is another's.
pub(super) fn limit_prefix(identifier: &str) -> String {
    format!("limit/{identifier}/")
}
pub(super) fn bucket_key(key: &BucketKey) -> String {
    match key {
        BucketKey::Backoff { identifier, client } => match client {
            Client::Ip(ip) => format!("{}ip/{ip}", limit_prefix(identifier)),
            Client::Device(id) => format!("{}dev/{id}", limit_prefix(identifier)),
        },
        BucketKey::Anonymous(identifier) => format!("{}anon", limit_prefix(identifier)),
        BucketKey::Address(ip) => format!("limit-ip/{ip}"),
    }
}

/// The record under `key`, if any.
pub(super) fn get<T, Tab>(table: &Tab, key: &str) -> StoreResult<Option<T>>
where
    T: DeserializeOwned,
    Tab: ReadableTable<&'static str, &'static [u8]>,
{
    let Some(guard) = table.get(key).map_err(StoreError::unavailable)? else {
        return Ok(None);
    };
    serde_json::from_slice(guard.value())
        .map(Some)
        .map_err(|e| StoreError::corrupt(key, e))
}

pub(super) fn keys_with_prefix<Tab>(table: &Tab, prefix: &str) -> StoreResult<Vec<String>>
where
    Tab: ReadableTable<&'static str, &'static [u8]>,
{
    let mut keys = vec![];
    for entry in table.range(prefix..).map_err(StoreError::unavailable)? {
        let (k, _) = entry.map_err(StoreError::unavailable)?;
        let k = k.value();
        if !k.starts_with(prefix) {
            break;
        }
        keys.push(k.to_string());
    }
    Ok(keys)
}

/// The table inside one write transaction.
pub(super) struct Tx<'t> {
    pub table: redb::Table<'t, &'static str, &'static [u8]>,
}

impl Tx<'_> {
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> StoreResult<Option<T>> {
        get(&self.table, key)
    }

    pub fn put<T: Serialize>(&mut self, key: &str, record: &T) -> StoreResult<()> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::corrupt(key, e))?;
        self.table
            .insert(key, bytes.as_slice())
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    pub fn delete(&mut self, key: &str) -> StoreResult<()> {
        self.table.remove(key).map_err(StoreError::unavailable)?;
        Ok(())
    }

    pub fn user(&self, id: &str) -> StoreResult<User> {
        self.get(&user_key(id))?.ok_or(StoreError::NoSuchUser)
    }

    /// Fails when `key` guards a value for another account.
    pub fn check_guard(&self, key: &str, owner: &str, what: Unique) -> StoreResult<()> {
        match self.get::<String>(key)? {
            Some(other) if other != owner => Err(StoreError::Taken(what)),
            _ => Ok(()),
        }
    }
}
