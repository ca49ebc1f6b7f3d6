//! A store that can park a login between its checks and its write, so a test
//! can land a reset, a password change or a disable in between: the race a
//! stolen password would try to win. Every other call goes straight through to
//! the backend under test (embedded or DynamoDB on moto).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use shared::clock::Timestamp;
use shared::model::{
    Code, LarkFlow, LoginRecord, Purpose, RefreshIssue, RefreshRedemption, Rule, Session, User,
};
use shared::store::{
    Accounts, Attempt, Codes, Decision, Flows, Guesses, Limits, Opened, Opening, Redemption,
    Refused, Seen, Sessions, Settle, Store, StoreResult, Taken, UserChange,
};
use tokio::sync::oneshot;

/// A parked call's two signals: it arrived, and it may go on.
struct Gate {
    arrived: oneshot::Sender<()>,
    resume: oneshot::Receiver<()>,
}

pub struct Paused {
    inner: Arc<dyn Store>,
    gate: Mutex<Option<Gate>>,
}

/// The test's side of a parked call.
pub struct Parked {
    arrived: oneshot::Receiver<()>,
    resume: oneshot::Sender<()>,
}

impl Parked {
    /// Waits until the call is parked (a test whose call never gets there
    /// fails rather than hangs).
    pub async fn arrived(&mut self) {
        let arrived = tokio::time::timeout(Duration::from_secs(30), &mut self.arrived);
        arrived
            .await
            .expect("the call reached the store within 30 s")
            .expect("the call was parked");
    }

    /// Lets it go on.
    pub fn resume(self) {
        self.resume.send(()).expect("the parked call is waiting");
    }
}

impl Paused {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Paused {
            inner,
            gate: Mutex::new(None),
        }
    }

    /// Parks the next `begin_session` (a login whose secret was checked).
    pub fn park_next_login(&self) -> Parked {
        let (arrived_tx, arrived) = oneshot::channel();
        let (resume, resume_rx) = oneshot::channel();
        *self.gate.lock().unwrap() = Some(Gate {
            arrived: arrived_tx,
            resume: resume_rx,
        });
        Parked { arrived, resume }
    }
}

/// An impl of `$trait` whose methods only pass the call on, plus any written out.
macro_rules! pass {
    ($trait:ident { $(async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $out:ty;)* }) => {
        #[async_trait]
        impl $trait for Paused {
            $(async fn $name(&self $(, $arg: $ty)*) -> $out {
                self.inner.$name($($arg),*).await
            })*
        }
    };
}

pass!(Accounts {
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn user(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>>;
    async fn user_id_by_lark(&self, open_id: &str) -> StoreResult<Option<String>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    async fn update_user(&self, id: &str, change: UserChange, now: Timestamp) -> StoreResult<()>;
});

pass!(Guesses {
    async fn take_slots(&self, attempt: &Attempt, seen: Seen, now: Timestamp) -> StoreResult<Result<Taken, Refused>>;
    async fn settle_change(&self, user: &User, change: UserChange, settle: &Settle, now: Timestamp) -> StoreResult<bool>;
    async fn clear_failures(&self, identifiers: &[String]) -> StoreResult<()>;
});

pass!(Codes {
    async fn put_code(&self, code: &Code) -> StoreResult<()>;
    async fn redeem_code(&self, purpose: Purpose, subject: &str, digests: &[String], max_attempts: u32, now: Timestamp) -> StoreResult<Redemption>;
    async fn drop_code(&self, purpose: Purpose, subject: &str) -> StoreResult<()>;
});

pass!(Flows {
    async fn put_lark_flow(&self, flow: &LarkFlow) -> StoreResult<()>;
    async fn take_lark_flow(&self, id: &str, now: Timestamp) -> StoreResult<Option<LarkFlow>>;
});

pass!(Limits {
    async fn hit(&self, key: &str, rule: &Rule, now: Timestamp) -> StoreResult<Decision>;
    async fn unhit(&self, key: &str, now: Timestamp) -> StoreResult<()>;
});

/// Written out: `begin_session` parks.
#[async_trait]
impl Sessions for Paused {
    async fn begin_session(
        &self,
        session: &Session,
        login: &LoginRecord,
        settle: &Settle,
    ) -> StoreResult<bool> {
        let gate = self.gate.lock().unwrap().take();
        if let Some(gate) = gate {
            let _ = gate.arrived.send(());
            let _ = gate.resume.await;
        }
        self.inner.begin_session(session, login, settle).await
    }
    async fn reauthenticate(
        &self,
        session: &Session,
        settle: &Settle,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.inner.reauthenticate(session, settle, now).await
    }
    async fn session_and_user(
        &self,
        user_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<(Option<Session>, Option<User>)> {
        self.inner.session_and_user(user_id, id, now).await
    }
    async fn session(
        &self,
        user_id: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Session>> {
        self.inner.session(user_id, id, now).await
    }
    async fn sessions(&self, user_id: &str, now: Timestamp) -> StoreResult<Vec<Session>> {
        self.inner.sessions(user_id, now).await
    }
    async fn renew_session(
        &self,
        user_id: &str,
        id: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.inner.renew_session(user_id, id, expires_at, now).await
    }
    async fn end_session(&self, user_id: &str, id: &str) -> StoreResult<()> {
        self.inner.end_session(user_id, id).await
    }
    async fn end_live_session(&self, user_id: &str, id: &str, now: Timestamp) -> StoreResult<bool> {
        self.inner.end_live_session(user_id, id, now).await
    }
    async fn end_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<usize> {
        self.inner.end_sessions(user_id, keep, now).await
    }
    async fn add_refresh_code(
        &self,
        seen: &Session,
        digest: &str,
        expires_at: Timestamp,
        allowance: u32,
        now: Timestamp,
    ) -> StoreResult<RefreshIssue> {
        self.inner
            .add_refresh_code(seen, digest, expires_at, allowance, now)
            .await
    }
    async fn redeem_refresh_code(
        &self,
        seen: &Session,
        digests: &[String],
        now: Timestamp,
    ) -> StoreResult<Option<RefreshRedemption>> {
        self.inner.redeem_refresh_code(seen, digests, now).await
    }
}

#[async_trait]
impl Store for Paused {
    // The backend's own first read (DynamoDB batches it), not the default.
    async fn open_attempt(&self, opening: &Opening<'_>, now: Timestamp) -> StoreResult<Opened> {
        self.inner.open_attempt(opening, now).await
    }
}
