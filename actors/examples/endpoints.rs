//! What the daemon's inspection endpoints cost at fleet scale, measured
//! through the handle they call; run in release:
//!
//! ```sh
//! cargo run --release -p muster-actors --example endpoints
//! ```
//!
//! 1. Presence at 10,000 models and 1,000,000 connections over 3 servers:
//!    `/api/models` as it is now (`model_counts()`, kept as events arrive)
//!    against the walk it used to make over `connections()`, and the heap
//!    and connect time the per-model counts cost.
//! 2. 100,000 machines, one poller each: `/healthz` as it is now
//!    (`health()`) against the full tree report it used to build, the
//!    report `/api/report` now gives (dynamic groups folded), and the
//!    `/metrics` machine gauge (`count_by_phase()` against listing every
//!    machine).
//!
//! Each figure is the median and the 99th percentile of a number of calls
//! made one after the other from a host thread while the tree runs on its
//! own actix thread, as the HTTP worker does. Nothing is asserted: the
//! numbers are printed for `docs/performance.md`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use muster::clock::SystemClock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{Connections, ModelCounts, ServerTable, Status, Tally};
use muster::sim::{Sim, SimConfig};
use muster_actors::{Backends, Muster, MusterConfig, ReportOptions, SendError};
use prometheus_client::registry::Registry;
use slog::{Discard, Logger, o};

/// Counts the bytes allocated and not yet freed, to weigh the counts.
#[path = "../../benches/support/counting.rs"]
mod counting;

const MODELS: u64 = 10_000;
const PER_MODEL: u64 = 100;
const CONNECTIONS: u64 = MODELS * PER_MODEL;
const MACHINES: usize = 100_000;

/// One connection of the presence fixture: every model has 100 agents
/// with one connection each, spread over 3 servers; every tenth agent is
/// a controller agent.
struct Connection {
    server: usize,
    model: ModelUuid,
    agent: usize,
    controller: bool,
}

fn connection(id: u64) -> Connection {
    let k = id % PER_MODEL;
    Connection {
        server: (id % 3) as usize,
        model: ModelUuid::from_u128(u128::from(id / PER_MODEL)),
        agent: k as usize,
        controller: k.is_multiple_of(10),
    }
}

struct Names {
    servers: Vec<MachineTag>,
    agents: Vec<AgentTag>,
}

impl Names {
    fn new() -> Self {
        Names {
            servers: (0..3)
                .map(|n| format!("machine-{n}").parse().unwrap())
                .collect(),
            agents: (0..PER_MODEL)
                .map(|k| {
                    let text = if k.is_multiple_of(10) {
                        format!("machine-{k}")
                    } else {
                        format!("unit-app-{k}")
                    };
                    text.parse().unwrap()
                })
                .collect(),
        }
    }
}

/// Median and 99th percentile of `n` timed calls.
fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn time_sync<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let times = (0..n)
        .map(|_| {
            let began = Instant::now();
            std::hint::black_box(f());
            began.elapsed()
        })
        .collect();
    percentiles(times)
}

fn time_async<T, F: Future<Output = T>>(
    n: usize,
    mut f: impl FnMut() -> F,
) -> (Duration, Duration) {
    time_sync(n, || futures::executor::block_on(f()))
}

fn print(what: &str, n: usize, (median, p99): (Duration, Duration)) {
    println!("  {what:<58} median {median:>10.1?}  p99 {p99:>10.1?}  ({n} calls)");
}

/// `/api/models` as it was: every agent of every model, its status and
/// whether all its connections are a controller agent's, each by a pass
/// over the model's connections.
fn walk(connections: &Connections) -> Vec<ModelCounts> {
    connections
        .models()
        .iter()
        .map(|model| {
            let view = connections.for_model(model);
            let agents = view.agents();
            let controller = agents
                .iter()
                .filter(|a| {
                    let values = view.for_agent(a).values();
                    !values.is_empty() && values.iter().all(|v| v.controller_agent)
                })
                .count();
            let statuses: Vec<Status> = agents
                .iter()
                .map(|a| view.agent_status(a).unwrap_or_default())
                .collect();
            ModelCounts {
                model: *model,
                connections: view.count(),
                agents: agents.len(),
                alive: statuses.iter().filter(|s| **s == Status::Alive).count(),
                missing: statuses.iter().filter(|s| **s == Status::Missing).count(),
                controller,
            }
        })
        .collect()
}

/// Fills three server tables with the fixture, tallied or not: the heap
/// they hold and the time per connect.
fn tables(names: &Names, tally: Option<&Tally>) -> (Vec<ServerTable>, isize, Duration) {
    let before = counting::live();
    let mut tables: Vec<ServerTable> = names
        .servers
        .iter()
        .map(|s| match tally {
            Some(tally) => ServerTable::with_tally(s.clone(), tally),
            None => ServerTable::new(s.clone()),
        })
        .collect();
    let now = SystemTime::now();
    let began = Instant::now();
    for id in 0..CONNECTIONS {
        let c = connection(id);
        tables[c.server].connect(
            &c.model,
            &names.agents[c.agent],
            id,
            c.controller,
            "4.0.1",
            now,
        );
    }
    let per_connect = began.elapsed() / CONNECTIONS as u32;
    (tables, counting::live() - before, per_connect)
}

fn counts_cost(names: &Names) {
    let (plain, plain_bytes, plain_connect) = tables(names, None);
    drop(plain);
    let tally = Tally::new();
    let (tallied, tallied_bytes, tallied_connect) = tables(names, Some(&tally));
    let counts = (tallied_bytes - plain_bytes) as f64;
    println!(
        "  heap: {:.0} bytes a connection untallied, {:.0} tallied: the counts cost {:.0} bytes a connection \
         ({:.0} an agent of a model, {:.0} a model with its 100 agents)",
        plain_bytes as f64 / CONNECTIONS as f64,
        tallied_bytes as f64 / CONNECTIONS as f64,
        counts / CONNECTIONS as f64,
        counts / (MODELS * PER_MODEL) as f64,
        counts / MODELS as f64,
    );
    println!(
        "  connect into a server table: {plain_connect:.0?} untallied, {tallied_connect:.0?} tallied"
    );
    drop(tallied);
}

/// Starts a tree with `config` on `sim` in an actix system of its own
/// thread; answers its handle and the thread.
fn tree(sim: Sim, config: MusterConfig) -> (Muster, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix::System::new().block_on(async move {
            let muster = Muster::start(
                &config,
                Backends::sim(&sim, Arc::new(SystemClock)),
                Logger::root(Discard, o!()),
                &mut Registry::default(),
            )
            .unwrap();
            tx.send(muster.clone()).unwrap();
            let _ = muster.wait().await;
        });
    });
    (rx.recv().unwrap(), thread)
}

fn presence(names: &Names) {
    println!(
        "presence: {MODELS} models, {CONNECTIONS} connections over 3 servers, one a server down:"
    );
    counts_cost(names);
    let (muster, thread) = tree(
        Sim::new(SimConfig::default()).unwrap(),
        MusterConfig::default(),
    );
    let presence = muster.presence().clone();
    futures::executor::block_on(presence.enable()).unwrap();
    let began = Instant::now();
    for id in 0..CONNECTIONS {
        let c = connection(id);
        loop {
            let sent = futures::executor::block_on(presence.connect(
                &names.servers[c.server],
                &c.model,
                &names.agents[c.agent],
                id,
                c.controller,
                "4.0.1",
            ));
            match sent {
                Ok(()) => break,
                Err(SendError::Overloaded { .. }) => std::thread::yield_now(),
                Err(other) => panic!("{other}"),
            }
        }
    }
    futures::executor::block_on(presence.server_down(&names.servers[1])).unwrap();
    let connections = futures::executor::block_on(presence.connections()).unwrap();
    println!(
        "  loaded through the handle in {:.1?}: {} connections",
        began.elapsed(),
        connections.count()
    );

    let counts = futures::executor::block_on(presence.model_counts()).unwrap();
    assert_eq!(counts, walk(&connections), "the counts answer as the walk");
    let n = 200;
    print(
        "/api/models now: model_counts()",
        n,
        time_async(n, || presence.model_counts()),
    );
    let n = 5;
    print(
        "/api/models before: connections() and the walk",
        n,
        time_async(n, || async {
            let connections = presence.connections().await.unwrap();
            walk(&connections)
        }),
    );
    let n = 200;
    print(
        "/healthz now: health()",
        n,
        time_sync(n, || muster.health()),
    );
    print(
        "/healthz before: report()",
        n,
        time_async(n, || muster.report()),
    );
    muster.shutdown();
    thread.join().unwrap();
}

fn machines() {
    println!("{MACHINES} machines, one poller each:");
    let sim = Sim::new(SimConfig {
        pending_for: Duration::from_secs(1),
        allocating_for: Duration::from_secs(1),
        address_delay: Duration::from_secs(1),
        agent_start_delay: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .unwrap();
    for _ in 0..MACHINES {
        sim.add_provisioned_machine();
    }
    let mut config = MusterConfig::default();
    // Room for every poller's request at once.
    config.gateway.mailbox = 2 * MACHINES;
    let began = Instant::now();
    let (muster, thread) = tree(sim, config);
    // Every machine has a poller once the supervisor's folded report
    // counts them all started.
    let summary = ReportOptions::folding_over(0);
    loop {
        let report = futures::executor::block_on(muster.report_with(summary)).unwrap();
        let started = report.children[2]
            .report
            .as_ref()
            .and_then(|machines| machines["dynamic"]["states"]["started"].as_u64());
        if started == Some(MACHINES as u64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("  every poller started after {:.1?}", began.elapsed());

    let n = 200;
    print(
        "/healthz now: health()",
        n,
        time_sync(n, || muster.health()),
    );
    let n = 20;
    print(
        "/healthz before: report(), every child",
        n,
        time_async(n, || muster.report()),
    );
    print(
        "/api/report now: pollers folded (over 100)",
        n,
        time_async(n, || muster.report_with(ReportOptions::folding_over(100))),
    );
    let full = futures::executor::block_on(muster.report()).unwrap();
    let folded =
        futures::executor::block_on(muster.report_with(ReportOptions::folding_over(100))).unwrap();
    println!(
        "  /api/report body: {} bytes folded, {} bytes with every child",
        serde_json::to_vec(&folded).unwrap().len(),
        serde_json::to_vec(&full).unwrap().len()
    );
    print(
        "/metrics machine gauge now: count_by_phase()",
        n,
        time_sync(n, || muster.machines().count_by_phase()),
    );
    print(
        "/metrics machine gauge before: machines() listed",
        n,
        time_async(n, || muster.machines().machines()),
    );
    muster.shutdown();
    thread.join().unwrap();
}

fn main() {
    let which = std::env::args().nth(1);
    if which.as_deref() != Some("machines") {
        presence(&Names::new());
    }
    if which.as_deref() != Some("presence") {
        machines();
    }
}
