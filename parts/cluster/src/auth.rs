//! What a node proves itself to NATS with: the file `cluster.credentials`
//! names, read when the config is checked and again when the node
//! connects. Nothing of what the file holds is ever logged or shown; a
//! problem names the key and the file only.

use std::fmt;
use std::io::Read;
use std::path::Path;

use async_nats::ConnectOptions;

use super::config::ClusterConfig;

/// The largest credentials file read: a `.creds` file is about a kilobyte.
pub const MAX_CREDENTIALS: usize = 64 * 1024;

/// The first line of a NATS credentials file.
const CREDS_MARKER: &str = "-----BEGIN NATS USER JWT-----";

/// How a node authenticates to NATS.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum NatsAuth {
    /// It does not.
    #[default]
    None,
    /// With a token (the whole file, trimmed).
    Token(String),
    /// With a user JWT signed by its NKey seed (a `.creds` file).
    Creds(String),
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NatsAuth::None => "None",
            NatsAuth::Token(_) => "Token(..)",
            NatsAuth::Creds(_) => "Creds(..)",
        })
    }
}

/// A credentials file that cannot be used, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster.credentials = {path:?}: {reason}")]
#[non_exhaustive]
pub struct CredentialsProblem {
    /// The file.
    pub path: String,
    /// What is wrong with it, in words that quote nothing it holds.
    pub reason: String,
}

impl NatsAuth {
    /// Reads the credentials `config` names: a `.creds` file (it must hold a
    /// JWT and a valid NKey seed) or a token file (one token, at most
    /// [`MAX_CREDENTIALS`] bytes, no whitespace inside).
    pub fn read(config: &ClusterConfig) -> Result<NatsAuth, CredentialsProblem> {
        let Some(path) = &config.credentials else {
            return Ok(NatsAuth::None);
        };
        let problem = |reason: String| CredentialsProblem {
            path: path.display().to_string(),
            reason,
        };
        let text = read_limited(path).map_err(problem)?;
        if text.contains(CREDS_MARKER) {
            ConnectOptions::new()
                .credentials(&text)
                .map_err(|e| problem(format!("not a usable NATS credentials file: {e}")))?;
            return Ok(NatsAuth::Creds(text));
        }
        let token = text.trim();
        if token.is_empty() {
            return Err(problem(
                "is empty: it should hold a token or NATS credentials".into(),
            ));
        }
        if token.chars().any(char::is_whitespace) {
            return Err(problem(
                "holds whitespace inside: a token file holds one token, a credentials file \
                 starts with "
                    .to_owned()
                    + CREDS_MARKER,
            ));
        }
        Ok(NatsAuth::Token(token.to_owned()))
    }

    /// `options` authenticating this way.
    pub fn apply(&self, options: ConnectOptions) -> std::io::Result<ConnectOptions> {
        match self {
            NatsAuth::None => Ok(options),
            NatsAuth::Token(token) => Ok(options.token(token.clone())),
            NatsAuth::Creds(creds) => options.credentials(creds),
        }
    }
}

/// The file's text, refused past [`MAX_CREDENTIALS`] or when not UTF-8.
fn read_limited(path: &Path) -> Result<String, String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(MAX_CREDENTIALS as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() > MAX_CREDENTIALS {
        return Err(format!(
            "larger than {} KiB, the most a credentials file may be",
            MAX_CREDENTIALS / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in a fresh directory, removed when dropped.
    struct File(std::path::PathBuf);

    impl File {
        fn new(name: &str, bytes: &[u8]) -> File {
            let dir =
                std::env::temp_dir().join(format!("musterd-creds-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("nats.creds");
            std::fs::write(&path, bytes).unwrap();
            File(path)
        }

        fn config(&self) -> ClusterConfig {
            ClusterConfig {
                credentials: Some(self.0.clone()),
                ..ClusterConfig::default()
            }
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    /// A user JWT and seed in the `.creds` layout; the JWT is not checked
    /// here (the server checks it), the seed is.
    fn creds(seed: &str) -> String {
        format!(
            "{CREDS_MARKER}\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        )
    }

    #[test]
    fn no_file_is_no_auth_and_a_token_file_is_a_token() {
        assert_eq!(
            NatsAuth::read(&ClusterConfig::default()),
            Ok(NatsAuth::None)
        );
        let file = File::new("token", b"  s3cret-token\n");
        assert_eq!(
            NatsAuth::read(&file.config()),
            Ok(NatsAuth::Token("s3cret-token".into()))
        );
        assert_eq!(
            format!("{:?}", NatsAuth::read(&file.config())),
            "Ok(Token(..))"
        );
    }

    #[test]
    fn a_creds_file_needs_a_valid_seed() {
        // The example seed of NATS's own documentation of the format.
        let seed = "SUAIO3FHUX5PNV2LQIIP7TZ3N4L7TX3W53MQGEIVYFIGA635OZCKEYHFLM";
        let good = File::new("good", creds(seed).as_bytes());
        assert!(matches!(
            NatsAuth::read(&good.config()),
            Ok(NatsAuth::Creds(_))
        ));
        let bad = File::new("bad", creds("SUAnotaseed").as_bytes());
        let problem = NatsAuth::read(&bad.config()).unwrap_err();
        assert!(
            problem.to_string().starts_with("cluster.credentials = \"")
                && problem
                    .reason
                    .starts_with("not a usable NATS credentials file"),
            "{problem}"
        );
        assert!(!problem.to_string().contains("SUAnotaseed"), "{problem}");
    }

    #[test]
    fn bad_files_are_refused_without_showing_what_they_hold() {
        let cases: [(&str, Vec<u8>, &str); 4] = [
            ("empty", b" \n".to_vec(), "is empty"),
            ("spaces", b"two s3crets".to_vec(), "holds whitespace inside"),
            ("binary", vec![0xff, 0xfe, b's'], "not UTF-8 text"),
            (
                "huge",
                vec![b's'; MAX_CREDENTIALS + 1],
                "larger than 64 KiB",
            ),
        ];
        for (name, bytes, want) in cases {
            let file = File::new(name, &bytes);
            let problem = NatsAuth::read(&file.config()).unwrap_err();
            assert!(problem.reason.starts_with(want), "{name}: {problem}");
            assert!(!problem.to_string().contains("s3cret"), "{name}: {problem}");
        }
        let missing = ClusterConfig {
            credentials: Some("/nonexistent/nats.creds".into()),
            ..ClusterConfig::default()
        };
        let problem = NatsAuth::read(&missing).unwrap_err();
        assert_eq!(problem.path, "/nonexistent/nats.creds");
        assert!(problem.reason.starts_with("cannot read: "), "{problem}");
    }
}
