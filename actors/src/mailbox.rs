//! The stable, metered address of a supervised actor.
//!
//! A restarted actor gets a new actix mailbox, so senders hold a [`Mailbox`]
//! instead of an `Addr`: the supervisor re-points it at each new instance.
//! The handle is also where the metering and the capacity check live, since
//! actix's `send` and `do_send` queue past the mailbox capacity.
//!
//! Every message travels as an [`Envelope`]: a boxed call of the actor's own
//! `Handler<M>`, timed and counted when it runs, counted as dropped when the
//! actor stops before running it. An actor opts in with [`supervised!`],
//! which implements `Handler<Envelope<Self>>` (a blanket impl is not allowed
//! by the orphan rule).
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

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};

use actix::dev::MessageResponse;
use actix::{Actor, Addr, Context, Handler, Message};
use tokio::sync::oneshot;

use crate::metrics::{MailboxStats, Meter};

/// An actor that runs under a supervisor: an actix actor with a plain
/// `Context` that accepts [`Envelope`]s (see [`supervised!`](crate::supervised)).
pub trait Supervised: Actor<Context = Context<Self>> + Handler<Envelope<Self>> {}

impl<A> Supervised for A where A: Actor<Context = Context<A>> + Handler<Envelope<A>> {}

/// Implements `Handler<Envelope<Self>>` for an actor, making it [`Supervised`].
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
    };
}

type Job<A> = Box<dyn FnOnce(&mut A, &mut Context<A>) + Send>;

/// Messages waiting for the next instance of a keeping mailbox's actor.
type Held<A> = Mutex<VecDeque<Job<A>>>;

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
                    meter,
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
            lock(held).push_back(job);
        } else if let Some(meter) = &self.meter {
            meter.dropped();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Handled {
    meter: Arc<Meter>,
    since: u64,
}

impl Drop for Handled {
    fn drop(&mut self) {
        self.meter.handled(crate::ticks::nanos_since(self.since));
    }
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    slot: RwLock<Slot<A>>,
    meter: Arc<Meter>,
    held: Option<Arc<Held<A>>>,
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
                slot: RwLock::new(Slot {
                    generation: 0,
                    addr: None,
                }),
                meter: Arc::new(Meter::new(capacity)),
                held,
            }),
        }
    }

    /// Sends `msg` without waiting for the answer. Fails at once when the
    /// mailbox is full or the actor is not running, and then hands `msg`
    /// back in the error, so that nothing is lost unless the sender drops
    /// it.
    pub fn do_send<M>(&self, msg: M) -> Result<(), TrySendError<M>>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        self.push(msg, |msg| {
            Box::new(move |act: &mut A, ctx: &mut Context<A>| {
                let response = <A as Handler<M>>::handle(act, msg, ctx);
                response.handle(ctx, None);
            })
        })
        .map_err(|(message, error)| TrySendError { message, error })
    }

    /// Sends `msg` and waits for the handler's answer. The mailbox's checks
    /// happen when `send` is called, not when the future is first polled.
    pub fn send<M>(&self, msg: M) -> impl Future<Output = Result<M::Result, SendError>> + use<A, M>
    where
        A: Handler<M>,
        M: Message + Send + 'static,
        M::Result: Send,
    {
        let (tx, rx) = oneshot::channel();
        let pushed = self
            .push(msg, |msg| {
                Box::new(move |act: &mut A, ctx: &mut Context<A>| {
                    let response = <A as Handler<M>>::handle(act, msg, ctx);
                    response.handle(ctx, Some(tx));
                })
            })
            .map_err(|(_, error)| error);
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
        let slot = self
            .shared
            .slot
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(slot.addr.as_ref())
    }

    /// Queues the job `make` builds from `payload`, or hands `payload` back
    /// with why it was refused. The job is built only once admitted, so a
    /// refused message is still the sender's.
    fn push<T>(&self, payload: T, make: impl FnOnce(T) -> Job<A>) -> Result<(), (T, SendError)> {
        let meter = &self.shared.meter;
        let overloaded = || SendError::Overloaded {
            child: meter.name(),
            capacity: meter.capacity,
        };
        self.read_addr(|addr| {
            if let (None, Some(held)) = (addr, &self.shared.held) {
                if !meter.admit() {
                    return Err((payload, overloaded()));
                }
                lock(held).push_back(make(payload));
                return Ok(());
            }
            let Some(addr) = addr else {
                meter.refuse_not_running();
                return Err((
                    payload,
                    SendError::NotRunning {
                        child: meter.name(),
                    },
                ));
            };
            if !meter.admit() {
                return Err((payload, overloaded()));
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
        let mut slot = self
            .shared
            .slot
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.generation += 1;
        if let Some(held) = &self.shared.held {
            // Under the slot's write lock, so nothing sent meanwhile can
            // overtake the held messages.
            for job in lock(held).drain(..) {
                addr.do_send(Envelope {
                    job: Some(job),
                    meter: Some(self.shared.meter.clone()),
                    held: Some(held.clone()),
                });
            }
        }
        slot.addr = Some(addr);
        slot.generation
    }

    /// Detaches the instance of `generation`, if it is still the current one.
    pub(crate) fn detach(&self, generation: u64) {
        let mut slot = self
            .shared
            .slot
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.generation == generation {
            slot.addr = None;
        }
    }
}
