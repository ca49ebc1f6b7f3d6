//! Limiter slots. Every attempt at a secret takes a slot in each bucket it
//! counts in *before* the secret is checked, all in one atomic store
//! operation; a success gives them back with the write that makes it count.
//! The decision is made here, once, from the buckets' states, by both backends.
//!
//! Buckets of one identifier (an email or a phone, known or not) share a
//! partition, so a password reset clears them together:
//!
//! | bucket                          | DynamoDB pk / sk                 | state                |
//! |---------------------------------|----------------------------------|----------------------|
//! | back-off of an address          | `LIMIT#<identifier>` / `IP#<ip>` | [`BackoffState`]     |
//! | back-off of a device            | `LIMIT#<identifier>` / `DEV#<id>`| [`BackoffState`]     |
//! | clients without a device cookie | `LIMIT#<identifier>` / `ANON`    | [`RateState`] window |
//! | one address, any identifier     | `LIMIT-IP#<ip>` / `LOGIN`        | [`RateState`] window |

use std::collections::HashMap;

use super::records::Bucket;
use super::settle::Settle;
use crate::clock::Timestamp;
use crate::model::{BackoffState, Code, Guessing, Purpose, RateState, Rule};

/// One limiter bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BucketKey {
    /// The back-off of one client on one identifier.
    Backoff { identifier: String, client: Client },
    /// Guesses on one identifier from clients without its device cookie.
    Anonymous(String),
    /// Guesses from one client address, on any identifier.
    Address(String),
}

/// Who is guessing, for a back-off.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    Ip(String),
    /// The id of a valid device cookie for the account.
    Device(String),
}

/// How an attempt is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lane {
    /// A client with a valid device cookie for the account: its own back-off,
    /// which no other client's failures touch.
    Device(String),
    /// Any other client: the back-off of its address on the identifier, the
    /// address's cap across identifiers and, when `account_wide`, the
    /// identifier's cap for clients without a device cookie.
    Address { ip: String, account_wide: bool },
}

/// A one-time code an attempt presents: one try of it is counted with the slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRef {
    pub purpose: Purpose,
    pub subject: String,
}

/// One attempt at a secret, as the limiter sees it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The lowercased email or the phone the attempt names.
    pub identifier: String,
    pub lane: Lane,
    pub code: Option<CodeRef>,
    pub rules: Guessing,
}

impl Attempt {
    fn backoff_key(&self) -> BucketKey {
        let client = match &self.lane {
            Lane::Device(id) => Client::Device(id.clone()),
            Lane::Address { ip, .. } => Client::Ip(ip.clone()),
        };
        BucketKey::Backoff {
            identifier: self.identifier.clone(),
            client,
        }
    }

    /// The window buckets this attempt counts in, with their rules.
    fn windows(&self) -> Vec<(BucketKey, Rule)> {
        match &self.lane {
            Lane::Device(_) => vec![],
            Lane::Address { ip, account_wide } => {
                let mut w = vec![(BucketKey::Address(ip.clone()), self.rules.ip)];
                if *account_wide {
                    let anon = BucketKey::Anonymous(self.identifier.clone());
                    w.insert(0, (anon, self.rules.account));
                }
                w
            }
        }
    }

    /// Every bucket this attempt counts in.
    pub fn keys(&self) -> Vec<BucketKey> {
        let mut keys = vec![self.backoff_key()];
        keys.extend(self.windows().into_iter().map(|(k, _)| k));
        keys
    }
}

/// The buckets an attempt would count in on either lane, so one read can
/// fetch them before the lane is known.
pub fn candidate_keys(identifier: &str, ip: &str, device: Option<&str>) -> Vec<BucketKey> {
    let backoff = |client| BucketKey::Backoff {
        identifier: identifier.to_string(),
        client,
    };
    let mut keys = vec![
        backoff(Client::Ip(ip.to_string())),
        BucketKey::Anonymous(identifier.to_string()),
        BucketKey::Address(ip.to_string()),
    ];
    if let Some(d) = device {
        keys.push(backoff(Client::Device(d.to_string())));
    }
    keys
}

/// Buckets, and the attempt's code, as a read found them. A bucket not in it
/// is taken as absent (DynamoDB's optimistic write then learns otherwise).
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub(in crate::store) backoffs: HashMap<BucketKey, Bucket<BackoffState>>,
    pub(in crate::store) windows: HashMap<BucketKey, Bucket<RateState>>,
    /// The code item as stored (spent, expired or not).
    pub(in crate::store) code: Option<Code>,
}

impl Seen {
    /// The stored version of a bucket (0 when absent) and its state if still live.
    fn backoff(&self, key: &BucketKey, now: Timestamp) -> (u64, BackoffState) {
        version_and_state(self.backoffs.get(key), now)
    }

    fn window(&self, key: &BucketKey, now: Timestamp) -> (u64, RateState) {
        version_and_state(self.windows.get(key), now)
    }

    /// The code, if one more try of it can be counted: alive and not out of tries.
    pub(in crate::store) fn countable_code(&self, max: u32, now: Timestamp) -> Option<&Code> {
        self.code
            .as_ref()
            .filter(|c| c.expires_at > now && c.attempts < max)
    }
}

fn version_and_state<T: Default + Clone>(b: Option<&Bucket<T>>, now: Timestamp) -> (u64, T) {
    match b {
        Some(b) if b.expires_at > now => (b.ver, b.state.clone()),
        Some(b) => (b.ver, T::default()),
        None => (0, T::default()),
    }
}

/// A bucket's new record, to be written only if it is still at version `seen`.
#[derive(Debug, Clone)]
pub(in crate::store) struct BucketWrite {
    pub key: BucketKey,
    pub seen: u64,
    pub record: BucketRecord,
}

#[derive(Debug, Clone)]
pub(in crate::store) enum BucketRecord {
    Backoff(Bucket<BackoffState>),
    Window(Bucket<RateState>),
}

/// What taking an attempt's slots writes, and what a success will give back.
#[derive(Debug)]
pub(in crate::store) struct Plan {
    pub writes: Vec<BucketWrite>,
    pub settle: Settle,
}

/// A limiter refused the attempt: nothing was counted and no secret checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: i64,
}

/// Decides an attempt at `now` from the buckets `seen`: every bucket must let
/// it through, or none is written and the longest wait is the answer. `op`
/// names the write, so a store can recognise its own write landing twice.
pub(in crate::store) fn plan(
    attempt: &Attempt,
    seen: &Seen,
    op: &str,
    now: Timestamp,
) -> Result<Plan, Refused> {
    let backoff = &attempt.rules.backoff;
    let mut waits = vec![];
    let mut writes = vec![];
    let mut settle = Settle::default();
    let key = attempt.backoff_key();
    let (ver, state) = seen.backoff(&key, now);
    match backoff.take(state, now) {
        Ok(next) => writes.push(BucketWrite {
            key: key.clone(),
            seen: ver,
            record: BucketRecord::Backoff(Bucket {
                state: next,
                ver: ver + 1,
                op: op.to_string(),
                expires_at: backoff.expires_at(&next),
            }),
        }),
        Err(wait) => waits.push(wait),
    }
    settle.clear = Some(key);
    for (key, rule) in attempt.windows() {
        let (ver, state) = seen.window(&key, now);
        match state.check(&rule, now) {
            Ok(()) => {
                let next = state.hit(&rule, now);
                settle.refunds.push((key.clone(), next.window_start));
                writes.push(BucketWrite {
                    key,
                    seen: ver,
                    record: BucketRecord::Window(Bucket {
                        state: next,
                        ver: ver + 1,
                        op: op.to_string(),
                        expires_at: next.expires_at(&rule),
                    }),
                });
            }
            Err(wait) => waits.push(wait),
        }
    }
    match waits.into_iter().max() {
        Some(retry_after) => Err(Refused { retry_after }),
        None => Ok(Plan { writes, settle }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Backoff;

    const RULES: Guessing = Guessing {
        backoff: Backoff {
            after: 2,
            max: 900,
            window: 3600,
        },
        account: Rule {
            window: 86_400,
            max: 3,
            cooldown: 0,
        },
        ip: Rule {
            window: 3600,
            max: 100,
            cooldown: 0,
        },
        code_attempts: 5,
    };

    fn attempt(lane: Lane) -> Attempt {
        Attempt {
            identifier: "ada@example.com".into(),
            lane,
            code: None,
            rules: RULES,
        }
    }

    /// `seen` with `plan`'s writes applied, as a store would.
    fn apply(seen: &mut Seen, plan: &Plan) {
        for w in &plan.writes {
            match &w.record {
                BucketRecord::Backoff(b) => seen.backoffs.insert(w.key.clone(), b.clone()),
                BucketRecord::Window(b) => {
                    seen.windows.insert(w.key.clone(), b.clone());
                    None
                }
            };
        }
    }

    #[test]
    fn an_address_counts_in_three_buckets_and_the_longest_wait_wins() {
        let a = attempt(Lane::Address {
            ip: "203.0.113.7".into(),
            account_wide: true,
        });
        let mut seen = Seen::default();
        for now in [10, 10] {
            let p = plan(&a, &seen, "op", now).unwrap();
            assert_eq!(p.writes.len(), 3);
            apply(&mut seen, &p);
        }
        // The back-off waits 1 s now; a third slot in the account window is still free.
        assert_eq!(plan(&a, &seen, "op", 10).unwrap_err().retry_after, 1);
        let third = plan(&a, &seen, "op", 11).unwrap();
        apply(&mut seen, &third);
        // Now the account window is full for the day: that wait is the longer one.
        let refused = plan(&a, &seen, "op", 13).unwrap_err();
        assert_eq!(refused.retry_after, 86_400 - 3);
    }

    #[test]
    fn a_device_counts_only_on_its_own_back_off() {
        let a = attempt(Lane::Device("d1".into()));
        let p = plan(&a, &Seen::default(), "op", 10).unwrap();
        assert_eq!(a.keys().len(), 1);
        assert_eq!(p.writes.len(), 1);
        assert!(p.settle.refunds.is_empty());
        assert_eq!(p.settle.clear, Some(a.keys()[0].clone()));
    }

    #[test]
    fn versions_count_up_from_what_was_seen_even_when_expired() {
        let a = attempt(Lane::Device("d1".into()));
        let mut seen = Seen::default();
        let old = Bucket {
            state: BackoffState {
                attempts: 9,
                last: 0,
                next_at: 5,
            },
            ver: 7,
            op: "old".into(),
            expires_at: 6,
        };
        seen.backoffs.insert(a.keys()[0].clone(), old);
        let p = plan(&a, &seen, "new", 10).unwrap();
        let w = &p.writes[0];
        assert_eq!(w.seen, 7);
        let BucketRecord::Backoff(b) = &w.record else {
            panic!("a back-off bucket")
        };
        assert_eq!((b.ver, b.state.attempts, b.op.as_str()), (8, 1, "new"));
    }
}
