//! The world of a chaos run: three NATS servers routed into one cluster,
//! and three `musterd` nodes on them with the same simulated models, each
//! a real process whose log the run reads line by line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::nats::{NatsServer, free_port};

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_millis(100);
/// How long a silent node has before its peers hold it down.
pub const DOWN_AFTER: Duration = Duration::from_millis(600);
/// How long a model lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_millis(1500);
/// How often a settled machine is polled.
pub const LONG_POLL: Duration = Duration::from_millis(200);

/// The models every node is given, one simulated cloud each.
pub const MODELS: [&str; 4] = [
    "c1c1c1c1-0000-4000-8000-000000000001",
    "c1c1c1c1-0000-4000-8000-000000000002",
    "c1c1c1c1-0000-4000-8000-000000000003",
    "c1c1c1c1-0000-4000-8000-000000000004",
];

/// What a node's log said, as the run heard it.
#[derive(Debug, Clone)]
pub enum Heard {
    /// A machine of `model` was polled.
    Polled { model: String },
    /// The node panicked.
    Panic(String),
}

/// One `musterd` of the cluster: `machine-N`.
pub struct Node {
    pub n: usize,
    pub http: u16,
    pub agents: u16,
    program: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    /// Whether it is stopped with SIGSTOP.
    pub paused: bool,
    heard: mpsc::Sender<(usize, Instant, Heard)>,
}

impl Node {
    /// Writes `machine-N`'s config (NATS at `urls`; the simulated clouds'
    /// faults as given) and starts it.
    pub fn start(
        program: &Path,
        dir: &Path,
        n: usize,
        urls: &[String],
        seed: u64,
        faults: (f64, f64),
        heard: mpsc::Sender<(usize, Instant, Heard)>,
    ) -> Node {
        // Two ports asked one after the other may be the same one.
        let http = free_port();
        let agents = std::iter::repeat_with(free_port)
            .find(|port| *port != http)
            .expect("a second free port");
        let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
        let mut text = format!(
            "[backend]\nmachines = 2\n\
             [backend.sim]\nseed = {seed}\npending_for = \"0s\"\nallocating_for = \"0s\"\naddress_delay = \"0s\"\n\
             [backend.sim.faults]\nerror_rate = {}\nthrottle_rate = {}\nretry_after = \"200ms\"\n\
             [gateway]\ncalls_per_second = 1000.0\nburst = 100\n\
             [machines.poll]\nshort_poll = \"100ms\"\nshort_poll_cap = \"{poll}ms\"\nlong_poll = \"{poll}ms\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n\
             [agents]\nlisten = \"127.0.0.1:{agents}\"\nserver = \"machine-{n}\"\n\
             [cluster]\nname = \"chaos\"\nnats = [{}]\nheartbeat = \"{}ms\"\ndown_after = \"{}ms\"\nlease_ttl = \"{}ms\"\n",
            faults.0,
            faults.1,
            urls.join(", "),
            HEARTBEAT.as_millis(),
            DOWN_AFTER.as_millis(),
            LEASE_TTL.as_millis(),
            poll = LONG_POLL.as_millis(),
        );
        for uuid in MODELS {
            text.push_str(&format!(
                "[[models]]\nuuid = \"{uuid}\"\ncloud = \"sim\"\nregion = \"local\"\n"
            ));
        }
        let config = dir.join(format!("machine-{n}.toml"));
        std::fs::write(&config, text).expect("the config is written");
        let mut node = Node {
            n,
            http,
            agents,
            program: program.to_owned(),
            config,
            child: None,
            paused: false,
            heard,
        };
        node.run();
        node
    }

    /// Starts the daemon (again, on the same ports), and waits (bounded)
    /// until it serves.
    pub fn run(&mut self) {
        assert!(self.child.is_none(), "machine-{} runs already", self.n);
        let mut child = Command::new(&self.program)
            .args([
                "--log-format",
                "json",
                "--log-level",
                "debug",
                "run",
                "--config",
            ])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        listen(
            self.n,
            child.stderr.take().expect("piped"),
            self.heard.clone(),
        );
        self.child = Some(child);
        self.paused = false;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if get(self.http, "/healthz").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("machine-{} did not serve within 30s", self.n);
    }

    /// Whether it runs and is not paused: it can answer.
    pub fn answers(&self) -> bool {
        self.child.is_some() && !self.paused
    }

    /// SIGKILL: no goodbye to anyone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGSTOP, as a long GC pause or a stalled VM would stop it.
    pub fn pause(&mut self) {
        self.signal("STOP");
        self.paused = true;
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        self.signal("CONT");
        self.paused = false;
    }

    /// SIGTERM, and its exit code once it exits within `within`.
    pub fn terminate(&mut self, within: Duration) -> Result<Option<i32>, String> {
        if self.paused {
            self.resume();
        }
        self.signal("TERM");
        let mut child = self.child.take().ok_or("it was not running")?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status.code());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("it did not stop within {within:?} of SIGTERM"))
    }

    fn signal(&self, name: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([format!("-{name}"), child.id().to_string()])
                .status();
        }
    }

    /// `machine-N`.
    pub fn server(&self) -> String {
        format!("machine-{}", self.n)
    }

    /// `ws://127.0.0.1:PORT/agent`.
    pub fn door(&self) -> String {
        format!("ws://127.0.0.1:{}/agent", self.agents)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.paused {
            self.resume();
        }
        self.kill();
    }
}

/// Reads a node's log on a thread of its own, passing on what the run
/// watches: each machine polled, and panics.
fn listen(
    n: usize,
    stderr: impl Read + Send + 'static,
    heard: mpsc::Sender<(usize, Instant, Heard)>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let at = logged_at(&line);
            let what = match serde_json::from_str::<Value>(&line) {
                // A poller's supervisor is its model's subtree:
                // `musterd/muster/models/UUID`.
                Ok(record) if record["msg"] == "polled instance" => {
                    let model = record["supervisor"]
                        .as_str()
                        .and_then(|path| path.split_once("/models/"))
                        .map(|(_, model)| model.split('/').next().unwrap_or(model));
                    match model {
                        Some(model) => Heard::Polled {
                            model: model.to_owned(),
                        },
                        None => continue,
                    }
                }
                Ok(record)
                    if record["msg"]
                        .as_str()
                        .is_some_and(|m| m.contains("panicked")) =>
                {
                    Heard::Panic(line)
                }
                Ok(_) => continue,
                Err(_) if line.contains("panicked") => Heard::Panic(line),
                Err(_) => continue,
            };
            if heard.send((n, at, what)).is_err() {
                break;
            }
        }
    });
}

/// When a record was logged, by its `ts`: a node's log drain writes on a
/// thread of its own, so what a node logged before a SIGSTOP may be read
/// after its SIGCONT.
fn logged_at(line: &str) -> Instant {
    let (now, wall) = (Instant::now(), SystemTime::now());
    let ts = serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|record| record["ts"].as_str().map(|ts| ts.replace("+00:00", "Z")))
        .and_then(|ts| humantime::parse_rfc3339_weak(&ts).ok());
    match ts.and_then(|ts| wall.duration_since(ts).ok()) {
        Some(ago) => now.checked_sub(ago).unwrap_or(now),
        None => now,
    }
}

/// `GET path` on the HTTP port `port`: the body as JSON, when it answers
/// 200 within two seconds.
pub fn get(port: u16, path: &str) -> Option<Value> {
    match request(port, "GET", path, "") {
        Some((200, body)) => Some(body),
        _ => None,
    }
}

/// `METHOD path` with `body`: the status and the body as JSON (`null` when
/// empty or not JSON), or `None` when the node does not answer within two
/// seconds.
pub fn request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// Three NATS servers routed into one cluster.
pub fn nats_cluster(name: &str) -> Vec<NatsServer> {
    NatsServer::cluster(name)
}
