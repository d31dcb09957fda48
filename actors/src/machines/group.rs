//! The dynamic group of pollers under the machines supervisor: how the
//! watcher starts, stops and lists them.

use std::collections::BTreeSet;
use std::sync::Arc;

use muster::model::Machine;
use muster::names::{MachineTag, ModelUuid};

use crate::gateway::ProviderGateway;
use crate::mailbox::{Mailbox, SendError};
use crate::supervisor::{ChildSpec, SupervisorError, SupervisorRef};

use super::poller::MachinePoller;
use super::registry::PollerRef;

/// The pollers of the machines supervisor, and the gateway they poll
/// through.
pub(super) struct PollerGroup {
    /// The model, when its gateway serves many.
    model: Option<ModelUuid>,
    supervisor: SupervisorRef,
    gateway: Mailbox<ProviderGateway>,
}

impl PollerGroup {
    /// The group of `supervisor`, whose pollers reach the cloud through
    /// `gateway`, asking for `model` when it is given.
    pub(super) fn new(
        model: Option<ModelUuid>,
        supervisor: SupervisorRef,
        gateway: Mailbox<ProviderGateway>,
    ) -> Self {
        PollerGroup {
            model,
            supervisor,
            gateway,
        }
    }

    /// The dynamic child that polls `tag`; every start of it resumes from
    /// the shared status cell.
    pub(super) fn spec(
        &self,
        tag: &MachineTag,
        machine: &Arc<dyn Machine>,
        poller: &PollerRef,
    ) -> ChildSpec {
        let tag = tag.clone();
        let machine = machine.clone();
        let status = poller.status.clone();
        let gateway = self.gateway.clone();
        let model = self.model;
        ChildSpec::actor(tag.to_string(), &poller.mailbox, move |cx| {
            Ok(MachinePoller::new(
                model,
                tag.clone(),
                machine.clone(),
                status.clone(),
                gateway.clone(),
                cx.logger().clone(),
                cx.exit_slot(),
            ))
        })
    }

    /// Adds pollers, ignoring those already there: after a failure of the
    /// watcher some may have been added before it stopped.
    pub(super) async fn add(&self, specs: Vec<ChildSpec>) -> Result<(), SupervisorError> {
        if specs.is_empty() {
            return Ok(());
        }
        match self.supervisor.add_all(specs.clone()).await {
            Err(SupervisorError::Duplicate { .. }) => {}
            other => return other,
        }
        for spec in specs {
            match self.supervisor.add(spec).await {
                Ok(()) | Err(SupervisorError::Duplicate { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Stops pollers, ignoring those already gone (e.g. lost with a restart
    /// of the machines supervisor).
    pub(super) async fn remove(&self, names: Vec<String>) -> Result<(), SupervisorError> {
        if names.is_empty() {
            return Ok(());
        }
        match self.supervisor.remove_all(names.clone()).await {
            Err(SupervisorError::NoSuchChild { .. }) => {}
            other => return other,
        }
        for name in names {
            match self.supervisor.remove(&name).await {
                Ok(()) | Err(SupervisorError::NoSuchChild { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The names of the pollers the supervisor holds, running or waiting
    /// for a restart. Read from the supervisor's full report, which also
    /// gathers every child's own report.
    pub(super) async fn present(&self) -> Result<BTreeSet<String>, SendError> {
        let report = self.supervisor.report().await?;
        Ok(report
            .children
            .into_iter()
            .filter(|c| c.dynamic)
            .map(|c| c.name)
            .collect())
    }
}
