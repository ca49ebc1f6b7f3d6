//! Reading the `Cookie` header and writing `Set-Cookie` values.
//!
//! Scope: `COOKIE_DOMAIN` goes on `XSRF-TOKEN` only, the one cookie the page
//! must read (a console on a sibling host reads it through the shared parent
//! domain). `TOKEN`, `XSRF-SALT` and `DEVICE` are HttpOnly and host-only: no
//! sibling host, however it is compromised, is ever sent them.

use std::convert::Infallible;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};

use crate::config::{Config, SameSite};

pub const TOKEN: &str = "TOKEN";
pub const DEVICE: &str = "DEVICE";
pub const XSRF_SALT: &str = "XSRF-SALT";
pub const XSRF_TOKEN: &str = "XSRF-TOKEN";

/// Cookies that carried `COOKIE_DOMAIN` before they became host-only.
const FORMERLY_DOMAIN: [&str; 2] = [TOKEN, XSRF_SALT];

/// The value of cookie `name`, from any `Cookie` header.
pub fn get<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The `Set-Cookie` headers that set (or delete) one cookie; a response part.
#[derive(Debug, Clone)]
pub struct SetCookie(Vec<HeaderValue>);

impl SetCookie {
    /// The headers, in the order they are sent.
    pub fn values(&self) -> &[HeaderValue] {
        &self.0
    }
}

impl IntoResponseParts for SetCookie {
    type Error = Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Infallible> {
        for value in self.0 {
            res.headers_mut().append(header::SET_COOKIE, value);
        }
        Ok(res)
    }
}

/// Just the headers (so it can end a tuple response: `(StatusCode, SetCookie)`).
impl IntoResponse for SetCookie {
    fn into_response(self) -> Response {
        (self, ()).into_response()
    }
}

/// Sets cookie `name`; `max_age` 0 deletes it. Every cookie is HttpOnly but
/// `XSRF-TOKEN`, and only `XSRF-TOKEN` carries `COOKIE_DOMAIN`. Values are
/// base64url or JWTs, which need no quoting.
///
/// A browser may still hold a `TOKEN` or `XSRF-SALT` set with `Domain` before
/// they became host-only, and it would send that older cookie first. So while
/// `COOKIE_DOMAIN` is set, setting either also deletes its `Domain` twin,
/// sent first so that the cookie set last is the one kept.
pub fn set(config: &Config, name: &str, value: &str, max_age: i64) -> SetCookie {
    let page_reads = name == XSRF_TOKEN;
    let mut values = vec![];
    let same_site = config.cookie_same_site;
    if !config.cookie_domain.is_empty() && FORMERLY_DOMAIN.contains(&name) {
        values.push(build(config, name, "", 0, true, true, same_site));
    }
    values.push(build(
        config,
        name,
        value,
        max_age,
        !page_reads,
        page_reads,
        same_site,
    ));
    SetCookie(values)
}

/// An HttpOnly, host-only cookie set and read only in top-level navigations
/// to the API (the Lark flow's state): `SameSite=Lax` whatever
/// `COOKIE_SAMESITE` says, so it comes back on Lark's redirect, and never
/// `Partitioned`, since the API itself is the top-level site then.
pub fn set_for_navigation(config: &Config, name: &str, value: &str, max_age: i64) -> HeaderValue {
    build(config, name, value, max_age, true, false, SameSite::Lax)
}

/// One `Set-Cookie` value.
///
/// `SameSite=None` (a console on another site) also makes the cookie
/// `Partitioned` (CHIPS): browsers that block third-party cookies, Chromium's
/// default profile and incognito among them, still keep it, in a jar of its
/// own for the console's site. Deleting it needs the same attribute, so it is
/// set whatever `max_age` is.
fn build(
    config: &Config,
    name: &str,
    value: &str,
    max_age: i64,
    http_only: bool,
    domain: bool,
    same_site: SameSite,
) -> HeaderValue {
    let mut cookie = format!(
        "{name}={value}; Path=/; Max-Age={max_age}; SameSite={}",
        same_site.as_str()
    );
    if domain && !config.cookie_domain.is_empty() {
        cookie.push_str("; Domain=");
        cookie.push_str(&config.cookie_domain);
    }
    if http_only {
        cookie.push_str("; HttpOnly");
    }
    if config.cookie_secure {
        cookie.push_str("; Secure");
    }
    if same_site == SameSite::None {
        cookie.push_str("; Partitioned");
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(c: &SetCookie) -> Vec<&str> {
        c.values().iter().map(|v| v.to_str().unwrap()).collect()
    }

    #[test]
    fn finds_cookies_across_headers() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; TOKEN=abc.def"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("XSRF-SALT=\"s\""));
        assert_eq!(get(&h, "TOKEN"), Some("abc.def"));
        assert_eq!(get(&h, "XSRF-SALT"), Some("s"));
        assert_eq!(get(&h, "missing"), None);
    }

    #[test]
    fn set_cookie_attributes() {
        let c = Config::from_vars(&[("COOKIE_SAMESITE", "strict")]).unwrap();
        assert_eq!(
            shown(&set(&c, TOKEN, "x", 60)),
            ["TOKEN=x; Path=/; Max-Age=60; SameSite=Strict; HttpOnly; Secure"]
        );
        assert_eq!(
            shown(&set(&c, XSRF_TOKEN, "x", 60)),
            ["XSRF-TOKEN=x; Path=/; Max-Age=60; SameSite=Strict; Secure"]
        );
    }

    #[test]
    fn only_the_cookie_the_page_reads_has_the_domain() {
        let c = Config::from_vars(&[("COOKIE_DOMAIN", "example.com")]).unwrap();
        assert_eq!(
            shown(&set(&c, XSRF_TOKEN, "x", 60)),
            ["XSRF-TOKEN=x; Path=/; Max-Age=60; SameSite=Lax; Domain=example.com; Secure"]
        );
        assert_eq!(
            shown(&set(&c, DEVICE, "x", 60)),
            ["DEVICE=x; Path=/; Max-Age=60; SameSite=Lax; HttpOnly; Secure"]
        );
        // The formerly domain-wide ones delete their old twin first.
        for name in [TOKEN, XSRF_SALT] {
            assert_eq!(
                shown(&set(&c, name, "x", 60)),
                [
                    format!(
                        "{name}=; Path=/; Max-Age=0; SameSite=Lax; Domain=example.com; HttpOnly; Secure"
                    ),
                    format!("{name}=x; Path=/; Max-Age=60; SameSite=Lax; HttpOnly; Secure"),
                ]
            );
        }
    }

    #[test]
    fn navigation_cookies_are_lax_and_first_party_in_every_layout() {
        let c = Config::from_vars(&[
            ("COOKIE_SAMESITE", "none"),
            ("COOKIE_DOMAIN", "example.com"),
        ])
        .unwrap();
        assert_eq!(
            set_for_navigation(&c, "LARK_STATE", "n", 600),
            "LARK_STATE=n; Path=/; Max-Age=600; SameSite=Lax; HttpOnly; Secure"
        );
    }

    #[test]
    fn cross_site_cookies_are_partitioned() {
        let c = Config::from_vars(&[("COOKIE_SAMESITE", "none")]).unwrap();
        assert_eq!(
            shown(&set(&c, TOKEN, "", 0)),
            ["TOKEN=; Path=/; Max-Age=0; SameSite=None; HttpOnly; Secure; Partitioned"]
        );
    }
}
