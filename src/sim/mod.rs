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
mod api;
mod config;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::time::Instant;

pub use account::SimAccount;
pub use config::{FaultConfig, SimConfig};

use crate::config::{InvalidConfig, Validate};
use crate::error::{ErrorKind, PollError};
use crate::model::{CredentialApi, Life, MachineStatus, ModelFacade};
use crate::names::MachineTag;
use crate::provider::{
    Address, AddressScope, Environ, InstanceId, InstanceStatus, InstanceStatusInfo,
    NetworkInterface,
};

/// A control operation on the simulation that does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

/// Counts of what was asked of one provider method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// How many calls were made.
    pub calls: u64,
    /// How many ids they asked for, in all.
    pub ids: u64,
    /// The most ids asked for in one call.
    pub max_ids: usize,
}

impl CallStats {
    fn record(&mut self, ids: usize) {
        self.calls += 1;
        self.ids += ids as u64;
        self.max_ids = self.max_ids.max(ids);
    }

    /// The mean number of ids per call; 0 before any call.
    pub fn mean_ids(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.ids as f64 / self.calls as f64
        }
    }
}

/// What the simulation has been asked, for tests and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimCounters {
    /// Calls of [`Environ::instances`].
    pub instances: CallStats,
    /// Calls of [`Environ::network_interfaces`].
    pub network_interfaces: CallStats,
    /// Calls to the API server about machines (every [`Machine`] method
    /// that asks, and [`ModelFacade::machine`]).
    ///
    /// [`Machine`]: crate::model::Machine
    pub model_calls: u64,
    /// Calls of `set_instance_status`.
    pub set_instance_status: u64,
    /// Calls of `set_provider_network_config`.
    pub set_network_config: u64,
    /// Calls of [`CredentialApi::invalidate_model_credential`].
    pub credential_invalidations: u64,
    /// Every error the simulation returned, by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
}

impl SimCounters {
    /// How many errors of `kind` the simulation returned.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors.get(&kind).copied().unwrap_or(0)
    }
}

/// What the provider holds for a machine's instance now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderView {
    /// The instance's id.
    pub instance_id: InstanceId,
    /// Its status.
    pub status: InstanceStatusInfo,
    /// Its addresses.
    pub addresses: Vec<Address>,
}

/// What the model holds for a machine now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelView {
    /// The machine's life.
    pub life: Life,
    /// Whether it was provisioned by hand.
    pub manual: bool,
    /// Its instance's id, once provisioned.
    pub instance_id: Option<InstanceId>,
    /// Its agent's status.
    pub agent_status: MachineStatus,
    /// The instance status recorded by the poller.
    pub instance_status: InstanceStatusInfo,
    /// The provider addresses recorded by the poller.
    pub addresses: Vec<Address>,
    /// The network configuration recorded by the poller.
    pub interfaces: Vec<NetworkInterface>,
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

    /// Changes the faults injected from now on, e.g. to end a spell of
    /// provider errors; a bad setting is refused, naming the field, and the
    /// faults in force stay.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), InvalidConfig> {
        faults.validate()?;
        self.shared.with(|state| state.faults = faults);
        Ok(())
    }

    /// The faults injected now.
    pub fn faults(&self) -> FaultConfig {
        self.shared.with(|state| state.faults)
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

    /// Adds an alive, unprovisioned machine; answers its tag (`machine-0`,
    /// `machine-1`, ... in order).
    pub fn add_machine(&self) -> MachineTag {
        let now = Instant::now();
        self.shared.change(|state| {
            let number = state.next_machine;
            state.next_machine += 1;
            let tag: MachineTag = format!("machine-{number}")
                .parse()
                .expect("machine-<number> is a machine tag");
            state.machines.insert(
                tag.clone(),
                SimMachine {
                    number,
                    life: Life::Alive,
                    manual: false,
                    added_at: now,
                    instance: None,
                    agent_restarted_at: None,
                    agent_restarts: 0,
                    recorded_status: InstanceStatusInfo::new(InstanceStatus::Pending, ""),
                    recorded_addresses: Vec::new(),
                    recorded_interfaces: Vec::new(),
                },
            );
            tag
        })
    }

    /// Adds a machine and provisions it at once.
    pub fn add_provisioned_machine(&self) -> (MachineTag, InstanceId) {
        let tag = self.add_machine();
        let id = self
            .provision(&tag)
            .expect("a machine just added is known and unprovisioned");
        (tag, id)
    }

    /// Adds a manually provisioned machine: it has an instance id the
    /// provider does not know, and its agent has started.
    pub fn add_manual_machine(&self) -> MachineTag {
        let tag = self.add_machine();
        let now = Instant::now();
        self.shared.change(|state| {
            if let Some(machine) = state.machines.get_mut(&tag) {
                machine.manual = true;
                let host = local_address(machine.number).value;
                machine.instance = Some(SimInstance {
                    id: InstanceId::new(format!("manual:{host}")),
                    booted_at: now,
                    stopped_at: None,
                    addresses: None,
                });
            }
        });
        tag
    }

    /// Gives the machine an instance, which starts booting now.
    pub fn provision(&self, tag: &MachineTag) -> Result<InstanceId, SimError> {
        let now = Instant::now();
        self.shared.with(|state| {
            let id = InstanceId::new(format!(
                "i-{}{:08x}",
                self.shared.instance_prefix, state.next_instance
            ));
            let machine = state.machine_mut(tag)?;
            if machine.instance.is_some() {
                return Err(SimError::AlreadyProvisioned(tag.clone()));
            }
            machine.instance = Some(SimInstance {
                id: id.clone(),
                booted_at: now,
                stopped_at: None,
                addresses: None,
            });
            state.next_instance += 1;
            state.instances.insert(id.clone(), tag.clone());
            Ok(id)
        })
    }

    /// Sets the machine's life, as the model does when it is destroyed.
    pub fn set_life(&self, tag: &MachineTag, life: Life) -> Result<(), SimError> {
        self.shared.change(|state| {
            state.machine_mut(tag)?.life = life;
            Ok(())
        })
    }

    /// Removes the machine from the model and its instance from the
    /// provider, as reaping a dead machine does.
    pub fn remove(&self, tag: &MachineTag) -> Result<(), SimError> {
        self.shared.change(|state| {
            let machine = state
                .machines
                .remove(tag)
                .ok_or_else(|| SimError::UnknownMachine(tag.clone()))?;
            if let Some(instance) = machine.instance {
                state.instances.remove(&instance.id);
            }
            Ok(())
        })
    }

    /// Marks the machine as provisioned by hand, or not.
    pub fn set_manual(&self, tag: &MachineTag, manual: bool) -> Result<(), SimError> {
        self.shared.with(|state| {
            state.machine_mut(tag)?.manual = manual;
            Ok(())
        })
    }

    /// Stops the machine's instance now: it reports stopped, without
    /// addresses, and the agent goes down.
    pub fn stop_instance(&self, tag: &MachineTag) -> Result<(), SimError> {
        let now = Instant::now();
        self.shared.with(|state| {
            let instance = state.instance_mut(tag)?;
            instance.stopped_at.get_or_insert(now);
            Ok(())
        })
    }

    /// Makes the provider report these addresses for the machine's instance
    /// from now on, whenever it runs.
    pub fn set_addresses(&self, tag: &MachineTag, addresses: Vec<Address>) -> Result<(), SimError> {
        self.shared.with(|state| {
            state.instance_mut(tag)?.addresses = Some(addresses);
            Ok(())
        })
    }

    /// Restarts the machine's agent now, which changes its start time.
    pub fn restart_agent(&self, tag: &MachineTag) -> Result<(), SimError> {
        let now = Instant::now();
        self.shared.change(|state| {
            let machine = state.machine_mut(tag)?;
            machine.agent_restarted_at = Some(now);
            machine.agent_restarts += 1;
            Ok(())
        })
    }

    /// Makes the cloud refuse the model's credential: every provider call
    /// fails as unauthorised until it is restored.
    pub fn revoke_credential(&self) {
        self.shared.with(|state| state.cloud_accepts = false);
    }

    /// Makes the cloud accept the model's credential again, and the model
    /// hold it valid, as when an operator updates it.
    pub fn restore_credential(&self) {
        self.shared.with(|state| state.cloud_accepts = true);
        self.shared.credential_valid.send_replace(true);
    }

    /// Makes the credential API's invalidation calls fail, or succeed.
    pub fn set_invalidation_fails(&self, fails: bool) {
        self.shared.with(|state| state.invalidation_fails = fails);
    }

    /// Whether the model holds its credential valid.
    pub fn model_credential_valid(&self) -> bool {
        *self.shared.credential_valid.borrow()
    }

    /// The reasons given to the credential API, oldest first.
    pub fn invalidation_reasons(&self) -> Vec<String> {
        self.shared.with(|state| state.invalidation_reasons.clone())
    }

    /// Whether the provider holds an instance with this id.
    fn knows(&self, id: &InstanceId) -> bool {
        self.shared.with(|state| state.instances.contains_key(id))
    }

    /// The tags of the machines in the model, in order.
    pub fn machine_tags(&self) -> Vec<MachineTag> {
        self.shared
            .with(|state| state.machines.keys().cloned().collect())
    }

    /// What the provider holds for the machine's instance now; `None` when
    /// it has none the provider knows (unprovisioned, manual, or removed).
    pub fn provider_view(&self, tag: &MachineTag) -> Option<ProviderView> {
        let now = Instant::now();
        let config = &self.shared.config;
        self.shared.with(|state| {
            let machine = state.machines.get(tag)?;
            let instance = machine.instance.as_ref()?;
            if machine.manual || !state.instances.contains_key(&instance.id) {
                return None;
            }
            Some(ProviderView {
                instance_id: instance.id.clone(),
                status: InstanceStatusInfo::new(instance.status(config, now), ""),
                addresses: machine.provider_addresses(config, now),
            })
        })
    }

    /// What the model holds for the machine now; `None` once it is removed.
    pub fn model_view(&self, tag: &MachineTag) -> Option<ModelView> {
        let now = Instant::now();
        let config = &self.shared.config;
        self.shared.with(|state| {
            let machine = state.machines.get(tag)?;
            Some(ModelView {
                life: machine.life,
                manual: machine.manual,
                instance_id: machine.instance.as_ref().map(|i| i.id.clone()),
                agent_status: machine.agent_status(config, now),
                instance_status: machine.recorded_status.clone(),
                addresses: machine.recorded_addresses.clone(),
                interfaces: machine.recorded_interfaces.clone(),
            })
        })
    }

    /// Whether the model records what the provider holds for the machine:
    /// the same instance status and the same addresses. False when either
    /// has no record of it (a manual, unprovisioned or removed machine).
    pub fn in_sync(&self, tag: &MachineTag) -> bool {
        match (self.provider_view(tag), self.model_view(tag)) {
            (Some(provider), Some(model)) => {
                provider.status == model.instance_status && provider.addresses == model.addresses
            }
            _ => false,
        }
    }

    /// What the simulation has been asked so far.
    pub fn counters(&self) -> SimCounters {
        self.shared.with(|state| state.counters.clone())
    }

    /// Starts the counters over.
    pub fn reset_counters(&self) {
        self.shared
            .with(|state| state.counters = SimCounters::default());
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere leaves the state consistent: every update is a
        // plain assignment done under the lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Draws whether an event with probability `rate` happens. Any rate is
    /// safe: NaN and rates outside 0..=1 never or always fire.
    fn chance(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.random::<f64>() < rate
    }

    /// Counts a provider call against the rate limit; answers how long to
    /// wait when it is over the limit.
    fn over_rate_limit(&mut self, limit: Option<u32>, now: Instant) -> Option<Duration> {
        let limit = limit?;
        let window = Duration::from_secs(1);
        let (start, calls) = match self.rate_window {
            Some((start, calls)) if now.duration_since(start) < window => (start, calls + 1),
            _ => (now, 1),
        };
        self.rate_window = Some((start, calls));
        (calls > limit).then(|| window.saturating_sub(now.duration_since(start)))
    }

    /// Counts an error the simulation returns, and hands it on.
    fn fail(&mut self, error: PollError) -> PollError {
        *self.counters.errors.entry(error.kind()).or_insert(0) += 1;
        error
    }
}

impl SimInstance {
    /// When the instance starts running.
    fn running_at(&self, config: &SimConfig) -> Option<Instant> {
        self.booted_at
            .checked_add(config.pending_for)?
            .checked_add(config.allocating_for)
    }

    fn stopped_by(&self, now: Instant) -> bool {
        self.stopped_at.is_some_and(|at| at <= now)
    }

    fn status(&self, config: &SimConfig, now: Instant) -> InstanceStatus {
        if self.stopped_by(now) {
            InstanceStatus::Stopped
        } else if self.running_at(config).is_some_and(|at| at <= now) {
            InstanceStatus::Running
        } else if self
            .booted_at
            .checked_add(config.pending_for)
            .is_some_and(|at| at <= now)
        {
            InstanceStatus::Allocating
        } else {
            InstanceStatus::Pending
        }
    }
}

impl SimMachine {
    /// The addresses the provider reports for the machine's instance now.
    fn provider_addresses(&self, config: &SimConfig, now: Instant) -> Vec<Address> {
        let Some(instance) = &self.instance else {
            return Vec::new();
        };
        if instance.status(config, now) != InstanceStatus::Running {
            return Vec::new();
        }
        if let Some(addresses) = &instance.addresses {
            return addresses.clone();
        }
        let appear_at = instance
            .running_at(config)
            .and_then(|at| at.checked_add(config.address_delay));
        if appear_at.is_some_and(|at| at <= now) {
            vec![local_address(self.number), public_address(self.number)]
        } else {
            Vec::new()
        }
    }

    /// The network interfaces the provider reports for the instance now.
    fn provider_interfaces(&self, config: &SimConfig, now: Instant) -> Vec<NetworkInterface> {
        let addresses = self.provider_addresses(config, now);
        let Some(instance) = &self.instance else {
            return Vec::new();
        };
        let n = self.number;
        vec![NetworkInterface {
            device_index: 0,
            interface_name: "eth0".to_owned(),
            mac_address: format!(
                "02:00:00:{:02x}:{:02x}:{:02x}",
                (n >> 16) & 0xff,
                (n >> 8) & 0xff,
                n & 0xff
            ),
            provider_id: format!("eni-{}", instance.id),
            subnet_id: String::new(),
            addresses,
        }]
    }

    /// When the machine's agent last started, if it has by `now`.
    fn agent_started_at(&self, config: &SimConfig, now: Instant) -> Option<Instant> {
        if self.manual {
            return Some(self.added_at);
        }
        let instance = self.instance.as_ref()?;
        let up_until = instance.stopped_at.map_or(now, |at| at.min(now));
        let first = instance
            .running_at(config)
            .and_then(|at| at.checked_add(config.agent_start_delay))
            .filter(|at| *at <= up_until);
        let restarted = self.agent_restarted_at.filter(|at| *at <= up_until);
        first.max(restarted)
    }

    /// When the agent will first start, if that is still to come: the time a
    /// machine watcher must wake up to report it.
    fn agent_starts_later(&self, config: &SimConfig, now: Instant) -> Option<Instant> {
        if self.manual {
            return None;
        }
        let instance = self.instance.as_ref()?;
        let first = instance
            .running_at(config)?
            .checked_add(config.agent_start_delay)?;
        let stopped_before = instance.stopped_at.is_some_and(|at| at < first);
        (first > now && !stopped_before).then_some(first)
    }

    fn agent_status(&self, config: &SimConfig, now: Instant) -> MachineStatus {
        let stopped = self.instance.as_ref().is_some_and(|i| i.stopped_by(now));
        if stopped && !self.manual {
            MachineStatus::Down
        } else if self.agent_started_at(config, now).is_some() {
            MachineStatus::Started
        } else {
            MachineStatus::Pending
        }
    }
}

fn local_address(n: u64) -> Address {
    Address::new(
        format!("10.{}.{}.4", (n >> 8) & 0xff, n & 0xff),
        AddressScope::CloudLocal,
    )
}

fn public_address(n: u64) -> Address {
    Address::new(
        format!(
            "198.{}.{}.{}",
            18 + ((n >> 16) & 1),
            (n >> 8) & 0xff,
            n & 0xff
        ),
        AddressScope::Public,
    )
}

#[cfg(test)]
mod tests;
