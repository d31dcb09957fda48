//! [`MachineWatcher`]: follows the model's machine watcher one batch at a
//! time, in order, and tries again later the machines whose model calls
//! failed. What a batch does is in `changes.rs`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use muster::error::PollError;
use muster::model::ModelFacade;
use muster::names::MachineTag;
use slog::{Logger, debug, warn};

use crate::supervisor::{Exit, ExitSlot};

use super::config::MachinesConfig;
use super::group::PollerGroup;
use super::registry::Registry;

/// What the watcher works with; made once with the subtree, so it outlives
/// the watcher's restarts.
pub(super) struct Env {
    pub(super) facade: Arc<dyn ModelFacade>,
    pub(super) registry: Arc<Mutex<Registry>>,
    pub(super) group: PollerGroup,
    pub(super) config: MachinesConfig,
}

/// Follows the model's machines and keeps one poller per polled machine.
/// See the [module documentation](super).
pub struct MachineWatcher {
    env: Arc<Env>,
    log: Logger,
    exit: ExitSlot,
    /// Whether the next batch is the first of this instance's watch.
    first: bool,
    /// Machines whose model calls failed, waiting to be tried again.
    retry: BTreeSet<MachineTag>,
    retry_timer: Option<SpawnHandle>,
    /// The wait before the next retry: the short poll, doubling while
    /// retries keep failing, up to the short-poll cap.
    retry_delay: Duration,
}

impl MachineWatcher {
    pub(super) fn new(env: Arc<Env>, log: Logger, exit: ExitSlot) -> Self {
        let retry_delay = env.config.poll.short_poll;
        MachineWatcher {
            env,
            log,
            exit,
            first: true,
            retry: BTreeSet::new(),
            retry_timer: None,
            retry_delay,
        }
    }

    /// Handles a batch of machines. Waiting keeps the batches in order:
    /// the next one is read only once this one is done.
    fn process(&mut self, tags: Vec<MachineTag>, ctx: &mut Context<Self>) {
        let first = std::mem::replace(&mut self.first, false);
        let env = self.env.clone();
        let log = self.log.clone();
        ctx.wait(
            async move { env.machines_changed(tags, first, &log).await }
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Err(e) => {
                        warn!(act.log, "handling machine changes failed"; "error" => %e);
                        act.exit.stop(ctx, Exit::Failed(e));
                    }
                    Ok(failed) => act.retry_later(failed, ctx),
                }),
        );
    }

    /// Tries the machines whose model calls failed again after a while, as
    /// if the watcher had reported them again: one failed call must not
    /// restart the watcher, which would reset every machine.
    fn retry_later(&mut self, failed: Vec<MachineTag>, ctx: &mut Context<Self>) {
        let config = &self.env.config.poll;
        if failed.is_empty() {
            if self.retry.is_empty() && self.retry_timer.is_none() {
                self.retry_delay = config.short_poll;
            }
            return;
        }
        self.retry.extend(failed);
        if self.retry_timer.is_some() {
            return;
        }
        let delay = self.retry_delay;
        self.retry_delay = delay
            .saturating_mul(2)
            .min(config.short_poll_cap.max(config.short_poll));
        self.retry_timer = Some(ctx.run_later(delay, |act, ctx| {
            act.retry_timer = None;
            let tags = std::mem::take(&mut act.retry).into_iter().collect();
            act.process(tags, ctx);
        }));
    }
}

impl Actor for MachineWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A fresh watch: its first batch holds every machine, which is how a
        // restarted watcher catches up.
        ctx.add_stream(self.env.facade.watch_model_machines());
    }
}

impl StreamHandler<Result<Vec<MachineTag>, PollError>> for MachineWatcher {
    fn handle(&mut self, batch: Result<Vec<MachineTag>, PollError>, ctx: &mut Context<Self>) {
        match batch {
            Ok(tags) => {
                debug!(self.log, "machines changed"; "count" => tags.len());
                self.process(tags, ctx);
            }
            Err(e) => {
                warn!(self.log, "machine watcher failed"; "error" => %e);
                self.exit
                    .stop(ctx, Exit::failed(format!("machine watcher failed: {e}")));
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        warn!(self.log, "machine watcher ended");
        self.exit
            .stop(ctx, Exit::failed("machine watcher ended unexpectedly"));
    }
}

crate::supervised!(MachineWatcher);
