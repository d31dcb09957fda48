//! Three `musterd` nodes sharing presence over one `nats-server`, AGENTS
//! swarm agents spread over them (a third on each door), all processes on
//! loopback. Prints:
//! - the time until every node holds every agent's connection alive;
//! - the NATS messages and bytes each agent connect cost, as published by
//!   its node and as received by the others;
//! - the time from one node's SIGKILL until its agents' connections are
//!   missing on the two others;
//! - the time from its restart until its agents, reconnected by their
//!   swarm, are alive on every node again.
//!
//! Build the daemon and this example in one profile, raise the open-files
//! limit (each agent is a socket in a swarm and one in a node), then run:
//!
//! ```text
//! cargo build --release -p musterd --bin musterd --example cluster_swarm
//! ulimit -n 200000
//! target/release/examples/cluster_swarm [AGENTS] [HEARTBEAT] [DOWN_AFTER]
//! ```
//!
//! (defaults 30000, `1s`, `5s`: the daemon's defaults). It needs Debian's
//! `nats-server`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process, killed when dropped.
struct Process(Option<Child>);

impl Process {
    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `musterd` built beside this example.
fn musterd() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|examples| examples.parent()).unwrap();
    let musterd = dir.join("musterd");
    assert!(
        musterd.exists(),
        "{} is missing: cargo build -p musterd --bin musterd in the same profile",
        musterd.display()
    );
    musterd
}

struct Node {
    http: u16,
    agents: u16,
    config: PathBuf,
    process: Process,
}

impl Node {
    fn start(
        n: usize,
        nats: u16,
        heartbeat: &str,
        down_after: &str,
        dir: &std::path::Path,
    ) -> Node {
        let (http, agents) = (free_port(), free_port());
        let config = dir.join(format!("machine-{n}.toml"));
        std::fs::write(
            &config,
            format!(
                "[http]\nlisten = \"127.0.0.1:{http}\"\n\
                 [agents]\nlisten = \"127.0.0.1:{agents}\"\nserver = \"machine-{n}\"\n\
                 [cluster]\nnats = [\"nats://127.0.0.1:{nats}\"]\n\
                 heartbeat = \"{heartbeat}\"\ndown_after = \"{down_after}\"\n"
            ),
        )
        .unwrap();
        let mut node = Node {
            http,
            agents,
            config,
            process: Process(None),
        };
        node.run();
        node
    }

    fn run(&mut self) {
        let child = Command::new(musterd())
            .args(["--log-level", "warning", "run", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.process = Process(Some(child));
        wait_for(Duration::from_secs(30), || self.get("/healthz").is_some());
    }

    fn get(&self, path: &str) -> Option<String> {
        let mut tcp = TcpStream::connect(("127.0.0.1", self.http)).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        write!(tcp, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).ok()?;
        answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
    }

    /// A series' value on `/metrics` (0 when absent).
    fn metric(&self, series: &str) -> f64 {
        let text = self.get("/metrics").unwrap_or_default();
        text.lines()
            .find(|line| line.starts_with(series))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// Connections alive and missing, all servers.
    fn connections(&self) -> (u64, u64) {
        (
            self.metric("muster_presence_connections{status=\"alive\"}") as u64,
            self.metric("muster_presence_connections{status=\"missing\"}") as u64,
        )
    }
}

fn wait_for(within: Duration, mut ready: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < within, "not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let agents: u64 = args.next().map_or(30_000, |a| a.parse().expect("AGENTS"));
    let heartbeat = args.next().unwrap_or_else(|| "1s".into());
    let down_after = args.next().unwrap_or_else(|| "5s".into());
    let each = agents / 3;
    let agents = each * 3;
    let dir = std::env::temp_dir().join(format!("cluster-swarm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let nats_port = free_port();
    let mut nats = Process(Some(
        Command::new("nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &nats_port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(dir.join("store"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (apt-get install nats-server)"),
    ));
    wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", nats_port)).is_ok()
    });
    let mut nodes: Vec<Node> = (0..3)
        .map(|n| Node::start(n, nats_port, &heartbeat, &down_after, &dir))
        .collect();
    println!("3 nodes on NATS, heartbeat {heartbeat}, down_after {down_after}; {agents} agents");

    let started = Instant::now();
    let _swarms: Vec<Process> = nodes
        .iter()
        .map(|node| {
            Process(Some(
                Command::new(musterd())
                    .args(["swarm", "--url"])
                    .arg(format!("ws://127.0.0.1:{}/agent", node.agents))
                    .args(["--agents", &each.to_string(), "--models", "10"])
                    .args(["--churn", "0", "--ping", "30s", "--concurrency", "500"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            ))
        })
        .collect();
    wait_for(Duration::from_secs(600), || {
        nodes.iter().all(|node| node.connections() == (agents, 0))
    });
    println!(
        "all {agents} connections alive on every node {:.1} s after the swarms started",
        started.elapsed().as_secs_f64()
    );
    let (mut out_messages, mut out_bytes, mut in_messages, mut in_bytes) = (0.0, 0.0, 0.0, 0.0);
    for node in &nodes {
        out_messages +=
            node.metric("muster_cluster_messages_total{direction=\"out\",kind=\"events\"}");
        out_bytes += node.metric("muster_cluster_bytes_total{direction=\"out\",kind=\"events\"}");
        in_messages +=
            node.metric("muster_cluster_messages_total{direction=\"in\",kind=\"events\"}");
        in_bytes += node.metric("muster_cluster_bytes_total{direction=\"in\",kind=\"events\"}");
    }
    let connects = agents as f64;
    println!(
        "per agent connect: {:.3} messages and {:.0} bytes published by its node; \
         {:.3} messages and {:.0} bytes received by the two others together",
        out_messages / connects,
        out_bytes / connects,
        in_messages / connects,
        in_bytes / connects
    );

    nodes[1].process.kill();
    let took = wait_for(Duration::from_secs(120), || {
        [&nodes[0], &nodes[2]]
            .iter()
            .all(|node| node.connections() == (agents - each, each))
    });
    println!(
        "machine-1 killed: its {each} connections missing on the two others after {:.2} s",
        took.as_secs_f64()
    );

    let restarted = Instant::now();
    nodes[1].run();
    // Its old run's connections are replaced by its new snapshot, and its
    // agents come back through their swarm's retries.
    wait_for(Duration::from_secs(600), || {
        nodes.iter().all(|node| node.connections() == (agents, 0))
    });
    println!(
        "machine-1 restarted: all {agents} connections alive on every node again after {:.1} s",
        restarted.elapsed().as_secs_f64()
    );
    for node in &mut nodes {
        node.process.kill();
    }
    nats.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
