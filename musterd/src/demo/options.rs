//! The demo's options: their ranges, how flags are read, and the daemon
//! config they make.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use muster::names::ModelUuid;
use muster::sim::{FaultConfig, SimConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::DaemonError;
use crate::config::DaemonConfig;
use muster::token::validate_token;
use muster_actors::gateway::GatewayConfig;
use muster_actors::supervisor::RestartConfig;
use muster_registry::models::{Cloud, ModelConfig};

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
        config.http.listen = self.listen;
        config.http.token = self.token.clone();
        config.agents.listen = self.agents_listen;
        // The demo's machines last as long as it does.
        config.store.path = muster_registry::store::IN_MEMORY.into();
        config.models = demo_models(self.seed)
            .into_iter()
            .enumerate()
            .map(|(n, uuid)| {
                let region = if n == 0 {
                    CONTROLLER_REGION
                } else {
                    WORKLOAD_REGION
                };
                let mut model = ModelConfig::new(uuid, Cloud::Sim, region);
                model.name = Some(match n {
                    0 => "controller".to_owned(),
                    n => format!("workload-{n}"),
                });
                model
            })
            .collect();
        config
    }
}
