//! What the registry holds for a machine: what was registered for it and
//! what the pollers last recorded, and a model's credential.

use std::time::SystemTime;

use muster::model::{Life, MachineStatus};
use muster::names::MachineTag;
use muster::provider::{Address, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface};
use serde::Serialize;

/// What a client registers for a machine: the body of a registration,
/// once validated (see [`parse_registration`](super::parse_registration)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    /// The machine's instance at the provider; `None` until it is
    /// provisioned.
    pub instance_id: Option<InstanceId>,
    /// Where the machine is in its life.
    pub life: Life,
    /// The status of the machine's agent.
    pub agent_status: MachineStatus,
    /// Whether the machine was provisioned by hand, outside the provider.
    pub manual: bool,
}

impl Default for Registration {
    /// An alive, unprovisioned machine whose agent has not started: what a
    /// body with no fields registers.
    fn default() -> Self {
        Registration {
            instance_id: None,
            life: Life::Alive,
            agent_status: MachineStatus::Pending,
            manual: false,
        }
    }
}

impl Registration {
    /// Whether replacing `self` with `next` makes a different machine to the
    /// poller: a provisioned machine's instance id changes or goes, or the
    /// machine becomes manual or stops being manual. The poller remembers a
    /// machine's instance id and never polls a manual machine, so such a
    /// machine is handed to it as a new one (docs/spec.md §9.3.2).
    pub fn replaced_by(&self, next: &Registration) -> bool {
        let instance_changed = self.instance_id.is_some() && self.instance_id != next.instance_id;
        instance_changed || self.manual != next.manual
    }
}

/// One registered machine, as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineRecord {
    /// The machine's tag, `machine-3`.
    pub tag: MachineTag,
    /// Which registration of the machine this is: it changes when the
    /// machine is registered anew (removed and registered again, or
    /// replaced, docs/spec.md §9.3.2), never otherwise, and never comes back.
    pub incarnation: u64,
    /// What was registered.
    #[serde(flatten)]
    pub registration: Registration,
    /// When this incarnation was first registered.
    #[serde(with = "humantime_serde")]
    pub registered_at: SystemTime,
    /// What the pollers last recorded.
    #[serde(flatten)]
    pub recorded: Recorded,
}

impl MachineRecord {
    /// The machine id as Juju writes it, `3`.
    pub fn id(&self) -> String {
        self.tag.id()
    }
}

/// A machine's registration without what was recorded for it: what the
/// machine watcher compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registered {
    /// The machine's tag, `machine-3`.
    pub tag: MachineTag,
    /// Which registration of the machine this is (see
    /// [`MachineRecord::incarnation`]).
    pub incarnation: u64,
    /// What was registered.
    #[serde(flatten)]
    pub registration: Registration,
}

/// What the pollers record about a machine's instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// The instance status and the provider's message; `pending` with no
    /// message until a poll records one.
    pub instance_status: InstanceStatusInfo,
    /// The provider addresses, from the interfaces, each once.
    pub addresses: Vec<Address>,
    /// The provider's network configuration of the machine.
    pub interfaces: Vec<NetworkInterface>,
    /// When a poll last wrote any of these; `None` before the first.
    #[serde(with = "humantime_serde")]
    pub recorded_at: Option<SystemTime>,
}

impl Default for Recorded {
    fn default() -> Self {
        Recorded {
            instance_status: InstanceStatusInfo::new(InstanceStatus::Pending, ""),
            addresses: Vec::new(),
            interfaces: Vec::new(),
            recorded_at: None,
        }
    }
}

/// A machine's provider addresses after a network config was recorded, and
/// whether they changed.
pub type AddressesChanged = (Vec<Address>, bool);

/// What registering a machine did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PutOutcome {
    /// The machine was not registered; it is now.
    Created,
    /// The machine was registered as a different machine (docs/spec.md
    /// §9.3.2): it is registered anew and its recorded values start over.
    Replaced,
    /// The registration changed in place.
    Updated,
    /// The registration was already exactly this.
    Unchanged,
}

impl PutOutcome {
    /// Whether the machine watcher hears of it.
    pub fn changed(self) -> bool {
        self != PutOutcome::Unchanged
    }
}

/// A model's cloud credential as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// Whether the model holds it valid.
    pub valid: bool,
    /// Why it was last invalidated; empty when it never was or is valid
    /// again.
    pub reason: String,
    /// When its validity last changed; `None` when it never did.
    #[serde(with = "humantime_serde")]
    pub changed_at: Option<SystemTime>,
}

impl Default for Credential {
    /// A model's credential is valid until someone says otherwise.
    fn default() -> Self {
        Credential {
            valid: true,
            reason: String::new(),
            changed_at: None,
        }
    }
}
