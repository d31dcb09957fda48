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

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use futures::Stream;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{Status, Value};
use muster::sim::{FaultConfig, Sim, SimConfig};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use slog::{Logger, info, warn};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};

use crate::agents::ConnectionIds;
use crate::config::models::{Cloud, ModelConfig};
use crate::config::{DaemonConfig, HttpConfig};
use crate::token::validate_token;
use crate::{DaemonError, Ending, Hosted};
use muster_actors::gateway::GatewayConfig;
use muster_actors::host::Muster;
use muster_actors::supervisor::{ReportOptions, RestartConfig};

/// What a query value keeps as it is: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How the demo is sized and run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The world runs this many times faster than real time.
    pub speed: f64,
    /// Machines provisioned over the first minute.
    pub machines: usize,
    /// Agents that connect.
    pub agents: usize,
    /// Seed of the cloud's faults and of the scenario's choices.
    pub seed: u64,
    /// Where the dashboard listens.
    pub listen: SocketAddr,
    /// Where the agents' door listens.
    pub agents_listen: SocketAddr,
    /// The bearer token, if any.
    pub token: Option<String>,
    /// Stop after this long in real time; `None` runs until told to stop.
    pub duration: Option<Duration>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            speed: 1.0,
            machines: 300,
            agents: 1000,
            seed: 1,
            listen: ([127, 0, 0, 1], 9180).into(),
            agents_listen: ([127, 0, 0, 1], 17070).into(),
            token: None,
            duration: None,
        }
    }
}

/// `duration / speed`, kept at 1 ms or more so that nothing spins, and zero
/// kept zero.
fn scaled(duration: Duration, speed: f64) -> Duration {
    if duration.is_zero() {
        return duration;
    }
    Duration::from_secs_f64(duration.as_secs_f64() / speed).max(Duration::from_millis(1))
}

fn scaled_restart(config: &RestartConfig, speed: f64, seed: u64) -> RestartConfig {
    RestartConfig {
        error_delay: scaled(config.error_delay, speed),
        bounce_delay: scaled(config.bounce_delay, speed),
        backoff_reset_time: scaled(config.backoff_reset_time, speed),
        max_delay: scaled(config.max_delay, speed),
        restart_window: scaled(config.restart_window, speed),
        jitter_seed: Some(seed),
        ..config.clone()
    }
}

/// The demo's models, from its seed: the controller model, then the three
/// workload models.
pub fn demo_models(seed: u64) -> [ModelUuid; 4] {
    let mut rng = StdRng::seed_from_u64(seed);
    std::array::from_fn(|_| ModelUuid::from_u128(rng.random()))
}

/// The region of the controller model's account.
const CONTROLLER_REGION: &str = "controller";

/// The region of the account the workload models share.
const WORKLOAD_REGION: &str = "workloads";

/// The slowest and the fastest `--speed`: slower, the world's longest
/// waits would outgrow what the tree takes; faster, every wait of the world
/// would be below the 1 ms floor.
pub const SPEEDS: RangeInclusive<f64> = 0.01..=1000.0;

/// The fewest and the most `--machines`: the three API servers at least.
pub const MACHINES: RangeInclusive<usize> = 3..=100_000;

/// The fewest and the most `--agents`: the three controller agents at
/// least.
pub const AGENTS: RangeInclusive<usize> = 3..=1_000_000;

fn within<T: PartialOrd + std::fmt::Display + std::fmt::Debug>(
    value: T,
    range: &RangeInclusive<T>,
) -> Result<T, String> {
    // NaN is in no range.
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            // Debug writes 1e300 short, where Display writes every digit.
            "must be from {} to {}, got {value:?}",
            range.start(),
            range.end()
        ))
    }
}

/// Reads `--speed`: a number in [`SPEEDS`].
pub fn parse_speed(text: &str) -> Result<f64, String> {
    let speed: f64 = text.trim().parse().map_err(|_| {
        format!(
            "not a number; must be from {} to {}",
            SPEEDS.start(),
            SPEEDS.end()
        )
    })?;
    within(speed, &SPEEDS)
}

fn parse_count(text: &str, range: &RangeInclusive<usize>) -> Result<usize, String> {
    let count: usize = text.trim().parse().map_err(|_| {
        format!(
            "not a whole number; must be from {} to {}",
            range.start(),
            range.end()
        )
    })?;
    within(count, range)
}

/// Reads `--machines`: a whole number in [`MACHINES`].
pub fn parse_machines(text: &str) -> Result<usize, String> {
    parse_count(text, &MACHINES)
}

/// Reads `--agents`: a whole number in [`AGENTS`].
pub fn parse_agents(text: &str) -> Result<usize, String> {
    parse_count(text, &AGENTS)
}

impl DemoOptions {
    /// Checks the options, as the command line checks them; the error
    /// names the flag.
    pub fn validate(&self) -> Result<(), DaemonError> {
        let flag = |flag: &str, reason: String| DaemonError::Option(format!("{flag}: {reason}"));
        within(self.speed, &SPEEDS).map_err(|r| flag("--speed", r))?;
        within(self.machines, &MACHINES).map_err(|r| flag("--machines", r))?;
        within(self.agents, &AGENTS).map_err(|r| flag("--agents", r))?;
        if let Some(token) = &self.token {
            validate_token(token).map_err(|r| flag("--token", r))?;
        }
        if !self.agents_listen.ip().is_loopback() {
            return Err(flag(
                "--agents-listen",
                format!(
                    "the demo's door has neither token nor TLS, so it stays on a loopback \
                     address, got {}",
                    self.agents_listen.ip()
                ),
            ));
        }
        Ok(())
    }

    /// The daemon config of the demo: defaults with every duration of the
    /// world divided by the speed, and a cloud with a few faults.
    pub fn config(&self) -> DaemonConfig {
        let s = self.speed;
        let mut config = DaemonConfig::default();
        config.supervision = scaled_restart(&config.supervision, s, self.seed);
        config.presence.restart = scaled_restart(&config.presence.restart, s, self.seed);
        config.machines.restart = scaled_restart(&config.machines.restart, s, self.seed);
        let poll = &mut config.machines.poll;
        poll.short_poll = scaled(poll.short_poll, s);
        poll.short_poll_cap = scaled(poll.short_poll_cap, s);
        poll.long_poll = scaled(poll.long_poll, s);
        let g = GatewayConfig::default();
        config.gateway = GatewayConfig {
            window: scaled(g.window, s),
            calls_per_second: g.calls_per_second * s,
            call_timeout: scaled(g.call_timeout, s),
            throttle_backoff: scaled(g.throttle_backoff, s),
            throttle_backoff_cap: scaled(g.throttle_backoff_cap, s),
            ..g
        };
        let sim = SimConfig::default();
        config.backend.sim = SimConfig {
            seed: self.seed,
            pending_for: scaled(sim.pending_for, s),
            allocating_for: scaled(sim.allocating_for, s),
            address_delay: scaled(sim.address_delay, s),
            agent_start_delay: scaled(sim.agent_start_delay, s),
            networking: true,
            faults: FaultConfig {
                error_rate: 0.02,
                throttle_rate: 0.02,
                retry_after: Some(scaled(Duration::from_secs(2), s)),
                partial_rate: 0.02,
                model_error_rate: 0.002,
                latency: scaled(Duration::from_millis(50), s),
                // Below the gateway's pace, so bursts of polls meet the
                // cloud's own rate limit now and then.
                max_calls_per_second: Some((4.0 * s).ceil().max(1.0) as u32),
            },
        };
        config.http = HttpConfig {
            listen: self.listen,
            token: self.token.clone(),
        };
        config.agents.listen = self.agents_listen;
        // The demo's machines last as long as it does.
        config.store.path = crate::config::store::IN_MEMORY.into();
        config.models = demo_models(self.seed)
            .into_iter()
            .enumerate()
            .map(|(n, uuid)| ModelConfig {
                uuid: Some(uuid),
                name: Some(match n {
                    0 => "controller".to_owned(),
                    n => format!("workload-{n}"),
                }),
                cloud: Some(Cloud::Sim),
                region: if n == 0 {
                    CONTROLLER_REGION
                } else {
                    WORKLOAD_REGION
                }
                .to_owned(),
                endpoint: None,
                credential_file: None,
            })
            .collect();
        config
    }
}

/// One agent of the scenario and where it is connected.
struct DemoAgent {
    agent: AgentTag,
    model: ModelUuid,
    controller: bool,
    /// The server and connection id while connected.
    connection: Option<(usize, u64)>,
    /// The server it prefers.
    home: usize,
}

/// The scenario's own record of the world, which is also what each API
/// server would report of its connections.
struct World {
    rng: StdRng,
    servers: Vec<MachineTag>,
    agents: Vec<DemoAgent>,
    ids: ConnectionIds,
    /// The index of the server whose link is down, if any.
    down: Option<usize>,
}

impl World {
    fn new(options: &DemoOptions, ids: ConnectionIds) -> World {
        let mut rng = StdRng::seed_from_u64(options.seed);
        let servers: Vec<MachineTag> = (0..3)
            .map(|n| format!("machine-{n}").parse().expect("a machine tag"))
            .collect();
        let [controller_model, models @ ..] = demo_models(options.seed);
        let apps = ["wordpress", "mysql", "redis", "haproxy", "postgresql"];
        let mut agents = Vec::with_capacity(options.agents);
        for (n, server) in servers.iter().enumerate() {
            agents.push(DemoAgent {
                agent: AgentTag::Machine(server.clone()),
                model: controller_model,
                controller: true,
                connection: None,
                home: n,
            });
        }
        let mut units = vec![0usize; apps.len()];
        for i in 3..options.agents {
            // Machine agents for the machines there are, then units.
            let agent: AgentTag = if i < options.machines && i % 2 == 1 {
                format!("machine-{i}").parse().expect("an agent tag")
            } else {
                let app = i % apps.len();
                units[app] += 1;
                format!("unit-{}-{}", apps[app], units[app])
                    .parse()
                    .expect("an agent tag")
            };
            agents.push(DemoAgent {
                agent,
                model: models[i % models.len()],
                controller: false,
                connection: None,
                home: rng.random_range(0..3),
            });
        }
        World {
            rng,
            servers,
            agents,
            ids,
            down: None,
        }
    }

    async fn connect(&mut self, muster: &Muster, i: usize) {
        let server = self.agents[i].home;
        if self.down == Some(server) || self.agents[i].connection.is_some() {
            return;
        }
        let id = self.ids.next();
        let a = &mut self.agents[i];
        a.connection = Some((server, id));
        let user_data = if a.controller { "controller" } else { "agent" };
        let _ = muster
            .presence()
            .connect(
                &self.servers[server],
                &a.model,
                &a.agent,
                id,
                a.controller,
                user_data,
            )
            .await;
    }

    async fn disconnect(&mut self, muster: &Muster, i: usize) {
        let Some((server, id)) = self.agents[i].connection else {
            return;
        };
        if self.down == Some(server) || self.agents[i].controller {
            return;
        }
        self.agents[i].connection = None;
        let _ = muster
            .presence()
            .disconnect(&self.servers[server], id)
            .await;
    }

    async fn ping(&mut self, muster: &Muster, i: usize) {
        if let Some((server, id)) = self.agents[i].connection
            && self.down != Some(server)
        {
            let _ = muster.presence().activity(&self.servers[server], id).await;
        }
    }

    /// What `server` reports of its own connections when its link comes
    /// back: every agent it holds, alive.
    fn snapshot(&self, server: usize) -> Vec<Value> {
        let now = std::time::SystemTime::now();
        self.agents
            .iter()
            .filter_map(|a| match a.connection {
                Some((s, id)) if s == server => Some(Value {
                    model: a.model,
                    server: self.servers[server].clone(),
                    agent: a.agent.clone(),
                    controller_agent: a.controller,
                    connection_id: id,
                    status: Status::Alive,
                    user_data: if a.controller { "controller" } else { "agent" }.into(),
                    last_seen: now,
                }),
                _ => None,
            })
            .collect()
    }
}

/// Counts shown by the live summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Machines by poll phase (`short`, `long`, `manual`).
    pub phases: BTreeMap<String, usize>,
    /// Machines whose instance the provider reports running.
    pub running: usize,
    /// Agents by status, over every model; controller agents are left out.
    pub agents: BTreeMap<String, usize>,
    /// Provider calls made.
    pub calls: u64,
    /// Instance ids asked for.
    pub ids: u64,
    /// Failed provider calls.
    pub errors: u64,
    /// Throttled provider calls.
    pub throttles: u64,
    /// Restarts in the whole tree.
    pub restarts: u64,
}

impl Summary {
    /// Reads the counts from the tree.
    pub async fn read(muster: &Muster) -> Summary {
        let mut summary = Summary::default();
        if let Ok(machines) = muster.machines().machines().await {
            for m in &machines {
                let phase = m.phase.map_or("manual".to_owned(), |p| p.to_string());
                *summary.phases.entry(phase).or_default() += 1;
                if m.instance_status
                    .as_ref()
                    .is_some_and(|s| s.status == muster::provider::InstanceStatus::Running)
                {
                    summary.running += 1;
                }
            }
        }
        // The per-model counts, not a walk of every agent: controller
        // agents, whose status never counts, are left out.
        if let Ok(models) = muster.presence().model_counts().await {
            for (status, n) in [
                (Status::Alive, models.iter().map(|m| m.alive).sum::<usize>()),
                (Status::Missing, models.iter().map(|m| m.missing).sum()),
            ] {
                if n > 0 {
                    summary.agents.insert(status.to_string(), n);
                }
            }
        }
        if let Ok(gateway) = muster.gateway().await {
            summary.calls = gateway.calls.values().sum();
            summary.ids = gateway.ids.values().sum();
            summary.errors = gateway.errors.values().sum();
            summary.throttles = gateway.throttles;
        }
        // Pollers folded into counts: their restarts are added up there.
        if let Ok(report) = muster.report_with(ReportOptions::folding_over(0)).await {
            summary.restarts = serde_json::to_value(report)
                .map(|v| restarts(&v))
                .unwrap_or(0);
        }
        summary
    }

    /// One compact line.
    pub fn line(&self, world: Duration) -> String {
        let count = |map: &BTreeMap<String, usize>, key: &str| map.get(key).copied().unwrap_or(0);
        let machines: usize = self.phases.values().sum();
        let agents: usize = self.agents.values().sum();
        format!(
            "t={:>6} machines {machines}: short {} long {} running {} | agents {agents}: alive {} missing {} | provider calls {} ids {} errors {} throttled {} | restarts {}",
            humantime::format_duration(Duration::from_secs(world.as_secs())).to_string(),
            count(&self.phases, "short"),
            count(&self.phases, "long"),
            self.running,
            count(&self.agents, "alive"),
            count(&self.agents, "missing"),
            self.calls,
            self.ids,
            self.errors,
            self.throttles,
            self.restarts,
        )
    }
}

/// The restarts in a serialized report, nested supervisors included.
fn restarts(report: &serde_json::Value) -> u64 {
    let Some(children) = report.get("children").and_then(|c| c.as_array()) else {
        return 0;
    };
    children
        .iter()
        .map(|child| {
            let own: u64 = ["failure", "bounce", "dependency"]
                .iter()
                .filter_map(|k| child.get("restarts")?.get(k)?.as_u64())
                .sum();
            own + child.get("report").map_or(0, restarts)
        })
        .sum::<u64>()
        + report.get("dynamic").map_or(0, |group| {
            ["failure", "bounce", "dependency"]
                .iter()
                .filter_map(|k| group.get("restarts")?.get(k)?.as_u64())
                .sum()
        })
}

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
mod tests {
    use super::*;

    #[test]
    fn restarts_add_up_rows_nested_reports_and_folded_groups() {
        let report = serde_json::json!({
            "children": [
                {"restarts": {"failure": 1, "bounce": 2, "done": 5, "dependency": 0}},
                {"restarts": {"failure": 0, "bounce": 0, "done": 0, "dependency": 1},
                 "report": {
                     "children": [{"restarts": {"failure": 3, "bounce": 0, "done": 0, "dependency": 0}}],
                     "dynamic": {"restarts": {"failure": 40, "bounce": 0, "done": 9, "dependency": 2}},
                 }},
            ],
        });
        // Normal exits of permanent children are not counted.
        assert_eq!(restarts(&report), 1 + 2 + 1 + 3 + 40 + 2);
    }

    #[test]
    fn speed_divides_every_duration_of_the_world() {
        let options = DemoOptions {
            speed: 20.0,
            ..DemoOptions::default()
        };
        let config = options.config();
        muster::config::Validate::validate(&config).unwrap();
        let ms = Duration::from_millis;
        assert_eq!(config.machines.poll.short_poll, ms(150));
        assert_eq!(config.machines.poll.short_poll_cap, ms(3000));
        assert_eq!(config.machines.poll.long_poll, ms(45_000));
        assert_eq!(config.supervision.error_delay, ms(150));
        assert_eq!(config.machines.restart.error_delay, ms(150));
        assert_eq!(config.presence.restart.max_delay, ms(6000));
        assert_eq!(config.gateway.window, ms(5));
        assert_eq!(config.gateway.calls_per_second, 100.0);
        assert_eq!(config.backend.sim.pending_for, ms(100));
        assert_eq!(config.backend.sim.allocating_for, ms(400));
        assert_eq!(config.backend.sim.faults.retry_after, Some(ms(100)));
        assert_eq!(config.backend.sim.faults.max_calls_per_second, Some(80));
        assert_eq!(config.http.listen, options.listen);
        assert_eq!(config.agents.listen, options.agents_listen);
        // At 1x the tree runs with its defaults, bar the jitter seed.
        let real = DemoOptions::default().config();
        assert_eq!(real.machines.poll, DaemonConfig::default().machines.poll);
        assert_eq!(real.gateway, DaemonConfig::default().gateway);
    }

    #[test]
    fn options_out_of_range_name_the_flag() {
        for (options, flag) in [
            (
                DemoOptions {
                    speed: f64::NAN,
                    ..DemoOptions::default()
                },
                "--speed",
            ),
            (
                DemoOptions {
                    machines: 2,
                    ..DemoOptions::default()
                },
                "--machines",
            ),
            (
                DemoOptions {
                    agents: 0,
                    ..DemoOptions::default()
                },
                "--agents",
            ),
            (
                DemoOptions {
                    agents_listen: ([0, 0, 0, 0], 17070).into(),
                    ..DemoOptions::default()
                },
                "--agents-listen",
            ),
            (
                DemoOptions {
                    speed: 1e20,
                    ..DemoOptions::default()
                },
                "--speed",
            ),
            (
                DemoOptions {
                    machines: 100_001,
                    ..DemoOptions::default()
                },
                "--machines",
            ),
            (
                DemoOptions {
                    agents: usize::MAX,
                    ..DemoOptions::default()
                },
                "--agents",
            ),
            (
                DemoOptions {
                    token: Some("s3cret ".into()),
                    ..DemoOptions::default()
                },
                "--token",
            ),
        ] {
            let error = options.validate().unwrap_err();
            assert!(error.to_string().starts_with(flag), "{error}");
            assert_eq!(error.exit_code(), crate::EXIT_BAD_INPUT);
        }
    }

    #[test]
    fn the_flags_read_numbers_in_range_only() {
        assert_eq!(parse_speed("2.5"), Ok(2.5));
        assert_eq!(parse_speed(" 1000 "), Ok(1000.0));
        assert_eq!(
            parse_speed("1e300"),
            Err("must be from 0.01 to 1000, got 1e300".into())
        );
        assert_eq!(
            parse_speed("NaN"),
            Err("must be from 0.01 to 1000, got NaN".into())
        );
        assert!(parse_speed("").unwrap_err().starts_with("not a number"));
        assert_eq!(parse_machines("100000"), Ok(100_000));
        assert_eq!(
            parse_machines("2"),
            Err("must be from 3 to 100000, got 2".into())
        );
        assert_eq!(parse_agents("3"), Ok(3));
        assert!(
            parse_agents("-1")
                .unwrap_err()
                .starts_with("not a whole number")
        );
    }

    #[test]
    fn the_tree_takes_the_config_of_every_speed_in_range() {
        for speed in [*SPEEDS.start(), 0.5, 1.0, 7.0, *SPEEDS.end()] {
            let options = DemoOptions {
                speed,
                ..DemoOptions::default()
            };
            assert!(options.validate().is_ok());
            let config = options.config();
            if let Err(problems) = muster::config::Validate::validate(&config) {
                panic!("{speed}: {problems}");
            }
            if let Err(problems) = muster::config::Validate::validate(&config.muster()) {
                panic!("{speed}: {problems}");
            }
        }
    }

    #[test]
    fn the_world_has_three_controller_agents_then_the_rest() {
        let world = World::new(
            &DemoOptions {
                machines: 10,
                agents: 40,
                ..DemoOptions::default()
            },
            ConnectionIds::default(),
        );
        assert_eq!(world.agents.len(), 40);
        assert!(world.agents[..3].iter().all(|a| a.controller));
        assert!(world.agents[3..].iter().all(|a| !a.controller));
        let models: std::collections::BTreeSet<_> = world.agents.iter().map(|a| a.model).collect();
        assert_eq!(models.len(), 4);
        // Every agent is named once.
        let names: std::collections::BTreeSet<_> =
            world.agents.iter().map(|a| a.agent.clone()).collect();
        assert_eq!(names.len(), 40);
    }
}
