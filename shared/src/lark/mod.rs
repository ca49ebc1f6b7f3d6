//! Lark (Feishu) sign-in and linking, the OAuth 2.0 authorization code flow
//! with PKCE as Lark documents it today: the browser to Lark's authorize page
//! with `client_id`, `redirect_uri`, `state` and a `code_challenge`; back at
//! `GET /lark?code&state`; the code exchanged at
//! `/open-apis/authen/v2/oauth/token`, the identity read from
//! `/open-apis/authen/v1/user_info` ([`client`]).
//!
//! `state` is a nonce bound to the browser: a short-lived HttpOnly cookie
//! holds it, and the flow it names is stored under its digest and taken once
//! ([`crate::store::Flows`]), so a missing, forged, reused or expired state is
//! refused before any call to Lark. The PKCE verifier is derived from the
//! nonce under the server key, so a code stolen on its way back cannot be
//! redeemed in another browser's flow, and nothing secret is stored.

pub mod client;
pub mod settings;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub use client::{LarkClient, LarkError};

use crate::crypto::{self, Keys};
use settings::Lark;

/// The cookie that binds a flow to the browser that began it.
pub const STATE_COOKIE: &str = "LARK_STATE";

/// How long a flow may take, seconds (a Lark code itself lives 5 minutes).
pub const FLOW_TTL: i64 = 600;

/// A new state nonce: 256 random bits, URL-safe (43 characters).
pub fn new_state() -> String {
    URL_SAFE_NO_PAD.encode(crypto::random_bytes::<32>())
}

/// Whether `state` has a nonce's shape (a cheap refusal before any lookup).
pub fn is_state(state: &str) -> bool {
    state.len() == 43
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The store key of the flow `state` names: its SHA-256, so the store never
/// holds a nonce.
pub fn flow_id(state: &str) -> String {
    crypto::hex(&Sha256::digest(state.as_bytes()))
}

/// The flow's PKCE verifier (RFC 7636): a keyed digest of the nonce, 64 hex
/// characters, under the server key the flow names.
pub fn verifier(keys: &Keys, state: &str) -> String {
    keys.code_digest("lark-pkce", "", state)
}

/// The `S256` challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Lark's authorize page for a flow: the app, this API's callback, the state
/// nonce and the PKCE challenge. No `scope`: the identity needs none, and
/// without `offline_access` Lark issues no refresh token.
pub fn authorize_url(lark: &Lark, state: &str, challenge: &str) -> String {
    let mut url = match url::Url::parse(&lark.auth_url) {
        Ok(url) => url,
        // Checked at start; an unparsable one only if a test builds it by hand.
        Err(_) => return lark.auth_url.clone(),
    };
    url.query_pairs_mut()
        .append_pair("client_id", &lark.app_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &lark.redirect)
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_fresh_nonces_and_only_their_digest_is_kept() {
        let (a, b) = (new_state(), new_state());
        assert_ne!(a, b);
        assert!(is_state(&a) && is_state(&b), "{a}");
        for bad in ["{}".to_string(), format!("{a}x"), format!("%{}", &a[1..])] {
            assert!(!is_state(&bad), "{bad}");
        }
        assert_eq!(flow_id(&a).len(), 64);
        assert_ne!(flow_id(&a), flow_id(&b));
        assert!(!flow_id(&a).contains(&a));
    }

    #[test]
    fn the_verifier_is_keyed_and_its_challenge_is_rfc_7636() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let (one, other) = (Keys::derive(b"one"), Keys::derive(b"other"));
        let state = new_state();
        let v = verifier(&one, &state);
        assert_eq!(v.len(), 64);
        assert_eq!(v, verifier(&one, &state));
        assert_ne!(v, verifier(&other, &state));
        assert_ne!(v, verifier(&one, &new_state()));
    }
}
