//! [`ProviderGateway`]: the actor that queues the pollers' requests, sends
//! a batch whenever one may go, answers each poller and waits out
//! throttling; `credential.rs` pauses a model's polling while the cloud
//! denies its credential.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use futures::StreamExt;
use futures::channel::oneshot;
use muster::clock::later;
use muster::error::PollError;
use muster::model::CredentialApi;
use muster::names::ModelUuid;
use muster::provider::{Environ, InstanceId};
use slog::{Logger, debug, warn};
use tokio::time::Instant;

use super::batch::{Batch, ModelKey, Queue, Waiting};
use super::call::{Answer, BatchOutcome, call_provider};
use super::config::GatewayConfig;
use super::credential::{Credential, CredentialWord, GatewayState};
use super::messages::{Fetch, Fetched, GatewayModel, GatewayReport, GetGatewayReport, ModelFetch};
use super::metrics::{GatewayMetrics, Tally};
use super::pacing::{RateSlots, throttle_wait};
use crate::supervisor::Kept;

/// The provider gateway actor. See the [module documentation](super).
pub struct ProviderGateway {
    environ: Arc<dyn Environ>,
    /// The credential API of each model served.
    pub(super) credentials: BTreeMap<ModelKey, Arc<dyn CredentialApi>>,
    config: GatewayConfig,
    pub(super) metrics: GatewayMetrics,
    pub(super) log: Logger,
    /// The requests that may go: those of models whose credential is valid.
    pub(super) queue: Queue,
    /// The requests of models paused for a denied credential, in the
    /// order they arrived.
    pub(super) parked: BTreeMap<ModelKey, Vec<Waiting>>,
    timer: Option<(Instant, SpawnHandle)>,
    slots: RateSlots,
    throttled_in_a_row: u32,
    pub(super) kept: Kept<GatewayState>,
    in_flight: usize,
    pub(super) tally: Tally,
    /// Invalidations made by this incarnation, by model.
    pub(super) invalidations: BTreeMap<ModelKey, u64>,
    /// Whether a model may be called for now; none asked when `None`.
    gate: Option<ModelGate>,
}

/// Whether the provider may be called for a model now: a node polls a
/// model only while its lease on it is valid, and checks just before each
/// call (see [`ProviderGateway::gated_by`]).
pub type ModelGate = Arc<dyn Fn(&ModelUuid) -> bool + Send + Sync>;

impl ProviderGateway {
    /// A gateway in front of `environ` for one model; `credentials` is told
    /// when the cloud denies access. The config should have passed its
    /// [`Validate`](muster::config::Validate) check; one that did not is
    /// paced within the ranges rather than trusted.
    pub fn new(
        environ: Arc<dyn Environ>,
        credentials: Arc<dyn CredentialApi>,
        config: GatewayConfig,
        metrics: GatewayMetrics,
        log: Logger,
    ) -> Self {
        let mut gateway = ProviderGateway::serving(environ, config, metrics, log);
        gateway.credentials.insert(None, credentials);
        gateway
    }

    /// A gateway in front of `environ` for the models of one cloud account,
    /// each with its credential API. Their requests share batches and the
    /// rate limit; a denial of the account's credential is told to each
    /// model's credential API, once per denial, and pauses each model until
    /// its own credential is valid again. Pollers of these models ask with
    /// [`ModelFetch`].
    pub fn for_models(
        environ: Arc<dyn Environ>,
        models: impl IntoIterator<Item = (ModelUuid, Arc<dyn CredentialApi>)>,
        config: GatewayConfig,
        metrics: GatewayMetrics,
        log: Logger,
    ) -> Self {
        let mut gateway = ProviderGateway::serving(environ, config, metrics, log);
        for (model, credentials) in models {
            gateway.credentials.insert(Some(model), credentials);
        }
        gateway
    }

    fn serving(
        environ: Arc<dyn Environ>,
        config: GatewayConfig,
        metrics: GatewayMetrics,
        log: Logger,
    ) -> Self {
        ProviderGateway {
            environ,
            credentials: BTreeMap::new(),
            slots: RateSlots::new(&config, Instant::now()),
            config,
            metrics,
            log,
            queue: Queue::default(),
            parked: BTreeMap::new(),
            timer: None,
            throttled_in_a_row: 0,
            kept: Kept::default(),
            in_flight: 0,
            tally: Tally::default(),
            invalidations: BTreeMap::new(),
            gate: None,
        }
    }

    /// Calls the provider for a model only while `gate` says it may, asked
    /// as each batch goes: a request of a model it refuses is answered
    /// with an error and no call is made for it, so a node that woke from a
    /// pause longer than its lease polls nothing before it notices.
    pub fn gated_by(mut self, gate: ModelGate) -> Self {
        self.gate = Some(gate);
        self
    }

    /// The gateway with its kept state in `state`, a cell made once and
    /// handed to every incarnation (see [`StartCtx::kept`]).
    ///
    /// [`StartCtx::kept`]: crate::supervisor::StartCtx::kept
    pub fn keeping(mut self, state: Kept<GatewayState>) -> Self {
        self.kept = state;
        self
    }

    /// Every request waiting, those of paused models included.
    fn waiting(&self) -> usize {
        self.queue.len() + self.parked.values().map(Vec::len).sum::<usize>()
    }

    /// Brings this gateway's share of the shared `queued_requests` gauge
    /// to what waits now.
    pub(super) fn show_queued(&self) {
        let now = self.waiting() as i64;
        let mut kept = self.kept.lock();
        self.metrics.queued.inc_by(now - kept.queued_shown);
        kept.queued_shown = now;
    }

    /// What the gateway is doing now.
    pub fn report(&self) -> GatewayReport {
        let now = Instant::now();
        let models: Vec<GatewayModel> = self
            .credentials
            .keys()
            .map(|&model| GatewayModel {
                model,
                paused: self.credential(model) != Credential::Valid,
                invalidations: self.invalidations.get(&model).copied().unwrap_or(0),
                queued: self.queue.count_of(model) + self.parked.get(&model).map_or(0, Vec::len),
            })
            .collect();
        GatewayReport {
            queued: self.waiting(),
            in_flight: self.in_flight,
            credential_paused: models.iter().any(|m| m.paused),
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
            models,
        }
    }

    /// Queues a poller's request, or parks it while its model is paused;
    /// a model the gateway does not serve is answered at once.
    fn enqueue(
        &mut self,
        model: ModelKey,
        id: InstanceId,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<Fetched, PollError>> {
        if !self.credentials.contains_key(&model) {
            let served = match model {
                Some(model) => format!("the gateway serves no model {model}"),
                None => "the gateway serves only models named by UUID".to_owned(),
            };
            return Box::pin(std::future::ready(Err(PollError::other(
                "fetching instance",
                served,
            ))));
        }
        let (reply, answer) = oneshot::channel();
        let waiting = Waiting {
            model,
            id,
            since: Instant::now(),
            reply,
        };
        if self.credential(model) == Credential::Valid {
            self.queue.push(waiting);
        } else {
            self.parked.entry(model).or_default().push(waiting);
        }
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

    /// Sends every batch that may go now, and sets a timer for the next.
    pub(super) fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        while self.in_flight < self.config.max_concurrent_batches
            && self
                .queue
                .head_ready(now, self.config.window, self.config.max_batch)
        {
            let requests = self.queue.take(self.config.max_batch);
            self.send(requests, now, ctx);
        }
        self.show_queued();
        self.arm_timer(now, ctx);
    }

    /// Wakes the gateway when the head of the queue has waited its window.
    /// While every batch slot is taken, a finishing batch wakes it instead;
    /// a paused model's requests wait outside the queue for its credential.
    fn arm_timer(&mut self, now: Instant, ctx: &mut Context<Self>) {
        let Some(since) = self.queue.oldest() else {
            return;
        };
        if self.in_flight >= self.config.max_concurrent_batches {
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
        let requests = match &self.gate {
            Some(gate) => {
                let (may, refused): (Vec<_>, Vec<_>) = requests
                    .into_iter()
                    .partition(|w| w.model.is_none_or(|model| gate(&model)));
                for waiting in refused {
                    let model = waiting.model.map(|m| m.to_string()).unwrap_or_default();
                    let _ = waiting.reply.send(Err(PollError::other(
                        "fetching instance",
                        format!(
                            "this node's hold of model {model} is not valid now: no provider call"
                        ),
                    )));
                }
                if may.is_empty() {
                    return;
                }
                may
            }
            None => requests,
        };
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
                self.requeue(batch.into_requests());
            }
            Err(PollError::Unauthorised(reason)) => {
                self.requeue(batch.into_requests());
                self.deny_credential(reason, ctx);
            }
            Err(error) => batch.fail(&error),
        }
    }

    /// Puts a batch's requests back at the head of the queue, in their
    /// order; those of a model paused meanwhile wait with it.
    pub(super) fn requeue(&mut self, requests: Vec<Waiting>) {
        self.queue.requeue(requests);
        for model in self.credentials.keys().copied().collect::<Vec<_>>() {
            if self.credential(model) != Credential::Valid {
                self.pause(model);
            }
        }
    }
}

impl Actor for ProviderGateway {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A new incarnation starts with an empty queue.
        self.show_queued();
        for (&model, credentials) in &self.credentials {
            let watch = credentials
                .watch_credential_validity()
                .map(move |valid| CredentialWord { model, valid });
            ctx.add_stream(watch);
        }
    }
}

impl Handler<Fetch> for ProviderGateway {
    type Result = ResponseFuture<Result<Fetched, PollError>>;

    fn handle(&mut self, fetch: Fetch, ctx: &mut Context<Self>) -> Self::Result {
        self.enqueue(None, fetch.id, ctx)
    }
}

impl Handler<ModelFetch> for ProviderGateway {
    type Result = ResponseFuture<Result<Fetched, PollError>>;

    fn handle(&mut self, fetch: ModelFetch, ctx: &mut Context<Self>) -> Self::Result {
        self.enqueue(Some(fetch.model), fetch.id, ctx)
    }
}

impl Handler<GetGatewayReport> for ProviderGateway {
    type Result = MessageResult<GetGatewayReport>;

    fn handle(&mut self, _: GetGatewayReport, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.report())
    }
}

crate::supervised!(ProviderGateway);
