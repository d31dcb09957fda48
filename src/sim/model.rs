//! The simulation as the API server: the model facade, the machines it
//! hands out and its machine watcher. Each call is counted and its fault
//! drawn when it is made.

use crate::sync::lock;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::{self, BoxFuture, FutureExt};
use futures::stream::{self, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Shared, Sim};
use crate::error::PollError;
use crate::model::{Life, Machine, MachineBatches, MachineStatus, ModelFacade};
use crate::names::MachineTag;
use crate::provider::{
    Address, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface, addresses_of,
};

impl Shared {
    /// Starts an API server call about a machine: counts it, draws its
    /// fault, and checks that the machine is still in the model.
    fn begin_model_call(&self, tag: &MachineTag, context: &str) -> Result<(), PollError> {
        self.with(|state| {
            let rate = state.faults.model_error_rate;
            state.counters.model_calls += 1;
            if state.chance(rate) {
                return Err(state.fail(PollError::other(
                    format!("{context} of machine {}", tag.id()),
                    "injected API server failure",
                )));
            }
            if !state.machines.contains_key(tag) {
                return Err(state.fail(not_found(tag)));
            }
            Ok(())
        })
    }
}

fn not_found(tag: &MachineTag) -> PollError {
    PollError::NotFound(format!("machine {}", tag.id()))
}

impl ModelFacade for Sim {
    fn watch_model_machines(&self) -> MachineBatches {
        let watcher = Watcher {
            shared: self.shared.clone(),
            changes: self.shared.changes.subscribe(),
            seen: None,
        };
        stream::unfold(watcher, |mut watcher| async move {
            let batch = watcher.next_batch().await;
            Some((Ok(batch), watcher))
        })
        .boxed()
    }

    fn machine(&self, tag: &MachineTag) -> BoxFuture<'static, Result<Arc<dyn Machine>, PollError>> {
        let result = self.shared.begin_model_call(tag, "fetching").map(|()| {
            let life = self
                .shared
                .with(|state| state.machines.get(tag).map(|m| m.life))
                .unwrap_or(Life::Dead);
            Arc::new(SimMachineHandle {
                shared: self.shared.clone(),
                tag: tag.clone(),
                life: Mutex::new(life),
            }) as Arc<dyn Machine>
        });
        future::ready(result).boxed()
    }
}

/// A machine as the API server hands it out: its life is the copy taken at
/// the last fetch or refresh.
struct SimMachineHandle {
    shared: Arc<Shared>,
    tag: MachineTag,
    life: Mutex<Life>,
}

impl SimMachineHandle {
    /// Makes an API server call about this machine, answered at once.
    fn answer<T>(
        &self,
        context: &str,
        f: impl FnOnce(&mut super::State, &super::SimConfig, Instant) -> Result<T, PollError>,
    ) -> Result<T, PollError> {
        self.shared.begin_model_call(&self.tag, context)?;
        let now = Instant::now();
        let config = &self.shared.config;
        self.shared
            .with(|state| f(state, config, now).map_err(|e| state.fail(e)))
    }

    /// [`Self::answer`] as a future, the form the trait hands out.
    fn call<T: Send + 'static>(
        &self,
        context: &str,
        f: impl FnOnce(&mut super::State, &super::SimConfig, Instant) -> Result<T, PollError>,
    ) -> BoxFuture<'static, Result<T, PollError>> {
        future::ready(self.answer(context, f)).boxed()
    }

    fn machine<'a>(
        state: &'a mut super::State,
        tag: &MachineTag,
    ) -> Result<&'a mut super::SimMachine, PollError> {
        state.machines.get_mut(tag).ok_or_else(|| not_found(tag))
    }
}

impl Machine for SimMachineHandle {
    fn tag(&self) -> MachineTag {
        self.tag.clone()
    }

    fn instance_id(&self) -> BoxFuture<'static, Result<InstanceId, PollError>> {
        let tag = self.tag.clone();
        self.call("reading the instance id", move |state, _, _| {
            Self::machine(state, &tag)?
                .instance
                .as_ref()
                .map(|i| i.id.clone())
                .ok_or(PollError::NotProvisioned(tag))
        })
    }

    fn set_provider_network_config(
        &self,
        interfaces: Vec<NetworkInterface>,
    ) -> BoxFuture<'static, Result<(Vec<Address>, bool), PollError>> {
        let tag = self.tag.clone();
        self.call("setting the network config", move |state, _, _| {
            state.counters.set_network_config += 1;
            let machine = Self::machine(state, &tag)?;
            let addresses = addresses_of(&interfaces);
            let changed = addresses != machine.recorded_addresses;
            machine.recorded_addresses = addresses.clone();
            machine.recorded_interfaces = interfaces;
            Ok((addresses, changed))
        })
    }

    fn instance_status(&self) -> BoxFuture<'static, Result<InstanceStatusInfo, PollError>> {
        let tag = self.tag.clone();
        self.call("reading the instance status", move |state, _, _| {
            Ok(Self::machine(state, &tag)?.recorded_status.clone())
        })
    }

    fn set_instance_status(
        &self,
        status: InstanceStatus,
        message: String,
    ) -> BoxFuture<'static, Result<(), PollError>> {
        let tag = self.tag.clone();
        self.call("setting the instance status", move |state, _, _| {
            state.counters.set_instance_status += 1;
            Self::machine(state, &tag)?.recorded_status = InstanceStatusInfo { status, message };
            Ok(())
        })
    }

    fn status(&self) -> BoxFuture<'static, Result<MachineStatus, PollError>> {
        let tag = self.tag.clone();
        self.call("reading the status", move |state, config, now| {
            Ok(Self::machine(state, &tag)?.agent_status(config, now))
        })
    }

    fn life(&self) -> Life {
        *lock(&self.life)
    }

    fn is_manual(&self) -> BoxFuture<'static, Result<bool, PollError>> {
        let tag = self.tag.clone();
        self.call("reading whether manual", move |state, _, _| {
            Ok(Self::machine(state, &tag)?.manual)
        })
    }

    fn refresh(&self) -> BoxFuture<'static, Result<(), PollError>> {
        let tag = self.tag.clone();
        let result = self
            .answer("refreshing", move |state, _, _| {
                Ok(Self::machine(state, &tag)?.life)
            })
            .map(|life| *lock(&self.life) = life);
        future::ready(result).boxed()
    }
}

/// What a machine watcher reports a change of: life, agent start time, and
/// agent restarts.
type Watched = (Life, Option<Instant>, u64);

/// One machine watcher: it remembers what it last reported and reports the
/// machines whose life or agent start time differ, or that were removed.
struct Watcher {
    shared: Arc<Shared>,
    changes: watch::Receiver<u64>,
    seen: Option<BTreeMap<MachineTag, Watched>>,
}

impl Watcher {
    async fn next_batch(&mut self) -> Vec<MachineTag> {
        loop {
            // Marked before reading, so a change made meanwhile wakes us.
            self.changes.borrow_and_update();
            let now = Instant::now();
            let config = &self.shared.config;
            let (snapshot, wake_at) = self.shared.with(|state| {
                let snapshot: BTreeMap<MachineTag, Watched> = state
                    .machines
                    .iter()
                    .filter(|(tag, _)| !tag.is_container())
                    .map(|(tag, m)| {
                        let started = m.agent_started_at(config, now);
                        (tag.clone(), (m.life, started, m.agent_restarts))
                    })
                    .collect();
                let wake_at = state
                    .machines
                    .values()
                    .filter_map(|m| m.agent_starts_later(config, now))
                    .min();
                (snapshot, wake_at)
            });
            let batch: Vec<MachineTag> = match &self.seen {
                None => snapshot.keys().cloned().collect(),
                Some(seen) => {
                    let mut batch: Vec<MachineTag> = snapshot
                        .iter()
                        .filter(|(tag, now)| seen.get(*tag) != Some(*now))
                        .map(|(tag, _)| tag.clone())
                        .chain(seen.keys().filter(|t| !snapshot.contains_key(*t)).cloned())
                        .collect();
                    batch.sort();
                    batch
                }
            };
            let first = self.seen.is_none();
            self.seen = Some(snapshot);
            if first || !batch.is_empty() {
                return batch;
            }
            let changed = async {
                // The sender lives as long as the state this watcher holds.
                if self.changes.changed().await.is_err() {
                    future::pending::<()>().await;
                }
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}
