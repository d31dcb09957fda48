//! The door's series, registered by the host on its own registry:
//!
//! - `muster_agents_sockets`: open sockets, those still logging in
//!   included (what `max_connections` bounds);
//! - `muster_agents_connections`: logged-in connections;
//! - `muster_agents_logins_total{result}`: `ok`, or the close code of a
//!   refused login (`4400`, `4401`, `4408`, `4429`, `4503`, `1009`,
//!   `1013`, ...), `http_503` past `max_connections`, or `tls` for a TLS
//!   handshake that failed or did not finish within `login_timeout`;
//! - `muster_agents_disconnects_total{reason}`: `closed` by the agent,
//!   `dropped`, `idle`, `too_big`, `protocol`, `disabled`, `shutdown`,
//!   `revoked` (its password changed);
//! - `muster_agents_disconnects_queued`: disconnects presence has not
//!   taken yet (muster restarting, its router's mailbox full), each sent
//!   again until it is.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// The door's counters and gauges; cheap to clone. The default is
/// unregistered, for hosts that do not scrape the door.
#[derive(Clone, Debug, Default)]
pub struct DoorMetrics {
    sockets: Gauge,
    connections: Gauge,
    logins: Family<ResultLabel, Counter>,
    disconnects: Family<ReasonLabel, Counter>,
    disconnects_queued: Gauge,
}

impl DoorMetrics {
    /// Registers the door's series on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = DoorMetrics::default();
        let agents = registry.sub_registry_with_prefix("muster_agents");
        agents.register(
            "sockets",
            "Open sockets of the agents' door, those still logging in included",
            metrics.sockets.clone(),
        );
        agents.register(
            "connections",
            "Agent connections logged in at the door",
            metrics.connections.clone(),
        );
        agents.register(
            "logins",
            "Logins at the agents' door, by result: ok, a close code, http_503 or tls",
            metrics.logins.clone(),
        );
        agents.register(
            "disconnects",
            "Logged-in agent connections ended, by reason",
            metrics.disconnects.clone(),
        );
        agents.register(
            "disconnects_queued",
            "Disconnects presence has not taken yet, queued and sent again until it does",
            metrics.disconnects_queued.clone(),
        );
        metrics
    }

    pub(super) fn socket_opened(&self) {
        self.sockets.inc();
    }

    pub(super) fn socket_closed(&self) {
        self.sockets.dec();
    }

    pub(super) fn login(&self, result: &str) {
        self.logins
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
    }

    pub(super) fn connected(&self) {
        self.connections.inc();
        self.login("ok");
    }

    pub(super) fn disconnected(&self, reason: &'static str) {
        self.connections.dec();
        self.disconnects
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub(super) fn disconnects_queued(&self, queued: usize) {
        self.disconnects_queued
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
    }
}
