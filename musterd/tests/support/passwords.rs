//! Agents' own passwords for the tests: a `musterd` config with
//! `auth = "password"` and one simulated model kept in a SQLite file,
//! passwords made over HTTP, and the raw answers of the surface, to look
//! for a password where none may be.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::agents::{Answer, MODEL, login_frame, login_with};
use super::shared::request;

/// The reason of every refused password login.
pub const REFUSED: &str = "login refused: wrong agent or password";

/// A config of `musterd run` on free loopback ports: model [`MODEL`] on the
/// simulated cloud, kept in `store`, its agents logging in with their own
/// passwords; `agents` adds keys to `[agents]`.
pub fn config(store: &Path, agents: &str) -> String {
    format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\
         [agents]\nlisten = \"127.0.0.1:0\"\nauth = \"password\"\n{agents}\n\
         [store]\npath = {:?}\n\
         [[models]]\nuuid = \"{MODEL}\"\ncloud = \"sim\"\nregion = \"local\"\n",
        store.display().to_string()
    )
}

/// The port of `host:port`.
pub fn port(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// Makes (or rotates) `agent`'s password in `model` through the surface
/// on `port`; answers it.
pub fn provision(port: u16, model: &str, agent: &str) -> String {
    let path = format!("/api/models/{model}/agents/{agent}/password");
    let (status, body) = request(port, "POST", &path, "");
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["model"], model, "{body}");
    assert_eq!(body["agent"], agent, "{body}");
    body["password"].as_str().unwrap().to_owned()
}

/// The whole answer, head and body, of `GET path` on `port`.
pub fn raw_get(port: u16, path: &str) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: muster\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer
}

/// A login of `agent` of `model` with `password` (none: no field), and how
/// the door answered it.
pub async fn try_login(url: &str, model: &str, agent: &str, password: Option<&str>) -> Answer {
    let mut extra = json!({"model": model});
    if let Some(password) = password {
        extra["password"] = Value::from(password);
    }
    login_with(url, &login_frame(agent, extra)).await.1
}

/// The close code and reason of a login the door refused.
pub async fn refused(url: &str, model: &str, agent: &str, password: Option<&str>) -> (u16, String) {
    match try_login(url, model, agent, password).await {
        Answer::Closed(code, reason) => (code, reason),
        other => panic!("{agent} of {model} was not refused: {other:?}"),
    }
}

/// Every byte of the files in `dir`.
pub fn bytes_of(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

/// Whether `needle` occurs in `haystack`.
pub fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}
