//! What comes into the bridge's mailbox: the NATS client's connection
//! events, the feeds' messages, requests for this node's snapshot, the
//! parts of the snapshots it asked for, its own server's changes, and the
//! applier's word that presence refused something.

use actix::prelude::*;
use muster::names::MachineTag;
use muster_actors::presence::Change;
use tokio::time::Instant;

use super::Bridge;
use crate::cluster::protocol::Part;

/// A connection event of the NATS client, of one link.
pub(in crate::cluster) struct LinkEvent {
    pub generation: u64,
    pub event: async_nats::Event,
}

impl Message for LinkEvent {
    type Result = ();
}

impl Handler<LinkEvent> for Bridge {
    type Result = ();

    fn handle(&mut self, event: LinkEvent, _ctx: &mut Context<Self>) {
        // A client of an earlier run of the bridge may still say goodbye.
        if event.generation == self.generation {
            self.link_event(event.event);
        }
    }
}

/// A message on a feed.
pub(in crate::cluster) struct Heard(pub async_nats::Message);

impl Message for Heard {
    type Result = ();
}

impl Handler<Heard> for Bridge {
    type Result = ();

    fn handle(&mut self, heard: Heard, _ctx: &mut Context<Self>) {
        self.heard(heard.0);
    }
}

/// A request for this node's snapshot.
pub(in crate::cluster) struct Asked(pub async_nats::Message);

impl Message for Asked {
    type Result = ();
}

impl Handler<Asked> for Bridge {
    type Result = ();

    fn handle(&mut self, asked: Asked, ctx: &mut Context<Self>) {
        self.serve(asked.0, ctx);
    }
}

/// A part of a snapshot this node asked for, read.
pub(in crate::cluster) struct Answered {
    pub request: u64,
    pub part: Result<Part, Unanswered>,
    pub bytes: usize,
}

/// Why an answer holds no part.
pub(in crate::cluster) enum Unanswered {
    /// NATS says no one was there to hear the request.
    NoOne,
    /// It did not read as a part.
    Unreadable(String),
}

impl Message for Answered {
    type Result = ();
}

impl Handler<Answered> for Bridge {
    type Result = ();

    fn handle(&mut self, answered: Answered, _ctx: &mut Context<Self>) {
        self.answered(answered.request, answered.part, answered.bytes);
    }
}

/// This node's own changes.
pub(in crate::cluster) struct Tapped {
    pub changes: Vec<Change>,
    pub latest: Option<u64>,
}

impl Message for Tapped {
    type Result = ();
}

impl Handler<Tapped> for Bridge {
    type Result = ();

    fn handle(&mut self, tapped: Tapped, _ctx: &mut Context<Self>) {
        self.tapped(tapped.changes, tapped.latest);
    }
}

/// Presence refused something of this peer.
pub(in crate::cluster) struct Failed(pub MachineTag);

impl Message for Failed {
    type Result = ();
}

impl Handler<Failed> for Bridge {
    type Result = ();

    fn handle(&mut self, failed: Failed, _ctx: &mut Context<Self>) {
        let actions = self.memory.lock().peers.failed(Instant::now(), &failed.0);
        self.carry_out(actions);
    }
}
