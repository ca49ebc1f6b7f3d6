//! The local notifier: prints each message on one line of the terminal, so a
//! developer can finish every flow by hand, and keeps the recent ones for tests.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Message, Notifier, NotifyError};

const KEPT: usize = 256;

/// Never used in Lambda: it shows codes, which is its purpose.
#[derive(Debug, Default)]
pub struct TerminalNotifier {
    quiet: bool,
    outbox: Mutex<VecDeque<Message>>,
    sent: std::sync::atomic::AtomicU64,
}

impl TerminalNotifier {
    /// A notifier that prints to standard error.
    pub fn new() -> Self {
        Self::default()
    }

    /// A notifier that only keeps messages (tests).
    pub fn quiet() -> Self {
        Self {
            quiet: true,
            ..Self::default()
        }
    }

    /// The messages sent so far, oldest first (the most recent 256).
    pub fn outbox(&self) -> Vec<Message> {
        self.outbox
            .lock()
            .map(|o| o.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The text of the latest message to `recipient`.
    pub fn last_to(&self, recipient: &str) -> Option<String> {
        self.outbox()
            .into_iter()
            .rev()
            .find(|m| m.recipient() == recipient)
            .map(|m| m.text().to_string())
    }
}

#[async_trait]
impl Notifier for TerminalNotifier {
    async fn send(&self, message: &Message) -> Result<String, NotifyError> {
        if !self.quiet {
            let line = match message {
                Message::Sms { to, text } => format!("[outbox] SMS to {to}: {text}"),
                Message::Mail {
                    to, subject, text, ..
                } => {
                    format!(
                        "[outbox] mail to {to}: {subject}: {}",
                        text.replace('\n', " ")
                    )
                }
            };
            eprintln!("{line}");
        }
        let mut outbox = self
            .outbox
            .lock()
            .map_err(|_| NotifyError("outbox lock poisoned".into()))?;
        if outbox.len() == KEPT {
            outbox.pop_front();
        }
        outbox.push_back(message.clone());
        let id = self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(format!("local-{id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_latest_per_recipient() {
        let n = TerminalNotifier::quiet();
        for (to, text) in [("+15550001", "a"), ("+15550002", "b"), ("+15550001", "c")] {
            let m = Message::Sms {
                to: to.into(),
                text: text.into(),
            };
            n.send(&m).await.unwrap();
        }
        assert_eq!(n.last_to("+15550001").as_deref(), Some("c"));
        assert_eq!(n.outbox().len(), 3);
        assert_eq!(n.last_to("nobody"), None);
    }

    #[test]
    fn debug_hides_the_text() {
        let m = Message::Sms {
            to: "+15550001".into(),
            text: "code 123456".into(),
        };
        assert!(!format!("{m:?}").contains("123456"));
    }
}
