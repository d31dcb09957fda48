//! The simulation's controls: the provisioner adding and provisioning
//! machines, the operator changing them, the cloud stopping instances and
//! restarting agents.

use tokio::time::Instant;

use super::machine::local_address;
use super::{Sim, SimError, SimInstance, SimMachine};
use crate::model::Life;
use crate::names::MachineTag;
use crate::provider::{Address, InstanceId, InstanceStatus, InstanceStatusInfo};

impl Sim {
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
}
