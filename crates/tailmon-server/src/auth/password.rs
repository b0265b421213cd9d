//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes).
//!
//! Verification runs in memory the caller hands in ([`HashMemory`]), so a
//! server that bounds how many checks run at once also bounds, exactly, the
//! memory they take: see [`PasswordChecks`](crate::auth::password_checks::PasswordChecks).

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

/// The working memory of one argon2 computation, kept between uses so that
/// checking a password allocates nothing.
#[derive(Default)]
pub(crate) struct HashMemory(Vec<Block>);

impl HashMemory {
    /// The first `blocks` blocks, grown to fit on first use.
    fn blocks(&mut self, blocks: usize) -> &mut [Block] {
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::default());
        }
        &mut self.0[..blocks]
    }
}

/// The PHC string (`$argon2id$v=19$...`) of `password` with a fresh salt.
pub(crate) fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `stored`, computed in `memory`.
pub(crate) fn verify(password: &str, stored: &str, memory: &mut HashMemory) -> bool {
    recompute(password, stored, memory).unwrap_or(false)
}

fn recompute(password: &str, stored: &str, memory: &mut HashMemory) -> Option<bool> {
    let parsed = PasswordHash::new(stored).ok()?;
    let expected = parsed.hash?;
    let params = Params::try_from(&parsed).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut out = [0u8; 64];
    let out = out.get_mut(..expected.len())?;
    let blocks = memory.blocks(params.block_count());
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, out, blocks)
        .ok()?;
    Some(out.ct_eq(expected.as_bytes()).into())
}

/// Spends the time of one verification, for a user that does not exist.
pub(crate) fn verify_against_nothing(password: &str, memory: &mut HashMemory) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("no user has this password").unwrap_or_default());
    let _ = verify(password, stored, memory);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_memory_is_reused() {
        let stored = hash("correct horse").expect("hash");
        let mut memory = HashMemory::default();
        assert!(verify("correct horse", &stored, &mut memory));
        let grown = memory.0.len();
        assert_eq!(grown, Params::default().block_count(), "19 MiB of blocks");
        assert!(!verify("wrong horse", &stored, &mut memory));
        assert_eq!(memory.0.len(), grown, "the same memory serves every check");
        assert!(!verify("correct horse", "not a hash", &mut memory));
        // A hash made by the argon2 crate's own verifier agrees with ours.
        use argon2::password_hash::PasswordVerifier;
        let parsed = PasswordHash::new(&stored).expect("parse");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
    }
}
