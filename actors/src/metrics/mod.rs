//! Mailbox and restart metrics of the supervision tree.
//!
//! The host creates one [`Metrics`] with [`Metrics::register`] on the
//! `prometheus-client` [`Registry`] it owns, and hands it to the root
//! supervisor; the library never installs a global recorder.
//!
//! Each mailbox counts in its own atomics (shown in the report); the
//! registered collector sums them per label at scrape time, so a message
//! costs no more than the mailbox's own counting. Series are labelled by
//! `child`: the path of a static child (`root/presence`), or the path of a
//! dynamic group (`root/pollers/pollers`), which all the children of that
//! group share, so thousands of dynamic children make one series, not
//! thousands. The counts of a child that is gone are kept in its group's
//! totals, so counters never go down.

mod collector;
mod meter;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use muster::sync::lock;
use prometheus_client::registry::Registry;

use serde::{Deserialize, Serialize};

pub use meter::MailboxStats;
pub(crate) use meter::Meter;

/// Upper bounds of the handling-time buckets, in nanoseconds: 1 µs to about
/// 1 s, each four times the last; handlers are meant to be short.
const BUCKETS_NS: [u64; 11] = [
    1_000,
    4_000,
    16_000,
    64_000,
    256_000,
    1_024_000,
    4_096_000,
    16_384_000,
    65_536_000,
    262_144_000,
    1_048_576_000,
];

/// Why a child was restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RestartReason {
    Failure,
    Bounce,
    Done,
    Dependency,
}

const REASONS: [RestartReason; 4] = [
    RestartReason::Failure,
    RestartReason::Bounce,
    RestartReason::Done,
    RestartReason::Dependency,
];

impl RestartReason {
    fn as_str(self) -> &'static str {
        match self {
            RestartReason::Failure => "failure",
            RestartReason::Bounce => "bounce",
            RestartReason::Done => "done",
            RestartReason::Dependency => "dependency",
        }
    }
}

/// Restarts of one child, or of a whole tree, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartCounts {
    /// After a failure or a panic.
    pub failure: u64,
    /// After the child asked to be bounced.
    pub bounce: u64,
    /// After a normal exit of a permanent child.
    pub done: u64,
    /// Because one of its inputs stopped or restarted.
    pub dependency: u64,
}

/// Counters, as a mailbox keeps them and as a group keeps its gone members'.
#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    handled: AtomicU64,
    dropped: AtomicU64,
    overloaded: AtomicU64,
    not_running: AtomicU64,
    handling_nanos: AtomicU64,
}

impl Counts {
    fn add_to(&self, into: &mut Snapshot) {
        into.sent += self.sent.load(Ordering::Relaxed);
        into.handled += self.handled.load(Ordering::Relaxed);
        into.dropped += self.dropped.load(Ordering::Relaxed);
        into.overloaded += self.overloaded.load(Ordering::Relaxed);
        into.not_running += self.not_running.load(Ordering::Relaxed);
        into.handling_nanos += self.handling_nanos.load(Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct Snapshot {
    sent: u64,
    handled: u64,
    dropped: u64,
    overloaded: u64,
    not_running: u64,
    handling_nanos: u64,
    depth: u64,
    buckets: [u64; BUCKETS_NS.len() + 1],
}

/// Counts of handling times, one per bucket of [`BUCKETS_NS`] and `+Inf`.
type Buckets = [AtomicU64; BUCKETS_NS.len() + 1];

fn add_buckets<'a>(into: &mut [u64], from: impl IntoIterator<Item = &'a AtomicU64>) {
    for (into, from) in into.iter_mut().zip(from) {
        *into += from.load(Ordering::Relaxed);
    }
}

/// The series of one label: its live mailboxes, the totals of its gone
/// ones (their handling-time buckets included), the high water mark and
/// the restarts.
#[derive(Debug)]
pub(crate) struct Group {
    members: Mutex<Members>,
    retired: Counts,
    buckets: Buckets,
    high_water: AtomicUsize,
    restarts: [AtomicU64; REASONS.len()],
}

#[derive(Debug, Default)]
struct Members {
    meters: Vec<Weak<Meter>>,
    pruned_at: usize,
}

impl Group {
    fn new() -> Self {
        Group {
            members: Mutex::default(),
            retired: Counts::default(),
            buckets: Default::default(),
            high_water: AtomicUsize::new(0),
            restarts: Default::default(),
        }
    }

    fn join(&self, meter: Weak<Meter>) {
        let mut m = lock(&self.members);
        // Dropping dead entries now and then keeps the list (and the memory
        // a Weak pins) proportional to the live members.
        if m.meters.len() >= 2 * m.pruned_at.max(16) {
            m.meters.retain(|w| w.strong_count() > 0);
            m.pruned_at = m.meters.len();
        }
        m.meters.push(meter);
    }

    fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        self.retired.add_to(&mut s);
        add_buckets(&mut s.buckets, &self.buckets);
        let m = lock(&self.members);
        for meter in m.meters.iter().filter_map(Weak::upgrade) {
            meter.counts.add_to(&mut s);
            if let Some(buckets) = meter.buckets.get() {
                add_buckets(&mut s.buckets, buckets.iter());
            }
            s.depth += meter.depth() as u64;
        }
        s
    }
}

/// The metrics of one supervision tree. Cheap to clone: clones share the
/// same series.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    groups: Arc<Groups>,
}

#[derive(Debug, Default)]
struct Groups(Mutex<BTreeMap<String, Arc<Group>>>);

impl Metrics {
    /// Metrics that are kept but exported nowhere (the report still shows the
    /// per-child counters).
    pub fn unregistered() -> Self {
        Metrics::default()
    }

    /// Creates the metrics and registers them on the host's `registry`:
    /// `muster_mailbox_{sent,handled,dropped,refused}_total`,
    /// `muster_mailbox_depth`, `muster_mailbox_depth_high_water`,
    /// `muster_mailbox_handling_seconds` (histogram) and
    /// `muster_child_restarts_total`, all labelled by `child`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        registry.register_collector(Box::new(m.groups.clone()));
        m
    }

    pub(crate) fn group(&self, label: &str) -> Arc<Group> {
        let mut groups = lock(&self.groups.0);
        groups
            .entry(label.to_owned())
            .or_insert_with(|| Arc::new(Group::new()))
            .clone()
    }

    /// Each series label with its mailboxes' depth now: what
    /// `muster_mailbox_depth` exports, read without encoding it.
    pub fn depths(&self) -> Vec<(String, u64)> {
        self.groups()
            .into_iter()
            .map(|(label, group)| (label, group.snapshot().depth))
            .collect()
    }

    /// The restarts counted over the whole tree, by reason: what
    /// `muster_child_restarts_total` exports, added up over its children.
    pub fn restarts(&self) -> RestartCounts {
        let mut counts = RestartCounts::default();
        for (_, group) in self.groups() {
            let read = |reason: RestartReason| {
                let i = REASONS.iter().position(|r| *r == reason).unwrap_or(0);
                group.restarts[i].load(Ordering::Relaxed)
            };
            counts.failure += read(RestartReason::Failure);
            counts.bounce += read(RestartReason::Bounce);
            counts.done += read(RestartReason::Done);
            counts.dependency += read(RestartReason::Dependency);
        }
        counts
    }

    /// Every group, by label, taken out of the lock.
    fn groups(&self) -> Vec<(String, Arc<Group>)> {
        let groups = lock(&self.groups.0);
        groups.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(crate) fn restarted(&self, label: &str, reason: RestartReason) {
        let i = REASONS.iter().position(|r| *r == reason).unwrap_or(0);
        self.group(label).restarts[i].fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
