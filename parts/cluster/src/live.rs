//! The nodes a node hears: itself and every peer not down, as its bridge
//! last saw them (docs/spec.md §11.8). The bridge writes it; the lease
//! manager spreads the models over it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use muster::names::MachineTag;
use tokio::sync::watch;

/// The live nodes; cheap to clone, clones share one set.
#[derive(Clone)]
pub struct LiveNodes {
    me: MachineTag,
    peers: Arc<watch::Sender<BTreeSet<MachineTag>>>,
}

impl LiveNodes {
    /// Only `me`, until the bridge hears a peer.
    pub fn new(me: MachineTag) -> Self {
        LiveNodes {
            me,
            peers: Arc::new(watch::Sender::new(BTreeSet::new())),
        }
    }

    /// The peers not down are `peers` now.
    pub fn set_peers(&self, peers: BTreeSet<MachineTag>) {
        self.peers.send_if_modified(|held| {
            let changed = *held != peers;
            *held = peers;
            changed
        });
    }

    /// This node and every peer not down.
    pub fn nodes(&self) -> BTreeSet<MachineTag> {
        let mut nodes = self.peers.borrow().clone();
        nodes.insert(self.me.clone());
        nodes
    }
}

impl fmt::Debug for LiveNodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.nodes()).finish()
    }
}
