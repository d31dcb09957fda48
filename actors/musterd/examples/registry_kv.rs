//! Figures for the machine registry shared in NATS (docs/spec.md §11.9),
//! beside those of `registry` for SQLite; run in release:
//!
//! ```sh
//! cargo run --release -p musterd --example registry_kv -- [MACHINES]
//! ```
//!
//! On a `nats-server` of its own (Debian's, JetStream on disk): registering
//! MACHINES machines (10,000 unless given) one write at a time, one after
//! another and then 64 at once, recording a poll for each, reading each
//! back, and listing the model.

#[path = "../tests/support/nats.rs"]
#[allow(dead_code)]
mod nats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use muster::clock::SystemClock;
use muster::model::ModelFacade;
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{Address, AddressScope, InstanceStatus, NetworkInterface};
use musterd::cluster::{ClusterConfig, NatsAuth};
use musterd::registry::{NatsBackend, Registration, Registry};
use slog::{Discard, Logger, o};

const IN_FLIGHT: usize = 64;

fn tag(n: u32) -> MachineTag {
    format!("machine-{n}").parse().expect("a machine tag")
}

fn registration(n: u32, agent: &str) -> Registration {
    let body = format!(r#"{{"instance_id": "i-{n:017x}", "agent_status": "{agent}"}}"#);
    musterd::registry::parse_registration(body.as_bytes()).expect("a valid body")
}

fn interfaces(n: u32) -> Vec<NetworkInterface> {
    vec![NetworkInterface {
        device_index: 0,
        interface_name: "eth0".into(),
        mac_address: format!(
            "02:00:00:{:02x}:{:02x}:{:02x}",
            n >> 16,
            (n >> 8) & 0xff,
            n & 0xff
        ),
        provider_id: format!("eni-{n:017x}"),
        subnet_id: "subnet-0a1b2c3d".into(),
        addresses: vec![
            Address::new(
                format!("10.{}.{}.4", n >> 8, n & 0xff),
                AddressScope::CloudLocal,
            ),
            Address::new(
                format!("198.18.{}.{}", n >> 8, n & 0xff),
                AddressScope::Public,
            ),
        ],
    }]
}

fn line(what: &str, count: u32, elapsed: Duration) {
    println!(
        "{what:<44} {:>8.0} ms {:>10.0} /s",
        elapsed.as_secs_f64() * 1e3,
        f64::from(count) / elapsed.as_secs_f64()
    );
}

async fn figures(url: String, machines: u32) {
    let cluster = ClusterConfig {
        name: "figures".into(),
        nats: vec![url],
        ..ClusterConfig::default()
    };
    let log = Logger::root(Discard, o!());
    let backend = NatsBackend::connect(&cluster, &NatsAuth::None, &tag(0), &log)
        .await
        .expect("the bucket opens");
    let registry = Registry::new(Arc::new(backend), Arc::new(SystemClock), log);
    let model = ModelUuid::from_u128(1);

    let start = Instant::now();
    for n in 0..machines {
        registry
            .register(model, tag(n), registration(n, "pending"))
            .await
            .expect("registered");
    }
    line("register, one after another", machines, start.elapsed());

    let start = Instant::now();
    futures::stream::iter(0..machines)
        .map(|n| {
            let registry = registry.clone();
            async move {
                registry
                    .register(model, tag(n), registration(n, "started"))
                    .await
                    .expect("updated")
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .count()
        .await;
    line("update, 64 at once", machines, start.elapsed());

    let facade = registry.model(model);
    let handles = futures::stream::iter(0..machines)
        .map(|n| facade.machine(&tag(n)))
        .buffered(IN_FLIGHT)
        .map(|m| m.expect("registered"))
        .collect::<Vec<_>>()
        .await;
    let start = Instant::now();
    for (n, machine) in (0..machines).zip(&handles) {
        machine
            .set_instance_status(InstanceStatus::Running, String::new())
            .await
            .expect("recorded");
        machine
            .set_provider_network_config(interfaces(n))
            .await
            .expect("recorded");
    }
    line(
        "record a poll (status + network config)",
        machines,
        start.elapsed(),
    );

    let start = Instant::now();
    for machine in &handles {
        machine.instance_status().await.expect("read");
    }
    line("read one machine", machines, start.elapsed());

    let start = Instant::now();
    let listed = registry.machines(model).await.expect("listed");
    assert_eq!(listed.len(), machines as usize);
    println!(
        "{:<44} {:>8.0} ms",
        "list the model",
        start.elapsed().as_secs_f64() * 1e3
    );
}

fn main() {
    let machines = std::env::args()
        .nth(1)
        .map_or(10_000, |n| n.parse().expect("MACHINES: a number"));
    let Some(server) = nats::NatsServer::start("registry_kv") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!("{machines} machines on nats-server {}", server.url());
    runtime.block_on(figures(server.url(), machines));
}
