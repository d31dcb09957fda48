//! The gauges of what the tree holds, refreshed from its handle just
//! before each scrape.

use muster::presence::Status;
use muster_actors::host::Muster;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

/// Gauges of what the tree holds, refreshed from its handle just before
/// each scrape: counting thousands of connections on every change would
/// cost more than counting them when asked.
#[derive(Clone, Debug, Default)]
pub struct StateGauges {
    connections: Family<StatusLabel, Gauge>,
    machines: Family<PhaseLabel, Gauge>,
}

impl StateGauges {
    /// Registers `muster_presence_connections{status}` and
    /// `muster_machines{phase}` (phase `short`, `long`, or `manual` for a
    /// machine that is never polled).
    pub fn register(registry: &mut Registry) -> Self {
        let gauges = StateGauges::default();
        registry.register(
            "muster_presence_connections",
            "Agent connections recorded by presence, by status",
            gauges.connections.clone(),
        );
        registry.register(
            "muster_machines",
            "Machines tracked by the instance poller, by poll phase",
            gauges.machines.clone(),
        );
        gauges
    }

    /// Reads the counts from the tree.
    pub async fn refresh(&self, muster: &Muster) {
        // From a view rather than the presence report: a view answers
        // after every event sent before it, the report may not.
        if let Ok(connections) = muster.presence().connections().await {
            let counts = connections.count_by_status();
            for status in [Status::Alive, Status::Missing] {
                self.connections
                    .get_or_create(&StatusLabel {
                        status: status.to_string(),
                    })
                    .set(counts.get(status) as i64);
            }
        }
        // Counted in place: building every machine's state would cost as
        // much as /api/machines on every scrape.
        let counts = muster.machines().count_by_phase();
        for (phase, n) in [
            ("short", counts.short),
            ("long", counts.long),
            ("manual", counts.manual),
        ] {
            self.machines
                .get_or_create(&PhaseLabel {
                    phase: phase.to_owned(),
                })
                .set(n as i64);
        }
    }
}
