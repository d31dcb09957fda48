//! Where a child runs: on its supervisor's arbiter by default, or on an
//! arbiter the host chose, so that a tree spreads its work over several
//! threads ([`Arbiters`]).
//!
//! A child placed elsewhere is made on its supervisor's thread and moved
//! to its arbiter, where its task runs: every supervised actor is `Send`.
//! Supervision is the same wherever a child runs: its exits reach its
//! supervisor as messages, its mailbox is metered alike, its kept state is
//! shared through the same cell.

use std::sync::Arc;

use actix::{Arbiter, ArbiterHandle};

/// A set of actix arbiters (threads) a tree spreads its children over, in
/// turn as they are added; a child restarted runs where it ran. Cheap to
/// clone. The default is none: every child runs on its supervisor's
/// arbiter.
#[derive(Clone, Default)]
pub struct Arbiters {
    handles: Arc<[ArbiterHandle]>,
    /// The first of `handles` this set started itself (the ones before
    /// are the caller's).
    started_from: usize,
}

impl std::fmt::Debug for Arbiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Arbiters")
            .field(&self.handles.len())
            .finish()
    }
}

impl Arbiters {
    /// The host's own arbiters.
    pub fn from_handles(handles: Vec<ArbiterHandle>) -> Self {
        Arbiters {
            started_from: handles.len(),
            handles: handles.into(),
        }
    }

    /// `threads` arbiters: the current one (the caller's, which must run
    /// inside an actix system) and `threads - 1` new threads, each with
    /// its own arbiter. They stop when their handles are stopped
    /// ([`Arbiters::stop`]) or the system does. Zero or one thread spreads
    /// nothing: every child runs on its supervisor's arbiter.
    pub fn start(threads: usize) -> Self {
        if threads <= 1 {
            return Arbiters::default();
        }
        let mut handles = vec![Arbiter::current()];
        for _ in 1..threads {
            handles.push(Arbiter::new().handle());
        }
        Arbiters {
            handles: handles.into(),
            started_from: 1,
        }
    }

    /// How many arbiters there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The `n`th arbiter, counting round: where the `n`th child of a
    /// spread goes.
    pub fn nth(&self, n: usize) -> Option<&ArbiterHandle> {
        match self.handles.len() {
            0 => None,
            len => self.handles.get(n % len),
        }
    }

    /// Each arbiter, in order.
    pub fn handles(&self) -> &[ArbiterHandle] {
        &self.handles
    }

    /// Stops the arbiters this set started, not the caller's: their
    /// threads end once they have run what they hold.
    pub fn stop(&self) {
        for handle in self.handles.iter().skip(self.started_from) {
            handle.stop();
        }
    }
}
