//! What a host adds to muster's own tree: children of its own in the
//! presence subtree, made from that subtree's handle, supervised and
//! restarted with it (docs/spec.md §11.1).

use std::fmt;

use super::ModelHolds;
use crate::presence::{PresenceChild, PresenceHandle};
use crate::supervisor::{Arbiters, ChildSpec};

/// Children a host mounts in muster's tree, beside muster's own; give them
/// to [`Muster::start_with`](super::Muster::start_with) or
/// [`Muster::child_with`](super::Muster::child_with).
///
/// A host that carries presence between API servers mounts its bridge to
/// the other servers here: the bridge then lives and restarts with the
/// presence it feeds, its report and mailbox show in muster's report and
/// metrics, and the handle it gets reaches the router directly, without
/// waiting on the gate the host's own handle passes (§8.3), which a child
/// of muster could otherwise wait on for its own restart.
#[derive(Default)]
pub struct Extensions {
    pub(crate) presence: Vec<PresenceChild>,
    pub(crate) holds: Option<ModelHolds>,
    pub(crate) arbiters: Arbiters,
}

impl Extensions {
    /// No extra child: muster's tree as [`Muster::start`](super::Muster::start)
    /// builds it.
    pub fn new() -> Self {
        Extensions::default()
    }

    /// Adds a child to the presence subtree, made by `make` from the
    /// subtree's presence handle when the tree is built. The children start
    /// after the router, in the order added, and stop before it. A name the
    /// subtree's own children take (`router`, or a machine tag, which names
    /// a server's actor) is refused when the tree is built, as a duplicate.
    pub fn presence_child(
        mut self,
        make: impl FnOnce(&PresenceHandle) -> ChildSpec + Send + 'static,
    ) -> Self {
        self.presence.push(Box::new(make));
        self
    }

    /// Spreads muster's work over `arbiters` (threads): each API server's
    /// presence actor, each model's machines subtree (or, in a tree of one
    /// model, each poller) and each cloud account's gateway runs on one of
    /// them, in turn. Without it, muster runs on its supervisor's arbiter
    /// alone.
    pub fn spread_over(mut self, arbiters: Arbiters) -> Self {
        self.arbiters = arbiters;
        self
    }

    /// Polls a model of a [`Fleet`](super::Fleet) only while `holds` holds
    /// it (docs/spec.md §11.7): the tree starts with no model polled, and
    /// the host holds and releases each at run time, as a node of a
    /// cluster does with the models it holds a lease on. A tree of one
    /// model, which has no UUID to hold it by, always polls it.
    pub fn hold_models(mut self, holds: ModelHolds) -> Self {
        self.holds = Some(holds);
        self
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("presence_children", &self.presence.len())
            .field("holds", &self.holds)
            .field("arbiters", &self.arbiters.len())
            .finish()
    }
}
