//! A stand-in for Lark's open platform, on a loopback port: the authorize page
//! (which approves at once, as the person [`LarkStandIn::person`] says), the
//! OAuth code exchange `POST /open-apis/authen/v2/oauth/token` and
//! `GET /open-apis/authen/v1/user_info`, with the field names, status codes
//! and error shapes Lark documents ("Get user_access_token",
//! <https://open.larksuite.com/document/uAjLw4CM/ukTMukTMukTM/authentication-management/access-token/get-user-access-token>,
//! and "Get user info",
//! <https://open.feishu.cn/document/uAjLw4CM/ukTMukTMukTM/reference/authen-v1/user_info/get>):
//!
//! - the token endpoint is flat: `{"code":0,"access_token",...}`, or HTTP 400
//!   (500 for 20050) `{"code":N,"error","error_description"}`;
//! - `user_info` has the envelope `{"code","msg","data"}`, errors at HTTP 200;
//! - a code is single use (20003, then 20065), lives 5 minutes (20004), is
//!   bound to the `redirect_uri` (20071) and the PKCE challenge (20049).
//!
//! Faults are switched per call: any answer, or no answer at all (a stall).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const APP_ID: &str = "cli_a1b2c3d4e5f6a7b8";
pub const APP_SECRET: &str = "stand-in-app-secret-0123456789";
/// This API's callback as the app's settings name it (the tests call its path).
pub const REDIRECT: &str = "https://api.example.com/lark";
pub const CONSOLE: &str = "https://console.example.com/#/";

/// The two calls the API makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    Token,
    UserInfo,
}

/// What the stand-in does instead of answering properly.
#[derive(Debug, Clone)]
enum Fault {
    Answer(StatusCode, Value),
    Stall,
}

/// A code the authorize page issued.
struct Grant {
    person: Value,
    redirect_uri: String,
    challenge: String,
    issued: Instant,
    used: bool,
}

#[derive(Default)]
struct Platform {
    person: Value,
    grants: HashMap<String, Grant>,
    /// User access tokens issued, and whose they are.
    tokens: HashMap<String, Value>,
    faults: HashMap<Call, Fault>,
    calls: HashMap<Call, usize>,
    issued: u64,
}

#[derive(Clone)]
pub struct LarkStandIn {
    /// `http://127.0.0.1:PORT`: `LARK_API_URL`.
    pub url: String,
    platform: Arc<Mutex<Platform>>,
}

/// A Lark person: what `user_info` answers for them, with the fields it needs
/// scopes for and the API must not keep.
pub fn person(open_id: &str, name: &str) -> Value {
    json!({
        "name": name,
        "en_name": format!("{name} (en)"),
        "avatar_url": format!("https://s1-imfile.feishucdn.com/{open_id}.png"),
        "avatar_thumb": format!("https://s1-imfile.feishucdn.com/{open_id}_72.png"),
        "avatar_middle": format!("https://s1-imfile.feishucdn.com/{open_id}_240.png"),
        "avatar_big": format!("https://s1-imfile.feishucdn.com/{open_id}_640.png"),
        "open_id": open_id,
        "union_id": format!("on_{}", &open_id[3..]),
        "email": "unverified@example.com",
        "enterprise_email": "corp@example.com",
        "user_id": "5d9bdxxx",
        "mobile": "+8613800000000",
        "tenant_key": "736588c92lxf175d",
        "employee_no": "111222333",
    })
}

impl LarkStandIn {
    pub async fn start() -> LarkStandIn {
        let platform = Arc::new(Mutex::new(Platform::default()));
        let router = Router::new()
            .route("/open-apis/authen/v1/authorize", get(authorize))
            .route("/open-apis/authen/v2/oauth/token", post(token))
            .route("/open-apis/authen/v1/user_info", get(user_info))
            .with_state(platform.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        LarkStandIn { url, platform }
    }

    /// The settings of an API whose Lark is this stand-in.
    pub fn vars(&self) -> Vec<(String, String)> {
        [
            ("LARK_APP_ID", APP_ID.to_string()),
            ("LARK_APP_SECRET", APP_SECRET.to_string()),
            ("LARK_REDIRECT", REDIRECT.to_string()),
            ("CONSOLE_URL", CONSOLE.to_string()),
            ("LARK_API_URL", self.url.clone()),
            (
                "LARK_AUTH_URL",
                format!("{}/open-apis/authen/v1/authorize", self.url),
            ),
            ("LARK_TIMEOUT_MS", "400".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Who approves at the authorize page from now on.
    pub fn person(&self, person: Value) {
        self.platform.lock().unwrap().person = person;
    }

    /// The authorize page approving `location` (Lark's authorize URL as the API
    /// redirected to it) at once: where it sends the browser, `redirect_uri`
    /// with `code` and `state`. Panics if the API's URL is not what Lark takes.
    pub fn approve(&self, location: &str) -> String {
        let url = url_query(location);
        let mut platform = self.platform.lock().unwrap();
        match issue(&mut platform, &url) {
            Ok(to) => to,
            Err(e) => panic!("the authorize page refuses {location}: {e}"),
        }
    }

    /// From now on `call` answers `status` with `body`.
    pub fn fail(&self, call: Call, status: u16, body: Value) {
        let status = StatusCode::from_u16(status).unwrap();
        let mut platform = self.platform.lock().unwrap();
        platform.faults.insert(call, Fault::Answer(status, body));
    }

    /// From now on `call` never answers.
    pub fn stall(&self, call: Call) {
        self.platform
            .lock()
            .unwrap()
            .faults
            .insert(call, Fault::Stall);
    }

    /// Answers properly again.
    pub fn heal(&self) {
        self.platform.lock().unwrap().faults.clear();
    }

    /// How many times `call` was made.
    pub fn calls(&self, call: Call) -> usize {
        let platform = self.platform.lock().unwrap();
        platform.calls.get(&call).copied().unwrap_or_default()
    }

    /// Every user access token issued so far (none may be stored or shown).
    pub fn tokens(&self) -> Vec<String> {
        let platform = self.platform.lock().unwrap();
        platform.tokens.keys().cloned().collect()
    }
}

/// The query of `location`, decoded.
fn url_query(location: &str) -> HashMap<String, String> {
    let uri: axum::http::Uri = location.parse().expect("a URL");
    Query::<HashMap<String, String>>::try_from_uri(&uri)
        .expect("a query")
        .0
}

/// The authorize page's checks, then a code for the person: the callback URL.
fn issue(platform: &mut Platform, q: &HashMap<String, String>) -> Result<String, String> {
    let field = |name: &str| q.get(name).cloned().ok_or(format!("no {name}"));
    if field("client_id")? != APP_ID {
        return Err("unknown client_id".into());
    }
    if field("response_type")? != "code" {
        return Err("response_type must be code".into());
    }
    let redirect_uri = field("redirect_uri")?;
    if redirect_uri != REDIRECT {
        return Err("redirect_uri is not one of the app's".into());
    }
    if field("code_challenge_method")? != "S256" {
        return Err("code_challenge_method must be S256".into());
    }
    let challenge = field("code_challenge")?;
    let state = field("state")?;
    platform.issued += 1;
    let code = format!("stand-in-code-{}", platform.issued);
    let grant = Grant {
        person: platform.person.clone(),
        redirect_uri: redirect_uri.clone(),
        challenge,
        issued: Instant::now(),
        used: false,
    };
    platform.grants.insert(code.clone(), grant);
    Ok(format!("{redirect_uri}?code={code}&state={state}"))
}

async fn authorize(
    State(platform): State<Arc<Mutex<Platform>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let issued = issue(&mut platform.lock().unwrap(), &q);
    match issued {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

/// Counts the call, then the fault it is switched to, if any.
async fn faulted(platform: &Arc<Mutex<Platform>>, call: Call) -> Option<Response> {
    let fault = {
        let mut p = platform.lock().unwrap();
        *p.calls.entry(call).or_default() += 1;
        p.faults.get(&call).cloned()
    };
    match fault? {
        Fault::Answer(status, body) => Some((status, Json(body)).into_response()),
        Fault::Stall => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            None
        }
    }
}

/// An OAuth error as the v2 token endpoint answers it.
fn oauth_error(code: u32, error: &str, description: &str) -> Response {
    let status = match code {
        20050 => StatusCode::INTERNAL_SERVER_ERROR,
        20072 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = json!({ "code": code, "error": error, "error_description": description });
    (status, Json(body)).into_response()
}

async fn token(
    State(platform): State<Arc<Mutex<Platform>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(fault) = faulted(&platform, Call::Token).await {
        return fault;
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let Some(b) = json_body
        .then(|| serde_json::from_str::<Value>(&body).ok())
        .flatten()
    else {
        return oauth_error(20063, "invalid_request", "The request is malformed.");
    };
    let s = |name: &str| b[name].as_str().unwrap_or_default().to_string();
    if s("grant_type") != "authorization_code" {
        return oauth_error(
            20036,
            "unsupported_grant_type",
            "The specified grant_type is not supported.",
        );
    }
    if s("client_id").is_empty() || s("client_secret").is_empty() || s("code").is_empty() {
        return oauth_error(
            20001,
            "invalid_request",
            "The request is missing a required parameter.",
        );
    }
    if s("client_id") != APP_ID {
        return oauth_error(20048, "invalid_client", "The specified app does not exist.");
    }
    if s("client_secret") != APP_SECRET {
        return oauth_error(20002, "invalid_client", "The client secret is invalid.");
    }
    let mut p = platform.lock().unwrap();
    let Some(grant) = p.grants.get_mut(&s("code")) else {
        return oauth_error(
            20003,
            "invalid_grant",
            "The authorization code is not found.",
        );
    };
    if grant.used {
        return oauth_error(
            20065,
            "invalid_grant",
            "The authorization code has been used.",
        );
    }
    if grant.issued.elapsed() > Duration::from_secs(300) {
        return oauth_error(
            20004,
            "invalid_grant",
            "The authorization code has expired.",
        );
    }
    if s("redirect_uri") != grant.redirect_uri {
        return oauth_error(
            20071,
            "invalid_grant",
            "The provided redirect URI does not match.",
        );
    }
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(s("code_verifier").as_bytes()));
    if challenge != grant.challenge {
        return oauth_error(20049, "invalid_grant", "PKCE code challenge failed.");
    }
    grant.used = true;
    let person = grant.person.clone();
    p.issued += 1;
    let access_token = format!("u-stand-in-access-token-{}", p.issued);
    p.tokens.insert(access_token.clone(), person);
    let answer = json!({
        "code": 0,
        "access_token": access_token,
        "expires_in": 7200,
        "token_type": "Bearer",
        "scope": "",
    });
    Json(answer).into_response()
}

async fn user_info(State(platform): State<Arc<Mutex<Platform>>>, headers: HeaderMap) -> Response {
    if let Some(fault) = faulted(&platform, Call::UserInfo).await {
        return fault;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let person = platform.lock().unwrap().tokens.get(bearer).cloned();
    let answer = match person {
        Some(data) => json!({ "code": 0, "msg": "success", "data": data }),
        None => json!({
            "code": 20005,
            "msg": "The user access token passed is invalid. Please check the value",
        }),
    };
    Json(answer).into_response()
}
