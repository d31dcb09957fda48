//! What a node says to its cluster as it stops gracefully (docs/spec.md
//! §11.6.6, §11.8.6): it gives its model leases back, then tells its peers
//! it leaves, so that its models move and its agents count as gone at
//! once rather than after `lease_ttl` and `down_after`. A node that dies
//! says nothing, and the others find out by those timeouts.

use std::time::Duration;

use muster_actors::Mailbox;

use super::bridge::{Bridge, Leave};
use super::leases::{HandBack, LeaseManager};

/// The longest a farewell waits on NATS for each of its two words.
const MOST: Duration = Duration::from_secs(5);

/// The mailboxes of the bridge and the lease manager, kept by the host to
/// say farewell with.
#[derive(Clone)]
pub struct Farewell {
    bridge: Mailbox<Bridge>,
    leases: Option<Mailbox<LeaseManager>>,
    wait: Duration,
}

impl Farewell {
    /// A farewell through `bridge` and, when the node holds model leases,
    /// `leases`; each word waits at most a third of `lease_ttl`, and never
    /// more than five seconds.
    pub fn new(
        bridge: Mailbox<Bridge>,
        leases: Option<Mailbox<LeaseManager>>,
        lease_ttl: Duration,
    ) -> Self {
        Farewell {
            bridge,
            leases,
            wait: (lease_ttl / 3).min(MOST),
        }
    }

    /// Gives the leases back (this node's pollers stop first), then tells
    /// the peers this node leaves. A bridge or lease manager that is not
    /// running says nothing; the others then find out as after a crash.
    pub async fn say(&self) {
        let wait = self.wait;
        if let Some(leases) = &self.leases {
            let _ = leases.send(HandBack { wait }).await;
        }
        let _ = self.bridge.send(Leave { wait }).await;
    }
}
