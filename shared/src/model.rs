//! What the store keeps: accounts, sessions, one-time codes and limiter state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::secret::Secret;

/// An account. Email is kept as entered; uniqueness is on its lowercase form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub avatar: String,
    pub phone: Option<String>,
    pub totp: Option<Totp>,
    /// The linked Lark (Feishu) identity; its `open_id` has a guard of its own.
    pub lark: Option<LarkIdentity>,
    /// Argon2 PHC string.
    pub password: Secret<String>,
    pub active: bool,
    /// Logins ever made (the seed's `sessions`).
    pub sessions: u64,
    /// The most recent login (the seed's `history`).
    pub history: Option<LoginRecord>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The credential version: moves on with every password change or reset
    /// and every disable. Each session carries the version it began under,
    /// and one that no longer matches is refused, so no session outlives a
    /// change of credentials, even one whose deletion failed. (0, absent,
    /// on accounts from before it was kept.)
    #[serde(default)]
    pub cred_version: u64,
}

/// A bound TOTP authenticator: the base32 secret and the last step accepted,
/// so a code is never accepted twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Totp {
    pub secret: Secret<String>,
    pub last_step: u64,
}

/// A Lark (Feishu) identity linked to an account: what the console shows and
/// signing in needs, from Lark's `user_info`. Never Lark's access or refresh
/// token. `open_id` (the user within this Lark app) is the one identity an
/// account is found by, so at most one account holds each (its guard item).
/// Fields other than `open_id` may be empty; records kept with more fields
/// (the original server's tokens) drop them on read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct LarkIdentity {
    /// The user within this Lark app, e.g. `ou_7d8a6e6df7621556ce0d21922b676706`.
    pub open_id: String,
    /// The user across the apps of one Lark developer.
    pub union_id: String,
    pub name: String,
    pub en_name: String,
    pub avatar_url: String,
    /// 72×72.
    pub avatar_thumb: String,
    /// 240×240.
    pub avatar_middle: String,
    /// 640×640.
    pub avatar_big: String,
    /// The user's organisation (Lark tenant).
    pub tenant_key: String,
}

/// A Lark sign-in or link in flight: begun by `GET /lark/authorize`, taken
/// (once) by the callback `GET /lark`. Keyed by a digest of the state nonce,
/// which only the browser's cookie and the state parameter carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LarkFlow {
    /// SHA-256 of the state nonce, hex.
    pub id: String,
    /// The server key the flow's PKCE verifier is derived under.
    pub key_id: String,
    /// To link: the session that asked. `None`: a sign-in.
    pub link: Option<LinkRequest>,
    pub expires_at: Timestamp,
}

/// The signed-in session a Lark identity is to be linked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRequest {
    pub user_id: String,
    pub session_id: String,
}

/// How a login was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoginMethod {
    Password,
    Sms,
    Totp,
    Lark,
}

/// The most recent login, in the shape the weplanx console reads from `GET /user`
/// (`history.timestamp`, `history.metadata.client_ip`) and the original server stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredLogin")]
pub struct LoginRecord {
    pub timestamp: Timestamp,
    pub metadata: LoginMetadata,
    pub user_agent: String,
}

/// Where a login came from and how it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginMetadata {
    pub client_ip: String,
    /// The sign-in method.
    pub source: LoginMethod,
}

impl LoginRecord {
    pub fn new(
        timestamp: Timestamp,
        client_ip: &str,
        user_agent: &str,
        source: LoginMethod,
    ) -> Self {
        LoginRecord {
            timestamp,
            metadata: LoginMetadata {
                client_ip: client_ip.into(),
                source,
            },
            user_agent: user_agent.into(),
        }
    }
}

/// A login as either shape reads: the current one, or the flat one written
/// before the console's shape was adopted (`{time, ip, user_agent, method}`),
/// which is migrated on read and rewritten by the next login.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredLogin {
    Current {
        timestamp: Timestamp,
        metadata: LoginMetadata,
        user_agent: String,
    },
    Flat {
        time: Timestamp,
        ip: String,
        user_agent: String,
        method: LoginMethod,
    },
}

impl From<StoredLogin> for LoginRecord {
    fn from(stored: StoredLogin) -> Self {
        match stored {
            StoredLogin::Current {
                timestamp,
                metadata,
                user_agent,
            } => LoginRecord {
                timestamp,
                metadata,
                user_agent,
            },
            StoredLogin::Flat {
                time,
                ip,
                user_agent,
                method,
            } => LoginRecord::new(time, &ip, &user_agent, method),
        }
    }
}

/// One signed-in device. Its `expires_at` slides forward while it is used.
/// Fields added since the first release are optional, so older records still read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Session {
    pub user_id: String,
    /// The store key, derived from the token's `jti` ([`crate::sessions::key_of`]);
    /// also the id the device list shows for current sessions.
    pub id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub ip: String,
    pub user_agent: String,
    /// How it signed in (unknown for sessions from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<LoginMethod>,
    /// When it was last renewed (at most once a minute while in use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// When its holder last proved who they are: the sign-in, or the latest
    /// `POST /user/reauthenticate`. A refresh does not move it. (Absent on
    /// sessions from before it was kept: their sign-in.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<Timestamp>,
    /// The account's credential version when it began ([`User::cred_version`]).
    #[serde(default)]
    pub cred_version: u64,
    #[serde(flatten)]
    pub refresh: RefreshCodes,
}

impl Session {
    /// The session a login to `user` (as the login read it) starts, keyed
    /// `id`, alive for `ttl`, with no refresh code pending.
    pub fn begin(user: &User, id: String, login: &LoginRecord, ttl: i64) -> Self {
        Session {
            user_id: user.id.clone(),
            id,
            created_at: login.timestamp,
            expires_at: login.timestamp + ttl,
            ip: login.metadata.client_ip.clone(),
            user_agent: login.user_agent.clone(),
            method: Some(login.metadata.source),
            last_seen: Some(login.timestamp),
            auth_time: Some(login.timestamp),
            cred_version: user.cred_version,
            refresh: RefreshCodes {
                pending: Some(BTreeMap::new()),
                ..RefreshCodes::default()
            },
        }
    }

    /// When it was last seen: its renewal, or its sign-in.
    pub fn seen_at(&self) -> Timestamp {
        self.last_seen.unwrap_or(self.created_at)
    }

    /// When its holder last signed in or re-authenticated.
    pub fn authenticated_at(&self) -> Timestamp {
        self.auth_time.unwrap_or(self.created_at)
    }

    /// Whether it may act for `user` as the account now stands: the account
    /// is active and its credentials are the ones the session began under.
    pub fn is_valid_for(&self, user: &User) -> bool {
        user.active && user.id == self.user_id && user.cred_version == self.cred_version
    }
}

/// A session's pending refresh codes, and its tries at them.
///
/// Up to [`PENDING_REFRESH_CODES`](crate::sessions::PENDING_REFRESH_CODES)
/// codes may be pending, so tabs refresh independently. Every exchange, right
/// or wrong, takes a try *before* its code is looked up, in the same atomic
/// write that spends the code; a session has `allowance` tries plus one for
/// each code issued to it. So a tab that exchanges its own code never uses up
/// the allowance, concurrent tabs never starve one another, and wrong guesses
/// are at most `allowance` plus the codes issued and never exchanged. Field
/// names are the stored attributes, which DynamoDB's update expressions name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshCodes {
    /// Digest of each pending code → its expiry. `None` on sessions from
    /// before several codes could be pending.
    #[serde(
        rename = "refresh_codes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub pending: Option<BTreeMap<String, Timestamp>>,
    /// Exchanges tried so far.
    #[serde(
        rename = "refresh_tries",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tries: Option<u64>,
    /// Exchanges allowed so far; `None` until the first code is issued.
    #[serde(
        rename = "refresh_limit",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub limit: Option<u64>,
}

/// The outcome of asking for a refresh code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshIssue {
    Added,
    /// As many codes as allowed are pending; one expires in `retry_after` seconds.
    Full {
        retry_after: i64,
    },
    /// The session has ended.
    Ended,
}

/// The outcome of presenting a refresh code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRedemption {
    /// Right and live: spent, one try taken.
    Accepted,
    /// Wrong, expired or already spent: one try taken (none when no code
    /// was ever issued, so there was nothing to try).
    Rejected,
    /// No try left: refused without looking the code up.
    Refused,
}

impl RefreshCodes {
    fn pending(&self) -> impl Iterator<Item = (&String, &Timestamp)> {
        self.pending.iter().flatten()
    }

    /// How many entries are stored, expired ones included.
    pub fn stored(&self) -> usize {
        self.pending().count()
    }

    /// Digests whose codes have expired, other than those in `but`.
    pub fn expired(&self, now: Timestamp, but: &[String]) -> Vec<String> {
        self.pending()
            .filter(|(d, e)| **e <= now && !but.contains(d))
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// `Err(retry_after)` when `cap` codes are live: the wait until one expires.
    pub fn room(&self, now: Timestamp, cap: usize) -> Result<(), i64> {
        let live: Vec<_> = self.pending().filter(|(_, e)| **e > now).collect();
        match live.iter().map(|(_, e)| **e).min() {
            Some(first) if live.len() >= cap => Err(first - now),
            _ => Ok(()),
        }
    }

    /// Whether an exchange may be tried.
    pub fn may_try(&self) -> bool {
        self.limit
            .is_some_and(|limit| self.tries.unwrap_or(0) < limit)
    }

    /// Whether `digest` is a pending code that has not expired.
    pub fn is_live(&self, digest: &str, now: Timestamp) -> bool {
        self.pending
            .as_ref()
            .and_then(|p| p.get(digest))
            .is_some_and(|e| *e > now)
    }

    /// Adds a code if fewer than `cap` are live, dropping the expired ones,
    /// and grants one try (the first code also grants the `allowance`).
    pub fn issue(
        &mut self,
        digest: &str,
        expires_at: Timestamp,
        now: Timestamp,
        cap: usize,
        allowance: u32,
    ) -> RefreshIssue {
        if let Err(retry_after) = self.room(now, cap) {
            return RefreshIssue::Full { retry_after };
        }
        let expired = self.expired(now, &[digest.to_string()]);
        let pending = self.pending.get_or_insert_with(BTreeMap::new);
        for d in expired {
            pending.remove(&d);
        }
        pending.insert(digest.to_string(), expires_at);
        self.limit = Some(self.limit.unwrap_or(u64::from(allowance)) + 1);
        self.tries.get_or_insert(0);
        RefreshIssue::Added
    }

    /// Presents a code by its `digests`, one per server key in force (it may
    /// have been issued under any of them): takes a try if one is left, then
    /// spends the code if one of them is live. Expired entries go too.
    pub fn redeem(&mut self, digests: &[String], now: Timestamp) -> RefreshRedemption {
        if self.limit.is_none() {
            return RefreshRedemption::Rejected;
        }
        if !self.may_try() {
            return RefreshRedemption::Refused;
        }
        self.tries = Some(self.tries.unwrap_or(0) + 1);
        let live = digests.iter().any(|d| self.is_live(d, now));
        let expired = self.expired(now, digests);
        if let Some(pending) = self.pending.as_mut() {
            for d in digests.iter().chain(&expired) {
                pending.remove(d);
            }
        }
        if live {
            RefreshRedemption::Accepted
        } else {
            RefreshRedemption::Rejected
        }
    }
}

/// What a one-time code is for; part of its key and of its HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    SmsLogin,
    PhoneBind,
    PasswordReset,
    TotpBind,
    Refresh,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::SmsLogin => "sms-login",
            Purpose::PhoneBind => "phone-bind",
            Purpose::PasswordReset => "password-reset",
            Purpose::TotpBind => "totp-bind",
            Purpose::Refresh => "refresh",
        }
    }
}

/// A pending one-time code. Only its HMAC is stored, never the code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Code {
    pub purpose: Purpose,
    pub subject: String,
    pub digest: String,
    pub attempts: u32,
    pub expires_at: Timestamp,
}

/// A limiter rule: at most `max` hits per `window` seconds, and at least
/// `cooldown` seconds between two hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub window: i64,
    pub max: u32,
    pub cooldown: i64,
}

/// State of one limiter key: a window that starts at its first hit.
/// Fields a store has not written yet read as zero.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RateState {
    pub window_start: Timestamp,
    pub count: u32,
    pub last: Timestamp,
}

impl RateState {
    /// Decide a hit at `now`: `Err(retry_after)` when refused, waiting for
    /// whichever of the cooldown and the window cap ends later.
    pub fn check(&self, rule: &Rule, now: Timestamp) -> Result<(), i64> {
        let fresh = self.count == 0 || self.window_start + rule.window <= now;
        let cooling = if rule.cooldown > 0 && self.count > 0 && self.last + rule.cooldown > now {
            self.last + rule.cooldown - now
        } else {
            0
        };
        let capped = if !fresh && self.count >= rule.max {
            self.window_start + rule.window - now
        } else {
            0
        };
        match cooling.max(capped) {
            0 => Ok(()),
            wait => Err(wait),
        }
    }

    /// The state after an accepted hit at `now`.
    pub fn hit(&self, rule: &Rule, now: Timestamp) -> RateState {
        if self.count == 0 || self.window_start + rule.window <= now {
            RateState {
                window_start: now,
                count: 1,
                last: now,
            }
        } else {
            RateState {
                window_start: self.window_start,
                count: self.count + 1,
                last: now,
            }
        }
    }

    /// When the state stops mattering and may be dropped.
    pub fn expires_at(&self, rule: &Rule) -> Timestamp {
        (self.window_start + rule.window).max(self.last + rule.cooldown)
    }
}

/// One client's attempts at the secrets of one identifier: exponential
/// back-off over failures that decay. Fields a store has not written read as zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackoffState {
    /// Attempts since the count last started over.
    pub attempts: u32,
    /// The latest attempt.
    pub last: Timestamp,
    /// No attempt before this time.
    pub next_at: Timestamp,
}

/// Exponential back-off: `after` attempts go through at once, then each waits
/// 1 s, 2 s, 4 s... up to `max`; after `window` seconds without an attempt the
/// count starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Backoff {
    pub after: u32,
    pub max: i64,
    pub window: i64,
}

impl Backoff {
    /// The state once one more attempt at `now` has taken its slot, or how many
    /// seconds it must wait first.
    pub fn take(&self, state: BackoffState, now: Timestamp) -> Result<BackoffState, i64> {
        if now < state.next_at {
            return Err(state.next_at - now);
        }
        let decayed = now - state.last > self.window;
        let attempts = if decayed { 0 } else { state.attempts }.saturating_add(1);
        let next_at = match attempts.checked_sub(self.after) {
            Some(over) => now + (1i64 << over.min(30)).min(self.max),
            None => 0,
        };
        Ok(BackoffState {
            attempts,
            last: now,
            next_at,
        })
    }

    /// When `state` stops mattering: its wait is over and its count has decayed.
    pub fn expires_at(&self, state: &BackoffState) -> Timestamp {
        (state.last + self.window + 1).max(state.next_at)
    }
}

/// The limits on guessing a secret: a back-off per (identifier, client), a
/// window per identifier for clients without a device cookie, one per client
/// address across identifiers, and the tries a one-time code allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Guessing {
    pub backoff: Backoff,
    pub account: Rule,
    pub ip: Rule,
    pub code_attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = Rule {
        window: 3600,
        max: 3,
        cooldown: 60,
    };

    #[test]
    fn cooldown_then_window_cap() {
        let mut s = RateState::default();
        let mut now = 1_000;
        assert!(s.check(&RULE, now).is_ok());
        s = s.hit(&RULE, now);
        assert_eq!(s.check(&RULE, now + 10), Err(50));
        now += 60;
        s = s.hit(&RULE, now);
        now += 60;
        s = s.hit(&RULE, now);
        now += 60;
        assert_eq!(s.check(&RULE, now), Err(1_000 + 3600 - now));
        // During a cooldown with the cap used up, the longer wait is the answer.
        assert_eq!(s.check(&RULE, now - 30), Err(1_000 + 3600 - now + 30));
        assert!(s.check(&RULE, 1_000 + 3600).is_ok());
        assert_eq!(s.hit(&RULE, 1_000 + 3600).count, 1);
    }

    const BACKOFF: Backoff = Backoff {
        after: 5,
        max: 900,
        window: 3600,
    };

    #[test]
    fn logins_read_in_both_shapes_and_write_in_the_current_one() {
        let expected = LoginRecord::new(1_800_000_000, "203.0.113.7", "ua/1", LoginMethod::Sms);
        let flat = serde_json::json!({
            "time": 1_800_000_000, "ip": "203.0.113.7", "user_agent": "ua/1", "method": "sms",
        });
        let current = serde_json::to_value(&expected).unwrap();
        assert_eq!(
            current,
            serde_json::json!({
                "timestamp": 1_800_000_000,
                "metadata": { "client_ip": "203.0.113.7", "source": "sms" },
                "user_agent": "ua/1",
            })
        );
        for stored in [flat, current] {
            let read: LoginRecord = serde_json::from_value(stored.clone()).unwrap();
            assert_eq!(read, expected, "{stored}");
            // DynamoDB's attribute values go through `deserialize_any` too.
            let item: serde_dynamo::AttributeValue =
                serde_dynamo::to_attribute_value(&stored).unwrap();
            let read: LoginRecord = serde_dynamo::from_attribute_value(item).unwrap();
            assert_eq!(read, expected, "{stored}");
        }
        let neither = serde_json::json!({ "time": 1, "ip": "x" });
        assert!(serde_json::from_value::<LoginRecord>(neither).is_err());
    }

    #[test]
    fn backoff_lets_five_through_then_doubles_and_caps() {
        let mut state = BackoffState::default();
        let mut waits = vec![];
        let mut now = 1_000;
        for _ in 0..16 {
            state = BACKOFF.take(state, now).expect("the wait is over");
            waits.push(state.next_at.saturating_sub(now).max(0));
            // Another attempt now must wait exactly that long.
            if state.next_at > now {
                assert_eq!(BACKOFF.take(state, now), Err(state.next_at - now));
            }
            now = now.max(state.next_at);
        }
        assert_eq!(&waits[..8], &[0, 0, 0, 0, 1, 2, 4, 8]);
        assert_eq!(waits[13], 512);
        assert_eq!(waits[14], 900);
        let many = BackoffState {
            attempts: u32::MAX,
            last: now,
            next_at: now,
        };
        assert_eq!(BACKOFF.take(many, now).unwrap().next_at, now + 900);
    }

    #[test]
    fn failures_decay_after_the_window() {
        let mut state = BackoffState::default();
        for _ in 0..5 {
            state = BACKOFF.take(state, 100).unwrap();
        }
        assert_eq!(state.next_at, 101);
        assert_eq!(BACKOFF.expires_at(&state), 100 + 3601);
        // Within the window the count goes on; after it, it starts over.
        assert_eq!(BACKOFF.take(state, 3700).unwrap().attempts, 6);
        let fresh = BACKOFF.take(state, 3701).unwrap();
        assert_eq!((fresh.attempts, fresh.next_at), (1, 0));
    }
}
