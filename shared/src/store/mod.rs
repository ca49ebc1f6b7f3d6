//! The store: every read and write the handlers need, as whole operations, so each
//! backend can do them atomically and in as few round trips as it allows.

pub mod dynamo;
pub mod embedded;
mod records;
pub mod settle;
pub mod slots;

/// The store's traits, for code that calls a backend by its concrete type.
pub mod prelude {
    pub use super::{Accounts, Codes, Flows, Guesses, Limits, Sessions, Store};
}

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::model::{
    Code, LarkFlow, LarkIdentity, LoginRecord, Purpose, RefreshIssue, RefreshRedemption, Rule,
    Session, Totp, User,
};
use crate::secret::Secret;
pub use settle::{Settle, Taken};
pub use slots::{Attempt, BucketKey, CodeRef, Lane, Refused, Seen};

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
    /// The account's credentials changed since it was read (a racing reset,
    /// password change or disable): nothing was written.
    #[error("the account's credentials changed meanwhile")]
    Changed,
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
    /// A Lark identity (its `open_id`).
    Lark,
}

impl std::fmt::Display for Unique {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unique::Email => "email",
            Unique::Phone => "phone",
            Unique::Lark => "Lark identity",
        })
    }
}

/// A change to one account. Each is applied atomically with its guards.
#[derive(Debug, Clone)]
pub enum UserChange {
    Email(String),
    Name(String),
    Avatar(String),
    /// A new password hash. Moves the credential version on, so every session
    /// begun before is refused; `keep` (the changer's own session) is moved
    /// along in the same write, on condition that it was valid until then
    /// (else [`StoreError::Changed`], nothing written).
    Password {
        hash: Secret<String>,
        keep: Option<String>,
    },
    Phone(Option<String>),
    Totp(Option<Totp>),
    /// Links (moving the `open_id` guard) or unlinks a Lark identity.
    Lark(Option<LarkIdentity>),
    /// Enables or disables the account; a disable moves the credential
    /// version on, so its sessions stay refused after a later enable.
    Active(bool),
}

impl UserChange {
    /// Whether the change moves the credential version on.
    pub fn ends_sessions(&self) -> bool {
        matches!(
            self,
            UserChange::Password { .. } | UserChange::Active(false)
        )
    }
}

/// The outcome of presenting a one-time code.
#[derive(Debug, Clone)]
pub enum Redemption {
    /// The code was right; it is now spent.
    Accepted(Code),
    /// Wrong, expired, unknown, or already spent. A wrong guess used up one attempt.
    Rejected,
}

/// How an attempt names its account.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    Email(&'a str),
    Phone(&'a str),
    /// The signed-in account.
    Id(&'a str),
}

impl Lookup<'_> {
    /// The identifier the attempt's failures are counted under, known or not:
    /// the lowercased email or the phone. For an account named by id, its
    /// lowercased email, known once it is read.
    pub fn identifier(&self) -> Option<String> {
        match self {
            Lookup::Email(e) => Some(e.to_lowercase()),
            Lookup::Phone(p) => Some(p.to_string()),
            Lookup::Id(_) => None,
        }
    }
}

/// What an attempt at a secret reads first, in one round trip where the backend allows.
#[derive(Debug, Clone)]
pub struct Opening<'a> {
    pub account: Lookup<'a>,
    /// The account a device cookie names, read along in case it is the same.
    pub device_user: Option<&'a str>,
    /// The buckets the attempt may count in (none when the identifier is not known yet).
    pub buckets: Vec<BucketKey>,
    pub code: Option<&'a CodeRef>,
}

/// What the first read found.
#[derive(Debug, Default)]
pub struct Opened {
    /// The account's id, when it exists.
    pub user_id: Option<String>,
    /// The account, when the read could fetch it too.
    pub user: Option<User>,
    pub seen: Seen,
}

/// Whether a limiter let a hit through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Refused { retry_after: i64 },
}

/// Accounts with their uniqueness guards.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Adds an account; fails with [`StoreError::Taken`] when its email or phone is in use.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn user(&self, id: &str) -> StoreResult<Option<User>>;
    /// Looks up by email, case-insensitively.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>>;
    /// The id of the account a Lark identity is linked to (its guard only).
    async fn user_id_by_lark(&self, open_id: &str) -> StoreResult<Option<String>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Applies one change, moving email, phone and Lark guards in the same transaction.
    async fn update_user(&self, id: &str, change: UserChange, now: Timestamp) -> StoreResult<()>;
}

/// Slots taken by attempts at secrets ([`slots`]), and what a success gives back.
#[async_trait]
pub trait Guesses: Send + Sync {
    /// Takes the slots of `attempt`, and one try of its code, in one atomic
    /// operation; or, when a bucket refuses, takes none. `seen` is what this
    /// request's first read found (DynamoDB starts its optimistic write from it).
    async fn take_slots(
        &self,
        attempt: &Attempt,
        seen: Seen,
        now: Timestamp,
    ) -> StoreResult<Result<Taken, Refused>>;
    /// Applies `change` to `user` with what a successful attempt gives back, in
    /// one atomic write; `false` (and nothing written) when the code it spends
    /// was spent meanwhile.
    async fn settle_change(
        &self,
        user: &User,
        change: UserChange,
        settle: &Settle,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Forgets every failure counted on these identifiers (a password reset).
    async fn clear_failures(&self, identifiers: &[String]) -> StoreResult<()>;
}

/// Signed-in devices, and their pending refresh codes.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Records a login with what its attempt gives back: stores the session,
    /// sets history, counts it. `false` (and nothing written) when the code it
    /// spends was spent, or its TOTP step used, by a racing attempt; or when
    /// the account is no longer active at the credential version the session
    /// carries (a reset, password change or disable landed after the login
    /// read the account).
    async fn begin_session(
        &self,
        session: &Session,
        login: &LoginRecord,
        settle: &Settle,
    ) -> StoreResult<bool>;
    /// Marks a live session as re-authenticated at `now` (its `auth_time`),
    /// with what the attempt gives back and the TOTP step it used, in one
    /// write. `false` (nothing written) when the session ended or expired, or
    /// a racing attempt used the step. The credential version is not
    /// checked: a session a change refused stays refused, fresh or not.
    async fn reauthenticate(
        &self,
        session: &Session,
        settle: &Settle,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// A live session (expired ones read as `None`) and its account, in one
    /// read: what every signed-in request checks.
    async fn session_and_user(
        &self,
        user_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<(Option<Session>, Option<User>)>;
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
    /// Presents a refresh code's digests (one per server key in force) to a
    /// live session, as [`RefreshCodes::redeem`](crate::model::RefreshCodes::redeem)
    /// says: the try is taken before the lookup, in the same atomic write that
    /// spends the code. `None` when the session has ended.
    async fn redeem_refresh_code(
        &self,
        seen: &Session,
        digests: &[String],
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
    /// Takes back the last hit (its message was never sent), so a retry is not blocked.
    async fn unhit(&self, key: &str, now: Timestamp) -> StoreResult<()>;
}

/// Lark sign-ins and links in flight.
#[async_trait]
pub trait Flows: Send + Sync {
    async fn put_lark_flow(&self, flow: &LarkFlow) -> StoreResult<()>;
    /// Takes the flow keyed `id` away, in one atomic operation: of concurrent
    /// takes at most one gets it. An expired flow reads as `None` (and goes too).
    async fn take_lark_flow(&self, id: &str, now: Timestamp) -> StoreResult<Option<LarkFlow>>;
}

/// The whole store, as the handlers hold it (`Arc<dyn Store>`): one trait per
/// aggregate, and the one read that spans them.
#[async_trait]
pub trait Store: Accounts + Guesses + Sessions + Codes + Limits + Flows + 'static {
    /// What an attempt at a secret needs first, in as few round trips as the
    /// backend allows. This default reads the account only: a backend whose
    /// [`Guesses::take_slots`] reads the buckets itself needs nothing more.
    async fn open_attempt(&self, opening: &Opening<'_>, _now: Timestamp) -> StoreResult<Opened> {
        let user = match opening.account {
            Lookup::Email(e) => self.user_by_email(e).await?,
            Lookup::Phone(p) => self.user_by_phone(p).await?,
            Lookup::Id(id) => self.user(id).await?,
        };
        Ok(Opened {
            user_id: user.as_ref().map(|u| u.id.clone()),
            user,
            seen: Seen::default(),
        })
    }
}
