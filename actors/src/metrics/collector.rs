//! The series as Prometheus reads them: at scrape time, each group's live
//! mailboxes are summed with its gone ones' totals.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::{BUCKETS_NS, Group, Groups, REASONS, Snapshot};

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

impl Collector for Groups {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let groups: Vec<(String, Arc<Group>)> = muster::sync::lock(&self.0)
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
        for (label, _, snap) in &snaps {
            let buckets: Vec<(f64, u64)> = BUCKETS_NS
                .iter()
                .map(|ns| *ns as f64 / 1e9)
                // The top bucket is `+Inf`, as Prometheus' quantiles and
                // the OpenMetrics parser want.
                .chain(std::iter::once(f64::INFINITY))
                .zip(snap.buckets)
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
