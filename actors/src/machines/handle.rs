//! [`MachinesHandle`]: the host's questions about the machines, answered
//! from the registry and the pollers' cells without messaging a poller.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use muster::names::MachineTag;
use muster::poll::Phase;
use muster::provider::{Address, InstanceId, InstanceStatusInfo};
use serde::{Serialize, Serializer};
use tokio::time::Instant;

use crate::host::Gate;
use crate::mailbox::{Mailbox, SendError};
use crate::supervisor::SupervisorRef;

use super::poller::MachinePoller;
use super::registry::{Registry, Tracked, lock};

/// How muster follows a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tracking {
    /// A poller polls the provider for it.
    Polled,
    /// Manually provisioned: set running once, never polled.
    Manual,
}

/// One machine as muster sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineState {
    /// The machine.
    pub tag: MachineTag,
    /// Whether it is polled.
    pub tracking: Tracking,
    /// Its poll phase; `None` for a manual machine.
    #[serde(serialize_with = "phase_text")]
    pub phase: Option<Phase>,
    /// The wait between its polls in the current phase; `None` for a manual
    /// machine.
    #[serde(with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// How long until its next poll (zero when due); `None` for a manual
    /// machine.
    #[serde(with = "humantime_serde")]
    pub next_poll_in: Option<Duration>,
    /// Its instance, once a poll has resolved it.
    pub instance_id: Option<InstanceId>,
    /// The instance status the provider last reported.
    pub instance_status: Option<InstanceStatusInfo>,
    /// Its provider addresses after the last poll that updated them.
    pub addresses: Vec<Address>,
    /// Why the last poll failed, when it did.
    pub last_error: Option<String>,
    /// How many times its poller asked the provider about it.
    pub polls: u64,
}

fn phase_text<S: Serializer>(phase: &Option<Phase>, s: S) -> Result<S::Ok, S::Error> {
    match phase {
        Some(phase) => s.serialize_some(&phase.to_string()),
        None => s.serialize_none(),
    }
}

fn state_of(tag: &MachineTag, tracked: &Tracked, now: Instant) -> MachineState {
    let Some(poller) = &tracked.poller else {
        return MachineState {
            tag: tag.clone(),
            tracking: Tracking::Manual,
            phase: None,
            interval: None,
            next_poll_in: None,
            instance_id: None,
            instance_status: None,
            addresses: Vec::new(),
            last_error: None,
            polls: 0,
        };
    };
    let status = lock(&poller.status);
    MachineState {
        tag: tag.clone(),
        tracking: Tracking::Polled,
        phase: Some(status.state.phase()),
        interval: Some(status.state.interval()),
        next_poll_in: Some(status.state.next_poll().saturating_duration_since(now)),
        instance_id: status.instance_id.clone(),
        instance_status: status.instance_status.clone(),
        addresses: status.addresses.clone(),
        last_error: status.last_error.clone(),
        polls: status.polls,
    }
}

/// How many machines are in each poll phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PhaseCounts {
    /// Polled machines in the short phase.
    pub short: usize,
    /// Polled machines in the long phase.
    pub long: usize,
    /// Manual machines, never polled.
    pub manual: usize,
}

/// Answers queries about the machines from the pollers' shared state,
/// without messaging the pollers. Cheap to clone; `Send + Sync`. Reached
/// through [`Muster`](crate::Muster), every call waits while the whole of
/// muster restarts (docs/spec.md §8.3).
#[derive(Clone)]
pub struct MachinesHandle {
    registry: Arc<Mutex<Registry>>,
    supervisor: SupervisorRef,
    gate: Gate,
}

impl MachinesHandle {
    /// A handle on the record the watcher keeps, and on the machines
    /// supervisor.
    pub(super) fn new(registry: Arc<Mutex<Registry>>, supervisor: SupervisorRef) -> Self {
        MachinesHandle {
            registry,
            supervisor,
            gate: Gate::default(),
        }
    }

    /// The same handle, its calls passing `gate`.
    pub(crate) fn gated(mut self, gate: Gate) -> Self {
        self.gate = gate;
        self
    }

    /// Every tracked machine, sorted by tag.
    pub async fn machines(&self) -> Result<Vec<MachineState>, SendError> {
        self.gate
            .call(|| async {
                let now = Instant::now();
                let registry = lock(&self.registry);
                Ok(registry
                    .machines
                    .iter()
                    .map(|(tag, tracked)| state_of(tag, tracked, now))
                    .collect())
            })
            .await
    }

    /// How many machines are in each phase: one look at each machine's
    /// phase, without building its state as [`machines`](Self::machines)
    /// does.
    pub fn count_by_phase(&self) -> PhaseCounts {
        let registry = lock(&self.registry);
        let mut counts = PhaseCounts::default();
        for tracked in registry.machines.values() {
            match &tracked.poller {
                None => counts.manual += 1,
                Some(poller) => match lock(&poller.status).state.phase() {
                    Phase::Short => counts.short += 1,
                    Phase::Long => counts.long += 1,
                },
            }
        }
        counts
    }

    /// One machine; `None` when it is not tracked (unknown, dead, removed,
    /// or not seen by the watcher yet).
    pub async fn machine(&self, tag: &MachineTag) -> Result<Option<MachineState>, SendError> {
        self.gate
            .call(|| async {
                let registry = lock(&self.registry);
                Ok(registry
                    .machines
                    .get(tag)
                    .map(|tracked| state_of(tag, tracked, Instant::now())))
            })
            .await
    }

    /// The machines supervisor's stable handle (its report lists the
    /// pollers with their restarts). What is asked through it does not
    /// wait for a restart of the whole of muster.
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.supervisor
    }

    /// The mailbox of a machine's poller; `None` when the machine is not
    /// polled.
    pub async fn poller(
        &self,
        tag: &MachineTag,
    ) -> Result<Option<Mailbox<MachinePoller>>, SendError> {
        self.gate
            .call(|| async {
                let registry = lock(&self.registry);
                Ok(registry.poller(tag).map(|poller| poller.mailbox.clone()))
            })
            .await
    }
}
