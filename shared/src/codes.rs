//! One-time codes: sending them under the limits, and spending them once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::crypto::constant_time_eq;
use crate::model::{Code, Purpose};
use crate::notify::{Message, NotifyError};
use crate::state::AppState;
use crate::store::{Decision, Redemption, StoreError};

/// Why a code was not sent or not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// A limiter refused to send another code yet.
    #[error("too many codes; retry in {retry_after} s")]
    Limited { retry_after: i64 },
    /// The code presented is wrong, expired or already spent.
    #[error("the code is wrong, expired or already used")]
    Rejected,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The message could not be sent; the code and the limiter hits were withdrawn.
    #[error(transparent)]
    Send(#[from] NotifyError),
}

pub type CodeResult<T> = Result<T, CodeError>;

/// Where a code goes.
#[derive(Debug, Clone)]
pub enum Channel {
    Sms(String),
    Mail(String),
}

impl Channel {
    fn recipient(&self) -> String {
        match self {
            Channel::Sms(p) => format!("sms:{p}"),
            Channel::Mail(e) => format!("mail:{}", e.to_lowercase()),
        }
    }
}

/// Permission to send one code, granted by the limiters. Taken back if the
/// message cannot be sent, so a failed send does not block a retry.
#[must_use]
pub struct Permit {
    keys: [String; 2],
}

fn refuse(d: Decision) -> CodeResult<()> {
    match d {
        Decision::Allowed => Ok(()),
        Decision::Refused { retry_after } => Err(CodeError::Limited { retry_after }),
    }
}

/// Applies the per-IP cap and the per-recipient cooldown and hourly cap. Runs
/// before the account lookup, so known and unknown recipients are limited alike.
pub async fn permit(state: &AppState, ip: &str, channel: &Channel) -> CodeResult<Permit> {
    let limits = &state.config.limits;
    let now = state.now();
    let ip_key = format!("code-ip:{ip}");
    let to_key = format!("code-to:{}", channel.recipient());
    refuse(state.store.hit(&ip_key, &limits.code_per_ip, now).await?)?;
    if let Err(e) = refuse(
        state
            .store
            .hit(&to_key, &limits.code_per_recipient, now)
            .await?,
    ) {
        state.store.unhit(&ip_key, now).await?;
        return Err(e);
    }
    Ok(Permit {
        keys: [ip_key, to_key],
    })
}

/// What a code is for, and to whom it is sent.
pub struct Issue<'a> {
    pub purpose: Purpose,
    /// Whose code it is: one pending code per purpose and subject.
    pub subject: &'a str,
    /// A value the code is valid only together with (the phone number being bound).
    pub bound: Option<&'a str>,
    pub ttl: i64,
    pub channel: Channel,
}

/// What a code's digest covers: the code, and the value it is bound to.
fn digest_input(bound: Option<&str>, code: &str) -> String {
    match bound {
        Some(b) => format!("{code}\0{b}"),
        None => code.to_string(),
    }
}

/// The digest a new code is stored under: the current server key's.
fn digest(
    state: &AppState,
    purpose: Purpose,
    subject: &str,
    bound: Option<&str>,
    code: &str,
) -> String {
    let input = digest_input(bound, code);
    state.keys.code_digest(purpose.as_str(), subject, &input)
}

/// The digests a pending code may have been stored under: one per server key
/// in force (after a rotation, a code sent under the previous key still works).
fn digests(
    state: &AppState,
    purpose: Purpose,
    subject: &str,
    bound: Option<&str>,
    code: &str,
) -> Vec<String> {
    let input = digest_input(bound, code);
    state.keys.code_digests(purpose.as_str(), subject, &input)
}

/// Stores `code` (or a new random one) for `purpose` and `subject`, replacing a
/// pending one, and returns it. Only its digest is stored.
pub async fn store(
    state: &AppState,
    purpose: Purpose,
    subject: &str,
    bound: Option<&str>,
    ttl: i64,
    code: Option<String>,
) -> Result<String, StoreError> {
    let code = code.unwrap_or_else(crate::crypto::random_code);
    let record = Code {
        purpose,
        subject: subject.to_string(),
        digest: digest(state, purpose, subject, bound, &code),
        attempts: 0,
        expires_at: state.now() + ttl,
    };
    state.store.put_code(&record).await?;
    Ok(code)
}

/// Stores a new code and sends it. If sending fails, the code and the limiter
/// hits are withdrawn ([`CodeError::Send`]).
pub async fn issue(state: &AppState, permit: Permit, issue: Issue<'_>) -> CodeResult<()> {
    deliver(state, permit, issue, None).await
}

/// [`issue`], the send to finish by `deadline` if there is one.
async fn deliver(
    state: &AppState,
    permit: Permit,
    issue: Issue<'_>,
    deadline: Option<Instant>,
) -> CodeResult<()> {
    let code = store(
        state,
        issue.purpose,
        issue.subject,
        issue.bound,
        issue.ttl,
        None,
    )
    .await?;
    let message = message(state, issue.purpose, &issue.channel, &code, issue.ttl);
    let send = state.notifier.send(&message);
    let sent = match deadline {
        Some(at) => tokio::time::timeout_at(at, send).await.unwrap_or_else(|_| {
            Err(NotifyError(
                "the send did not finish within CODE_RESPONSE_FLOOR_MS".into(),
            ))
        }),
        None => send.await,
    };
    match sent {
        Ok(id) => {
            tracing::info!(message_id = %id, purpose = issue.purpose.as_str(), "code sent");
            Ok(())
        }
        Err(e) => {
            let now = state.now();
            let _ = state.store.drop_code(issue.purpose, issue.subject).await;
            for key in &permit.keys {
                let _ = state.store.unhit(key, now).await;
            }
            Err(e.into())
        }
    }
}

/// The least time an answer takes when its work would otherwise tell whether
/// an account exists (`GET /forget_code`, `GET /login/sms`: only an account's
/// code is stored and sent). Started when the request is, it holds the answer
/// until `CODE_RESPONSE_FLOOR_MS` have passed; the send must finish by then.
/// A send that fails, or does not finish in time, is withdrawn as [`issue`]
/// does and logged, and the client gets the answer an unknown recipient gets:
/// an SNS or SES outage reads the same for both. (A queue would decouple the
/// send from the answer too, but a Lambda may be frozen as soon as it answers,
/// so it takes a stream, a function and their IAM for what the floor gives.)
pub struct Floor {
    deadline: Option<Instant>,
}

impl Floor {
    /// A floor from now; none when `CODE_RESPONSE_FLOOR_MS` is 0.
    pub fn start(state: &AppState) -> Self {
        let ms = state.config.limits.code_floor_ms;
        Floor {
            deadline: (ms > 0).then(|| Instant::now() + Duration::from_millis(ms)),
        }
    }

    /// [`issue`] within the floor. A send that fails is logged and withdrawn,
    /// not answered: the caller answers as for a recipient without an account.
    pub async fn issue(
        &self,
        state: &AppState,
        permit: Permit,
        issue: Issue<'_>,
    ) -> CodeResult<()> {
        let purpose = issue.purpose.as_str();
        match deliver(state, permit, issue, self.deadline).await {
            Err(CodeError::Send(e)) => {
                tracing::warn!(purpose, error = %e, "code not sent; withdrawn");
                Ok(())
            }
            other => other,
        }
    }

    /// Waits until the floor has passed.
    pub async fn wait(self) {
        if let Some(at) = self.deadline {
            tokio::time::sleep_until(at).await;
        }
    }
}

/// Spends a code: `Ok` only if it was right (for `bound`, if given), alive and
/// unspent; [`CodeError::Rejected`] otherwise. For codes guessed by no one but
/// a signed-in session's own holder (refresh, TOTP binding); guessable codes
/// go through [`crate::throttle`] and [`matches`].
pub async fn redeem(
    state: &AppState,
    purpose: Purpose,
    subject: &str,
    bound: Option<&str>,
    code: &str,
) -> CodeResult<Code> {
    let digests = digests(state, purpose, subject, bound, code);
    match state
        .store
        .redeem_code(
            purpose,
            subject,
            &digests,
            state.config.limits.guessing.code_attempts,
            state.now(),
        )
        .await?
    {
        Redemption::Accepted(record) => Ok(record),
        Redemption::Rejected => Err(CodeError::Rejected),
    }
}

/// Whether `presented` is the code `stored` holds (for `bound`, if given), in
/// constant time. Counted in [`AppState::code_comparisons`]: a comparison is a
/// guess checked, and only an attempt that took its slots may make one.
/// Under any server key in force, so a code sent before a rotation still works.
pub fn matches(state: &AppState, stored: &Code, bound: Option<&str>, presented: &str) -> bool {
    state.code_comparisons.fetch_add(1, Ordering::SeqCst);
    digests(state, stored.purpose, &stored.subject, bound, presented)
        .iter()
        .any(|d| constant_time_eq(d.as_bytes(), stored.digest.as_bytes()))
}

fn lifetime(ttl: i64) -> String {
    if ttl % 60 == 0 {
        let m = ttl / 60;
        format!("{m} minute{}", if m == 1 { "" } else { "s" })
    } else {
        format!("{ttl} seconds")
    }
}

fn message(state: &AppState, purpose: Purpose, channel: &Channel, code: &str, ttl: i64) -> Message {
    let ns = &state.config.namespace;
    let what = match purpose {
        Purpose::SmsLogin => "sign-in code",
        Purpose::PhoneBind => "phone verification code",
        Purpose::PasswordReset => "password reset code",
        Purpose::TotpBind | Purpose::Refresh => "code",
    };
    let valid = lifetime(ttl);
    match channel {
        Channel::Sms(to) => Message::Sms {
            to: to.clone(),
            text: format!("Your {ns} {what} is {code}. It expires in {valid}."),
        },
        Channel::Mail(to) => Message::Mail {
            to: to.clone(),
            subject: format!("Your {ns} {what}"),
            text: format!(
                "Your {ns} {what} is {code}.\nIt expires in {valid}.\nIf you did not ask for it, ignore this message; your password is unchanged."
            ),
            html: format!(
                "<p>Your {ns} {what} is <strong>{code}</strong>.</p><p>It expires in {valid}.</p><p>If you did not ask for it, ignore this message; your password is unchanged.</p>"
            ),
        },
    }
}

/// The six digits in a message text (tests and the CLI read codes back this way).
pub fn code_in(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Config;
    use crate::notify::Notifier;
    use crate::store::embedded::EmbeddedStore;

    /// A notifier that takes the message and never answers.
    #[derive(Default)]
    struct Stuck(Mutex<Option<String>>);

    #[async_trait]
    impl Notifier for Stuck {
        async fn send(&self, message: &Message) -> Result<String, NotifyError> {
            *self.0.lock().unwrap() = code_in(message.text());
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_send_that_outlasts_the_floor_is_withdrawn_and_answered_as_sent() {
        let config = Config::from_vars(&[("CODE_RESPONSE_FLOOR_MS", "50")]).unwrap();
        let notifier = Arc::new(Stuck::default());
        let store = Arc::new(EmbeddedStore::in_memory());
        let clock = Arc::new(ManualClock::new(1_000));
        let state = AppState::new(config, store, notifier.clone(), clock).unwrap();
        let channel = Channel::Mail("ada@example.com".into());
        let issue = || Issue {
            purpose: Purpose::PasswordReset,
            subject: "ada@example.com",
            bound: None,
            ttl: 600,
            channel: channel.clone(),
        };
        let floor = Floor::start(&state);
        let granted = permit(&state, "203.0.113.7", &channel).await.unwrap();
        floor.issue(&state, granted, issue()).await.unwrap();
        floor.wait().await;
        let sent = notifier.0.lock().unwrap().clone().expect("the send began");
        // The code is gone, and so are the limiter hits: no cooldown holds a retry.
        let redeemed = redeem(
            &state,
            Purpose::PasswordReset,
            "ada@example.com",
            None,
            &sent,
        );
        assert!(matches!(redeemed.await, Err(CodeError::Rejected)));
        assert!(permit(&state, "203.0.113.7", &channel).await.is_ok());
    }

    #[test]
    fn lifetimes_read_naturally() {
        assert_eq!(lifetime(120), "2 minutes");
        assert_eq!(lifetime(60), "1 minute");
        assert_eq!(lifetime(15), "15 seconds");
    }

    #[test]
    fn finds_the_code() {
        assert_eq!(
            code_in("Your planx sign-in code is 042917. It expires in 2 minutes.").as_deref(),
            Some("042917")
        );
        assert_eq!(code_in("no code"), None);
    }
}
