//! Figures of the supervision layer:
//! - a metered `Mailbox` send against a bare actix send to the same actor;
//! - 10,000 dynamic children: time to start them all and live bytes per
//!   child, counted by this binary's global allocator.
//!
//! Run with `cargo bench -p muster-actors --bench supervision`.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use criterion::Criterion;
use muster_actors::{
    ChildSpec, DynamicPolicy, Mailbox, Metrics, RestartConfig, Root, SupervisorRef, SupervisorSpec,
};
use slog::{Logger, o};

/// Counts live heap bytes, so the bench can say what a child costs.
#[path = "../../benches/support/counting.rs"]
mod counting;

static STARTED: AtomicUsize = AtomicUsize::new(0);

struct Sink {
    seen: u64,
}

impl Actor for Sink {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        STARTED.fetch_add(1, Ordering::Relaxed);
    }
}
muster_actors::supervised!(Sink);

#[derive(Message)]
#[rtype(result = "u64")]
struct Ping;

impl Handler<Ping> for Sink {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        self.seen += 1;
        self.seen
    }
}

const BATCH: u64 = 1000;

fn sink(name: &str, mailbox: &Mailbox<Sink>) -> ChildSpec {
    ChildSpec::actor(name, mailbox, |_| Ok(Sink { seen: 0 }))
}

fn logger() -> Logger {
    Logger::root(slog::Discard, o!())
}

/// Sends `iters` messages in batches, waiting for each batch to be handled,
/// so that the mailbox never holds more than a batch.
async fn batches(iters: u64, mut send: impl FnMut(), flush: &Addr<Sink>) -> Duration {
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        for _ in 0..n {
            send();
        }
        flush.send(Ping).await.unwrap();
        left -= n;
    }
    start.elapsed()
}

fn send_overhead(c: &mut Criterion) {
    let sys = actix::System::new();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let mailbox = Mailbox::new(2 * BATCH as usize);
    let root = sys.block_on(async {
        let root = Root::start(
            "root",
            SupervisorSpec::new(RestartConfig::default()).child(sink("sink", &mailbox)),
            logger(),
            metrics,
        )
        .unwrap();
        tokio::task::yield_now().await;
        root
    });
    let addr = mailbox.addr().expect("the sink is running");

    let mut group = c.benchmark_group("send");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("bare actix do_send", |b| {
        b.iter_custom(|iters| sys.block_on(batches(iters, || addr.do_send(Ping), &addr)))
    });
    group.bench_function("metered mailbox do_send", |b| {
        b.iter_custom(|iters| {
            sys.block_on(batches(iters, || mailbox.do_send(Ping).unwrap(), &addr))
        })
    });
    group.bench_function("bare actix send round trip", |b| {
        b.iter_custom(|iters| {
            sys.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(addr.send(Ping).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("metered mailbox send round trip", |b| {
        b.iter_custom(|iters| {
            sys.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(mailbox.send(Ping).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    // Criterion runs the two one after the other; on a shared machine the
    // load changes in between. Alternating short rounds of each and taking
    // medians gives a steadier difference.
    let rounds = 400;
    let per_round = 2 * BATCH;
    let mut bare = Vec::with_capacity(rounds);
    let mut metered = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let b = sys.block_on(batches(per_round, || addr.do_send(Ping), &addr));
        let m = sys.block_on(batches(per_round, || mailbox.do_send(Ping).unwrap(), &addr));
        bare.push(b.as_secs_f64() * 1e9 / per_round as f64);
        metered.push(m.as_secs_f64() * 1e9 / per_round as f64);
    }
    let mut diffs: Vec<f64> = metered.iter().zip(&bare).map(|(m, b)| m - b).collect();
    let (b, m, d) = (median(&mut bare), median(&mut metered), median(&mut diffs));
    println!(
        "do_send, alternating rounds of {per_round} (medians of {rounds}): bare {b:.1} ns, \
         metered {m:.1} ns per message; overhead {d:.1} ns, ratio {:.2}",
        m / b
    );
    let per_round = 500u32;
    let (mut bare, mut metered) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (b, m) = sys.block_on(async {
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(addr.send(Ping).await.unwrap());
            }
            let b = start.elapsed();
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(mailbox.send(Ping).await.unwrap());
            }
            (b, start.elapsed())
        });
        bare.push(b.as_secs_f64() * 1e9 / f64::from(per_round));
        metered.push(m.as_secs_f64() * 1e9 / f64::from(per_round));
    }
    let mut diffs: Vec<f64> = metered.iter().zip(&bare).map(|(m, b)| m - b).collect();
    let (b, m, d) = (median(&mut bare), median(&mut metered), median(&mut diffs));
    println!(
        "send round trip, alternating rounds of {per_round} (medians of {rounds}): bare {b:.1} ns, \
         metered {m:.1} ns per message; overhead {d:.1} ns, ratio {:.2}",
        m / b
    );
    sys.block_on(async move {
        root.shutdown();
        root.wait().await.unwrap();
    });
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ten_thousand_children() {
    const N: usize = 10_000;
    let sys = actix::System::new();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    sys.block_on(async move {
        let pollers = SupervisorRef::new();
        let spec =
            SupervisorSpec::new(RestartConfig::default()).dynamic(DynamicPolicy::new("pollers"));
        let root = Root::start(
            "root",
            SupervisorSpec::new(RestartConfig::default())
                .child(ChildSpec::supervisor("pollers", spec, &pollers).unwrap()),
            logger(),
            metrics,
        )
        .unwrap();
        while !pollers.mailbox().is_running() {
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        STARTED.store(0, Ordering::Relaxed);
        let names: Vec<String> = (0..N).map(|i| format!("machine-{i}")).collect();
        let before = counting::live();
        let start = Instant::now();
        let mut mailboxes = Vec::with_capacity(N);
        let mut specs = Vec::with_capacity(N);
        for name in &names {
            let mailbox = Mailbox::new(16);
            specs.push(sink(name, &mailbox));
            mailboxes.push(mailbox);
        }
        let specs_made = counting::live();
        pollers.add_all(specs).await.unwrap();
        while STARTED.load(Ordering::Relaxed) < N {
            tokio::task::yield_now().await;
        }
        let took = start.elapsed();
        let after = counting::live();
        // The host's Vec of mailboxes is the host's, not the children's.
        let host_vec = mailboxes.capacity() * std::mem::size_of::<Mailbox<Sink>>();
        let per_child = (after - before - host_vec as isize) as f64 / N as f64;
        println!(
            "10,000 dynamic children: all started in {:.1} ms ({:.2} µs each); \
             {:.0} live heap bytes per child ({:.2} KiB)",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e6 / N as f64,
            per_child,
            per_child / 1024.0
        );
        println!(
            "  of which the child's mailbox and spec, before it was added: {} bytes",
            (specs_made - before - host_vec as isize) / N as isize
        );
        black_box(&mailboxes);
        let start = Instant::now();
        pollers.remove_all(names).await.unwrap();
        println!(
            "10,000 dynamic children: all removed in {:.1} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
        root.shutdown();
        root.wait().await.unwrap();
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    send_overhead(&mut c);
    c.final_summary();
    ten_thousand_children();
}
