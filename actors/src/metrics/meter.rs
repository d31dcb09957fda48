//! A mailbox's own counting: what it accepted, handled, dropped and
//! refused, its depth and the time spent in its handlers.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::{BUCKETS_NS, Buckets, Counts, Group, Metrics};

/// A mailbox's own counters, as shown in the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxStats {
    /// Most messages the mailbox holds before it refuses with `Overloaded`.
    pub capacity: usize,
    /// Messages accepted.
    pub sent: u64,
    /// Messages handled (a handler that panicked counts as handled).
    pub handled: u64,
    /// Accepted messages dropped unhandled because the actor stopped.
    pub dropped: u64,
    /// Messages refused because the mailbox was full.
    pub refused_overloaded: u64,
    /// Messages refused because the actor was not running.
    pub refused_not_running: u64,
    /// Messages waiting now.
    pub depth: usize,
    /// Highest depth seen.
    pub high_water: usize,
    /// Total time spent in handlers, in nanoseconds.
    pub handling_nanos: u64,
}

/// Per-mailbox counters; shared by the mailbox handle and every envelope in
/// flight.
#[derive(Debug)]
pub(crate) struct Meter {
    pub(crate) capacity: usize,
    name: OnceLock<Arc<str>>,
    group: OnceLock<Arc<Group>>,
    pub(super) counts: Counts,
    /// Handling times by bucket of [`BUCKETS_NS`], summed over the group
    /// at scrape time; made on the first message handled, since most of
    /// ten thousand pollers' mailboxes never see one.
    pub(super) buckets: OnceLock<Box<Buckets>>,
    high_water: AtomicUsize,
}

/// Adds `by` to a counter that has one writer at a time: a plain load and
/// store, where a locked read-modify-write would cost several times more
/// on every message. Readers on other threads see the old or new value.
#[inline]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

impl Drop for Meter {
    fn drop(&mut self) {
        if let Some(group) = self.group.get() {
            let r = &group.retired;
            let c = &self.counts;
            for (into, from) in [
                (&r.sent, &c.sent),
                (&r.handled, &c.handled),
                (&r.dropped, &c.dropped),
                (&r.overloaded, &c.overloaded),
                (&r.not_running, &c.not_running),
                (&r.handling_nanos, &c.handling_nanos),
            ] {
                into.fetch_add(from.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            for (into, from) in group
                .buckets
                .iter()
                .zip(self.buckets.get().into_iter().flat_map(|b| b.iter()))
            {
                into.fetch_add(from.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
    }
}

impl Meter {
    pub(crate) fn new(capacity: usize) -> Self {
        crate::ticks::calibrate();
        Meter {
            capacity,
            name: OnceLock::new(),
            group: OnceLock::new(),
            counts: Counts::default(),
            buckets: OnceLock::new(),
            high_water: AtomicUsize::new(0),
        }
    }

    /// Names the mailbox and joins it to its series; the first binding wins,
    /// since a mailbox belongs to one child for its whole life.
    pub(crate) fn bind(this: &Arc<Meter>, name: &str, metrics: &Metrics, label: &str) {
        let _ = this.name.set(Arc::from(name));
        if this.group.get().is_none() {
            let group = metrics.group(label);
            group.join(Arc::downgrade(this));
            let _ = this.group.set(group);
        }
    }

    pub(crate) fn bound_name(&self) -> Option<&str> {
        self.name.get().map(|n| &**n)
    }

    pub(crate) fn name(&self) -> String {
        self.name
            .get()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "an unsupervised mailbox".to_owned())
    }

    /// Reserves a place for one message, or says the mailbox is full.
    ///
    /// Called by one sender at a time (the mailbox calls it under its
    /// lock), so its counts have one writer. The depth is derived
    /// (accepted − handled − dropped) rather than kept in a counter of its
    /// own, which saves two writes per message.
    #[inline]
    pub(crate) fn admit(&self) -> bool {
        let depth = self.depth();
        if depth >= self.capacity {
            bump(&self.counts.overloaded, 1);
            return false;
        }
        bump(&self.counts.sent, 1);
        if depth + 1 > self.high_water.load(Ordering::Relaxed) {
            self.high_water.store(depth + 1, Ordering::Relaxed);
            if let Some(g) = self.group.get() {
                g.high_water.fetch_max(depth + 1, Ordering::Relaxed);
            }
        }
        true
    }

    #[inline]
    pub(super) fn depth(&self) -> usize {
        // Read the finishing counts first, so that a message finishing
        // between the reads cannot make the depth look negative.
        let done = self.counts.handled.load(Ordering::Relaxed)
            + self.counts.dropped.load(Ordering::Relaxed);
        let sent = self.counts.sent.load(Ordering::Relaxed);
        usize::try_from(sent.saturating_sub(done)).unwrap_or(usize::MAX)
    }

    /// Counts a message refused while the actor is not running; called
    /// under the mailbox's lock, as [`admit`](Meter::admit) is.
    pub(crate) fn refuse_not_running(&self) {
        bump(&self.counts.not_running, 1);
    }

    /// Counts a message handled in `nanos`.
    ///
    /// Only the actor's own handlers call this, one at a time: an instance
    /// handles one message after another, and the next instance starts
    /// after the last one stopped. So its counts have one writer, and a
    /// plain load and store does what a locked read-modify-write would, for
    /// less; senders only read them.
    #[inline]
    pub(crate) fn handled(&self, nanos: u64) {
        bump(&self.counts.handled, 1);
        bump(&self.counts.handling_nanos, nanos);
        let buckets = self.buckets.get_or_init(Box::default);
        bump(&buckets[BUCKETS_NS.partition_point(|b| *b < nanos)], 1);
    }

    pub(crate) fn dropped(&self) {
        self.counts.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> MailboxStats {
        let c = &self.counts;
        MailboxStats {
            capacity: self.capacity,
            sent: c.sent.load(Ordering::Relaxed),
            handled: c.handled.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            refused_overloaded: c.overloaded.load(Ordering::Relaxed),
            refused_not_running: c.not_running.load(Ordering::Relaxed),
            depth: self.depth(),
            high_water: self.high_water.load(Ordering::Relaxed),
            handling_nanos: c.handling_nanos.load(Ordering::Relaxed),
        }
    }
}
