//! The applier's queue: the bridge's actions on presence waiting to be
//! carried out, in order, bounded. A snapshot of a peer supersedes every
//! action of that peer queued before it (it replaces all that presence
//! holds of the peer), so a peer that is taken again and again holds one
//! snapshot here, not one per time, and a peer's down supersedes its
//! earlier downs. Past the bound, the peer whose change or snapshot
//! overflowed it has its queued actions dropped and is taken anew; a down,
//! one per peer at most, always fits.

use std::collections::VecDeque;
use std::sync::Mutex;

use muster::names::MachineTag;
use muster::sync::lock;
use tokio::sync::Notify;

use crate::peers::Action;

/// The most actions waiting for the applier.
pub(super) const APPLIER_QUEUE: usize = 10_000;

/// See the module's documentation.
pub(super) struct ApplierQueue {
    queued: Mutex<VecDeque<Action>>,
    bound: usize,
    ready: Notify,
}

fn peer_of(action: &Action) -> &MachineTag {
    match action {
        Action::Apply { peer, .. }
        | Action::Replace { peer, .. }
        | Action::Down { peer }
        | Action::Ask { peer, .. } => peer,
    }
}

impl ApplierQueue {
    /// An empty queue of at most `bound` actions.
    pub(super) fn new(bound: usize) -> Self {
        ApplierQueue {
            queued: Mutex::new(VecDeque::new()),
            bound,
            ready: Notify::new(),
        }
    }

    /// Queues `action`. Answers the peer to take anew when it did not fit:
    /// its actions, this one with them, are dropped.
    pub(super) fn push(&self, action: Action) -> Option<MachineTag> {
        let mut queued = lock(&self.queued);
        match &action {
            Action::Replace { peer, .. } => queued.retain(|earlier| peer_of(earlier) != peer),
            Action::Down { peer } => {
                queued.retain(|earlier| !matches!(earlier, Action::Down { peer: p } if p == peer))
            }
            _ => {}
        }
        if queued.len() >= self.bound && !matches!(action, Action::Down { .. }) {
            let peer = peer_of(&action).clone();
            queued.retain(|earlier| peer_of(earlier) != &peer);
            return Some(peer);
        }
        queued.push_back(action);
        drop(queued);
        self.ready.notify_one();
        None
    }

    /// The next action, once there is one.
    pub(super) async fn pop(&self) -> Action {
        loop {
            if let Some(action) = lock(&self.queued).pop_front() {
                return action;
            }
            self.ready.notified().await;
        }
    }

    /// How many actions wait.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.queued).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: u32) -> MachineTag {
        format!("machine-{n}").parse().unwrap()
    }

    fn replace(n: u32, seq: u64) -> Action {
        Action::Replace {
            peer: tag(n),
            seq,
            connections: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_newer_snapshot_supersedes_what_its_peer_had_queued_and_the_bound_holds() {
        let queue = ApplierQueue::new(3);
        queue.push(Action::Down { peer: tag(1) });
        queue.push(replace(1, 5));
        queue.push(Action::Down { peer: tag(2) });
        queue.push(replace(1, 9));
        // One snapshot of machine-1, the newest, after machine-2's down.
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.pop().await, Action::Down { peer: tag(2) });
        assert_eq!(queue.pop().await, replace(1, 9));
        // Past the bound, the peer whose change overflowed it is dropped and
        // named, the others kept in order; a down always fits.
        let apply = |n| Action::Apply {
            peer: tag(n),
            events: Vec::new(),
        };
        for n in [1, 2, 1] {
            assert_eq!(queue.push(apply(n)), None);
        }
        assert_eq!(queue.push(apply(1)), Some(tag(1)));
        assert_eq!(queue.len(), 1);
        for n in [3, 4, 5] {
            assert_eq!(queue.push(Action::Down { peer: tag(n) }), None);
        }
        assert_eq!(queue.len(), 4);
        assert_eq!(queue.pop().await, apply(2));
    }
}
