//! Extractors whose rejections speak the project's error format and name the field.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The body limit: larger bodies get 413.
pub const BODY_LIMIT: usize = 16 * 1024;

/// A JSON body. Malformed JSON is `INVALID_JSON`; a missing or mistyped field
/// is `INVALID_FIELD` naming the field's path.
pub struct Json<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// serde's message without its " at line 1 column 9" suffix.
fn without_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i])
}

/// Parses JSON, naming the field that failed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = without_position(&inner.to_string()).to_string();
        match inner.classify() {
            serde_json::error::Category::Data => {
                // "missing field `x`" is reported at the parent path; name the field itself.
                let field = message
                    .strip_prefix("missing field `")
                    .and_then(|r| r.strip_suffix('`'))
                    .map(|f| {
                        if path == "." {
                            f.to_string()
                        } else {
                            format!("{path}.{f}")
                        }
                    })
                    .unwrap_or(if path == "." {
                        "body".to_string()
                    } else {
                        path
                    });
                ApiError::field(field, message)
            }
            _ => ApiError::InvalidJson(format!("malformed JSON: {message}")),
        }
    })
}

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(_) if e.status().as_u16() == 413 => {
                ApiError::PayloadTooLarge(BODY_LIMIT)
            }
            other => ApiError::InvalidJson(other.body_text()),
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Query parameters, with the same error format.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        parse_query(query).map(Query)
    }
}

/// Decodes a query string through a JSON object of strings, so the same field
/// naming applies (every query value is a string here).
pub(crate) fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let mut map = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode_component(k), decode_component(v));
        map.entry(k).or_insert(serde_json::Value::String(v));
    }
    let bytes = serde_json::to_vec(&map).map_err(|e| ApiError::Internal(Box::new(e)))?;
    parse_json(&bytes)
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decoding with `+` as space; invalid escapes are kept as written.
pub(crate) fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
        tss: Option<Vec<String>>,
    }

    #[test]
    fn names_missing_and_mistyped_fields() {
        let e = parse_json::<Login>(br#"{"email":"a@b.co"}"#).unwrap_err();
        assert_eq!(e.code(), "INVALID_FIELD");
        assert!(e.to_string().starts_with("password: missing field"), "{e}");
        let e = parse_json::<Login>(br#"{"email":5,"password":"x"}"#).unwrap_err();
        assert!(e.to_string().starts_with("email: invalid type"), "{e}");
        let e = parse_json::<Login>(br#"{"email":"a","password":"x","tss":["1",2]}"#).unwrap_err();
        assert!(e.to_string().starts_with("tss[1]: invalid type"), "{e}");
        let e = parse_json::<Login>(br#"[]"#).unwrap_err();
        assert!(e.to_string().starts_with("body: invalid"), "{e}");
    }

    #[test]
    fn malformed_json() {
        for body in [&b"{"[..], b"", b"{\"email\":}", b"nul"] {
            let e = parse_json::<Login>(body).unwrap_err();
            assert_eq!(e.code(), "INVALID_JSON", "{e}");
            assert!(!e.to_string().contains("line 1"));
        }
    }

    #[derive(Debug, Deserialize)]
    struct Q {
        email: String,
    }

    #[test]
    fn query_strings() {
        let q: Q = parse_query("email=a%2Bb%40x.co&email=ignored").unwrap();
        assert_eq!(q.email, "a+b@x.co");
        let q: Q = parse_query("email=a+b%zz%4%C3%A9%e").unwrap();
        assert_eq!(q.email, "a b%zz%4é%e");
        let q: Q = parse_query("email=%é%").unwrap();
        assert_eq!(q.email, "%é%");
        let e = parse_query::<Q>("other=1").unwrap_err();
        assert!(e.to_string().starts_with("email: missing field"), "{e}");
    }
}

/// `?phone=`: the query of the two operations that send a code by SMS
/// (`GET /login/sms`, `GET /user/phone_code`).
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PhoneQuery {
    /// A phone number in E.164 form, e.g. `+14155550123` (`%2B`; a raw `+`,
    /// which decodes to a space, is read as `+` too).
    #[param(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+14155550123")]
    phone: String,
}

impl PhoneQuery {
    /// The number in E.164 form, or the field error naming `phone`.
    pub fn phone(&self) -> Result<String, crate::validate::FieldError> {
        crate::validate::phone_query("phone", &self.phone)
    }
}
