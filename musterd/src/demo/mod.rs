//! `musterd demo`: the whole tree on the embedded simulated cloud, with a
//! scenario that shows everything working.
//!
//! The scenario, in world time (divided by the speed in real time):
//! - four simulated models: the controller model, alone on its cloud
//!   account, and three workload models sharing one account, whose polls
//!   share that account's gateway;
//! - three API servers, `machine-0` to `machine-2` of the controller
//!   model, each with its HA controller agent;
//! - over the first minute, the machines are added to the workload models
//!   in turn and provisioned, and the agents (machine agents and unit
//!   agents, spread over the three workload models and the three servers)
//!   connect;
//! - every second some agents ping, a few leave and others (re)connect,
//!   and now and then a machine dies and a new one replaces it;
//! - at 1m30s the link to `machine-1` drops: its agents are missing; at
//!   2m it comes back and sends its snapshot, and they are alive again.
//!   This repeats every three minutes;
//! - all along the cloud fails, throttles and leaves instances out of
//!   some answers, at low rates;
//! - the agents' door is open as `machine-0`: real agents (`musterd
//!   swarm`, say) connect there and are counted with the scenario's.
//!
//! Speed divides every duration of the world: the scenario's timings, the
//! simulated cloud's boot delays and faults' waits, the poll schedule, the
//! restart delays and the gateway's pacing (whose rate it multiplies).

mod options;
mod summary;
mod world;

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use futures::Stream;
use muster::sim::Sim;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use slog::{Logger, info, warn};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};

use crate::{DaemonError, Ending, Hosted};
use muster_actors::host::Muster;
use muster_door::ConnectionIds;

pub use options::{
    AGENTS, DemoOptions, MACHINES, SPEEDS, demo_models, parse_agents, parse_machines, parse_speed,
};
pub use summary::Summary;
use world::World;

/// What a query value keeps as it is: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The scenario's clock: world time from real time and the speed.
struct Timeline {
    start: Instant,
    speed: f64,
}

impl Timeline {
    fn world(&self) -> Duration {
        Duration::from_secs_f64(self.start.elapsed().as_secs_f64() * self.speed)
    }

    fn real(&self, world: Duration) -> Instant {
        self.start + Duration::from_secs_f64(world.as_secs_f64() / self.speed)
    }
}

const OUTAGE_AT: u64 = 90;
const OUTAGE_FOR: u64 = 30;
const OUTAGE_EVERY: u64 = 180;
const RAMP: u64 = 60;

/// The simulated models of the demo: the controller model's, then the
/// workload models'.
struct DemoSims {
    controller: Sim,
    workloads: Vec<Sim>,
}

/// Plays the scenario, one world second per step, until dropped.
async fn scenario(
    options: DemoOptions,
    muster: Muster,
    sims: DemoSims,
    ids: ConnectionIds,
    logger: Logger,
    events: tokio::sync::mpsc::UnboundedSender<String>,
    timeline: Timeline,
) {
    let mut world = World::new(&options, ids);
    let per_second = |total: usize| total.div_ceil(RAMP as usize).max(1);
    let mut added = 0usize;
    let mut next_agent = 0usize;
    let mut outage = false;
    let mut rejoin: VecDeque<(u64, usize)> = VecDeque::new();
    for second in 0u64.. {
        sleep_until(timeline.real(Duration::from_secs(second))).await;
        // The machines arrive over the first minute, and are provisioned:
        // the API servers in the controller model, the rest in the
        // workload models in turn.
        let target = (per_second(options.machines) * (second as usize + 1)).min(options.machines);
        while added < target {
            match added {
                0..3 => sims.controller.add_provisioned_machine(),
                n => sims.workloads[n % sims.workloads.len()].add_provisioned_machine(),
            };
            added += 1;
        }
        // So do the agents; after that, some leave and others come.
        let target = (per_second(options.agents) * (second as usize + 1)).min(options.agents);
        while next_agent < target {
            world.connect(&muster, next_agent).await;
            next_agent += 1;
        }
        let n = world.agents.len();
        if second >= RAMP {
            // Agents that left come back a little later.
            while rejoin.front().is_some_and(|(due, _)| *due <= second) {
                if let Some((_, i)) = rejoin.pop_front() {
                    world.connect(&muster, i).await;
                }
            }
            for _ in 0..(n / 200).max(1) {
                let i = world.rng.random_range(3..n);
                if world.agents[i].connection.is_some() {
                    world.disconnect(&muster, i).await;
                    if world.agents[i].connection.is_none() {
                        rejoin.push_back((second + world.rng.random_range(5..20), i));
                    }
                }
            }
            // A machine of a workload model dies now and then, and a new
            // one replaces it.
            if second % 20 == 0 {
                let n = world.rng.random_range(0..sims.workloads.len());
                let sim = &sims.workloads[n];
                let tags = sim.machine_tags();
                if !tags.is_empty() {
                    let tag = &tags[world.rng.random_range(0..tags.len())];
                    let _ = sim.set_life(tag, muster::model::Life::Dead);
                    sim.add_provisioned_machine();
                    let _ = events.send(format!("{tag} of workload-{} died, replaced", n + 1));
                }
            }
        }
        for _ in 0..n / 10 {
            let i = world.rng.random_range(0..n);
            world.ping(&muster, i).await;
        }
        // An API server's link drops, and later comes back with its
        // snapshot.
        let cycle = second % OUTAGE_EVERY;
        let server = 1;
        if cycle == OUTAGE_AT && second >= OUTAGE_AT {
            let _ = muster.presence().server_down(&world.servers[server]).await;
            world.down = Some(server);
            outage = true;
            warn!(logger, "demo: API server link down"; "server" => %world.servers[server]);
            let _ = events.send(format!(
                "{} down: its agents are missing",
                world.servers[server]
            ));
        }
        if cycle == OUTAGE_AT + OUTAGE_FOR && std::mem::take(&mut outage) {
            let snapshot = world.snapshot(server);
            let len = snapshot.len();
            world.down = None;
            match muster
                .presence()
                .update_server(&world.servers[server], snapshot)
                .await
            {
                Ok(()) => {
                    info!(logger, "demo: API server back, snapshot applied"; "server" => %world.servers[server], "connections" => len);
                    let _ = events.send(format!(
                        "{} back: snapshot of {len} connections applied",
                        world.servers[server]
                    ));
                }
                Err(e) => warn!(logger, "demo: snapshot refused"; "error" => %e),
            }
        }
    }
}

/// How long the `final:` line may wait for the tree's counts.
const FINAL_WAIT: Duration = Duration::from_secs(2);

/// Runs the demo until a signal comes from `signals`, the duration is over
/// or the tree stops on its own, printing a summary line every second to
/// `out`, the first line saying where the dashboard is. Call it on an actix
/// system.
pub async fn run(
    options: DemoOptions,
    logger: Logger,
    mut out: impl Write,
    mut signals: impl Stream<Item = &'static str> + Unpin,
) -> Result<(), DaemonError> {
    options.validate()?;
    let config = options.config();
    let hosted = Hosted::start(&config, &logger).await?;
    let muster = hosted.muster.clone();
    let [controller, workloads @ ..] = demo_models(options.seed).map(|uuid| {
        hosted
            .sims
            .iter()
            .find(|(model, _)| *model == uuid)
            .map(|(_, sim)| sim.clone())
            .expect("the demo's models are simulated")
    });
    let sims = DemoSims {
        controller,
        workloads: workloads.to_vec(),
    };
    let start = Instant::now();
    let world_clock = Timeline {
        start,
        speed: options.speed,
    };
    let work = async {
        let _ = muster.presence().enable().await;
        let token = options
            .token
            .as_deref()
            .map(|t| format!("?token={}", utf8_percent_encode(t, QUERY_VALUE)))
            .unwrap_or_default();
        hosted.print_addresses(&mut out, &token);
        let _ = writeln!(
            out,
            "demo: {} machines, {} agents, 3 API servers, 4 models, seed {}, speed {}x; one summary a second (add --log-level warning for the tree's logs)",
            options.machines, options.agents, options.seed, options.speed
        );
        let _ = out.flush();
        let (events, mut event) = tokio::sync::mpsc::unbounded_channel();
        let timeline = Timeline {
            start,
            speed: options.speed,
        };
        let play = scenario(
            options.clone(),
            muster.clone(),
            sims,
            hosted.ids.clone(),
            logger.clone(),
            events,
            timeline,
        );
        let summaries = async {
            let mut tick = interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let summary = Summary::read(&muster).await;
                let _ = writeln!(out, "{}", summary.line(world_clock.world()));
                while let Ok(text) = event.try_recv() {
                    let _ = writeln!(out, "  event: {text}");
                }
                let _ = out.flush();
            }
        };
        let over = async {
            match options.duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = play => {}
            () = summaries => {}
            () = over => {}
        }
        "duration over"
    };
    let ending = hosted.serve_until(&mut signals, work).await;
    if !matches!(ending, Ending::Tree(_))
        && let Ok(summary) = tokio::time::timeout(FINAL_WAIT, Summary::read(&muster)).await
    {
        let _ = writeln!(out, "final: {}", summary.line(world_clock.world()));
        let _ = out.flush();
    }
    hosted.finish(ending, &logger, &mut signals).await
}

#[cfg(test)]
mod tests;
