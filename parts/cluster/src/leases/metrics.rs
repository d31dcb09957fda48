//! The lease manager's series, registered by the host once, whatever the
//! manager's restarts:
//!
//! - `muster_leases_held`: the model leases this node holds;
//! - `muster_leases_changes_total{change}`: leases `acquired`, `renewed`,
//!   `released` to their owner, and `lost` (a renewal refused or too late,
//!   or NATS lost).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabel {
    change: &'static str,
}

/// The lease manager's series; cheap to clone. The default is
/// unregistered.
#[derive(Clone, Debug, Default)]
pub struct LeaseMetrics {
    held: Gauge,
    changes: Family<ChangeLabel, Counter>,
}

impl LeaseMetrics {
    /// Registers the series on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = LeaseMetrics::default();
        let leases = registry.sub_registry_with_prefix("muster_leases");
        leases.register(
            "held",
            "Model leases this node holds: the models it polls",
            metrics.held.clone(),
        );
        leases.register(
            "changes",
            "Model leases acquired, renewed, released to their owner, and lost",
            metrics.changes.clone(),
        );
        metrics
    }

    /// `n` leases `change`d (`acquired`, `renewed`, `released`, `lost`).
    pub(super) fn changed(&self, change: &'static str, n: u64) {
        if n > 0 {
            self.changes
                .get_or_create(&ChangeLabel { change })
                .inc_by(n);
        }
    }

    /// The leases held now.
    pub(super) fn set_held(&self, held: usize) {
        self.held.set(held as i64);
    }
}
