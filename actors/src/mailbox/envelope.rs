//! What travels to a supervised actor: a message as itself ([`Metered`]),
//! or a boxed call ([`Envelope`]), each timed and counted when it runs and
//! counted as dropped, or held for the next instance, when it does not.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix::dev::MessageResponse;
use actix::{Actor, Context, Handler, Message};
use tokio::sync::oneshot;

use crate::metrics::Meter;

pub(super) type Job<A> = Box<dyn FnOnce(&mut A, &mut Context<A>) + Send>;

/// Messages waiting for the next instance of a keeping mailbox's actor,
/// each with whether it is metered (a take of posted messages is not: the
/// messages it runs are).
pub(super) type Held<A> = Mutex<VecDeque<(Job<A>, bool)>>;

/// One message on its way to a supervised actor. Only [`supervised!`]'s
/// handler needs to name it.
///
/// [`supervised!`]: crate::supervised
pub struct Envelope<A: Actor<Context = Context<A>>> {
    pub(super) job: Option<Job<A>>,
    pub(super) meter: Option<Arc<Meter>>,
    pub(super) held: Option<Arc<Held<A>>>,
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
pub(super) type ToJob<A, M> = fn(M, Option<oneshot::Sender<<M as Message>::Result>>) -> Job<A>;

/// One message on its way to a supervised actor, held as it was sent: the
/// common path of [`Mailbox::do_send`](super::Mailbox::do_send) and [`Mailbox::send`](super::Mailbox::send), with no boxed
/// call to allocate. Only [`supervised!`]'s handler needs to name it.
///
/// [`supervised!`]: crate::supervised
pub struct Metered<A: Actor<Context = Context<A>>, M: Message> {
    pub(super) message: Option<M>,
    pub(super) reply: Option<oneshot::Sender<M::Result>>,
    pub(super) meter: Arc<Meter>,
    pub(super) held: Option<Arc<Held<A>>>,
    pub(super) to_job: ToJob<A, M>,
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
pub(super) fn job_of<A, M>(message: M, reply: Option<oneshot::Sender<M::Result>>) -> Job<A>
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

pub(super) use muster::sync::lock;

pub(super) struct Handled<'a> {
    pub(super) meter: &'a Meter,
    pub(super) since: u64,
}

impl Handled<'_> {
    /// Counts the message handled now, and answers the reading of the
    /// clock it took: where the next message of a run starts.
    pub(super) fn finish(self) -> u64 {
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
