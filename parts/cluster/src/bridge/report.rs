//! The bridge's own report, under the `cluster` child of `presence` in
//! `/api/report`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use muster::names::MachineTag;
use serde::Serialize;
use tokio::time::Instant;

use super::{Bridge, LinkState};
use crate::peers::PeerReport;
use crate::protocol::Incarnation;

impl Bridge {
    /// The bridge's own report: its link, its sequence, and its peers.
    pub fn report(&self) -> BridgeReport {
        let memory = self.memory.lock();
        let server = self
            .client
            .as_ref()
            .filter(|_| self.connected())
            .map(|client| client.server_info());
        BridgeReport {
            node: self.config.node.clone(),
            cluster: self.config.cluster.name.clone(),
            incarnation: memory.incarnation,
            link: self.link.name(),
            link_error: match &self.link {
                LinkState::Failed(reason) => Some(reason.clone()),
                _ => None,
            },
            since: memory.link_since.and_then(rfc3339),
            nats: server
                .as_ref()
                .map(|info| format!("{}:{}", info.host, info.port)),
            max_payload: server.as_ref().map(|info| info.max_payload),
            seq: memory.seq,
            counts: serde_json::to_value(&memory.counts).unwrap_or_default(),
            peers: memory
                .peers
                .report(Instant::now())
                .into_iter()
                .map(|peer| PeerShown {
                    last_heartbeat: peer.last_heartbeat.and_then(rfc3339),
                    peer,
                })
                .collect(),
        }
    }
}

/// RFC 3339 with milliseconds; none for a time the format cannot hold.
fn rfc3339(at: SystemTime) -> Option<String> {
    const YEAR_10000: Duration = Duration::from_secs(253_402_300_800);
    match at.duration_since(UNIX_EPOCH) {
        Ok(since) if since < YEAR_10000 => Some(humantime::format_rfc3339_millis(at).to_string()),
        _ => None,
    }
}

/// The bridge's report, under the `cluster` child of `presence` in
/// `/api/report`.
#[derive(Debug, Clone, Serialize)]
pub struct BridgeReport {
    /// This node.
    pub node: MachineTag,
    /// The cluster's name.
    pub cluster: String,
    /// This run of the node.
    pub incarnation: Incarnation,
    /// `waiting for presence`, `connecting`, `connected`, `disconnected` or
    /// `failed`.
    pub link: &'static str,
    /// Why the link could not be set up, when it failed.
    pub link_error: Option<String>,
    /// When the link last came up or went down.
    pub since: Option<String>,
    /// The NATS server connected to, as it announced itself.
    pub nats: Option<String>,
    /// The largest message that server takes.
    pub max_payload: Option<usize>,
    /// The number of this node's last change.
    pub seq: u64,
    /// What was counted: changes published and not, heartbeats, refused
    /// messages, snapshots asked and served.
    pub counts: serde_json::Value,
    /// Every peer heard of.
    pub peers: Vec<PeerShown>,
}

/// One peer in the report.
#[derive(Debug, Clone, Serialize)]
pub struct PeerShown {
    /// What the node knows of it.
    #[serde(flatten)]
    pub peer: PeerReport,
    /// When its last heartbeat came, RFC 3339.
    pub last_heartbeat: Option<String>,
}
