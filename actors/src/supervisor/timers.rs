//! The supervisor's one timer queue: restarts and stop deadlines.
//!
//! One actix timer, for the earliest deadline, serves the whole queue: an
//! actix timer per child would make every wake-up of the supervisor walk all
//! of them, which thousands of dynamic children restarting at once would
//! feel.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{AsyncContext, Context, SpawnHandle};
use muster::clock::later;
use tokio::time::Instant;

use super::actor::Supervisor;
use super::lifecycle::Lifecycle;

/// A deadline, made unique by a sequence number.
pub(super) type TimerKey = (Instant, u64);

/// What a timer does when it fires.
pub(super) enum Timer {
    /// Starts the child again.
    Restart(Arc<str>),
    /// Kills the child's instance of that generation, which did not stop
    /// within the timeout.
    StopTimeout(Arc<str>, u64, Duration),
}

/// The pending timers, and the actix timer armed for the first of them.
#[derive(Default)]
pub(super) struct Timers {
    queue: BTreeMap<TimerKey, Timer>,
    seq: u64,
    armed: Option<(Instant, SpawnHandle)>,
}

impl Timers {
    /// Forgets a timer; one that already fired or was cancelled is ignored.
    pub(super) fn cancel(&mut self, key: TimerKey) {
        self.queue.remove(&key);
    }
}

impl Supervisor {
    /// Sets a timer that fires `after` from now; a duration past what the
    /// clock holds fires in the far future instead of panicking.
    pub(super) fn set_timer(
        &mut self,
        after: Duration,
        timer: Timer,
        ctx: &mut Context<Self>,
    ) -> TimerKey {
        let key = (later(Instant::now(), after), self.timers.seq);
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
                // A restart or a kill may have changed a static child.
                sup.post_health();
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
