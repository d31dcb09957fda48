//! Presence at scale: 1,000,000 connections over 3 servers and 10,000 models
//! of 100 agents, against the linear reference model at 100,000 connections.
//!
//! Memory is measured with a counting global allocator (live heap bytes
//! requested) and with the process RSS, each before and after building the
//! recorder; both are printed per connection.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use muster::clock::{Clock, SystemClock};
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{Recorder, Status, Value};

#[allow(
    dead_code,
    reason = "the benchmark uses only part of the reference model"
)]
#[path = "../tests/support/reference.rs"]
mod reference;

#[path = "support/counting.rs"]
mod counting;

fn rss_bytes() -> isize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|kb| {
                    kb.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<isize>()
                        .ok()
                })
        })
        .map_or(0, |kb| kb * 1024)
}

const SERVERS: u64 = 3;
const AGENTS_PER_MODEL: u64 = 100;
const USER_DATA: &str = "4.0.1";

/// Agent `k` of a model: machines, then units of ten applications.
fn agent_text(k: u64) -> String {
    if k < 20 {
        format!("machine-{k}")
    } else {
        format!("unit-app{}-{}", (k - 20) / 10, (k - 20) % 10)
    }
}

/// splitmix64: a fixed-seed generator, so every run asks the same questions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The shape of one fixture: connection `i` belongs to model `i / 100`,
/// agent `i % 100`, server `i % 3`, and has id `i`.
struct Fixture {
    connections: u64,
    servers: Vec<MachineTag>,
    models: Vec<ModelUuid>,
    /// The 100 agent tags, parsed once, for the operations being measured.
    agents: Vec<AgentTag>,
}

impl Fixture {
    fn new(connections: u64) -> Self {
        Fixture {
            connections,
            servers: (0..SERVERS)
                .map(|n| format!("machine-{n}").parse().unwrap())
                .collect(),
            models: (0..connections / AGENTS_PER_MODEL)
                .map(|m| ModelUuid::from_u128(m as u128))
                .collect(),
            agents: (0..AGENTS_PER_MODEL)
                .map(|k| agent_text(k).parse().unwrap())
                .collect(),
        }
    }

    fn server(&self, i: u64) -> &MachineTag {
        &self.servers[(i % SERVERS) as usize]
    }

    fn model(&self, i: u64) -> &ModelUuid {
        &self.models[(i / AGENTS_PER_MODEL) as usize % self.models.len()]
    }

    fn agent(&self, i: u64) -> &AgentTag {
        &self.agents[(i % AGENTS_PER_MODEL) as usize]
    }

    /// A recorder holding every connection. Each agent tag is parsed afresh,
    /// as a login would, so its text is counted once per connection.
    fn recorder(&self) -> Recorder {
        let mut recorder = Recorder::new(Arc::new(SystemClock));
        recorder.enable();
        for i in 0..self.connections {
            let agent: AgentTag = agent_text(i % AGENTS_PER_MODEL).parse().unwrap();
            recorder.connect(self.server(i), self.model(i), &agent, i, false, USER_DATA);
        }
        recorder
    }

    fn reference(&self) -> reference::Recorder {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let now = clock.now();
        let values = (0..self.connections)
            .map(|i| Value {
                model: *self.model(i),
                server: self.server(i).clone(),
                agent: agent_text(i % AGENTS_PER_MODEL).parse().unwrap(),
                controller_agent: false,
                connection_id: i,
                status: Status::Alive,
                user_data: USER_DATA.to_owned(),
                last_seen: now,
            })
            .collect();
        reference::Recorder::with_values(clock, values)
    }
}

/// Builds a value while measuring the heap and RSS it keeps.
fn measured<T>(label: &str, connections: u64, build: impl FnOnce() -> T) -> T {
    let (heap_before, rss_before) = (counting::live(), rss_bytes());
    let built = build();
    let (heap_after, rss_after) = (counting::live(), rss_bytes());
    let per = |bytes: isize| bytes as f64 / connections as f64;
    println!(
        "memory {label}: {:.1} bytes/connection live heap (counting allocator), \
         {:.1} bytes/connection RSS growth, over {connections} connections",
        per(heap_after - heap_before),
        per(rss_after - rss_before),
    );
    built
}

/// The operations measured on both recorders.
trait Presence {
    fn connect(&mut self, f: &Fixture, i: u64, model: &ModelUuid, agent: &AgentTag);
    fn disconnect(&mut self, f: &Fixture, i: u64);
    fn activity(&mut self, f: &Fixture, i: u64);
    fn agent_status(&self, model: &ModelUuid, agent: &AgentTag) -> Status;
}

impl Presence for Recorder {
    fn connect(&mut self, f: &Fixture, i: u64, model: &ModelUuid, agent: &AgentTag) {
        Recorder::connect(self, f.server(i), model, agent, i, false, USER_DATA);
    }
    fn disconnect(&mut self, f: &Fixture, i: u64) {
        Recorder::disconnect(self, f.server(i), i);
    }
    fn activity(&mut self, f: &Fixture, i: u64) {
        Recorder::activity(self, f.server(i), i);
    }
    fn agent_status(&self, model: &ModelUuid, agent: &AgentTag) -> Status {
        self.connections()
            .for_model(model)
            .agent_status(agent)
            .unwrap()
    }
}

impl Presence for reference::Recorder {
    fn connect(&mut self, f: &Fixture, i: u64, model: &ModelUuid, agent: &AgentTag) {
        reference::Recorder::connect(self, f.server(i), model, agent, i, false, USER_DATA);
    }
    fn disconnect(&mut self, f: &Fixture, i: u64) {
        reference::Recorder::disconnect(self, f.server(i), i);
    }
    fn activity(&mut self, f: &Fixture, i: u64) {
        reference::Recorder::activity(self, f.server(i), i);
    }
    fn agent_status(&self, model: &ModelUuid, agent: &AgentTag) -> Status {
        self.connections()
            .for_model(model)
            .agent_status(agent)
            .unwrap()
    }
}

/// connect, activity, disconnect and a one-model agent status on a recorder
/// holding `f.connections` connections; the size stays constant throughout.
fn operations<P: Presence>(c: &mut Criterion, group: &str, f: &Fixture, recorder: &mut P) {
    let mut g = c.benchmark_group(group);
    let mut rng = Rng(7);
    let n = f.connections;

    // New ids above the fixture's (servers number connections in order), of
    // random existing models; removed again outside the timed part.
    let mut next = n;
    g.bench_function("connect", |b| {
        b.iter_custom(|iters| {
            let first = next;
            let logins: Vec<(&ModelUuid, &AgentTag)> = (0..iters)
                .map(|_| {
                    let i = rng.below(n);
                    (f.model(i), f.agent(i))
                })
                .collect();
            let start = Instant::now();
            for (i, &(model, agent)) in (first..).zip(&logins) {
                recorder.connect(f, i, model, agent);
            }
            let elapsed = start.elapsed();
            for i in first..first + iters {
                recorder.disconnect(f, i);
            }
            next += iters;
            elapsed
        })
    });

    g.bench_function("activity", |b| {
        b.iter(|| recorder.activity(f, black_box(rng.below(n))))
    });

    // Distinct random existing ids (a stride coprime with n walks them all),
    // connected again outside the timed part.
    let stride = 999_983;
    let mut cursor = 0u64;
    g.bench_function("disconnect", |b| {
        b.iter_custom(|iters| {
            let ids: Vec<u64> = (0..iters.min(n))
                .map(|_| {
                    cursor = (cursor + stride) % n;
                    cursor
                })
                .collect();
            let start = Instant::now();
            for &i in &ids {
                recorder.disconnect(f, i);
            }
            let elapsed = start.elapsed();
            for &i in &ids {
                recorder.connect(f, i, f.model(i), f.agent(i));
            }
            elapsed * iters.div_ceil(ids.len() as u64) as u32
        })
    });

    let queries: Vec<(ModelUuid, AgentTag)> = (0..1024)
        .map(|_| {
            let i = rng.below(n);
            (*f.model(i), f.agent(i).clone())
        })
        .collect();
    let mut q = 0;
    g.bench_function("connections().for_model(m).agent_status(a)", |b| {
        b.iter(|| {
            q = (q + 1) % queries.len();
            let (model, agent) = &queries[q];
            assert_eq!(recorder.agent_status(model, agent), Status::Alive);
        })
    });
    g.finish();
}

/// What a mutation costs while a view taken just before it is still alive:
/// the table copies its model map and the one model touched.
fn connect_with_view_alive(c: &mut Criterion, f: &Fixture, recorder: &mut Recorder) {
    let mut g = c.benchmark_group("presence_1m");
    let mut next = f.connections;
    g.bench_function("connect while a view is alive", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                next += 1;
                let view = recorder.connections();
                let start = Instant::now();
                Presence::connect(recorder, f, next, f.model(next), f.agent(next));
                elapsed += start.elapsed();
                drop(view);
            }
            elapsed
        })
    });
    for i in f.connections..=next {
        Presence::disconnect(recorder, f, i);
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    // The reference is built first so that its RSS growth is not hidden by
    // memory the allocator kept from the larger recorder.
    let small = Fixture::new(100_000);
    let mut linear = measured("reference, 100k", small.connections, || small.reference());
    let big = Fixture::new(1_000_000);
    let mut recorder = measured("recorder, 1M", big.connections, || big.recorder());
    assert_eq!(recorder.connections().count(), 1_000_000);
    operations(&mut c, "presence_1m", &big, &mut recorder);
    connect_with_view_alive(&mut c, &big, &mut recorder);
    assert_eq!(recorder.connections().count(), 1_000_000);
    drop(recorder);

    let mut c = c.sample_size(10).measurement_time(Duration::from_secs(2));
    operations(&mut c, "reference_100k", &small, &mut linear);
    assert_eq!(linear.connections().count(), 100_000);

    c.final_summary();
}
