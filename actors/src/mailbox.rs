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

mod envelope;
mod error;
mod posted;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use actix::{Actor, Addr, Context, Handler, Message};
use tokio::sync::oneshot;

pub use envelope::{Envelope, Metered};
pub use error::{SendError, TrySendError};

use crate::metrics::{MailboxStats, Meter};
use envelope::{Held, Job, job_of, lock};

/// An actor that runs under a supervisor: an actix actor with a plain
/// `Context` that accepts [`Envelope`]s (see [`supervised!`](crate::supervised)).
pub trait Supervised: Actor<Context = Context<Self>> + Handler<Envelope<Self>> + Send {}

impl<A> Supervised for A where A: Actor<Context = Context<A>> + Handler<Envelope<A>> + Send {}

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
