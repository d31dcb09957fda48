//! [`MachinePoller`]: one machine's poller. When its machine is due it asks
//! the gateway for the instance, applies the update rules and the phase
//! rules, and sets a timer for its next poll.

use std::sync::Arc;

use actix::prelude::*;
use muster::error::{ErrorKind, PollError};
use muster::model::{Life, Machine};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{InstanceId, InstanceStatusInfo};
use muster::update::{Update, update_machine};
use slog::{Logger, debug, info, warn};
use tokio::time::Instant;

use crate::gateway::{Fetch, Fetched, ModelFetch, ProviderGateway};
use crate::mailbox::Mailbox;
use crate::supervisor::{Exit, ExitSlot};

use super::registry::{StatusCell, lock};

/// Tells a poller that the watcher saw an event about its machine: short
/// phase, interval reset, next poll one short poll from now.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Reset;

/// The poller's timer: its machine is due.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
struct Poll;

/// Polls one machine's instance through the gateway on the machine's
/// schedule. See the [module documentation](super).
pub struct MachinePoller {
    /// The model, when the gateway serves many.
    model: Option<ModelUuid>,
    tag: MachineTag,
    machine: Arc<dyn Machine>,
    status: StatusCell,
    gateway: Mailbox<ProviderGateway>,
    log: Logger,
    exit: ExitSlot,
    timer: Option<SpawnHandle>,
    /// A poll is waiting for its answer.
    polling: bool,
    /// A reset arrived during the poll; it applies after the poll's answer.
    reset_pending: bool,
}

impl MachinePoller {
    /// A poller for `machine` that resumes from the schedule in `status`.
    pub(super) fn new(
        model: Option<ModelUuid>,
        tag: MachineTag,
        machine: Arc<dyn Machine>,
        status: StatusCell,
        gateway: Mailbox<ProviderGateway>,
        log: Logger,
        exit: ExitSlot,
    ) -> Self {
        MachinePoller {
            model,
            tag,
            machine,
            status,
            gateway,
            log,
            exit,
            timer: None,
            polling: false,
            reset_pending: false,
        }
    }
}

/// How one poll went.
enum Outcome {
    /// The machine has no instance yet.
    NotProvisioned,
    /// Resolving the instance id failed otherwise.
    NoInstanceId(PollError),
    /// The gateway or the provider failed.
    Failed(InstanceId, String),
    /// The provider does not know the instance.
    Unknown(InstanceId),
    /// The model refused the update.
    ModelFailed(InstanceId, PollError),
    /// The machine was updated.
    Updated(InstanceId, InstanceStatusInfo, Box<Update>),
}

/// One poll. The update's future is boxed once the gateway has answered:
/// inline, it would make every poll waiting in the gateway's batch window
/// (ten thousand of them at once when a fleet boots) as big as the update.
async fn poll_once(
    model: Option<ModelUuid>,
    machine: Arc<dyn Machine>,
    gateway: Mailbox<ProviderGateway>,
    known_id: Option<InstanceId>,
) -> Outcome {
    let id = match known_id {
        Some(id) => id,
        None => match machine.instance_id().await {
            Ok(id) => id,
            Err(e) if e.kind() == ErrorKind::NotProvisioned => return Outcome::NotProvisioned,
            Err(e) => return Outcome::NoInstanceId(e),
        },
    };
    let asked = match model {
        Some(model) => {
            let fetch = ModelFetch {
                model,
                id: id.clone(),
            };
            gateway.send(fetch).await
        }
        None => gateway.send(Fetch { id: id.clone() }).await,
    };
    let fetched = match asked {
        Ok(Ok(fetched)) => fetched,
        Ok(Err(e)) => return Outcome::Failed(id, e.to_string()),
        Err(e) => return Outcome::Failed(id, e.to_string()),
    };
    match fetched {
        Fetched::Unknown => Outcome::Unknown(id),
        Fetched::Known {
            instance,
            interfaces,
        } => match Box::pin(update_machine(&*machine, &instance, interfaces)).await {
            Ok(update) => Outcome::Updated(id, instance.status, Box::new(update)),
            Err(e) => Outcome::ModelFailed(id, e),
        },
    }
}

impl MachinePoller {
    /// Sets the timer for the next poll, replacing any earlier one, so that
    /// a reset during a poll never leaves two timers.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        let next = lock(&self.status).state.next_poll();
        let wait = next.saturating_duration_since(Instant::now());
        self.timer = Some(ctx.notify_later(Poll, wait));
    }

    /// Applies one poll's outcome to the schedule and the status.
    fn settle(&mut self, outcome: Outcome, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let log = &self.log;
        let mut status = lock(&self.status);
        match outcome {
            Outcome::NotProvisioned => {
                debug!(log, "machine not provisioned yet");
                status.state.bump(now);
            }
            Outcome::NoInstanceId(e) => {
                warn!(log, "cannot resolve the machine's instance"; "error" => %e);
                status.last_error = Some(e.to_string());
                if std::mem::take(&mut self.reset_pending) {
                    status.state.watcher_event(now);
                }
                drop(status);
                self.exit.stop(
                    ctx,
                    Exit::failed(format!("resolving the instance of {}: {e}", self.tag)),
                );
                return;
            }
            Outcome::Failed(id, e) => {
                warn!(log, "polling instance failed"; "instance" => %id, "error" => %e);
                status.instance_id = Some(id);
                status.polls += 1;
                status.last_error = Some(e);
                status.state.bump(now);
            }
            Outcome::Unknown(id) => {
                info!(log, "unable to retrieve instance information for instance"; "instance" => %id);
                status.last_error = Some(format!("the provider does not know instance {id}"));
                status.instance_id = Some(id);
                status.polls += 1;
                status.state.instance_missing(now);
            }
            Outcome::ModelFailed(id, e) => {
                status.instance_id = Some(id);
                status.polls += 1;
                status.last_error = Some(e.to_string());
                if e.kind() == ErrorKind::NotFound {
                    // The machine is being removed; the watcher stops this
                    // poller when it hears of it.
                    info!(log, "machine not found while updating it"; "error" => %e);
                    status.state.bump(now);
                } else {
                    warn!(log, "updating the machine failed"; "error" => %e);
                    if std::mem::take(&mut self.reset_pending) {
                        status.state.watcher_event(now);
                    }
                    drop(status);
                    self.exit
                        .stop(ctx, Exit::failed(format!("updating {}: {e}", self.tag)));
                    return;
                }
            }
            Outcome::Updated(id, instance_status, update) => {
                if let Some((from, to)) = &update.status_change {
                    info!(log, "instance status changed";
                        "instance" => %id, "from" => %from.status, "to" => %to.status,
                        "message" => &to.message);
                }
                if update.addresses_changed {
                    info!(log, "has new addresses";
                        "instance" => %id, "addresses" => ?update.addresses);
                }
                if let Some(e) = &update.machine_status_error {
                    warn!(log, "cannot read the machine's agent status, taking it as pending";
                        "error" => %e);
                }
                if let Some(e) = &update.recorded_status_error {
                    warn!(log, "cannot read the machine's recorded instance status, \
                        taking it as unknown"; "instance" => %id, "error" => %e);
                }
                // A dead machine's addresses are not updated, nor those of a
                // machine whose record could not be read; keep the last
                // ones seen.
                if self.machine.life() != Life::Dead && update.recorded_status_error.is_none() {
                    status.addresses = update.addresses.clone();
                }
                let rule = update.apply(&mut status.state, now);
                debug!(log, "polled instance";
                    "instance" => %id, "status" => %instance_status.status,
                    "rule" => ?rule, "phase" => %status.state.phase(),
                    "interval" => ?status.state.interval());
                status.instance_id = Some(id);
                status.instance_status = Some(instance_status);
                status.last_error = update
                    .recorded_status_error
                    .as_ref()
                    .or(update.machine_status_error.as_ref())
                    .map(|e| e.to_string());
                status.polls += 1;
            }
        }
        if std::mem::take(&mut self.reset_pending) {
            status.state.watcher_event(now);
        }
        drop(status);
        self.schedule(ctx);
    }
}

impl Actor for MachinePoller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A restarted poller resumes its schedule; a poll it missed while it
        // was down is due at once.
        self.schedule(ctx);
    }
}

impl Handler<Poll> for MachinePoller {
    type Result = ();

    fn handle(&mut self, _: Poll, ctx: &mut Context<Self>) {
        self.timer = None;
        if self.polling {
            return;
        }
        let known_id = {
            let status = lock(&self.status);
            if !status.state.is_due(Instant::now()) {
                // Rescheduled since this timer was set.
                drop(status);
                self.schedule(ctx);
                return;
            }
            status.instance_id.clone()
        };
        let poll = poll_once(
            self.model,
            self.machine.clone(),
            self.gateway.clone(),
            known_id,
        );
        // Spawned rather than waited on, so that the poller still stops at
        // once while the gateway holds its request (e.g. while the
        // credential is invalid).
        self.polling = true;
        ctx.spawn(poll.into_actor(self).map(|outcome, act, ctx| {
            act.polling = false;
            act.settle(outcome, ctx);
        }));
    }
}

impl Handler<Reset> for MachinePoller {
    type Result = ();

    fn handle(&mut self, _: Reset, ctx: &mut Context<Self>) {
        debug!(self.log, "watcher event: back to the short phase");
        if self.polling {
            // Applied once the poll is, so that a poll which started before
            // the event does not overwrite it.
            self.reset_pending = true;
            return;
        }
        lock(&self.status).state.watcher_event(Instant::now());
        self.schedule(ctx);
    }
}

crate::supervised!(MachinePoller);
