//! The backend a test run exercises. `PLANX_TEST_BACKEND=aws` (set by
//! `scripts/test`, with `AWS_ENDPOINT_URL` pointing at moto) runs every contract
//! test on DynamoDB, SNS and SES through the real AWS SDK; otherwise the
//! embedded store and the terminal notifier. Each AWS test gets its own table;
//! messages are matched by the ids SNS and SES returned, so tests run in parallel.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use serde_json::Value;
use shared::Config;
use shared::aws::Sdk;
use shared::notify::terminal::TerminalNotifier;
use shared::notify::{Message, Notifier, NotifyError};
use shared::store::dynamo::DynamoStore;
use tokio::net::{TcpListener, TcpStream as AsyncTcpStream};
use tokio::sync::watch;

/// A loopback TCP proxy to moto that can be cut, for fault tests.
pub struct Switch {
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    pub url: String,
}

impl Switch {
    async fn start(target: String) -> Switch {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let (cut, cuts) = watch::channel(0u64);
        let flag = up.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let target = target.clone();
                let mut cuts = cuts.clone();
                // Only cuts from now on end this connection.
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = AsyncTcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Switch { up, cut, url }
    }

    /// Refuses new connections and drops open ones.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

pub struct Backend {
    pub store: DynamoStore,
    /// The store's table, for tests that write items directly.
    pub table: String,
    /// In front of DynamoDB.
    pub database: Switch,
    /// In front of SNS and SES.
    pub messaging: Switch,
    /// moto's address, for `/moto-api/data.json`.
    pub moto: String,
}

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ses::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ));
    // The production budget (1.5 s an attempt, 4 s in all) is for a Lambda
    // next to DynamoDB. Here one single-threaded moto serves every test at
    // once on a loaded machine: a slow answer must not time out, because a
    // timed-out write may already be applied and its retry applies it again.
    // A cut connection (the switch's `down`) still fails at once.
    let patient = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .operation_attempt_timeout(std::time::Duration::from_secs(60))
        .operation_timeout(std::time::Duration::from_secs(120))
        .build();
    shared::aws::configure(loader)
        .timeout_config(patient)
        .load()
        .await
}

impl Backend {
    /// The AWS backend with a fresh table, if this run is on AWS.
    pub async fn chosen() -> Option<Arc<Backend>> {
        if std::env::var("PLANX_TEST_BACKEND").ok().as_deref() != Some("aws") {
            return None;
        }
        let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL names moto's server");
        let target = moto
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let database = Switch::start(target.clone()).await;
        let messaging = Switch::start(target).await;
        let table = format!(
            "planx-test-{}",
            shared::crypto::hex(&shared::crypto::random_bytes::<8>())
        );
        let store = DynamoStore::new(Sdk::ready(sdk(&database.url).await), &table);
        store.create_table().await.expect("moto creates the table");
        Some(Arc::new(Backend {
            store,
            table,
            database,
            messaging,
            moto,
        }))
    }

    /// A DynamoDB client on the store's table, bypassing the store.
    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&sdk(&self.database.url).await)
    }

    /// The SDK configuration for moto itself (no switch in between).
    pub async fn moto_sdk(&self) -> aws_config::SdkConfig {
        sdk(&self.moto).await
    }

    /// SNS and SES through the messaging switch, with the sender verified in SES.
    pub async fn notifier(&self, config: &Config) -> Arc<dyn Notifier> {
        let sdk = sdk(&self.messaging.url).await;
        aws_sdk_ses::Client::new(&sdk)
            .verify_email_identity()
            .email_address(&config.mail_from)
            .send()
            .await
            .expect("moto verifies the sender");
        Arc::new(shared::notify::aws::AwsNotifier::new(
            Sdk::ready(sdk),
            &config.sms_sender_id,
            &config.mail_from,
        ))
    }
}

/// What the app sent, recorded with the provider's message ids.
pub struct Outbox {
    inner: Arc<dyn Notifier>,
    sent: Mutex<Vec<(Message, String)>>,
    moto: Option<String>,
    /// While set, every send fails as an SNS or SES outage would.
    refusing: std::sync::atomic::AtomicBool,
}

impl Outbox {
    pub fn terminal() -> Outbox {
        Outbox {
            inner: Arc::new(TerminalNotifier::quiet()),
            sent: Mutex::new(vec![]),
            moto: None,
            refusing: Default::default(),
        }
    }

    pub fn moto(inner: Arc<dyn Notifier>, moto: &str) -> Outbox {
        Outbox {
            inner,
            sent: Mutex::new(vec![]),
            moto: Some(moto.to_string()),
            refusing: Default::default(),
        }
    }

    /// Makes every send fail (`true`) or go through again (`false`).
    pub fn refuse(&self, refusing: bool) {
        self.refusing
            .store(refusing, std::sync::atomic::Ordering::SeqCst);
    }

    /// Messages sent so far, oldest first. On AWS each is rebuilt from what moto
    /// received under the id SNS or SES returned, so a message the SDK did not
    /// really deliver fails the test.
    pub fn outbox(&self) -> Vec<Message> {
        let sent = self.sent.lock().unwrap().clone();
        let Some(moto) = &self.moto else {
            return sent.into_iter().map(|(m, _)| m).collect();
        };
        let data = moto_data(moto);
        sent.into_iter()
            .map(|(m, id)| match m {
                Message::Sms { .. } => {
                    let sms = data["sns"]["SMS"]
                        .as_array()
                        .and_then(|a| a.iter().find(|s| s["message_id"] == id.as_str()))
                        .unwrap_or_else(|| panic!("moto has no SMS {id}"));
                    Message::Sms {
                        to: sms["phone_number"].as_str().unwrap().into(),
                        text: sms["message"].as_str().unwrap().into(),
                    }
                }
                Message::Mail { .. } => {
                    let mail = data["ses"]["Message"]
                        .as_array()
                        .and_then(|a| a.iter().find(|s| s["id"] == id.as_str()))
                        .unwrap_or_else(|| panic!("moto has no mail {id}"));
                    // moto keeps one body (the HTML part when there is one).
                    let body = mail["body"].as_str().unwrap().to_string();
                    Message::Mail {
                        to: mail["destinations"]["ToAddresses"][0]
                            .as_str()
                            .unwrap()
                            .into(),
                        subject: mail["subject"].as_str().unwrap().into(),
                        text: body.clone(),
                        html: body,
                    }
                }
            })
            .collect()
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
impl Notifier for Outbox {
    async fn send(&self, message: &Message) -> Result<String, NotifyError> {
        if self.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(NotifyError("the test outbox refuses sends".into()));
        }
        let id = self.inner.send(message).await?;
        self.sent
            .lock()
            .unwrap()
            .push((message.clone(), id.clone()));
        Ok(id)
    }
}

/// moto's state dump. It is built while other tests write, and moto can fail
/// to serialise a dict that changes meanwhile: try a few times.
fn moto_data(moto: &str) -> Value {
    for _ in 0..10 {
        if let Ok(data) = serde_json::from_str(&http_get(moto, "/moto-api/data.json")) {
            return data;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("moto's /moto-api/data.json did not answer with JSON");
}

/// A plain blocking HTTP/1.0 GET (moto's admin API), usable from sync test code.
fn http_get(base: &str, path: &str) -> String {
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}
