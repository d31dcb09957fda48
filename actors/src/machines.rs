//! The instance poller as actors (SPEC §2): a [`MachineWatcher`] that follows
//! the model's machines, and one [`MachinePoller`] per provisioned machine,
//! under a nested supervisor.
//!
//! The watcher consumes the model facade's machine watcher. A new machine gets
//! a poller, added as a dynamic child of the "pollers" group and named by its
//! tag; a manually provisioned one is marked running and never polled. An
//! event about a known machine refreshes it: a dead or removed machine's
//! poller is stopped, any other is told to go back to the short phase.
//!
//! Each poller owns its machine's schedule ([`PollState`]), asks the
//! [`ProviderGateway`] for the instance when it is due, applies the update
//! rules of [`update_machine`], and sets a timer for its next poll. The
//! gateway batches the requests of pollers that fall due together.
//!
//! A poller's schedule and what it last saw live in a shared cell made by the
//! watcher: a restarted poller resumes from its phase and interval, and
//! [`MachinesHandle`] answers queries from the cells without messaging
//! thousands of pollers. The watcher's own record of the machines outlives
//! its restarts, so a restarted watcher reads every machine again without
//! starting a second poller for any of them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix::prelude::*;
use futures::StreamExt;
use serde::{Deserialize, Serialize, Serializer};
use slog::{Logger, debug, info, warn};
use tokio::time::Instant;

use muster::error::{ErrorKind, PollError};
use muster::model::{Life, Machine, ModelFacade};
use muster::names::MachineTag;
use muster::poll::{Phase, PollConfig, PollState};
use muster::provider::{Address, InstanceId, InstanceStatusInfo};
use muster::update::{Update, settle_manual_machine, update_machine};

use crate::gateway::{Fetch, Fetched, ProviderGateway};
use crate::mailbox::{Mailbox, SendError};
use crate::supervisor::{
    ChildSpec, DynamicPolicy, Exit, ExitSlot, RestartConfig, RestartPolicy, StatePolicy,
    SupervisorError, SupervisorRef, SupervisorSpec,
};

/// How many model calls the watcher makes at once: a first batch may name
/// thousands of machines, and the API server should not get them all at
/// once.
const MODEL_CALLS_AT_ONCE: usize = 64;

/// Runs `calls` with at most [`MODEL_CALLS_AT_ONCE`] in flight; answers in
/// order.
async fn at_most_a_few<T, F>(calls: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: Future<Output = T>,
{
    futures::stream::iter(calls)
        .buffered(MODEL_CALLS_AT_ONCE)
        .collect()
        .await
}

/// The name of the dynamic group the pollers belong to.
pub const POLLERS_GROUP: &str = "pollers";

/// The name of the watcher child in the machines supervisor.
pub const WATCHER_CHILD: &str = "watcher";

/// Settings of the machine subtree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MachinesConfig {
    /// The poll schedule (SPEC §2).
    pub poll: PollConfig,
    /// The timing of the "machines" supervisor, which restarts the watcher
    /// and every poller: its restart intensity is shared by thousands of
    /// pollers, so it must tolerate many failures.
    pub restart: RestartConfig,
    /// How many messages each poller's mailbox holds.
    pub poller_mailbox: usize,
}

impl Default for MachinesConfig {
    fn default() -> Self {
        MachinesConfig {
            poll: PollConfig::default(),
            restart: RestartConfig {
                max_restarts: 1000,
                restart_window: Duration::from_secs(10),
                ..RestartConfig::default()
            },
            poller_mailbox: 16,
        }
    }
}

/// A [`MachinesConfig`] value that was rejected; `field` is its full name
/// in a configuration file, e.g. `machines.poll.short_poll`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct MachinesConfigError {
    /// The field, with its `machines.` prefix.
    pub field: String,
    /// What was wrong with it.
    pub reason: String,
}

impl MachinesConfig {
    /// Checks the poll schedule, the restart timing and the mailbox size;
    /// the error names the first field out of range.
    pub fn validate(&self) -> Result<(), MachinesConfigError> {
        self.poll.validate().map_err(|e| MachinesConfigError {
            field: format!("machines.poll.{}", e.field),
            reason: e.reason,
        })?;
        self.restart.validate().map_err(|e| MachinesConfigError {
            field: format!("machines.restart.{}", e.field),
            reason: e.problem,
        })?;
        if self.poller_mailbox == 0 {
            return Err(MachinesConfigError {
                field: "machines.poller_mailbox".to_owned(),
                reason: "must be at least 1, got 0".to_owned(),
            });
        }
        Ok(())
    }
}

/// How muster follows a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tracking {
    /// A poller polls the provider for it.
    Polled,
    /// Manually provisioned: set running once, never polled.
    Manual,
}

/// One machine as muster sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineState {
    /// The machine.
    pub tag: MachineTag,
    /// Whether it is polled.
    pub tracking: Tracking,
    /// Its poll phase; `None` for a manual machine.
    #[serde(serialize_with = "phase_text")]
    pub phase: Option<Phase>,
    /// The wait between its polls in the current phase; `None` for a manual
    /// machine.
    #[serde(with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// How long until its next poll (zero when due); `None` for a manual
    /// machine.
    #[serde(with = "humantime_serde")]
    pub next_poll_in: Option<Duration>,
    /// Its instance, once a poll has resolved it.
    pub instance_id: Option<InstanceId>,
    /// The instance status the provider last reported.
    pub instance_status: Option<InstanceStatusInfo>,
    /// Its provider addresses after the last poll that updated them.
    pub addresses: Vec<Address>,
    /// Why the last poll failed, when it did.
    pub last_error: Option<String>,
    /// How many times its poller asked the provider about it.
    pub polls: u64,
}

fn phase_text<S: Serializer>(phase: &Option<Phase>, s: S) -> Result<S::Ok, S::Error> {
    match phase {
        Some(phase) => s.serialize_some(&phase.to_string()),
        None => s.serialize_none(),
    }
}

/// What a poller knows of its machine; shared with the watcher's record and
/// the handle, and kept across the poller's restarts.
#[derive(Debug)]
struct PollerStatus {
    state: PollState,
    instance_id: Option<InstanceId>,
    instance_status: Option<InstanceStatusInfo>,
    addresses: Vec<Address>,
    last_error: Option<String>,
    polls: u64,
}

type StatusCell = Arc<Mutex<PollerStatus>>;

/// Locks a cell. A poller that panicked while holding the lock leaves a
/// state that is still consistent (each update is one assignment), so the
/// poison is ignored: keeping the state through a failure is the point.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A polled machine's poller: its status cell and its mailbox.
#[derive(Clone)]
struct PollerRef {
    status: StatusCell,
    mailbox: Mailbox<MachinePoller>,
}

/// A machine the watcher tracks.
struct Tracked {
    machine: Arc<dyn Machine>,
    /// `None` for a manual machine.
    poller: Option<PollerRef>,
}

/// The watcher's record of the machines, outliving its restarts and read by
/// [`MachinesHandle`].
#[derive(Default)]
struct Registry {
    machines: BTreeMap<MachineTag, Tracked>,
}

fn state_of(tag: &MachineTag, tracked: &Tracked, now: Instant) -> MachineState {
    let Some(poller) = &tracked.poller else {
        return MachineState {
            tag: tag.clone(),
            tracking: Tracking::Manual,
            phase: None,
            interval: None,
            next_poll_in: None,
            instance_id: None,
            instance_status: None,
            addresses: Vec::new(),
            last_error: None,
            polls: 0,
        };
    };
    let status = lock(&poller.status);
    MachineState {
        tag: tag.clone(),
        tracking: Tracking::Polled,
        phase: Some(status.state.phase()),
        interval: Some(status.state.interval()),
        next_poll_in: Some(status.state.next_poll().saturating_duration_since(now)),
        instance_id: status.instance_id.clone(),
        instance_status: status.instance_status.clone(),
        addresses: status.addresses.clone(),
        last_error: status.last_error.clone(),
        polls: status.polls,
    }
}

/// Answers queries about the machines from the pollers' shared state,
/// without messaging the pollers. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct MachinesHandle {
    registry: Arc<Mutex<Registry>>,
    supervisor: SupervisorRef,
}

impl MachinesHandle {
    /// Every tracked machine, sorted by tag.
    pub async fn machines(&self) -> Result<Vec<MachineState>, SendError> {
        let now = Instant::now();
        let registry = lock(&self.registry);
        Ok(registry
            .machines
            .iter()
            .map(|(tag, tracked)| state_of(tag, tracked, now))
            .collect())
    }

    /// One machine; `None` when it is not tracked (unknown, dead, removed,
    /// or not seen by the watcher yet).
    pub async fn machine(&self, tag: &MachineTag) -> Result<Option<MachineState>, SendError> {
        let registry = lock(&self.registry);
        Ok(registry
            .machines
            .get(tag)
            .map(|tracked| state_of(tag, tracked, Instant::now())))
    }

    /// The machines supervisor's stable handle (its report lists the
    /// pollers with their restarts).
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.supervisor
    }

    /// The mailbox of a machine's poller; `None` when the machine is not
    /// polled.
    pub async fn poller(
        &self,
        tag: &MachineTag,
    ) -> Result<Option<Mailbox<MachinePoller>>, SendError> {
        let registry = lock(&self.registry);
        Ok(registry
            .machines
            .get(tag)
            .and_then(|tracked| tracked.poller.as_ref())
            .map(|poller| poller.mailbox.clone()))
    }
}

/// Builds the nested supervisor child called `name`: a static child
/// "watcher" ([`MachineWatcher`]) and a dynamic group "pollers" (one
/// [`MachinePoller`] per machine, named by machine tag). `gateway` is the
/// gateway's stable mailbox: pollers do not take it as an input, so a
/// gateway restart does not restart them; a poll that cannot reach it is a
/// failed poll. The config should have passed [`MachinesConfig::validate`];
/// the restart timing is checked here too.
pub fn machines_child(
    name: &str,
    config: MachinesConfig,
    facade: Arc<dyn ModelFacade>,
    gateway: Mailbox<ProviderGateway>,
) -> Result<(ChildSpec, MachinesHandle), SupervisorError> {
    let registry = Arc::new(Mutex::new(Registry::default()));
    let supervisor = SupervisorRef::new();
    let env = Arc::new(Env {
        facade,
        registry: registry.clone(),
        pollers: supervisor.clone(),
        gateway,
        config: config.clone(),
    });
    let watcher_mailbox = Mailbox::new(16);
    let watcher = ChildSpec::actor(WATCHER_CHILD, &watcher_mailbox, move |cx| {
        Ok(MachineWatcher::new(
            env.clone(),
            cx.logger().clone(),
            cx.exit_slot(),
        ))
    });
    let spec = SupervisorSpec::new(config.restart)
        .child(watcher)
        .dynamic(DynamicPolicy {
            group: POLLERS_GROUP.to_owned(),
            restart: RestartPolicy::Permanent,
            state: StatePolicy::Kept,
        });
    let child = ChildSpec::supervisor(name, spec, &supervisor)?;
    Ok((
        child,
        MachinesHandle {
            registry,
            supervisor,
        },
    ))
}

/// What the watcher and the pollers it starts share.
struct Env {
    facade: Arc<dyn ModelFacade>,
    registry: Arc<Mutex<Registry>>,
    pollers: SupervisorRef,
    gateway: Mailbox<ProviderGateway>,
    config: MachinesConfig,
}

impl Env {
    /// The dynamic child that polls `tag`; every start of it resumes from
    /// the shared status cell.
    fn poller_spec(
        &self,
        tag: &MachineTag,
        machine: &Arc<dyn Machine>,
        poller: &PollerRef,
    ) -> ChildSpec {
        let tag = tag.clone();
        let machine = machine.clone();
        let status = poller.status.clone();
        let gateway = self.gateway.clone();
        ChildSpec::actor(tag.to_string(), &poller.mailbox, move |cx| {
            Ok(MachinePoller {
                tag: tag.clone(),
                machine: machine.clone(),
                status: status.clone(),
                gateway: gateway.clone(),
                log: cx.logger().clone(),
                exit: cx.exit_slot(),
                timer: None,
                polling: false,
                reset_pending: false,
            })
        })
    }

    /// Adds pollers, ignoring those already there: after a failure of the
    /// watcher some may have been added before it stopped.
    async fn add_pollers(&self, specs: Vec<ChildSpec>) -> Result<(), SupervisorError> {
        if specs.is_empty() {
            return Ok(());
        }
        match self.pollers.add_all(specs.clone()).await {
            Err(SupervisorError::Duplicate { .. }) => {}
            other => return other,
        }
        for spec in specs {
            match self.pollers.add(spec).await {
                Ok(()) | Err(SupervisorError::Duplicate { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Stops pollers, ignoring those already gone (e.g. lost with a restart
    /// of the machines supervisor).
    async fn remove_pollers(&self, names: Vec<String>) -> Result<(), SupervisorError> {
        if names.is_empty() {
            return Ok(());
        }
        match self.pollers.remove_all(names.clone()).await {
            Err(SupervisorError::NoSuchChild { .. }) => {}
            other => return other,
        }
        for name in names {
            match self.pollers.remove(&name).await {
                Ok(()) | Err(SupervisorError::NoSuchChild { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Handles one batch of the machine watcher (SPEC §2 "Machines").
    /// `first` is the first batch of a new watch, which holds every machine:
    /// pollers lost with a restart of the machines supervisor are added
    /// again then (and whenever a known machine's poller is not running).
    /// Answers the machines whose model calls failed, to be
    /// tried again later; an error (the supervisor refusing) is the
    /// watcher's failure.
    async fn machines_changed(
        &self,
        tags: Vec<MachineTag>,
        first: bool,
        log: &Logger,
    ) -> Result<Vec<MachineTag>, String> {
        let tags: BTreeSet<MachineTag> = tags.into_iter().collect();
        let (known, new): (Vec<_>, Vec<_>) = {
            let registry = lock(&self.registry);
            tags.into_iter()
                .map(|tag| {
                    let machine = registry.machines.get(&tag).map(|t| t.machine.clone());
                    (tag, machine)
                })
                .partition(|(_, machine)| machine.is_some())
        };
        let known: Vec<(MachineTag, Arc<dyn Machine>)> = known
            .into_iter()
            .filter_map(|(tag, machine)| machine.map(|m| (tag, m)))
            .collect();
        let mut failed: Vec<(MachineTag, String)> = Vec::new();

        // Known machines: refresh, then forget the dead and the removed.
        let refreshed = at_most_a_few(known.iter().map(|(_, m)| m.refresh())).await;
        let mut gone = Vec::new();
        let mut alive = Vec::new();
        for ((tag, machine), result) in known.into_iter().zip(refreshed) {
            match result {
                Err(e) if e.kind() == ErrorKind::NotFound => gone.push((tag, "removed")),
                Err(e) => failed.push((tag, format!("refreshing the machine: {e}"))),
                Ok(()) if machine.life() == Life::Dead => gone.push((tag, "dead")),
                Ok(()) => alive.push(tag),
            }
        }

        // New machines: fetch them and sort out the manual ones.
        let fetched = at_most_a_few(new.iter().map(|(tag, _)| self.facade.machine(tag))).await;
        let mut candidates = Vec::new();
        for ((tag, _), result) in new.into_iter().zip(fetched) {
            match result {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    debug!(log, "machine gone before it was tracked"; "machine" => %tag);
                }
                Err(e) => failed.push((tag, format!("fetching the machine: {e}"))),
                Ok(machine) if machine.life() == Life::Dead => {
                    debug!(log, "machine dead before it was tracked"; "machine" => %tag);
                }
                Ok(machine) => candidates.push((tag, machine)),
            }
        }
        let manual = at_most_a_few(candidates.iter().map(|(_, m)| m.is_manual())).await;
        let mut manual_machines = Vec::new();
        let mut polled = Vec::new();
        for ((tag, machine), is_manual) in candidates.into_iter().zip(manual) {
            match is_manual {
                Err(e) => failed.push((tag, format!("asking whether it is manual: {e}"))),
                Ok(true) => manual_machines.push((tag, machine)),
                Ok(false) => polled.push((tag, machine)),
            }
        }
        let settled = at_most_a_few(
            manual_machines
                .iter()
                .map(|(_, m)| settle_manual_machine(&**m)),
        )
        .await;
        for ((tag, machine), result) in manual_machines.into_iter().zip(settled) {
            match result {
                Err(e) => failed.push((tag, format!("marking it running: {e}"))),
                Ok(set) => {
                    info!(log, "machine is manually provisioned, not polling it";
                        "machine" => %tag, "set_running" => set);
                    lock(&self.registry).machines.insert(
                        tag,
                        Tracked {
                            machine,
                            poller: None,
                        },
                    );
                }
            }
        }

        // Pollers may have been lost with a restart of the machines
        // supervisor, which also restarts this watcher: on a new watch every
        // known machine is a suspect, later only those whose poller is not
        // running (most likely just waiting to be restarted). The
        // supervisor's list settles it.
        let suspects: Vec<MachineTag> = {
            let registry = lock(&self.registry);
            alive
                .iter()
                .filter(|tag| {
                    registry
                        .machines
                        .get(*tag)
                        .and_then(|t| t.poller.as_ref())
                        .is_some_and(|p| first || !p.mailbox.is_running())
                })
                .cloned()
                .collect()
        };
        let present: BTreeSet<String> = if suspects.is_empty() {
            BTreeSet::new()
        } else {
            let report = self
                .pollers
                .report()
                .await
                .map_err(|e| format!("listing pollers: {e}"))?;
            report
                .children
                .into_iter()
                .filter(|c| c.dynamic)
                .map(|c| c.name)
                .collect()
        };

        // Record the new pollers before adding them, so that a restart
        // between the two finds them known and adds them then.
        let now = Instant::now();
        let mut specs = Vec::new();
        {
            let mut registry = lock(&self.registry);
            for (tag, machine) in polled {
                let poller = PollerRef {
                    status: Arc::new(Mutex::new(PollerStatus {
                        state: PollState::new(&self.config.poll, now),
                        instance_id: None,
                        instance_status: None,
                        addresses: Vec::new(),
                        last_error: None,
                        polls: 0,
                    })),
                    mailbox: Mailbox::keeping(self.config.poller_mailbox),
                };
                specs.push(self.poller_spec(&tag, &machine, &poller));
                info!(log, "polling new machine"; "machine" => %tag);
                registry.machines.insert(
                    tag,
                    Tracked {
                        machine,
                        poller: Some(poller),
                    },
                );
            }
            for tag in &suspects {
                if let Some(Tracked {
                    machine,
                    poller: Some(poller),
                }) = registry.machines.get(tag)
                    && !present.contains(tag.as_str())
                {
                    info!(log, "polling machine again"; "machine" => %tag);
                    specs.push(self.poller_spec(tag, machine, poller));
                }
            }
        }
        self.add_pollers(specs)
            .await
            .map_err(|e| format!("adding pollers: {e}"))?;

        let stopping: Vec<String> = {
            let registry = lock(&self.registry);
            gone.iter()
                .filter(|(tag, _)| {
                    registry
                        .machines
                        .get(tag)
                        .is_some_and(|t| t.poller.is_some())
                })
                .map(|(tag, _)| tag.as_str().to_owned())
                .collect()
        };
        self.remove_pollers(stopping)
            .await
            .map_err(|e| format!("stopping pollers: {e}"))?;
        {
            let mut registry = lock(&self.registry);
            for (tag, why) in &gone {
                registry.machines.remove(tag);
                info!(log, "machine is gone, stopped tracking it"; "machine" => %tag, "why" => *why);
            }
        }

        // Every other event about a known machine: back to the short phase.
        {
            let registry = lock(&self.registry);
            for tag in &alive {
                let Some(Tracked {
                    poller: Some(poller),
                    ..
                }) = registry.machines.get(tag)
                else {
                    continue;
                };
                if let Err(e) = poller.mailbox.do_send(Reset) {
                    // Its mailbox is full: it has work queued and will poll
                    // anyway.
                    warn!(log, "could not reset machine's poller"; "machine" => %tag, "error" => %e);
                }
            }
        }

        for (tag, error) in &failed {
            warn!(log, "cannot handle a change of machine, will try again";
                "machine" => %tag, "error" => error);
        }
        Ok(failed.into_iter().map(|(tag, _)| tag).collect())
    }
}

/// Follows the model's machines and keeps one poller per polled machine.
/// See the module documentation.
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
    fn new(env: Arc<Env>, log: Logger, exit: ExitSlot) -> Self {
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
        self.retry_delay = (delay * 2).min(config.short_poll_cap.max(config.short_poll));
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
/// schedule. See the module documentation.
pub struct MachinePoller {
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

async fn poll_once(
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
    let fetched = match gateway.send(Fetch { id: id.clone() }).await {
        Ok(Ok(fetched)) => fetched,
        Ok(Err(e)) => return Outcome::Failed(id, e.to_string()),
        Err(e) => return Outcome::Failed(id, e.to_string()),
    };
    match fetched {
        Fetched::Unknown => Outcome::Unknown(id),
        Fetched::Known {
            instance,
            interfaces,
        } => match update_machine(&*machine, &instance, interfaces).await {
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
                if self.machine.life() != Life::Dead {
                    // A dead machine's addresses are not updated; keep the
                    // last ones seen.
                    status.addresses = update.addresses.clone();
                }
                let rule = update.apply(&mut status.state, now);
                debug!(log, "polled instance";
                    "instance" => %id, "status" => %instance_status.status,
                    "rule" => ?rule, "phase" => %status.state.phase(),
                    "interval" => ?status.state.interval());
                status.instance_id = Some(id);
                status.instance_status = Some(instance_status);
                status.last_error = update.machine_status_error.as_ref().map(|e| e.to_string());
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
        let poll = poll_once(self.machine.clone(), self.gateway.clone(), known_id);
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
