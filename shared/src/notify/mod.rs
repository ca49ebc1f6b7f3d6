//! Sending codes to people: SMS to a phone, mail to an address.

pub mod aws;
pub mod terminal;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
#[error("notifier unavailable: {0}")]
pub struct NotifyError(pub String);

/// A message ready to send. Its text carries a code, so it is never logged
/// (the terminal notifier, a local developer tool, is the one exception).
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    Sms {
        to: String,
        text: String,
    },
    Mail {
        to: String,
        subject: String,
        text: String,
        html: String,
    },
}

impl Message {
    pub fn recipient(&self) -> &str {
        match self {
            Message::Sms { to, .. } | Message::Mail { to, .. } => to,
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Message::Sms { text, .. } | Message::Mail { text, .. } => text,
        }
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Message::Sms { .. } => "Sms",
            Message::Mail { .. } => "Mail",
        };
        f.debug_struct(kind)
            .field("to", &self.recipient())
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Sends the message; returns the provider's message id (safe to log).
    async fn send(&self, message: &Message) -> Result<String, NotifyError>;
}
