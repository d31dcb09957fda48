//! The other nodes as one node knows them, and what it does about what it
//! hears: each peer's changes applied in the order it numbered them, a gap
//! or a restart answered with a fresh snapshot, changes that come while a
//! snapshot is on its way held and applied on top of it, and a peer that
//! falls silent marked down (docs/spec.md §11.5).
//!
//! Everything here is a pure function of what was heard and when: the
//! bridge feeds it what NATS brings and carries out the [`Action`]s it
//! answers, so the rules are tested without a network or a clock.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use muster::names::MachineTag;
use serde::Serialize;
use tokio::time::Instant;

use super::protocol::{Assembly, Conn, Event, Feed, Incarnation, Part};

/// What the bridge must do for the peers to be right in presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Apply these changes of the peer, in order.
    Apply {
        /// The peer.
        peer: MachineTag,
        /// Its changes.
        events: Vec<Event>,
    },
    /// Replace everything known of the peer with its snapshot.
    Replace {
        /// The peer.
        peer: MachineTag,
        /// The number of the peer's last change the snapshot holds.
        seq: u64,
        /// Its connections.
        connections: Vec<Conn>,
    },
    /// Mark every connection of the peer missing.
    Down {
        /// The peer.
        peer: MachineTag,
    },
    /// Ask the peer for a snapshot; its parts will come back under
    /// `request`.
    Ask {
        /// The peer.
        peer: MachineTag,
        /// The request's number, unique for the life of the bridge.
        request: u64,
    },
}

/// How patient the node is with its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// A peer silent this long is down.
    pub down_after: Duration,
    /// A snapshot that has not progressed for this long is asked again.
    pub patience: Duration,
    /// A request no one was there to hear (the peer not connected yet) is
    /// asked again after this long.
    pub retry: Duration,
    /// The most changes held for a peer while its snapshot is on its way;
    /// past it they are dropped and a newer snapshot is asked for.
    pub max_held: usize,
    /// A peer down and silent this long is forgotten: a node that left the
    /// cluster for good is not kept, nor asked, for ever.
    pub forget_after: Duration,
}

impl Settings {
    /// The settings for a cluster whose peers beat every `heartbeat` and
    /// are down after `down_after`.
    pub fn new(heartbeat: Duration, down_after: Duration) -> Self {
        Settings {
            down_after,
            patience: down_after.max(Duration::from_secs(2)),
            retry: heartbeat,
            max_held: 100_000,
            forget_after: (down_after * 10).max(Duration::from_secs(3600)),
        }
    }
}

/// Where a peer is, as this node sees it.
#[derive(Debug, Clone)]
enum State {
    /// Its connections are marked missing here (or it was never heard).
    Down,
    /// A snapshot was asked for; changes heard meanwhile are held.
    Syncing(Box<Syncing>),
    /// Its changes are applied as they come; `applied` is the number of
    /// the last.
    Up { applied: u64 },
}

#[derive(Debug, Clone)]
struct Syncing {
    request: u64,
    /// When the snapshot was asked for or its last part came.
    progress: Instant,
    /// When to ask again a request no one heard.
    retry_at: Option<Instant>,
    assembly: Assembly,
    held: Vec<Event>,
    /// The highest number a heartbeat said was published.
    heard_seq: u64,
}

/// What the node counts of one peer, for its report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerCounts {
    /// Changes applied.
    pub events: u64,
    /// Gaps in its numbers, each answered with a snapshot.
    pub gaps: u64,
    /// Snapshots asked for.
    pub snapshots_asked: u64,
    /// Snapshots applied.
    pub snapshots_applied: u64,
    /// Times it was marked down.
    pub downs: u64,
    /// Times it came back as a new run (the daemon restarted).
    pub restarts: u64,
}

#[derive(Debug, Clone)]
struct Peer {
    incarnation: Incarnation,
    state: State,
    last_heard: Instant,
    last_heartbeat: Option<SystemTime>,
    /// Its run said it stops: nothing more of that run is taken.
    left: bool,
    /// Not heard since this node's link came back: it may be long gone,
    /// so it is not live until it speaks.
    unheard: bool,
    counts: PeerCounts,
}

/// One peer in the bridge's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerReport {
    /// The peer's server tag.
    pub server: MachineTag,
    /// `up`, `syncing` or `down`.
    pub state: &'static str,
    /// Its current run.
    pub incarnation: Incarnation,
    /// The number of its last change applied here (while up).
    pub applied: Option<u64>,
    /// Changes held while its snapshot is on its way.
    pub held: usize,
    /// When its last heartbeat came, by the node's clock.
    pub last_heartbeat: Option<SystemTime>,
    /// How long it has been silent, in milliseconds.
    pub silent_ms: u64,
    /// What was counted of it.
    #[serde(flatten)]
    pub counts: PeerCounts,
}

/// Every peer one node has heard of.
#[derive(Debug, Clone)]
pub struct Peers {
    me: MachineTag,
    settings: Settings,
    peers: BTreeMap<MachineTag, Peer>,
    next_request: u64,
}

impl Peers {
    /// No peer yet, for the node `me`.
    pub fn new(me: MachineTag, settings: Settings) -> Self {
        Peers {
            me,
            settings,
            peers: BTreeMap::new(),
            next_request: 1,
        }
    }

    /// Something `feed` says, heard at `now` (`wall` by the node's clock).
    pub fn heard(&mut self, now: Instant, wall: SystemTime, feed: Feed) -> Vec<Action> {
        let (node, incarnation) = (feed.node().clone(), feed.incarnation());
        if node == self.me {
            return Vec::new();
        }
        if let Feed::Leaving { .. } = feed {
            return self.leaving(&node, incarnation);
        }
        let mut actions = Vec::new();
        let peer = self.peers.entry(node.clone()).or_insert_with(|| Peer {
            incarnation,
            state: State::Down,
            last_heard: now,
            last_heartbeat: None,
            left: false,
            unheard: false,
            counts: PeerCounts::default(),
        });
        if peer.incarnation == incarnation && peer.left {
            // What a run that said it stops sent before its word came.
            return actions;
        }
        if peer.incarnation != incarnation {
            // A new run: the old one's connections ended with it. They are
            // missing until its snapshot replaces them.
            peer.incarnation = incarnation;
            peer.left = false;
            peer.counts.restarts += 1;
            if !matches!(peer.state, State::Down) {
                peer.state = State::Down;
                peer.counts.downs += 1;
                actions.push(Action::Down { peer: node.clone() });
            }
        }
        peer.last_heard = now;
        peer.unheard = false;
        if matches!(feed, Feed::Heartbeat { .. }) {
            peer.last_heartbeat = Some(wall);
        }
        if matches!(peer.state, State::Down) {
            actions.push(sync(&node, peer, &mut self.next_request, now));
        }
        match feed {
            Feed::Events { events, .. } => {
                self.take(&node, events, now, &mut actions);
            }
            Feed::Leaving { .. } => {}
            Feed::Heartbeat { seq, .. } => {
                let peer = self.peers.get_mut(&node).expect("added above");
                match &mut peer.state {
                    State::Syncing(syncing) => syncing.heard_seq = syncing.heard_seq.max(seq),
                    State::Up { applied } if seq > *applied => {
                        // The changes up to `seq` were published before this
                        // heartbeat, and did not come.
                        peer.counts.gaps += 1;
                        actions.push(sync(&node, peer, &mut self.next_request, now));
                    }
                    State::Up { .. } | State::Down => {}
                }
            }
        }
        actions
    }

    /// A peer's word that its run `incarnation` stops: down at once, and
    /// nothing more taken from that run. A word from a run not known here
    /// changes nothing.
    fn leaving(&mut self, node: &MachineTag, incarnation: Incarnation) -> Vec<Action> {
        let Some(peer) = self.peers.get_mut(node) else {
            return Vec::new();
        };
        if peer.incarnation != incarnation || peer.left {
            return Vec::new();
        }
        peer.left = true;
        if matches!(peer.state, State::Down) {
            return Vec::new();
        }
        peer.state = State::Down;
        peer.counts.downs += 1;
        vec![Action::Down { peer: node.clone() }]
    }

    /// Applies or holds a peer's changes.
    fn take(&mut self, node: &MachineTag, events: Vec<Event>, now: Instant, out: &mut Vec<Action>) {
        let max_held = self.settings.max_held;
        let peer = self.peers.get_mut(node).expect("known");
        match &mut peer.state {
            State::Down => {}
            State::Syncing(syncing) => {
                syncing.held.extend(events);
                if syncing.held.len() > max_held {
                    // A newer snapshot holds them all.
                    out.push(sync(node, peer, &mut self.next_request, now));
                }
            }
            State::Up { applied } => {
                let (ready, rest) = in_order(*applied, events);
                if let Some(last) = ready.last() {
                    *applied = last.seq;
                    peer.counts.events += ready.len() as u64;
                    out.push(Action::Apply {
                        peer: node.clone(),
                        events: ready,
                    });
                }
                if !rest.is_empty() {
                    peer.counts.gaps += 1;
                    out.push(sync(node, peer, &mut self.next_request, now));
                }
            }
        }
    }

    /// A part of the snapshot asked for under `request`, heard at `now`.
    pub fn part(&mut self, now: Instant, request: u64, part: Part) -> Vec<Action> {
        let Some((node, peer)) = self
            .peers
            .iter_mut()
            .find(|(_, peer)| matches!(&peer.state, State::Syncing(s) if s.request == request))
        else {
            // An answer to a request given up on.
            return Vec::new();
        };
        let node = node.clone();
        if part.node != node || part.incarnation != peer.incarnation {
            // An answer from another run of the peer, which will be asked
            // in its turn.
            return Vec::new();
        }
        let State::Syncing(syncing) = &mut peer.state else {
            unreachable!("found syncing");
        };
        syncing.progress = now;
        let whole = match syncing.assembly.add(part) {
            Ok(None) => return Vec::new(),
            Ok(Some(whole)) => whole,
            Err(_) => return vec![sync(&node, peer, &mut self.next_request, now)],
        };
        let held = std::mem::take(&mut syncing.held);
        let heard_seq = syncing.heard_seq;
        peer.counts.snapshots_applied += 1;
        let mut actions = vec![Action::Replace {
            peer: node.clone(),
            seq: whole.seq,
            connections: whole.connections,
        }];
        peer.state = State::Up { applied: whole.seq };
        let (ready, rest) = in_order(whole.seq, held);
        let mut applied = whole.seq;
        if let Some(last) = ready.last() {
            applied = last.seq;
            peer.counts.events += ready.len() as u64;
            peer.state = State::Up { applied };
            actions.push(Action::Apply {
                peer: node.clone(),
                events: ready,
            });
        }
        if !rest.is_empty() || heard_seq > applied {
            peer.counts.gaps += 1;
            actions.push(sync(&node, peer, &mut self.next_request, now));
        }
        actions
    }

    /// NATS says no one heard the request `request` (the peer is not
    /// connected yet, or not any more): it is asked again after the retry
    /// wait, unless it is down by then.
    pub fn unanswered(&mut self, now: Instant, request: u64) {
        let retry = self.settings.retry;
        for peer in self.peers.values_mut() {
            if let State::Syncing(syncing) = &mut peer.state
                && syncing.request == request
            {
                syncing.retry_at = Some(now + retry);
            }
        }
    }

    /// What time alone decides at `now`: a peer silent for `down_after` is
    /// down; a snapshot that stalled for the patience is asked again.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let forget_after = self.settings.forget_after;
        self.peers.retain(|_, peer| {
            !matches!(peer.state, State::Down)
                || now.saturating_duration_since(peer.last_heard) < forget_after
        });
        let mut actions = Vec::new();
        for (node, peer) in &mut self.peers {
            let silent = now.saturating_duration_since(peer.last_heard);
            match &mut peer.state {
                State::Down => {}
                _ if silent >= self.settings.down_after => {
                    peer.state = State::Down;
                    peer.counts.downs += 1;
                    actions.push(Action::Down { peer: node.clone() });
                }
                State::Syncing(syncing)
                    if now.saturating_duration_since(syncing.progress)
                        >= self.settings.patience
                        || syncing.retry_at.is_some_and(|at| at <= now) =>
                {
                    actions.push(sync(node, peer, &mut self.next_request, now));
                }
                _ => {}
            }
        }
        actions
    }

    /// The node lost NATS: every peer is down until it is back.
    pub fn link_down(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        for (node, peer) in &mut self.peers {
            if !matches!(peer.state, State::Down) {
                peer.state = State::Down;
                peer.counts.downs += 1;
                actions.push(Action::Down { peer: node.clone() });
            }
        }
        actions
    }

    /// The node's NATS connection came up at `now`: every peer it knows is
    /// asked for a snapshot, except one whose run said it stops. None is
    /// live until it is heard again: a peer that died meanwhile is down
    /// again once silent for `down_after`, never counted live on the way.
    pub fn link_up(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        for (node, peer) in &mut self.peers {
            if peer.left {
                continue;
            }
            peer.last_heard = now;
            peer.unheard = true;
            actions.push(sync(node, peer, &mut self.next_request, now));
        }
        actions
    }

    /// What was asked for `peer` could not be carried out (presence refused
    /// it): its table here may be wrong, so it is taken anew, or, when it
    /// is down here, marked down again until presence takes it.
    pub fn failed(&mut self, now: Instant, peer: &MachineTag) -> Vec<Action> {
        match self.peers.get_mut(peer) {
            Some(known) if matches!(known.state, State::Down) => {
                vec![Action::Down { peer: peer.clone() }]
            }
            Some(known) => vec![sync(peer, known, &mut self.next_request, now)],
            None => Vec::new(),
        }
    }

    /// The peers for the report, at `now`.
    pub fn report(&self, now: Instant) -> Vec<PeerReport> {
        self.peers
            .iter()
            .map(|(node, peer)| PeerReport {
                server: node.clone(),
                state: match peer.state {
                    State::Down => "down",
                    State::Syncing(_) => "syncing",
                    State::Up { .. } => "up",
                },
                incarnation: peer.incarnation,
                applied: match peer.state {
                    State::Up { applied } => Some(applied),
                    _ => None,
                },
                held: match &peer.state {
                    State::Syncing(syncing) => syncing.held.len(),
                    _ => 0,
                },
                last_heartbeat: peer.last_heartbeat,
                silent_ms: now.saturating_duration_since(peer.last_heard).as_millis() as u64,
                counts: peer.counts.clone(),
            })
            .collect()
    }

    /// The peers not down and heard since the link last came up: up, or
    /// being taken from a snapshot.
    pub fn live(&self) -> std::collections::BTreeSet<MachineTag> {
        self.peers
            .iter()
            .filter(|(_, peer)| !matches!(peer.state, State::Down) && !peer.unheard)
            .map(|(node, _)| node.clone())
            .collect()
    }

    /// How many peers are in each state: (up, syncing, down).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.peers
            .values()
            .fold((0, 0, 0), |(up, syncing, down), peer| match peer.state {
                State::Up { .. } => (up + 1, syncing, down),
                State::Syncing(_) => (up, syncing + 1, down),
                State::Down => (up, syncing, down + 1),
            })
    }
}

/// Starts (or starts again) taking `peer` from a snapshot. Whatever was
/// held is let go: every change heard so far was published before the
/// peer hears this request, so the snapshot that answers it holds them
/// all, and a change numbered far ahead (forged, or of a broken peer)
/// cannot make the node ask again and again.
fn sync(node: &MachineTag, peer: &mut Peer, next_request: &mut u64, now: Instant) -> Action {
    let request = *next_request;
    *next_request += 1;
    peer.counts.snapshots_asked += 1;
    peer.state = State::Syncing(Box::new(Syncing {
        request,
        progress: now,
        retry_at: None,
        assembly: Assembly::default(),
        held: Vec::new(),
        heard_seq: 0,
    }));
    Action::Ask {
        peer: node.clone(),
        request,
    }
}

/// The changes that follow `applied` without a gap, and the rest from the
/// first gap on; changes already applied (heard twice) are dropped.
fn in_order(applied: u64, events: Vec<Event>) -> (Vec<Event>, Vec<Event>) {
    let mut next = applied;
    let mut ready = Vec::new();
    let mut events = events.into_iter();
    for event in events.by_ref() {
        if event.seq <= next {
            continue;
        }
        if Some(event.seq) != next.checked_add(1) {
            let mut rest = vec![event];
            rest.extend(events.filter(|e| e.seq > next));
            return (ready, rest);
        }
        next = event.seq;
        ready.push(event);
    }
    (ready, Vec::new())
}

#[cfg(test)]
mod tests;
