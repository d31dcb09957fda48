//! The simulated cloud as a fixture of the provider conformance suite: the
//! reference a provider author's own fixture can be read against.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{FaultConfig, Sim};
use crate::names::MachineTag;
use crate::provider::conformance::{Conformance, Fault};
use crate::provider::{Environ, InstanceId};

/// A [`Sim`] as the suite's fixture: instances are provisioned machines,
/// deleting one removes its machine, and the suite's faults are the
/// simulation's own (throttling, revoking the credential, injected errors,
/// partial answers). Requests are the simulation's provider calls.
pub struct SimConformance {
    sim: Sim,
    environ: Arc<dyn Environ>,
    /// The machine of each instance made, to remove it by its instance.
    machines: Mutex<HashMap<InstanceId, MachineTag>>,
}

impl std::fmt::Debug for SimConformance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConformance")
            .field("sim", &self.sim)
            .finish_non_exhaustive()
    }
}

impl SimConformance {
    /// The fixture on `sim`, whose environ it tests.
    pub fn new(sim: Sim) -> Self {
        SimConformance::with_environ(sim.clone(), sim.environ())
    }

    /// The fixture on `sim`, testing `environ`: an environ made on top of
    /// the simulation's (a wrapper, say).
    pub fn with_environ(sim: Sim, environ: Arc<dyn Environ>) -> Self {
        SimConformance {
            sim,
            environ,
            machines: Mutex::new(HashMap::new()),
        }
    }

    /// The simulation.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    fn change_faults(&self, change: impl FnOnce(&mut FaultConfig)) -> Result<(), String> {
        let mut faults = self.sim.faults();
        change(&mut faults);
        self.sim.set_faults(faults).map_err(|e| e.to_string())
    }
}

impl Conformance for SimConformance {
    fn environ(&self) -> Arc<dyn Environ> {
        self.environ.clone()
    }

    async fn create_instances(&self, count: usize) -> Result<Vec<InstanceId>, String> {
        let made: Vec<(MachineTag, InstanceId)> = (0..count)
            .map(|_| self.sim.add_provisioned_machine())
            .collect();
        let mut machines = crate::sync::lock(&self.machines);
        Ok(made
            .into_iter()
            .map(|(tag, id)| {
                machines.insert(id.clone(), tag);
                id
            })
            .collect())
    }

    async fn delete_instance(&self, id: &InstanceId) -> Result<(), String> {
        let tag = crate::sync::lock(&self.machines)
            .remove(id)
            .ok_or_else(|| format!("{id} was not made by this fixture"))?;
        self.sim.remove(&tag).map_err(|e| e.to_string())
    }

    fn unknown_id(&self) -> InstanceId {
        InstanceId::from("i-ffffffffffffffff")
    }

    async fn inject(&self, fault: Fault) -> Result<bool, String> {
        match fault {
            Fault::Throttle { retry_after } => self.change_faults(|f| {
                f.throttle_rate = 1.0;
                f.retry_after = Some(retry_after);
            })?,
            Fault::RefuseCredential => self.sim.revoke_credential(),
            Fault::ServerError => self.change_faults(|f| f.error_rate = 1.0)?,
            Fault::LeaveOut => self.change_faults(|f| f.partial_rate = 0.5)?,
        }
        Ok(true)
    }

    async fn clear(&self, fault: Fault) -> Result<(), String> {
        match fault {
            Fault::Throttle { .. } => self.change_faults(|f| f.throttle_rate = 0.0),
            Fault::RefuseCredential => {
                self.sim.restore_credential();
                Ok(())
            }
            Fault::ServerError => self.change_faults(|f| f.error_rate = 0.0),
            Fault::LeaveOut => self.change_faults(|f| f.partial_rate = 0.0),
        }
    }

    async fn requests(&self) -> Option<u64> {
        let counters = self.sim.counters();
        Some(counters.instances.calls + counters.network_interfaces.calls)
    }

    fn networking(&self) -> bool {
        self.sim.config().networking
    }
}
