//! Randomness, keyed digests and identifiers. Every purpose gets its own subkey
//! derived from the server `KEY`, so a value made for one purpose is useless for another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::{Rng, RngExt};
use sha2::Sha256;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Bytes from the thread-local CSPRNG (seeded from the operating system).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rng().fill_bytes(&mut out);
    out
}

/// `len` characters drawn uniformly from `alphabet`.
pub fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// A one-time code: six decimal digits.
pub fn random_code() -> String {
    random_string(b"0123456789", 6)
}

/// A new account id: 24 hex characters.
pub fn new_user_id() -> String {
    hex(&random_bytes::<12>())
}

/// 128 random bits, URL-safe (22 characters): XSRF salts.
pub fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// A new device id (in a device cookie): 128 random bits, URL-safe.
pub fn new_device_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 of the parts, each length-prefixed so ("ab","c") and ("a","bc") differ.
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The subkeys of the server key.
#[derive(Clone)]
pub struct Keys {
    pub jwt: Secret<[u8; 32]>,
    xsrf: Secret<[u8; 32]>,
    code: Secret<[u8; 32]>,
    device: Secret<[u8; 32]>,
}

impl Keys {
    pub fn derive(master: &[u8]) -> Self {
        Self {
            jwt: Secret::new(hmac(master, &[b"planx/jwt"])),
            xsrf: Secret::new(hmac(master, &[b"planx/xsrf"])),
            code: Secret::new(hmac(master, &[b"planx/code"])),
            device: Secret::new(hmac(master, &[b"planx/device"])),
        }
    }

    /// The MAC of a device cookie's fields, URL-safe.
    pub fn device_mac(&self, parts: &[&[u8]]) -> String {
        URL_SAFE_NO_PAD.encode(hmac(self.device.expose(), parts))
    }

    /// The XSRF token that matches a salt: what the page must echo in `X-XSRF-TOKEN`.
    pub fn xsrf_token(&self, salt: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac(self.xsrf.expose(), &[salt.as_bytes()]))
    }

    /// The stored digest of a one-time code (or TOTP secret), bound to purpose and subject.
    pub fn code_digest(&self, purpose: &str, subject: &str, code: &str) -> String {
        hex(&hmac(
            self.code.expose(),
            &[purpose.as_bytes(), subject.as_bytes(), code.as_bytes()],
        ))
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50).map(|_| random_code()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(
            codes.len() > 40,
            "50 codes gave only {} distinct",
            codes.len()
        );
    }

    #[test]
    fn hmac_matches_rfc4231_case_2_without_framing() {
        // RFC 4231 test case 2, checked against the raw MAC to prove the primitive.
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn framing_separates_parts() {
        assert_ne!(hmac(b"k", &[b"ab", b"c"]), hmac(b"k", &[b"a", b"bc"]));
    }

    #[test]
    fn subkeys_differ_by_purpose_and_master() {
        let a = Keys::derive(b"master-a");
        let b = Keys::derive(b"master-b");
        assert_ne!(a.xsrf_token("salt"), b.xsrf_token("salt"));
        assert_ne!(
            a.code_digest("sms-login", "+1555", "123456"),
            a.code_digest("password-reset", "+1555", "123456")
        );
        assert_ne!(a.jwt.expose(), b.jwt.expose());
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
