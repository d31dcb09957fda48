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

mod child;
mod policy;
mod report;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, SpawnHandle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use slog::{Logger, crit, debug, error, info, o, warn};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

pub use child::{ChildSpec, Exit, ExitSlot, Kept, Reporter, StartCtx};
pub use policy::{ConfigError, RestartConfig, RestartPolicy, StatePolicy};
pub use report::{ChildReport, ChildState, Report, RestartCounts};

use crate::mailbox::{Mailbox, SendError};
use crate::metrics::{Meter, Metrics, RestartReason};
use child::{Notify, Output, Running, Starter, claim, panic_message, spawn_actor};
use policy::Intensity;

/// What went wrong with a supervisor's specification or a request to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    /// A restart config field is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A child's name is empty or holds a `/` (paths use it).
    #[error("child name {0:?} is not valid: it must be non-empty and hold no '/'")]
    BadName(String),
    /// Two children of one supervisor share a name.
    #[error("{supervisor} already has a child called {child}")]
    Duplicate {
        /// The supervisor's path.
        supervisor: String,
        /// The name.
        child: String,
    },
    /// A child needs an input that is not declared before it (static
    /// children), or that is not a static child (dynamic children).
    #[error("child {child} of {supervisor} needs {input}, which is not {expected}")]
    UnknownInput {
        /// The supervisor's path.
        supervisor: String,
        /// The child.
        child: String,
        /// The input.
        input: String,
        /// What the input should have been.
        expected: &'static str,
    },
    /// The supervisor was declared without a dynamic group.
    #[error("{0} takes no dynamic children")]
    NotDynamic(String),
    /// Only dynamic children can be removed.
    #[error("{supervisor} has no dynamic child called {child}")]
    NoSuchChild {
        /// The supervisor's path.
        supervisor: String,
        /// The name.
        child: String,
    },
    /// The supervisor is shutting down.
    #[error("{0} is shutting down")]
    ShuttingDown(String),
    /// [`Root::start`] was called outside a running actix `System`.
    #[error("a supervision tree must be started inside a running actix System")]
    NoSystem,
    /// The supervisor could not be reached.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// The shared policy of a supervisor's dynamic children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicPolicy {
    /// The group's name; it labels the group's metrics series, which all its
    /// children share.
    pub group: String,
    /// The restart policy of every child of the group.
    pub restart: RestartPolicy,
    /// The state policy of every child of the group.
    pub state: StatePolicy,
}

impl DynamicPolicy {
    /// A group called `group` of permanent children whose state is rebuilt.
    pub fn new(group: impl Into<String>) -> Self {
        DynamicPolicy {
            group: group.into(),
            restart: RestartPolicy::Permanent,
            state: StatePolicy::Rebuilt,
        }
    }
}

/// A supervisor's static children, timing and dynamic group. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct SupervisorSpec {
    children: Vec<ChildSpec>,
    config: RestartConfig,
    dynamic: Option<DynamicPolicy>,
}

impl SupervisorSpec {
    /// A supervisor with no children and the given timing.
    pub fn new(config: RestartConfig) -> Self {
        SupervisorSpec {
            children: Vec::new(),
            config,
            dynamic: None,
        }
    }

    /// Adds a static child; children start in the order they are added, and a
    /// child's inputs must be added before it.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// Lets the supervisor take dynamic children under `policy`.
    pub fn dynamic(mut self, policy: DynamicPolicy) -> Self {
        self.dynamic = Some(policy);
        self
    }

    /// Checks the config, the names and the inputs.
    pub fn validate(&self, path: &str) -> Result<(), SupervisorError> {
        self.config.validate()?;
        let mut seen: Vec<&str> = Vec::with_capacity(self.children.len());
        for c in &self.children {
            check_name(&c.name)?;
            if seen.contains(&&*c.name) {
                return Err(SupervisorError::Duplicate {
                    supervisor: path.to_owned(),
                    child: c.name.to_string(),
                });
            }
            for input in c.inputs.iter() {
                if !seen.contains(&input.as_str()) {
                    return Err(SupervisorError::UnknownInput {
                        supervisor: path.to_owned(),
                        child: c.name.to_string(),
                        input: input.clone(),
                        expected: "a child declared before it",
                    });
                }
            }
            seen.push(&c.name);
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), SupervisorError> {
    if name.is_empty() || name.contains('/') {
        return Err(SupervisorError::BadName(name.to_owned()));
    }
    Ok(())
}

/// The stable handle of a supervisor: add and remove dynamic children, ask
/// for the report. Cheap to clone; valid across the supervisor's restarts.
#[derive(Clone, Debug)]
pub struct SupervisorRef(Mailbox<Supervisor>);

impl Default for SupervisorRef {
    fn default() -> Self {
        Self::new()
    }
}

impl SupervisorRef {
    /// A handle for a supervisor not started yet; requests to it fail with
    /// [`SendError::NotRunning`] until it is.
    pub fn new() -> Self {
        Self::with_capacity(4096)
    }

    /// Like [`SupervisorRef::new`], with room for `capacity` requests
    /// waiting (each [`SupervisorRef::add_all`] is one request).
    pub fn with_capacity(capacity: usize) -> Self {
        SupervisorRef(Mailbox::new(capacity))
    }

    /// The supervisor's mailbox (its metering shows requests to it).
    pub fn mailbox(&self) -> &Mailbox<Supervisor> {
        &self.0
    }

    /// Adds a dynamic child and starts it.
    pub fn add(
        &self,
        child: ChildSpec,
    ) -> impl Future<Output = Result<(), SupervisorError>> + use<> {
        let call = self
            .0
            .call(move |sup: &mut Supervisor, ctx| sup.add_child(child, ctx));
        async move { call.await? }
    }

    /// Adds many dynamic children in one request; stops at the first error.
    pub fn add_all(
        &self,
        children: Vec<ChildSpec>,
    ) -> impl Future<Output = Result<(), SupervisorError>> + use<> {
        let call = self.0.call(move |sup: &mut Supervisor, ctx| {
            children
                .into_iter()
                .try_for_each(|child| sup.add_child(child, ctx))
        });
        async move { call.await? }
    }

    /// Stops a dynamic child (within its shutdown timeout) and removes it;
    /// resolves once it is gone.
    pub fn remove(&self, name: &str) -> impl Future<Output = Result<(), SupervisorError>> + use<> {
        let name = name.to_owned();
        let call = self
            .0
            .call(move |sup: &mut Supervisor, ctx| sup.remove_child(&name, ctx));
        async move {
            let gone = call.await??;
            // A closed channel means the supervisor stopped, which removed it.
            let _ = gone.await;
            Ok(())
        }
    }

    /// Removes many dynamic children in one request; resolves once they are
    /// all gone. Fails, removing none, when one of them is not a dynamic
    /// child.
    pub fn remove_all<I, S>(
        &self,
        names: I,
    ) -> impl Future<Output = Result<(), SupervisorError>> + use<I, S>
    where
        I: IntoIterator<Item = S> + Send + 'static,
        S: AsRef<str>,
    {
        let call = self.0.call(move |sup: &mut Supervisor, ctx| {
            let names: Vec<S> = names.into_iter().collect();
            if let Some(bad) = names
                .iter()
                .find(|n| !sup.children.get(n.as_ref()).is_some_and(|c| c.dynamic))
            {
                return Err(sup.no_such_child(bad.as_ref()));
            }
            names
                .iter()
                .map(|n| sup.remove_child(n.as_ref(), ctx))
                .collect::<Result<Vec<_>, _>>()
        });
        async move {
            for gone in call.await?? {
                let _ = gone.await;
            }
            Ok(())
        }
    }

    /// The supervisor's report, with its children's own reports.
    pub fn report(&self) -> impl Future<Output = Result<Report, SendError>> + use<> {
        let (tx, rx) = oneshot::channel();
        let sent = self.0.control(Box::new(move |sup: &mut Supervisor, _ctx| {
            let gather = sup.report();
            actix::spawn(async move {
                let _ = tx.send(gather.await);
            });
        }));
        let child = self.0.meter().name();
        async move {
            if !sent {
                return Err(SendError::NotRunning { child });
            }
            rx.await.map_err(|_| SendError::Lost { child })
        }
    }
}

impl ChildSpec {
    /// A nested supervisor child; `handle` is its stable handle, and also its
    /// output for dependents. Its report is the nested supervisor's report.
    pub fn supervisor(
        name: impl Into<String>,
        spec: SupervisorSpec,
        handle: &SupervisorRef,
    ) -> Result<Self, SupervisorError> {
        let name = name.into();
        check_name(&name)?;
        spec.validate(&name)?;
        let reporter_ref = handle.clone();
        let reporter: Reporter = Arc::new(move || {
            let report = reporter_ref.report();
            Box::pin(async move { report.await.ok().and_then(|r| serde_json::to_value(r).ok()) })
        });
        let mut child = ChildSpec::from_starter(
            name,
            Arc::new(Mutex::new(SupervisorStarter {
                spec,
                handle: handle.clone(),
            })),
            true,
        );
        child.reporter = Some(reporter);
        Ok(child)
    }
}

struct SupervisorStarter {
    spec: SupervisorSpec,
    handle: SupervisorRef,
}

impl Starter for SupervisorStarter {
    fn start(&mut self, cx: &mut StartCtx<'_>, notify: Notify) -> Result<Running, Exit> {
        let mailbox = &self.handle.0;
        claim(mailbox.meter(), cx)?;
        let sup = Supervisor::new(
            cx.path,
            self.spec.clone(),
            cx.base_logger.clone(),
            cx.metrics.clone(),
            cx.exit.clone(),
            cx.seed,
        );
        cx.set_output(self.handle.clone());
        Ok(spawn_actor(sup, mailbox, cx.exit.clone(), notify))
    }

    fn stats(&self) -> Option<crate::metrics::MailboxStats> {
        Some(self.handle.0.stats())
    }
}

/// How a supervision tree ended badly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A child exited with [`Exit::Fatal`]; the message names it by path.
    #[error("fatal: {0}")]
    Fatal(String),
    /// The root failed: its restart intensity was exceeded, or it panicked.
    #[error("supervision tree failed: {0}")]
    Failed(String),
}

/// A running supervision tree, as its host holds it. Cheap to clone, so
/// that one task can wait for the tree while another shuts it down.
#[derive(Clone, Debug)]
pub struct Root {
    handle: SupervisorRef,
    exit: watch::Receiver<Option<Exit>>,
}

impl Root {
    /// Validates `spec` and starts it as the root supervisor called `name`.
    /// Must be called inside a running actix `System`. Every child logs
    /// through a child of `logger`; metrics go to `metrics`.
    pub fn start(
        name: &str,
        spec: SupervisorSpec,
        logger: Logger,
        metrics: Metrics,
    ) -> Result<Root, SupervisorError> {
        check_name(name)?;
        spec.validate(name)?;
        if actix::System::try_current().is_none() {
            return Err(SupervisorError::NoSystem);
        }
        let handle = SupervisorRef::new();
        let seed = spec.config.jitter_seed.unwrap_or_else(rand::random);
        let exit = ExitSlot::default();
        Meter::bind(handle.0.meter(), name, &metrics, name);
        let sup = Supervisor::new(name, spec, logger, metrics, exit.clone(), seed);
        let (tx, rx) = watch::channel(None);
        let notify: Notify = Box::new(move |exit| {
            let _ = tx.send(Some(exit));
        });
        spawn_actor(sup, &handle.0, exit, notify);
        Ok(Root { handle, exit: rx })
    }

    /// The root supervisor's handle.
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.handle
    }

    /// The tree's report.
    pub fn report(&self) -> impl Future<Output = Result<Report, SendError>> + use<> {
        self.handle.report()
    }

    /// Asks the tree to shut down: children stop in reverse start order,
    /// each within its timeout. Returns false when the root was not running.
    pub fn shutdown(&self) -> bool {
        self.handle
            .0
            .control(Box::new(|_sup: &mut Supervisor, ctx| ctx.stop()))
    }

    /// Waits until the tree has stopped: `Ok` after a shutdown, the error
    /// when a fatal exit or a failure of the root stopped it. Any number of
    /// waiters may wait, before or after the tree stopped.
    pub fn wait(&self) -> impl Future<Output = Result<(), TreeError>> + use<> {
        let mut exit = self.exit.clone();
        async move {
            let exit = match exit.wait_for(Option::is_some).await {
                Ok(exit) => exit.clone(),
                Err(_) => None,
            };
            match exit {
                Some(Exit::Fatal(e)) => Err(TreeError::Fatal(e)),
                Some(Exit::Failed(e)) => Err(TreeError::Failed(e)),
                Some(_) => Ok(()),
                None => Err(TreeError::Failed("the root's task was dropped".to_owned())),
            }
        }
    }

    /// Whether the tree has stopped.
    pub fn is_stopped(&self) -> bool {
        self.exit.borrow().is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    Dependency,
    Remove,
    Shutdown,
}

struct Child {
    spec: ChildSpec,
    dynamic: bool,
    decl: usize,
    metrics_label: Arc<str>,
    shutdown_timeout: Option<Duration>,
    state: ChildState,
    generation: u64,
    running: Option<Running>,
    seq: Option<u64>,
    stop_reason: Option<StopReason>,
    stop_timer: Option<TimerKey>,
    restart_timer: Option<TimerKey>,
    waiting_for_input: bool,
    start_count: u64,
    started_at: Option<SystemTime>,
    started_instant: Option<Instant>,
    last_exit: Option<Exit>,
    last_error: Option<String>,
    recent_failures: u32,
    restarts: RestartCounts,
    removal_waiters: Vec<oneshot::Sender<()>>,
}

struct Shutdown {
    exit: Option<Exit>,
    current: Option<Arc<str>>,
    done: bool,
}

struct ChildExited {
    name: Arc<str>,
    generation: u64,
    exit: Exit,
}

impl Message for ChildExited {
    type Result = ();
}

/// The supervisor actor. Hosts reach it through [`Root`] and
/// [`SupervisorRef`]; it is public only so that its mailbox can be named.
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
    pending: Vec<ChildSpec>,
    // Boxed: the map's spare capacity then costs a pointer, not a Child.
    children: HashMap<Arc<str>, Box<Child>>,
    group_label: Option<Arc<str>>,
    running_order: BTreeMap<u64, Arc<str>>,
    next_seq: u64,
    dependents: HashMap<Arc<str>, BTreeSet<Arc<str>>>,
    outputs: HashMap<Arc<str>, Output>,
    intensity: Intensity,
    shutdown: Option<Shutdown>,
    addr: Option<Addr<Supervisor>>,
    timers: BTreeMap<TimerKey, Timer>,
    timer_seq: u64,
    armed: Option<(Instant, SpawnHandle)>,
}

/// A deadline, made unique by a sequence number.
type TimerKey = (Instant, u64);

enum Timer {
    Restart(Arc<str>),
    StopTimeout(Arc<str>, u64, Duration),
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
            if let Some(running) = child.running.take() {
                (running.kill)();
            }
        }
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        let current = self
            .children
            .get(&msg.name)
            .is_some_and(|c| c.generation == msg.generation && c.running.is_some());
        if current {
            self.handle_exit(&msg.name, msg.exit, ctx);
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
            timers: BTreeMap::new(),
            timer_seq: 0,
            armed: None,
        }
    }

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
        let child = Child {
            spec,
            dynamic,
            decl,
            metrics_label,
            shutdown_timeout,
            state: ChildState::Starting,
            generation: 0,
            running: None,
            seq: None,
            stop_reason: None,
            stop_timer: None,
            restart_timer: None,
            waiting_for_input: false,
            start_count: 0,
            started_at: None,
            started_instant: None,
            last_exit: None,
            last_error: None,
            recent_failures: 0,
            restarts: RestartCounts::default(),
            removal_waiters: Vec::new(),
        };
        self.children.insert(name, Box::new(child));
    }

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
        if child.running.is_some() {
            return;
        }
        if let Some(key) = child.restart_timer.take() {
            self.timers.remove(&key);
        }
        child.waiting_for_input = false;
        child.generation += 1;
        child.start_count += 1;
        let generation = child.generation;
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
            Ok(Ok(running)) => {
                let seq = self.next_seq;
                self.next_seq += 1;
                child.running = Some(running);
                child.seq = Some(seq);
                child.state = ChildState::Started;
                child.started_at = Some(SystemTime::now());
                child.started_instant = Some(Instant::now());
                info!(self.logger, "child started"; "child" => &**name, "start_count" => child.start_count);
                self.running_order.insert(seq, name.clone());
                // Dynamic children cannot be inputs, so their outputs are
                // not kept.
                if let Some(output) = output.filter(|_| !child.dynamic) {
                    self.outputs.insert(name.clone(), output);
                }
                self.start_waiting_dependents(name, ctx);
            }
            Ok(Err(exit)) => self.handle_exit(name, exit, ctx),
            Err(panic) => self.handle_exit(
                name,
                Exit::Failed(format!("panicked: {}", panic_message(panic.as_ref()))),
                ctx,
            ),
        }
    }

    fn start_waiting_dependents(&mut self, name: &Arc<str>, ctx: &mut Context<Self>) {
        let Some(deps) = self.dependents.get(name) else {
            return;
        };
        let waiting: Vec<Arc<str>> = deps
            .iter()
            .filter(|d| self.children.get(*d).is_some_and(|c| c.waiting_for_input))
            .cloned()
            .collect();
        for dep in waiting {
            self.start_child(&dep, ctx);
        }
    }

    fn bounce_dependents(&mut self, name: &Arc<str>, ctx: &mut Context<Self>) {
        let Some(deps) = self.dependents.get(name) else {
            return;
        };
        let running: Vec<Arc<str>> = deps
            .iter()
            .filter(|d| {
                self.children
                    .get(*d)
                    .is_some_and(|c| c.running.is_some() && c.stop_reason.is_none())
            })
            .cloned()
            .collect();
        for dep in running {
            info!(self.logger, "bouncing: an input stopped"; "child" => &*dep, "input" => &**name);
            self.request_stop(&dep, StopReason::Dependency, ctx);
        }
    }

    fn request_stop(&mut self, name: &Arc<str>, reason: StopReason, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(name) else {
            return;
        };
        let Some(running) = &child.running else {
            return;
        };
        child.stop_reason = Some(reason);
        if child.state == ChildState::Stopping {
            return;
        }
        child.state = ChildState::Stopping;
        debug!(self.logger, "stopping child"; "child" => &**name, "reason" => ?reason);
        // When the stop cannot be delivered the instance has already ended
        // and its exit is on its way; the exit handler takes it from there.
        let _ = (running.stop)();
        // Without a runtime (the system is being dropped) no timer can be
        // set; the child's task is dropped with the runtime anyway.
        let runtime = tokio::runtime::Handle::try_current().is_ok();
        if let Some(timeout) = child.shutdown_timeout.filter(|_| runtime) {
            let timer = Timer::StopTimeout(name.clone(), child.generation, timeout);
            let key = self.set_timer(timeout, timer, ctx);
            if let Some(child) = self.children.get_mut(name) {
                child.stop_timer = Some(key);
            }
        }
    }

    fn stop_timed_out(
        &mut self,
        name: &Arc<str>,
        generation: u64,
        timeout: Duration,
        ctx: &mut Context<Self>,
    ) {
        let Some(child) = self.children.get_mut(name) else {
            return;
        };
        if child.generation != generation {
            return;
        }
        let Some(running) = child.running.take() else {
            return;
        };
        child.stop_timer = None;
        warn!(self.logger, "child did not stop in time: killed"; "child" => &**name, "timeout" => ?timeout);
        (running.kill)();
        // Put a placeholder back so that handle_exit sees a running child.
        child.running = Some(Running {
            stop: Box::new(|| false),
            kill: Box::new(|| {}),
        });
        let exit = Exit::Failed(format!(
            "did not stop within {}",
            humantime::format_duration(timeout)
        ));
        self.handle_exit(name, exit, ctx);
    }

    fn handle_exit(&mut self, name: &Arc<str>, exit: Exit, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(name) else {
            return;
        };
        let was_running = child.running.take().is_some();
        if let Some(key) = child.stop_timer.take() {
            self.timers.remove(&key);
        }
        if let Some(seq) = child.seq.take() {
            self.running_order.remove(&seq);
        }
        self.outputs.remove(name);
        let ran_for = child
            .started_instant
            .filter(|_| was_running)
            .map(|t| t.elapsed())
            .unwrap_or_default();
        child.last_exit = Some(exit.clone());
        if let Exit::Failed(e) | Exit::Fatal(e) = &exit {
            child.last_error = Some(e.clone());
        }
        let reason = child.stop_reason.take();
        let restart = child.spec.restart;
        if self.shutdown.is_none() {
            self.bounce_dependents(name, ctx);
        }

        if let Exit::Fatal(e) = &exit {
            if let Some(c) = self.children.get_mut(name) {
                c.state = ChildState::Failed;
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
                c.state = if matches!(exit, Exit::Failed(_)) && reason != Some(StopReason::Shutdown)
                {
                    ChildState::Failed
                } else {
                    ChildState::Stopped
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
                child.state = ChildState::Stopped;
                child.waiting_for_input = true;
            }
            Exit::Bounce => {
                if restart == RestartPolicy::Temporary {
                    info!(self.logger, "temporary child asked to bounce: not restarted"; "child" => &**name);
                    child.state = ChildState::Stopped;
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
                    child.state = ChildState::Stopped;
                }
            }
            Exit::Failed(e) => {
                child.recent_failures = if ran_for > self.config.backoff_reset_time {
                    1
                } else {
                    child.recent_failures.saturating_add(1)
                };
                child.state = ChildState::Failed;
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
                && c.state != ChildState::Failed
            {
                c.state = ChildState::Stopped;
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
        if reason != RestartReason::Failure {
            child.state = ChildState::Starting;
        }
        let key = self.set_timer(delay, Timer::Restart(name.clone()), ctx);
        if let Some(child) = self.children.get_mut(name) {
            child.restart_timer = Some(key);
        }
    }

    /// Sets a timer on the supervisor's one timer queue. One actix timer,
    /// for the earliest deadline, serves the whole queue: an actix timer per
    /// child would make every wake-up of the supervisor walk all of them,
    /// which thousands of dynamic children restarting at once would feel.
    fn set_timer(&mut self, after: Duration, timer: Timer, ctx: &mut Context<Self>) -> TimerKey {
        let key = (Instant::now() + after, self.timer_seq);
        self.timer_seq += 1;
        self.timers.insert(key, timer);
        self.arm(ctx);
        key
    }

    fn arm(&mut self, ctx: &mut Context<Self>) {
        let Some((&(first, _), _)) = self.timers.first_key_value() else {
            return;
        };
        if let Some((at, handle)) = self.armed {
            if at <= first {
                return;
            }
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(
            first.saturating_duration_since(Instant::now()),
            |sup, ctx| {
                sup.armed = None;
                sup.fire_timers(ctx);
            },
        );
        self.armed = Some((first, handle));
    }

    fn fire_timers(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (key, timer) = entry.remove_entry();
            match timer {
                Timer::Restart(name) => {
                    let due = self.children.get_mut(&name).is_some_and(|c| {
                        if c.restart_timer == Some(key) {
                            c.restart_timer = None;
                            true
                        } else {
                            false
                        }
                    });
                    if due {
                        self.start_child(&name, ctx);
                    }
                }
                Timer::StopTimeout(name, generation, timeout) => {
                    let due = self.children.get_mut(&name).is_some_and(|c| {
                        if c.stop_timer == Some(key) {
                            c.stop_timer = None;
                            true
                        } else {
                            false
                        }
                    });
                    if due {
                        self.stop_timed_out(&name, generation, timeout, ctx);
                    }
                }
            }
        }
        self.arm(ctx);
    }

    fn remove_now(&mut self, name: &Arc<str>) {
        let Some(mut child) = self.children.remove(name) else {
            return;
        };
        for key in [child.restart_timer.take(), child.stop_timer.take()]
            .into_iter()
            .flatten()
        {
            self.timers.remove(&key);
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
            if let Some(key) = child.restart_timer.take() {
                self.timers.remove(&key);
                if child.state == ChildState::Starting {
                    child.state = ChildState::Stopped;
                }
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
                .is_some_and(|c| c.running.is_some())
        {
            return;
        }
        match self.running_order.last_key_value() {
            Some((_, name)) => {
                let name = name.clone();
                shutdown.current = Some(name.clone());
                if let Some(c) = self.children.get_mut(&name)
                    && c.state == ChildState::Stopping
                {
                    c.stop_reason = Some(StopReason::Shutdown);
                } else {
                    self.request_stop(&name, StopReason::Shutdown, ctx);
                }
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
        let child = self.children.get_mut(&key).expect("looked up above");
        child.removal_waiters.push(tx);
        if child.running.is_some() {
            if self.shutdown.is_none() {
                self.request_stop(&key, StopReason::Remove, ctx);
            }
        } else {
            self.remove_now(&key);
        }
        Ok(rx)
    }

    fn no_such_child(&self, name: &str) -> SupervisorError {
        SupervisorError::NoSuchChild {
            supervisor: self.path.to_string(),
            child: name.to_owned(),
        }
    }

    /// A snapshot of the children now, completed by their own reports.
    fn report(&mut self) -> futures::future::LocalBoxFuture<'static, Report> {
        let now = Instant::now();
        let mut order: Vec<(&Arc<str>, &Child)> =
            self.children.iter().map(|(k, v)| (k, &**v)).collect();
        order.sort_by(|a, b| (a.1.decl, a.0).cmp(&(b.1.decl, b.0)));
        let mut pending = Vec::new();
        let children: Vec<ChildReport> = order
            .into_iter()
            .enumerate()
            .map(|(i, (name, c))| {
                if c.running.is_some()
                    && let Some(reporter) = &c.spec.reporter
                {
                    pending.push((i, reporter()));
                }
                ChildReport {
                    name: name.to_string(),
                    state: c.state,
                    inputs: c.spec.inputs.to_vec(),
                    restart: c.spec.restart,
                    state_policy: c.spec.state,
                    dynamic: c.dynamic,
                    waiting_for_input: c.waiting_for_input,
                    start_count: c.start_count,
                    started_at: c
                        .started_at
                        .map(|t| humantime::format_rfc3339_millis(t).to_string()),
                    last_exit: c.last_exit.clone(),
                    last_error: c.last_error.clone(),
                    recent_failures: c.recent_failures,
                    restart_in_ms: c.restart_timer.as_ref().map(|(at, _)| {
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
