//! Records both backends keep alike: limiter windows and guessing buckets,
//! each with the time it stops mattering.

use serde::{Deserialize, Serialize};

use super::Decision;
use crate::clock::Timestamp;
use crate::model::{Code, LarkFlow, RateState, Rule, Session};

/// A record with the time after which it reads as absent. Flat, so that
/// DynamoDB's TTL and conditional updates see `expires_at` beside the fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Expiring<T> {
    #[serde(flatten)]
    pub record: T,
    pub expires_at: Timestamp,
}

/// A limiter key's window.
pub(super) type RateRecord = Expiring<RateState>;

/// A guessing bucket ([`super::slots`]): its state, the version every write
/// moves on (DynamoDB writes it only if still at the version it read), the
/// write (`op`) that put it there, and when it stops mattering.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Bucket<T> {
    #[serde(flatten)]
    pub state: T,
    #[serde(default)]
    pub ver: u64,
    #[serde(default)]
    pub op: String,
    pub expires_at: Timestamp,
}

impl<T: Default> Expiring<T> {
    /// The record if it is still live, else a fresh one.
    pub fn current(item: Option<Self>, now: Timestamp) -> T {
        live(item, now).map(|e| e.record).unwrap_or_default()
    }
}

/// Records that carry `expires_at`.
pub(super) trait Expires {
    fn expires_at(&self) -> Timestamp;
}

impl<T> Expires for Expiring<T> {
    fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

impl Expires for Session {
    fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

impl Expires for Code {
    fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

impl Expires for LarkFlow {
    fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

/// `item` unless its time has passed: expired items are only dropped later
/// (DynamoDB's TTL is lazy, the embedded store prunes), so every read checks.
pub(super) fn live<T: Expires>(item: Option<T>, now: Timestamp) -> Option<T> {
    item.filter(|i| i.expires_at() > now)
}

/// The live ones of `sessions`, newest sign-in first (older sessions' keys do
/// not sort by time, so the order is made here).
pub(super) fn newest_first(sessions: Vec<Session>, now: Timestamp) -> Vec<Session> {
    let mut sessions: Vec<_> = sessions
        .into_iter()
        .filter(|s| s.expires_at > now)
        .collect();
    sessions.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    sessions
}

impl Decision {
    /// Whether `state` lets a hit through at `now`.
    pub(super) fn of(state: &RateState, rule: &Rule, now: Timestamp) -> Self {
        match state.check(rule, now) {
            Ok(()) => Decision::Allowed,
            Err(retry_after) => Decision::Refused { retry_after },
        }
    }
}
