//! Reading the `Cookie` header and writing `Set-Cookie` values.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::{Config, SameSite};

pub const TOKEN: &str = "TOKEN";
pub const DEVICE: &str = "DEVICE";
pub const XSRF_SALT: &str = "XSRF-SALT";
pub const XSRF_TOKEN: &str = "XSRF-TOKEN";

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

/// A `Set-Cookie` value. `max_age` 0 deletes the cookie. Values are
/// base64url or JWTs, which need no quoting.
///
/// `SameSite=None` (a console on another site) also makes the cookie
/// `Partitioned` (CHIPS): browsers that block third-party cookies, Chromium's
/// default profile and incognito among them, still keep it, in a jar of its
/// own for the console's site. Deleting it needs the same attribute, so it is
/// set whatever `max_age` is.
pub fn set(config: &Config, name: &str, value: &str, max_age: i64, http_only: bool) -> HeaderValue {
    build(
        config,
        name,
        value,
        max_age,
        http_only,
        true,
        config.cookie_same_site,
    )
}

/// [`set`] without `Domain` whatever `COOKIE_DOMAIN` says: an HttpOnly cookie
/// no sibling host needs (the device cookie).
pub fn set_host_only(config: &Config, name: &str, value: &str, max_age: i64) -> HeaderValue {
    build(
        config,
        name,
        value,
        max_age,
        true,
        false,
        config.cookie_same_site,
    )
}

/// An HttpOnly, host-only cookie set and read only in top-level navigations
/// to the API (the Lark flow's state): `SameSite=Lax` whatever
/// `COOKIE_SAMESITE` says, so it comes back on Lark's redirect, and never
/// `Partitioned`, since the API itself is the top-level site then.
pub fn set_for_navigation(config: &Config, name: &str, value: &str, max_age: i64) -> HeaderValue {
    build(config, name, value, max_age, true, false, SameSite::Lax)
}

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
        let v = set(&c, "TOKEN", "x", 60, true);
        assert_eq!(
            v,
            "TOKEN=x; Path=/; Max-Age=60; SameSite=Strict; HttpOnly; Secure"
        );
    }

    #[test]
    fn host_only_cookies_ignore_the_domain() {
        let c = Config::from_vars(&[("COOKIE_DOMAIN", "example.com")]).unwrap();
        assert!(
            set(&c, "XSRF-TOKEN", "x", 60, false)
                .to_str()
                .unwrap()
                .contains("Domain=")
        );
        assert_eq!(
            set_host_only(&c, DEVICE, "x", 60),
            "DEVICE=x; Path=/; Max-Age=60; SameSite=Lax; HttpOnly; Secure"
        );
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
            set(&c, "TOKEN", "", 0, true),
            "TOKEN=; Path=/; Max-Age=0; SameSite=None; HttpOnly; Secure; Partitioned"
        );
    }
}
