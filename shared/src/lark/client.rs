//! Lark's open platform, as this API calls it: the OAuth code exchange
//! (`POST /open-apis/authen/v2/oauth/token`, RFC 6749 style, with the app
//! secret and the PKCE verifier) and the identity (`GET
//! /open-apis/authen/v1/user_info` with the user access token). No app or
//! tenant access token is needed for either. The user access token is used
//! for that one call and dropped; no refresh token is asked for
//! (`offline_access`), and none is kept if Lark sends one.
//!
//! Answers are read the way Lark's own SDK reads them: the JSON body whatever
//! the HTTP status, then its `code` (a number, or a numeric string as Lark's
//! documentation shows it).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::settings::Lark;
use crate::model::LarkIdentity;
use crate::secret::Secret;

/// The largest answer read from Lark.
const MAX_ANSWER: usize = 64 * 1024;

/// Codes with which Lark says the fault is its own, to retry later.
const LARK_SIDE: [i64; 2] = [20050, 20072];

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Why an identity could not be had from Lark. Never carries the code, a
/// token or the secret; Lark's own code and words are kept for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LarkError {
    /// Lark refused: the code is wrong, spent or expired, the redirect or the
    /// app does not match, the user may not use the app.
    #[error("Lark refused the {call}: code {code}: {reason}")]
    Refused {
        call: &'static str,
        code: i64,
        reason: String,
    },
    /// Lark could not be reached, took too long, failed on its side, or
    /// answered something that is not its API's answer.
    #[error("Lark's {call} is unavailable: {reason}")]
    Unavailable { call: &'static str, reason: String },
}

/// The client of one Lark app. Its HTTPS connector (and the trust roots it
/// reads) is made on first use, and its connections are kept alive and
/// reused: one per process while sign-ins come, not one per sign-in.
pub struct LarkClient {
    app_id: String,
    app_secret: Secret<String>,
    redirect: String,
    api_url: String,
    timeout: Duration,
    http: OnceLock<Result<Client<Https, Full<Bytes>>, String>>,
}

impl std::fmt::Debug for LarkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LarkClient({}, {})", self.app_id, self.api_url)
    }
}

/// `code` as a number or a numeric string; absent reads as `None`.
fn lark_code<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Number(i64),
        Text(String),
    }
    Ok(match Option::<Code>::deserialize(d)? {
        Some(Code::Number(n)) => Some(n),
        Some(Code::Text(t)) => t.trim().parse().ok(),
        None => None,
    })
}

/// The token endpoint's answer (flat: no `data` envelope).
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default, deserialize_with = "lark_code")]
    code: Option<i64>,
    access_token: Option<Secret<String>>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `user_info`'s answer: `{code, msg, data}`.
#[derive(Deserialize)]
struct UserInfoAnswer {
    #[serde(default, deserialize_with = "lark_code")]
    code: Option<i64>,
    msg: Option<String>,
    data: Option<LarkIdentity>,
}

impl LarkClient {
    /// The client of the app `lark` configures, once it has every setting.
    pub fn new(lark: &Lark) -> Option<Self> {
        let app_secret = lark.app_secret.clone()?;
        if !lark.missing().is_empty() {
            return None;
        }
        Some(Self {
            app_id: lark.app_id.clone(),
            app_secret,
            redirect: lark.redirect.clone(),
            api_url: lark.api_url.clone(),
            timeout: Duration::from_millis(lark.timeout_ms),
            http: OnceLock::new(),
        })
    }

    /// The Lark user who approved the sign-in that `code` completes: the code
    /// exchanged (with the PKCE `verifier`) for a user access token, and the
    /// token for the user's identity. Two calls, each within the timeout.
    pub async fn identity(&self, code: &str, verifier: &str) -> Result<LarkIdentity, LarkError> {
        let token = self.exchange(code, verifier).await?;
        self.user_info(&token).await
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Result<Secret<String>, LarkError> {
        const CALL: &str = "code exchange";
        let body = serde_json::json!({
            "grant_type": "authorization_code",
            "client_id": self.app_id,
            "client_secret": self.app_secret.expose(),
            "code": code,
            "redirect_uri": self.redirect,
            "code_verifier": verifier,
        });
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/open-apis/authen/v2/oauth/token", self.api_url))
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Full::new(Bytes::from(body.to_string())));
        let (status, answer) = self.call::<TokenAnswer>(CALL, request).await?;
        match (answer.code, answer.access_token) {
            (Some(0), Some(token)) if !token.expose().is_empty() => Ok(token),
            (code, _) => {
                let reason = [answer.error, answer.error_description]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                Err(failure(CALL, status, code, reason))
            }
        }
    }

    async fn user_info(&self, token: &Secret<String>) -> Result<LarkIdentity, LarkError> {
        const CALL: &str = "user_info";
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!("{}/open-apis/authen/v1/user_info", self.api_url))
            .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()))
            .body(Full::new(Bytes::new()));
        let (status, answer) = self.call::<UserInfoAnswer>(CALL, request).await?;
        match (answer.code, answer.data) {
            (Some(0), Some(data)) => identity(data).ok_or_else(|| LarkError::Unavailable {
                call: CALL,
                reason: "the answer has no valid open_id".into(),
            }),
            (code, _) => Err(failure(CALL, status, code, answer.msg.unwrap_or_default())),
        }
    }

    /// Sends `request` and reads its JSON answer, whatever the status, within the timeout.
    async fn call<T: DeserializeOwned>(
        &self,
        call: &'static str,
        request: Result<Request<Full<Bytes>>, hyper::http::Error>,
    ) -> Result<(u16, T), LarkError> {
        let unavailable = |reason: String| LarkError::Unavailable { call, reason };
        let request = request.map_err(|e| unavailable(format!("bad request: {e}")))?;
        let client = self.http().map_err(|e| unavailable(e.clone()))?;
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| unavailable(format!("{e}")))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| unavailable(format!("reading the answer: {e}")))?
                .to_bytes();
            let answer = serde_json::from_slice(&body).map_err(|e| {
                unavailable(format!("HTTP {status}, not the API's JSON answer ({e})"))
            })?;
            Ok((status, answer))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(unavailable(format!(
                    "no answer within {} ms",
                    self.timeout.as_millis()
                )))
            })
    }

    /// The HTTP client, made on first use: rustls on ring, the system's trust
    /// roots, HTTP/1.1 kept alive; plain HTTP only for a loopback stand-in
    /// (the configuration refuses it elsewhere).
    fn http(&self) -> Result<&Client<Https, Full<Bytes>>, &String> {
        self.http
            .get_or_init(|| {
                let mut http = HttpConnector::new();
                http.set_connect_timeout(Some(self.timeout));
                http.enforce_http(false);
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(provider)
                    .map_err(|e| format!("no TLS trust roots: {e}"))?
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http);
                Ok(Client::builder(TokioExecutor::new()).build(https))
            })
            .as_ref()
    }
}

/// A failed answer: Lark's fault (5xx, 20050, 20072, no code at all) or a refusal.
fn failure(call: &'static str, status: u16, code: Option<i64>, reason: String) -> LarkError {
    match code {
        Some(code) if status < 500 && !LARK_SIDE.contains(&code) && code != 0 => {
            LarkError::Refused { call, code, reason }
        }
        _ => LarkError::Unavailable {
            call,
            reason: format!(
                "HTTP {status}, code {}: {reason}",
                code.map_or("none".into(), |c| c.to_string())
            ),
        },
    }
}

/// An id Lark issues (`ou_...`, `on_...`, a tenant key): 1 to 128 letters,
/// digits, `_` or `-`, so it is safe in a store key.
fn lark_id(value: &str) -> Option<String> {
    let ok = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then(|| value.to_string())
}

/// A name as shown: control characters dropped, at most 128 characters.
fn display_name(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect::<String>()
        .trim()
        .to_string()
}

/// An avatar URL, if it is an http(s) URL of a sane length (never `javascript:`).
fn avatar(value: &str) -> String {
    let ok = value.len() <= 1024
        && url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
    if ok { value.to_string() } else { String::new() }
}

/// What is kept of `user_info`'s `data`: the public fields, checked; `None`
/// without a valid `open_id`. (Its email and mobile, which Lark says an
/// administrator sets unverified, are not read.)
fn identity(data: LarkIdentity) -> Option<LarkIdentity> {
    Some(LarkIdentity {
        open_id: lark_id(&data.open_id)?,
        union_id: lark_id(&data.union_id).unwrap_or_default(),
        name: display_name(&data.name),
        en_name: display_name(&data.en_name),
        avatar_url: avatar(&data.avatar_url),
        avatar_thumb: avatar(&data.avatar_thumb),
        avatar_middle: avatar(&data.avatar_middle),
        avatar_big: avatar(&data.avatar_big),
        tenant_key: lark_id(&data.tenant_key).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_numbers_or_numeric_strings() {
        for (body, code) in [
            (r#"{"code":0,"access_token":"u-1"}"#, Some(0)),
            (r#"{"code":"0","access_token":"u-1"}"#, Some(0)),
            (r#"{"code":"20050","error":"server_error"}"#, Some(20050)),
            (r#"{"error":"x"}"#, None),
            (r#"{"code":"zero"}"#, None),
        ] {
            let a: TokenAnswer = serde_json::from_str(body).unwrap();
            assert_eq!(a.code, code, "{body}");
        }
    }

    #[test]
    fn failures_tell_lark_faults_from_refusals() {
        let refused = failure("code exchange", 400, Some(20003), "invalid_grant".into());
        assert!(matches!(refused, LarkError::Refused { code: 20003, .. }));
        for (status, code) in [
            (500, Some(20050)),
            (503, Some(20072)),
            (400, Some(20050)),
            (200, None),
            (502, Some(20003)),
        ] {
            let e = failure("code exchange", status, code, String::new());
            assert!(
                matches!(e, LarkError::Unavailable { .. }),
                "{status} {code:?}: {e}"
            );
        }
    }

    #[test]
    fn only_public_and_well_formed_fields_are_kept() {
        let data: UserInfoAnswer = serde_json::from_str(
            r#"{"code":0,"msg":"success","data":{
                "name":"Ada\u0007 Lark","en_name":"Ada","open_id":"ou_abc123","union_id":"on_x y",
                "avatar_url":"https://s1.example/a.png","avatar_thumb":"javascript:alert(1)",
                "avatar_middle":"www.feishu.cn/avatar/icon","avatar_big":"",
                "tenant_key":"736588c92lxf175d","email":"a@example.com","mobile":"+8613800000000",
                "access_token":"u-leaked","refresh_token":"ur-leaked"}}"#,
        )
        .unwrap();
        let id = identity(data.data.unwrap()).unwrap();
        assert_eq!(
            id,
            LarkIdentity {
                open_id: "ou_abc123".into(),
                union_id: String::new(),
                name: "Ada Lark".into(),
                en_name: "Ada".into(),
                avatar_url: "https://s1.example/a.png".into(),
                avatar_thumb: String::new(),
                avatar_middle: String::new(),
                avatar_big: String::new(),
                tenant_key: "736588c92lxf175d".into(),
            }
        );
        let stored = serde_json::to_string(&id).unwrap();
        assert!(
            !stored.contains("leaked") && !stored.contains("mobile"),
            "{stored}"
        );
        for bad in ["", "ou/../x", &"o".repeat(129)] {
            let data = LarkIdentity {
                open_id: bad.into(),
                ..LarkIdentity::default()
            };
            assert_eq!(identity(data), None, "{bad:?}");
        }
    }
}
