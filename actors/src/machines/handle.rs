//! [`MachinesHandle`]: the host's questions about the machines, answered
//! from the registry and the pollers' cells without messaging a poller.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use muster::names::{MachineTag, ModelUuid};
use muster::poll::Phase;
use muster::provider::{Address, InstanceId, InstanceStatusInfo};
use serde::{Serialize, Serializer};
use tokio::time::Instant;

use crate::gate::Gate;
use crate::host::ModelHolds;
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
    /// The model it belongs to; `None` in a tree of one model started
    /// without a UUID for it.
    pub model: Option<ModelUuid>,
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

impl MachineState {
    /// A machine no poll has told anything of yet: a manual machine, or
    /// one its poller has not asked about.
    pub fn unpolled(model: Option<ModelUuid>, tag: MachineTag, tracking: Tracking) -> Self {
        MachineState {
            model,
            tag,
            tracking,
            phase: None,
            interval: None,
            next_poll_in: None,
            instance_id: None,
            instance_status: None,
            addresses: Vec::new(),
            last_error: None,
            polls: 0,
        }
    }
}

fn phase_text<S: Serializer>(phase: &Option<Phase>, s: S) -> Result<S::Ok, S::Error> {
    match phase {
        Some(phase) => s.serialize_some(&phase.to_string()),
        None => s.serialize_none(),
    }
}

fn state_of(
    model: Option<ModelUuid>,
    tag: &MachineTag,
    tracked: &Tracked,
    now: Instant,
) -> MachineState {
    let Some(poller) = &tracked.poller else {
        return MachineState::unpolled(model, tag.clone(), Tracking::Manual);
    };
    let status = lock(&poller.status);
    MachineState {
        model,
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

/// One model's record of its machines.
#[derive(Clone)]
struct Part {
    model: Option<ModelUuid>,
    registry: Arc<Mutex<Registry>>,
}

/// Answers queries about the machines from the pollers' shared state,
/// without messaging the pollers: of one model, or of every model of a
/// tree that polls many. Cheap to clone; `Send + Sync`. Reached through
/// [`Muster`](crate::Muster), every call waits while the whole of muster
/// restarts (docs/spec.md §8.3).
#[derive(Clone)]
pub struct MachinesHandle {
    /// Each model's record, in the order the models were given.
    parts: Arc<[Part]>,
    supervisor: SupervisorRef,
    gate: Gate,
    /// With a host that decides which models this tree polls: a model it
    /// does not hold is another node's, and what its record last held is
    /// a frozen copy, neither listed nor counted.
    holds: Option<ModelHolds>,
}

impl MachinesHandle {
    /// A handle on the record the watcher of `model` keeps, and on the
    /// machines supervisor.
    pub(super) fn new(
        model: Option<ModelUuid>,
        registry: Arc<Mutex<Registry>>,
        supervisor: SupervisorRef,
    ) -> Self {
        MachinesHandle {
            parts: Arc::new([Part { model, registry }]),
            supervisor,
            gate: Gate::default(),
            holds: None,
        }
    }

    /// A handle on the machines of every model of `handles`, whose
    /// [`supervisor`](MachinesHandle::supervisor) is `supervisor`, the one
    /// above the models' own.
    pub fn across(handles: &[MachinesHandle], supervisor: SupervisorRef) -> Self {
        MachinesHandle {
            parts: handles
                .iter()
                .flat_map(|handle| handle.parts.iter().cloned())
                .collect(),
            supervisor,
            gate: Gate::default(),
            holds: None,
        }
    }

    /// The same handle, its calls passing `gate`.
    pub(crate) fn gated(mut self, gate: Gate) -> Self {
        self.gate = gate;
        self
    }

    /// The same handle, answering only for the models `holds` holds.
    pub(crate) fn held_by(mut self, holds: ModelHolds) -> Self {
        self.holds = Some(holds);
        self
    }

    /// The holds the handle answers by, if the host decides which models
    /// this tree polls.
    pub(crate) fn holds(&self) -> Option<&ModelHolds> {
        self.holds.as_ref()
    }

    /// The parts whose machines this tree polls now.
    fn polled(&self) -> impl Iterator<Item = &Part> {
        self.parts
            .iter()
            .filter(|part| match (&self.holds, part.model) {
                (Some(holds), Some(model)) => holds.is_held(&model),
                _ => true,
            })
    }

    /// The models whose machines this handle answers, in order; `None` for
    /// a model without a UUID.
    pub fn models(&self) -> Vec<Option<ModelUuid>> {
        self.parts.iter().map(|part| part.model).collect()
    }

    /// Every tracked machine of the models this tree polls now (with
    /// [`ModelHolds`], the held ones): model by model in the order they
    /// were given, each model's sorted by tag.
    pub async fn machines(&self) -> Result<Vec<MachineState>, SendError> {
        self.gate
            .call(|| async {
                let now = Instant::now();
                let mut all = Vec::new();
                for part in self.polled() {
                    let registry = lock(&part.registry);
                    all.extend(
                        registry
                            .machines
                            .iter()
                            .map(|(tag, tracked)| state_of(part.model, tag, tracked, now)),
                    );
                }
                Ok(all)
            })
            .await
    }

    /// How many machines are in each phase, over every model of the
    /// handle this tree polls now: one look at each machine's phase, without building its
    /// state as [`machines`](Self::machines) does.
    pub fn count_by_phase(&self) -> PhaseCounts {
        let mut counts = PhaseCounts::default();
        for part in self.polled() {
            let registry = lock(&part.registry);
            for tracked in registry.machines.values() {
                match &tracked.poller {
                    None => counts.manual += 1,
                    Some(poller) => match lock(&poller.status).state.phase() {
                        Phase::Short => counts.short += 1,
                        Phase::Long => counts.long += 1,
                    },
                }
            }
        }
        counts
    }

    /// One machine; `None` when it is not tracked (unknown, dead, removed,
    /// or not seen by the watcher yet). Across many models, the first
    /// model's that tracks the tag: ask a model's own handle to be sure
    /// of the model.
    pub async fn machine(&self, tag: &MachineTag) -> Result<Option<MachineState>, SendError> {
        self.gate
            .call(|| async {
                let now = Instant::now();
                Ok(self.polled().find_map(|part| {
                    let registry = lock(&part.registry);
                    registry
                        .machines
                        .get(tag)
                        .map(|tracked| state_of(part.model, tag, tracked, now))
                }))
            })
            .await
    }

    /// The supervisor above the pollers: the machines supervisor of one
    /// model (its report lists the pollers with their restarts), or the
    /// one above every model's. What is asked through it does not wait for
    /// a restart of the whole of muster.
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.supervisor
    }

    /// The mailbox of a machine's poller; `None` when the machine is not
    /// polled. Across many models, the first model's that polls the tag.
    pub async fn poller(
        &self,
        tag: &MachineTag,
    ) -> Result<Option<Mailbox<MachinePoller>>, SendError> {
        self.gate
            .call(|| async {
                Ok(self.polled().find_map(|part| {
                    let registry = lock(&part.registry);
                    registry.poller(tag).map(|poller| poller.mailbox.clone())
                }))
            })
            .await
    }
}
