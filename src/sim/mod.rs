//! An embedded simulated cloud: a provider ([`Environ`]), an API server's
//! model ([`ModelFacade`], [`Machine`]) and a credential API
//! ([`CredentialApi`]) over one shared state, for the demo and the tests.
//!
//! Instances boot pending -> allocating -> running after the configured
//! delays, their addresses appear some time after they run, and their
//! machine agents start some time after that. The state is computed from
//! tokio's clock when it is read, so there is no background task and a test
//! on a paused clock drives the whole simulation by advancing time.
//!
//! Faults (failed, throttled and partial provider calls, failed API calls,
//! latency, a revoked credential) are drawn from a generator seeded by
//! [`SimConfig::seed`], so a run repeats.
//!
//! [`Environ`]: crate::provider::Environ
//! [`ModelFacade`]: crate::model::ModelFacade
//! [`Machine`]: crate::model::Machine
//! [`CredentialApi`]: crate::model::CredentialApi

mod account;
mod config;
mod conformance;
mod control;
mod counters;
mod credential;
mod faults;
mod machine;
mod model;
mod provider;
mod truth;

use crate::sync::lock;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::time::Instant;

pub use account::SimAccount;
pub use config::{FaultConfig, SimConfig};
pub use conformance::SimConformance;
pub use counters::{CallStats, SimCounters};
pub use truth::{ModelView, ProviderView};

use crate::config::{InvalidConfig, Validate};
use crate::error::PollError;
use crate::model::{CredentialApi, Life, ModelFacade};
use crate::names::MachineTag;
use crate::provider::{Address, Environ, InstanceId, InstanceStatusInfo, NetworkInterface};

/// A control operation on the simulation that does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// No machine with this tag is in the simulation.
    #[error("machine {} is not in the simulation", .0.id())]
    UnknownMachine(MachineTag),
    /// The machine already has an instance.
    #[error("machine {} is already provisioned", .0.id())]
    AlreadyProvisioned(MachineTag),
    /// The machine has no instance.
    #[error("machine {} is not provisioned", .0.id())]
    NotProvisioned(MachineTag),
}

/// The embedded simulated cloud. Clones share one state.
///
/// It implements [`Environ`], [`ModelFacade`] and [`CredentialApi`]; the
/// control methods (`add_machine`, `provision`, `stop_instance`, ...) play
/// the provisioner, the operator and the cloud, and the readers
/// (`provider_view`, `model_view`, `counters`) tell a test what is true.
#[derive(Clone)]
pub struct Sim {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: SimConfig,
    /// What this model's instance ids start with after `i-`, so that the
    /// models of one [`SimAccount`] never share one.
    instance_prefix: String,
    state: Mutex<State>,
    /// Bumped on every change a machine watcher reports.
    changes: watch::Sender<u64>,
    /// Whether the model holds its credential valid.
    credential_valid: watch::Sender<bool>,
}

struct State {
    rng: ChaCha8Rng,
    /// The faults in force: the config's at first, then [`Sim::set_faults`]'s.
    faults: FaultConfig,
    next_machine: u64,
    next_instance: u64,
    machines: BTreeMap<MachineTag, SimMachine>,
    /// The provider's instances, by id.
    instances: HashMap<InstanceId, MachineTag>,
    /// Whether the cloud accepts the model's credential.
    cloud_accepts: bool,
    invalidation_fails: bool,
    invalidation_reasons: Vec<String>,
    counters: SimCounters,
    /// The start of the provider's current rate-limit second, and the calls
    /// made in it.
    rate_window: Option<(Instant, u32)>,
}

struct SimMachine {
    number: u64,
    life: Life,
    manual: bool,
    added_at: Instant,
    instance: Option<SimInstance>,
    agent_restarted_at: Option<Instant>,
    /// How many times the agent was restarted: two restarts in one instant
    /// are still two changes of its start time.
    agent_restarts: u64,
    recorded_status: InstanceStatusInfo,
    recorded_addresses: Vec<Address>,
    recorded_interfaces: Vec<NetworkInterface>,
}

struct SimInstance {
    id: InstanceId,
    booted_at: Instant,
    stopped_at: Option<Instant>,
    /// Addresses set by [`Sim::set_addresses`], replacing the default ones.
    addresses: Option<Vec<Address>>,
}

impl Sim {
    /// A simulated cloud with no machines; the configuration is validated.
    pub fn new(config: SimConfig) -> Result<Sim, InvalidConfig> {
        Sim::with_instance_prefix(config, String::new())
    }

    /// A simulated cloud whose instance ids are `i-PREFIX…`.
    fn with_instance_prefix(config: SimConfig, prefix: String) -> Result<Sim, InvalidConfig> {
        config.validate()?;
        let state = State {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            faults: config.faults,
            next_machine: 0,
            next_instance: 1,
            machines: BTreeMap::new(),
            instances: HashMap::new(),
            cloud_accepts: true,
            invalidation_fails: false,
            invalidation_reasons: Vec::new(),
            counters: SimCounters::default(),
            rate_window: None,
        };
        Ok(Sim {
            shared: Arc::new(Shared {
                config,
                instance_prefix: prefix,
                state: Mutex::new(state),
                changes: watch::Sender::new(0),
                credential_valid: watch::Sender::new(true),
            }),
        })
    }

    /// The configuration the simulation was started with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// The simulation as the cloud provider.
    pub fn environ(&self) -> Arc<dyn Environ> {
        Arc::new(self.clone())
    }

    /// The simulation as the API server's model facade.
    pub fn facade(&self) -> Arc<dyn ModelFacade> {
        Arc::new(self.clone())
    }

    /// The simulation as the API server's credential API.
    pub fn credential_api(&self) -> Arc<dyn CredentialApi> {
        Arc::new(self.clone())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere leaves the state consistent: every update is a
        // plain assignment done under the lock.
        lock(&self.state)
    }

    /// Runs `f` on the state.
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.lock())
    }

    /// Runs `f` on the state, then wakes the machine watchers.
    fn change<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let result = self.with(f);
        self.changes.send_modify(|version| *version += 1);
        result
    }
}

impl State {
    fn machine_mut(&mut self, tag: &MachineTag) -> Result<&mut SimMachine, SimError> {
        self.machines
            .get_mut(tag)
            .ok_or_else(|| SimError::UnknownMachine(tag.clone()))
    }

    fn instance_mut(&mut self, tag: &MachineTag) -> Result<&mut SimInstance, SimError> {
        self.machine_mut(tag)?
            .instance
            .as_mut()
            .ok_or_else(|| SimError::NotProvisioned(tag.clone()))
    }

    /// Counts an error the simulation returns, and hands it on.
    fn fail(&mut self, error: PollError) -> PollError {
        *self.counters.errors.entry(error.kind()).or_insert(0) += 1;
        error
    }
}

#[cfg(test)]
mod tests;
