//! Password policy and Argon2id hashing, run off the async executor.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::config::Argon2Params;
use crate::secret::Secret;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

/// Lowercased common passwords of 8 to 128 characters, sorted byte-wise
/// (Django's list; see `shared/data/README.md`).
static COMMON: &str = include_str!("../data/common-passwords.txt");

fn common_list() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| COMMON.lines().collect())
}

/// Why a new password is refused; `None` when it is acceptable.
/// Length counts characters, not bytes; no composition rules (NIST SP 800-63B).
pub fn policy_violation(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Some(format!("must be at least {MIN_LEN} characters"));
    }
    if chars > MAX_LEN {
        return Some(format!("must be at most {MAX_LEN} characters"));
    }
    let lower = password.to_lowercase();
    if common_list().binary_search(&lower.as_str()).is_ok() {
        return Some("is too common; choose another".into());
    }
    None
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Hashes and verifies passwords. Cloning shares the concurrency limit.
#[derive(Clone)]
pub struct Passwords {
    hasher: Argon2<'static>,
    /// Each hash holds `m_cost` KiB; bound how many run at once so memory stays bounded.
    permits: Arc<Semaphore>,
    /// A hash to verify against when the account does not exist, so an unknown
    /// email costs the same time as a wrong password. Made on first use, not at cold start.
    dummy: Arc<OnceLock<String>>,
    /// Verifications so far, so tests can hold the passwords checked to the limits.
    verifications: Arc<AtomicU64>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    pub fn new(p: &Argon2Params) -> Result<Self, PasswordError> {
        let params = Params::new(p.m_cost, p.t_cost, p.p_cost, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            hasher: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            permits: Arc::new(Semaphore::new(parallel)),
            dummy: Arc::new(OnceLock::new()),
            verifications: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A PHC string for `password` with a fresh random salt and the configured parameters.
    pub async fn hash(&self, password: &str) -> Result<Secret<String>, PasswordError> {
        let password = Secret::new(password.to_owned());
        let hasher = self.hasher.clone();
        self.blocking(move || {
            hasher
                .hash_password(password.expose().as_bytes())
                .map(|h| Secret::new(h.to_string()))
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `phc`, using the parameters recorded in `phc`
    /// (so hashes made with other parameters keep working). With no hash, verifies
    /// against a dummy one and answers `false`, taking about the same time.
    pub async fn verify(&self, password: &str, phc: Option<&Secret<String>>) -> bool {
        self.verifications.fetch_add(1, Ordering::SeqCst);
        let password = Secret::new(password.to_owned());
        let phc = phc.map(|p| p.expose().clone());
        let hasher = self.hasher.clone();
        let dummy = self.dummy.clone();
        self.blocking(move || {
            let (target, real) = match &phc {
                Some(p) => (p.as_str(), true),
                None => (
                    dummy
                        .get_or_init(|| {
                            hasher
                                .hash_password(b"planx dummy password")
                                .map(|h| h.to_string())
                                .unwrap_or_default()
                        })
                        .as_str(),
                    false,
                ),
            };
            verify_reusing_memory(password.expose().as_bytes(), target) && real
        })
        .await
        .unwrap_or(false)
    }

    /// Passwords verified so far (dummy verifications included).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::SeqCst)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }
}

thread_local! {
    /// Argon2's working memory (m_cost KiB), kept by each hashing thread: a
    /// fresh 19 MiB allocation per login costs ~4,900 page faults, a few ms.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Whether `password` matches the PHC string `phc`, computed with the
/// parameters recorded in `phc` (so hashes made with other parameters keep
/// working) in this thread's reused memory; compared in constant time.
fn verify_reusing_memory(password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let hashed = BLOCKS.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
    });
    hashed.is_ok() && crate::crypto::constant_time_eq(&out, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by argon2-cffi 25.1.0 (Python, the reference C implementation),
    /// not by this crate, for the password "correct horse battery staple".
    const CFFI_LEGACY: &str = "$argon2id$v=19$m=65536,t=4,p=1$XthnO3P4HM2E+BoOLoTcgw$7PtrdKvHgp3OlzNFpNZFiC3zlwihy5L4Q5OC/dxd1Sg";
    const CFFI_OWASP: &str = "$argon2id$v=19$m=19456,t=2,p=1$BvgFppmypB2JU3WsnOl2Qw$pInSdwQUlNdo8QpNgFNVMNbXAQPPvVWzW7ldXCjEMbM";

    fn cheap() -> Passwords {
        Passwords::new(&Argon2Params {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        })
        .unwrap()
    }

    #[test]
    fn policy() {
        assert!(policy_violation("short").unwrap().contains("at least 8"));
        assert!(
            policy_violation(&"x".repeat(129))
                .unwrap()
                .contains("at most 128")
        );
        assert!(policy_violation("Password1").unwrap().contains("common"));
        assert!(policy_violation("QWERTYUIOP").unwrap().contains("common"));
        assert_eq!(policy_violation("correct horse battery staple"), None);
        // Characters, not bytes: eight accented letters are sixteen bytes.
        assert_eq!(policy_violation("éàüöñçßø"), None);
        assert!(policy_violation("éàüöñçß").is_some());
    }

    #[test]
    fn common_list_is_sorted_for_binary_search() {
        let list = common_list();
        assert!(list.len() > 8000);
        assert!(list.windows(2).all(|w| w[0] < w[1]));
    }

    #[tokio::test]
    async fn verifies_hashes_from_another_implementation_with_their_own_params() {
        let p = cheap();
        for phc in [CFFI_LEGACY, CFFI_OWASP] {
            let h = Secret::new(phc.to_string());
            assert!(p.verify("correct horse battery staple", Some(&h)).await);
            assert!(!p.verify("correct horse battery stapler", Some(&h)).await);
        }
    }

    #[tokio::test]
    async fn hashes_with_configured_params_and_round_trips() {
        let p = cheap();
        let h = p.hash("a fine passphrase").await.unwrap();
        assert!(
            h.expose().starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{h:?}"
        );
        assert!(p.verify("a fine passphrase", Some(&h)).await);
        assert!(!p.verify("a fine passphrasE", Some(&h)).await);
        let again = p.hash("a fine passphrase").await.unwrap();
        assert_ne!(h, again, "salts must differ");
    }

    #[tokio::test]
    async fn unknown_account_and_garbage_hash_never_verify() {
        let p = cheap();
        assert!(!p.verify("anything at all", None).await);
        let garbage = Secret::new("not a phc string".to_string());
        assert!(!p.verify("anything at all", Some(&garbage)).await);
    }
}
