//! The swarm's agents' own passwords (docs/spec.md §14.7): made for each
//! agent through the HTTP API of musterd before the swarm connects
//! (`--provision URL`), or read from a file of `model,agent,password`
//! lines (`--passwords FILE`).

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use muster::names::{AgentTag, ModelUuid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::http::Uri;

/// An agent of the swarm with its password.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// The agent's model.
    pub model: ModelUuid,
    /// The agent.
    pub agent: AgentTag,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("model", &self.model)
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

/// The largest passwords file read, in bytes.
pub const MAX_FILE: u64 = 256 << 20;

/// Reads `model,agent,password` lines; blank lines and those starting
/// with `#` are skipped. The error names the line and what was wrong in
/// it, never the password.
pub fn read_file(path: &Path) -> Result<Vec<Identity>, String> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{shown}: {e}"))?
        .len();
    if size > MAX_FILE {
        return Err(format!(
            "{shown}: larger than {} MiB ({size} bytes)",
            MAX_FILE >> 20
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let mut identities = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |reason: String| format!("{shown} line {}: {reason}", n + 1);
        let fields: Vec<&str> = line.splitn(3, ',').map(str::trim).collect();
        let [model, agent, password] = fields[..] else {
            return Err(at("wants model,agent,password".into()));
        };
        let model: ModelUuid = model
            .parse()
            .map_err(|_| at(format!("{model:?} is not a model UUID")))?;
        let agent: AgentTag = agent
            .parse()
            .map_err(|_| at(format!("{agent:?} is not an agent tag")))?;
        if password.is_empty() {
            return Err(at("the password is empty".into()));
        }
        identities.push(Identity {
            model,
            agent,
            password: password.to_owned(),
        });
    }
    if identities.is_empty() {
        return Err(format!("{shown}: holds no model,agent,password line"));
    }
    Ok(identities)
}

/// How long one provisioning request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Provisioning requests in flight at most.
const IN_FLIGHT: usize = 32;

/// Where the HTTP surface is: its address and the prefix of its paths.
#[derive(Debug, Clone)]
pub struct Surface {
    host: String,
    port: u16,
    prefix: String,
}

impl Surface {
    /// The surface at `url`, `http://HOST:PORT[/PREFIX]`.
    pub fn new(url: &str) -> Result<Surface, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "{url:?}: wants http:// (the surface of a loopback or trusted network)"
            ));
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{url:?} names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Surface {
            host,
            port: uri.port_u16().unwrap_or(80),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// `POST`s the agent's password path; answers the password made.
    async fn provision(
        &self,
        model: ModelUuid,
        agent: &AgentTag,
        token: Option<&str>,
    ) -> Result<String, String> {
        let path = format!("{}/api/models/{model}/agents/{agent}/password", self.prefix);
        let bearer = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\n{bearer}Content-Length: 0\r\nConnection: close\r\n\r\n",
            self.host
        );
        let exchange = async {
            let mut tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            tcp.write_all(request.as_bytes()).await?;
            let mut answer = Vec::new();
            tcp.take(1 << 20).read_to_end(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("POST {path}: no answer within 30s"))?
            .map_err(|e| format!("POST {path}: {e}"))?;
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head.split(' ').nth(1).unwrap_or_default();
        if status != "201" {
            let body: String = body.chars().take(300).collect();
            return Err(format!("POST {path}: HTTP {status}: {}", body.trim()));
        }
        let json: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("POST {path}: the answer: {e}"))?;
        json["password"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("POST {path}: the answer holds no password"))
    }

    /// Makes a password for each of `agents` through the surface, with
    /// `token` as the bearer of the writes.
    pub async fn provision_all(
        &self,
        agents: Vec<(ModelUuid, AgentTag)>,
        token: Option<&str>,
    ) -> Result<Vec<Identity>, String> {
        futures::stream::iter(agents)
            .map(|(model, agent)| async move {
                let password = self.provision(model, &agent, token).await?;
                Ok(Identity {
                    model,
                    agent,
                    password,
                })
            })
            .buffered(IN_FLIGHT)
            .collect::<Vec<Result<Identity, String>>>()
            .await
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwords");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const MODEL: &str = "deadbeef-0bad-400d-8000-4b1d0d06f00d";

    #[test]
    fn a_passwords_file_reads_line_by_line() {
        let (_dir, path) = file(&format!(
            "# made by provisioning\n\n{MODEL},machine-0,pw0\n {MODEL} , unit-app-1 , a,b\n"
        ));
        let read = read_file(&path).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].agent.as_str(), "machine-0");
        assert_eq!(read[0].password, "pw0");
        // A password may hold commas: the line has three fields at most.
        assert_eq!(read[1].password, "a,b");
        assert!(!format!("{read:?}").contains("pw0"));
    }

    #[test]
    fn a_bad_line_is_named_without_its_password() {
        for (text, want) in [
            ("", "holds no model,agent,password line"),
            ("# only\n", "holds no model,agent,password line"),
            ("nope\n", "line 1: wants model,agent,password"),
            ("x,machine-0,secret1\n", "line 1: \"x\" is not a model UUID"),
            (
                &format!("{MODEL},machine-0,p\n{MODEL},agent-0,secret1\n"),
                "line 2: \"agent-0\" is not an agent tag",
            ),
            (
                &format!("{MODEL},machine-0, \n"),
                "line 1: the password is empty",
            ),
        ] {
            let (_dir, path) = file(text);
            let error = read_file(&path).unwrap_err();
            assert!(error.ends_with(want), "{text:?}: {error}");
            assert!(!error.contains("secret1"), "{error}");
        }
        let error = read_file(Path::new("/nonexistent/passwords")).unwrap_err();
        assert!(error.starts_with("/nonexistent/passwords: "), "{error}");
    }

    #[test]
    fn the_surface_wants_an_http_url() {
        assert!(Surface::new("http://127.0.0.1:9180").is_ok());
        let prefixed = Surface::new("http://[::1]:80/muster/").unwrap();
        assert_eq!(
            (prefixed.host.as_str(), prefixed.prefix.as_str()),
            ("::1", "/muster")
        );
        for bad in [
            "",
            "127.0.0.1:9180",
            "https://x:1",
            "ws://x:1",
            "http://:80",
        ] {
            assert!(Surface::new(bad).is_err(), "{bad:?}");
        }
    }
}
