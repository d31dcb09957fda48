//! How an instance of a child is started and run: the starters, and the
//! guarded task each instance runs on.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use actix::dev::ContextFut;
use actix::{ActorContext, ArbiterHandle, Context};
use futures::future::{AbortHandle, Abortable};

use super::context::StartCtx;
use super::exit::{Exit, ExitSlot};
use crate::mailbox::{Mailbox, Supervised};
use crate::metrics::{MailboxStats, Meter};

/// Where a child's task reports its exit.
pub(super) type Notify = Box<dyn FnOnce(Exit) + Send>;

/// How the supervisor reaches a running instance of a child.
pub(super) struct InstanceHandle {
    /// Asks the instance to stop (gracefully); false when it was already gone.
    pub(super) stop: Box<dyn Fn() -> bool + Send>,
    /// Kills the instance's task and detaches its mailbox.
    pub(super) kill: Box<dyn FnOnce() + Send>,
}

/// Makes and runs a new instance of a child on each start.
pub(super) trait Starter: Send {
    /// Starts an instance that calls `notify` once it has ended.
    fn start(&mut self, cx: &mut StartCtx<'_>, notify: Notify) -> Result<InstanceHandle, Exit>;
    /// The counters of the child's mailbox.
    fn stats(&self) -> Option<MailboxStats>;
}

/// The starter of an actor child: its start function and its mailbox.
pub(super) struct ActorStarter<A: Supervised, F> {
    pub(super) mailbox: Mailbox<A>,
    pub(super) start: F,
}

impl<A, F> Starter for ActorStarter<A, F>
where
    A: Supervised,
    F: FnMut(&mut StartCtx<'_>) -> Result<A, Exit> + Send,
{
    fn start(&mut self, cx: &mut StartCtx<'_>, notify: Notify) -> Result<InstanceHandle, Exit> {
        claim(self.mailbox.meter(), cx)?;
        let actor = (self.start)(cx)?;
        if cx.output.is_none() {
            cx.set_output(self.mailbox.clone());
        }
        Ok(spawn_actor(
            actor,
            &self.mailbox,
            cx.exit.clone(),
            notify,
            cx.arbiter.clone(),
        ))
    }

    fn stats(&self) -> Option<MailboxStats> {
        Some(self.mailbox.stats())
    }
}

/// Binds a mailbox to the child starting now; a mailbox serves one child
/// for its whole life.
pub(super) fn claim(meter: &Arc<Meter>, cx: &StartCtx<'_>) -> Result<(), Exit> {
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
/// at it: on the current arbiter, or on `arbiter` (the actor is made here
/// and moved there, where its task runs).
pub(super) fn spawn_actor<A: Supervised>(
    actor: A,
    mailbox: &Mailbox<A>,
    exit: ExitSlot,
    notify: Notify,
    arbiter: Option<ArbiterHandle>,
) -> InstanceHandle {
    let requested = exit.clone();
    let stopper = mailbox.clone();
    let stop: Box<dyn Fn() -> bool + Send> = Box::new(move || {
        requested.request_stop();
        stopper.control(Box::new(|_act: &mut A, ctx: &mut Context<A>| ctx.stop()))
    });
    let Some(arbiter) = arbiter else {
        let (_, task) = child_task(actor, mailbox, exit, notify);
        let handle = actix::spawn(task);
        return InstanceHandle {
            stop,
            kill: Box::new(move || handle.abort()),
        };
    };
    // The actor's future is not `Send`: it is made on the arbiter, which
    // says which generation of the mailbox it took.
    let (abort, registration) = AbortHandle::new_pair();
    let mailbox_there = mailbox.clone();
    let sent = arbiter.spawn_fn(move || {
        let (_, task) = child_task(actor, &mailbox_there, exit, notify);
        actix::spawn(async move {
            let _ = Abortable::new(task, registration).await;
        });
    });
    if !sent {
        // The arbiter has stopped: the child never runs, and its supervisor
        // hears nothing of it; it is killed at its stop deadline like any
        // child that does not answer.
        abort.abort();
    }
    InstanceHandle {
        stop,
        kill: Box::new(move || abort.abort()),
    }
}

/// The task that runs `actor`, its mailbox pointed at it: the mailbox's
/// generation, and the task.
fn child_task<A: Supervised>(
    actor: A,
    mailbox: &Mailbox<A>,
    exit: ExitSlot,
    notify: Notify,
) -> (u64, ChildTask<A>) {
    let fut = Context::<A>::new().into_future(actor);
    let generation = mailbox.attach(fut.address());
    // A hand-written future rather than an async block: an async block
    // would store the actor's future twice (as a captured value and as the
    // awaited one), doubling what every child costs.
    let task = ChildTask {
        fut: Some(fut),
        mailbox: mailbox.clone(),
        generation,
        exit,
        notify: Some(notify),
    };
    (generation, task)
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

/// A task dropped before its actor ended (killed, or its arbiter gone)
/// drops the actor where it ran, while its mailbox still points at it: actix
/// then runs `stopping` once (with no stop asked) and hands what is queued
/// back to a keeping mailbox. Only then is the mailbox detached; detaching
/// first would make actix skip `stopping` or not, depending on timing.
impl<A: Supervised> Drop for ChildTask<A> {
    fn drop(&mut self) {
        let Some(fut) = self.fut.take() else {
            return;
        };
        // The actor's `stopping` or Drop may panic; a drop must not.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(fut)));
        self.mailbox.detach(self.generation);
    }
}

/// The message of a caught panic.
pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a payload that is not a string".to_owned()
    }
}
