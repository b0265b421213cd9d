//! Random secrets (tokens, session ids, passwords) and how they are compared.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `bytes` random bytes from the operating system, as lowercase hex.
///
/// Fails only when the operating system has no randomness to give, which
/// the caller reports rather than falling back to a weaker source.
pub(crate) fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(hex(&buf))
}

/// A password a person can type: `chars` characters from a 62-letter
/// alphabet (about 5.95 bits each), drawn without modulo bias.
pub(crate) fn random_password(chars: usize) -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(chars);
    let mut buf = [0u8; 64];
    while out.len() < chars {
        getrandom::fill(&mut buf)?;
        for &b in &buf {
            // 248 = 4 * 62: bytes above it would favour the first letters.
            if b < 248 && out.len() < chars {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

/// SHA-256 of `secret`, as lowercase hex. Tokens carry 192 random bits, so
/// a fast digest is enough to keep them out of the data directory.
pub(crate) fn sha256_hex(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Whether `a` and `b` are equal, in time that does not depend on where
/// they first differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_differ_and_have_the_asked_length() {
        let a = random_hex(24).expect("randomness");
        let b = random_hex(24).expect("randomness");
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
        let p = random_password(20).expect("randomness");
        assert_eq!(p.len(), 20);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn digest_and_comparison() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(same("x1", "x1"));
        assert!(!same("x1", "x2"));
        assert!(!same("x1", "x12"));
    }
}
