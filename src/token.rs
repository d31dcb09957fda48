//! The rule every shared secret of muster follows, wherever it is given
//! (`[http] token`, `[agents] token`, `--token`), and the comparison that
//! checks one.
//!
//! A token travels in an `Authorization` header, in a dashboard address
//! and in a JSON login frame; the rule keeps to what all three carry
//! unchanged and what a person can read back: printable ASCII, spaces only
//! inside, at most [`MAX_TOKEN`] bytes.

use subtle::ConstantTimeEq;

/// The longest token, in bytes: it travels in every agent's login frame,
/// which must fit in the door's smallest frame.
pub const MAX_TOKEN: usize = 1024;

/// Why a token is refused, as the reason after its key or flag.
pub fn validate_token(token: &str) -> Result<(), String> {
    if token.trim().is_empty() {
        return Err("must not be empty (leave it out for no token)".into());
    }
    if token.len() > MAX_TOKEN {
        return Err(format!(
            "must be at most {MAX_TOKEN} bytes, got {}",
            token.len()
        ));
    }
    if token.trim() != token {
        return Err("must not begin or end with whitespace".into());
    }
    if let Some(c) = token.chars().find(|c| !(c.is_ascii_graphic() || *c == ' ')) {
        return Err(format!(
            "must be printable ASCII (spaces only inside), got {:?}",
            c
        ));
    }
    Ok(())
}

/// Whether `given` is `expected`, in time that depends on their lengths
/// only, not on how much of a guess is right.
pub fn matches(given: &str, expected: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_names_what_is_wrong() {
        for (token, reason) in [
            ("", "must not be empty"),
            ("   ", "must not be empty"),
            ("\t\n", "must not be empty"),
            (" s3cret", "must not begin or end with whitespace"),
            ("s3cret ", "must not begin or end with whitespace"),
            ("s3cret\n", "must not begin or end with whitespace"),
            ("s3\tcret", "printable ASCII"),
            ("s3\u{7f}cret", "printable ASCII"),
            ("sécret", "printable ASCII"),
        ] {
            let error = validate_token(token).unwrap_err();
            assert!(error.contains(reason), "{token:?}: {error}");
        }
        let long = "x".repeat(MAX_TOKEN + 1);
        assert!(validate_token(&long).unwrap_err().contains("at most 1024"));
        // A megabyte is refused by its length.
        let huge = "x".repeat(1 << 20);
        assert!(validate_token(&huge).unwrap_err().contains("at most 1024"));
        for good in ["s3cret", "a b", "x", "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"] {
            assert_eq!(validate_token(good), Ok(()), "{good:?}");
        }
        assert_eq!(validate_token(&"x".repeat(MAX_TOKEN)), Ok(()));
    }

    #[test]
    fn matching_is_exact() {
        assert!(matches("s3cret", "s3cret"));
        for other in ["s3cre7", "s3cre", "s3crets", "", "S3CRET"] {
            assert!(!matches(other, "s3cret"), "{other:?}");
        }
    }
}
