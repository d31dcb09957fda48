//! Following one server's connections from outside the tree: the changes
//! the router applies to a server's table, numbered, and a copy of the
//! table that says which of them it holds.
//!
//! A host that shares presence between API servers follows its own
//! server: it sends each change on to its peers and answers their requests
//! for a copy, which carries the number of the last change it holds, so a
//! peer knows which later changes to apply on top of it
//! (docs/spec.md §11.2).
//!
//! The numbers are the router's: one per change it accepted for the
//! server, in the order it applies them, starting from 0 when the server is
//! first followed and kept across restarts of the router. Activity is not
//! a change here (it only moves a last-seen time, and stays local). A
//! follower that falls behind by [`TAP_CAPACITY`] changes misses the
//! changes that do not fit; it sees the numbers it missed go by in
//! [`Tap::latest`], and takes a copy again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::Value;
use tokio::sync::mpsc;

/// The most changes a follower may have waiting; past it, changes are
/// skipped for that follower (and counted in [`Tap::latest`]).
pub const TAP_CAPACITY: usize = 65_536;

/// One change to a followed server's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its number: one more than the change before it.
    pub seq: u64,
    /// What changed.
    pub kind: ChangeKind,
}

/// What changed in a followed server's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// A connection was recorded, or one already recorded was seen again
    /// (docs/spec.md §1.3.1).
    Connect {
        /// The connection id.
        id: u64,
        /// The model the agent belongs to.
        model: ModelUuid,
        /// The agent.
        agent: AgentTag,
        /// Whether it is a controller agent's connection.
        controller_agent: bool,
        /// What the agent gave at login.
        user_data: String,
    },
    /// A connection ended.
    Disconnect {
        /// The connection id.
        id: u64,
    },
    /// The table changed wholesale: the server was marked down, a snapshot
    /// of it was applied, or recording was disabled. A follower takes a
    /// copy of the table anew.
    Reset,
}

/// A followed server's changes, from the moment it was followed.
#[derive(Debug)]
pub struct Tap {
    receiver: mpsc::Receiver<Change>,
    latest: Arc<AtomicU64>,
    start: u64,
}

impl Tap {
    /// The number of the last change made before this tap was made: the
    /// first change it hears is numbered one more.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The next change; `None` once presence is gone for good.
    pub async fn recv(&mut self) -> Option<Change> {
        self.receiver.recv().await
    }

    /// The next change if one is waiting.
    pub fn try_recv(&mut self) -> Option<Change> {
        self.receiver.try_recv().ok()
    }

    /// The number of the latest change to the server, whether this tap
    /// holds it or not. Read it, then take every change waiting: a number
    /// up to it that did not come was skipped because the tap was full.
    pub fn latest(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }
}

/// One server's connections, as the router held them after the change
/// numbered `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSnapshot {
    /// The number of the last change the values hold.
    pub seq: u64,
    /// The connections, sorted by id.
    pub values: Vec<Value>,
}

/// The followed servers, kept by the router across its restarts.
#[derive(Debug, Default)]
pub(super) struct Taps {
    followed: BTreeMap<MachineTag, Followed>,
}

#[derive(Debug)]
struct Followed {
    seq: u64,
    latest: Arc<AtomicU64>,
    followers: Vec<mpsc::Sender<Change>>,
}

impl Taps {
    /// A new tap on `server`.
    pub(super) fn tap(&mut self, server: &MachineTag) -> Tap {
        let followed = self
            .followed
            .entry(server.clone())
            .or_insert_with(|| Followed {
                seq: 0,
                latest: Arc::new(AtomicU64::new(0)),
                followers: Vec::new(),
            });
        let (sender, receiver) = mpsc::channel(TAP_CAPACITY);
        followed.followers.push(sender);
        Tap {
            receiver,
            latest: followed.latest.clone(),
            start: followed.seq,
        }
    }

    /// Whether no server is followed.
    pub(super) fn is_empty(&self) -> bool {
        self.followed.is_empty()
    }

    /// Whether `server` is followed, so that its changes are worth
    /// describing.
    pub(super) fn follows(&self, server: &MachineTag) -> bool {
        self.followed.contains_key(server)
    }

    /// The number of the last change to `server`; 0 when not followed.
    pub(super) fn seq(&self, server: &MachineTag) -> u64 {
        self.followed.get(server).map_or(0, |f| f.seq)
    }

    /// Numbers a change the router applied to `server` and hands it to
    /// each follower that has room; a follower that is gone is forgotten.
    pub(super) fn changed(&mut self, server: &MachineTag, kind: ChangeKind) {
        let Some(followed) = self.followed.get_mut(server) else {
            return;
        };
        followed.seq += 1;
        let change = Change {
            seq: followed.seq,
            kind,
        };
        followed.followers.retain(|follower| {
            !matches!(
                follower.try_send(change.clone()),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
        // After the sends: a follower that reads this number finds every
        // change up to it waiting, or skipped.
        followed.latest.store(followed.seq, Ordering::Release);
    }

    /// A wholesale change to every followed server (recording disabled).
    pub(super) fn reset_all(&mut self) {
        let servers: Vec<MachineTag> = self.followed.keys().cloned().collect();
        for server in servers {
            self.changed(&server, ChangeKind::Reset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> MachineTag {
        "machine-0".parse().unwrap()
    }

    #[test]
    fn changes_are_numbered_from_where_the_tap_started() {
        let mut taps = Taps::default();
        assert!(!taps.follows(&server()));
        let mut first = taps.tap(&server());
        assert_eq!(first.start(), 0);
        taps.changed(&server(), ChangeKind::Disconnect { id: 1 });
        let mut second = taps.tap(&server());
        assert_eq!(second.start(), 1);
        taps.changed(&server(), ChangeKind::Reset);
        assert_eq!(first.try_recv().map(|c| c.seq), Some(1));
        assert_eq!(first.try_recv().map(|c| c.seq), Some(2));
        assert_eq!(second.try_recv().map(|c| c.seq), Some(2));
        assert_eq!(second.try_recv(), None);
        assert_eq!((first.latest(), taps.seq(&server())), (2, 2));
    }

    #[test]
    fn a_full_tap_skips_changes_and_says_so_through_latest() {
        let mut taps = Taps::default();
        let mut tap = taps.tap(&server());
        for id in 0..TAP_CAPACITY as u64 + 3 {
            taps.changed(&server(), ChangeKind::Disconnect { id });
        }
        let mut heard = 0;
        let latest = tap.latest();
        while let Some(change) = tap.try_recv() {
            heard += 1;
            assert_eq!(change.seq, heard);
        }
        assert_eq!(heard, TAP_CAPACITY as u64);
        assert_eq!(latest, TAP_CAPACITY as u64 + 3);
    }

    #[test]
    fn a_dropped_tap_is_forgotten_and_the_numbers_go_on() {
        let mut taps = Taps::default();
        drop(taps.tap(&server()));
        taps.changed(&server(), ChangeKind::Reset);
        assert!(taps.followed[&server()].followers.is_empty());
        let tap = taps.tap(&server());
        assert_eq!(tap.start(), 1);
    }
}
