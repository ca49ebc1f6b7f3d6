//! Security notices: a mail to the account's address after a change someone
//! holding only a session (or only a new device) could make, so the owner
//! hears of it. In plain words, with no secret: no code, no token, no hash.
//! A notice that cannot be sent is logged and never undoes the change.

use time::OffsetDateTime;

use crate::clock::Timestamp;
use crate::model::User;
use crate::model::{LoginMethod, LoginRecord};
use crate::notify::Message;
use crate::state::AppState;
use crate::store::{Settle, StoreResult, UserChange};

/// What happened to the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice<'a> {
    PasswordChanged,
    PasswordReset,
    /// Sent to the old address; the new one shows only partly.
    EmailChanged {
        new: String,
    },
    PhoneBound,
    PhoneRemoved,
    TotpBound,
    TotpRemoved,
    LarkLinked,
    LarkRemoved,
    /// A sign-in from a device (device cookie) the account had not used.
    NewDevice {
        login: &'a LoginRecord,
    },
}

impl<'a> Notice<'a> {
    /// The notice a change of the account's settings calls for, given whether
    /// the binding it removes was there (removing nothing tells nothing).
    /// Name and avatar changes call for none.
    pub fn of_change(change: &UserChange, was_bound: bool) -> Option<Self> {
        Some(match change {
            UserChange::Email(new) => Notice::EmailChanged { new: new.clone() },
            UserChange::Password { .. } => Notice::PasswordChanged,
            UserChange::Phone(Some(_)) => Notice::PhoneBound,
            UserChange::Totp(Some(_)) => Notice::TotpBound,
            UserChange::Lark(Some(_)) => Notice::LarkLinked,
            UserChange::Phone(None) if was_bound => Notice::PhoneRemoved,
            UserChange::Totp(None) if was_bound => Notice::TotpRemoved,
            UserChange::Lark(None) if was_bound => Notice::LarkRemoved,
            _ => return None,
        })
    }

    /// The mail's subject and its lines, in plain text.
    fn words(&self, ns: &str) -> (String, Vec<String>) {
        let changed = |what: &str| {
            (
                format!("Your {ns} {what}"),
                vec![format!("Your {ns} {what}.")],
            )
        };
        let (subject, mut lines) = match self {
            Notice::PasswordChanged => changed("password was changed"),
            Notice::PasswordReset => changed("password was reset"),
            Notice::EmailChanged { new } => (
                format!("Your {ns} email address was changed"),
                vec![format!(
                    "The email address of your {ns} account was changed to {}. This address no longer signs in.",
                    mask_email(new)
                )],
            ),
            Notice::PhoneBound => changed("account has a new phone number for sign-in"),
            Notice::PhoneRemoved => changed("account's phone number was removed"),
            Notice::TotpBound => changed("account has a new authenticator app"),
            Notice::TotpRemoved => changed("account's authenticator app was removed"),
            Notice::LarkLinked => changed("account was linked to a Lark account"),
            Notice::LarkRemoved => changed("account was unlinked from its Lark account"),
            Notice::NewDevice { login } => (
                format!("New sign-in to your {ns} account"),
                vec![format!(
                    "Your {ns} account was signed in to from a new device on {}, from {}, by {}, with {}.",
                    when(login.timestamp),
                    login.metadata.client_ip,
                    method(login.metadata.source),
                    browser(&login.user_agent),
                )],
            ),
        };
        lines.push(
            "If this was not you, reset your password now and sign out your other devices."
                .to_string(),
        );
        (subject, lines)
    }

    /// The mail to `to`.
    pub fn message(&self, ns: &str, to: &str) -> Message {
        let (subject, lines) = self.words(ns);
        let html = lines
            .iter()
            .map(|line| format!("<p>{}</p>", escape_html(line)))
            .collect();
        Message::Mail {
            to: to.to_string(),
            subject,
            text: lines.join("\n"),
            html,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Notice::PasswordChanged => "password_changed",
            Notice::PasswordReset => "password_reset",
            Notice::EmailChanged { .. } => "email_changed",
            Notice::PhoneBound => "phone_bound",
            Notice::PhoneRemoved => "phone_removed",
            Notice::TotpBound => "totp_bound",
            Notice::TotpRemoved => "totp_removed",
            Notice::LarkLinked => "lark_linked",
            Notice::LarkRemoved => "lark_removed",
            Notice::NewDevice { .. } => "new_device",
        }
    }
}

/// Applies `change` to `user` with what an attempt gives back (one store
/// write, [`crate::store::Guesses::settle_change`]) and, if it went through,
/// sends the notice it calls for ([`Notice::of_change`]) to the address the
/// account had: every change an owner should hear of goes through here.
pub async fn settle_change(
    state: &AppState,
    user: &User,
    change: UserChange,
    settle: &Settle,
) -> StoreResult<bool> {
    let was_bound = match &change {
        UserChange::Phone(None) => user.phone.is_some(),
        UserChange::Totp(None) => user.totp.is_some(),
        UserChange::Lark(None) => user.lark.is_some(),
        _ => false,
    };
    let notice = Notice::of_change(&change, was_bound);
    let done = state
        .store
        .settle_change(user, change, settle, state.now())
        .await?;
    if let (true, Some(notice)) = (done, notice) {
        send(state, &user.email, notice).await;
    }
    Ok(done)
}

/// Sends `notice` to `to`. A failure is logged (the kind, never the text)
/// and swallowed: the change it reports has been made.
pub async fn send(state: &AppState, to: &str, notice: Notice<'_>) {
    let message = notice.message(&state.config.namespace, to);
    match state.notifier.send(&message).await {
        Ok(id) => tracing::info!(notice = notice.kind(), message_id = %id, "notice sent"),
        Err(e) => tracing::warn!(notice = notice.kind(), error = %e, "notice not sent"),
    }
}

/// `a***@example.com`: enough for the owner to recognise, not to reuse.
fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

fn when(at: Timestamp) -> String {
    match OffsetDateTime::from_unix_timestamp(at) {
        Ok(t) => format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "an unknown time".to_string(),
    }
}

fn method(method: LoginMethod) -> &'static str {
    match method {
        LoginMethod::Password => "password",
        LoginMethod::Sms => "a code sent by SMS",
        LoginMethod::Totp => "an authenticator app code",
        LoginMethod::Lark => "a Lark account",
    }
}

/// The client's own words for itself, shortened and without control characters.
fn browser(user_agent: &str) -> String {
    let clean: String = user_agent
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    if clean.trim().is_empty() {
        "an unnamed browser".to_string()
    } else {
        clean
    }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_address_shows_only_partly() {
        let message = Notice::EmailChanged {
            new: "mallory@evil.example".into(),
        }
        .message("planx", "ada@example.com");
        assert_eq!(message.recipient(), "ada@example.com");
        assert!(message.text().contains("m***@evil.example"));
        assert!(!message.text().contains("mallory"));
    }

    #[test]
    fn a_new_device_notice_names_when_where_and_how_and_escapes_the_browser() {
        let login = LoginRecord::new(
            1_790_000_000,
            "198.51.100.7",
            "<script>x</script>",
            LoginMethod::Sms,
        );
        let Message::Mail { text, html, .. } =
            Notice::NewDevice { login: &login }.message("planx", "ada@example.com")
        else {
            panic!("a notice is a mail");
        };
        assert!(text.contains("2026-09-21 14:13 UTC"), "{text}");
        assert!(text.contains("198.51.100.7") && text.contains("SMS"));
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
    }

    #[test]
    fn removing_nothing_sends_nothing_and_names_send_nothing() {
        assert_eq!(Notice::of_change(&UserChange::Phone(None), false), None);
        assert_eq!(
            Notice::of_change(&UserChange::Phone(None), true),
            Some(Notice::PhoneRemoved)
        );
        assert_eq!(Notice::of_change(&UserChange::Name("x".into()), true), None);
    }
}
