//! The bridge's series, registered by the host on its own registry once,
//! whatever the bridge's restarts:
//!
//! - `muster_cluster_connected`: 1 while the node's NATS connection is up;
//! - `muster_cluster_peers{state}`: peers `up`, `syncing` or `down`;
//! - `muster_cluster_messages_total{direction,kind}` and
//!   `muster_cluster_bytes_total{direction,kind}`: NATS messages and
//!   payload bytes `out` and `in`, by kind (`events`, `heartbeat`,
//!   `snapshot_request`, `snapshot_part`);
//! - `muster_cluster_snapshots_total{outcome}`: snapshots `asked` of peers,
//!   `applied` from them, `served` to them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The kind of a NATS message of the protocol.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Kind {
    /// A node's changes.
    Events,
    /// A node's heartbeat.
    Heartbeat,
    /// A node's word that it stops.
    Leaving,
    /// A request for a snapshot.
    SnapshotRequest,
    /// A part of a snapshot.
    SnapshotPart,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Events => "events",
            Kind::Heartbeat => "heartbeat",
            Kind::Leaving => "leaving",
            Kind::SnapshotRequest => "snapshot_request",
            Kind::SnapshotPart => "snapshot_part",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrafficLabel {
    direction: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The bridge's counters and gauges; cheap to clone. The default is
/// unregistered.
#[derive(Clone, Debug, Default)]
pub struct ClusterMetrics {
    connected: Gauge,
    peers: Family<StateLabel, Gauge>,
    messages: Family<TrafficLabel, Counter>,
    bytes: Family<TrafficLabel, Counter>,
    snapshots: Family<OutcomeLabel, Counter>,
}

impl ClusterMetrics {
    /// Registers the bridge's series on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ClusterMetrics::default();
        let cluster = registry.sub_registry_with_prefix("muster_cluster");
        cluster.register(
            "connected",
            "1 while this node's NATS connection is up",
            metrics.connected.clone(),
        );
        cluster.register(
            "peers",
            "Other API servers heard of, by state: up, syncing, down",
            metrics.peers.clone(),
        );
        cluster.register(
            "messages",
            "NATS messages of the presence protocol, by direction and kind",
            metrics.messages.clone(),
        );
        cluster.register(
            "bytes",
            "Payload bytes of the presence protocol, by direction and kind",
            metrics.bytes.clone(),
        );
        cluster.register(
            "snapshots",
            "Snapshots asked of peers, applied from them, and served to them",
            metrics.snapshots.clone(),
        );
        metrics
    }

    /// A message of `kind` and `bytes` sent.
    pub fn sent(&self, kind: Kind, bytes: usize) {
        self.traffic("out", kind, bytes);
    }

    /// A message of `kind` and `bytes` received.
    pub fn received(&self, kind: Kind, bytes: usize) {
        self.traffic("in", kind, bytes);
    }

    fn traffic(&self, direction: &'static str, kind: Kind, bytes: usize) {
        let label = TrafficLabel {
            direction,
            kind: kind.label(),
        };
        self.messages.get_or_create(&label).inc();
        self.bytes.get_or_create(&label).inc_by(bytes as u64);
    }

    /// A snapshot asked, applied or served.
    pub fn snapshot(&self, outcome: &'static str) {
        self.snapshots
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// The link's state and the peers by state.
    pub fn set(&self, connected: bool, (up, syncing, down): (usize, usize, usize)) {
        self.connected.set(i64::from(connected));
        for (state, n) in [("up", up), ("syncing", syncing), ("down", down)] {
            self.peers
                .get_or_create(&StateLabel { state })
                .set(n as i64);
        }
    }
}
