//! The worker the supervision tests start as children: a plan says what it
//! does once started, a log records what happened and when, and messages
//! make it count, panic or exit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use muster_actors::{ChildSpec, Exit, ExitSlot, Kept, Mailbox, StartCtx};
use tokio::time::Instant;

/// Events seen by the test actors, with the (virtual) time they happened.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<(String, Instant)>>>);

impl Log {
    pub fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push((event.into(), Instant::now()));
    }
    pub fn times(&self, event: &str) -> Vec<Instant> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|e| e.0 == event)
            .map(|e| e.1)
            .collect()
    }
    pub fn count(&self, event: &str) -> usize {
        self.times(event).len()
    }
    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|e| e.0.clone()).collect()
    }
    /// The `name:stopped` events, in the order they happened.
    pub fn stops(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e.ends_with(":stopped"))
            .collect()
    }
}

/// What a worker does once started.
#[derive(Clone)]
pub enum Plan {
    Run,
    ExitAfter(Duration, Exit),
    PanicInStarted,
    PanicOnTick(u32),
    IgnoreStop,
    PanicInStopping,
}

/// `plan` on the first start, [`Plan::Run`] on every later one.
pub fn first(plan: Plan) -> impl Fn(u64) -> Plan + Send + 'static {
    move |n| if n == 1 { plan.clone() } else { Plan::Run }
}

/// A test child: runs its plan and logs `name:started` and `name:stopped`.
pub struct Worker {
    pub name: String,
    pub exit: ExitSlot,
    pub log: Log,
    pub kept: Kept<u64>,
    pub plan: Plan,
    pub ticks: u32,
}

impl Actor for Worker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.log.push(format!("{}:started", self.name));
        match self.plan.clone() {
            Plan::Run | Plan::IgnoreStop | Plan::PanicInStopping => {}
            Plan::ExitAfter(after, exit) => {
                if after.is_zero() {
                    self.exit.stop(ctx, exit);
                } else {
                    let slot = self.exit.clone();
                    ctx.run_later(after, move |_, ctx| slot.stop(ctx, exit));
                }
            }
            Plan::PanicInStarted => panic!("{} cannot start", self.name),
            Plan::PanicOnTick(n) => {
                ctx.run_interval(Duration::from_secs(1), move |act, _| {
                    act.ticks += 1;
                    if act.ticks == n {
                        panic!("tick {n} went wrong");
                    }
                });
            }
        }
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        match self.plan {
            Plan::IgnoreStop => return Running::Continue,
            Plan::PanicInStopping => panic!("{} cannot stop", self.name),
            _ => {}
        }
        Running::Stop
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.log.push(format!("{}:stopped", self.name));
    }
}
muster_actors::supervised!(Worker);

impl Worker {
    /// A worker that just runs, with fresh (not kept) state.
    pub fn running(name: &str, cx: &mut StartCtx<'_>, log: &Log) -> Worker {
        Worker {
            name: name.into(),
            exit: cx.exit_slot(),
            log: log.clone(),
            kept: Kept::new(0),
            plan: Plan::Run,
            ticks: 0,
        }
    }
}

/// Adds one to the worker's (possibly kept) counter and returns it.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Ping;

impl Handler<Ping> for Worker {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        self.kept.with(|n| {
            *n += 1;
            *n
        })
    }
}

/// Makes the worker's handler panic.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Boom;

impl Handler<Boom> for Worker {
    type Result = ();
    fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!("boom");
    }
}

/// Makes the worker stop with the given exit.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Quit(pub Exit);

impl Handler<Quit> for Worker {
    type Result = ();
    fn handle(&mut self, Quit(exit): Quit, ctx: &mut Context<Self>) {
        self.exit.stop(ctx, exit);
    }
}

/// A worker child whose plan depends on its start count (1, 2, ...).
pub fn worker(
    name: &str,
    mailbox: &Mailbox<Worker>,
    log: &Log,
    plan: impl Fn(u64) -> Plan + Send + 'static,
) -> ChildSpec {
    let log = log.clone();
    let owned = name.to_owned();
    ChildSpec::actor(name, mailbox, move |cx| {
        log.push(format!("{owned}:start"));
        Ok(Worker {
            name: owned.clone(),
            exit: cx.exit_slot(),
            log: log.clone(),
            kept: cx.kept(|| 0u64)?,
            plan: plan(cx.start_count()),
            ticks: 0,
        })
    })
}

/// Logs `note:N`; [`Note::BOOM`] makes the handler panic instead.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Note(pub u32);

impl Note {
    pub const BOOM: u32 = u32::MAX;
}

impl Handler<Note> for Worker {
    type Result = ();
    fn handle(&mut self, Note(n): Note, _: &mut Context<Self>) {
        if n == Note::BOOM {
            panic!("note {n} went wrong");
        }
        self.log.push(format!("note:{n}"));
    }
}
