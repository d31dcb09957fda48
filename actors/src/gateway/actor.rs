//! [`ProviderGateway`]: the actor that queues the pollers' requests, sends
//! a batch whenever one may go, answers each poller, waits out throttling
//! and pauses while the cloud denies the model's credential.

use std::sync::Arc;

use actix::prelude::*;
use futures::channel::oneshot;
use muster::clock::later;
use muster::error::PollError;
use muster::model::CredentialApi;
use muster::provider::Environ;
use slog::{Logger, debug, info, warn};
use tokio::time::Instant;

use super::batch::{Batch, Queue, Waiting};
use super::call::{Answer, BatchOutcome, call_provider};
use super::config::GatewayConfig;
use super::messages::{CredentialValid, Fetch, Fetched, GatewayReport, GetGatewayReport};
use super::metrics::{GatewayMetrics, Tally};
use super::pacing::{RateSlots, throttle_wait};
use crate::supervisor::Kept;

/// Whether the cloud is accepting the model's credential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Credential {
    #[default]
    Valid,
    /// Paused; `invalidated` once the gateway has invalidated it itself.
    Denied { invalidated: bool },
}

/// What the gateway keeps across its restarts: whether polling is paused
/// because the cloud denied the model's credential, and whether the gateway
/// already invalidated it. A restart says nothing about the credential, so
/// a restarted gateway stays paused, and does not invalidate it again.
#[derive(Debug, Default)]
pub struct GatewayState {
    credential: Credential,
}

/// The provider gateway actor. See the [module documentation](super).
pub struct ProviderGateway {
    environ: Arc<dyn Environ>,
    credentials: Arc<dyn CredentialApi>,
    config: GatewayConfig,
    metrics: GatewayMetrics,
    log: Logger,
    queue: Queue,
    timer: Option<(Instant, SpawnHandle)>,
    slots: RateSlots,
    throttled_in_a_row: u32,
    kept: Kept<GatewayState>,
    in_flight: usize,
    tally: Tally,
}

impl ProviderGateway {
    /// A gateway in front of `environ`; `credentials` is told when the cloud
    /// denies access. The config should have passed its
    /// [`Validate`](muster::config::Validate) check; one that did not is
    /// paced within the ranges rather than trusted.
    pub fn new(
        environ: Arc<dyn Environ>,
        credentials: Arc<dyn CredentialApi>,
        config: GatewayConfig,
        metrics: GatewayMetrics,
        log: Logger,
    ) -> Self {
        ProviderGateway {
            environ,
            credentials,
            slots: RateSlots::new(&config, Instant::now()),
            config,
            metrics,
            log,
            queue: Queue::default(),
            timer: None,
            throttled_in_a_row: 0,
            kept: Kept::default(),
            in_flight: 0,
            tally: Tally::default(),
        }
    }

    /// The gateway with its kept state in `state`, a cell made once and
    /// handed to every incarnation (see [`StartCtx::kept`]).
    ///
    /// [`StartCtx::kept`]: crate::supervisor::StartCtx::kept
    pub fn keeping(mut self, state: Kept<GatewayState>) -> Self {
        self.kept = state;
        self
    }

    fn credential(&self) -> Credential {
        self.kept.lock().credential
    }

    fn set_credential(&self, credential: Credential) {
        self.kept.lock().credential = credential;
    }

    /// What the gateway is doing now.
    pub fn report(&self) -> GatewayReport {
        let now = Instant::now();
        GatewayReport {
            queued: self.queue.len(),
            in_flight: self.in_flight,
            credential_paused: self.credential() != Credential::Valid,
            credential_invalidations: self.tally.invalidations,
            throttled_for: self.slots.blocked_for(now),
            calls: self.tally.calls.clone(),
            ids: self.tally.ids.clone(),
            errors: self
                .tally
                .errors
                .iter()
                .map(|(kind, n)| ((*kind).to_owned(), *n))
                .collect(),
            throttles: self.tally.throttles,
        }
    }

    /// Sends every batch that may go now, and sets a timer for the next.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        while self.credential() == Credential::Valid
            && self.in_flight < self.config.max_concurrent_batches
            && self
                .queue
                .head_ready(now, self.config.window, self.config.max_batch)
        {
            let requests = self.queue.take(self.config.max_batch);
            self.send(requests, now, ctx);
        }
        self.metrics.queued.set(self.queue.len() as i64);
        self.arm_timer(now, ctx);
    }

    /// Wakes the gateway when the head of the queue has waited its window.
    /// While every batch slot is taken or polling is paused, a finishing
    /// batch or a valid credential wakes it instead.
    fn arm_timer(&mut self, now: Instant, ctx: &mut Context<Self>) {
        let Some(since) = self.queue.oldest() else {
            return;
        };
        if self.credential() != Credential::Valid
            || self.in_flight >= self.config.max_concurrent_batches
        {
            return;
        }
        let due = later(since, self.config.window).max(now);
        if let Some((at, handle)) = self.timer {
            if at <= due {
                return;
            }
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(due - now, |gateway, ctx| {
            gateway.timer = None;
            gateway.dispatch(ctx);
        });
        self.timer = Some((due, handle));
    }

    /// Sends one batch's calls, each in a slot reserved now.
    fn send(&mut self, requests: Vec<Waiting>, now: Instant, ctx: &mut Context<Self>) {
        let (batch, ids) = Batch::new(requests);
        let slots = [self.slots.reserve(now), self.slots.reserve(now)];
        self.in_flight += 1;
        debug!(self.log, "provider call"; "ids" => ids.len(), "requests" => batch.len());
        let call = call_provider(self.environ.clone(), ids, slots, self.config.call_timeout);
        ctx.spawn(call.into_actor(self).map(move |outcome, gateway, ctx| {
            gateway.in_flight -= 1;
            gateway.finish(batch, outcome, ctx);
            gateway.dispatch(ctx);
        }));
    }

    /// Counts a batch's calls and answers its requests, or queues them
    /// again when the provider throttled the gateway or denied the
    /// credential.
    fn finish(&mut self, batch: Batch, outcome: BatchOutcome, ctx: &mut Context<Self>) {
        for call in &outcome.calls {
            self.tally.count_call(call, &self.metrics);
        }
        match outcome.answer {
            Ok(Answer::Instances {
                instances,
                interfaces,
            }) => {
                self.throttled_in_a_row = 0;
                batch.answer(&instances, &interfaces);
            }
            Ok(Answer::NoneKnown) => {
                self.throttled_in_a_row = 0;
                batch.none_known();
            }
            Err(PollError::Throttled { retry_after }) => {
                let wait = retry_after
                    .unwrap_or_else(|| throttle_wait(&self.config, self.throttled_in_a_row));
                self.throttled_in_a_row = self.throttled_in_a_row.saturating_add(1);
                // The provider's retry-after is not ours to trust.
                self.slots.block_until(later(Instant::now(), wait));
                warn!(self.log, "provider throttled the gateway";
                    "wait" => %humantime::format_duration(wait),
                    "requests" => batch.len());
                self.queue.requeue(batch.into_requests());
            }
            Err(PollError::Unauthorised(reason)) => {
                self.deny_credential(reason, ctx);
                self.queue.requeue(batch.into_requests());
            }
            Err(error) => batch.fail(&error),
        }
    }

    /// The cloud denied access: pause polling and, once per denial,
    /// invalidate the model's credential so the controller shows it.
    fn deny_credential(&mut self, reason: String, ctx: &mut Context<Self>) {
        if self.credential() != (Credential::Denied { invalidated: true }) {
            warn!(self.log, "cloud denied access; polling paused until the credential is valid again";
                "reason" => &reason);
            self.set_credential(Credential::Denied { invalidated: true });
            self.metrics.paused.set(1);
            self.tally.count_invalidation(&self.metrics);
            let log = self.log.clone();
            let invalidate = self.credentials.invalidate_model_credential(reason);
            ctx.spawn(
                async move {
                    if let Err(error) = invalidate.await {
                        warn!(log, "could not invalidate stored cloud credential";
                            "error" => %error);
                    }
                }
                .into_actor(self),
            );
        }
    }

    /// The host or the credential watch says whether the credential is
    /// valid: a valid one resumes polling, an invalid one pauses it.
    fn credential_changed(&mut self, valid: bool, ctx: &mut Context<Self>) {
        match (valid, self.credential()) {
            (true, Credential::Denied { .. }) => {
                info!(self.log, "model credential valid again; polling resumes";
                    "queued" => self.queue.len());
                self.set_credential(Credential::Valid);
                self.metrics.paused.set(0);
                self.dispatch(ctx);
            }
            (false, Credential::Valid) => {
                warn!(self.log, "model credential is not valid; polling paused");
                self.set_credential(Credential::Denied { invalidated: false });
                self.metrics.paused.set(1);
            }
            _ => {}
        }
    }
}

impl Actor for ProviderGateway {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.add_stream(self.credentials.watch_credential_validity());
    }
}

impl StreamHandler<bool> for ProviderGateway {
    fn handle(&mut self, valid: bool, ctx: &mut Context<Self>) {
        self.credential_changed(valid, ctx);
    }

    /// The credential watch ending is no reason to stop polling; the host
    /// can still say the credential is valid through [`CredentialValid`].
    fn finished(&mut self, _ctx: &mut Context<Self>) {
        debug!(self.log, "credential validity watch ended");
    }
}

impl Handler<Fetch> for ProviderGateway {
    type Result = ResponseFuture<Result<Fetched, PollError>>;

    fn handle(&mut self, fetch: Fetch, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        self.queue.push(Waiting {
            id: fetch.id,
            since: Instant::now(),
            reply,
        });
        self.dispatch(ctx);
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| {
                Err(PollError::other(
                    "fetching instance",
                    "the provider gateway stopped before answering",
                ))
            })
        })
    }
}

impl Handler<CredentialValid> for ProviderGateway {
    type Result = ();

    fn handle(&mut self, valid: CredentialValid, ctx: &mut Context<Self>) {
        self.credential_changed(valid.0, ctx);
    }
}

impl Handler<GetGatewayReport> for ProviderGateway {
    type Result = MessageResult<GetGatewayReport>;

    fn handle(&mut self, _: GetGatewayReport, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.report())
    }
}

crate::supervised!(ProviderGateway);
