//! Figures for the machine registry; run in release:
//!
//! ```sh
//! cargo run --release -p musterd --example registry
//! ```
//!
//! In a fresh SQLite file: registering 10,000 machines one write at a time
//! (one after another, then 64 at once), recording a poll for each, reading
//! them back one by one and as a list, the resident memory it took and the
//! size of the file. Then, for scale, the same inserts on a bare rusqlite
//! connection on the calling thread, without the hop to the blocking pool.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use muster::clock::SystemClock;
use muster::model::ModelFacade;
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{Address, AddressScope, InstanceStatus, NetworkInterface};
use musterd::registry::{Registration, Registry, SqliteOptions};
use slog::{Discard, Logger, o};

const MACHINES: u32 = 10_000;
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

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn line(what: &str, count: u32, elapsed: Duration) {
    println!(
        "{what:<44} {:>8.0} ms {:>10.0} /s",
        elapsed.as_secs_f64() * 1e3,
        f64::from(count) / elapsed.as_secs_f64()
    );
}

async fn figures(dir: &Path) {
    let path = dir.join("muster.db");
    let rss_before = rss_bytes();
    let log = Logger::root(Discard, o!());
    let registry = Registry::open(&path, &SqliteOptions::default(), Arc::new(SystemClock), log)
        .expect("the registry opens");
    let model = ModelUuid::from_u128(1);

    let start = Instant::now();
    for n in 0..MACHINES {
        registry
            .register(model, tag(n), registration(n, "pending"))
            .await
            .expect("registered");
    }
    line("register, one after another", MACHINES, start.elapsed());
    let rss_registered = rss_bytes();

    let start = Instant::now();
    futures::stream::iter(0..MACHINES)
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
    line("update, 64 at once", MACHINES, start.elapsed());

    let facade = registry.model(model);
    let machines = futures::stream::iter(0..MACHINES)
        .map(|n| facade.machine(&tag(n)))
        .buffered(IN_FLIGHT)
        .map(|m| m.expect("registered"))
        .collect::<Vec<_>>()
        .await;
    let start = Instant::now();
    for (n, machine) in (0..MACHINES).zip(&machines) {
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
        MACHINES,
        start.elapsed(),
    );
    let rss_recorded = rss_bytes();

    let start = Instant::now();
    for machine in &machines {
        machine.instance_status().await.expect("read");
    }
    line("read one machine", MACHINES, start.elapsed());

    let start = Instant::now();
    let listed = registry.machines(model).await.expect("listed");
    assert_eq!(listed.len(), MACHINES as usize);
    println!(
        "{:<44} {:>8.0} ms",
        "list the model",
        start.elapsed().as_secs_f64() * 1e3
    );

    let start = Instant::now();
    let first = facade.watch_model_machines().next().await;
    assert_eq!(
        first.map(|b| b.map(|b| b.len())).transpose().ok().flatten(),
        Some(MACHINES as usize)
    );
    println!(
        "{:<44} {:>8.0} ms",
        "the watcher's first batch",
        start.elapsed().as_secs_f64() * 1e3
    );
    drop((listed, machines));

    let rss_after = rss_bytes();
    println!(
        "resident memory: {:.1} MiB before opening; {:.1} MiB with {MACHINES} machines \
         registered; {:.1} MiB once each has a recorded poll (and {MACHINES} handles \
         exist); {:.1} MiB after listing them all",
        mib(rss_before),
        mib(rss_registered),
        mib(rss_recorded),
        mib(rss_after),
    );
    let wal = dir.join("muster.db-wal");
    println!(
        "database: {:.2} MiB, write-ahead log {:.2} MiB",
        mib(file_size(&path)),
        mib(file_size(&wal))
    );
    drop((facade, registry));
    println!(
        "database after close (log checkpointed): {:.2} MiB ({:.0} bytes a machine)",
        mib(file_size(&path)),
        file_size(&path) as f64 / f64::from(MACHINES)
    );
}

/// The same inserts, straight on a connection: what the hop to the
/// blocking pool and the registry's checks cost on top.
fn bare_inserts(dir: &Path) {
    let conn = rusqlite::Connection::open(dir.join("bare.db")).expect("opens");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("normal");
    conn.execute_batch(
        "CREATE TABLE machines (id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT, \
         machine TEXT, instance_id TEXT, life TEXT, agent_status TEXT, manual INTEGER, \
         UNIQUE (model, machine))",
    )
    .expect("table");
    let start = Instant::now();
    for n in 0..MACHINES {
        conn.prepare_cached(
            "INSERT INTO machines (model, machine, instance_id, life, agent_status, manual) \
             VALUES (?1, ?2, ?3, 'alive', 'pending', 0)",
        )
        .expect("prepared")
        .execute(rusqlite::params!["m", n.to_string(), format!("i-{n:017x}")])
        .expect("inserted");
    }
    line(
        "bare rusqlite insert, same thread",
        MACHINES,
        start.elapsed(),
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(figures(dir.path()));
    bare_inserts(dir.path());
}
