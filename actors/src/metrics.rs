//! Mailbox and restart metrics of the supervision tree.
//!
//! The host creates one [`Metrics`] with [`Metrics::register`] on the
//! `prometheus-client` [`Registry`] it owns, and hands it to the root
//! supervisor; the library never installs a global recorder. Every supervised
//! mailbox also keeps its own cheap counters (atomics) for the report.
//!
//! Series are labelled by `child`: the path of a static child
//! (`root/presence`), or the path of a dynamic group (`root/pollers/*`), which
//! all the children of that group share, so thousands of dynamic children make
//! one series, not thousands.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

/// Labels of the mailbox series: the child's path, or its dynamic group's.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChildLabel {
    /// `root/presence` for a static child, `root/pollers/*` for a dynamic group.
    pub child: String,
}

/// Labels of the restart counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestartLabel {
    /// As in [`ChildLabel`].
    pub child: String,
    /// Why the child was restarted: `failure`, `bounce`, `done` or `dependency`.
    pub reason: String,
}

/// Labels of the refused-message counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabel {
    /// As in [`ChildLabel`].
    pub child: String,
    /// `overloaded` or `not_running`.
    pub reason: String,
}

fn handling_histogram() -> Histogram {
    // 1 µs .. ~1 s in 11 buckets, each four times the last: handlers are short.
    Histogram::new(exponential_buckets(1e-6, 4.0, 11))
}

/// The metric families of one supervision tree. Cheap to clone: clones share
/// the same series.
#[derive(Clone, Debug)]
pub struct Metrics {
    sent: Family<ChildLabel, Counter>,
    handled: Family<ChildLabel, Counter>,
    dropped: Family<ChildLabel, Counter>,
    refused: Family<RefusedLabel, Counter>,
    depth: Family<ChildLabel, Gauge>,
    high_water: Family<ChildLabel, Gauge>,
    handling: Family<ChildLabel, Histogram, fn() -> Histogram>,
    restarts: Family<RestartLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::unregistered()
    }
}

impl Metrics {
    /// Metrics that are kept but exported nowhere (the report still shows the
    /// per-child counters).
    pub fn unregistered() -> Self {
        Metrics {
            sent: Family::default(),
            handled: Family::default(),
            dropped: Family::default(),
            refused: Family::default(),
            depth: Family::default(),
            high_water: Family::default(),
            handling: Family::new_with_constructor(handling_histogram as fn() -> Histogram),
            restarts: Family::default(),
        }
    }

    /// Creates the families and registers them on the host's `registry`
    /// under `muster_mailbox_*` and `muster_child_restarts`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::unregistered();
        registry.register(
            "muster_mailbox_sent",
            "Messages accepted into a supervised mailbox",
            m.sent.clone(),
        );
        registry.register(
            "muster_mailbox_handled",
            "Messages handled by a supervised actor",
            m.handled.clone(),
        );
        registry.register(
            "muster_mailbox_dropped",
            "Accepted messages dropped unhandled because the actor stopped",
            m.dropped.clone(),
        );
        registry.register(
            "muster_mailbox_refused",
            "Messages refused by a supervised mailbox, by reason",
            m.refused.clone(),
        );
        registry.register(
            "muster_mailbox_depth",
            "Messages waiting in supervised mailboxes",
            m.depth.clone(),
        );
        registry.register(
            "muster_mailbox_depth_high_water",
            "Highest mailbox depth seen",
            m.high_water.clone(),
        );
        registry.register(
            "muster_mailbox_handling_seconds",
            "Time spent in message handlers",
            m.handling.clone(),
        );
        registry.register(
            "muster_child_restarts",
            "Restarts of supervised children, by reason",
            m.restarts.clone(),
        );
        m
    }

    pub(crate) fn series(&self, label: &str) -> Series {
        let l = ChildLabel {
            child: label.to_owned(),
        };
        let refused = |reason: &str| {
            self.refused
                .get_or_create(&RefusedLabel {
                    child: label.to_owned(),
                    reason: reason.to_owned(),
                })
                .clone()
        };
        Series {
            sent: self.sent.get_or_create(&l).clone(),
            handled: self.handled.get_or_create(&l).clone(),
            dropped: self.dropped.get_or_create(&l).clone(),
            overloaded: refused("overloaded"),
            not_running: refused("not_running"),
            depth: self.depth.get_or_create(&l).clone(),
            high_water: self.high_water.get_or_create(&l).clone(),
            handling: self.handling.get_or_create(&l).clone(),
        }
    }

    pub(crate) fn restarted(&self, label: &str, reason: RestartReason) {
        self.restarts
            .get_or_create(&RestartLabel {
                child: label.to_owned(),
                reason: reason.as_str().to_owned(),
            })
            .inc();
    }
}

/// Why a child was restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RestartReason {
    Failure,
    Bounce,
    Done,
    Dependency,
}

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

/// The resolved series of one label, held by a mailbox so that no family
/// lookup happens per message.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    sent: Counter,
    handled: Counter,
    dropped: Counter,
    overloaded: Counter,
    not_running: Counter,
    depth: Gauge,
    high_water: Gauge,
    handling: Histogram,
}

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
    name: std::sync::OnceLock<Arc<str>>,
    series: std::sync::OnceLock<Series>,
    sent: AtomicU64,
    handled: AtomicU64,
    dropped: AtomicU64,
    overloaded: AtomicU64,
    not_running: AtomicU64,
    depth: AtomicUsize,
    high_water: AtomicUsize,
    handling_nanos: AtomicU64,
}

impl Meter {
    pub(crate) fn new(capacity: usize) -> Self {
        Meter {
            capacity,
            name: Default::default(),
            series: Default::default(),
            sent: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            not_running: AtomicU64::new(0),
            depth: AtomicUsize::new(0),
            high_water: AtomicUsize::new(0),
            handling_nanos: AtomicU64::new(0),
        }
    }

    /// Names the mailbox and binds it to its series; the first binding wins,
    /// since a mailbox belongs to one child for its whole life.
    pub(crate) fn bind(&self, name: &str, series: impl FnOnce() -> Series) {
        let _ = self.name.set(Arc::from(name));
        if self.series.get().is_none() {
            let _ = self.series.set(series());
        }
    }

    pub(crate) fn name(&self) -> String {
        self.name
            .get()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "an unsupervised mailbox".to_owned())
    }

    /// Reserves a place for one message, or says the mailbox is full.
    #[inline]
    pub(crate) fn admit(&self) -> bool {
        let depth = self.depth.fetch_add(1, Ordering::Relaxed);
        if depth >= self.capacity {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            self.overloaded.fetch_add(1, Ordering::Relaxed);
            if let Some(s) = self.series.get() {
                s.overloaded.inc();
            }
            return false;
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        if depth + 1 > self.high_water.load(Ordering::Relaxed) {
            self.high_water.fetch_max(depth + 1, Ordering::Relaxed);
        }
        if let Some(s) = self.series.get() {
            s.sent.inc();
            let d = s.depth.inc() + 1;
            if d > s.high_water.get() {
                s.high_water.inner().fetch_max(d, Ordering::Relaxed);
            }
        }
        true
    }

    pub(crate) fn refuse_not_running(&self) {
        self.not_running.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = self.series.get() {
            s.not_running.inc();
        }
    }

    #[inline]
    pub(crate) fn handled(&self, took: Duration) {
        self.depth.fetch_sub(1, Ordering::Relaxed);
        self.handled.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.handling_nanos.fetch_add(nanos, Ordering::Relaxed);
        if let Some(s) = self.series.get() {
            s.depth.dec();
            s.handled.inc();
            s.handling.observe(took.as_secs_f64());
        }
    }

    pub(crate) fn dropped(&self) {
        self.depth.fetch_sub(1, Ordering::Relaxed);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = self.series.get() {
            s.depth.dec();
            s.dropped.inc();
        }
    }

    pub(crate) fn stats(&self) -> MailboxStats {
        MailboxStats {
            capacity: self.capacity,
            sent: self.sent.load(Ordering::Relaxed),
            handled: self.handled.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            refused_overloaded: self.overloaded.load(Ordering::Relaxed),
            refused_not_running: self.not_running.load(Ordering::Relaxed),
            depth: self.depth.load(Ordering::Relaxed),
            high_water: self.high_water.load(Ordering::Relaxed),
            handling_nanos: self.handling_nanos.load(Ordering::Relaxed),
        }
    }
}
