//! What a big snapshot costs between two nodes: node `machine-0` holds
//! CONNECTIONS agent connections; node `machine-1` starts (as a node does
//! when it restarts) and takes them all from `machine-0`'s snapshot. Prints
//! the time from `machine-1`'s start until every connection is alive in its
//! presence, and the parts and bytes the snapshot took on NATS; then the
//! time for both nodes to take each other's snapshot again after their
//! NATS server restarts.
//!
//! Both nodes run in this process, on one actix thread (as each would in
//! its own `musterd`), against a `nats-server` child on a free loopback
//! port. Run with
//! `cargo run --release -p musterd --example cluster_snapshot -- [CONNECTIONS]`
//! (default 100000); it needs Debian's `nats-server`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use muster::clock::SystemClock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::sim::{Sim, SimConfig};
use muster_actors::{Backends, Extensions, Muster, MusterConfig};
use muster_cluster::{
    BridgeConfig, ClusterConfig, ClusterMetrics, LiveNodes, NatsAuth, bridge_child,
};
use prometheus_client::registry::Registry;
use slog::{Logger, o};

/// A `nats-server` child, killed when dropped.
struct Nats {
    child: Option<Child>,
    port: u16,
    store: std::path::PathBuf,
}

impl Nats {
    fn start() -> Nats {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = std::env::temp_dir().join(format!("cluster-snapshot-{}", std::process::id()));
        let mut nats = Nats {
            child: None,
            port,
            store,
        };
        nats.run();
        nats
    }

    fn run(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (apt-get install nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A node on NATS at `url`, with its own registry.
fn node(n: u32, url: &str) -> (Muster, Registry) {
    let sim = Sim::new(SimConfig::default()).unwrap();
    let mut registry = Registry::default();
    let mut cluster = ClusterConfig::default();
    cluster.nats = vec![url.to_owned()];
    cluster.heartbeat = Duration::from_millis(200);
    cluster.down_after = Duration::from_secs(2);
    let node: MachineTag = format!("machine-{n}").parse().unwrap();
    let bridge = bridge_child(BridgeConfig {
        live: LiveNodes::new(node.clone()),
        node,
        auth: NatsAuth::read(&cluster).unwrap(),
        cluster,
        metrics: ClusterMetrics::register(&mut registry),
        clock: Arc::new(SystemClock),
    });
    let mut config = MusterConfig::default();
    config.presence.router_mailbox = 1 << 20;
    let muster = Muster::start_with(
        &config,
        Backends::sim(&sim, Arc::new(SystemClock)),
        Extensions::new().presence_child(bridge),
        Logger::root(slog::Discard, o!()),
        &mut registry,
    )
    .unwrap();
    (muster, registry)
}

/// How many of `server`'s connections `muster` holds alive.
async fn alive(muster: &Muster, server: &MachineTag) -> usize {
    let connections = muster.presence().connections().await.unwrap();
    let view = connections.for_server(server);
    view.count_by_status().get(muster::presence::Status::Alive)
}

/// Polls until `muster` holds `want` of `server`'s connections alive;
/// answers how long that took.
async fn until_alive(muster: &Muster, server: &MachineTag, want: usize) -> Duration {
    let started = Instant::now();
    loop {
        if alive(muster, server).await == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{server}: not all alive"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A counter's value in `registry`'s text exposition.
fn counter(registry: &Registry, series: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

fn main() {
    let connections: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("CONNECTIONS is a number"))
        .unwrap_or(100_000);
    let mut nats = Nats::start();
    let url = format!("nats://127.0.0.1:{}", nats.port);
    actix::System::new().block_on(async move {
        let (a, registry_a) = node(0, &url);
        a.presence().enable().await.unwrap();
        let server_a: MachineTag = "machine-0".parse().unwrap();
        let model = ModelUuid::from_u128(0xdeadbeef);
        let recording = Instant::now();
        for id in 0..connections as u64 {
            let agent: AgentTag = format!("unit-app-{id}").parse().unwrap();
            a.presence()
                .connect(&server_a, &model, &agent, id, false, "4.0.1")
                .await
                .unwrap();
            if id % 50_000 == 49_999 {
                // Lets the router drain its mailbox.
                a.presence().connections().await.unwrap();
            }
        }
        until_alive(&a, &server_a, connections).await;
        println!(
            "machine-0 records {connections} connections in {:?}",
            recording.elapsed()
        );

        let started = Instant::now();
        let (b, registry_b) = node(1, &url);
        b.presence().enable().await.unwrap();
        let took = until_alive(&b, &server_a, connections).await;
        let total = started.elapsed();
        let parts = counter(
            &registry_a,
            "muster_cluster_messages_total{direction=\"out\",kind=\"snapshot_part\"}",
        );
        let bytes = counter(
            &registry_a,
            "muster_cluster_bytes_total{direction=\"out\",kind=\"snapshot_part\"}",
        );
        println!(
            "machine-1 started: all {connections} of machine-0's connections alive in its \
             presence {:.0} ms after its start ({:.0} ms polled); the snapshot took {parts} \
             parts, {:.1} MiB, {:.0} bytes a connection",
            total.as_secs_f64() * 1000.0,
            took.as_secs_f64() * 1000.0,
            bytes / (1 << 20) as f64,
            bytes / connections as f64
        );

        // NATS restarts: each node marks the other down, then takes its
        // snapshot again.
        nats.kill();
        let down = Instant::now();
        while alive(&b, &server_a).await > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!(
            "NATS killed: machine-0's connections missing on machine-1 after {:.0} ms",
            down.elapsed().as_secs_f64() * 1000.0
        );
        nats.run();
        let took = until_alive(&b, &server_a, connections).await;
        println!(
            "NATS back: machine-0's {connections} connections alive again on machine-1 \
             {:.0} ms after NATS restarted",
            took.as_secs_f64() * 1000.0
        );
        let served = counter(
            &registry_a,
            "muster_cluster_snapshots_total{outcome=\"served\"}",
        );
        let applied = counter(
            &registry_b,
            "muster_cluster_snapshots_total{outcome=\"applied\"}",
        );
        println!("snapshots served by machine-0: {served}; applied by machine-1: {applied}");
        a.shutdown();
        b.shutdown();
        let _ = a.wait().await;
        let _ = b.wait().await;
    });
}
