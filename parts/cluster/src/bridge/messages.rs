//! What comes into the bridge's mailbox: the feeds' messages, requests for this node's snapshot, the
//! parts of the snapshots it asked for, its own server's changes, the
//! applier's word that presence refused something, and the host's word
//! that the node stops.

use std::time::Duration;

use actix::prelude::*;
use muster::names::MachineTag;
use muster_actors::presence::Change;
use tokio::time::Instant;

use super::Bridge;
use super::link::Outgoing;
use crate::metrics::Kind;
use crate::protocol::{self, Part};

/// A message on a feed.
pub(crate) struct Heard(pub async_nats::Message);

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
pub(crate) struct Asked(pub async_nats::Message);

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
pub(crate) struct Answered {
    pub request: u64,
    pub part: Result<Part, Unanswered>,
    pub bytes: usize,
}

/// Why an answer holds no part.
pub(crate) enum Unanswered {
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
pub(crate) struct Tapped {
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
pub(crate) struct Failed(pub MachineTag);

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

/// The node stops: the bridge tells its peers, after every change it
/// published before, so that they hold it down at once instead of after
/// `down_after` (and the models it polled move sooner), and sends nothing
/// more. Answers once the word is out, or after `wait` at most.
pub struct Leave {
    /// How long to wait for the word to reach the NATS server.
    pub wait: Duration,
}

impl Message for Leave {
    type Result = ();
}

impl Handler<Leave> for Bridge {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, leave: Leave, _ctx: &mut Context<Self>) -> Self::Result {
        let incarnation = self.memory.lock().incarnation;
        let out = Outgoing {
            subject: self.subjects.feed(&self.config.node),
            reply: None,
            payload: protocol::leaving(&self.config.node, incarnation),
            kind: Kind::Leaving,
        };
        let sent = !self.left && self.connected() && self.send(out);
        self.left = true;
        let outbox = self.outbox.clone().filter(|_| sent);
        let client = self.client.clone().filter(|_| sent);
        let said = async move {
            let (Some(outbox), Some(client)) = (outbox, client) else {
                return;
            };
            // The publisher has taken every message, this one last, once
            // the outbox is empty; the flush then waits for the server.
            let drained = async {
                while outbox.capacity() < outbox.max_capacity() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let _ = client.flush().await;
            };
            let _ = tokio::time::timeout(leave.wait, drained).await;
        };
        Box::pin(said.into_actor(self))
    }
}
