//! Property tests for every parser that takes raw client input: whatever the
//! bytes, they answer (a value or a 4xx error) and never panic; what they
//! accept has the shape the rest of the code relies on.

use axum::http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;
use serde::Deserialize;

use crate::http::cookies;
use crate::http::extract::{decode_component, parse_json, parse_query};
use crate::token::Tokens;
use crate::{totp, validate};

/// The body shapes handlers take (a few representative ones).
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Login {
    email: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct BindTotp {
    totp: String,
    tss: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct SetProfile {
    key: String,
    email: Option<String>,
    name: Option<String>,
}

fn json_like() -> impl Strategy<Value = String> {
    // Mostly JSON-ish text, so parsing gets past the first byte.
    prop_oneof![
        any::<String>(),
        proptest::string::string_regex(r#"\{("[a-z]{0,6}":("[^"]{0,8}"|[0-9]{1,3}|null|true|\[("[0-9]{0,6}",?){0,3}\]),?){0,4}\}?"#).unwrap(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn json_bodies_never_panic_and_errors_are_4xx(body in json_like()) {
        for result in [
            parse_json::<Login>(body.as_bytes()).err(),
            parse_json::<BindTotp>(body.as_bytes()).err(),
            parse_json::<SetProfile>(body.as_bytes()).err(),
        ].into_iter().flatten() {
            prop_assert!(result.status().is_client_error(), "{result:?}");
            prop_assert!(matches!(result.code(), "INVALID_JSON" | "INVALID_FIELD"));
        }
    }

    #[test]
    fn raw_bytes_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_json::<Login>(&body);
    }

    #[test]
    fn query_strings_never_panic(query in any::<String>()) {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Q { phone: String }
        if let Err(e) = parse_query::<Q>(&query) {
            prop_assert_eq!(e.code(), "INVALID_FIELD");
        }
        let _ = decode_component(&query);
    }

    #[test]
    fn percent_encoding_round_trips(value in any::<String>()) {
        let encoded: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
        prop_assert_eq!(decode_component(&encoded), value);
    }

    #[test]
    fn cookie_headers_never_panic(raw in any::<String>(), name in "[A-Z-]{1,12}") {
        if let Ok(v) = HeaderValue::from_str(&raw) {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, v);
            let _ = cookies::get(&h, &name);
        }
    }

    #[test]
    fn tokens_never_panic_and_garbage_never_verifies(token in any::<String>()) {
        let t = Tokens::fixed("planx", b"0123456789abcdef0123456789abcdef");
        prop_assert!(t.verify(&token, 1_800_000_000).is_none());
    }

    #[test]
    fn three_part_garbage_tokens_never_verify(a in "[A-Za-z0-9_-]{0,40}", b in "[A-Za-z0-9_-]{0,80}", c in "[A-Za-z0-9_-]{0,43}") {
        let t = Tokens::fixed("planx", b"0123456789abcdef0123456789abcdef");
        let token = [a, b, c].join(".");
        prop_assert!(t.verify(&token, 1_800_000_000).is_none());
    }

    #[test]
    fn otpauth_uris_never_panic(uri in prop_oneof![
        any::<String>(),
        "otpauth://totp/[a-z:%@.]{0,20}\\?secret=[A-Z2-7=]{0,40}(&issuer=[a-z]{0,8})?(&digits=[0-9]{1,2})?(&period=[0-9]{0,4})?(&algorithm=SHA[0-9]{1,3})?",
    ]) {
        if let Some(secret) = totp::secret_from_url(&uri) {
            // An accepted secret is usable for codes.
            prop_assert!(totp::code_at_step(&secret, 1).is_some());
        }
    }

    #[test]
    fn totp_codes_never_panic(secret in "[A-Z2-7]{0,40}", code in any::<String>(), now in any::<i64>()) {
        let _ = totp::matching_step(&secret, &code, now);
    }

    #[test]
    fn phones_accepted_are_e164_and_normalising_is_idempotent(raw in prop_oneof![any::<String>(), "[+]?[0-9 ()-.]{0,20}"]) {
        if let Ok(p) = validate::phone("phone", &raw) {
            prop_assert!(p.starts_with('+'));
            prop_assert!(p[1..].bytes().all(|b| b.is_ascii_digit()));
            prop_assert!((8..=16).contains(&p.len()));
            prop_assert_eq!(validate::phone("phone", &p).unwrap(), p.clone());
            // The console's raw `+`, read as a space from a query, is that `+`.
            prop_assert_eq!(validate::phone_query("phone", &p.replacen('+', " ", 1)).unwrap(), p);
        }
        if let Ok(p) = validate::phone_query("phone", &raw) {
            prop_assert!(p.starts_with('+') && p[1..].bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn emails_accepted_have_one_at_and_no_space(raw in prop_oneof![any::<String>(), "[a-zA-Z0-9.+ ]{0,10}@[a-z0-9.-]{0,12}"]) {
        if let Ok(e) = validate::email("email", &raw) {
            prop_assert_eq!(e.matches('@').count(), 1);
            prop_assert!(!e.chars().any(char::is_whitespace));
            prop_assert!(e.len() <= validate::MAX_EMAIL);
            if !e.starts_with('+') {
                prop_assert_eq!(validate::email_query("email", &e.replace('+', " ")).unwrap(), e);
            }
        }
        if let Ok(e) = validate::email_query("email", &raw) {
            prop_assert!(!e.chars().any(char::is_whitespace));
        }
    }

    #[test]
    fn codes_and_text_never_panic(raw in any::<String>(), max in 0usize..100) {
        if let Ok(c) = validate::code("code", &raw) {
            prop_assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()));
        }
        if let Ok(t) = validate::text("name", &raw, max, false) {
            prop_assert!(t.chars().count() <= max);
        }
        let _ = crate::password::policy_violation(&raw);
    }
}
