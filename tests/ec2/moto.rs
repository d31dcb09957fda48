//! moto's server as a child process on a free loopback port, stopped on
//! drop, with its request log kept for counting calls. Shared by the EC2
//! provider's tests and musterd's: it needs nothing of either.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long moto may take to answer its first request.
const STARTUP: Duration = Duration::from_secs(60);

pub struct Moto {
    child: Child,
    port: u16,
    /// moto's request log, a line per request.
    log: Arc<Mutex<Vec<String>>>,
    sentinels: usize,
}

impl Moto {
    /// A running moto server. A test that starts one is marked
    /// `#[cfg_attr(missing_moto, ignore = "needs moto_server")]`: ignored
    /// where `moto_server` is missing, failing here under `CI=true`.
    pub fn start() -> Moto {
        let port = free_port();
        let spawned = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                panic!("moto_server is needed (pip install 'moto[server]==5.2.1')")
            }
            Err(error) => panic!("cannot start moto_server: {error}"),
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        let mut moto = Moto {
            child,
            port,
            log,
            sentinels: 0,
        };
        moto.wait_until_ready();
        moto
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling moto_server") {
                panic!(
                    "moto_server exited with {status} before answering:\n{}",
                    self.log.lock().unwrap().join("\n")
                );
            }
            if get(self.port, "/moto-api/").is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer within {STARTUP:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many EC2 calls moto has answered since the last count (or the
    /// start). A request of our own marks the end of the log to count, so
    /// that lines still on their way are not missed.
    pub fn calls_since_last_count(&mut self) -> usize {
        self.sentinels += 1;
        let sentinel = format!("/muster-sentinel-{}", self.sentinels);
        get(self.port, &sentinel).expect("moto answers the sentinel request");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let mut log = self.log.lock().unwrap();
                if let Some(at) = log.iter().position(|l| l.contains(&sentinel)) {
                    let calls = log[..at]
                        .iter()
                        .filter(|l| l.contains("\"POST / HTTP/1.1\""))
                        .count();
                    log.drain(..=at);
                    return calls;
                }
            }
            assert!(Instant::now() < deadline, "moto never logged {sentinel}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A plain HTTP GET, answering the status line, or `None` when nothing
/// answers.
fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.lines().next().map(str::to_owned)
}
