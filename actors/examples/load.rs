//! Load figures for the whole tree; run in release:
//!
//! ```sh
//! cargo run --release -p muster-actors --example load
//! ```
//!
//! 1. Presence events through the handle, from a host thread, against the
//!    core `Recorder` called directly, in the same run; then the tree spread
//!    over `--threads N` arbiters (the cores available by default).
//! 2. 10,000 machines with one poller actor each, settled in the long phase
//!    on the real clock: resident memory of the whole process, and the CPU
//!    the idle tree uses.
//! 3. Provider calls in an hour of long polls for those machines (on a
//!    paused clock), against one call per machine per poll.

use std::sync::Arc;
use std::time::{Duration, Instant};

use muster::clock::SystemClock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::poll::Phase;
use muster::presence::Recorder;
use muster::sim::{Sim, SimConfig};
use muster_actors::{Arbiters, Backends, Extensions, Muster, MusterConfig, SendError};
use prometheus_client::registry::Registry;
use slog::{Discard, Logger, o};

const EVENTS: u64 = 3_000_000;
const MACHINES: usize = 10_000;

/// One event of the presence load: connects, pings and disconnects in the
/// proportions 2 : 6 : 2, over 3 servers and 1,000 models.
#[derive(Clone, Copy)]
enum Event {
    Connect(u64),
    Activity(u64),
    Disconnect(u64),
}

fn events() -> Vec<Event> {
    // Each window of ten events opens two connections, pings the open ones
    // and closes the two oldest, so the table holds a steady population.
    let mut out = Vec::with_capacity(EVENTS as usize);
    let (mut next, mut oldest) = (0u64, 0u64);
    while (out.len() as u64) < EVENTS {
        out.push(Event::Connect(next));
        out.push(Event::Connect(next + 1));
        next += 2;
        for k in 0..6 {
            out.push(Event::Activity(oldest + (k % (next - oldest))));
        }
        if next - oldest > 200_000 {
            out.push(Event::Disconnect(oldest));
            out.push(Event::Disconnect(oldest + 1));
            oldest += 2;
        } else {
            out.push(Event::Activity(oldest));
            out.push(Event::Activity(oldest + 1));
        }
    }
    out
}

struct Names {
    servers: Vec<MachineTag>,
    models: Vec<ModelUuid>,
    agents: Vec<AgentTag>,
}

impl Names {
    fn new() -> Self {
        Names {
            servers: (0..3)
                .map(|n| format!("machine-{n}").parse().unwrap())
                .collect(),
            models: (0..1_000).map(ModelUuid::from_u128).collect(),
            agents: (0..100)
                .map(|n| format!("unit-app-{n}").parse().unwrap())
                .collect(),
        }
    }
    fn server(&self, id: u64) -> &MachineTag {
        &self.servers[(id % 3) as usize]
    }
    fn model(&self, id: u64) -> &ModelUuid {
        &self.models[((id / 3) % 1_000) as usize]
    }
    fn agent(&self, id: u64) -> &AgentTag {
        &self.agents[((id / 3_000) % 100) as usize]
    }
}

fn recorder_rate(events: &[Event], names: &Names) -> f64 {
    let mut recorder = Recorder::new(Arc::new(SystemClock));
    recorder.enable();
    let began = Instant::now();
    for event in events {
        match *event {
            Event::Connect(id) => recorder.connect(
                names.server(id),
                names.model(id),
                names.agent(id),
                id,
                false,
                "4.0.1",
            ),
            Event::Activity(id) => recorder.activity(names.server(id), id),
            Event::Disconnect(id) => recorder.disconnect(names.server(id), id),
        }
    }
    let elapsed = began.elapsed();
    std::hint::black_box(recorder.connections().count());
    events.len() as f64 / elapsed.as_secs_f64()
}

/// Sends every event through the handle from this (host) thread while the
/// tree runs on its own, spread over `threads` arbiters; a refused event is
/// sent again once the router has drained some of its mailbox.
fn handle_rate(events: &[Event], names: &Names, threads: usize) -> (f64, u64, usize) {
    let (tx, rx) = std::sync::mpsc::channel();
    let system = std::thread::spawn(move || {
        let system = actix::System::new();
        system.block_on(async move {
            let sim = Sim::new(SimConfig::default()).unwrap();
            let arbiters = Arbiters::start(threads);
            let muster = Muster::start_with(
                &MusterConfig::default(),
                Backends::sim(&sim, Arc::new(SystemClock)),
                Extensions::new().spread_over(arbiters.clone()),
                Logger::root(Discard, o!()),
                &mut Registry::default(),
            )
            .unwrap();
            muster.presence().enable().await.unwrap();
            tx.send(muster.clone()).unwrap();
            muster.wait().await.unwrap();
            arbiters.stop();
        });
    });
    let muster = rx.recv().unwrap();
    let presence = muster.presence().clone();
    let began = Instant::now();
    // One task sends every event, as a host's connection handlers would
    // from their own runtime; a refused event waits for the router.
    let retries = futures::executor::block_on(async {
        let mut retries = 0u64;
        for event in events {
            loop {
                let sent = match *event {
                    Event::Connect(id) => {
                        presence
                            .connect(
                                names.server(id),
                                names.model(id),
                                names.agent(id),
                                id,
                                false,
                                "4.0.1",
                            )
                            .await
                    }
                    Event::Activity(id) => presence.activity(names.server(id), id).await,
                    Event::Disconnect(id) => presence.disconnect(names.server(id), id).await,
                };
                match sent {
                    Ok(()) => break,
                    Err(SendError::Overloaded { .. }) => {
                        retries += 1;
                        std::thread::yield_now();
                    }
                    Err(other) => panic!("{other}"),
                }
            }
        }
        retries
    });
    // The answer comes behind every event, so it marks their end.
    let count = futures::executor::block_on(presence.connections())
        .unwrap()
        .count();
    let elapsed = began.elapsed();
    muster.shutdown();
    system.join().unwrap();
    (events.len() as f64 / elapsed.as_secs_f64(), retries, count)
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

/// CPU time (user + system) this process has used.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks_per_second = 100;
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / ticks_per_second)
}

fn fast_sim() -> SimConfig {
    SimConfig {
        pending_for: Duration::from_secs(1),
        allocating_for: Duration::from_secs(1),
        address_delay: Duration::from_secs(1),
        agent_start_delay: Duration::from_secs(1),
        ..SimConfig::default()
    }
}

/// The tree over a simulated cloud of 10,000 provisioned machines that boot
/// in a few seconds; call it inside an actix system.
fn machine_tree() -> (Sim, Muster) {
    let sim = Sim::new(fast_sim()).unwrap();
    for _ in 0..MACHINES {
        sim.add_provisioned_machine();
    }
    let muster = Muster::start(
        &MusterConfig::default(),
        Backends::sim(&sim, Arc::new(SystemClock)),
        Logger::root(Discard, o!()),
        &mut Registry::default(),
    )
    .unwrap();
    (sim, muster)
}

/// 10,000 pollers on the real clock: memory once settled, and idle CPU.
fn idle_tree() -> (u64, u64, Duration, Duration, usize) {
    let before = rss_bytes();
    actix::System::new().block_on(async {
        let (_sim, muster) = machine_tree();
        let deadline = Instant::now() + Duration::from_secs(120);
        let long = loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let states = muster.machines().machines().await.unwrap();
            let long = states
                .iter()
                .filter(|s| s.phase == Some(Phase::Long))
                .count();
            if long == MACHINES || Instant::now() > deadline {
                break long;
            }
        };
        let settled = rss_bytes();
        let (cpu, wall) = (cpu_time(), Instant::now());
        tokio::time::sleep(Duration::from_secs(20)).await;
        let idle_cpu = cpu_time() - cpu;
        let idle_wall = wall.elapsed();
        muster.shutdown();
        let _ = muster.wait().await;
        (before, settled, idle_cpu, idle_wall, long)
    })
}

/// Polls made so far, over every machine.
async fn total_polls(muster: &Muster) -> u64 {
    let machines = muster.machines().machines().await.unwrap();
    machines.iter().map(|s| s.polls).sum()
}

/// An hour of long polls for 10,000 settled machines, on a paused clock.
fn calls_per_hour() -> (u64, u64, u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    actix::System::with_tokio_rt(|| runtime).block_on(async {
        let (sim, muster) = machine_tree();
        tokio::time::sleep(Duration::from_secs(30 * 60)).await;
        let before = total_polls(&muster).await;
        sim.reset_counters();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        let after = total_polls(&muster).await;
        let counters = sim.counters();
        muster.shutdown();
        let _ = muster.wait().await;
        (
            counters.instances.calls + counters.network_interfaces.calls,
            counters.instances.calls,
            after - before,
        )
    })
}

/// `--threads N`: the threads the tree spreads over for the second presence
/// run (the cores available by default).
fn threads() -> usize {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--threads" {
            return args
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|n| *n >= 1)
                .expect("--threads wants a number of threads from 1");
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() {
    let threads = threads();
    // The tree first, so that its resident memory is not mixed with what the
    // presence load leaves behind in the allocator.
    let (before, settled, idle_cpu, idle_wall, long) = idle_tree();
    println!("{MACHINES} machines, one poller actor each ({long} in the long phase, real clock):");
    println!(
        "  resident memory: {:.1} MiB for the whole process ({:.1} MiB before the tree started)",
        settled as f64 / (1 << 20) as f64,
        before as f64 / (1 << 20) as f64
    );
    println!(
        "  idle CPU: {} ms over {:.0?} ({:.2}% of one core; the kernel counts in 10 ms ticks)",
        idle_cpu.as_millis(),
        idle_wall,
        100.0 * idle_cpu.as_secs_f64() / idle_wall.as_secs_f64()
    );

    let (calls, instance_calls, polls) = calls_per_hour();
    println!("an hour of long polls for {MACHINES} machines (paused clock):");
    println!(
        "  {polls} polls cost {calls} provider calls ({instance_calls} instances + {} interfaces); one call per machine per poll would be {}, {:.0}x more",
        calls - instance_calls,
        2 * polls,
        (2 * polls) as f64 / calls as f64
    );

    let names = Names::new();
    let events = events();
    let (connects, activities, disconnects) =
        events.iter().fold((0, 0, 0), |(c, a, d), e| match e {
            Event::Connect(_) => (c + 1, a, d),
            Event::Activity(_) => (c, a + 1, d),
            Event::Disconnect(_) => (c, a, d + 1),
        });
    println!(
        "presence load: {} events ({connects} connect, {activities} activity, {disconnects} disconnect), 3 servers",
        events.len()
    );
    let direct = recorder_rate(&events, &names);
    let (through, retries, count) = handle_rate(&events, &names, 1);
    println!(
        "  core Recorder, called directly : {:>10.0} events/s",
        direct
    );
    println!(
        "  through the handle and actors  : {:>10.0} events/s ({:.2}x the Recorder's time per event; {retries} refusals retried; {count} connections held)",
        through,
        direct / through
    );
    if threads > 1 {
        let (spread, retries, count) = handle_rate(&events, &names, threads);
        println!(
            "  on {threads} threads               : {:>10.0} events/s ({:.2}x one thread's; {retries} refusals retried; {count} connections held)",
            spread,
            spread / through
        );
    }
}
