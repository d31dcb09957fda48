//! Child specifications, the exits a child reports, its start context, and
//! the guarded task each child runs in.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use actix::dev::ContextFut;
use actix::{ActorContext, Context};
use futures::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use slog::Logger;

use super::policy::{RestartPolicy, StatePolicy};
use crate::mailbox::{Mailbox, Supervised};
use crate::metrics::{Meter, Metrics};

/// Why a child stopped. An actor reports it through its [`ExitSlot`]; a
/// start function returns it as its error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "exit", content = "detail")]
pub enum Exit {
    /// Finished normally. Permanent children are restarted after the bounce
    /// delay; transient and temporary ones stay stopped.
    Done,
    /// Asks to be restarted after the bounce delay (not for temporary
    /// children).
    Bounce,
    /// An input is not available: the child is started again when one of its
    /// inputs (re)starts.
    Missing {
        /// The input that was missing.
        input: String,
    },
    /// Remove the child for good.
    Uninstall,
    /// An error: restarted with backoff unless temporary. A panic is a
    /// failure whose message starts with `panicked: `.
    Failed(String),
    /// Stop the whole tree; the host learns this error.
    Fatal(String),
}

impl Exit {
    /// A failure carrying `error`'s message.
    pub fn failed(error: impl fmt::Display) -> Self {
        Exit::Failed(error.to_string())
    }

    /// A fatal error carrying `error`'s message.
    pub fn fatal(error: impl fmt::Display) -> Self {
        Exit::Fatal(error.to_string())
    }

    /// The input `input` is missing.
    pub fn missing(input: impl Into<String>) -> Self {
        Exit::Missing {
            input: input.into(),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Done => f.write_str("done"),
            Exit::Bounce => f.write_str("bounce"),
            Exit::Missing { input } => write!(f, "input {input} missing"),
            Exit::Uninstall => f.write_str("uninstall"),
            Exit::Failed(e) => write!(f, "failed: {e}"),
            Exit::Fatal(e) => write!(f, "fatal: {e}"),
        }
    }
}

/// Where a running actor leaves the reason it is about to stop. Cheap to
/// clone; handed out by [`StartCtx::exit_slot`]. An actor that stops without
/// setting it exits with [`Exit::Done`].
#[derive(Clone, Debug, Default)]
pub struct ExitSlot(Arc<Mutex<Option<Exit>>>);

impl ExitSlot {
    /// Records `exit` as the reason of the coming stop (the last one set wins).
    pub fn set(&self, exit: Exit) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(exit);
    }

    /// Records `exit` and stops the actor.
    pub fn stop<A>(&self, ctx: &mut Context<A>, exit: Exit)
    where
        A: actix::Actor<Context = Context<A>>,
    {
        self.set(exit);
        ctx.stop();
    }

    pub(crate) fn take(&self) -> Option<Exit> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// State kept by the supervisor across a child's restarts (see
/// [`StatePolicy::Kept`]). Cheap to clone. A panic while the state is locked
/// does not poison it: keeping the state through a failure is the point.
#[derive(Debug, Default)]
pub struct Kept<S>(Arc<Mutex<S>>);

impl<S> Clone for Kept<S> {
    fn clone(&self) -> Self {
        Kept(self.0.clone())
    }
}

impl<S> Kept<S> {
    /// A cell holding `state`.
    pub fn new(state: S) -> Self {
        Kept(Arc::new(Mutex::new(state)))
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the state.
    pub fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.lock())
    }
}

pub(crate) type Output = Arc<dyn Any + Send + Sync>;

/// What a start function gets: the child's name, its inputs' outputs, its
/// exit slot, its logger and its kept state.
pub struct StartCtx<'a> {
    pub(crate) name: &'a str,
    pub(crate) path: &'a str,
    pub(crate) metrics_label: &'a str,
    pub(crate) start_count: u64,
    pub(crate) declared: &'a [String],
    pub(crate) outputs: &'a HashMap<Arc<str>, Output>,
    pub(crate) exit: ExitSlot,
    pub(crate) logger: Logger,
    pub(crate) base_logger: &'a Logger,
    pub(crate) kept: &'a Mutex<Option<Box<dyn Any + Send>>>,
    pub(crate) state: StatePolicy,
    pub(crate) output: Option<Output>,
    pub(crate) metrics: &'a Metrics,
    pub(crate) seed: u64,
}

impl StartCtx<'_> {
    /// The child's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The child's path in the tree, e.g. `root/pollers/machine-3`.
    pub fn path(&self) -> &str {
        self.path
    }

    /// 1 on the first start, then one more on each restart.
    pub fn start_count(&self) -> u64 {
        self.start_count
    }

    /// The child's logger: it carries the child's name (`child`) and its
    /// supervisor's path (`supervisor`).
    pub fn logger(&self) -> &Logger {
        &self.logger
    }

    /// The slot through which the actor reports why it stops.
    pub fn exit_slot(&self) -> ExitSlot {
        self.exit.clone()
    }

    /// The output of the input `input`, which must be one of the child's
    /// declared inputs. Returns [`Exit::Missing`] when that input is not
    /// running, and a failure naming the input and the expected type when its
    /// output is not a `T`; so `cx.input::<T>("x")?` in a start function does
    /// the right thing.
    pub fn input<T: Any + Clone + Send + Sync>(&self, input: &str) -> Result<T, Exit> {
        if !self.declared.iter().any(|d| d == input) {
            return Err(Exit::Failed(format!(
                "{} asked for input {input}, which it does not declare",
                self.name
            )));
        }
        let Some(output) = self.outputs.get(input) else {
            return Err(Exit::missing(input));
        };
        output.downcast_ref::<T>().cloned().ok_or_else(|| {
            Exit::Failed(format!(
                "input {input} of {} is not a {}",
                self.name,
                std::any::type_name::<T>()
            ))
        })
    }

    /// The child's state cell. With [`StatePolicy::Kept`] it is made by
    /// `init` on the first start and handed back unchanged on every restart;
    /// with [`StatePolicy::Rebuilt`] `init` runs on every start. Fails when a
    /// previous start kept a state of another type.
    pub fn kept<S: Send + 'static>(&mut self, init: impl FnOnce() -> S) -> Result<Kept<S>, Exit> {
        let mut slot = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if self.state == StatePolicy::Rebuilt {
            *slot = None;
        }
        if let Some(existing) = slot.as_ref() {
            return existing.downcast_ref::<Kept<S>>().cloned().ok_or_else(|| {
                Exit::Failed(format!(
                    "kept state of {} is not a {}",
                    self.name,
                    std::any::type_name::<S>()
                ))
            });
        }
        let cell = Kept::new(init());
        *slot = Some(Box::new(cell.clone()));
        Ok(cell)
    }

    /// Sets what dependents get from [`StartCtx::input`]. By default an actor
    /// child's output is its [`Mailbox`], and a supervisor child's is its
    /// [`SupervisorRef`](super::SupervisorRef).
    pub fn set_output<T: Any + Send + Sync>(&mut self, output: T) {
        self.output = Some(Arc::new(output));
    }
}

/// A child's own report, produced on demand.
pub type Reporter =
    Arc<dyn Fn() -> LocalBoxFuture<'static, Option<serde_json::Value>> + Send + Sync>;

impl<A: Supervised> Mailbox<A> {
    /// A [`Reporter`] that asks the running actor for its report with `f`;
    /// give it to [`ChildSpec::report`].
    pub fn reporter<F>(&self, f: F) -> Reporter
    where
        F: Fn(&A) -> serde_json::Value + Send + Sync + 'static,
    {
        let mailbox = self.clone();
        let f = Arc::new(f);
        Arc::new(move || {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let f = f.clone();
            let sent = mailbox.control(Box::new(move |act: &mut A, _ctx: &mut Context<A>| {
                let _ = tx.send(f(act));
            }));
            Box::pin(async move { if sent { rx.await.ok() } else { None } })
        })
    }
}

/// Where a child's task reports its exit.
pub(crate) type Notify = Box<dyn FnOnce(Exit)>;

/// A running instance of a child, as its supervisor holds it.
pub(crate) struct Running {
    /// Asks the instance to stop (gracefully); false when it was already gone.
    pub(crate) stop: Box<dyn Fn() -> bool>,
    /// Kills the instance's task and detaches its mailbox.
    pub(crate) kill: Box<dyn FnOnce()>,
}

pub(crate) trait Starter: Send {
    fn start(&mut self, cx: &mut StartCtx<'_>, notify: Notify) -> Result<Running, Exit>;
    fn stats(&self) -> Option<crate::metrics::MailboxStats>;
}

struct ActorStarter<A: Supervised, F> {
    mailbox: Mailbox<A>,
    start: F,
}

impl<A, F> Starter for ActorStarter<A, F>
where
    A: Supervised,
    F: FnMut(&mut StartCtx<'_>) -> Result<A, Exit> + Send,
{
    fn start(&mut self, cx: &mut StartCtx<'_>, notify: Notify) -> Result<Running, Exit> {
        claim(self.mailbox.meter(), cx)?;
        let actor = (self.start)(cx)?;
        if cx.output.is_none() {
            cx.set_output(self.mailbox.clone());
        }
        Ok(spawn_actor(actor, &self.mailbox, cx.exit.clone(), notify))
    }

    fn stats(&self) -> Option<crate::metrics::MailboxStats> {
        Some(self.mailbox.stats())
    }
}

/// Binds a mailbox to the child starting now; a mailbox serves one child
/// for its whole life.
pub(crate) fn claim(meter: &Arc<Meter>, cx: &StartCtx<'_>) -> Result<(), Exit> {
    Meter::bind(meter, cx.path, cx.metrics, cx.metrics_label);
    match meter.bound_name() {
        Some(owner) if owner != cx.path => Err(Exit::Failed(format!(
            "the mailbox given to {} already belongs to {owner}",
            cx.path
        ))),
        _ => Ok(()),
    }
}

/// Spawns `actor` on its own task, with panics caught, and points `mailbox`
/// at it.
pub(crate) fn spawn_actor<A: Supervised>(
    actor: A,
    mailbox: &Mailbox<A>,
    exit: ExitSlot,
    notify: Notify,
) -> Running {
    let fut = Context::<A>::new().into_future(actor);
    let generation = mailbox.attach(fut.address());
    // A hand-written future rather than an async block: an async block
    // would store the actor's future twice (as a captured value and as the
    // awaited one), doubling what every child costs.
    let handle = actix::spawn(ChildTask {
        fut: Some(fut),
        mailbox: mailbox.clone(),
        generation,
        exit,
        notify: Some(notify),
    });
    let stopper = mailbox.clone();
    let killer = mailbox.clone();
    Running {
        stop: Box::new(move || {
            stopper.control(Box::new(|_act: &mut A, ctx: &mut Context<A>| ctx.stop()))
        }),
        kill: Box::new(move || {
            handle.abort();
            killer.detach(generation);
        }),
    }
}

/// A child's task: polls the actor's whole future (handlers, `started`,
/// `stopping`, timers and intervals), turns a panic anywhere in it into a
/// failure carrying the panic's message, and tells the supervisor how the
/// child ended.
struct ChildTask<A: Supervised> {
    fut: Option<ContextFut<A, Context<A>>>,
    mailbox: Mailbox<A>,
    generation: u64,
    exit: ExitSlot,
    notify: Option<Notify>,
}

impl<A: Supervised> Future for ChildTask<A> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let Some(fut) = self.fut.as_mut() else {
            return Poll::Ready(());
        };
        let exit = match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *fut).poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(())) => {
                self.fut = None;
                self.exit.take().unwrap_or(Exit::Done)
            }
            Err(payload) => {
                let mut fut = self.fut.take().expect("checked above");
                // Without this, dropping the future would poll the actor once
                // more (actix stops it gracefully on drop), running handlers
                // of the messages still queued on a state that just panicked.
                fut.ctx().terminate();
                // The actor's own Drop may panic too; that must not take the
                // task down with a double panic.
                let _ = catch_unwind(AssertUnwindSafe(move || drop(fut)));
                Exit::Failed(format!("panicked: {}", panic_message(payload.as_ref())))
            }
        };
        self.mailbox.detach(self.generation);
        if let Some(notify) = self.notify.take() {
            notify(exit);
        }
        Poll::Ready(())
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a payload that is not a string".to_owned()
    }
}

/// A child: its name, inputs, restart and state policies, and how to start
/// it. Cheap to clone; clones share the start function and the kept state.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) name: Arc<str>,
    pub(crate) inputs: Arc<[String]>,
    pub(crate) restart: RestartPolicy,
    pub(crate) state: StatePolicy,
    pub(crate) shutdown_timeout: Option<Option<Duration>>,
    pub(crate) starter: Arc<Mutex<dyn Starter>>,
    pub(crate) kept: Arc<Mutex<Option<Box<dyn Any + Send>>>>,
    pub(crate) reporter: Option<Reporter>,
    pub(crate) is_supervisor: bool,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .field("restart", &self.restart)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// An actor child. `start` builds a new instance on every (re)start; the
    /// supervisor runs it and points `mailbox` at it. Returning an [`Exit`]
    /// from `start` is the same as the instance exiting with it at once.
    pub fn actor<A, F>(name: impl Into<String>, mailbox: &Mailbox<A>, start: F) -> Self
    where
        A: Supervised,
        F: FnMut(&mut StartCtx<'_>) -> Result<A, Exit> + Send + 'static,
    {
        Self::from_starter(
            name.into(),
            Arc::new(Mutex::new(ActorStarter {
                mailbox: mailbox.clone(),
                start,
            })),
            false,
        )
    }

    pub(crate) fn from_starter(
        name: String,
        starter: Arc<Mutex<dyn Starter>>,
        is_supervisor: bool,
    ) -> Self {
        ChildSpec {
            name: Arc::from(name),
            inputs: Arc::from(Vec::new()),
            restart: RestartPolicy::default(),
            state: StatePolicy::default(),
            shutdown_timeout: None,
            starter,
            kept: Arc::new(Mutex::new(None)),
            reporter: None,
            is_supervisor,
        }
    }

    /// The names of the children this one needs.
    pub fn inputs<I, S>(mut self, inputs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inputs = inputs.into_iter().map(Into::into).collect();
        self
    }

    /// The restart policy (default [`RestartPolicy::Permanent`]). A dynamic
    /// child takes its group's policy instead.
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// Whether the child's state is kept across restarts (default
    /// [`StatePolicy::Rebuilt`]). A dynamic child takes its group's policy.
    pub fn state(mut self, policy: StatePolicy) -> Self {
        self.state = policy;
        self
    }

    /// How long the child may take to stop before it is killed; `None`
    /// waits for ever. Defaults to the supervisor's `shutdown_timeout` for
    /// actors and to waiting for ever for supervisors, which stop their own
    /// children within their own timeouts.
    pub fn shutdown_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// How to get the child's own report (see [`Mailbox::reporter`]).
    pub fn report(mut self, reporter: Reporter) -> Self {
        self.reporter = Some(reporter);
        self
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}
