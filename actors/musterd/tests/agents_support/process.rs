//! A `musterd` process for the door's tests: started with a config on free
//! loopback ports, its printed addresses read, asked over HTTP, stopped
//! with SIGTERM, killed if a test fails first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const MUSTERD: &str = env!("CARGO_BIN_EXE_musterd");

/// A config file in a fresh directory, removed when dropped.
pub struct ConfigFile(pub PathBuf);

impl ConfigFile {
    pub fn new(name: &str, text: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("musterd-agents-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("muster.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A running `musterd`, killed when dropped.
pub struct Musterd {
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
    /// `http://ADDR/` as printed.
    pub dashboard: String,
    /// `ws://ADDR/agent` as printed.
    pub agents: String,
}

fn lines(source: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line starting with `prefix`, within `within`.
pub fn line_starting(
    lines: &mpsc::Receiver<String>,
    prefix: &str,
    within: Duration,
) -> Result<String, Vec<String>> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return Ok(line),
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    Err(seen)
}

impl Musterd {
    /// Starts `musterd` with `args` and waits (bounded) for the two lines
    /// that say what it serves.
    pub fn start(args: &[&str]) -> Musterd {
        let mut child = Command::new(MUSTERD)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        let mut musterd = Musterd {
            child,
            stdout,
            stderr,
            dashboard: String::new(),
            agents: String::new(),
        };
        let within = Duration::from_secs(20);
        let dashboard = line_starting(&musterd.stdout, "dashboard: ", within);
        let agents = line_starting(&musterd.stdout, "agents: ", within);
        match (dashboard, agents) {
            (Ok(dashboard), Ok(agents)) => {
                musterd.dashboard = dashboard["dashboard: ".len()..].to_owned();
                musterd.agents = agents["agents: ".len()..].to_owned();
            }
            (d, a) => {
                let err: Vec<String> = musterd.stderr.try_iter().collect();
                panic!("musterd did not say what it serves: {d:?} {a:?} {err:#?}");
            }
        }
        musterd
    }

    /// The dashboard's `host:port`.
    pub fn http_addr(&self) -> String {
        self.dashboard
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned()
    }

    /// `GET path` on the HTTP surface, as JSON.
    pub fn get(&self, path: &str) -> Value {
        let mut tcp = TcpStream::connect(self.http_addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: muster\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
    }

    /// Polls `/api/presence` for `model` (bounded) until `count`
    /// connections are recorded, and answers the last answer.
    pub fn wait_presence(&self, model: &str, count: u64) -> Value {
        let mut answer = Value::Null;
        for _ in 0..200 {
            answer = self.get(&format!("/api/presence?model={model}"));
            if answer["count"] == count {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("presence never held {count} connections: {answer}");
    }

    /// SIGTERM, then the exit code (bounded).
    pub fn terminate(&mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        wait_exit(&mut self.child, Duration::from_secs(20))
    }
}

impl Drop for Musterd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The exit code of `child`, waited for at most `within`.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("process did not exit within {within:?}");
}
