//! The store: every read and write the handlers need, as whole operations, so each
//! backend can do them atomically and in as few round trips as it allows.

pub mod dynamo;
pub mod embedded;
mod records;

/// The store's traits, for code that calls a backend by its concrete type.
pub mod prelude {
    pub use super::{Accounts, Codes, Limits, Lockouts, Sessions, Store};
}

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::model::{
    Backoff, Code, FailureKey, Lockout, LoginRecord, Purpose, RefreshIssue, RefreshRedemption,
    Rule, Session, Totp, User,
};
use crate::secret::Secret;

pub type StoreResult<T> = Result<T, StoreError>;

/// What made the store fail: the database's own error, kept for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness guard refused the write.
    #[error("{0} is already used by another account")]
    Taken(Unique),
    #[error("no such user")]
    NoSuchUser,
    /// The backing database failed or timed out; nothing was written.
    #[error("the store is unavailable")]
    Unavailable(#[source] Cause),
    /// Stored data could not be read back (a bug or a manual edit).
    #[error("corrupt record {key}")]
    Corrupt {
        key: String,
        #[source]
        source: Cause,
    },
}

impl StoreError {
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        StoreError::Unavailable(cause.into())
    }

    pub fn corrupt(key: impl Into<String>, cause: impl Into<Cause>) -> Self {
        StoreError::Corrupt {
            key: key.into(),
            source: cause.into(),
        }
    }
}

/// The unique attributes of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    Email,
    Phone,
}

impl std::fmt::Display for Unique {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unique::Email => "email",
            Unique::Phone => "phone",
        })
    }
}

/// A change to one account. Each is applied atomically with its guards.
#[derive(Debug, Clone)]
pub enum UserChange {
    Email(String),
    Name(String),
    Avatar(String),
    Password(Secret<String>),
    Phone(Option<String>),
    Totp(Option<Totp>),
    Lark(Option<serde_json::Value>),
    Active(bool),
}

/// The outcome of presenting a one-time code.
#[derive(Debug, Clone)]
pub enum Redemption {
    /// The code was right; it is now spent.
    Accepted(Code),
    /// Wrong, expired, unknown, or already spent. A wrong guess used up one attempt.
    Rejected,
}

/// How a login attempt names its account.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    Email(&'a str),
    Phone(&'a str),
}

impl Lookup<'_> {
    /// The identifier failures of an unknown account are counted under.
    pub fn identifier(&self) -> String {
        match self {
            Lookup::Email(e) => e.to_lowercase(),
            Lookup::Phone(p) => p.to_string(),
        }
    }
}

/// What a login attempt must know before it checks a secret.
#[derive(Debug, Clone)]
pub struct LoginSubject {
    pub user: Option<User>,
    /// The account's lockout, or the unknown identifier's.
    pub lockout: Lockout,
    /// Whether the client IP is under its failure cap.
    pub ip: Decision,
}

/// Whether a limiter let a hit through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Refused { retry_after: i64 },
}

/// Accounts with their uniqueness guards, and the TOTP step each one last accepted.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Adds an account; fails with [`StoreError::Taken`] when its email or phone is in use.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn user(&self, id: &str) -> StoreResult<Option<User>>;
    /// Looks up by email, case-insensitively.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Applies one change, moving email and phone guards in the same transaction.
    async fn update_user(&self, id: &str, change: UserChange, now: Timestamp) -> StoreResult<()>;
    /// Moves a user's last accepted TOTP step forward; `false` if `step` is not newer.
    async fn advance_totp(&self, user_id: &str, step: u64) -> StoreResult<bool>;
}

/// Consecutive login failures: an account's, or an unknown identifier's.
#[async_trait]
pub trait Lockouts: Send + Sync {
    /// Counts one more consecutive failure and returns the resulting lockout.
    async fn record_failure(
        &self,
        key: &FailureKey,
        backoff: &Backoff,
        now: Timestamp,
    ) -> StoreResult<Lockout>;
    /// The lockout of an identifier without an account (accounts carry theirs).
    async fn unknown_lockout(&self, identifier: &str, now: Timestamp) -> StoreResult<Lockout>;
}

/// Signed-in devices, and their pending refresh codes.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Records a login: stores the session, appends history, counts it, clears failures.
    async fn begin_session(&self, session: &Session, login: &LoginRecord) -> StoreResult<()>;
    /// A live session (expired ones read as `None`).
    async fn session(
        &self,
        user_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Session>>;
    /// A user's live sessions, newest first, from one bounded read of the
    /// newest [`READ_AT_MOST`](crate::sessions::READ_AT_MOST) stored.
    async fn sessions(&self, user_id: &str, now: Timestamp) -> StoreResult<Vec<Session>>;
    /// Slides a live session's expiry and notes `now` as last seen; `false`
    /// when it no longer exists.
    async fn renew_session(
        &self,
        user_id: &str,
        id: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool>;
    async fn end_session(&self, user_id: &str, id: &str) -> StoreResult<()>;
    /// Ends one live session of the user; `false` when the user has none keyed `id`.
    async fn end_live_session(&self, user_id: &str, id: &str, now: Timestamp) -> StoreResult<bool>;
    /// Ends every session of a user but `keep`; returns how many live ones ended.
    async fn end_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<usize>;
    /// Adds a pending refresh code to a live session, as
    /// [`RefreshCodes::issue`](crate::model::RefreshCodes::issue) says, in one
    /// atomic write (`seen` is the session as the caller read it, so the common
    /// case needs no other read).
    async fn add_refresh_code(
        &self,
        seen: &Session,
        digest: &str,
        expires_at: Timestamp,
        allowance: u32,
        now: Timestamp,
    ) -> StoreResult<RefreshIssue>;
    /// Presents a refresh code's digest to a live session, as
    /// [`RefreshCodes::redeem`](crate::model::RefreshCodes::redeem) says: the
    /// try is taken before the lookup, in the same atomic write that spends the
    /// code. `None` when the session has ended.
    async fn redeem_refresh_code(
        &self,
        seen: &Session,
        digest: &str,
        now: Timestamp,
    ) -> StoreResult<Option<RefreshRedemption>>;
}

/// Pending one-time codes.
#[async_trait]
pub trait Codes: Send + Sync {
    /// Stores a code, replacing any pending one for the same purpose and subject.
    async fn put_code(&self, code: &Code) -> StoreResult<()>;
    /// Spends the code if its digest is one of `digests` (one per server key in
    /// force), atomically: of concurrent redemptions at most one is accepted. A
    /// wrong code uses one attempt; the last one spends it.
    async fn redeem_code(
        &self,
        purpose: Purpose,
        subject: &str,
        digests: &[String],
        max_attempts: u32,
        now: Timestamp,
    ) -> StoreResult<Redemption>;
    /// Withdraws a code whose message could not be sent.
    async fn drop_code(&self, purpose: Purpose, subject: &str) -> StoreResult<()>;
}

/// Rate limiters: a window of hits per key.
#[async_trait]
pub trait Limits: Send + Sync {
    /// Counts a hit on a limiter key if the rule allows it.
    async fn hit(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Decision>;
    /// Whether a hit would be allowed, without counting one.
    async fn peek(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Decision>;
    /// Takes back the last hit (its message was never sent), so a retry is not blocked.
    async fn unhit(&self, key: &str, now: Timestamp) -> StoreResult<()>;
}

/// The whole store, as the handlers hold it (`Arc<dyn Store>`): one trait per
/// aggregate, and the one read that spans them.
#[async_trait]
pub trait Store: Accounts + Lockouts + Sessions + Codes + Limits + 'static {
    /// Everything a login needs first, in as few round trips as the backend allows.
    async fn login_subject(
        &self,
        lookup: Lookup<'_>,
        ip_key: &str,
        ip_rule: &Rule,
        now: Timestamp,
    ) -> StoreResult<LoginSubject> {
        let user = match lookup {
            Lookup::Email(e) => self.user_by_email(e).await?,
            Lookup::Phone(p) => self.user_by_phone(p).await?,
        };
        let lockout = match &user {
            Some(u) => u.lockout(),
            None => self.unknown_lockout(&lookup.identifier(), now).await?,
        };
        let ip = self.peek(ip_key, ip_rule, now).await?;
        Ok(LoginSubject { user, lockout, ip })
    }
}
