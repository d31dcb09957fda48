//! Starting a child: a new instance from its starter, and the dependents
//! that were waiting for it.

use muster::sync::lock;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::SystemTime;

use actix::Context;
use rand::Rng;
use slog::{info, o};
use tokio::time::Instant;

use super::actor::{ChildExited, Supervisor};
use super::context::StartCtx;
use super::exit::{Exit, ExitSlot};
use super::lifecycle::{Instance, Lifecycle};
use super::task::{Notify, panic_message};
use crate::metrics::RestartReason;

impl Supervisor {
    /// Starts a child that is not running; a start that fails is handled as
    /// an exit.
    pub(super) fn start_child(&mut self, name: &Arc<str>, ctx: &mut Context<Self>) {
        if self.shutdown.is_some() {
            return;
        }
        let seed: u64 = self.rng.random();
        let Some(addr) = self.addr.clone() else {
            return;
        };
        let Some(child) = self.children.get_mut(name) else {
            return;
        };
        if child.life.instance().is_some() {
            return;
        }
        // A failed child stays failed until an instance of it runs.
        child.life = match std::mem::replace(&mut child.life, Lifecycle::Pending) {
            Lifecycle::Restarting { timer, reason } => {
                self.timers.cancel(timer);
                if reason == RestartReason::Failure {
                    Lifecycle::Failed
                } else {
                    Lifecycle::Pending
                }
            }
            Lifecycle::Failed => Lifecycle::Failed,
            _ => Lifecycle::Pending,
        };
        child.start_count += 1;
        let generation = child.start_count;
        let notify_name = name.clone();
        let notify: Notify = Box::new(move |exit| {
            addr.do_send(ChildExited {
                name: notify_name,
                generation,
                exit,
            })
        });
        let path = format!("{}/{}", self.path, name);
        let mut cx = StartCtx {
            name,
            path: &path,
            metrics_label: &child.metrics_label,
            start_count: child.start_count,
            declared: &child.spec.inputs,
            outputs: &self.outputs,
            exit: ExitSlot::default(),
            logger: self.logger.new(o!("child" => name.to_string())),
            base_logger: &self.base_logger,
            kept: &child.spec.kept,
            state: child.spec.state,
            output: None,
            metrics: &self.metrics,
            seed,
            health: self.health.board(),
            arbiter: child.spec.arbiter.clone(),
        };
        let started = {
            let mut starter = lock(&child.spec.starter);
            // A panic in the start function is a failure of the child.
            catch_unwind(AssertUnwindSafe(|| starter.start(&mut cx, notify)))
        };
        let output = cx.output.take();
        match started {
            Ok(Ok(handle)) => {
                let seq = self.next_seq;
                self.next_seq += 1;
                child.life = Lifecycle::Running(Instance {
                    handle,
                    generation,
                    seq,
                    since: Instant::now(),
                });
                child.started_at = Some(SystemTime::now());
                info!(self.logger, "child started"; "child" => &**name, "start_count" => child.start_count);
                self.running_order.insert(seq, name.clone());
                // Dynamic children cannot be inputs, so their outputs are
                // not kept.
                if let Some(output) = output.filter(|_| !child.dynamic) {
                    self.outputs.insert(name.clone(), output);
                }
                self.start_waiting_dependents(name, ctx);
            }
            Ok(Err(exit)) => self.exited(name, exit, ctx),
            Err(panic) => self.exited(
                name,
                Exit::Failed(format!("panicked: {}", panic_message(panic.as_ref()))),
                ctx,
            ),
        }
    }

    /// Starts the dependents of `name` that wait for an input.
    fn start_waiting_dependents(&mut self, name: &Arc<str>, ctx: &mut Context<Self>) {
        let Some(deps) = self.dependents.get(name) else {
            return;
        };
        let waiting: Vec<Arc<str>> = deps
            .iter()
            .filter(|d| {
                self.children
                    .get(*d)
                    .is_some_and(|c| matches!(c.life, Lifecycle::WaitingForInput))
            })
            .cloned()
            .collect();
        for dep in waiting {
            self.start_child(&dep, ctx);
        }
    }
}
