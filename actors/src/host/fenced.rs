//! A model's registry as its pollers see it when the host holds the model
//! at run time: what the pollers record of a poll is written only while
//! the hold is valid, checked as each write starts, so a node that woke
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
    /// `write`, once the gate allows the model as it starts.
    fn fenced<T: Send + 'static>(
        &self,
        what: &'static str,
        write: BoxFuture<'static, Result<T, PollError>>,
    ) -> BoxFuture<'static, Result<T, PollError>> {
        let (model, gate) = (self.model, self.gate.clone());
        async move {
            if !gate(&model) {
                return Err(PollError::other(
                    what,
                    format!("this node's hold of model {model} is not valid now: nothing written"),
                ));
            }
            write.await
        }
        .boxed()
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
        let write = self.inner.set_provider_network_config(interfaces);
        self.fenced("recording the network config", write)
    }

    fn instance_status(&self) -> BoxFuture<'static, Result<InstanceStatusInfo, PollError>> {
        self.inner.instance_status()
    }

    fn set_instance_status(
        &self,
        status: InstanceStatus,
        message: String,
    ) -> BoxFuture<'static, Result<(), PollError>> {
        let write = self.inner.set_instance_status(status, message);
        self.fenced("recording the instance status", write)
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
