//! A supervisor's shutdown: its children stop one at a time, in reverse
//! start order, then the supervisor itself stops with the worst exit seen.

use std::sync::Arc;

use actix::{ActorContext, Context};
use slog::{info, warn};

use super::actor::Supervisor;
use super::exit::Exit;
use super::lifecycle::{Lifecycle, StopReason};
use crate::metrics::RestartReason;

/// A shutdown under way.
pub(super) struct Shutdown {
    /// What the supervisor exits with; `None` is a clean stop.
    pub(super) exit: Option<Exit>,
    /// The child being stopped now.
    pub(super) current: Option<Arc<str>>,
    /// Every child has stopped.
    pub(super) done: bool,
}

impl Supervisor {
    /// Starts shutting down, or, when already shutting down, keeps the
    /// worse of the two exits.
    pub(super) fn begin_shutdown(&mut self, exit: Option<Exit>, ctx: &mut Context<Self>) {
        if let Some(shutdown) = &mut self.shutdown {
            // The worst error wins: a fatal one over a failure.
            let upgrade = match (&shutdown.exit, &exit) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(Exit::Fatal(_)), _) => false,
                (Some(_), Some(Exit::Fatal(_))) => true,
                _ => false,
            };
            if upgrade {
                shutdown.exit = exit;
            }
            return;
        }
        match &exit {
            Some(e) => warn!(self.logger, "supervisor shutting down"; "exit" => %e),
            None => info!(self.logger, "supervisor shutting down"),
        }
        if let Some(status) = &self.status {
            status.stopping();
        }
        self.shutdown = Some(Shutdown {
            exit,
            current: None,
            done: false,
        });
        for child in self.children.values_mut() {
            if let Lifecycle::Restarting { timer, reason } = child.life {
                self.timers.cancel(timer);
                child.life = if reason == RestartReason::Failure {
                    Lifecycle::Failed
                } else {
                    Lifecycle::Stopped
                };
            }
        }
        self.continue_shutdown(ctx);
    }

    /// Stops the most recently started running child, one at a time, then
    /// stops the supervisor itself.
    pub(super) fn continue_shutdown(&mut self, ctx: &mut Context<Self>) {
        let Some(shutdown) = &mut self.shutdown else {
            return;
        };
        if shutdown.done {
            return;
        }
        if let Some(current) = &shutdown.current
            && self
                .children
                .get(current)
                .is_some_and(|c| c.life.instance().is_some())
        {
            return;
        }
        match self.running_order.last_key_value() {
            Some((_, name)) => {
                let name = name.clone();
                shutdown.current = Some(name.clone());
                // A child already stopping only takes the new reason.
                self.request_stop(&name, StopReason::Shutdown, ctx);
            }
            None => {
                shutdown.done = true;
                shutdown.current = None;
                if let Some(exit) = shutdown.exit.clone() {
                    self.exit.set(exit);
                }
                if let Some(status) = &self.status {
                    status.stopped(shutdown.exit.clone().unwrap_or(Exit::Done));
                }
                for child in self.children.values_mut() {
                    for waiter in child.removal_waiters.drain(..) {
                        let _ = waiter.send(());
                    }
                }
                info!(self.logger, "supervisor stopped");
                ctx.stop();
            }
        }
    }
}
