//! The daemon's configuration file: TOML, every setting of the tree plus the
//! backend, the HTTP surface, the agents' door and the cluster, durations
//! as human strings (`"3s"`, `"1m"`).
//!
//! Reading a file never panics and never stops at the first problem it can
//! get past: [`DaemonConfig::from_toml`] answers every problem it finds,
//! each naming its key and, where there is one, the value; the ranges are
//! those of each section's [`Validate`], checked once for the whole file.

pub(crate) mod files;
mod read;

use muster::config::{Checker, ConfigError, Counts, InvalidConfig, Validate};
use muster::sim::SimConfig;
use serde::{Deserialize, Serialize};

use muster_actors::gateway::GatewayConfig;
use muster_actors::host::MusterConfig;
use muster_actors::machines::MachinesConfig;
use muster_actors::presence::PresenceConfig;
use muster_actors::supervisor::RestartConfig;
use muster_cluster::ClusterConfig;
use muster_door::AgentsConfig;
use muster_http::HttpConfig;
use muster_registry::models::{self, ModelConfig};
use muster_registry::store::StoreConfig;

/// Everything `musterd run` reads from its config file. Every section and
/// every key may be left out; what is left out takes its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DaemonConfig {
    /// Restarts of muster's own children (the gateway and the two
    /// subtrees), and of the daemon's (muster, the history, the HTTP
    /// surface and the door).
    pub supervision: RestartConfig,
    /// The presence subtree.
    pub presence: PresenceConfig,
    /// The machine watcher, its pollers and the poll schedule.
    pub machines: MachinesConfig,
    /// The provider gateway.
    pub gateway: GatewayConfig,
    /// The threads the daemon's work is spread over.
    pub runtime: RuntimeConfig,
    /// What the tree talks to.
    pub backend: BackendConfig,
    /// The HTTP inspection surface.
    pub http: HttpConfig,
    /// The agents' WebSocket door.
    pub agents: AgentsConfig,
    /// The other API servers of the controller, met over NATS; without
    /// it, this daemon is the controller's only API server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
    /// Where the machine registry of the `[[models]]` is kept.
    pub store: StoreConfig,
    /// The models polled, each on its cloud and region (`[[models]]`);
    /// none, for one model on the simulated cloud.
    pub models: Vec<ModelConfig>,
}

/// The threads the daemon runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// How many threads (actix arbiters) the presence servers, the models'
    /// pollers, the gateways and the agents' connections are spread over;
    /// 0 takes one per core the process may use, 1 runs everything on one.
    pub threads: usize,
}

/// The most threads `[runtime] threads` may ask for.
const THREADS: Counts = Counts::new(0, 1024);

impl RuntimeConfig {
    /// The threads to run on: `threads`, or one per core for 0.
    pub fn threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl Validate for RuntimeConfig {
    /// At most 1024 threads.
    fn check(&self, at: &mut Checker) {
        at.count("threads", self.threads, THREADS);
    }
}

/// The simulated cloud: what every model on `cloud = "sim"` runs on, and
/// the one model polled when the file names none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendConfig {
    /// The kind of backend of the one model polled when `[[models]]` names
    /// none; only the embedded simulation.
    pub kind: BackendKind,
    /// How many machines each simulated model holds at start, each
    /// provisioned then (the demo adds its own over time instead).
    pub machines: usize,
    /// Settings of the simulated cloud, for every simulated model.
    pub sim: SimConfig,
}

/// The kinds of backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The embedded simulated cloud and model.
    #[default]
    Sim,
}

/// The largest config file read, in bytes: a config is a few kilobytes, and
/// a file past this is refused before more of it is read.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// How many machines the simulated model may hold at start.
const START_MACHINES: Counts = Counts::new(0, 1_000_000);

impl DaemonConfig {
    /// The tree's own settings.
    pub fn muster(&self) -> MusterConfig {
        MusterConfig {
            supervision: self.supervision.clone(),
            presence: self.presence.clone(),
            machines: self.machines.clone(),
            gateway: self.gateway,
        }
    }

    /// Reads and checks a config file's bytes: at most [`MAX_FILE_BYTES`]
    /// of UTF-8 text, then as [`DaemonConfig::from_toml`] does. The caller
    /// reads at most one byte past the limit, so that an endless file is
    /// refused without being read.
    pub fn from_bytes(bytes: &[u8]) -> Result<DaemonConfig, InvalidConfig> {
        let (config, problems) = DaemonConfig::read_bytes(bytes)?;
        problems.finish()?;
        Ok(config)
    }

    /// [`from_bytes`](Self::from_bytes), keeping what read however many
    /// problems there are: the config (each key that did not read left at
    /// its default) and the problems found, so that the files it names can
    /// be checked too and every problem said at once. Fails only when no
    /// config reads at all (not UTF-8, not TOML, too large).
    pub fn read_bytes(bytes: &[u8]) -> Result<(DaemonConfig, Checker), InvalidConfig> {
        if bytes.len() > MAX_FILE_BYTES {
            let reason = format!(
                "larger than {} MiB, the most a config file may be",
                MAX_FILE_BYTES >> 20
            );
            return Err(ConfigError::new("", None, reason).into());
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let good = &bytes[..e.valid_up_to()];
            // What comes before the bad byte is text, so lines count.
            let text = std::str::from_utf8(good).unwrap_or_default();
            let (line, column) = read::line_column(text, text.len());
            let reason = format!("not UTF-8 text: a bad byte at line {line}, column {column}");
            InvalidConfig::from(ConfigError::new("", None, reason))
        })?;
        DaemonConfig::read_toml(text)
    }

    /// Reads and checks a config file's text. On failure, answers every
    /// problem found, each once: a file that is not TOML gives one;
    /// otherwise each key that does not read is reported and left out,
    /// and then the whole is checked and every setting out of range
    /// reported. Past [`MAX_PROBLEMS`](muster::config::MAX_PROBLEMS) they
    /// are counted.
    pub fn from_toml(text: &str) -> Result<DaemonConfig, InvalidConfig> {
        let (config, problems) = DaemonConfig::read_toml(text)?;
        problems.finish()?;
        Ok(config)
    }

    /// [`from_toml`](Self::from_toml), keeping what read and the problems
    /// (see [`read_bytes`](Self::read_bytes)).
    fn read_toml(text: &str) -> Result<(DaemonConfig, Checker), InvalidConfig> {
        let read::Reading {
            config,
            document,
            mut problems,
        } = read::read(text)?;
        if let Some(config) = &config
            && let Err(ranges) = config.validate()
        {
            for mut problem in ranges.problems {
                // A key that did not read was left out, so it looks absent
                // now: its problem is already said.
                if problems.has(&problem.key) {
                    continue;
                }
                // The value as the file wrote it, where it wrote one.
                if problem.value.is_some()
                    && let Some(written) = read::value_at(text, &document, &problem.key)
                {
                    problem.value = Some(written);
                }
                problems.report(problem);
            }
            problems.count_more(ranges.more);
        }
        Ok((config.unwrap_or_default(), problems))
    }
}

impl Validate for DaemonConfig {
    /// The tree's sections as the tree checks them, then the daemon's own.
    fn check(&self, at: &mut Checker) {
        self.muster().check(at);
        at.section("runtime", &self.runtime);
        at.section("backend", &self.backend);
        at.section("http", &self.http);
        at.section("agents", &self.agents);
        if let Some(cluster) = &self.cluster {
            at.section("cluster", cluster);
        }
        at.section("store", &self.store);
        models::check_list(&self.models, at);
        self.check_write_api(at);
        self.check_passwords(at);
        self.check_addresses(at);
    }
}

impl DaemonConfig {
    /// The write API of the registry (served with `[[models]]`) changes
    /// what musterd polls: off a loopback address it is served only behind
    /// a token.
    fn check_write_api(&self, at: &mut Checker) {
        if !self.models.is_empty()
            && self.http.token.is_none()
            && !self.http.listen.ip().is_loopback()
        {
            at.problem(
                "http.token",
                None,
                format!(
                    "must be set: with [[models]] the HTTP surface takes writes, and \
                     http.listen = \"{}\" is not a loopback address",
                    self.http.listen
                ),
            );
        }
    }

    /// Agents' passwords are kept in the machine registry, which musterd
    /// keeps for its `[[models]]` (in `[store]`, or the cluster's shared
    /// one): `auth = "password"` wants them.
    fn check_passwords(&self, at: &mut Checker) {
        if self.agents.passwords() && self.models.is_empty() {
            at.problem(
                "agents.auth",
                Some("\"password\"".to_owned()),
                "wants a machine registry to keep the agents' passwords in: name the models \
                 in [[models]] (their registry is [store], or with [cluster] the cluster's \
                 shared one)",
            );
        }
    }

    /// The HTTP surface and the agents' door cannot listen on one port:
    /// the second would fail to bind at start.
    fn check_addresses(&self, at: &mut Checker) {
        let (http, agents) = (self.http.listen, self.agents.listen);
        let overlap =
            http.ip() == agents.ip() || http.ip().is_unspecified() || agents.ip().is_unspecified();
        if http.port() != 0 && http.port() == agents.port() && overlap {
            at.problem(
                "agents.listen",
                Some(format!("{:?}", agents.to_string())),
                format!(
                    "the same port as http.listen = \"{http}\": the HTTP surface and the \
                     agents' door each need their own"
                ),
            );
        }
    }

    /// Takes the relative paths of the file (the store, the models'
    /// credential files) from `folder`, the config file's.
    pub fn resolve_paths(&mut self, folder: &std::path::Path) {
        self.store.resolve(folder);
        for model in &mut self.models {
            if let Some(file) = &mut model.credential_file
                && file.is_relative()
            {
                *file = folder.join(&*file);
            }
        }
    }
}

impl Validate for BackendConfig {
    /// At most a million machines at start, and the simulation's ranges.
    fn check(&self, at: &mut Checker) {
        at.count("machines", self.machines, START_MACHINES);
        at.section("sim", &self.sim);
    }
}
