//! A model's registry as its pollers see it when the host holds the model
//! at run time: what the pollers record of a poll is written only while
//! the hold is valid, checked as each write is made, so a node that woke
//! from a pause longer than its lease writes nothing stale.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use muster::error::PollError;
use muster::model::{Life, Machine, MachineBatches, MachineStatus, ModelFacade};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{Address, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface};

use crate::gateway::ModelGate;

/// `inner`, whose machines' writes go through only while `gate` allows
/// `model`.
pub(super) struct FencedModel {
    pub(super) inner: Arc<dyn ModelFacade>,
    pub(super) model: ModelUuid,
    pub(super) gate: ModelGate,
}

impl ModelFacade for FencedModel {
    fn watch_model_machines(&self) -> MachineBatches {
        self.inner.watch_model_machines()
    }

    fn machine(&self, tag: &MachineTag) -> BoxFuture<'static, Result<Arc<dyn Machine>, PollError>> {
        let (model, gate) = (self.model, self.gate.clone());
        self.inner
            .machine(tag)
            .map(move |machine| {
                machine
                    .map(|inner| Arc::new(FencedMachine { inner, model, gate }) as Arc<dyn Machine>)
            })
            .boxed()
    }
}

struct FencedMachine {
    inner: Arc<dyn Machine>,
    model: ModelUuid,
    gate: ModelGate,
}

impl FencedMachine {
    /// Why a write of `what` may not start now: the gate refuses the model.
    fn refused<T: Send + 'static>(
        &self,
        what: &'static str,
    ) -> Option<BoxFuture<'static, Result<T, PollError>>> {
        let model = self.model;
        (!(self.gate)(&model)).then(|| {
            let error = PollError::other(
                what,
                format!("this node's hold of model {model} is not valid now: nothing written"),
            );
            futures::future::ready(Err(error)).boxed()
        })
    }
}

impl Machine for FencedMachine {
    fn tag(&self) -> MachineTag {
        self.inner.tag()
    }

    fn instance_id(&self) -> BoxFuture<'static, Result<InstanceId, PollError>> {
        self.inner.instance_id()
    }

    fn set_provider_network_config(
        &self,
        interfaces: Vec<NetworkInterface>,
    ) -> BoxFuture<'static, Result<(Vec<Address>, bool), PollError>> {
        self.refused("recording the network config")
            .unwrap_or_else(|| self.inner.set_provider_network_config(interfaces))
    }

    fn instance_status(&self) -> BoxFuture<'static, Result<InstanceStatusInfo, PollError>> {
        self.inner.instance_status()
    }

    fn set_instance_status(
        &self,
        status: InstanceStatus,
        message: String,
    ) -> BoxFuture<'static, Result<(), PollError>> {
        self.refused("recording the instance status")
            .unwrap_or_else(|| self.inner.set_instance_status(status, message))
    }

    fn status(&self) -> BoxFuture<'static, Result<MachineStatus, PollError>> {
        self.inner.status()
    }

    fn life(&self) -> Life {
        self.inner.life()
    }

    fn is_manual(&self) -> BoxFuture<'static, Result<bool, PollError>> {
        self.inner.is_manual()
    }

    fn refresh(&self) -> BoxFuture<'static, Result<(), PollError>> {
        self.inner.refresh()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use muster::sim::{Sim, SimConfig};

    use super::*;

    #[tokio::test]
    async fn a_poll_is_written_only_while_the_gate_allows_its_model() {
        let sim = Sim::new(SimConfig::default()).unwrap();
        let (tag, _) = sim.add_provisioned_machine();
        let open = Arc::new(AtomicBool::new(true));
        let gate_open = open.clone();
        let fenced = FencedModel {
            inner: sim.facade(),
            model: ModelUuid::from_u128(3),
            gate: Arc::new(move |_: &ModelUuid| gate_open.load(Ordering::SeqCst)),
        };
        let machine = fenced.machine(&tag).await.unwrap();
        machine
            .set_instance_status(InstanceStatus::Running, String::new())
            .await
            .unwrap();
        assert_eq!(sim.counters().set_instance_status, 1);
        // The hold runs out between the provider's answer and the write.
        open.store(false, Ordering::SeqCst);
        let refused = machine
            .set_instance_status(InstanceStatus::Running, String::new())
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("nothing written"), "{refused}");
        let refused = machine.set_provider_network_config(Vec::new()).await;
        assert!(refused.is_err());
        let counters = sim.counters();
        assert_eq!(
            (counters.set_instance_status, counters.set_network_config),
            (1, 0)
        );
        // Reads go on: the poller learns its machine's state either way.
        assert!(machine.instance_id().await.is_ok());
    }
}
