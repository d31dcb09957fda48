//! The simulated models' controller: it registers each simulation's
//! machines in the machine registry as the simulation holds them (life,
//! agent status, instance, manual), and removes those the simulation no
//! longer holds, as a controller would over the HTTP API. Only what it
//! registered itself is its own: a machine a client registers is left
//! alone.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use muster::names::{MachineTag, ModelUuid};
use slog::{Logger, debug};
use tokio::task::JoinHandle;

use muster_registry::fleet::Sims;
use muster_registry::{Registration, Registry};

/// How often the simulations are read: often enough that an agent that
/// starts is seen well within the shortest poll of the demo's speeds.
pub const EVERY: Duration = Duration::from_millis(250);

/// Registers the simulated models' machines in the registry.
pub struct SimMirror {
    sims: Sims,
    registry: Registry,
    /// What was last registered for each machine.
    registered: HashMap<(ModelUuid, MachineTag), Registration>,
    log: Logger,
}

impl SimMirror {
    /// A mirror of `sims` into `registry`; nothing registered yet.
    pub fn new(sims: Sims, registry: Registry, log: Logger) -> Self {
        SimMirror {
            sims,
            registry,
            registered: HashMap::new(),
            log,
        }
    }

    /// Registers what changed in the simulations since the last time, and
    /// removes what they no longer hold; answers how many writes it made.
    /// A write that fails is tried again the next time (the registry logs
    /// it and keeps it for the report).
    pub async fn sync(&mut self) -> usize {
        let mut writes = 0;
        for (model, sim) in &self.sims {
            let tags = sim.machine_tags();
            let held: HashSet<&MachineTag> = tags.iter().collect();
            for tag in &tags {
                let Some(view) = sim.model_view(tag) else {
                    continue;
                };
                let registration = Registration {
                    instance_id: view.instance_id,
                    life: view.life,
                    agent_status: view.agent_status,
                    manual: view.manual,
                };
                let key = (*model, tag.clone());
                if self.registered.get(&key) == Some(&registration) {
                    continue;
                }
                writes += 1;
                let put = self
                    .registry
                    .register(*model, tag.clone(), registration.clone());
                if put.await.is_ok() {
                    self.registered.insert(key, registration);
                }
            }
            let gone: Vec<MachineTag> = self
                .registered
                .keys()
                .filter(|(m, tag)| m == model && !held.contains(tag))
                .map(|(_, tag)| tag.clone())
                .collect();
            for tag in gone {
                writes += 1;
                if self.registry.remove(*model, tag.clone()).await.is_ok() {
                    self.registered.remove(&(*model, tag));
                }
            }
        }
        if writes > 0 {
            debug!(self.log, "simulated machines registered"; "writes" => writes);
        }
        writes
    }

    /// Syncs now and then every [`EVERY`] on the current local task set,
    /// until the handle is aborted.
    pub fn spawn(mut self) -> JoinHandle<()> {
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.sync().await;
            }
        })
    }
}
