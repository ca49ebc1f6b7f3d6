//! RFC 6238 TOTP (SHA-1, 6 digits, 30 s steps) and otpauth URIs.

use totp_rs::{Algorithm, Builder, Secret as TotpSecret, Totp};

pub const STEP: u64 = 30;
const DIGITS: u8 = 6;

/// A new 160-bit secret, base32-encoded as authenticator apps expect.
pub fn new_secret() -> String {
    TotpSecret::from(crate::crypto::random_bytes::<20>()).to_base32()
}

fn totp(secret_base32: &str, issuer: &str, account: &str) -> Option<Totp> {
    let bytes = TotpSecret::try_from_base32(secret_base32).ok()?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(STEP)
        .with_secret(bytes)
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .ok()
}

/// The otpauth URI an authenticator app scans.
pub fn url(secret_base32: &str, issuer: &str, account: &str) -> Option<String> {
    totp(secret_base32, issuer, account)?.to_url().ok()
}

/// The base32 secret in an otpauth URI, if it is a well-formed TOTP URI.
pub fn secret_from_url(uri: &str) -> Option<String> {
    let t = Totp::from_url(uri).ok()?;
    Some(t.secret().to_base32())
}

/// The time step that `now` falls in.
pub fn step_of(now: i64) -> u64 {
    now.max(0) as u64 / STEP
}

/// The code for one step.
pub fn code_at_step(secret_base32: &str, step: u64) -> Option<String> {
    let t = totp(secret_base32, "x", "x")?;
    Some(t.generate(step * STEP).to_string())
}

/// The step `code` belongs to, within one step either side of `now`.
pub fn matching_step(secret_base32: &str, code: &str, now: i64) -> Option<u64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret_base32, "x", "x")?;
    t.check(code, now.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1: the 8-digit vectors, of which our 6-digit
    /// codes are the last six digits (HOTP truncation is modulo 10^digits).
    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = TotpSecret::from(b"12345678901234567890".to_vec()).to_base32();
        for (time, expected) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(
                code_at_step(&secret, time / STEP).unwrap(),
                expected[2..],
                "t={time}"
            );
            let t8 = Builder::new()
                .with_digits(8)
                .with_secret(b"12345678901234567890".to_vec())
                .build()
                .unwrap();
            assert_eq!(t8.generate(time).to_string(), expected, "t={time}");
        }
    }

    #[test]
    fn url_round_trip_and_skew() {
        let secret = new_secret();
        let uri = url(&secret, "planx", "ada@example.com").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/planx:ada%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains("issuer=planx"));
        assert_eq!(secret_from_url(&uri).unwrap(), secret);

        let now = 1_700_000_000;
        let step = step_of(now);
        let prev = code_at_step(&secret, step - 1).unwrap();
        let next = code_at_step(&secret, step + 1).unwrap();
        let far = code_at_step(&secret, step + 2).unwrap();
        assert_eq!(matching_step(&secret, &prev, now), Some(step - 1));
        assert_eq!(matching_step(&secret, &next, now), Some(step + 1));
        if far != prev && far != next && far != code_at_step(&secret, step).unwrap() {
            assert_eq!(matching_step(&secret, &far, now), None);
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn bad_urls_are_refused() {
        assert_eq!(secret_from_url("https://example.com"), None);
        assert_eq!(secret_from_url("otpauth://totp/x?secret=!!!"), None);
        assert_eq!(secret_from_url(""), None);
    }
}
