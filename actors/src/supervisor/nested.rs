//! A supervisor as the child of another: its specification and its
//! starter.

use std::sync::{Arc, Mutex};

use super::actor::Supervisor;
use super::context::StartCtx;
use super::error::SupervisorError;
use super::exit::Exit;
use super::handle::SupervisorRef;
use super::spec::{ChildSpec, SupervisorSpec, check_name};
use super::task::{InstanceHandle, Notify, Starter, claim, spawn_actor};
use crate::metrics::MailboxStats;

impl ChildSpec {
    /// A nested supervisor child; `handle` is its stable handle, and also its
    /// output for dependents. Its report is the nested supervisor's report.
    pub fn supervisor(
        name: impl Into<String>,
        spec: SupervisorSpec,
        handle: &SupervisorRef,
    ) -> Result<Self, SupervisorError> {
        let name = name.into();
        check_name(&name)?;
        spec.validate(&name)?;
        let mut child = ChildSpec::from_starter(
            name,
            Arc::new(Mutex::new(SupervisorStarter {
                spec,
                handle: handle.clone(),
            })),
            true,
        );
        child.nested = Some(handle.clone());
        Ok(child)
    }
}

/// Starts a new instance of a nested supervisor behind its stable handle.
struct SupervisorStarter {
    spec: SupervisorSpec,
    handle: SupervisorRef,
}

impl Starter for SupervisorStarter {
    fn start(&mut self, cx: &mut StartCtx<'_>, notify: Notify) -> Result<InstanceHandle, Exit> {
        let mailbox = &self.handle.0;
        claim(mailbox.meter(), cx)?;
        let sup = Supervisor::new(
            cx.path,
            self.spec.clone(),
            cx.base_logger.clone(),
            cx.metrics.clone(),
            cx.exit.clone(),
            cx.seed,
            cx.health.clone(),
        );
        cx.set_output(self.handle.clone());
        Ok(spawn_actor(
            sup,
            mailbox,
            cx.exit.clone(),
            notify,
            cx.arbiter.clone(),
        ))
    }

    fn stats(&self) -> Option<MailboxStats> {
        Some(self.handle.0.stats())
    }
}
