//! The lease manager's report, under the `leases` child of `presence` in
//! `/api/report`.

use muster::names::{MachineTag, ModelUuid};
use serde::Serialize;

use super::LeaseManager;
use crate::rendezvous;

/// The lease manager's report.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseReport {
    /// This node.
    pub node: MachineTag,
    /// The key-value bucket of the leases.
    pub bucket: String,
    /// `connecting`, `connected`, `disconnected` or `failed`.
    pub link: &'static str,
    /// Why the link or the bucket is not there, when it is not.
    pub error: Option<String>,
    /// How long a lease lasts unless renewed, e.g. `15s`: the bucket's, once
    /// it is open.
    pub lease_ttl: String,
    /// The nodes the models are spread over: this one and every peer not
    /// down.
    pub live: Vec<MachineTag>,
    /// The models this node holds, and so polls.
    pub held: Vec<HeldShown>,
    /// Every model's lease as this node last knew it.
    pub leases: Vec<LeaseShown>,
    /// Leases acquired, renewed, released and lost, and writes that failed.
    pub counts: serde_json::Value,
}

/// A lease this node holds.
#[derive(Debug, Clone, Serialize)]
pub struct HeldShown {
    /// The model.
    pub model: ModelUuid,
    /// The revision of its last write.
    pub revision: u64,
    /// Since when this node holds it, RFC 3339.
    pub since: String,
}

/// One model's lease.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseShown {
    /// The model.
    pub model: ModelUuid,
    /// The node that holds it; none when vacant or not read yet.
    pub holder: Option<MachineTag>,
    /// The revision of its last write.
    pub revision: Option<u64>,
    /// The live node that should hold it.
    pub owner: Option<MachineTag>,
}

impl LeaseManager {
    /// The manager's own report.
    pub fn report(&self) -> LeaseReport {
        let live = self.config.live.nodes();
        let leases = self
            .config
            .models
            .iter()
            .map(|model| {
                let (holder, revision) = match self.held.get(model) {
                    Some(held) => (Some(self.config.node.clone()), Some(held.revision)),
                    None => match self.seen.get(model) {
                        Some(Some(seen)) => (Some(seen.holder.clone()), Some(seen.revision)),
                        _ => (None, None),
                    },
                };
                LeaseShown {
                    model: *model,
                    holder,
                    revision,
                    owner: rendezvous::owner(model, &live).cloned(),
                }
            })
            .collect();
        LeaseReport {
            node: self.config.node.clone(),
            bucket: super::bucket_name(&self.config.cluster.name),
            link: self.link,
            error: self.error.clone(),
            lease_ttl: humantime::format_duration(self.ttl()).to_string(),
            live: live.into_iter().collect(),
            held: self
                .held
                .iter()
                .map(|(model, held)| HeldShown {
                    model: *model,
                    revision: held.revision,
                    since: humantime::format_rfc3339_millis(held.since).to_string(),
                })
                .collect(),
            leases,
            counts: serde_json::to_value(&self.counts).unwrap_or_default(),
        }
    }
}
