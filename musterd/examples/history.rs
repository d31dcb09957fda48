//! What the dashboard's history costs at fleet size: the time one sample
//! takes with MACHINES machines and CONNECTIONS agent connections on the
//! simulated cloud, and the heap a full ring of samples holds.
//!
//! Run with `cargo run --release -p musterd --example history -- [MACHINES] [CONNECTIONS]`
//! (defaults 10000 and 100000).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use muster::clock::SystemClock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{Status, Value};
use muster::sim::{Sim, SimConfig};
use muster_actors::{Backends, Metrics, Muster, MusterConfig, RestartConfig, Root, SupervisorSpec};
use muster_http::history::{KEEP, Sampler};
use prometheus_client::registry::Registry;
use slog::{Logger, o};

/// Counts live heap bytes, so that the example can say what a full ring
/// holds.
#[path = "../../benches/support/counting.rs"]
mod counting;

fn argument(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map(|a| a.parse().expect("a count"))
        .unwrap_or(default)
}

fn main() {
    let machines = argument(1, 10_000);
    let connections = argument(2, 100_000);
    actix::System::new().block_on(measure(machines, connections));
}

async fn measure(machines: usize, connections: usize) {
    let sim = Sim::new(SimConfig::default()).expect("the default sim config");
    for _ in 0..machines {
        sim.add_provisioned_machine();
    }
    let clock = Arc::new(SystemClock);
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let (child, muster) = Muster::child(
        "muster",
        &MusterConfig::default(),
        Backends::sim(&sim, clock.clone()),
        &mut registry,
    )
    .expect("a valid tree");
    let root = Root::start(
        "host",
        SupervisorSpec::new(RestartConfig::default()).child(child),
        Logger::root(slog::Discard, o!()),
        metrics.clone(),
    )
    .expect("the tree starts");
    let presence = muster.presence();
    presence.enable().await.expect("presence enables");
    let servers: Vec<MachineTag> = (0..3)
        .map(|n| format!("machine-{n}").parse().unwrap())
        .collect();
    let models: Vec<ModelUuid> = (1..=100).map(ModelUuid::from_u128).collect();
    // One snapshot a server: a message each, however many connections.
    for (i, server) in servers.iter().enumerate() {
        let values: Vec<Value> = (i..connections)
            .step_by(servers.len())
            .map(|n| Value {
                model: models[n % models.len()],
                server: server.clone(),
                agent: format!("unit-app-{n}").parse::<AgentTag>().unwrap(),
                controller_agent: false,
                connection_id: n as u64,
                // A third of them missing, so both counts move.
                status: if n % 3 == 0 {
                    Status::Missing
                } else {
                    Status::Alive
                },
                user_data: String::new(),
                last_seen: SystemTime::now(),
            })
            .collect();
        presence
            .update_server(server, values)
            .await
            .expect("presence takes the snapshot");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while muster.machines().machines().await.map_or(0, |m| m.len()) < machines {
        assert!(
            Instant::now() < deadline,
            "the watcher did not list every machine"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let sampler = Sampler::new(muster.clone(), metrics, clock);
    let history = sampler.history();
    let mut took = Vec::with_capacity(KEEP);
    for _ in 0..KEEP {
        let start = Instant::now();
        sampler.sample().await;
        took.push(start.elapsed());
        // Let the tree run between samples, as it does between ticks.
        tokio::task::yield_now().await;
    }
    took.sort();
    let mean = took.iter().sum::<Duration>() / took.len() as u32;
    println!(
        "{machines} machines, {connections} connections: one sample takes {mean:?} on average, {:?} at the median, {:?} at most ({KEEP} samples)",
        took[took.len() / 2],
        took[took.len() - 1],
    );

    // A copy of the full ring allocates what the ring holds (the mailbox
    // names are shared, as in the ring).
    let before = counting::live();
    let copy = history.since(None);
    let held = counting::live() - before;
    println!(
        "a full ring of {} samples holds {} KiB ({} bytes a sample)",
        copy.len(),
        held / 1024,
        held / copy.len().max(1) as isize
    );
    let json = serde_json::to_string(&history.answer(None)).expect("the history serializes");
    println!(
        "/api/history answers {} KiB whole; a page polling with ?after= gets about {} bytes a sample",
        json.len() / 1024,
        json.len() / copy.len().max(1)
    );
    drop(copy);
    root.shutdown();
    let _ = root.wait().await;
}
