//! One-time codes: sending them under the limits, and spending them once.

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
    match state.notifier.send(&message).await {
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

/// Spends a code: `Ok` only if it was right (for `bound`, if given), alive and
/// unspent; [`CodeError::Rejected`] otherwise.
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
            state.config.limits.code_attempts,
            state.now(),
        )
        .await?
    {
        Redemption::Accepted(record) => Ok(record),
        Redemption::Rejected => Err(CodeError::Rejected),
    }
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
    use super::*;

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
