//! `musterd swarm`: real agents on demand. It opens N agent connections to
//! a door (machine and unit agents spread over M models), keeps them alive
//! with pings, closes and reopens a fraction of them each minute, and
//! prints a line a second: agents connected, logins per second with their
//! latency (p50, p99), and failures by kind.
//!
//! It is the load client of the door's figures and of demos with several
//! controllers; `--storm-after` drops every connection at once, without a
//! close frame, and reports how long until all are back.
//!
//! Against a door with `auth = "password"`, each agent logs in with its own
//! password: `--provision URL` makes them through musterd's HTTP API first
//! (`--token` then being the API's, and `--model` naming the models), or
//! `--passwords FILE` reads them, one `model,agent,password` line per
//! agent.

mod agent;
mod provision;
mod stats;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use muster::names::{AgentTag, ModelUuid};
use muster_door::client::Client;
use rand::Rng;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use super::DaemonError;
use agent::{Slot, Swarm};
pub use provision::{Identity, Surface, read_file};
pub use stats::Stats;

/// The failure counted once for each agent that never logged in.
pub const NEVER_CONNECTED: &str = "never_connected";

/// The most agents one swarm runs.
pub const MAX_AGENTS: usize = 1_000_000;

/// How a swarm is sized and run.
#[derive(Debug, Clone)]
pub struct SwarmOptions {
    /// The door, `ws://HOST:PORT/agent` or `wss://...`.
    pub url: String,
    /// Agents to run.
    pub agents: usize,
    /// Models the agents are spread over.
    pub models: usize,
    /// Each agent pings this often.
    pub ping: Duration,
    /// The fraction of the agents closed and reopened each minute.
    pub churn: f64,
    /// Stop after this long; `None` runs until told to stop.
    pub duration: Option<Duration>,
    /// The shared agent secret, when the door wants one.
    pub token: Option<String>,
    /// PEM file of the authority that signed the door's certificate, for
    /// `wss://`.
    pub ca: Option<PathBuf>,
    /// Logins in flight at most.
    pub concurrency: usize,
    /// Drop every connection at once after this long, and reconnect.
    pub storm_after: Option<Duration>,
    /// The models the agents are spread over, in place of the swarm's own
    /// `models` (the daemon's `[[models]]`, to provision passwords for).
    pub model_uuids: Vec<ModelUuid>,
    /// Makes each agent's password through the HTTP surface at this URL
    /// (`http://HOST:PORT`) before connecting, with `token` as the
    /// bearer of the writes (and not sent in logins).
    pub provision: Option<String>,
    /// Reads the agents and their passwords from this file of
    /// `model,agent,password` lines, in place of `agents` and `models`.
    pub passwords: Option<PathBuf>,
    /// Picks the models' UUIDs: the same seed, the same models.
    pub seed: u64,
}

impl Default for SwarmOptions {
    fn default() -> Self {
        SwarmOptions {
            url: "ws://127.0.0.1:17070/agent".into(),
            agents: 100,
            models: 1,
            ping: Duration::from_secs(30),
            churn: 0.05,
            duration: None,
            token: None,
            ca: None,
            concurrency: 1000,
            storm_after: None,
            model_uuids: Vec::new(),
            provision: None,
            passwords: None,
            seed: 0,
        }
    }
}

/// What a swarm did, over its whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmSummary {
    /// Logins answered.
    pub logins: u64,
    /// Failures by kind.
    pub failures: std::collections::BTreeMap<String, u64>,
    /// Agents logged in when it stopped.
    pub connected: usize,
}

fn option(flag: &str, reason: impl std::fmt::Display) -> DaemonError {
    DaemonError::Option(format!("{flag}: {reason}"))
}

impl SwarmOptions {
    /// Checks the options; the error names the flag.
    pub fn validate(&self) -> Result<(), DaemonError> {
        self.client().map(|_| ())
    }

    /// The door's client, once every option is in range.
    fn client(&self) -> Result<Client, DaemonError> {
        if !(1..=MAX_AGENTS).contains(&self.agents) {
            return Err(option(
                "--agents",
                format!("must be from 1 to {MAX_AGENTS}, got {}", self.agents),
            ));
        }
        if !(1..=self.agents).contains(&self.models) {
            return Err(option(
                "--models",
                format!(
                    "must be from 1 to the number of agents ({}), got {}",
                    self.agents, self.models
                ),
            ));
        }
        let day = Duration::from_secs(24 * 3600);
        if self.ping < Duration::from_millis(100) || self.ping > day {
            return Err(option("--ping", "must be from 100ms to 1day"));
        }
        if !(self.churn.is_finite() && (0.0..=1.0).contains(&self.churn)) {
            return Err(option(
                "--churn",
                format!("must be a fraction from 0 to 1, got {}", self.churn),
            ));
        }
        for (flag, value) in [
            ("--duration", self.duration),
            ("--storm-after", self.storm_after),
        ] {
            if value.is_some_and(|d| d.is_zero() || d > day * 365) {
                return Err(option(flag, "must be from 1ns to 365days"));
            }
        }
        if let Some(Err(reason)) = self.token.as_deref().map(muster::token::validate_token) {
            return Err(option("--token", reason));
        }
        if !(1..=100_000).contains(&self.concurrency) {
            return Err(option("--concurrency", "must be from 1 to 100000"));
        }
        if self.provision.is_some() && self.passwords.is_some() {
            return Err(option(
                "--provision",
                "either makes the passwords or --passwords reads them, not both",
            ));
        }
        if let Some(url) = &self.provision {
            Surface::new(url).map_err(|reason| option("--provision", reason))?;
        }
        Client::new(&self.url, self.ca.as_deref())
            .map_err(|e| option(&format!("--{}", e.setting), e.reason))
    }
}

/// The models of a swarm: the same for every run of one seed, so that a
/// swarm started again reconnects the same agents, and others for another
/// seed, so that swarms against different nodes do not share agents.
fn models(n: usize, seed: u64) -> Vec<ModelUuid> {
    let base = 0x5357_4152_4d00_0000_0000_0000_0000_0000 | (u128::from(seed) << 32);
    (0..n as u128)
        .map(|m| ModelUuid::from_u128(base + m))
        .collect()
}

/// Agent `i`'s model and tag among `models`: machine and unit agents in
/// turn, spread over the models, each tag used once per model.
fn identity(models: &[ModelUuid], i: usize) -> (ModelUuid, AgentTag) {
    let model = models[i % models.len()];
    let k = i / models.len();
    let tag = if k.is_multiple_of(2) {
        format!("machine-{}", k / 2)
    } else {
        format!("unit-swarm-{}", k / 2)
    };
    (model, tag.parse().expect("a valid agent tag"))
}

/// The agents' own passwords, as the options say: read from a file, made
/// through the HTTP surface, or none.
async fn identities(
    options: &mut SwarmOptions,
    models: &[ModelUuid],
    out: &mut impl Write,
) -> Result<Option<Vec<Identity>>, DaemonError> {
    if let Some(path) = &options.passwords {
        let read = read_file(path).map_err(|reason| option("--passwords", reason))?;
        options.agents = read.len();
        return Ok(Some(read));
    }
    let Some(url) = &options.provision else {
        return Ok(None);
    };
    let surface = Surface::new(url).map_err(|reason| option("--provision", reason))?;
    let agents = (0..options.agents).map(|i| identity(models, i)).collect();
    let made = surface
        .provision_all(agents, options.token.as_deref())
        .await
        .map_err(|reason| option("--provision", reason))?;
    let _ = writeln!(out, "provisioned: {} passwords through {url}", made.len());
    // The token was the HTTP surface's, not the door's.
    options.token = None;
    Ok(Some(made))
}

/// Runs a swarm until `stop` resolves or the duration is over, printing a
/// line a second to `out`. Call it on a tokio runtime.
pub async fn run(
    mut options: SwarmOptions,
    mut out: impl Write,
    stop: impl Future<Output = &'static str>,
) -> Result<SwarmSummary, DaemonError> {
    let client = options
        .client()?
        .resolved()
        .await
        .map_err(|e| option(&format!("--{}", e.setting), e.reason))?;
    let models = if options.model_uuids.is_empty() {
        models(options.models, options.seed)
    } else {
        options.model_uuids.clone()
    };
    let identities = identities(&mut options, &models, &mut out).await?;
    let n = options.agents;
    let (stopping, stop_rx) = watch::channel(false);
    let (storming, storm_rx) = watch::channel(0u64);
    let swarm = Arc::new(Swarm {
        client,
        token: options.token.clone(),
        ping: options.ping,
        identities,
        models,
        logins: Semaphore::new(options.concurrency),
        stats: std::sync::Mutex::new(Stats::new(n)),
        stop: stop_rx,
        storm: storm_rx,
        slots: (0..n).map(|_| Slot::default()).collect(),
    });
    let _ = writeln!(
        out,
        "swarm: {n} agents over {} models to {}, a ping every {}, churn {}/min",
        swarm.models.len(),
        options.url,
        humantime::format_duration(options.ping),
        options.churn
    );
    let _ = out.flush();
    let start = Instant::now();
    let agents: Vec<_> = (0..n)
        .map(|i| tokio::spawn(agent::run(swarm.clone(), i)))
        .collect();
    // What the next full house is awaited for: its label, since when, and
    // the failures counted before.
    let mut awaited = Some(("all connected", start, 0u64));
    let mut stormed = false;
    let mut churn_due = 0.0f64;
    let report = async {
        let second = Duration::from_secs(1);
        let mut tick = interval_at(start + second, second);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last = start;
        loop {
            let now = tick.tick().await;
            let (line, full_since, failed) = {
                let mut stats = swarm.stats();
                let line = stats.line(now - start, now - last);
                (line, stats.full_since, stats.failed())
            };
            last = now;
            let _ = writeln!(out, "{line}");
            if let (Some(full), Some((label, since, failed_before))) = (full_since, awaited)
                && full >= since
            {
                awaited = None;
                let _ = writeln!(
                    out,
                    "{label}: {n} after {:.2}s; {} logins failed",
                    (full - since).as_secs_f64(),
                    failed - failed_before
                );
            }
            if let Some(after) = options.storm_after
                && !stormed
                && now - start >= after
            {
                stormed = true;
                awaited = Some(("storm: all back", now, failed));
                let _ = writeln!(out, "storm: every connection dropped at once");
                storming.send_modify(|epoch| *epoch += 1);
            }
            churn_due += options.churn * n as f64 / 60.0;
            let mut rng = rand::rng();
            while churn_due >= 1.0 {
                churn_due -= 1.0;
                // A few tries for a connected agent; a quiet swarm skips.
                for _ in 0..8 {
                    let slot = &swarm.slots[rng.random_range(0..n)];
                    if slot.connected.load(Ordering::Relaxed) {
                        slot.churn.notify_one();
                        break;
                    }
                }
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
        _ = stop => {}
        () = over => {}
        () = report => {}
    }
    let connected = swarm.stats().connected;
    stopping.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), futures::future::join_all(agents)).await;
    // An agent that never logged in failed, though no answer said so: its
    // login was still queued or under way when the swarm stopped.
    let never = swarm
        .slots
        .iter()
        .filter(|slot| !slot.ever.load(Ordering::Relaxed))
        .count();
    let mut stats = swarm.stats();
    if never > 0 {
        *stats
            .failures
            .entry(NEVER_CONNECTED.to_owned())
            .or_default() += never as u64;
    }
    let summary = SwarmSummary {
        logins: stats.logins,
        failures: stats.failures.clone(),
        connected,
    };
    let _ = writeln!(
        out,
        "final: {} logins in {:.1}s | failures {}",
        summary.logins,
        start.elapsed().as_secs_f64(),
        stats::failures(&summary.failures)
    );
    let _ = out.flush();
    Ok(summary)
}
