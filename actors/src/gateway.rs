//! The provider gateway: the pollers' only path to the cloud.
//!
//! Pollers ask for one instance each. The gateway holds each request for a
//! short window so that the requests of pollers falling due together travel
//! in one provider call of at most `max_batch` ids (and one network-interface
//! call for the same ids), paces its calls under a rate limit, waits out
//! throttling, cuts off calls that hang, and pauses while the cloud refuses
//! the model's credential. Each poller gets its own instance back.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::channel::oneshot;
use muster::error::{ConfigError, ErrorKind, PollError};
use muster::model::CredentialApi;
use muster::provider::{Environ, Instance, InstanceId, NetworkInterface};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use slog::{Logger, debug, info, warn};
use tokio::time::Instant;

/// How the gateway batches and paces provider calls.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// How long a request waits for others to share its provider call.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// The most instance ids in one provider call.
    pub max_batch: usize,
    /// Provider calls per second, sustained.
    pub calls_per_second: f64,
    /// Provider calls that may go at once after a quiet spell.
    pub burst: u32,
    /// How many batches may be waiting on the provider at once.
    pub max_concurrent_batches: usize,
    /// A provider call that has not answered after this long is abandoned.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// Capacity of the gateway's mailbox, which the pollers feed.
    pub mailbox: usize,
    /// The first wait after a throttled call that gave no retry-after; it
    /// doubles with each throttled call in a row.
    #[serde(with = "humantime_serde")]
    pub throttle_backoff: Duration,
    /// The longest wait after throttled calls that gave no retry-after.
    #[serde(with = "humantime_serde")]
    pub throttle_backoff_cap: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            window: Duration::from_millis(100),
            max_batch: 100,
            calls_per_second: 5.0,
            burst: 5,
            max_concurrent_batches: 4,
            call_timeout: Duration::from_secs(30),
            mailbox: 65_536,
            throttle_backoff: Duration::from_secs(1),
            throttle_backoff_cap: Duration::from_secs(60),
        }
    }
}

impl GatewayConfig {
    /// Checks every setting; the error names the first one that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("gateway.call_timeout", self.call_timeout),
            ("gateway.throttle_backoff", self.throttle_backoff),
            ("gateway.throttle_backoff_cap", self.throttle_backoff_cap),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                return Err(ConfigError::new(field, "must be a positive duration"));
            }
        }
        if self.max_batch == 0 {
            return Err(ConfigError::new("gateway.max_batch", "must be at least 1"));
        }
        if !(self.calls_per_second.is_finite() && self.calls_per_second > 0.0) {
            return Err(ConfigError::new(
                "gateway.calls_per_second",
                format!("must be a positive number, not {}", self.calls_per_second),
            ));
        }
        if self.mailbox == 0 {
            return Err(ConfigError::new("gateway.mailbox", "must be at least 1"));
        }
        if self.burst == 0 {
            return Err(ConfigError::new("gateway.burst", "must be at least 1"));
        }
        if self.max_concurrent_batches == 0 {
            return Err(ConfigError::new(
                "gateway.max_concurrent_batches",
                "must be at least 1",
            ));
        }
        if self.throttle_backoff > self.throttle_backoff_cap {
            return Err(ConfigError::new(
                "gateway.throttle_backoff",
                "must not exceed gateway.throttle_backoff_cap",
            ));
        }
        Ok(())
    }
}

/// What the provider said about one instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The provider knows the instance.
    Known {
        /// The instance, with its status and plain addresses.
        instance: Instance,
        /// Its network interfaces; `None` when the provider does not support
        /// networking, so the poller falls back to the plain addresses.
        interfaces: Option<Vec<NetworkInterface>>,
    },
    /// The provider does not know the instance (a partial or empty answer).
    Unknown,
}

/// Asks the gateway for one instance and its network interfaces.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The instance.
    pub id: InstanceId,
}

impl Message for Fetch {
    type Result = Result<Fetched, PollError>;
}

/// Tells the gateway whether the model's credential is valid, as the host
/// knows it; `true` resumes polling paused by a denied credential.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct CredentialValid(pub bool);

/// Asks the gateway for its [`GatewayReport`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "GatewayReport")]
pub struct GetGatewayReport;

/// What the gateway is doing, for the supervision report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayReport {
    /// Requests waiting for a provider call.
    pub queued: usize,
    /// Batches waiting on the provider.
    pub in_flight: usize,
    /// Whether polling is paused because the cloud denied the credential.
    pub credential_paused: bool,
    /// How often the gateway invalidated the model's credential.
    pub credential_invalidations: u64,
    /// How long calls wait yet because the provider throttled them.
    #[serde(with = "humantime_serde")]
    pub throttled_for: Option<Duration>,
    /// Provider calls made, by method.
    pub calls: BTreeMap<&'static str, u64>,
    /// Instance ids asked for, by method.
    pub ids: BTreeMap<&'static str, u64>,
    /// Failed provider calls, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Throttled provider calls.
    pub throttles: u64,
}

/// A provider method, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Method {
    instances,
    network_interfaces,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::instances => "instances",
            Method::network_interfaces => "network_interfaces",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabel {
    method: Method,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ErrorLabel {
    kind: String,
}

/// The gateway's Prometheus metrics. Made once by the host and handed to
/// every incarnation of the gateway, so a restart neither re-registers nor
/// resets them.
#[derive(Debug, Clone, Default)]
pub struct GatewayMetrics {
    calls: Family<MethodLabel, Counter>,
    ids: Family<MethodLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
    throttles: Counter,
    invalidations: Counter,
    queued: Gauge,
    paused: Gauge,
}

impl GatewayMetrics {
    /// Metrics registered in `registry`, under the `muster_provider_` prefix.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = GatewayMetrics::default();
        let provider = registry.sub_registry_with_prefix("muster_provider");
        provider.register(
            "calls",
            "Provider calls made, by method",
            metrics.calls.clone(),
        );
        provider.register(
            "ids",
            "Instance ids asked of the provider, by method",
            metrics.ids.clone(),
        );
        provider.register(
            "errors",
            "Failed provider calls, by kind",
            metrics.errors.clone(),
        );
        provider.register(
            "throttles",
            "Provider calls refused by throttling",
            metrics.throttles.clone(),
        );
        provider.register(
            "credential_invalidations",
            "Times the model's credential was invalidated after the cloud denied access",
            metrics.invalidations.clone(),
        );
        provider.register(
            "queued_requests",
            "Instance requests waiting for a provider call",
            metrics.queued.clone(),
        );
        provider.register(
            "credential_paused",
            "1 while polling is paused for a denied credential",
            metrics.paused.clone(),
        );
        metrics
    }
}

/// Paces calls: `burst` calls may go at once, then one every
/// `1 / calls_per_second`, so no window of `t` seconds holds more than
/// `burst + t × calls_per_second` calls. Each call reserves its slot when its
/// batch is sent, so batches in flight together cannot overrun the limit.
#[derive(Debug)]
struct RateSlots {
    emission: Duration,
    tolerance: Duration,
    /// When the next call would go if no burst were allowed.
    next: Instant,
    /// No call goes before this (the provider asked us to wait).
    blocked_until: Instant,
}

impl RateSlots {
    fn new(config: &GatewayConfig, now: Instant) -> Self {
        let emission = Duration::from_secs_f64(1.0 / config.calls_per_second);
        RateSlots {
            emission,
            tolerance: emission * (config.burst - 1),
            next: now,
            blocked_until: now,
        }
    }

    /// The time at which one more call may go, reserved for it.
    fn reserve(&mut self, now: Instant) -> Instant {
        let next = self.next.max(now);
        let start = next
            .checked_sub(self.tolerance)
            .map_or(now, |start| start.max(now))
            .max(self.blocked_until);
        self.next = next.max(start) + self.emission;
        start
    }

    fn block_until(&mut self, until: Instant) {
        self.blocked_until = self.blocked_until.max(until);
    }
}

/// A poller's request, waiting for its provider call.
struct Waiting {
    id: InstanceId,
    since: Instant,
    reply: oneshot::Sender<Result<Fetched, PollError>>,
}

/// One provider call's fate, for the counters.
struct CallRecord {
    method: Method,
    ids: usize,
    error: Option<PollError>,
}

/// What a batch's calls came to.
enum Answer {
    /// Aligned with the batch's unique ids.
    Instances {
        instances: Vec<Option<Instance>>,
        interfaces: Vec<Option<Vec<NetworkInterface>>>,
    },
    /// The provider knew none of the ids.
    NoneKnown,
}

struct BatchOutcome {
    calls: Vec<CallRecord>,
    answer: Result<Answer, PollError>,
}

/// Whether the cloud is accepting the model's credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    Valid,
    /// Paused; `invalidated` once the gateway has invalidated it itself.
    Denied {
        invalidated: bool,
    },
}

/// The provider gateway actor. See the module documentation.
pub struct ProviderGateway {
    environ: Arc<dyn Environ>,
    credentials: Arc<dyn CredentialApi>,
    config: GatewayConfig,
    metrics: GatewayMetrics,
    log: Logger,
    queue: VecDeque<Waiting>,
    timer: Option<(Instant, SpawnHandle)>,
    slots: RateSlots,
    throttled_in_a_row: u32,
    credential: Credential,
    in_flight: usize,
    invalidations: u64,
    calls: BTreeMap<&'static str, u64>,
    ids: BTreeMap<&'static str, u64>,
    errors: BTreeMap<String, u64>,
    throttles: u64,
}

impl ProviderGateway {
    /// A gateway in front of `environ`; `credentials` is told when the cloud
    /// denies access. The config must have passed [`GatewayConfig::validate`].
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
            queue: VecDeque::new(),
            timer: None,
            throttled_in_a_row: 0,
            credential: Credential::Valid,
            in_flight: 0,
            invalidations: 0,
            calls: BTreeMap::new(),
            ids: BTreeMap::new(),
            errors: BTreeMap::new(),
            throttles: 0,
        }
    }

    /// What the gateway is doing now.
    pub fn report(&self) -> GatewayReport {
        let now = Instant::now();
        GatewayReport {
            queued: self.queue.len(),
            in_flight: self.in_flight,
            credential_paused: self.credential != Credential::Valid,
            credential_invalidations: self.invalidations,
            throttled_for: (self.slots.blocked_until > now).then(|| self.slots.blocked_until - now),
            calls: self.calls.clone(),
            ids: self.ids.clone(),
            errors: self.errors.clone(),
            throttles: self.throttles,
        }
    }

    /// Whether the request at the head of the queue may go now: it has
    /// waited its window, or a full batch is waiting.
    fn head_ready(&self, now: Instant) -> bool {
        self.queue.len() >= self.config.max_batch
            || self
                .queue
                .front()
                .is_some_and(|head| now >= head.since + self.config.window)
    }

    /// Sends every batch that may go now, and sets a timer for the next.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        while self.credential == Credential::Valid
            && self.in_flight < self.config.max_concurrent_batches
            && self.head_ready(now)
        {
            let take = self.queue.len().min(self.config.max_batch);
            let batch: Vec<Waiting> = self.queue.drain(..take).collect();
            self.send(batch, now, ctx);
        }
        self.metrics.queued.set(self.queue.len() as i64);
        self.arm_timer(now, ctx);
    }

    /// Wakes the gateway when the head of the queue has waited its window.
    /// While every batch slot is taken or polling is paused, a finishing
    /// batch or a valid credential wakes it instead.
    fn arm_timer(&mut self, now: Instant, ctx: &mut Context<Self>) {
        let Some(head) = self.queue.front() else {
            return;
        };
        if self.credential != Credential::Valid
            || self.in_flight >= self.config.max_concurrent_batches
        {
            return;
        }
        let due = (head.since + self.config.window).max(now);
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

    fn send(&mut self, batch: Vec<Waiting>, now: Instant, ctx: &mut Context<Self>) {
        // Two pollers may ask for one instance; the provider is asked once.
        let mut unique: Vec<InstanceId> = Vec::with_capacity(batch.len());
        let mut index: HashMap<InstanceId, usize> = HashMap::with_capacity(batch.len());
        for waiting in &batch {
            index.entry(waiting.id.clone()).or_insert_with(|| {
                unique.push(waiting.id.clone());
                unique.len() - 1
            });
        }
        let slots = [self.slots.reserve(now), self.slots.reserve(now)];
        self.in_flight += 1;
        debug!(self.log, "provider call"; "ids" => unique.len(), "requests" => batch.len());
        let call = call_provider(
            self.environ.clone(),
            unique,
            slots,
            self.config.call_timeout,
        );
        ctx.spawn(call.into_actor(self).map(move |outcome, gateway, ctx| {
            gateway.in_flight -= 1;
            gateway.finish(batch, &index, outcome, ctx);
            gateway.dispatch(ctx);
        }));
    }

    fn finish(
        &mut self,
        batch: Vec<Waiting>,
        index: &HashMap<InstanceId, usize>,
        outcome: BatchOutcome,
        ctx: &mut Context<Self>,
    ) {
        for call in &outcome.calls {
            self.count_call(call);
        }
        match outcome.answer {
            Ok(Answer::Instances {
                mut instances,
                mut interfaces,
            }) => {
                self.throttled_in_a_row = 0;
                for waiting in batch {
                    let at = index[&waiting.id];
                    let fetched = match instances[at].clone() {
                        Some(instance) => Fetched::Known {
                            instance,
                            interfaces: interfaces[at].clone(),
                        },
                        None => Fetched::Unknown,
                    };
                    let _ = waiting.reply.send(Ok(fetched));
                }
                instances.clear();
                interfaces.clear();
            }
            Ok(Answer::NoneKnown) => {
                self.throttled_in_a_row = 0;
                for waiting in batch {
                    let _ = waiting.reply.send(Ok(Fetched::Unknown));
                }
            }
            Err(PollError::Throttled { retry_after }) => {
                let wait = retry_after
                    .unwrap_or_else(|| throttle_wait(&self.config, self.throttled_in_a_row));
                self.throttled_in_a_row = self.throttled_in_a_row.saturating_add(1);
                self.slots.block_until(Instant::now() + wait);
                warn!(self.log, "provider throttled the gateway";
                    "wait" => %humantime::format_duration(wait),
                    "requests" => batch.len());
                self.requeue(batch);
            }
            Err(PollError::Unauthorised(reason)) => {
                self.deny_credential(reason, ctx);
                self.requeue(batch);
            }
            Err(error) => {
                for waiting in batch {
                    let _ = waiting.reply.send(Err(error.clone()));
                }
            }
        }
    }

    /// Puts a batch back at the head of the queue, in its order, to go again
    /// when the provider lets it.
    fn requeue(&mut self, batch: Vec<Waiting>) {
        for waiting in batch.into_iter().rev() {
            self.queue.push_front(waiting);
        }
    }

    fn count_call(&mut self, call: &CallRecord) {
        let label = MethodLabel {
            method: call.method,
        };
        *self.calls.entry(call.method.name()).or_default() += 1;
        *self.ids.entry(call.method.name()).or_default() += call.ids as u64;
        self.metrics.calls.get_or_create(&label).inc();
        self.metrics
            .ids
            .get_or_create(&label)
            .inc_by(call.ids as u64);
        if let Some(error) = &call.error {
            let kind = error_label(error);
            *self.errors.entry(kind.clone()).or_default() += 1;
            self.metrics
                .errors
                .get_or_create(&ErrorLabel { kind })
                .inc();
            if error.kind() == ErrorKind::Throttled {
                self.throttles += 1;
                self.metrics.throttles.inc();
            }
        }
    }

    /// The cloud denied access: pause polling and, once per denial,
    /// invalidate the model's credential so the controller shows it.
    fn deny_credential(&mut self, reason: String, ctx: &mut Context<Self>) {
        if self.credential != (Credential::Denied { invalidated: true }) {
            warn!(self.log, "cloud denied access; polling paused until the credential is valid again";
                "reason" => &reason);
            self.credential = Credential::Denied { invalidated: true };
            self.metrics.paused.set(1);
            self.invalidations += 1;
            self.metrics.invalidations.inc();
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

    fn credential_changed(&mut self, valid: bool, ctx: &mut Context<Self>) {
        match (valid, self.credential) {
            (true, Credential::Denied { .. }) => {
                info!(self.log, "model credential valid again; polling resumes";
                    "queued" => self.queue.len());
                self.credential = Credential::Valid;
                self.metrics.paused.set(0);
                self.dispatch(ctx);
            }
            (false, Credential::Valid) => {
                warn!(self.log, "model credential is not valid; polling paused");
                self.credential = Credential::Denied { invalidated: false };
                self.metrics.paused.set(1);
            }
            _ => {}
        }
    }
}

/// The wait after `in_a_row` throttled calls before this one that gave no
/// retry-after: the backoff, doubled each time, capped.
fn throttle_wait(config: &GatewayConfig, in_a_row: u32) -> Duration {
    let doubled = config
        .throttle_backoff
        .saturating_mul(1u32 << in_a_row.min(16));
    doubled.min(config.throttle_backoff_cap)
}

fn error_label(error: &PollError) -> String {
    match error {
        PollError::Other { context, .. } if context == TIMED_OUT => "timeout".to_owned(),
        other => format!("{:?}", other.kind()).to_lowercase(),
    }
}

const TIMED_OUT: &str = "provider call timed out";

/// Runs one batch's provider calls, each no earlier than its reserved slot
/// and for no longer than `timeout`.
async fn call_provider(
    environ: Arc<dyn Environ>,
    ids: Vec<InstanceId>,
    slots: [Instant; 2],
    timeout: Duration,
) -> BatchOutcome {
    let mut calls = Vec::with_capacity(2);
    let mut record = |method, ids, error: Option<&PollError>| {
        calls.push(CallRecord {
            method,
            ids,
            error: error.cloned(),
        });
    };

    tokio::time::sleep_until(slots[0]).await;
    let instances = within(timeout, environ.instances(&ids)).await;
    let instances = instances.and_then(|found| aligned(found, ids.len(), "instances"));
    record(Method::instances, ids.len(), instances.as_ref().err());
    let instances = match instances {
        Ok(found) if found.iter().any(Option::is_some) => found,
        Ok(_) | Err(PollError::NoInstances) => {
            return BatchOutcome {
                calls,
                answer: Ok(Answer::NoneKnown),
            };
        }
        Err(error) => {
            return BatchOutcome {
                calls,
                answer: Err(error),
            };
        }
    };

    // Only the instances the provider knows are asked about again.
    let known: Vec<InstanceId> = ids
        .iter()
        .zip(&instances)
        .filter(|(_, found)| found.is_some())
        .map(|(id, _)| id.clone())
        .collect();
    tokio::time::sleep_until(slots[1]).await;
    let lists = within(timeout, environ.network_interfaces(&known)).await;
    let lists = lists.and_then(|lists| aligned(lists, known.len(), "network interfaces"));
    record(
        Method::network_interfaces,
        known.len(),
        lists.as_ref().err(),
    );
    let mut lists = match lists {
        Ok(lists) => lists.into_iter().map(Some).collect::<Vec<_>>().into_iter(),
        Err(error) if error.kind() == ErrorKind::NotSupported => {
            vec![None; known.len()].into_iter()
        }
        Err(error) => {
            return BatchOutcome {
                calls,
                answer: Err(error),
            };
        }
    };
    let interfaces = instances
        .iter()
        .map(|found| found.as_ref().and_then(|_| lists.next().flatten()))
        .collect();
    BatchOutcome {
        calls,
        answer: Ok(Answer::Instances {
            instances,
            interfaces,
        }),
    }
}

async fn within<T>(
    timeout: Duration,
    call: futures::future::BoxFuture<'static, Result<T, PollError>>,
) -> Result<T, PollError> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(PollError::other(
                TIMED_OUT,
                format!("no answer after {}", humantime::format_duration(timeout)),
            ))
        })
}

/// A provider answer must hold one entry per id asked for; anything else is
/// the provider's error, not a reason to misattribute results.
fn aligned<T>(answer: Vec<T>, asked: usize, what: &str) -> Result<Vec<T>, PollError> {
    if answer.len() == asked {
        Ok(answer)
    } else {
        Err(PollError::other(
            format!("fetching {what}"),
            format!("provider answered {} entries for {asked} ids", answer.len()),
        ))
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
        self.queue.push_back(Waiting {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_slots_allow_a_burst_then_pace() {
        let config = GatewayConfig {
            calls_per_second: 2.0,
            burst: 3,
            ..GatewayConfig::default()
        };
        let now = Instant::now();
        let mut slots = RateSlots::new(&config, now);
        let starts: Vec<Duration> = (0..6).map(|_| slots.reserve(now) - now).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(starts, [ms(0), ms(0), ms(0), ms(500), ms(1000), ms(1500)]);
    }

    #[test]
    fn rate_slots_refill_while_idle_and_honour_a_block() {
        let config = GatewayConfig {
            calls_per_second: 1.0,
            burst: 2,
            ..GatewayConfig::default()
        };
        let start = Instant::now();
        let mut slots = RateSlots::new(&config, start);
        slots.reserve(start);
        slots.reserve(start);
        let later = start + Duration::from_secs(10);
        assert_eq!(
            slots.reserve(later),
            later,
            "a quiet spell refills the burst"
        );
        assert_eq!(slots.reserve(later), later);
        assert_eq!(slots.reserve(later), later + Duration::from_secs(1));
        slots.block_until(later + Duration::from_secs(30));
        assert_eq!(slots.reserve(later), later + Duration::from_secs(30));
    }

    #[test]
    fn no_window_holds_more_calls_than_the_limit_allows() {
        let config = GatewayConfig {
            calls_per_second: 4.0,
            burst: 1,
            ..GatewayConfig::default()
        };
        let now = Instant::now();
        let mut slots = RateSlots::new(&config, now);
        let starts: Vec<Instant> = (0..100).map(|_| slots.reserve(now)).collect();
        for (i, first) in starts.iter().enumerate() {
            let in_window = starts[i..]
                .iter()
                .take_while(|at| **at < *first + Duration::from_secs(1))
                .count();
            assert!(in_window <= 4, "{in_window} calls within a second");
        }
    }

    #[test]
    fn each_bad_setting_is_named() {
        type Spoil = fn(&mut GatewayConfig);
        let cases: [(&str, Spoil); 8] = [
            ("gateway.max_batch", |c| c.max_batch = 0),
            ("gateway.mailbox", |c| c.mailbox = 0),
            ("gateway.calls_per_second", |c| c.calls_per_second = 0.0),
            ("gateway.calls_per_second", |c| {
                c.calls_per_second = f64::NAN
            }),
            ("gateway.burst", |c| c.burst = 0),
            ("gateway.call_timeout", |c| c.call_timeout = Duration::ZERO),
            ("gateway.max_concurrent_batches", |c| {
                c.max_concurrent_batches = 0
            }),
            ("gateway.throttle_backoff", |c| {
                c.throttle_backoff = Duration::from_secs(120)
            }),
        ];
        for (field, spoil) in cases {
            let mut config = GatewayConfig::default();
            spoil(&mut config);
            let error = config.validate().unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
        GatewayConfig::default().validate().unwrap();
    }

    #[test]
    fn throttle_wait_doubles_up_to_its_cap() {
        let config = GatewayConfig::default();
        let waits: Vec<u64> = (0..40)
            .step_by(5)
            .chain(0..7)
            .map(|n| throttle_wait(&config, n).as_secs())
            .collect();
        assert_eq!(
            waits,
            [1, 32, 60, 60, 60, 60, 60, 60, 1, 2, 4, 8, 16, 32, 60]
        );
    }
}

crate::supervised!(ProviderGateway);
