//! Measures how long the models of a killed node go unpolled
//! (docs/spec.md §11.8): three `musterd` nodes with six simulated models on
//! one `nats-server`; once every lease is with its owner, the node holding
//! the most is SIGKILLed, and for each of its models the time from the
//! kill to the first poll by another node is taken (the polls each node's
//! `/api/machines` counts). The node is started again and the leases left
//! to settle before the next run.
//!
//! ```text
//! cargo build --release -p musterd
//! cargo run --release -p musterd --example lease_takeover -- \
//!     [--lease-ttl 15s] [--heartbeat 1s] [--down-after 5s] [--short-poll 3s] [--runs 3]
//! ```
//!
//! It runs the `musterd` built next to it and Debian's `nats-server`.

#[path = "../tests/support/nats.rs"]
#[allow(dead_code)]
mod nats;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const MODELS: [&str; 6] = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",
    "44444444-4444-4444-8444-444444444444",
    "55555555-5555-4555-8555-555555555555",
    "66666666-6666-4666-8666-666666666666",
];

/// How long anything may take before the run gives up.
const PATIENCE: Duration = Duration::from_secs(300);

struct Settings {
    lease_ttl: Duration,
    heartbeat: Duration,
    down_after: Duration,
    short_poll: Duration,
    runs: usize,
}

fn settings() -> Settings {
    let mut settings = Settings {
        lease_ttl: Duration::from_secs(15),
        heartbeat: Duration::from_secs(1),
        down_after: Duration::from_secs(5),
        short_poll: Duration::from_secs(3),
        runs: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [key, value] = pair else {
            panic!("{pair:?}: every option takes a value");
        };
        let duration = || humantime::parse_duration(value).unwrap_or_else(|e| panic!("{key}: {e}"));
        match key.as_str() {
            "--lease-ttl" => settings.lease_ttl = duration(),
            "--heartbeat" => settings.heartbeat = duration(),
            "--down-after" => settings.down_after = duration(),
            "--short-poll" => settings.short_poll = duration(),
            "--runs" => settings.runs = value.parse().expect("--runs: a number"),
            other => panic!("unknown option {other}"),
        }
    }
    settings
}

/// The `musterd` built next to this example.
fn musterd_program() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let program = dir.join("musterd");
    assert!(
        program.exists(),
        "{} is missing: cargo build -p musterd (with the same profile) first",
        program.display()
    );
    program
}

struct Node {
    n: u32,
    config: PathBuf,
    http: u16,
    child: Option<Child>,
}

impl Node {
    fn new(n: u32, nats: &str, settings: &Settings, dir: &std::path::Path) -> Node {
        let http = nats::free_port();
        let agents = nats::free_port();
        let mut text = format!(
            "[http]\nlisten = \"127.0.0.1:{http}\"\n\
             [agents]\nlisten = \"127.0.0.1:{agents}\"\nserver = \"machine-{n}\"\n\
             [backend]\nmachines = 2\n\
             [backend.sim]\npending_for = \"0s\"\nallocating_for = \"0s\"\naddress_delay = \"0s\"\n\
             [gateway]\ncalls_per_second = 1000.0\nburst = 100\n\
             [machines.poll]\nshort_poll = \"{short}\"\nshort_poll_cap = \"{short}\"\nlong_poll = \"{short}\"\n\
             [cluster]\nname = \"takeover\"\nnats = [\"{nats}\"]\nheartbeat = \"{hb}\"\n\
             down_after = \"{down}\"\nlease_ttl = \"{ttl}\"\n",
            short = humantime::format_duration(settings.short_poll),
            hb = humantime::format_duration(settings.heartbeat),
            down = humantime::format_duration(settings.down_after),
            ttl = humantime::format_duration(settings.lease_ttl),
        );
        for uuid in MODELS {
            text.push_str(&format!(
                "[[models]]\nuuid = \"{uuid}\"\ncloud = \"sim\"\nregion = \"local\"\n"
            ));
        }
        let node_dir = dir.join(format!("node-{n}"));
        std::fs::create_dir_all(&node_dir).unwrap();
        let config = node_dir.join("muster.toml");
        std::fs::write(&config, text).unwrap();
        let mut node = Node {
            n,
            config,
            http,
            child: None,
        };
        node.run();
        node
    }

    fn run(&mut self) {
        let mut child = Command::new(musterd_program())
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("musterd starts");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        for line in stdout.lines() {
            if line.unwrap().starts_with("agents: ") {
                break;
            }
        }
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn get(&self, path: &str) -> Value {
        let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", self.http)) else {
            return Value::Null;
        };
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: muster\r\nConnection: close\r\n\r\n"
        );
        let mut answer = String::new();
        let _ = tcp.read_to_string(&mut answer);
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or(Value::Null)
    }

    fn leases(&self) -> Value {
        let report = self.get("/api/report");
        let presence = report["children"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "presence"))
            .cloned()
            .unwrap_or(Value::Null);
        presence["report"]["children"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "leases"))
            .map(|c| c["report"].clone())
            .unwrap_or(Value::Null)
    }

    fn held(&self) -> Vec<String> {
        self.leases()["held"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h["model"].as_str().map(str::to_owned))
            .collect()
    }

    fn polls(&self) -> BTreeMap<String, u64> {
        let mut polls = BTreeMap::new();
        for machine in self.get("/api/machines")["machines"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(model) = machine["model"].as_str() {
                *polls.entry(model.to_owned()).or_default() +=
                    machine["polls"].as_u64().unwrap_or(0);
            }
        }
        polls
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether every node's leases are with their owners, each held once.
fn settled(nodes: &[&Node]) -> bool {
    let mut holders: BTreeMap<String, usize> = BTreeMap::new();
    for node in nodes {
        let report = node.leases();
        if report["live"].as_array().map_or(0, Vec::len) != nodes.len() {
            return false;
        }
        let server = format!("machine-{}", node.n);
        for lease in report["leases"].as_array().into_iter().flatten() {
            if lease["owner"] == server.as_str() && lease["holder"] != server.as_str() {
                return false;
            }
        }
        for model in node.held() {
            *holders.entry(model).or_default() += 1;
        }
    }
    holders.len() == MODELS.len() && holders.values().all(|n| *n == 1)
}

fn wait_settled(nodes: &[&Node]) -> Duration {
    let started = Instant::now();
    while !settled(nodes) {
        assert!(started.elapsed() < PATIENCE, "the leases never settled");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

fn main() {
    let settings = settings();
    let nats = nats::NatsServer::start("lease_takeover");
    let dir = std::env::temp_dir().join(format!("lease-takeover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut nodes: Vec<Node> = (0..3)
        .map(|n| Node::new(n, &nats.url(), &settings, &dir))
        .collect();
    println!(
        "lease_ttl {}, heartbeat {}, down_after {}, short_poll {}: {} runs",
        humantime::format_duration(settings.lease_ttl),
        humantime::format_duration(settings.heartbeat),
        humantime::format_duration(settings.down_after),
        humantime::format_duration(settings.short_poll),
        settings.runs,
    );
    let all: Vec<&Node> = nodes.iter().collect();
    println!("settled {:?} after start", wait_settled(&all));
    let mut takeovers = Vec::new();
    for run in 1..=settings.runs {
        let victim = (0..3).max_by_key(|&n| nodes[n].held().len()).unwrap();
        let moving = nodes[victim].held();
        let others: Vec<usize> = (0..3).filter(|&n| n != victim).collect();
        let baseline: Vec<BTreeMap<String, u64>> =
            others.iter().map(|&n| nodes[n].polls()).collect();
        let killed = Instant::now();
        nodes[victim].kill();
        let mut first: BTreeMap<String, Duration> = BTreeMap::new();
        while first.len() < moving.len() {
            assert!(killed.elapsed() < PATIENCE, "the models never moved");
            for (at, &n) in others.iter().enumerate() {
                let now = nodes[n].polls();
                for model in &moving {
                    let before = baseline[at].get(model).copied().unwrap_or(0);
                    if now.get(model).copied().unwrap_or(0) > before {
                        first.entry(model.clone()).or_insert(killed.elapsed());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let times: Vec<Duration> = first.values().copied().collect();
        let slowest = times.iter().max().copied().unwrap_or_default();
        let fastest = times.iter().min().copied().unwrap_or_default();
        println!(
            "run {run}: machine-{victim} killed holding {} models; first poll elsewhere after {:.2}s to {:.2}s",
            moving.len(),
            fastest.as_secs_f64(),
            slowest.as_secs_f64()
        );
        takeovers.extend(times);
        nodes[victim].run();
        let all: Vec<&Node> = nodes.iter().collect();
        println!(
            "  back with its owner {:?} after the restart",
            wait_settled(&all)
        );
    }
    takeovers.sort();
    let median = takeovers[takeovers.len() / 2];
    println!(
        "takeover (SIGKILL → first poll by another node) over {} models: min {:.2}s, median {:.2}s, max {:.2}s",
        takeovers.len(),
        takeovers[0].as_secs_f64(),
        median.as_secs_f64(),
        takeovers[takeovers.len() - 1].as_secs_f64(),
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}
