//! Device cookies (OWASP, "slow down online guessing attacks with device
//! cookies"): a successful sign-in leaves a signed, HttpOnly, host-only cookie
//! `DEVICE` naming the account and a device id. Attempts that present a valid
//! one for the account they name are counted on that device's own back-off,
//! which strangers' failures never touch. A browser keeps one: the account it
//! last signed in to.
//!
//! Value: `<user id>.<device id>.<issued at>.<mac>`, the MAC an HMAC of the
//! three fields under the server key's device subkey. Forged, expired, or for
//! another account, it is worth nothing: the attempt counts as a stranger's.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::clock::Timestamp;
use crate::crypto;
use crate::http::cookies::{self, SetCookie};
use crate::keys::ServerKeys;
use crate::state::AppState;

/// A device cookie whose MAC checked out and whose lifetime has not run out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCookie {
    pub user_id: String,
    pub device_id: String,
    pub issued_at: Timestamp,
}

impl DeviceCookie {
    /// The fields the MAC covers.
    fn fields(&self) -> [Vec<u8>; 3] {
        [
            self.user_id.clone().into_bytes(),
            self.device_id.clone().into_bytes(),
            self.issued_at.to_string().into_bytes(),
        ]
    }

    /// The cookie's value, signed under the current server key.
    pub fn value(&self, keys: &ServerKeys) -> String {
        let fields = self.fields();
        let mac = keys.device_mac(&fields.each_ref().map(Vec::as_slice));
        format!(
            "{}.{}.{}.{mac}",
            self.user_id, self.device_id, self.issued_at
        )
    }

    /// The cookie in `value`, if its MAC is right under a key in force and it
    /// was issued within `ttl` of `now`.
    pub fn parse(keys: &ServerKeys, value: &str, ttl: i64, now: Timestamp) -> Option<Self> {
        let mut parts = value.split('.');
        let (user_id, device_id, issued_at, mac) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || user_id.is_empty() || device_id.is_empty() {
            return None;
        }
        let cookie = DeviceCookie {
            user_id: user_id.to_string(),
            device_id: device_id.to_string(),
            issued_at: issued_at.parse().ok()?,
        };
        let fresh = cookie.issued_at <= now && now - cookie.issued_at < ttl;
        let fields = cookie.fields();
        let genuine = keys.device_mac_matches(&fields.each_ref().map(Vec::as_slice), mac);
        (fresh && genuine).then_some(cookie)
    }
}

/// The request's valid device cookie, if it has one.
#[derive(Debug, Clone, Default)]
pub struct Device(pub Option<DeviceCookie>);

impl FromRequestParts<AppState> for Device {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ttl = state.config.limits.device_ttl;
        Ok(Device(
            cookies::get(&parts.headers, cookies::DEVICE)
                .and_then(|v| DeviceCookie::parse(&state.keys, v, ttl, state.now())),
        ))
    }
}

/// The `Set-Cookie` that a sign-in to `user_id` leaves: the presented
/// cookie's device id when it was this account's (so a device keeps its id),
/// a new one otherwise, issued now.
pub fn cookie_after_sign_in(state: &AppState, user_id: &str, presented: &Device) -> SetCookie {
    let device_id = match &presented.0 {
        Some(d) if d.user_id == user_id => d.device_id.clone(),
        _ => crypto::new_device_id(),
    };
    let cookie = DeviceCookie {
        user_id: user_id.to_string(),
        device_id,
        issued_at: state.now(),
    };
    let ttl = state.config.limits.device_ttl;
    cookies::set(
        &state.config,
        cookies::DEVICE,
        &cookie.value(&state.keys),
        ttl,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::keys::KeyRing;

    fn ring_of(master: &[u8]) -> ServerKeys {
        ServerKeys::fixed(KeyRing::single(master))
    }

    #[test]
    fn only_a_genuine_unexpired_cookie_parses() {
        let keys = ring_of(b"k");
        let cookie = DeviceCookie {
            user_id: "u1".into(),
            device_id: "d1".into(),
            issued_at: 100,
        };
        let value = cookie.value(&keys);
        assert_eq!(DeviceCookie::parse(&keys, &value, 50, 149), Some(cookie));
        // Expired, issued in the future, under another key.
        assert_eq!(DeviceCookie::parse(&keys, &value, 50, 150), None);
        assert_eq!(DeviceCookie::parse(&keys, &value, 50, 99), None);
        assert_eq!(
            DeviceCookie::parse(&ring_of(b"other"), &value, 50, 120),
            None
        );
        // Any field changed, or the shape broken.
        let (_, mac) = value.rsplit_once('.').unwrap();
        for forged in [
            format!("u2.d1.100.{mac}"),
            format!("u1.d2.100.{mac}"),
            format!("u1.d1.101.{mac}"),
            format!("u1.d1.100.{mac}.x"),
            "u1.d1.100".into(),
            String::new(),
        ] {
            assert_eq!(
                DeviceCookie::parse(&keys, &forged, 50, 120),
                None,
                "{forged}"
            );
        }
    }
}
