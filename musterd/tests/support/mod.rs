//! Helpers shared by the daemon's tests. Here: the real `musterd` binary
//! run to its end or as a process killed if a test fails before it stops,
//! its output read line by line, bounded waits for a line or for its exit,
//! and config files that are removed after the test. Beside them: a
//! `musterd` that serves ([`daemon`]), trees served in-process
//! ([`inprocess`], [`inspector`]), one that breaks on demand
//! ([`breaking`]), the agents' door and its clients ([`agents`]),
//! machine registries ([`registry`]), NATS servers ([`nats`]) and nodes of
//! a cluster on them ([`cluster`]), trees of many models served in-process
//! ([`models`]), and moto ([`moto`], shared with the EC2 provider's tests,
//! driven through [`moto_query`]) and the canned EC2 error server
//! ([`canned`]) for models on EC2.

// Each test binary uses a part of these.
#![allow(dead_code)]

pub mod agents;
pub mod breaking;
#[path = "../../../tests/ec2/canned_server.rs"]
pub mod canned;
pub mod cluster;
pub mod daemon;
pub mod inprocess;
pub mod inspector;
pub mod models;
#[path = "../../../tests/ec2/moto.rs"]
pub mod moto;
pub mod moto_query;
pub mod nats;
pub mod passwords;
pub mod registry;
pub mod shared;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for this package's tests.
pub const MUSTERD: &str = env!("CARGO_BIN_EXE_musterd");

/// Runs `musterd` with `args` to its end.
pub fn musterd(args: &[&str]) -> Output {
    Command::new(MUSTERD)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config file in a fresh directory, removed when dropped.
pub struct ConfigFile(pub PathBuf);

impl ConfigFile {
    /// `muster.toml` in a directory of its own, holding `contents`.
    pub fn new(name: &str, contents: impl AsRef<[u8]>) -> Self {
        let dir = std::env::temp_dir().join(format!("musterd-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("muster.toml");
        std::fs::write(&path, contents).unwrap();
        ConfigFile(path)
    }

    /// The file's path, as an argument.
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

/// A running child process, killed and reaped when dropped, so that none
/// outlives a failed test.
pub struct Process(pub Child);

impl Process {
    /// Starts `command`, its standard input closed.
    pub fn spawn(command: &mut Command) -> Process {
        Process(command.stdin(Stdio::null()).spawn().unwrap())
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal called `name` (`INT`, `TERM`, `HUP`...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Its exit code, once it exits within `within`; panics otherwise.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the process did not exit within {within:?}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines of `stream` as they come, read on a thread of their own.
pub fn lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Starts `musterd` with `args`, its standard error read line by line.
pub fn spawn(args: &[&str]) -> (Process, mpsc::Receiver<String>) {
    let mut process = Process::spawn(
        Command::new(MUSTERD)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stderr = process.0.stderr.take().unwrap();
    (process, lines(stderr))
}

/// The lines up to the first holding `needle`; panics with the lines seen
/// when none comes within `within`.
pub fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    needle: &str,
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line with {needle:?} within {within:?}: {seen:#?}");
}

/// The next line starting with `prefix`, within `within`; the lines seen
/// before when none comes.
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

/// The first child called `name` anywhere in a report of `/api/report`:
/// muster's subtree is one child of the daemon's tree.
pub fn child<'a>(report: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    report["children"].as_array()?.iter().find_map(|c| {
        if c["name"] == name {
            Some(c)
        } else {
            child(&c["report"], name)
        }
    })
}
