//! Posting: messages of one type queued beside the actor's actix mailbox
//! and taken by the actor in one go.
//!
//! Sending a message through actix costs two allocations (its envelope
//! and its queue node) and a wake-up of the receiving task, made on the
//! sender's thread and freed on the actor's. A message posted instead
//! joins a queue the mailbox keeps for its type, and only the first of a
//! run of them sends actix anything: a take, which runs every message
//! queued by then, one after another, each metered as a sent one is.
//! So a host feeding an actor events pays for a lock and a push, and the
//! actor for one message per run of events.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix::dev::MessageResponse;
use actix::{Actor, Context, Handler, Message};

use super::envelope::{Envelope, Handled, Held, Job, lock};
use crate::metrics::Meter;

/// The messages of type `M` posted to one mailbox and not taken yet.
pub(super) struct Posted<M> {
    queue: Mutex<Queue<M>>,
}

struct Queue<M> {
    items: VecDeque<M>,
    /// A take is on its way to the actor, or held for its next instance,
    /// and has not taken the queue yet: posting then only queues.
    scheduled: bool,
}

impl<M> Posted<M> {
    pub(super) fn new() -> Self {
        Posted {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                scheduled: false,
            }),
        }
    }

    /// Queues `message`; answers whether a take must be scheduled for it.
    pub(super) fn push(&self, message: M) -> bool {
        let mut queue = lock(&self.queue);
        queue.items.push_back(message);
        !std::mem::replace(&mut queue.scheduled, true)
    }

    /// Gives up a scheduled take that will not happen: no take is due any
    /// more, and the queued messages are dropped, each counted as such.
    fn abandon(&self, meter: &Meter) {
        let dropped = {
            let mut queue = lock(&self.queue);
            queue.scheduled = false;
            std::mem::take(&mut queue.items)
        };
        for _ in dropped {
            meter.dropped();
        }
    }
}

/// The job that takes the queued messages of `posted` on the actor.
pub(super) fn take<A, M>(
    posted: Arc<Posted<M>>,
    meter: Arc<Meter>,
    held: Option<Arc<Held<A>>>,
) -> Job<A>
where
    A: Actor<Context = Context<A>> + Handler<M> + Handler<Envelope<A>>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    let mut take = Take {
        posted,
        meter,
        held,
        taken: VecDeque::new(),
        ran: false,
        retake: take::<A, M>,
    };
    Box::new(move |act: &mut A, ctx: &mut Context<A>| take.run(act, ctx))
}

/// Makes a take: stored in each, for the one place that must make another
/// where the handler's bounds are not at hand (its drop).
type Retake<A, M> = fn(Arc<Posted<M>>, Arc<Meter>, Option<Arc<Held<A>>>) -> Job<A>;

/// A take on its way, and then under way.
struct Take<A: Actor<Context = Context<A>>, M> {
    posted: Arc<Posted<M>>,
    meter: Arc<Meter>,
    held: Option<Arc<Held<A>>>,
    /// Taken from the queue and not run yet.
    taken: VecDeque<M>,
    ran: bool,
    retake: Retake<A, M>,
}

impl<A, M> Take<A, M>
where
    A: Actor<Context = Context<A>> + Handler<M> + Handler<Envelope<A>>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    fn run(&mut self, act: &mut A, ctx: &mut Context<A>) {
        self.ran = true;
        {
            let mut queue = lock(&self.posted.queue);
            std::mem::swap(&mut self.taken, &mut queue.items);
            // From here a message posted is not in this take: it schedules
            // a take of its own, which actix queues behind whatever was
            // sent before it, as a message sent to the actor would be.
            queue.scheduled = false;
        }
        // Every message taken runs now, even if a handler makes the actor
        // wait: anything sent after them must come after them.
        // One reading of the clock a message: each one's handling ends
        // where the next one's starts.
        let mut since = crate::ticks::now();
        while let Some(message) = self.taken.pop_front() {
            let handled = Handled {
                meter: &self.meter,
                since,
            };
            let response = <A as Handler<M>>::handle(act, message, ctx);
            response.handle(ctx, None);
            since = handled.finish();
        }
        let mut queue = lock(&self.posted.queue);
        if queue.items.capacity() == 0 {
            // The queue keeps the emptied room for the next run.
            std::mem::swap(&mut self.taken, &mut queue.items);
        }
    }
}

impl<A: Actor<Context = Context<A>>, M> Drop for Take<A, M> {
    /// A take that never ran was lost with the instance it was sent to;
    /// one that stopped half-way did so because a handler panicked. A
    /// keeping mailbox's next instance takes what is left (and only the
    /// message that panicked is lost); any other mailbox drops it, as it
    /// drops what is queued when its actor fails.
    fn drop(&mut self) {
        if self.ran && !std::thread::panicking() {
            return;
        }
        if !self.taken.is_empty() {
            let mut queue = lock(&self.posted.queue);
            while let Some(message) = self.taken.pop_back() {
                queue.items.push_front(message);
            }
        }
        match &self.held {
            // A take that never ran is itself what a keeping mailbox holds
            // (see `Envelope`'s drop); one that ran leaves a new one.
            Some(held) if self.ran => {
                let job = (self.retake)(self.posted.clone(), self.meter.clone(), self.held.clone());
                lock(held).push_back((job, false));
                lock(&self.posted.queue).scheduled = true;
            }
            Some(_) => {}
            None => self.posted.abandon(&self.meter),
        }
    }
}
