//! A `musterd` that serves, for the door's tests: started with a config on
//! free loopback ports, its printed addresses read, asked over HTTP,
//! stopped with SIGTERM, killed if a test fails first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::{MUSTERD, Process, line_starting, lines};

/// A running `musterd`, killed when dropped.
pub struct Musterd {
    pub process: Process,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
    /// `http://ADDR/` as printed.
    pub dashboard: String,
    /// `ws://ADDR/agent` as printed.
    pub agents: String,
}

impl Musterd {
    /// Starts `musterd` with `args` and waits (bounded) for the two lines
    /// that say what it serves.
    pub fn start(args: &[&str]) -> Musterd {
        let mut process = Process::spawn(
            Command::new(MUSTERD)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let stdout = lines(process.0.stdout.take().unwrap());
        let stderr = lines(process.0.stderr.take().unwrap());
        let mut musterd = Musterd {
            process,
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
        self.process.terminate();
        self.process.wait_exit(Duration::from_secs(20))
    }
}
