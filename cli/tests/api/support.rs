//! `TestApp`: the whole API in-process (tower `oneshot`, no sockets) on a manual
//! clock, with a cookie jar that behaves like a browser's and automatic XSRF headers.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use shared::AppState;
use shared::accounts::{self, NewUser};
use shared::clock::ManualClock;
use shared::config::Config;
use shared::http::SourceIp;
use shared::keys::ServerKeys;
use shared::model::User;
use shared::store::embedded::EmbeddedStore;
use shared::store::{Store, UserChange};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Barrier;
use tower::ServiceExt;

use crate::backend::{Backend, Outbox};

pub const PASSWORD: &str = "correct horse battery staple";
/// 2027-01-15T08:00:00Z, a step boundary for TOTP (divisible by 30).
pub const START: i64 = 1_800_000_000;
pub const USER_AGENT: &str = "planx-tests/1.0";

/// A browser's cookies, by name; tabs of one browser share it.
type Jar = Arc<Mutex<HashMap<String, String>>>;

pub struct TestApp {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    /// What was "sent": the terminal outbox, or the messages moto received.
    pub notifier: Arc<Outbox>,
    /// The AWS backend's pieces (DynamoDB round trips, fault switches), when it is the one under test.
    pub aws: Option<Arc<Backend>>,
    router: Router,
    jar: Jar,
    ip: Mutex<String>,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    /// The business code of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        self
    }

    /// Asserts an error response: status, code, and that the message names `needle`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str, needle: &str) -> &Self {
        self.expect(status);
        assert_eq!(self.code(), code, "body: {}", self.text);
        assert!(
            self.message().contains(needle),
            "message {:?} should mention {needle:?}",
            self.message()
        );
        self
    }

    /// The `Set-Cookie` header that sets `name`, if any: the last one, as
    /// a browser keeps it (one that deletes a `Domain` twin comes before it).
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies(name).pop()
    }

    /// Every `Set-Cookie` header for `name`, in order.
    pub fn set_cookies(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
            .collect()
    }
}

/// The attributes of a `Set-Cookie` header, after its `name=value`.
pub fn attributes(cookie: &str) -> Vec<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_string())
        .collect()
}

/// The mails `app` sent to `to`, oldest first, as (subject, text).
pub fn mails_to(app: &TestApp, to: &str) -> Vec<(String, String)> {
    app.notifier
        .outbox()
        .into_iter()
        .filter_map(|m| match m {
            shared::notify::Message::Mail {
                to: r,
                subject,
                text,
                ..
            } if r == to => Some((subject, text)),
            _ => None,
        })
        .collect()
}

/// A six-digit code that is not `code`.
pub fn other_than(code: &str) -> String {
    let n: u32 = code.parse().expect("a six-digit code");
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Variables every test app starts from: cheap Argon2 so tests stay fast, and
/// no response floor on code requests but in the tests about it.
const BASE_VARS: [(&str, &str); 4] = [
    ("KEY", "test-key-test-key-test-key-test-key!"),
    ("ARGON2_M_COST", "256"),
    ("ARGON2_T_COST", "1"),
    ("CODE_RESPONSE_FLOOR_MS", "0"),
];

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// An app whose configuration is `vars` over the base (the first entry for a name wins).
    pub async fn spawn_with(vars: &[(&str, &str)]) -> TestApp {
        Self::spawn_in(vars, None).await
    }

    /// An app on the AWS backend when it is the one under test, else on an
    /// embedded store in a file at `path`, which the test may open beside it
    /// (redb's multi-process mode) to write items the API no longer writes.
    pub async fn spawn_on_disk(path: &Path) -> TestApp {
        Self::spawn_in(&[], Some(path)).await
    }

    async fn spawn_in(vars: &[(&str, &str)], path: Option<&Path>) -> TestApp {
        let all: Vec<(String, String)> = vars
            .iter()
            .chain(BASE_VARS.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = Config::from_vars(&all).expect("test configuration is valid");
        let clock = Arc::new(ManualClock::new(START));
        let (store, notifier, aws): (Arc<dyn Store>, Arc<Outbox>, _) = match Backend::chosen().await
        {
            Some(aws) => (
                Arc::new(aws.store.clone()),
                Arc::new(Outbox::moto(aws.notifier(&config).await, &aws.moto)),
                Some(aws),
            ),
            None => (
                Arc::new(match path {
                    Some(path) => EmbeddedStore::open(path).expect("the test database opens"),
                    None => EmbeddedStore::in_memory(),
                }),
                Arc::new(Outbox::terminal()),
                None,
            ),
        };
        let state = AppState::new(config, store, notifier.clone(), clock.clone()).unwrap();
        TestApp {
            router: planx::app(state.clone()),
            state,
            clock,
            notifier,
            aws,
            jar: Jar::default(),
            ip: Mutex::new("203.0.113.7".into()),
        }
    }

    /// This server (same store, outbox and clock) under other server keys: a
    /// rotation test's, read from a secret or swapped in place.
    pub fn with_keys(self, keys: ServerKeys) -> TestApp {
        let store = self.state.store.clone();
        self.rebuilt(keys, store)
    }

    /// This server (same configuration, outbox and clock) on `store`: a
    /// wrapper of this one's (see `paused.rs`).
    pub fn with_store(self, store: Arc<dyn Store>) -> TestApp {
        let keys = self.state.keys.clone();
        self.rebuilt(keys, store)
    }

    fn rebuilt(self, keys: ServerKeys, store: Arc<dyn Store>) -> TestApp {
        let state = AppState::with_keys(
            self.state.config.clone(),
            keys,
            store,
            self.notifier.clone(),
            self.clock.clone(),
        )
        .unwrap();
        TestApp {
            router: planx::app(state.clone()),
            state,
            ..self
        }
    }

    /// A fresh browser (empty cookie jar) on the same server.
    pub fn new_browser(&self) -> TestApp {
        self.browser_with(Jar::default())
    }

    /// Another browser on the same server and IP, holding `jar`.
    fn browser_with(&self, jar: Jar) -> TestApp {
        TestApp {
            state: self.state.clone(),
            clock: self.clock.clone(),
            notifier: self.notifier.clone(),
            aws: self.aws.clone(),
            router: self.router.clone(),
            jar,
            ip: Mutex::new(self.ip.lock().unwrap().clone()),
        }
    }

    /// A browser that starts with a copy of this one's cookies and keeps its own from then on.
    fn copy(&self) -> TestApp {
        let cookies = self.jar.lock().unwrap().clone();
        self.browser_with(Arc::new(Mutex::new(cookies)))
    }

    /// A tab of this browser: cookies either one is set are the other's too.
    fn tab(&self) -> TestApp {
        self.browser_with(self.jar.clone())
    }

    /// Races `n` tasks, each with its own browser starting from a copy of this one's
    /// cookies (so ping or sign in first), and returns their results in order.
    ///
    /// `task` is called for each task before the race starts; the future it returns
    /// runs once all `n` tasks are ready, so it should be the racing request itself.
    pub async fn race<T, Fut>(&self, n: usize, task: impl FnMut(TestApp) -> Fut) -> Vec<T>
    where
        T: Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.race_in(n, Self::copy, task).await
    }

    /// [`race`](Self::race) from `n` tabs of this browser, which share its cookie jar.
    pub async fn race_tabs<T, Fut>(&self, n: usize, task: impl FnMut(TestApp) -> Fut) -> Vec<T>
    where
        T: Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.race_in(n, Self::tab, task).await
    }

    /// Spawns the `n` futures on the runtime's worker threads and releases them together
    /// with a barrier, so their requests really overlap rather than run one by one.
    async fn race_in<T, Fut>(
        &self,
        n: usize,
        browser: fn(&TestApp) -> TestApp,
        mut task: impl FnMut(TestApp) -> Fut,
    ) -> Vec<T>
    where
        T: Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        assert_eq!(
            Handle::current().runtime_flavor(),
            RuntimeFlavor::MultiThread,
            "a race needs #[tokio::test(flavor = \"multi_thread\", worker_threads = 4)]"
        );
        let start = Arc::new(Barrier::new(n));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let request = task(browser(self));
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    request.await
                })
            })
            .collect();
        let mut results = Vec::with_capacity(n);
        for t in tasks {
            results.push(t.await.expect("a racing task panicked"));
        }
        results
    }

    /// An account with [`PASSWORD`].
    pub async fn add_user(&self, email: &str) -> User {
        self.create_user(email, None).await
    }

    /// An account with [`PASSWORD`] and `phone` bound.
    pub async fn add_user_with_phone(&self, email: &str, phone: &str) -> User {
        self.create_user(email, Some(phone)).await
    }

    async fn create_user(&self, email: &str, phone: Option<&str>) -> User {
        let new = NewUser {
            email: email.into(),
            password: PASSWORD.into(),
            name: None,
            phone: phone.map(Into::into),
        };
        accounts::create(
            self.state.store.as_ref(),
            &self.state.passwords,
            new,
            self.clock_now(),
        )
        .await
        .expect("test account is created")
    }

    /// Changes a stored account directly, for states no operation of the API sets
    /// (a disabled account, a bound authenticator or Lark account).
    pub async fn change_user(&self, id: &str, change: UserChange) {
        self.state
            .store
            .update_user(id, change, self.clock_now())
            .await
            .expect("the account is changed");
    }

    pub async fn user(&self, id: &str) -> User {
        self.state
            .store
            .user(id)
            .await
            .unwrap()
            .expect("user exists")
    }

    pub fn clock_now(&self) -> i64 {
        use shared::clock::Clock;
        self.clock.now()
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(seconds);
    }

    pub fn set_ip(&self, ip: &str) {
        *self.ip.lock().unwrap() = ip.into();
    }

    /// A fresh browser on the same server from address `ip`.
    pub fn browser_at(&self, ip: &str) -> TestApp {
        let browser = self.new_browser();
        browser.set_ip(ip);
        browser
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar.lock().unwrap().insert(name.into(), value.into());
    }

    pub fn drop_cookie(&self, name: &str) {
        self.jar.lock().unwrap().remove(name);
    }

    /// Sends a request as a browser would: jar cookies, and for writes the
    /// `X-XSRF-TOKEN` header copied from the `XSRF-TOKEN` cookie.
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::USER_AGENT, USER_AGENT);
        let cookies: Vec<String> = self
            .jar
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !cookies.is_empty() {
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        if method != Method::GET
            && let Some(token) = self.cookie("XSRF-TOKEN")
        {
            req = req.header("x-xsrf-token", token);
        }
        let req = match body {
            Some(json) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    /// Sends exactly `req` (plus the client IP), keeping cookies it sets.
    pub async fn send(&self, mut req: Request<Body>) -> TestResponse {
        req.extensions_mut()
            .insert(SourceIp(self.ip.lock().unwrap().clone()));
        let response = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let mut jar = self.jar.lock().unwrap();
        for v in parts.headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.into(), value.into());
            }
        }
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> TestResponse {
        self.request(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> TestResponse {
        self.request(Method::DELETE, path, None).await
    }

    /// `GET /`: gets the XSRF cookies.
    pub async fn ping(&self) -> TestResponse {
        self.get("/").await
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResponse {
        self.post(
            "/login",
            serde_json::json!({ "email": email, "password": password }),
        )
        .await
    }

    /// The store key of this browser's session, from its `TOKEN`.
    pub fn session_key(&self) -> String {
        let token = self.cookie("TOKEN").expect("signed in");
        let claims = self.state.tokens.verify(&token, self.clock_now());
        let jti = claims.expect("a valid token").jti;
        shared::sessions::key_of(&jti).expect("the jti of a session")
    }

    /// This browser's session as stored.
    pub async fn stored_session(&self) -> shared::model::Session {
        let token = self.cookie("TOKEN").expect("signed in");
        let claims = self.state.tokens.verify(&token, self.clock_now());
        let user_id = claims.expect("a valid token").sub;
        let session = self
            .state
            .store
            .session(&user_id, &self.session_key(), self.clock_now())
            .await
            .unwrap();
        session.expect("the session is stored")
    }

    /// `GET /refresh_code`: a code for this session's next token.
    pub async fn refresh_code(&self) -> String {
        let r = self.get("/refresh_code").await;
        r.expect(200);
        r.body["code"].as_str().expect("a code").to_string()
    }

    /// Pings for the XSRF cookies, then signs in.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.ping().await.expect(200);
        self.login(email, password).await.expect(204);
    }

    /// Confirms [`PASSWORD`] for this browser's session (`POST /user/reauthenticate`):
    /// sensitive changes go through again after the clock moved past the window.
    pub async fn reauthenticate(&self) {
        let body = serde_json::json!({ "password": PASSWORD });
        self.post("/user/reauthenticate", body).await.expect(204);
    }

    /// A new browser on this server, signed in as `email` with [`PASSWORD`].
    pub async fn signed_in_as(&self, email: &str) -> TestApp {
        let browser = self.new_browser();
        browser.sign_in(email, PASSWORD).await;
        browser
    }

    /// A server with one account, signed in from this browser.
    pub async fn signed_in() -> (TestApp, User) {
        let app = TestApp::spawn().await;
        let user = app.add_user("ada@example.com").await;
        app.sign_in("ada@example.com", PASSWORD).await;
        (app, user)
    }

    /// The code in the latest message sent to `recipient`.
    pub fn last_code(&self, recipient: &str) -> String {
        let text = self
            .notifier
            .last_to(recipient)
            .unwrap_or_else(|| panic!("nothing was sent to {recipient}"));
        shared::codes::code_in(&text).expect("the message carries a code")
    }

    /// Passwords verified so far (Argon2 runs), on this server.
    pub fn verifications(&self) -> u64 {
        self.state.passwords.verifications()
    }

    /// One-time codes compared so far, on this server.
    pub fn comparisons(&self) -> u64 {
        self.state
            .code_comparisons
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// DynamoDB calls so far (AWS backend only).
    pub fn round_trips(&self) -> Option<u64> {
        self.aws.as_ref().map(|a| a.store.round_trips())
    }

    /// How many messages were sent to `recipient`.
    pub fn sent_to(&self, recipient: &str) -> usize {
        self.notifier
            .outbox()
            .iter()
            .filter(|m| m.recipient() == recipient)
            .count()
    }
}
