//! What follows the end of a child's run: a restart after a delay, a wait
//! for an input, removal, or giving up (the table in the module docs).

use std::sync::Arc;
use std::time::Duration;

use actix::Context;
use slog::{crit, error, info};
use tokio::time::Instant;

use super::actor::Supervisor;
use super::exit::Exit;
use super::lifecycle::{Lifecycle, StopReason};
use super::policy::RestartPolicy;
use super::task::InstanceHandle;
use super::timers::Timer;
use crate::metrics::RestartReason;

/// A run that ended, as the decision of what follows needs it.
pub(super) struct Ended {
    /// The ended instance's handle; `None` when its start failed.
    pub(super) handle: Option<InstanceHandle>,
    /// How long it ran.
    pub(super) ran_for: Duration,
    /// Why the supervisor stopped it, when it did.
    pub(super) reason: Option<StopReason>,
}

impl Supervisor {
    /// A child's run, or its start, ended with `exit`.
    pub(super) fn exited(&mut self, name: &Arc<str>, exit: Exit, ctx: &mut Context<Self>) {
        if let Some(ended) = self.end_run(name) {
            self.handle_exit(name, exit, ended, ctx);
        }
    }

    /// Takes a child out of the running: its instance, its place in the
    /// start order, its stop deadline and its output.
    pub(super) fn end_run(&mut self, name: &Arc<str>) -> Option<Ended> {
        let child = self.children.get_mut(name)?;
        let run = child.life.end();
        if let Some(key) = run.deadline {
            self.timers.cancel(key);
        }
        let (handle, ran_for) = match run.instance {
            Some(instance) => {
                self.running_order.remove(&instance.seq);
                (Some(instance.handle), instance.since.elapsed())
            }
            None => (None, Duration::ZERO),
        };
        self.outputs.remove(name);
        Some(Ended {
            handle,
            ran_for,
            reason: run.reason,
        })
    }

    /// Decides what follows a run that ended with `exit`.
    pub(super) fn handle_exit(
        &mut self,
        name: &Arc<str>,
        exit: Exit,
        ended: Ended,
        ctx: &mut Context<Self>,
    ) {
        let Some(child) = self.children.get_mut(name) else {
            return;
        };
        let Ended {
            handle,
            ran_for,
            reason,
        } = ended;
        drop(handle);
        child.last_exit = Some(exit.clone());
        if let Exit::Failed(e) | Exit::Fatal(e) = &exit {
            child.last_error = Some(e.clone());
        }
        let restart = child.spec.restart;
        if self.shutdown.is_none() {
            self.bounce_dependents(name, ctx);
        }

        if let Exit::Fatal(e) = &exit {
            if let Some(c) = self.children.get_mut(name) {
                c.life = Lifecycle::Failed;
                crit!(self.logger, "child exited with a fatal error"; "child" => &**name, "error" => e.as_str());
            }
            // A nested supervisor's fatal error already names its child.
            let error = match self.children.get(name) {
                Some(c) if c.spec.is_supervisor => e.clone(),
                _ => format!("{}/{name}: {e}", self.path),
            };
            self.begin_shutdown(Some(Exit::Fatal(error)), ctx);
            return;
        }
        if self.shutdown.is_some() {
            if let Some(c) = self.children.get_mut(name) {
                c.life = if matches!(exit, Exit::Failed(_)) && reason != Some(StopReason::Shutdown)
                {
                    Lifecycle::Failed
                } else {
                    Lifecycle::Stopped
                };
                info!(self.logger, "child stopped"; "child" => &**name, "exit" => %exit);
            }
            self.continue_shutdown(ctx);
            return;
        }
        match reason {
            Some(StopReason::Remove) => {
                self.remove_now(name);
                return;
            }
            Some(StopReason::Dependency) => {
                let delay = self.config.bounce_delay;
                self.schedule_restart(name, delay, RestartReason::Dependency, ctx);
                return;
            }
            Some(StopReason::Shutdown) | None => {}
        }
        let Some(child) = self.children.get_mut(name) else {
            return;
        };
        match exit {
            Exit::Fatal(_) => {}
            Exit::Uninstall => {
                info!(self.logger, "child uninstalled"; "child" => &**name);
                self.remove_now(name);
            }
            Exit::Missing { input } => {
                info!(self.logger, "child waits for an input"; "child" => &**name, "input" => input.as_str());
                child.life = Lifecycle::WaitingForInput;
            }
            Exit::Bounce => {
                if restart == RestartPolicy::Temporary {
                    info!(self.logger, "temporary child asked to bounce: not restarted"; "child" => &**name);
                    child.life = Lifecycle::Stopped;
                } else {
                    info!(self.logger, "child bounced"; "child" => &**name);
                    let delay = self.config.bounce_delay;
                    self.schedule_restart(name, delay, RestartReason::Bounce, ctx);
                }
            }
            Exit::Done => {
                if restart == RestartPolicy::Permanent {
                    info!(self.logger, "permanent child finished: restarting"; "child" => &**name);
                    let delay = self.config.bounce_delay;
                    self.schedule_restart(name, delay, RestartReason::Done, ctx);
                } else {
                    info!(self.logger, "child finished"; "child" => &**name);
                    child.life = Lifecycle::Stopped;
                }
            }
            Exit::Failed(e) => {
                child.recent_failures = if ran_for > self.config.backoff_reset_time {
                    1
                } else {
                    child.recent_failures.saturating_add(1)
                };
                child.life = Lifecycle::Failed;
                if restart == RestartPolicy::Temporary {
                    error!(self.logger, "temporary child failed: not restarted"; "child" => &**name, "error" => e.as_str());
                } else {
                    let delay = self
                        .config
                        .failure_delay(child.recent_failures, &mut self.rng);
                    error!(self.logger, "child failed"; "child" => &**name,
                        "error" => e.as_str(),
                        "recent_failures" => child.recent_failures,
                        "restart_in" => %humantime::format_duration(delay));
                    self.schedule_restart(name, delay, RestartReason::Failure, ctx);
                }
            }
        }
    }

    /// Restarts a child after `delay`, unless that exceeds the restart
    /// intensity: then the supervisor stops its children and fails.
    fn schedule_restart(
        &mut self,
        name: &Arc<str>,
        delay: Duration,
        reason: RestartReason,
        ctx: &mut Context<Self>,
    ) {
        let counted = reason != RestartReason::Dependency;
        if counted
            && !self.intensity.record(
                Instant::now(),
                self.config.max_restarts,
                self.config.restart_window,
            )
        {
            // The last child's exit goes with it, so that a host whose tree
            // gives up learns the error at the bottom of the chain.
            let last = match self.children.get(name).and_then(|c| c.last_exit.as_ref()) {
                Some(exit) => format!("{name}, {exit}"),
                None => name.to_string(),
            };
            let msg = format!(
                "restart intensity exceeded: more than {} restarts within {} (last: {last})",
                self.config.max_restarts,
                humantime::format_duration(self.config.restart_window)
            );
            error!(self.logger, "supervisor gives up"; "error" => msg.as_str());
            if let Some(c) = self.children.get_mut(name)
                && !matches!(c.life, Lifecycle::Failed)
            {
                c.life = Lifecycle::Stopped;
            }
            self.begin_shutdown(Some(Exit::Failed(msg)), ctx);
            return;
        }
        let Some(child) = self.children.get_mut(name) else {
            return;
        };
        self.metrics.restarted(&child.metrics_label, reason);
        match reason {
            RestartReason::Failure => child.restarts.failure += 1,
            RestartReason::Bounce => child.restarts.bounce += 1,
            RestartReason::Done => child.restarts.done += 1,
            RestartReason::Dependency => child.restarts.dependency += 1,
        }
        let timer = self.set_timer(delay, Timer::Restart(name.clone()), ctx);
        if let Some(child) = self.children.get_mut(name) {
            child.life = Lifecycle::Restarting { timer, reason };
        }
    }
}
