//! What is true now, as a test reads it: what the provider holds for an
//! instance, what the model holds for a machine, and whether they agree.

use tokio::time::Instant;

use super::Sim;
use crate::model::{Life, MachineStatus};
use crate::names::MachineTag;
use crate::provider::{Address, InstanceId, InstanceStatusInfo, NetworkInterface};

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

impl Sim {
    /// Whether the provider holds an instance with this id.
    pub(super) fn knows(&self, id: &InstanceId) -> bool {
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
}
