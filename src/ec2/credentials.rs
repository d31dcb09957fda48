//! The credential file: an access key read from a file the configuration
//! names, so that the secret never sits in the configuration itself.
//!
//! The file has the AWS shared-credentials format, and only its `[default]`
//! profile is read:
//!
//! ```ini
//! [default]
//! aws_access_key_id = AKIAIOSFODNN7EXAMPLE
//! aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
//! # optional, for temporary credentials:
//! aws_session_token = ...
//! ```
//!
//! Blank lines and lines starting with `#` or `;` are skipped; other keys
//! (`region`, ...) and other profiles are ignored. Errors name the file and
//! the line, never a value from it.

use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::config::ConfigError;

/// The largest credential file read; a real one is a few hundred bytes.
const MAX_FILE_BYTES: u64 = 64 * 1024;

const FIELD: &str = "credential_file";

/// An access key read from a credential file. Its `Debug` form hides the
/// secret and the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKey {
    /// The access key id, e.g. `AKIAIOSFODNN7EXAMPLE`.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

/// Reads the `[default]` access key from the file at `path`.
pub fn read_credential_file(path: &Path) -> Result<StaticKey, ConfigError> {
    let fail = |why: String| ConfigError::new(FIELD, None, format!("{}: {why}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(format!(
            "larger than {} KiB; is this the credential file?",
            MAX_FILE_BYTES / 1024
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".to_owned()))?;
    parse_credentials(&text).map_err(fail)
}

/// The `[default]` access key in the text of a credential file; the error
/// says what is wrong, naming lines and keys, never values.
pub fn parse_credentials(text: &str) -> Result<StaticKey, String> {
    let mut section: Option<&str> = None;
    let mut seen_default = false;
    let mut access_key_id = None;
    let mut secret_access_key = None;
    let mut session_token = None;
    for (number, line) in (1..).zip(text.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| format!("line {number}: a profile header must end with ']'"))?
                .trim();
            seen_default |= name == "default";
            section = Some(name);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {number}: expected \"key = value\" or a \"[profile]\" header"
            ));
        };
        let Some(section) = section else {
            return Err(format!(
                "line {number}: a key before any profile header; put the keys under [default]"
            ));
        };
        if section != "default" {
            continue;
        }
        let key = key.trim();
        let slot = match key {
            "aws_access_key_id" => &mut access_key_id,
            "aws_secret_access_key" => &mut secret_access_key,
            "aws_session_token" => &mut session_token,
            _ => continue,
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("line {number}: {key} is empty"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "line {number}: {key} holds whitespace or control characters"
            ));
        }
        if slot.is_some() {
            return Err(format!("line {number}: {key} is given twice in [default]"));
        }
        *slot = Some(value.to_owned());
    }
    if !seen_default {
        return Err("no [default] profile".to_owned());
    }
    let missing = |key: &str| format!("[default] has no {key}");
    Ok(StaticKey {
        access_key_id: access_key_id.ok_or_else(|| missing("aws_access_key_id"))?,
        secret_access_key: secret_access_key.ok_or_else(|| missing("aws_secret_access_key"))?,
        session_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn file(body: &str) -> String {
        format!("# muster's key\n[other]\naws_access_key_id = NOPE\n\n[default]\n{body}")
    }

    #[test]
    fn reads_the_default_profile() {
        let text = file(&format!(
            "aws_access_key_id = AKIDEXAMPLE\n  aws_secret_access_key={SECRET}  \nregion = eu-west-1\n"
        ));
        let key = parse_credentials(&text).unwrap();
        assert_eq!(key.access_key_id, "AKIDEXAMPLE");
        assert_eq!(key.secret_access_key, SECRET);
        assert_eq!(key.session_token, None);

        let with_token = file(&format!(
            "aws_access_key_id=A\naws_secret_access_key={SECRET}\naws_session_token=TOKEN\n"
        ));
        let key = parse_credentials(&with_token).unwrap();
        assert_eq!(key.session_token.as_deref(), Some("TOKEN"));
        let shown = format!("{key:?}");
        assert!(
            !shown.contains(SECRET) && !shown.contains("TOKEN"),
            "{shown}"
        );
        assert!(shown.contains("\"A\""), "{shown}");
    }

    #[test]
    fn errors_say_what_is_wrong_and_never_show_a_value() {
        let cases = [
            ("", "no [default] profile"),
            ("   \n\n", "no [default] profile"),
            (
                &format!("aws_secret_access_key = {SECRET}\n"),
                "line 1: a key before any profile header",
            ),
            (
                &format!("[default\naws_secret_access_key = {SECRET}\n"),
                "line 1: a profile header must end with ']'",
            ),
            (&format!("[default]\n{SECRET}\n"), "line 2: expected"),
            (
                &format!("[default]\naws_secret_access_key = {SECRET}\n"),
                "[default] has no aws_access_key_id",
            ),
            (
                "[default]\naws_access_key_id = A\n",
                "[default] has no aws_secret_access_key",
            ),
            (
                "[default]\naws_access_key_id = \n",
                "line 2: aws_access_key_id is empty",
            ),
            (
                &format!("[default]\naws_secret_access_key = {SECRET} {SECRET}\n"),
                "line 2: aws_secret_access_key holds whitespace",
            ),
            (
                &format!(
                    "[default]\naws_secret_access_key = {SECRET}\naws_secret_access_key = {SECRET}x\n"
                ),
                "line 3: aws_secret_access_key is given twice",
            ),
            (
                &format!("[other]\naws_access_key_id = A\naws_secret_access_key = {SECRET}\n"),
                "no [default] profile",
            ),
        ];
        for (text, expected) in cases {
            let error = parse_credentials(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(!error.contains(SECRET), "{error}");
        }
    }

    #[test]
    fn file_errors_name_the_field_and_the_file() {
        let dir = std::env::temp_dir().join(format!("muster-ec2-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();

        let missing = dir.join("absent");
        let error = read_credential_file(&missing).unwrap_err();
        assert_eq!(error.key, "credential_file");
        assert!(error.reason.contains(&missing.display().to_string()));
        assert!(error.reason.contains("cannot open"), "{error}");

        let huge = dir.join("huge");
        std::fs::write(&huge, vec![b'#'; 4 << 20]).unwrap();
        let error = read_credential_file(&huge).unwrap_err();
        assert!(error.reason.contains("larger than 64 KiB"), "{error}");

        let binary = dir.join("binary");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        let error = read_credential_file(&binary).unwrap_err();
        assert!(error.reason.contains("not UTF-8"), "{error}");

        let good = dir.join("good");
        std::fs::write(
            &good,
            format!("[default]\naws_access_key_id=A\naws_secret_access_key={SECRET}\n"),
        )
        .unwrap();
        assert_eq!(read_credential_file(&good).unwrap().access_key_id, "A");

        let error = read_credential_file(&dir).unwrap_err();
        assert!(error.reason.contains("cannot read"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
