//! Guessing limits shared by every secret a client can guess: passwords at
//! sign-in and at `POST /user/password`, TOTP codes, and the one-time codes of
//! SMS sign-in, password reset and phone binding. Each attempt takes its
//! limiter slots (and one try of its code) before the secret is checked, in
//! one atomic store write ([`crate::store::slots`]); a success gives them back
//! in the write that makes it count. Unknown identifiers are counted under the
//! same keys as accounts, so a refusal never tells the two apart.

use crate::device::DeviceCookie;
use crate::model::{Code, User};
use crate::state::AppState;
use crate::store::slots::candidate_keys;
use crate::store::{Attempt, CodeRef, Lane, Lookup, Opening, Settle, StoreError};

/// Why an attempt may not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// A limiter refused it: nothing was checked.
    #[error("too many failed attempts; retry in {retry_after} s")]
    Limited { retry_after: i64, kind: GuessKind },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a guess is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuessKind {
    /// A sign-in: the secret alone opens the account.
    SignIn,
    /// The current password of a signed-in account (`POST /user/password`).
    Password,
    /// A one-time code sent to the account (reset, phone binding).
    Code,
}

impl GuessKind {
    /// Whether the identifier's cap on clients without a device cookie
    /// applies: where the secret is the account's own. A one-time code has
    /// its own tries, which cap it account-wide.
    fn account_wide(self) -> bool {
        matches!(self, GuessKind::SignIn | GuessKind::Password)
    }
}

/// One attempt at a secret.
pub struct Guess<'a> {
    /// The account it names.
    pub account: Lookup<'a>,
    /// The client's address.
    pub ip: &'a str,
    /// The client's valid device cookie, if any.
    pub device: Option<&'a DeviceCookie>,
    /// The one-time code it presents, if it is at one.
    pub code: Option<CodeRef>,
    pub kind: GuessKind,
}

/// An attempt that took its slots: the secret may be checked now.
#[derive(Debug)]
pub struct Began {
    /// The account named, if it exists.
    pub user: Option<User>,
    /// The code presented, after the try counted on it; `None` when there is
    /// no live one with tries left (the guess is wrong, then).
    pub code: Option<Code>,
    /// What a success gives back (add the code spent or the TOTP step used).
    pub settle: Settle,
}

/// Takes the slots of `guess`: one read (the account, the buckets on either
/// lane and the code, where the backend batches them), then one atomic write,
/// concurrent with reading the account when the first read could not.
pub async fn begin(state: &AppState, guess: Guess<'_>) -> Result<Began, ThrottleError> {
    let now = state.now();
    let store = &*state.store;
    let device_id = guess.device.map(|d| d.device_id.as_str());
    let identifier = guess.account.identifier();
    let buckets = identifier
        .as_deref()
        .map(|i| candidate_keys(i, guess.ip, device_id))
        .unwrap_or_default();
    let opening = Opening {
        account: guess.account,
        device_user: guess.device.map(|d| d.user_id.as_str()),
        buckets,
        code: guess.code.as_ref(),
    };
    let opened = store.open_attempt(&opening, now).await?;
    // An account named by id is counted under its email, known once read.
    let Some(identifier) =
        identifier.or_else(|| opened.user.as_ref().map(|u| u.email.to_lowercase()))
    else {
        return Ok(Began {
            user: None,
            code: None,
            settle: Settle::default(),
        });
    };
    let lane = match guess.device {
        Some(d) if opened.user_id.as_deref() == Some(d.user_id.as_str()) => {
            Lane::Device(d.device_id.clone())
        }
        _ => Lane::Address {
            ip: guess.ip.to_string(),
            account_wide: guess.kind.account_wide(),
        },
    };
    let attempt = Attempt {
        identifier,
        lane,
        code: guess.code,
        rules: state.config.limits.guessing,
    };
    let take = store.take_slots(&attempt, opened.seen, now);
    let (taken, user) = match (opened.user, opened.user_id) {
        (None, Some(id)) => {
            let (taken, user) = tokio::join!(take, store.user(&id));
            (taken?, user?)
        }
        (user, _) => (take.await?, user),
    };
    let taken = taken.map_err(|r| ThrottleError::Limited {
        retry_after: r.retry_after,
        kind: guess.kind,
    })?;
    Ok(Began {
        user,
        code: taken.code,
        settle: taken.settle,
    })
}
