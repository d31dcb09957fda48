//! The watcher's record of the machines, and the cells the pollers keep
//! their state in. Both outlive the actors that write them: the record
//! survives the watcher's restarts, a cell its poller's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use muster::model::Machine;
use muster::names::MachineTag;
use muster::poll::PollState;
use muster::provider::{Address, InstanceId, InstanceStatusInfo};
use tokio::time::Instant;

use crate::mailbox::Mailbox;

use super::config::MachinesConfig;
use super::poller::MachinePoller;

/// What a poller knows of its machine; shared with the watcher's record and
/// the handle, and kept across the poller's restarts.
#[derive(Debug)]
pub(super) struct PollerStatus {
    pub(super) state: PollState,
    pub(super) instance_id: Option<InstanceId>,
    pub(super) instance_status: Option<InstanceStatusInfo>,
    pub(super) addresses: Vec<Address>,
    pub(super) last_error: Option<String>,
    pub(super) polls: u64,
}

pub(super) type StatusCell = Arc<Mutex<PollerStatus>>;

/// Locks a cell. A poller that panicked while holding the lock leaves a
/// state that is still consistent (each update is one assignment), so the
/// poison is ignored: keeping the state through a failure is the point.
pub(super) use muster::sync::lock;

/// A polled machine's poller: its status cell and its mailbox.
#[derive(Clone)]
pub(super) struct PollerRef {
    pub(super) status: StatusCell,
    pub(super) mailbox: Mailbox<MachinePoller>,
}

impl PollerRef {
    /// The cell and mailbox of a machine seen for the first time: its
    /// schedule starts now, and its mailbox keeps what was sent while the
    /// poller was down.
    pub(super) fn new(config: &MachinesConfig, now: Instant) -> Self {
        PollerRef {
            status: Arc::new(Mutex::new(PollerStatus {
                state: PollState::new(&config.poll, now),
                instance_id: None,
                instance_status: None,
                addresses: Vec::new(),
                last_error: None,
                polls: 0,
            })),
            mailbox: Mailbox::keeping(config.poller_mailbox),
        }
    }
}

/// A machine the watcher tracks.
pub(super) struct Tracked {
    pub(super) machine: Arc<dyn Machine>,
    /// `None` for a manual machine.
    pub(super) poller: Option<PollerRef>,
}

/// The watcher's record of the machines, outliving its restarts and read by
/// [`MachinesHandle`](super::MachinesHandle).
#[derive(Default)]
pub(super) struct Registry {
    pub(super) machines: BTreeMap<MachineTag, Tracked>,
}

impl Registry {
    /// The machine tracked as `tag`.
    pub(super) fn machine(&self, tag: &MachineTag) -> Option<&Arc<dyn Machine>> {
        self.machines.get(tag).map(|tracked| &tracked.machine)
    }

    /// The poller of `tag`; `None` when it is not tracked or manual.
    pub(super) fn poller(&self, tag: &MachineTag) -> Option<&PollerRef> {
        self.machines
            .get(tag)
            .and_then(|tracked| tracked.poller.as_ref())
    }

    /// Tracks `machine`; `poller` is `None` for a manual machine.
    pub(super) fn track(
        &mut self,
        tag: MachineTag,
        machine: Arc<dyn Machine>,
        poller: Option<PollerRef>,
    ) {
        self.machines.insert(tag, Tracked { machine, poller });
    }

    /// Stops tracking `tag`.
    pub(super) fn forget(&mut self, tag: &MachineTag) {
        self.machines.remove(tag);
    }
}
