//! The dynamic group of pollers under the machines supervisor: how the
//! watcher starts, stops and lists them.

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

    /// Which of `tags` have no poller in the supervisor, running or
    /// waiting for a restart. Asks about these names only: the
    /// supervisor's report would list, and gather, every child.
    pub(super) async fn absent(&self, tags: &[&MachineTag]) -> Result<Vec<String>, SendError> {
        let names = tags.iter().map(|tag| tag.as_str().to_owned()).collect();
        self.supervisor.absent_dynamic_children(names).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix::prelude::*;
    use slog::{Discard, Logger, o};

    use super::*;
    use crate::metrics::Metrics;
    use crate::supervisor::{
        DynamicPolicy, Reporter, RestartConfig, RestartPolicy, Root, StatePolicy, SupervisorSpec,
    };

    struct Idle;

    impl Actor for Idle {
        type Context = Context<Self>;
    }
    crate::supervised!(Idle);

    fn idle(name: &str) -> ChildSpec {
        ChildSpec::actor(name, &Mailbox::<Idle>::new(4), |_| Ok(Idle))
    }

    #[actix::test]
    async fn listing_absent_pollers_gathers_no_report() {
        let reports = Arc::new(AtomicUsize::new(0));
        let counted = reports.clone();
        let reporter: Reporter = Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { None })
        });
        let spec = SupervisorSpec::new(RestartConfig::default())
            .child(idle("watcher").report(reporter))
            .dynamic(DynamicPolicy {
                group: "pollers".into(),
                restart: RestartPolicy::Permanent,
                state: StatePolicy::Kept,
            });
        let root = Root::start(
            "machines",
            spec,
            Logger::root(Discard, o!()),
            Metrics::unregistered(),
        )
        .unwrap();
        let supervisor = root.supervisor().clone();
        supervisor
            .add_all(vec![idle("machine-0"), idle("machine-1")])
            .await
            .unwrap();
        let group = PollerGroup::new(None, supervisor, Mailbox::new(1));

        let tags: Vec<MachineTag> = ["machine-0", "machine-2", "machine-1", "machine-3"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let asked: Vec<&MachineTag> = tags.iter().collect();
        assert_eq!(
            group.absent(&asked).await.unwrap(),
            ["machine-2", "machine-3"]
        );
        assert_eq!(reports.load(Ordering::SeqCst), 0, "no report gathered");
        // The full report, by contrast, asks every child with a reporter.
        root.report().await.unwrap();
        assert_eq!(reports.load(Ordering::SeqCst), 1);
        root.shutdown();
        root.wait().await.unwrap();
    }
}
