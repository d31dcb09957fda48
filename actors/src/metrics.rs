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

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

/// Labels of the mailbox series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChildLabel {
    child: String,
}

/// Labels of the restart counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestartLabel {
    child: String,
    reason: String,
}

/// Labels of the refused-message counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabel {
    child: String,
    reason: String,
}

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
}

/// The series of one label: its live mailboxes, the totals of its gone
/// ones, the handling-time buckets and the restarts.
#[derive(Debug)]
pub(crate) struct Group {
    members: Mutex<Members>,
    retired: Counts,
    buckets: [AtomicU64; BUCKETS_NS.len() + 1],
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
        let mut m = self.members.lock().unwrap_or_else(|p| p.into_inner());
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
        let m = self.members.lock().unwrap_or_else(|p| p.into_inner());
        for meter in m.meters.iter().filter_map(Weak::upgrade) {
            meter.counts.add_to(&mut s);
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
        let mut groups = self.groups.0.lock().unwrap_or_else(|p| p.into_inner());
        groups
            .entry(label.to_owned())
            .or_insert_with(|| Arc::new(Group::new()))
            .clone()
    }

    pub(crate) fn restarted(&self, label: &str, reason: RestartReason) {
        let i = REASONS.iter().position(|r| *r == reason).unwrap_or(0);
        self.group(label).restarts[i].fetch_add(1, Ordering::Relaxed);
    }
}

impl Collector for Groups {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let groups: Vec<(String, Arc<Group>)> = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let snaps: Vec<(ChildLabel, &Group, Snapshot)> = groups
            .iter()
            .map(|(label, g)| {
                (
                    ChildLabel {
                        child: label.clone(),
                    },
                    &**g,
                    g.snapshot(),
                )
            })
            .collect();

        type Pick = fn(&Snapshot) -> u64;
        let counters: [(&str, &str, Pick); 3] = [
            (
                "muster_mailbox_sent",
                "Messages accepted into supervised mailboxes",
                |s| s.sent,
            ),
            (
                "muster_mailbox_handled",
                "Messages handled by supervised actors",
                |s| s.handled,
            ),
            (
                "muster_mailbox_dropped",
                "Accepted messages dropped unhandled because the actor stopped",
                |s| s.dropped,
            ),
        ];
        for (name, help, pick) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (label, _, snap) in &snaps {
                ConstCounter::new(pick(snap)).encode(family.encode_family(label)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "muster_mailbox_refused",
            "Messages refused by supervised mailboxes, by reason",
            None,
            MetricType::Counter,
        )?;
        for (label, _, snap) in &snaps {
            for (reason, v) in [
                ("overloaded", snap.overloaded),
                ("not_running", snap.not_running),
            ] {
                let l = RefusedLabel {
                    child: label.child.clone(),
                    reason: reason.to_owned(),
                };
                ConstCounter::new(v).encode(family.encode_family(&l)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "muster_mailbox_depth",
            "Messages waiting in supervised mailboxes",
            None,
            MetricType::Gauge,
        )?;
        for (label, _, snap) in &snaps {
            let depth = i64::try_from(snap.depth).unwrap_or(i64::MAX);
            ConstGauge::new(depth).encode(family.encode_family(label)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "muster_mailbox_depth_high_water",
            "Highest depth of one supervised mailbox",
            None,
            MetricType::Gauge,
        )?;
        for (label, group, _) in &snaps {
            let hw = i64::try_from(group.high_water.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
            ConstGauge::new(hw).encode(family.encode_family(label)?)?;
        }

        let mut family = encoder.encode_descriptor(
            "muster_mailbox_handling_seconds",
            "Time spent in the handlers of supervised actors",
            None,
            MetricType::Histogram,
        )?;
        for (label, group, snap) in &snaps {
            let buckets: Vec<(f64, u64)> = BUCKETS_NS
                .iter()
                .map(|ns| *ns as f64 / 1e9)
                // The top bucket is `+Inf`, as Prometheus' quantiles and
                // the OpenMetrics parser want.
                .chain(std::iter::once(f64::INFINITY))
                .zip(group.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
                .collect();
            family
                .encode_family(label)?
                .encode_histogram::<NoLabelSet>(
                    snap.handling_nanos as f64 / 1e9,
                    buckets.iter().map(|b| b.1).sum(),
                    &buckets,
                    None,
                )?;
        }

        let mut family = encoder.encode_descriptor(
            "muster_child_restarts",
            "Restarts of supervised children, by reason",
            None,
            MetricType::Counter,
        )?;
        for (label, group, _) in &snaps {
            for (i, reason) in REASONS.iter().enumerate() {
                let v = group.restarts[i].load(Ordering::Relaxed);
                if v == 0 {
                    continue;
                }
                let l = RestartLabel {
                    child: label.child.clone(),
                    reason: reason.as_str().to_owned(),
                };
                ConstCounter::new(v).encode(family.encode_family(&l)?)?;
            }
        }
        Ok(())
    }
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
    name: OnceLock<Arc<str>>,
    group: OnceLock<Arc<Group>>,
    counts: Counts,
    high_water: AtomicUsize,
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
    /// The depth is derived (accepted − handled − dropped) rather than kept
    /// in a counter of its own, which saves two atomic writes per message.
    /// With one sender the capacity is exact; senders on several threads at
    /// once may each see the last free place, so it can be exceeded by at
    /// most their number.
    #[inline]
    pub(crate) fn admit(&self) -> bool {
        let depth = self.depth();
        if depth >= self.capacity {
            self.counts.overloaded.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.counts.sent.fetch_add(1, Ordering::Relaxed);
        if depth + 1 > self.high_water.load(Ordering::Relaxed) {
            self.high_water.fetch_max(depth + 1, Ordering::Relaxed);
            if let Some(g) = self.group.get() {
                g.high_water.fetch_max(depth + 1, Ordering::Relaxed);
            }
        }
        true
    }

    #[inline]
    fn depth(&self) -> usize {
        // Read the finishing counts first, so that a message finishing
        // between the reads cannot make the depth look negative.
        let done = self.counts.handled.load(Ordering::Relaxed)
            + self.counts.dropped.load(Ordering::Relaxed);
        let sent = self.counts.sent.load(Ordering::Relaxed);
        usize::try_from(sent.saturating_sub(done)).unwrap_or(usize::MAX)
    }

    pub(crate) fn refuse_not_running(&self) {
        self.counts.not_running.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn handled(&self, nanos: u64) {
        self.counts.handled.fetch_add(1, Ordering::Relaxed);
        self.counts
            .handling_nanos
            .fetch_add(nanos, Ordering::Relaxed);
        if let Some(g) = self.group.get() {
            let i = BUCKETS_NS
                .iter()
                .position(|b| nanos <= *b)
                .unwrap_or(BUCKETS_NS.len());
            g.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handling_time_histogram_ends_with_an_inf_bucket() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let meter = Arc::new(Meter::new(4));
        Meter::bind(&meter, "g/m", &metrics, "g/m");
        assert!(meter.admit());
        // Slower than the last finite bound: counted in `+Inf` alone.
        meter.handled(2_000_000_000);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let buckets: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("muster_mailbox_handling_seconds_bucket"))
            .collect();
        assert_eq!(buckets.len(), BUCKETS_NS.len() + 1, "{text}");
        assert_eq!(
            buckets.last().copied(),
            Some("muster_mailbox_handling_seconds_bucket{le=\"+Inf\",child=\"g/m\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "muster_mailbox_handling_seconds_bucket{le=\"1.048576\",child=\"g/m\"} 0"
            ),
            "{text}"
        );
        assert!(
            text.contains("muster_mailbox_handling_seconds_count{child=\"g/m\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn gone_members_stay_in_their_group_totals() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        for i in 0..3 {
            let meter = Arc::new(Meter::new(4));
            Meter::bind(&meter, &format!("g/m{i}"), &metrics, "g/*");
            assert!(meter.admit());
            meter.handled(3_000);
            if i == 2 {
                assert!(meter.admit());
                let mut text = String::new();
                prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
                assert!(
                    text.contains("muster_mailbox_sent_total{child=\"g/*\"} 4"),
                    "{text}"
                );
                assert!(
                    text.contains("muster_mailbox_depth{child=\"g/*\"} 1"),
                    "{text}"
                );
                assert!(
                    text.contains(
                        "muster_mailbox_handling_seconds_bucket{le=\"0.000004\",child=\"g/*\"} 3"
                    ),
                    "{text}"
                );
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("muster_mailbox_sent_total{child=\"g/*\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("muster_mailbox_handled_total{child=\"g/*\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("muster_mailbox_depth{child=\"g/*\"} 0"),
            "{text}"
        );
    }
}
