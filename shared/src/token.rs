//! Session tokens: HS256 JWTs naming the user (`sub`) and the server-side session
//! (`jti`), signed under the current server key and naming it in the header (`kid`).

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::keys::{KeyRing, ServerKeys};

/// jsonwebtoken's crypto, limited to HS256 on the hmac/sha2 crates the project
/// already uses. Its bundled backends link RSA and elliptic-curve code (or a C
/// library) that a server signing only HS256 never runs; this keeps them out of
/// every Lambda binary.
mod hs256 {
    use hmac::{Hmac, KeyInit, Mac};
    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
    use jsonwebtoken::errors::{ErrorKind, Result};
    use jsonwebtoken::signature::{Error, Signer, Verifier};
    use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
    use sha2::Sha256;

    struct Hs256(Hmac<Sha256>);

    impl Signer<Vec<u8>> for Hs256 {
        fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, Error> {
            Ok(self
                .0
                .clone()
                .chain_update(msg)
                .finalize()
                .into_bytes()
                .to_vec())
        }
    }

    impl Verifier<Vec<u8>> for Hs256 {
        /// Constant-time comparison (`verify_slice`).
        fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), Error> {
            self.0
                .clone()
                .chain_update(msg)
                .verify_slice(signature)
                .map_err(Error::from_source)
        }
    }

    impl JwtSigner for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    impl JwtVerifier for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    fn mac(alg: &Algorithm, family: AlgorithmFamily, key: &[u8]) -> Result<Hs256> {
        if *alg != Algorithm::HS256 || family != AlgorithmFamily::Hmac {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        Hmac::new_from_slice(key)
            .map(Hs256)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }

    fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
        Ok(Box::new(mac(alg, key.family(), key.as_bytes())?))
    }

    fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
        Ok(Box::new(mac(alg, key.family(), key.try_get_as_bytes()?)?))
    }

    static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory: signer,
        verifier_factory: verifier,
        key_utils: KeyUtils::new_unimplemented(),
    };

    /// Installs the provider for the process; later calls change nothing.
    pub fn install() {
        let _ = PROVIDER.install_default();
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub jti: String,
    pub iat: Timestamp,
    pub exp: Timestamp,
}

/// Signs and checks tokens for one issuer (the namespace), under the server keys in force.
#[derive(Clone)]
pub struct Tokens {
    issuer: String,
    keys: ServerKeys,
    validation: Validation,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(issuer: &str, keys: ServerKeys) -> Self {
        hs256::install();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["iss", "sub", "exp"]);
        // Expiry is checked against the injected clock in `verify`, not the wall clock.
        validation.validate_exp = false;
        validation.leeway = 0;
        Self {
            issuer: issuer.to_string(),
            keys,
            validation,
        }
    }

    /// Tokens under one fixed server key (tests, tools).
    pub fn fixed(issuer: &str, master: &[u8]) -> Self {
        Self::new(issuer, ServerKeys::fixed(KeyRing::single(master)))
    }

    pub fn issue(&self, user_id: &str, session_id: &str, now: Timestamp, ttl: i64) -> String {
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: user_id.to_string(),
            jti: session_id.to_string(),
            iat: now,
            exp: now + ttl,
        };
        let ring = self.keys.ring();
        let (id, keys) = ring.current();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(id.to_string());
        let key = EncodingKey::from_secret(keys.jwt.expose());
        // HS256 with a byte key cannot fail to sign.
        encode(&header, &claims, &key).unwrap_or_default()
    }

    /// The claims of a well-signed, unexpired token from this issuer; `None` otherwise
    /// (any algorithm but HS256, `none` included, is refused). The key is the one
    /// its `kid` names, if still accepted; a token without `kid` (issued before
    /// tokens named their key) is checked under the current key.
    pub fn verify(&self, token: &str, now: Timestamp) -> Option<Claims> {
        let kid = decode_header(token).ok()?.kid;
        let ring = self.keys.ring();
        let keys = match kid {
            Some(kid) => ring.get(&kid)?,
            None => ring.current().1,
        };
        let key = DecodingKey::from_secret(keys.jwt.expose());
        let data = decode::<Claims>(token, &key, &self.validation).ok()?;
        (data.claims.exp > now).then_some(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    const NOW: Timestamp = 1_700_000_000;
    const MASTER: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn tokens() -> Tokens {
        Tokens::fixed("planx", MASTER)
    }

    fn header_of(jwt: &str) -> serde_json::Value {
        let header = jwt.split('.').next().unwrap();
        serde_json::from_slice(&B64.decode(header).unwrap()).unwrap()
    }

    /// A token signed with `master`'s JWT subkey under the given header.
    fn signed(header: &str, master: &[u8]) -> String {
        use hmac::{Hmac, KeyInit, Mac};
        let claims = format!(
            r#"{{"iss":"planx","sub":"u1","jti":"s1","iat":{NOW},"exp":{}}}"#,
            NOW + 60
        );
        let signed = format!("{}.{}", B64.encode(header), B64.encode(claims));
        let jwt = crate::crypto::Keys::derive(master).jwt;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(jwt.expose()).unwrap();
        mac.update(signed.as_bytes());
        format!("{signed}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    fn key(id: &str, master: &[u8]) -> crate::keys::ServerKey {
        crate::keys::ServerKey::new(Some(id), master.to_vec()).unwrap()
    }

    #[test]
    fn tokens_name_their_key_and_verify_under_it_while_it_is_accepted() {
        let old = b"old-key-old-key-old-key-old-key-old!";
        let new = b"new-key-new-key-new-key-new-key-new!";
        let keys = ServerKeys::fixed(KeyRing::new(key("k1", old), vec![]).unwrap());
        let t = Tokens::new("planx", keys.clone());
        let before = t.issue("u1", "s1", NOW, 60);
        assert_eq!(header_of(&before)["kid"], "k1");
        keys.replace(KeyRing::new(key("k2", new), vec![key("k1", old)]).unwrap());
        let after = t.issue("u1", "s2", NOW, 60);
        assert_eq!(header_of(&after)["kid"], "k2");
        assert_eq!(t.verify(&before, NOW).unwrap().jti, "s1");
        assert_eq!(t.verify(&after, NOW).unwrap().jti, "s2");
        keys.replace(KeyRing::new(key("k2", new), vec![]).unwrap());
        assert!(t.verify(&before, NOW).is_none(), "k1 is gone");
        assert!(t.verify(&after, NOW).is_some());
    }

    #[test]
    fn the_kid_picks_the_key_and_cannot_borrow_another() {
        let old = b"old-key-old-key-old-key-old-key-old!";
        let new = b"new-key-new-key-new-key-new-key-new!";
        let keys = ServerKeys::fixed(KeyRing::new(key("k2", new), vec![key("k1", old)]).unwrap());
        let t = Tokens::new("planx", keys);
        let hs256 = |kid: &str| format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#);
        assert!(t.verify(&signed(&hs256("k1"), old), NOW).is_some());
        assert!(t.verify(&signed(&hs256("k2"), new), NOW).is_some());
        // Signed with one key but naming the other, or a key not in force: refused.
        assert!(t.verify(&signed(&hs256("k2"), old), NOW).is_none());
        assert!(t.verify(&signed(&hs256("k3"), old), NOW).is_none());
        // No kid (issued before tokens named their key): the current key only.
        let bare = r#"{"typ":"JWT","alg":"HS256"}"#;
        assert!(t.verify(&signed(bare, new), NOW).is_some());
        assert!(t.verify(&signed(bare, old), NOW).is_none());
    }

    #[test]
    fn round_trip() {
        let t = tokens();
        let jwt = t.issue("u1", "s1", NOW, 7200);
        let c = t.verify(&jwt, NOW + 10).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.jti.as_str(), c.exp),
            ("u1", "s1", NOW + 7200)
        );
    }

    #[test]
    fn expired_is_refused() {
        let t = tokens();
        let jwt = t.issue("u1", "s1", NOW, 7200);
        assert!(t.verify(&jwt, NOW + 7200).is_none());
    }

    #[test]
    fn wrong_issuer_or_key_is_refused() {
        let jwt = tokens().issue("u1", "s1", NOW, 60);
        let other_issuer = Tokens::fixed("other", MASTER);
        assert!(other_issuer.verify(&jwt, NOW).is_none());
        let other_key = Tokens::fixed("planx", b"fedcba9876543210fedcba9876543210");
        assert!(other_key.verify(&jwt, NOW).is_none());
        let foreign = other_issuer.issue("u1", "s1", NOW, 60);
        assert!(tokens().verify(&foreign, NOW).is_none());
    }

    #[test]
    fn tampered_payload_is_refused() {
        let t = tokens();
        let jwt = t.issue("u1", "s1", NOW, 60);
        let parts: Vec<&str> = jwt.split('.').collect();
        let payload = String::from_utf8(B64.decode(parts[1]).unwrap()).unwrap();
        let forged = B64.encode(payload.replace("\"u1\"", "\"admin\""));
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert!(t.verify(&tampered, NOW).is_none());
    }

    #[test]
    fn signatures_match_an_independent_hs256() {
        // The provider's MAC equals HMAC-SHA256 over "header.payload" with the JWT subkey.
        use hmac::{Hmac, KeyInit, Mac};
        let jwt = tokens().issue("u1", "s1", NOW, 60);
        let (signed, sig) = jwt.rsplit_once('.').unwrap();
        let subkey = crate::crypto::Keys::derive(MASTER).jwt;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(subkey.expose()).unwrap();
        mac.update(signed.as_bytes());
        assert_eq!(B64.encode(mac.finalize().into_bytes()), sig);
    }

    #[test]
    fn other_algorithms_are_refused() {
        let t = tokens();
        let header = B64.encode(r#"{"alg":"HS512","typ":"JWT"}"#);
        let claims = B64.encode(format!(
            r#"{{"iss":"planx","sub":"u1","jti":"s1","iat":{NOW},"exp":{}}}"#,
            NOW + 60
        ));
        assert!(t.verify(&format!("{header}.{claims}.c2ln"), NOW).is_none());
    }

    #[test]
    fn alg_none_is_refused() {
        let t = tokens();
        let header = B64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let claims = B64.encode(format!(
            r#"{{"iss":"planx","sub":"u1","jti":"s1","iat":{NOW},"exp":{}}}"#,
            NOW + 60
        ));
        assert!(t.verify(&format!("{header}.{claims}."), NOW).is_none());
        assert!(t.verify(&format!("{header}.{claims}"), NOW).is_none());
        assert!(t.verify("", NOW).is_none());
        assert!(t.verify("a.b.c", NOW).is_none());
    }
}
