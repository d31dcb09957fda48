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

#[path = "support/registry_figures.rs"]
mod registry_figures;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use muster::clock::SystemClock;
use muster::model::ModelFacade;
use muster::names::ModelUuid;
use muster_registry::{Registry, SqliteOptions};
use registry_figures::{Run, line, once, run};
use slog::{Discard, Logger, o};

const MACHINES: u32 = 10_000;

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

async fn figures(dir: &Path) {
    let path = dir.join("muster.db");
    let rss_before = rss_bytes();
    let log = Logger::root(Discard, o!());
    let registry = Registry::open(&path, &SqliteOptions::default(), Arc::new(SystemClock), log)
        .expect("the registry opens");
    let model = ModelUuid::from_u128(1);

    let mut rss_registered = 0;
    let mut rss_recorded = 0;
    let Run { handles, facade } = run(&registry, model, MACHINES, |step| match step {
        "registered" => rss_registered = rss_bytes(),
        _ => rss_recorded = rss_bytes(),
    })
    .await;

    let start = Instant::now();
    let first = facade.watch_model_machines().next().await;
    assert_eq!(
        first.map(|b| b.map(|b| b.len())).transpose().ok().flatten(),
        Some(MACHINES as usize)
    );
    once("the watcher's first batch", start.elapsed());
    drop(handles);

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
