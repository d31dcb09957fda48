//! Each agent's own password (docs/spec.md §14): generated from the
//! operating system's random source, shown once, and kept only as its
//! SHA-256 hash.
//!
//! A generated password carries [`PASSWORD_BITS`] bits of entropy, so
//! guessing it is hopeless whatever the hash costs; a fast hash is then
//! the right one (as Juju uses for its agents' passwords), where a slow
//! key-derivation function would turn a reconnect storm of 100,000 agents
//! into minutes of CPU.

use std::fmt;

use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The characters of a generated password: URL-safe base64's, so that a
/// password travels unchanged in JSON, a URL and a shell.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The length of a generated password, in characters (six bits each).
pub const PASSWORD_CHARS: usize = 32;

/// The entropy of a generated password, in bits.
pub const PASSWORD_BITS: usize = PASSWORD_CHARS * 6;

// At least the 128 bits the spec asks for (§14.2.1).
const _: () = assert!(PASSWORD_BITS >= 128);

/// The operating system's random source failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

/// A new password: [`PASSWORD_CHARS`] characters of URL-safe base64 drawn
/// from the operating system's random source.
pub fn generate() -> Result<String, RandomError> {
    let mut bytes = [0u8; PASSWORD_CHARS];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| RandomError(e.to_string()))?;
    // 64 divides 256: each byte's low six bits are uniform.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect())
}

/// The stored form of a password: its SHA-256 hash. Its `Debug` shows
/// nothing of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasswordHash([u8; 32]);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl PasswordHash {
    /// The hash of `password`.
    pub fn of(password: &str) -> Self {
        PasswordHash(Sha256::digest(password.as_bytes()).into())
    }

    /// A hash as stored.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PasswordHash(bytes)
    }

    /// The hash's bytes, to store.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash as 64 lowercase hexadecimal digits, to store as text.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A hash stored as [`Self::to_hex`] wrote it; `None` for anything
    /// else.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(PasswordHash(bytes))
    }

    /// Whether `given` is the password of this hash, in time that does not
    /// depend on how much of it is right.
    pub fn matches(&self, given: &str) -> bool {
        self.same_as(&PasswordHash::of(given))
    }

    /// Whether two hashes are the same, in constant time.
    pub fn same_as(&self, other: &PasswordHash) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_passwords_are_long_url_safe_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let password = generate().unwrap();
            assert_eq!(password.len(), PASSWORD_CHARS);
            assert!(
                password
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{password}"
            );
            assert!(seen.insert(password));
        }
        // Every character of the alphabet turns up: the draw is not
        // confined to part of it.
        let chars: HashSet<char> = seen.iter().flat_map(|p| p.chars()).collect();
        assert_eq!(chars.len(), 64);
    }

    #[test]
    fn a_hash_matches_its_password_only() {
        let password = generate().unwrap();
        let hash = PasswordHash::of(&password);
        assert!(hash.matches(&password));
        for other in ["", "x", &password[1..], &format!("{password}x")] {
            assert!(!hash.matches(other), "{other:?}");
        }
        assert!(!hash.matches(&password.to_uppercase()) || password == password.to_uppercase());
        // The known SHA-256 of "abc".
        assert_eq!(
            PasswordHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_hex_form_reads_back_and_nothing_else_does() {
        let hash = PasswordHash::of("s3cret");
        assert_eq!(PasswordHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(
            PasswordHash::from_hex(&hash.to_hex().to_uppercase()),
            Some(hash)
        );
        for bad in ["", "ab", &"g".repeat(64), &"é".repeat(32), &"0".repeat(65)] {
            assert_eq!(PasswordHash::from_hex(bad), None, "{bad:?}");
        }
        assert_eq!(format!("{hash:?}"), "PasswordHash(..)");
    }
}
