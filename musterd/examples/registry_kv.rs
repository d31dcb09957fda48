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
#[path = "support/registry_figures.rs"]
#[allow(dead_code)]
mod registry_figures;

use std::sync::Arc;

use muster::clock::SystemClock;
use muster::names::ModelUuid;
use muster_cluster::NatsBackend;
use muster_cluster::{ClusterConfig, NatsAuth};
use muster_registry::Registry;
use registry_figures::{run, tag};
use slog::{Discard, Logger, o};

async fn figures(url: String, machines: u32) {
    let mut cluster = ClusterConfig::default();
    cluster.name = "figures".into();
    cluster.nats = vec![url];
    let log = Logger::root(Discard, o!());
    let backend = NatsBackend::connect(&cluster, &NatsAuth::None, &tag(0), &log)
        .await
        .expect("the bucket opens");
    let registry = Registry::new(Arc::new(backend), Arc::new(SystemClock), log);
    let model = ModelUuid::from_u128(1);

    run(&registry, model, machines, |_| {}).await;
}

fn main() {
    let machines = std::env::args()
        .nth(1)
        .map_or(10_000, |n| n.parse().expect("MACHINES: a number"));
    let server = nats::NatsServer::start("registry_kv");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!("{machines} machines on nats-server {}", server.url());
    runtime.block_on(figures(server.url(), machines));
}
