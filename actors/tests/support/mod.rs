//! Helpers shared by the actors' integration tests: names, durations, a
//! logger that drops everything or one that keeps every line, and trees
//! started under a root of their own.

// Each test binary uses a part of these.
#![allow(dead_code)]

/// The presence cases of docs/spec.md §1.7, generic over the presence implementation; the core's
/// tests run them on the `Recorder`, ours through the actors.
#[path = "../../../tests/support/presence_cases.rs"]
pub mod presence_cases;

/// A gateway and the machines subtree under a root, for the machines tests.
pub mod machines;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use muster::clock::Clock;
use muster::names::{AgentTag, MachineTag};
use muster::sim::Sim;
use muster_actors::gateway::{GatewayConfig, GatewayMetrics, ProviderGateway};
use muster_actors::presence::{PresenceConfig, PresenceHandle, presence_child};
use muster_actors::{Backends, Metrics, Muster, MusterConfig, RestartConfig, Root, SupervisorSpec};
use prometheus_client::registry::Registry;
use slog::{Discard, Drain, Logger, Never, OwnedKVList, Record, o};

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// `machine-N`: an API server or a machine.
pub fn server(n: u32) -> MachineTag {
    format!("machine-{n}").parse().unwrap()
}

/// `unit-app-N`: an agent.
pub fn unit(n: u64) -> AgentTag {
    format!("unit-app-{n}").parse().unwrap()
}

/// A logger that drops every record.
pub fn logger() -> Logger {
    Logger::root(Discard, o!())
}

/// A root supervisor over `spec`, logging nowhere, with unregistered metrics.
pub fn start_root(spec: SupervisorSpec) -> Root {
    Root::start("root", spec, logger(), Metrics::unregistered()).expect("valid spec")
}

/// The presence subtree under a root of its own.
pub fn presence_tree(config: &PresenceConfig, clock: Arc<dyn Clock>) -> (PresenceHandle, Root) {
    let (child, handle) = presence_child("presence", config, clock).unwrap();
    let root = start_root(SupervisorSpec::new(RestartConfig::default()).child(child));
    (handle, root)
}

/// The whole tree on `sim`, as a host starts it, with the registry it filled.
pub fn start_tree(sim: &Sim, config: &MusterConfig, clock: Arc<dyn Clock>) -> (Muster, Registry) {
    let mut registry = Registry::default();
    let muster = Muster::start(config, Backends::sim(sim, clock), logger(), &mut registry)
        .expect("the tree starts");
    (muster, registry)
}

/// A provider gateway on `sim`, its metrics in a registry of its own.
pub fn sim_gateway(sim: &Sim, config: GatewayConfig, logger: Logger) -> ProviderGateway {
    ProviderGateway::new(
        sim.environ(),
        sim.credential_api(),
        config,
        GatewayMetrics::new(&mut Registry::default()),
        logger,
    )
}

/// A drain that keeps each record as `LEVL message key=value ...`, the
/// record's own pairs first, then the logger's.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Every line so far, without its level.
    pub fn messages(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .map(|line| {
                line.split_once(' ')
                    .map_or(line.clone(), |(_, rest)| rest.to_owned())
            })
            .collect()
    }
}

struct Pairs(String);

impl slog::Serializer for Pairs {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl Drain for Capture {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), Never> {
        let mut pairs = Pairs(format!(
            "{} {}",
            record.level().as_short_str(),
            record.msg()
        ));
        let _ = slog::KV::serialize(&record.kv(), record, &mut pairs);
        let _ = slog::KV::serialize(values, record, &mut pairs);
        self.0.lock().unwrap().push(pairs.0);
        Ok(())
    }
}
