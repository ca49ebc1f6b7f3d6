//! The AWS notifier: SMS through SNS `Publish`, mail through SES `SendEmail`.

use async_trait::async_trait;
use aws_sdk_ses::types::{Body, Content, Destination, Message as SesMessage};
use aws_sdk_sns::types::MessageAttributeValue;
use tokio::sync::OnceCell;

use super::{Message, Notifier, NotifyError};
use crate::aws::Sdk;

/// The clients are built on first send (building one loads the TLS trust
/// roots: work a cold start should not do before it is needed).
pub struct AwsNotifier {
    sdk: Sdk,
    sns: OnceCell<aws_sdk_sns::Client>,
    ses: OnceCell<aws_sdk_ses::Client>,
    sender_id: String,
    from: String,
}

fn failed(service: &str, e: impl std::error::Error) -> NotifyError {
    NotifyError(format!(
        "{service}: {}",
        aws_sdk_sns::error::DisplayErrorContext(e)
    ))
}

fn attribute(value: &str) -> Result<MessageAttributeValue, NotifyError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| failed("sns", e))
}

fn content(data: &str) -> Result<Content, NotifyError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| failed("ses", e))
}

impl AwsNotifier {
    /// `sender_id` is SNS's alphanumeric sender id (empty: none); `from` a verified SES identity.
    pub fn new(sdk: Sdk, sender_id: &str, from: &str) -> Self {
        Self {
            sdk,
            sns: OnceCell::new(),
            ses: OnceCell::new(),
            sender_id: sender_id.into(),
            from: from.into(),
        }
    }
}

#[async_trait]
impl Notifier for AwsNotifier {
    async fn send(&self, message: &Message) -> Result<String, NotifyError> {
        match message {
            Message::Sms { to, text } => {
                // Transactional: delivered for reliability, not cost (codes expire in minutes).
                let sns = self
                    .sns
                    .get_or_init(|| async { aws_sdk_sns::Client::new(self.sdk.get().await) })
                    .await;
                let mut req = sns
                    .publish()
                    .phone_number(to)
                    .message(text)
                    .message_attributes("AWS.SNS.SMS.SMSType", attribute("Transactional")?);
                if !self.sender_id.is_empty() {
                    req =
                        req.message_attributes("AWS.SNS.SMS.SenderID", attribute(&self.sender_id)?);
                }
                let out = req.send().await.map_err(|e| failed("sns", e))?;
                Ok(out.message_id.unwrap_or_default())
            }
            Message::Mail {
                to,
                subject,
                text,
                html,
            } => {
                let body = Body::builder()
                    .text(content(text)?)
                    .html(content(html)?)
                    .build();
                let message = SesMessage::builder()
                    .subject(content(subject)?)
                    .body(body)
                    .build();
                let ses = self
                    .ses
                    .get_or_init(|| async { aws_sdk_ses::Client::new(self.sdk.get().await) })
                    .await;
                let out = ses
                    .send_email()
                    .source(&self.from)
                    .destination(Destination::builder().to_addresses(to).build())
                    .message(message)
                    .send()
                    .await
                    .map_err(|e| failed("ses", e))?;
                Ok(out.message_id)
            }
        }
    }
}
