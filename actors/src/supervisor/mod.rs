//! Supervisors: trees of named children with inputs, restart policies,
//! backoff, restart intensity, dynamic children and ordered shutdown.
//!
//! A supervisor is an actix actor that runs each child on a task of its own
//! and learns how it ended: the reason the child left in its [`ExitSlot`], or
//! a panic caught anywhere in the child's future (handlers, `started`,
//! `stopping`, timers, intervals). What follows depends on the exit and the
//! child's [`RestartPolicy`]:
//!
//! | exit | permanent | transient | temporary |
//! | --- | --- | --- | --- |
//! | [`Exit::Failed`] (or a panic) | restart after backoff | restart after backoff | stays failed |
//! | [`Exit::Done`] | restart after the bounce delay | stays stopped | stays stopped |
//! | [`Exit::Bounce`] | restart after the bounce delay | restart after the bounce delay | stays stopped |
//! | [`Exit::Missing`] | waits until an input starts | same | same |
//! | [`Exit::Uninstall`] | removed | removed | removed |
//! | [`Exit::Fatal`] | the supervisor stops its children and exits fatally; up to the root | same | same |
//!
//! Whenever a child stops, the running children that list it as an input are
//! bounced: stopped and started again after the bounce delay. A child that
//! waits for an input is started when one of its inputs starts.
//!
//! Restarts after a child's own exit (not dependency bounces) count towards
//! the restart intensity: more than `max_restarts` within `restart_window`
//! and the supervisor stops its children and fails to its parent, which
//! treats that like any failure of a child. The root reports it to the host.

mod context;
mod error;
mod exit;
mod handle;
mod nested;
mod policy;
mod report;
mod root;
mod spec;
mod task;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, SpawnHandle};
use futures::future::LocalBoxFuture;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use slog::{Logger, crit, debug, error, info, o, warn};
use tokio::sync::oneshot;
use tokio::time::Instant;

pub use context::{Kept, StartCtx};
pub use error::{SupervisorError, TreeError};
pub use exit::{Exit, ExitSlot};
pub use handle::SupervisorRef;
pub use policy::{ConfigError, RestartConfig, RestartPolicy, StatePolicy};
pub use report::{ChildReport, ChildState, Report, Reporter, RestartCounts};
pub use root::Root;
pub use spec::{ChildSpec, DynamicPolicy, SupervisorSpec};

use crate::metrics::{Metrics, RestartReason};
use context::Output;
use policy::Intensity;
use spec::check_name;
use task::{InstanceHandle, Notify, panic_message};

/// A child of a supervisor.
struct Child {
    spec: ChildSpec,
    /// Added at run time rather than declared.
    dynamic: bool,
    /// Its place among the declared children (dynamic ones share the last).
    decl: usize,
    /// The label of its metrics series: its path, or its dynamic group's.
    metrics_label: Arc<str>,
    /// How long it may take to stop; `None` waits for ever.
    shutdown_timeout: Option<Duration>,
    life: Lifecycle,
    start_count: u64,
    /// When it last started, for the report.
    started_at: Option<SystemTime>,
    last_exit: Option<Exit>,
    last_error: Option<String>,
    /// Failures since its last long run, as the backoff counts them.
    recent_failures: u32,
    restarts: RestartCounts,
    /// Callers of `remove` waiting for it to be gone.
    removal_waiters: Vec<oneshot::Sender<()>>,
}

impl Child {
    /// A child not started yet.
    fn new(
        spec: ChildSpec,
        dynamic: bool,
        decl: usize,
        metrics_label: Arc<str>,
        shutdown_timeout: Option<Duration>,
    ) -> Self {
        Child {
            spec,
            dynamic,
            decl,
            metrics_label,
            shutdown_timeout,
            life: Lifecycle::Pending,
            start_count: 0,
            started_at: None,
            last_exit: None,
            last_error: None,
            recent_failures: 0,
            restarts: RestartCounts::default(),
            removal_waiters: Vec::new(),
        }
    }
}

/// Why the supervisor asked a child to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    /// One of its inputs stopped: it is started again after the bounce delay.
    Dependency,
    /// It is being removed.
    Remove,
    /// Its supervisor is shutting down.
    Shutdown,
}

/// A running instance of a child.
struct Instance {
    handle: InstanceHandle,
    /// The start that made it (the child's `start_count` then): an exit
    /// reported by an earlier instance is stale.
    generation: u64,
    /// Its place in the supervisor's start order, which shutdown reverses.
    seq: u64,
    /// When it started: a long run resets the backoff.
    since: Instant,
}

/// Where a child is in its life, holding what that state needs.
enum Lifecycle {
    /// Not started yet: just declared or added, or its start function is
    /// running (the restart timer that called it has fired).
    Pending,
    /// Running.
    Running(Instance),
    /// Asked to stop; its exit has not arrived yet. `deadline` is the
    /// timer that kills it if it takes longer than its shutdown timeout.
    Stopping {
        instance: Instance,
        reason: StopReason,
        deadline: Option<TimerKey>,
    },
    /// Not running; started again when `timer` fires.
    Restarting {
        timer: TimerKey,
        reason: RestartReason,
    },
    /// Not running; started again when one of its inputs starts.
    WaitingForInput,
    /// Not running, and nothing will start it.
    Stopped,
    /// Its last run failed, and nothing will start it (or, while its start
    /// function runs, the restart after that failure is under way).
    Failed,
}

/// What ended with a run, or with a start that failed.
struct EndedRun {
    /// The instance, when there was one.
    instance: Option<Instance>,
    /// Why the supervisor stopped it, when it did.
    reason: Option<StopReason>,
    /// The stop deadline that was set for it.
    deadline: Option<TimerKey>,
}

impl Lifecycle {
    /// The state the report shows.
    fn state(&self) -> ChildState {
        match self {
            Lifecycle::Pending => ChildState::Starting,
            Lifecycle::Running(_) => ChildState::Started,
            Lifecycle::Stopping { .. } => ChildState::Stopping,
            Lifecycle::Restarting {
                reason: RestartReason::Failure,
                ..
            } => ChildState::Failed,
            Lifecycle::Restarting { .. } => ChildState::Starting,
            Lifecycle::WaitingForInput | Lifecycle::Stopped => ChildState::Stopped,
            Lifecycle::Failed => ChildState::Failed,
        }
    }

    /// The running instance, also while it is stopping.
    fn instance(&self) -> Option<&Instance> {
        match self {
            Lifecycle::Running(instance) | Lifecycle::Stopping { instance, .. } => Some(instance),
            _ => None,
        }
    }

    /// The scheduled restart.
    fn restart_timer(&self) -> Option<TimerKey> {
        match self {
            Lifecycle::Restarting { timer, .. } => Some(*timer),
            _ => None,
        }
    }

    /// The stop deadline.
    fn deadline(&self) -> Option<TimerKey> {
        match self {
            Lifecycle::Stopping { deadline, .. } => *deadline,
            _ => None,
        }
    }

    /// Moves a running child to stopping for `reason`, and returns true; a
    /// child already stopping takes `reason` as the latest one, and returns
    /// false, as does a child that is not running.
    fn stop(&mut self, reason: StopReason) -> bool {
        match std::mem::replace(self, Lifecycle::Stopped) {
            Lifecycle::Running(instance) => {
                *self = Lifecycle::Stopping {
                    instance,
                    reason,
                    deadline: None,
                };
                true
            }
            Lifecycle::Stopping {
                instance, deadline, ..
            } => {
                *self = Lifecycle::Stopping {
                    instance,
                    reason,
                    deadline,
                };
                false
            }
            other => {
                *self = other;
                false
            }
        }
    }

    /// Ends the run (or the failed start) and leaves the child not running:
    /// `Failed` if it was, else `Stopped`, until the supervisor decides
    /// what follows.
    fn end(&mut self) -> EndedRun {
        let after = match self {
            Lifecycle::Failed => Lifecycle::Failed,
            _ => Lifecycle::Stopped,
        };
        match std::mem::replace(self, after) {
            Lifecycle::Running(instance) => EndedRun {
                instance: Some(instance),
                reason: None,
                deadline: None,
            },
            Lifecycle::Stopping {
                instance,
                reason,
                deadline,
            } => EndedRun {
                instance: Some(instance),
                reason: Some(reason),
                deadline,
            },
            _ => EndedRun {
                instance: None,
                reason: None,
                deadline: None,
            },
        }
    }
}

/// A shutdown under way.
struct Shutdown {
    /// What the supervisor exits with; `None` is a clean stop.
    exit: Option<Exit>,
    /// The child being stopped now.
    current: Option<Arc<str>>,
    /// Every child has stopped.
    done: bool,
}

impl Supervisor {
    /// Starts shutting down, or, when already shutting down, keeps the
    /// worse of the two exits.
    fn begin_shutdown(&mut self, exit: Option<Exit>, ctx: &mut Context<Self>) {
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
    fn continue_shutdown(&mut self, ctx: &mut Context<Self>) {
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

/// The supervisor actor. Hosts reach it through [`Root`](super::Root) and
/// [`SupervisorRef`](super::SupervisorRef); it is public only so that its
/// mailbox can be named.
pub struct Supervisor {
    path: Arc<str>,
    config: RestartConfig,
    dynamic: Option<DynamicPolicy>,
    /// The host's logger, from which every supervisor of the tree makes
    /// its own, so that a nested one does not repeat its parent's keys.
    base_logger: Logger,
    logger: Logger,
    metrics: Metrics,
    rng: StdRng,
    exit: ExitSlot,
    /// The declared children, until `started` starts them.
    pending: Vec<ChildSpec>,
    // Boxed: the map's spare capacity then costs a pointer, not a Child.
    children: HashMap<Arc<str>, Box<Child>>,
    group_label: Option<Arc<str>>,
    /// The running children by start order.
    running_order: BTreeMap<u64, Arc<str>>,
    next_seq: u64,
    /// For each child, the children that list it as an input.
    dependents: HashMap<Arc<str>, BTreeSet<Arc<str>>>,
    /// The outputs of the running static children.
    outputs: HashMap<Arc<str>, Output>,
    intensity: Intensity,
    shutdown: Option<Shutdown>,
    addr: Option<Addr<Supervisor>>,
    timers: Timers,
}

/// An instance of a child ended with `exit`.
struct ChildExited {
    name: Arc<str>,
    generation: u64,
    exit: Exit,
}

impl Message for ChildExited {
    type Result = ();
}

crate::supervised!(Supervisor);

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.addr = Some(ctx.address());
        info!(self.logger, "supervisor started"; "children" => self.pending.len());
        for spec in std::mem::take(&mut self.pending) {
            let name = spec.name.clone();
            let decl = self.children.len();
            self.insert(spec, false, decl);
            self.start_child(&name, ctx);
        }
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> actix::Running {
        if tokio::runtime::Handle::try_current().is_err() {
            // Dropped with its system: nothing can run any more.
            return actix::Running::Stop;
        }
        if self.shutdown.is_none() {
            self.begin_shutdown(None, ctx);
        }
        if self.shutdown.as_ref().is_some_and(|s| s.done) {
            actix::Running::Stop
        } else {
            actix::Running::Continue
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Normally every child has stopped before its supervisor does. A
        // supervisor that panicked, or was killed, must not leave its
        // children running with nobody to watch them.
        for child in self.children.values_mut() {
            if let Some(instance) = child.life.end().instance {
                (instance.handle.kill)();
            }
        }
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        let current = self.children.get(&msg.name).is_some_and(|c| {
            c.life
                .instance()
                .is_some_and(|i| i.generation == msg.generation)
        });
        if current {
            self.exited(&msg.name, msg.exit, ctx);
        }
    }
}

impl Supervisor {
    fn new(
        path: &str,
        spec: SupervisorSpec,
        logger: Logger,
        metrics: Metrics,
        exit: ExitSlot,
        seed: u64,
    ) -> Self {
        let seed = spec.config.jitter_seed.unwrap_or(seed);
        let group_label = spec
            .dynamic
            .as_ref()
            .map(|g| Arc::from(format!("{path}/{}", g.group)));
        Supervisor {
            path: Arc::from(path),
            config: spec.config,
            dynamic: spec.dynamic,
            logger: logger.new(o!("supervisor" => path.to_owned())),
            base_logger: logger,
            metrics,
            rng: StdRng::seed_from_u64(seed),
            exit,
            pending: spec.children,
            children: HashMap::new(),
            group_label,
            running_order: BTreeMap::new(),
            next_seq: 0,
            dependents: HashMap::new(),
            outputs: HashMap::new(),
            intensity: Intensity::default(),
            shutdown: None,
            addr: None,
            timers: Timers::default(),
        }
    }

    /// Adds a child, not started yet, with its place in the dependency map.
    fn insert(&mut self, spec: ChildSpec, dynamic: bool, decl: usize) {
        let name = spec.name.clone();
        for input in spec.inputs.iter() {
            self.dependents
                .entry(Arc::from(input.as_str()))
                .or_default()
                .insert(name.clone());
        }
        let metrics_label: Arc<str> = match (&self.group_label, dynamic) {
            (Some(group), true) => group.clone(),
            _ => Arc::from(format!("{}/{}", self.path, name)),
        };
        let shutdown_timeout = spec.shutdown_timeout.unwrap_or(if spec.is_supervisor {
            None
        } else {
            Some(self.config.shutdown_timeout)
        });
        let child = Child::new(spec, dynamic, decl, metrics_label, shutdown_timeout);
        self.children.insert(name, Box::new(child));
    }
}

/// A deadline, made unique by a sequence number.
type TimerKey = (Instant, u64);

/// What a timer does when it fires.
enum Timer {
    /// Starts the child again.
    Restart(Arc<str>),
    /// Kills the child's instance of that generation, which did not stop
    /// within the timeout.
    StopTimeout(Arc<str>, u64, Duration),
}

/// The pending timers, and the actix timer armed for the first of them.
#[derive(Default)]
struct Timers {
    queue: BTreeMap<TimerKey, Timer>,
    seq: u64,
    armed: Option<(Instant, SpawnHandle)>,
}

impl Timers {
    /// Forgets a timer; one that already fired or was cancelled is ignored.
    fn cancel(&mut self, key: TimerKey) {
        self.queue.remove(&key);
    }
}

impl Supervisor {
    /// Sets a timer that fires `after` from now.
    fn set_timer(&mut self, after: Duration, timer: Timer, ctx: &mut Context<Self>) -> TimerKey {
        let key = (Instant::now() + after, self.timers.seq);
        self.timers.seq += 1;
        self.timers.queue.insert(key, timer);
        self.arm(ctx);
        key
    }

    /// Arms the actix timer for the earliest deadline, unless it already is.
    fn arm(&mut self, ctx: &mut Context<Self>) {
        let Some((&(first, _), _)) = self.timers.queue.first_key_value() else {
            return;
        };
        if let Some((at, handle)) = self.timers.armed {
            if at <= first {
                return;
            }
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(
            first.saturating_duration_since(Instant::now()),
            |sup, ctx| {
                sup.timers.armed = None;
                sup.fire_timers(ctx);
            },
        );
        self.timers.armed = Some((first, handle));
    }

    /// Fires every timer that is due, then arms for the next one.
    fn fire_timers(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        while let Some(entry) = self.timers.queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (key, timer) = entry.remove_entry();
            match timer {
                Timer::Restart(name) => {
                    let due = self
                        .children
                        .get(&name)
                        .is_some_and(|c| c.life.restart_timer() == Some(key));
                    if due {
                        self.start_child(&name, ctx);
                    }
                }
                Timer::StopTimeout(name, generation, timeout) => {
                    let due = self
                        .children
                        .get_mut(&name)
                        .is_some_and(|c| match &mut c.life {
                            Lifecycle::Stopping { deadline, .. } if *deadline == Some(key) => {
                                *deadline = None;
                                true
                            }
                            _ => false,
                        });
                    if due {
                        self.stop_timed_out(&name, generation, timeout, ctx);
                    }
                }
            }
        }
        self.arm(ctx);
    }
}

impl Supervisor {
    /// Starts a child that is not running; a start that fails is handled as
    /// an exit.
    fn start_child(&mut self, name: &Arc<str>, ctx: &mut Context<Self>) {
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
        };
        let started = {
            let mut starter = child.spec.starter.lock().unwrap_or_else(|p| p.into_inner());
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

impl Supervisor {
    /// Asks a running child to stop for `reason`, with a deadline after its
    /// shutdown timeout; a child already stopping only takes the new reason.
    fn request_stop(&mut self, name: &Arc<str>, reason: StopReason, ctx: &mut Context<Self>) {
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
    fn bounce_dependents(&mut self, name: &Arc<str>, ctx: &mut Context<Self>) {
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

    /// Kills the instance `generation` of a child that did not stop within
    /// `timeout`; that is a failure of the child.
    fn stop_timed_out(
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

/// A run that ended, as the decision of what follows needs it.
struct Ended {
    /// The ended instance's handle; `None` when its start failed.
    handle: Option<InstanceHandle>,
    /// How long it ran.
    ran_for: Duration,
    /// Why the supervisor stopped it, when it did.
    reason: Option<StopReason>,
}

impl Supervisor {
    /// A child's run, or its start, ended with `exit`.
    fn exited(&mut self, name: &Arc<str>, exit: Exit, ctx: &mut Context<Self>) {
        if let Some(ended) = self.end_run(name) {
            self.handle_exit(name, exit, ended, ctx);
        }
    }

    /// Takes a child out of the running: its instance, its place in the
    /// start order, its stop deadline and its output.
    fn end_run(&mut self, name: &Arc<str>) -> Option<Ended> {
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
    fn handle_exit(&mut self, name: &Arc<str>, exit: Exit, ended: Ended, ctx: &mut Context<Self>) {
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
            let msg = format!(
                "restart intensity exceeded: more than {} restarts within {} (last: {name})",
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

impl Supervisor {
    /// Adds a dynamic child under the group's policy, and starts it.
    fn add_child(
        &mut self,
        spec: ChildSpec,
        ctx: &mut Context<Self>,
    ) -> Result<(), SupervisorError> {
        let Some(policy) = &self.dynamic else {
            return Err(SupervisorError::NotDynamic(self.path.to_string()));
        };
        if self.shutdown.is_some() {
            return Err(SupervisorError::ShuttingDown(self.path.to_string()));
        }
        check_name(&spec.name)?;
        if self.children.contains_key(&spec.name) {
            return Err(SupervisorError::Duplicate {
                supervisor: self.path.to_string(),
                child: spec.name.to_string(),
            });
        }
        for input in spec.inputs.iter() {
            if self.children.get(input.as_str()).is_none_or(|c| c.dynamic) {
                return Err(SupervisorError::UnknownInput {
                    supervisor: self.path.to_string(),
                    child: spec.name.to_string(),
                    input: input.clone(),
                    expected: "a static child of its supervisor",
                });
            }
        }
        let mut spec = spec;
        spec.restart = policy.restart;
        spec.state = policy.state;
        let name = spec.name.clone();
        self.insert(spec, true, usize::MAX);
        self.start_child(&name, ctx);
        Ok(())
    }

    /// Removes a dynamic child: at once when it is not running, else once it
    /// has stopped. The receiver resolves when it is gone.
    fn remove_child(
        &mut self,
        name: &str,
        ctx: &mut Context<Self>,
    ) -> Result<oneshot::Receiver<()>, SupervisorError> {
        let Some((key, child)) = self.children.get_key_value(name) else {
            return Err(self.no_such_child(name));
        };
        if !child.dynamic {
            return Err(self.no_such_child(name));
        }
        let key = key.clone();
        let (tx, rx) = oneshot::channel();
        let Some(child) = self.children.get_mut(&key) else {
            return Err(self.no_such_child(name));
        };
        child.removal_waiters.push(tx);
        if child.life.instance().is_some() {
            // A shutdown under way stops it anyway, and then answers every
            // waiter.
            if self.shutdown.is_none() {
                self.request_stop(&key, StopReason::Remove, ctx);
            }
        } else {
            self.remove_now(&key);
        }
        Ok(rx)
    }

    /// Removes a child that is not running, with its timers and its place
    /// among its inputs' dependents, and answers its removal waiters.
    fn remove_now(&mut self, name: &Arc<str>) {
        let Some(mut child) = self.children.remove(name) else {
            return;
        };
        for key in [child.life.restart_timer(), child.life.deadline()]
            .into_iter()
            .flatten()
        {
            self.timers.cancel(key);
        }
        for input in child.spec.inputs.iter() {
            if let Some(set) = self.dependents.get_mut(input.as_str()) {
                set.remove(name);
            }
        }
        info!(self.logger, "child removed"; "child" => &**name);
        for waiter in child.removal_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    /// Whether `name` is a dynamic child.
    fn is_dynamic_child(&self, name: &str) -> bool {
        self.children.get(name).is_some_and(|c| c.dynamic)
    }

    fn no_such_child(&self, name: &str) -> SupervisorError {
        SupervisorError::NoSuchChild {
            supervisor: self.path.to_string(),
            child: name.to_owned(),
        }
    }
}

impl Supervisor {
    /// A snapshot of the children now, completed by their own reports.
    fn report(&mut self) -> LocalBoxFuture<'static, Report> {
        let now = Instant::now();
        let mut order: Vec<(&Arc<str>, &Child)> =
            self.children.iter().map(|(k, v)| (k, &**v)).collect();
        order.sort_by(|a, b| (a.1.decl, a.0).cmp(&(b.1.decl, b.0)));
        let mut pending = Vec::new();
        let children: Vec<ChildReport> = order
            .into_iter()
            .enumerate()
            .map(|(i, (name, c))| {
                if c.life.instance().is_some()
                    && let Some(reporter) = &c.spec.reporter
                {
                    pending.push((i, reporter()));
                }
                ChildReport {
                    name: name.to_string(),
                    state: c.life.state(),
                    inputs: c.spec.inputs.to_vec(),
                    restart: c.spec.restart,
                    state_policy: c.spec.state,
                    dynamic: c.dynamic,
                    waiting_for_input: matches!(c.life, Lifecycle::WaitingForInput),
                    start_count: c.start_count,
                    started_at: c
                        .started_at
                        .map(|t| humantime::format_rfc3339_millis(t).to_string()),
                    last_exit: c.last_exit.clone(),
                    last_error: c.last_error.clone(),
                    recent_failures: c.recent_failures,
                    restart_in_ms: c.life.restart_timer().map(|(at, _)| {
                        u64::try_from(at.saturating_duration_since(now).as_millis())
                            .unwrap_or(u64::MAX)
                    }),
                    restarts: c.restarts.clone(),
                    mailbox: c
                        .spec
                        .starter
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .stats(),
                    report: None,
                }
            })
            .collect();
        let mut report = Report {
            path: self.path.to_string(),
            state: if self.shutdown.is_some() {
                ChildState::Stopping
            } else {
                ChildState::Started
            },
            recent_restarts: self.intensity.recent(),
            children,
        };
        Box::pin(async move {
            for (i, fut) in pending {
                report.children[i].report = fut.await;
            }
            report
        })
    }
}
