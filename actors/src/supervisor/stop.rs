//! Stopping a child: asking it to stop, bouncing the dependents of a child
//! that stopped, and killing one that takes longer than its timeout.

use std::sync::Arc;
use std::time::Duration;

use actix::Context;
use slog::{debug, info, warn};

use super::actor::Supervisor;
use super::error::SupervisorError;
use super::exit::Exit;
use super::handle::SupervisorRef;
use super::lifecycle::{Lifecycle, StopReason};
use super::timers::Timer;

impl Supervisor {
    /// Asks a running child to stop for `reason`, with a deadline after its
    /// shutdown timeout; a child already stopping only takes the new reason.
    pub(super) fn request_stop(
        &mut self,
        name: &Arc<str>,
        reason: StopReason,
        ctx: &mut Context<Self>,
    ) {
        let Some(child) = self.children.get_mut(name) else {
            return;
        };
        if !child.life.stop(reason) {
            return;
        }
        let Some(instance) = child.life.instance() else {
            return;
        };
        debug!(self.logger, "stopping child"; "child" => &**name, "reason" => ?reason);
        // When the stop cannot be delivered the instance has already ended
        // and its exit is on its way; the exit handler takes it from there.
        let _ = (instance.handle.stop)();
        // Without a runtime (the system is being dropped) no timer can be
        // set; the child's task is dropped with the runtime anyway.
        let runtime = tokio::runtime::Handle::try_current().is_ok();
        if let Some(timeout) = child.shutdown_timeout.filter(|_| runtime) {
            let timer = Timer::StopTimeout(name.clone(), instance.generation, timeout);
            let key = self.set_timer(timeout, timer, ctx);
            if let Some(child) = self.children.get_mut(name)
                && let Lifecycle::Stopping { deadline, .. } = &mut child.life
            {
                *deadline = Some(key);
            }
        }
    }

    /// Bounces the running dependents of `name`, which just stopped.
    pub(super) fn bounce_dependents(&mut self, name: &Arc<str>, ctx: &mut Context<Self>) {
        let Some(deps) = self.dependents.get(name) else {
            return;
        };
        let running: Vec<Arc<str>> = deps
            .iter()
            .filter(|d| {
                self.children
                    .get(*d)
                    .is_some_and(|c| matches!(c.life, Lifecycle::Running(_)))
            })
            .cloned()
            .collect();
        for dep in running {
            info!(self.logger, "bouncing: an input stopped"; "child" => &*dep, "input" => &**name);
            self.request_stop(&dep, StopReason::Dependency, ctx);
        }
    }

    /// Kills child `name`'s running instance at once, as a failure of the
    /// child: it is restarted, or not, as its policy says.
    pub(super) fn kill_child(
        &mut self,
        name: &str,
        ctx: &mut Context<Self>,
    ) -> Result<(), SupervisorError> {
        let running = self
            .children
            .get_key_value(name)
            .filter(|(_, child)| child.life.instance().is_some())
            .map(|(name, _)| name.clone());
        let Some(name) = running else {
            return Err(SupervisorError::NotRunning {
                supervisor: self.path.to_string(),
                child: name.to_owned(),
            });
        };
        warn!(self.logger, "child killed on request"; "child" => &*name);
        let Some(mut ended) = self.end_run(&name) else {
            return Ok(());
        };
        if let Some(handle) = ended.handle.take() {
            (handle.kill)();
        }
        self.handle_exit(
            &name,
            Exit::Failed("killed on request".to_owned()),
            ended,
            ctx,
        );
        Ok(())
    }

    /// The handle of nested supervisor `name`.
    pub(super) fn nested_child(&self, name: &str) -> Result<SupervisorRef, SupervisorError> {
        self.children
            .get(name)
            .and_then(|child| child.spec.nested.clone())
            .ok_or_else(|| SupervisorError::NotRunning {
                supervisor: self.path.to_string(),
                child: name.to_owned(),
            })
    }

    /// Kills the instance `generation` of a child that did not stop within
    /// `timeout`; that is a failure of the child.
    pub(super) fn stop_timed_out(
        &mut self,
        name: &Arc<str>,
        generation: u64,
        timeout: Duration,
        ctx: &mut Context<Self>,
    ) {
        let current = self.children.get(name).is_some_and(|c| {
            c.life
                .instance()
                .is_some_and(|i| i.generation == generation)
        });
        if !current {
            return;
        }
        warn!(self.logger, "child did not stop in time: killed"; "child" => &**name, "timeout" => ?timeout);
        let Some(mut ended) = self.end_run(name) else {
            return;
        };
        if let Some(handle) = ended.handle.take() {
            (handle.kill)();
        }
        let exit = Exit::Failed(format!(
            "did not stop within {}",
            humantime::format_duration(timeout)
        ));
        self.handle_exit(name, exit, ended, ctx);
    }
}
