//! The stable, metered address of a supervised actor.
//!
//! A restarted actor gets a new actix mailbox, so senders hold a [`Mailbox`]
//! instead of an `Addr`: the supervisor re-points it at each new instance.
//! The handle is also where the metering and the capacity check live, since
//! actix's `send` and `do_send` queue past the mailbox capacity.
//!
//! Every message travels as a [`Metered`] message, which holds the message
//! itself, or as an [`Envelope`], a boxed call (what [`Mailbox::call`] runs,
//! and what a keeping mailbox holds between instances): timed and counted
//! when it runs, counted as dropped when the actor stops before running it.
//! An actor opts in with [`supervised!`], which implements
//! `Handler<Envelope<Self>>` and `Handler<Metered<Self, M>>` for each of its
//! messages `M` (a blanket impl is not allowed by the orphan rule).
//!
//! A message sent while the actor is not running (between a failure and its
//! restart, or after it stopped for good) is refused at once with
//! [`SendError::NotRunning`]; [`Mailbox::do_send`] hands a refused message
//! back in its [`TrySendError`]. Messages still queued when an actor fails
//! are dropped (and counted). A mailbox made with [`Mailbox::keeping`] keeps
//! them instead and hands them, in order, to the next instance: the choice
//! for an actor whose state is kept across restarts, so that a failure loses
//! nothing but the message whose handler panicked.
//!
//! [`supervised!`]: crate::supervised

mod posted;

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use actix::dev::MessageResponse;
use actix::{Actor, Addr, Context, Handler, Message};
use tokio::sync::oneshot;

use crate::metrics::{MailboxStats, Meter};

/// An actor that runs under a supervisor: an actix actor with a plain
/// `Context` that accepts [`Envelope`]s (see [`supervised!`](crate::supervised)).
pub trait Supervised: Actor<Context = Context<Self>> + Handler<Envelope<Self>> {}

impl<A> Supervised for A where A: Actor<Context = Context<A>> + Handler<Envelope<A>> {}

/// Implements `Handler<Envelope<Self>>`, and `Handler<Metered<Self, M>>`
/// for every message `M` it handles, for an actor, making it [`Supervised`].
///
/// ```
/// use actix::prelude::*;
/// struct Counter(u64);
/// impl Actor for Counter { type Context = Context<Self>; }
/// muster_actors::supervised!(Counter);
/// ```
#[macro_export]
macro_rules! supervised {
    ($actor:ty) => {
        impl $crate::actix::Handler<$crate::Envelope<$actor>> for $actor {
            type Result = ();
            fn handle(
                &mut self,
                envelope: $crate::Envelope<$actor>,
                ctx: &mut $crate::actix::Context<$actor>,
            ) {
                envelope.run(self, ctx)
            }
        }

        impl<M> $crate::actix::Handler<$crate::Metered<$actor, M>> for $actor
        where
            $actor: $crate::actix::Handler<M>,
            M: $crate::actix::Message + Send + 'static,
            M::Result: Send,
        {
            type Result = ();
            fn handle(
                &mut self,
                metered: $crate::Metered<$actor, M>,
                ctx: &mut $crate::actix::Context<$actor>,
            ) {
                metered.run(self, ctx)
            }
        }
    };
}

type Job<A> = Box<dyn FnOnce(&mut A, &mut Context<A>) + Send>;

/// Messages waiting for the next instance of a keeping mailbox's actor,
/// each with whether it is metered (a take of posted messages is not: the
/// messages it runs are).
type Held<A> = Mutex<VecDeque<(Job<A>, bool)>>;

/// One message on its way to a supervised actor. Only [`supervised!`]'s
/// handler needs to name it.
///
/// [`supervised!`]: crate::supervised
pub struct Envelope<A: Actor<Context = Context<A>>> {
    job: Option<Job<A>>,
    meter: Option<Arc<Meter>>,
    held: Option<Arc<Held<A>>>,
}

impl<A: Actor<Context = Context<A>>> Message for Envelope<A> {
    type Result = ();
}

impl<A: Actor<Context = Context<A>>> Envelope<A> {
    /// Runs the message's handler on the actor, timing it.
    pub fn run(mut self, act: &mut A, ctx: &mut Context<A>) {
        let Some(job) = self.job.take() else { return };
        match self.meter.take() {
            Some(meter) => {
                // Counted in a guard so that a panicking handler still counts
                // as handled and the depth stays right.
                let _guard = Handled {
                    meter: &meter,
                    since: crate::ticks::now(),
                };
                job(act, ctx)
            }
            None => job(act, ctx),
        }
    }
}

impl<A: Actor<Context = Context<A>>> Drop for Envelope<A> {
    /// An envelope dropped unrun was queued for an instance that stopped: a
    /// keeping mailbox holds it for the next instance (it stays counted in
    /// the depth), any other counts it as dropped.
    fn drop(&mut self) {
        let Some(job) = self.job.take() else { return };
        if let Some(held) = &self.held {
            lock(held).push_back((job, self.meter.is_some()));
        } else if let Some(meter) = &self.meter {
            meter.dropped();
        }
    }
}

/// Makes the boxed call a [`Metered`] message becomes when it must wait
/// for the actor's next instance.
type ToJob<A, M> = fn(M, Option<oneshot::Sender<<M as Message>::Result>>) -> Job<A>;

/// One message on its way to a supervised actor, held as it was sent: the
/// common path of [`Mailbox::do_send`] and [`Mailbox::send`], with no boxed
/// call to allocate. Only [`supervised!`]'s handler needs to name it.
///
/// [`supervised!`]: crate::supervised
pub struct Metered<A: Actor<Context = Context<A>>, M: Message> {
    message: Option<M>,
    reply: Option<oneshot::Sender<M::Result>>,
    meter: Arc<Meter>,
    held: Option<Arc<Held<A>>>,
    to_job: ToJob<A, M>,
}

impl<A: Actor<Context = Context<A>>, M: Message> Message for Metered<A, M> {
    type Result = ();
}

impl<A, M> Metered<A, M>
where
    A: Actor<Context = Context<A>> + Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    /// Runs the message's handler on the actor, timing it, and sends the
    /// answer to whoever waits for it.
    pub fn run(mut self, act: &mut A, ctx: &mut Context<A>) {
        let Some(message) = self.message.take() else {
            return;
        };
        let _guard = Handled {
            meter: &self.meter,
            since: crate::ticks::now(),
        };
        let response = <A as Handler<M>>::handle(act, message, ctx);
        response.handle(ctx, self.reply.take());
    }
}

impl<A: Actor<Context = Context<A>>, M: Message> Drop for Metered<A, M> {
    /// As an [`Envelope`] dropped unrun: held for the next instance by a
    /// keeping mailbox, else counted as dropped.
    fn drop(&mut self) {
        let Some(message) = self.message.take() else {
            return;
        };
        match &self.held {
            Some(held) => lock(held).push_back(((self.to_job)(message, self.reply.take()), true)),
            None => self.meter.dropped(),
        }
    }
}

/// The boxed call of `A`'s handler of `M`, answering on `reply`.
fn job_of<A, M>(message: M, reply: Option<oneshot::Sender<M::Result>>) -> Job<A>
where
    A: Actor<Context = Context<A>> + Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    Box::new(move |act: &mut A, ctx: &mut Context<A>| {
        let response = <A as Handler<M>>::handle(act, message, ctx);
        response.handle(ctx, reply);
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Handled<'a> {
    meter: &'a Meter,
    since: u64,
}

impl Handled<'_> {
    /// Counts the message handled now, and answers the reading of the
    /// clock it took: where the next message of a run starts.
    fn finish(self) -> u64 {
        let now = crate::ticks::now();
        self.meter
            .handled(crate::ticks::nanos_between(self.since, now));
        std::mem::forget(self);
        now
    }
}

impl Drop for Handled<'_> {
    /// Counts a message whose handler panicked, as handled.
    fn drop(&mut self) {
        self.meter.handled(crate::ticks::nanos_since(self.since));
    }
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The mailbox already holds `capacity` messages; the message was refused
    /// at once rather than queued.
    #[error("{child} is overloaded: its mailbox is full ({capacity} messages)")]
    Overloaded {
        /// The child the mailbox belongs to.
        child: String,
        /// The mailbox's capacity.
        capacity: usize,
    },
    /// The actor is not running: it is waiting to be restarted, waiting for an
    /// input, or stopped for good.
    #[error("{child} is not running")]
    NotRunning {
        /// The child the mailbox belongs to.
        child: String,
    },
    /// The message was accepted, but the actor stopped (or failed) before it
    /// answered.
    #[error("{child} stopped before answering")]
    Lost {
        /// The child the mailbox belongs to.
        child: String,
    },
    /// The whole subsystem the call goes to is not running: it did not
    /// start again within the handle's wait, or nothing will start it again
    /// (see `Muster::with_restart_wait`).
    #[error("{subsystem} is unavailable: {reason}")]
    Unavailable {
        /// The subsystem, by the name its host gave it.
        subsystem: String,
        /// Why.
        reason: String,
    },
}

/// A message [`Mailbox::do_send`] refused, handed back with why, as
/// tokio's `TrySendError` hands back what it could not send: the sender
/// decides whether to send it again later, keep it, or drop it.
pub struct TrySendError<M> {
    message: M,
    error: SendError,
}

impl<M> TrySendError<M> {
    /// Why the message was refused: [`SendError::Overloaded`] or
    /// [`SendError::NotRunning`].
    pub fn error(&self) -> &SendError {
        &self.error
    }

    /// The refused message.
    pub fn into_message(self) -> M {
        self.message
    }

    /// The refused message and why.
    pub fn into_parts(self) -> (M, SendError) {
        (self.message, self.error)
    }
}

impl<M> From<TrySendError<M>> for SendError {
    fn from(refused: TrySendError<M>) -> Self {
        refused.error
    }
}

impl<M> fmt::Debug for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message need not be Debug; why it was refused is what matters.
        f.debug_struct("TrySendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<M> fmt::Display for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<M> std::error::Error for TrySendError<M> {}

struct Slot<A: Actor> {
    generation: u64,
    addr: Option<Addr<A>>,
}

struct Shared<A: Actor<Context = Context<A>>> {
    /// A mutex rather than a read-write lock: a send holds it for a few
    /// instructions, and while it is held the meter's counts have one
    /// writer, so they need no locked instructions of their own.
    slot: Mutex<Slot<A>>,
    meter: Arc<Meter>,
    held: Option<Arc<Held<A>>>,
    /// The queue of [`Mailbox::post`], for the first type posted.
    posted: OnceLock<Arc<dyn Any + Send + Sync>>,
}

/// The stable address of a supervised actor: cheap to clone, `Send + Sync`,
/// valid across restarts, with a capacity and metering.
pub struct Mailbox<A: Actor<Context = Context<A>>> {
    shared: Arc<Shared<A>>,
}

impl<A: Actor<Context = Context<A>>> Clone for Mailbox<A> {
    fn clone(&self) -> Self {
        Mailbox {
            shared: self.shared.clone(),
        }
    }
}

impl<A: Actor<Context = Context<A>>> fmt::Debug for Mailbox<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("child", &self.shared.meter.name())
            .field("capacity", &self.shared.meter.capacity)
            .finish()
    }
}

impl<A: Supervised> Mailbox<A> {
    /// A mailbox that holds at most `capacity` messages waiting to be
    /// handled; past that, sends fail with [`SendError::Overloaded`]. A
    /// capacity of 0 refuses every message.
    pub fn new(capacity: usize) -> Self {
        Self::with_held(capacity, None)
    }

    /// A mailbox like [`Mailbox::new`] that keeps its messages across
    /// restarts: a message sent while the actor is not running waits for
    /// the next instance, and messages still queued when an instance fails
    /// go to the next one, in order, ahead of anything sent later. Only the
    /// message whose handler panicked is lost. Waiting messages count
    /// towards the capacity, so a child that never comes back refuses with
    /// [`SendError::Overloaded`] once it is full.
    pub fn keeping(capacity: usize) -> Self {
        Self::with_held(capacity, Some(Arc::default()))
    }

    fn with_held(capacity: usize, held: Option<Arc<Held<A>>>) -> Self {
        Mailbox {
            shared: Arc::new(Shared {
                slot: Mutex::new(Slot {
                    generation: 0,
                    addr: None,
                }),
                meter: Arc::new(Meter::new(capacity)),
                held,
                posted: OnceLock::new(),
            }),
        }
    }

    /// Sends `msg` without waiting for the answer. Fails at once when the
    /// mailbox is full or the actor is not running, and then hands `msg`
    /// back in the error, so that nothing is lost unless the sender drops
    /// it.
    pub fn do_send<M>(&self, msg: M) -> Result<(), TrySendError<M>>
    where
        A: Handler<M> + Handler<Metered<A, M>>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.push_message(msg, None)
            .map_err(|(message, error)| TrySendError { message, error })
    }

    /// Sends `msg` without waiting for the answer, as [`do_send`](Self::do_send)
    /// does, through a queue beside the actor's actix mailbox: the first
    /// message of a run sends actix one take, which runs every message
    /// posted by then, each metered as a sent one is (see the `posted`
    /// module). Posted messages keep their order among themselves; one
    /// sent otherwise meanwhile may be handled after posted messages that
    /// were posted after it, never before those posted before it.
    pub fn post<M>(&self, msg: M) -> Result<(), TrySendError<M>>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let shared = &self.shared;
        let any = shared
            .posted
            .get_or_init(|| Arc::new(posted::Posted::<M>::new()));
        let Some(queue) = any.downcast_ref::<posted::Posted<M>>() else {
            // Another type took the queue: this one goes as a boxed call.
            return self
                .push(msg, |msg| job_of::<A, M>(msg, None))
                .map_err(|(message, error)| TrySendError { message, error });
        };
        self.read_addr(|addr| {
            let meter = &shared.meter;
            if addr.is_none() && shared.held.is_none() {
                meter.refuse_not_running();
                return Err(TrySendError {
                    message: msg,
                    error: SendError::NotRunning {
                        child: meter.name(),
                    },
                });
            }
            if !meter.admit() {
                return Err(TrySendError {
                    message: msg,
                    error: self.overloaded(),
                });
            }
            if !queue.push(msg) {
                return Ok(());
            }
            let Ok(queue) = Arc::clone(any).downcast::<posted::Posted<M>>() else {
                return Ok(());
            };
            let take = posted::take::<A, M>(queue, meter.clone(), shared.held.clone());
            match (addr, &shared.held) {
                (Some(addr), _) => addr.do_send(Envelope {
                    job: Some(take),
                    meter: None,
                    held: shared.held.clone(),
                }),
                (None, Some(held)) => lock(held).push_back((take, false)),
                (None, None) => {}
            }
            Ok(())
        })
    }

    /// Sends `msg` and waits for the handler's answer. The mailbox's checks
    /// happen when `send` is called, not when the future is first polled.
    pub fn send<M>(&self, msg: M) -> impl Future<Output = Result<M::Result, SendError>> + use<A, M>
    where
        A: Handler<M> + Handler<Metered<A, M>>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let (tx, rx) = oneshot::channel();
        let pushed = self.push_message(msg, Some(tx)).map_err(|(_, error)| error);
        self.answer(pushed, rx)
    }

    /// Runs `f` on the actor as a message (metered like any other) and
    /// returns its result.
    pub fn call<R, F>(&self, f: F) -> impl Future<Output = Result<R, SendError>> + use<A, R, F>
    where
        F: FnOnce(&mut A, &mut Context<A>) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let pushed = self
            .push(f, |f| {
                Box::new(move |act: &mut A, ctx: &mut Context<A>| {
                    let _ = tx.send(f(act, ctx));
                })
            })
            .map_err(|(_, error)| error);
        self.answer(pushed, rx)
    }

    /// What the handler sends on `rx` once `pushed` is in the mailbox; lost
    /// when the actor stops (or panics) before it answers.
    fn answer<R>(
        &self,
        pushed: Result<(), SendError>,
        rx: oneshot::Receiver<R>,
    ) -> impl Future<Output = Result<R, SendError>> + use<A, R> {
        let meter = self.shared.meter.clone();
        async move {
            pushed?;
            rx.await.map_err(|_| SendError::Lost {
                child: meter.name(),
            })
        }
    }

    /// The mailbox's own counters.
    pub fn stats(&self) -> MailboxStats {
        self.shared.meter.stats()
    }

    /// Whether an instance of the actor is running now.
    pub fn is_running(&self) -> bool {
        self.read_addr(|a| a.is_some())
    }

    /// The actix address of the running instance, if any. Messages sent
    /// through it bypass the capacity and the metering, and it goes stale
    /// when the actor restarts; prefer the mailbox.
    pub fn addr(&self) -> Option<Addr<A>> {
        self.read_addr(|a| a.cloned())
    }

    fn read_addr<R>(&self, f: impl FnOnce(Option<&Addr<A>>) -> R) -> R {
        let slot = lock(&self.shared.slot);
        f(slot.addr.as_ref())
    }

    /// Queues `message` as itself, answering on `reply`, or hands it back
    /// with why it was refused.
    fn push_message<M>(
        &self,
        message: M,
        reply: Option<oneshot::Sender<M::Result>>,
    ) -> Result<(), (M, SendError)>
    where
        A: Handler<M> + Handler<Metered<A, M>>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let shared = &self.shared;
        self.read_addr(|addr| {
            let meter = &shared.meter;
            let Some(addr) = addr else {
                // Waiting for an instance: held as a boxed call, or refused.
                return self.push_held_or_refuse(message, |m| job_of::<A, M>(m, reply));
            };
            if !meter.admit() {
                return Err((message, self.overloaded()));
            }
            // The actix queue is unbounded for do_send; the meter bounds it.
            addr.do_send(Metered {
                message: Some(message),
                reply,
                meter: meter.clone(),
                held: shared.held.clone(),
                to_job: job_of::<A, M>,
            });
            Ok(())
        })
    }

    fn overloaded(&self) -> SendError {
        SendError::Overloaded {
            child: self.shared.meter.name(),
            capacity: self.shared.meter.capacity,
        }
    }

    /// With no instance running: holds the job `make` builds from
    /// `payload` for the next instance if the mailbox keeps its messages,
    /// else refuses with [`SendError::NotRunning`].
    fn push_held_or_refuse<T>(
        &self,
        payload: T,
        make: impl FnOnce(T) -> Job<A>,
    ) -> Result<(), (T, SendError)> {
        let meter = &self.shared.meter;
        match &self.shared.held {
            Some(held) => {
                if !meter.admit() {
                    return Err((payload, self.overloaded()));
                }
                lock(held).push_back((make(payload), true));
                Ok(())
            }
            None => {
                meter.refuse_not_running();
                Err((
                    payload,
                    SendError::NotRunning {
                        child: meter.name(),
                    },
                ))
            }
        }
    }

    /// Queues the job `make` builds from `payload`, or hands `payload` back
    /// with why it was refused. The job is built only once admitted, so a
    /// refused message is still the sender's.
    fn push<T>(&self, payload: T, make: impl FnOnce(T) -> Job<A>) -> Result<(), (T, SendError)> {
        self.read_addr(|addr| {
            let Some(addr) = addr else {
                return self.push_held_or_refuse(payload, make);
            };
            let meter = &self.shared.meter;
            if !meter.admit() {
                return Err((payload, self.overloaded()));
            }
            // The actix queue is unbounded for do_send; the meter bounds it.
            addr.do_send(Envelope {
                job: Some(make(payload)),
                meter: Some(meter.clone()),
                held: self.shared.held.clone(),
            });
            Ok(())
        })
    }

    /// Sends a job that is neither metered nor bounded: the supervisor's own
    /// requests (stop, report) must get through a full mailbox.
    pub(crate) fn control(&self, job: Job<A>) -> bool {
        self.read_addr(|addr| match addr {
            Some(addr) => {
                addr.do_send(Envelope {
                    job: Some(job),
                    meter: None,
                    held: None,
                });
                true
            }
            None => false,
        })
    }

    pub(crate) fn meter(&self) -> &Arc<Meter> {
        &self.shared.meter
    }

    /// Points the mailbox at a new instance, handing it the messages held
    /// for it first; returns its generation.
    pub(crate) fn attach(&self, addr: Addr<A>) -> u64 {
        let mut slot = lock(&self.shared.slot);
        slot.generation += 1;
        if let Some(held) = &self.shared.held {
            // Under the slot's lock, so nothing sent meanwhile can
            // overtake the held messages.
            for (job, metered) in lock(held).drain(..) {
                addr.do_send(Envelope {
                    job: Some(job),
                    meter: metered.then(|| self.shared.meter.clone()),
                    held: Some(held.clone()),
                });
            }
        }
        slot.addr = Some(addr);
        slot.generation
    }

    /// Detaches the instance of `generation`, if it is still the current one.
    pub(crate) fn detach(&self, generation: u64) {
        let mut slot = lock(&self.shared.slot);
        if slot.generation == generation {
            slot.addr = None;
        }
    }
}
