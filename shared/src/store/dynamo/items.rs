//! Item keys and codecs: records go in and out of items through serde_dynamo,
//! with the key attributes beside the record's own.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::Purpose;
use crate::store::slots::{BucketKey, Client};
use crate::store::{StoreError, StoreResult};

pub(super) type Item = HashMap<String, AttributeValue>;

/// A uniqueness guard: the account that holds an email, a phone number or a Lark identity.
#[derive(Serialize, Deserialize)]
pub(super) struct Guard {
    pub user_id: String,
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(super) fn user_pk(id: &str) -> String {
    format!("USER#{id}")
}
pub(super) fn user_key(id: &str) -> Item {
    key(user_pk(id), "PROFILE")
}
pub(super) fn email_key(email: &str) -> Item {
    key(format!("EMAIL#{}", email.to_lowercase()), "EMAIL")
}
pub(super) fn phone_key(phone: &str) -> Item {
    key(format!("PHONE#{phone}"), "PHONE")
}
/// The guard of a Lark identity: its `open_id`.
pub(super) fn lark_key(open_id: &str) -> Item {
    key(format!("LARK#{open_id}"), "LARK")
}
/// A Lark flow in flight, by the digest of its state nonce.
pub(super) fn flow_key(id: &str) -> Item {
    key(format!("FLOW#{id}"), "LARK")
}
pub(super) fn session_sk(id: &str) -> String {
    format!("SESSION#{id}")
}
pub(super) fn session_key(user_id: &str, id: &str) -> Item {
    key(user_pk(user_id), &session_sk(id))
}
pub(super) fn code_key(purpose: Purpose, subject: &str) -> Item {
    key(format!("CODE#{}#{subject}", purpose.as_str()), "CODE")
}
pub(super) fn rate_key(k: &str) -> Item {
    key(format!("RATE#{k}"), "RATE")
}
/// The partition of an identifier's guessing buckets.
pub(super) fn limit_pk(identifier: &str) -> String {
    format!("LIMIT#{identifier}")
}
pub(super) fn bucket_key(bucket: &BucketKey) -> Item {
    match bucket {
        BucketKey::Backoff { identifier, client } => match client {
            Client::Ip(ip) => key(limit_pk(identifier), &format!("IP#{ip}")),
            Client::Device(id) => key(limit_pk(identifier), &format!("DEV#{id}")),
        },
        BucketKey::Anonymous(identifier) => key(limit_pk(identifier), "ANON"),
        BucketKey::Address(ip) => key(format!("LIMIT-IP#{ip}"), "LOGIN"),
    }
}

/// The `pk` of an item, to name it in errors.
fn pk(item: &Item) -> String {
    item.get("pk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// A record as an item under `key`.
pub(super) fn to_item<T: Serialize>(key: Item, record: &T) -> StoreResult<Item> {
    let mut item: Item =
        serde_dynamo::to_item(record).map_err(|e| StoreError::corrupt(pk(&key), e))?;
    item.extend(key);
    Ok(item)
}

/// A record as one attribute value.
pub(super) fn to_value<T: Serialize>(record: &T) -> StoreResult<AttributeValue> {
    serde_dynamo::to_attribute_value(record).map_err(|e| StoreError::corrupt("value", e))
}

/// The record an item holds; the key attributes and any others it does not name are ignored.
pub(super) fn from_item<T: DeserializeOwned>(item: Item) -> StoreResult<T> {
    let pk = pk(&item);
    serde_dynamo::from_item(item).map_err(|e| StoreError::corrupt(pk, e))
}

/// The item of a batch read's results that has `key`, taken out of them.
pub(super) fn take(items: &mut Vec<Item>, key: &Item) -> Option<Item> {
    let at = items
        .iter()
        .position(|i| i.get("pk") == key.get("pk") && i.get("sk") == key.get("sk"))?;
    Some(items.swap_remove(at))
}
