//! Session ids. A token's `jti` names its session but is never stored or
//! shown: the store keys the session by the sign-in time and a digest of the
//! `jti`, and that key is the id the device list shows and
//! `DELETE /user/sessions/{id}` takes. So the key sorts by sign-in time (the
//! newest sessions come first in one bounded read), ends a session in one
//! keyed write, and cannot be turned back into a `jti`.
//!
//! Sessions begun before this scheme are keyed by their `jti` (22 characters,
//! no time); their tokens still work, and the list shows them by a digest.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::state::AppState;

/// At most this many sessions are listed, newest first.
pub const LISTED: usize = 50;
/// The list reads at most this many stored sessions (one DynamoDB page);
/// `total` is exact for users with fewer stored.
pub const READ_AT_MOST: usize = 1000;
/// At most this many refresh codes are pending per session; another is
/// refused until one expires (at most 15 s later).
pub const PENDING_REFRESH_CODES: usize = 20;

/// Hex digits of the time part: fixed width, so keys sort by time.
const TIME_DIGITS: usize = 10;
/// Characters of a 128-bit digest or random part, URL-safe base64.
const PART: usize = 22;

fn is_time(s: &str) -> bool {
    s.len() == TIME_DIGITS
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_part(s: &str) -> bool {
    s.len() == PART
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The first 128 bits of SHA-256 over `parts`, URL-safe.
fn digest(parts: &[&str]) -> String {
    let mut sha = Sha256::new();
    for p in parts {
        sha.update(p.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(&sha.finalize()[..16])
}

/// A new `jti`: the sign-in time (so its key sorts by it) and 128 random bits.
pub fn new_jti(now: Timestamp) -> String {
    let random = URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<16>());
    format!("{:0width$x}.{random}", now.max(0), width = TIME_DIGITS)
}

/// The key of the session a `jti` names; `None` for a `jti` this server never makes.
pub fn key_of(jti: &str) -> Option<String> {
    match jti.split_once('.') {
        Some((time, random)) if is_time(time) && is_part(random) => {
            Some(format!("{time}{}", digest(&[jti])))
        }
        None if is_part(jti) => Some(jti.to_string()),
        _ => None,
    }
}

/// Whether `id` is the key of a session begun under this scheme.
pub fn is_key(id: &str) -> bool {
    id.len() == TIME_DIGITS + PART && is_time(&id[..TIME_DIGITS]) && is_part(&id[TIME_DIGITS..])
}

/// The id the device list shows for the session keyed `key`: the key itself,
/// or for an older session (keyed by its `jti`) a digest of that.
pub fn public_id(key: &str) -> String {
    if is_key(key) {
        key.to_string()
    } else {
        digest(&["planx/older-session/", key])
    }
}

/// Deletes the sessions of `user_id` but `keep` after a change of
/// credentials. They are refused already (the credential version moved on in
/// the change's own write), so this only tidies up: a failure is logged, never
/// answered, and the change it follows stands.
pub async fn end_others(state: &AppState, user_id: &str, keep: Option<&str>) {
    if let Err(e) = state.store.end_sessions(user_id, keep, state.now()).await {
        tracing::warn!(error = %e, "stale sessions not deleted (they are refused anyway)");
    }
}

/// Whether `id` has the shape of an id [`public_id`] gives an older session.
pub fn is_older_public_id(id: &str) -> bool {
    is_part(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_sign_in_time_and_hide_the_jti() {
        let (a, b) = (new_jti(1_800_000_000), new_jti(1_800_000_001));
        let (ka, kb) = (key_of(&a).unwrap(), key_of(&b).unwrap());
        assert!(ka < kb, "{ka} < {kb}");
        assert!(is_key(&ka) && public_id(&ka) == ka);
        assert!(a.starts_with("006b49d200.") && ka.starts_with("006b49d200"));
        assert_ne!(ka[10..], a[11..]);
        // The key is not a jti: a token naming it names no session.
        assert_eq!(key_of(&ka), None);
        assert_ne!(new_jti(5), new_jti(5));
    }

    #[test]
    fn older_sessions_are_keyed_by_their_jti_and_listed_by_a_digest() {
        let older = "AAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(key_of(older).as_deref(), Some(older));
        assert!(!is_key(older));
        let shown = public_id(older);
        assert_ne!(shown, older);
        assert!(is_older_public_id(&shown) && !is_key(&shown));
    }

    #[test]
    fn foreign_jtis_name_no_session() {
        for jti in [
            "",
            "x",
            "006b49d200.short",
            "zzzzzzzzzz.AAAAAAAAAAAAAAAAAAAAAA",
            "a.b.c",
        ] {
            assert_eq!(key_of(jti), None, "{jti}");
        }
    }
}
