//! What the bridge hears and answers: this node's changes from the tap
//! sent out, peers' messages read and carried into presence in order,
//! snapshot requests served, and answered snapshot parts reassembled.

use std::time::Duration;

use actix::prelude::*;
use muster_actors::presence::Change;
use slog::{debug, warn};
use tokio::time::Instant;

use super::link::Outgoing;
use crate::metrics::Kind;
use crate::peers::Action;
use crate::protocol::{self, Conn, Event, Feed, Op, Part};

use super::{Bridge, Unanswered};

impl Bridge {
    /// Asks peers for snapshots; hands the rest to the applier, in order.
    pub(super) fn carry_out(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Ask { peer, request } => {
                    self.memory.lock().counts.snapshots_asked += 1;
                    self.config.metrics.snapshot("asked");
                    if !self.connected() {
                        // Asked again when the link is back.
                        continue;
                    }
                    let out = Outgoing {
                        subject: self.subjects.snapshot(&peer),
                        reply: Some(format!("{}.{request}", self.inbox)),
                        payload: protocol::snapshot_request(&self.config.node),
                        kind: Kind::SnapshotRequest,
                    };
                    self.send(out);
                }
                other => {
                    if let Some(peer) = self.applier.push(other) {
                        warn!(self.log, "the applier's queue is full; taking the peer anew";
                            "peer" => %peer);
                        let again = self.memory.lock().peers.failed(Instant::now(), &peer);
                        self.carry_out(again);
                    }
                }
            }
        }
    }

    /// This node's changes, as the tap gave them.
    pub(super) fn tapped(&mut self, changes: Vec<Change>, latest: Option<u64>) {
        let incarnation = {
            let mut memory = self.memory.lock();
            let last = changes.last().map_or(0, |c| c.seq);
            memory.seq = memory.seq.max(last).max(latest.unwrap_or(0));
            memory.incarnation
        };
        let events: Vec<Event> = changes
            .into_iter()
            .filter_map(|change| {
                Op::of(change.kind).map(|op| Event {
                    seq: change.seq,
                    op,
                })
            })
            .collect();
        if events.is_empty() {
            return;
        }
        let count = events.len() as u64;
        if !self.connected() {
            // Peers see the numbers go by in the next heartbeat, and take a
            // snapshot.
            self.memory.lock().counts.events_unpublished += count;
            return;
        }
        let limit = self.max_payload();
        let messages =
            match protocol::events_messages(&self.config.node, incarnation, &events, limit) {
                Ok(messages) => messages,
                Err(e) => {
                    warn!(self.log, "a change cannot be published; peers will take a snapshot";
                    "error" => %e);
                    self.memory.lock().counts.events_unpublished += count;
                    return;
                }
            };
        let subject = self.subjects.feed(&self.config.node);
        let mut all = true;
        for payload in messages {
            all &= self.send(Outgoing {
                subject: subject.clone(),
                reply: None,
                payload,
                kind: Kind::Events,
            });
        }
        let mut memory = self.memory.lock();
        if all {
            memory.counts.events_published += count;
        } else {
            memory.counts.events_unpublished += count;
        }
    }

    pub(super) fn heard(&mut self, message: async_nats::Message) {
        let size = message.payload.len();
        let feed = match serde_json::from_slice::<Feed>(&message.payload) {
            Ok(feed) => feed,
            Err(e) => {
                self.config.metrics.received(Kind::Events, size);
                self.refuse(&message.subject, &e.to_string());
                return;
            }
        };
        let kind = match feed {
            Feed::Events { .. } => Kind::Events,
            Feed::Heartbeat { .. } => Kind::Heartbeat,
            Feed::Leaving { .. } => Kind::Leaving,
        };
        self.config.metrics.received(kind, size);
        if self.subjects.feed_node(&message.subject).as_ref() != Some(feed.node()) {
            let reason = format!("a message of {} on another node's feed", feed.node());
            self.refuse(&message.subject, &reason);
            return;
        }
        let now = Instant::now();
        if feed.node() == &self.config.node {
            self.twin(&feed, now);
            return;
        }
        let wall = self.config.clock.now();
        let actions = self.memory.lock().peers.heard(now, wall, feed);
        self.carry_out(actions);
    }

    /// Another process publishes as this node: two daemons share one
    /// `[agents] server`, and each hides the other's agents. Said once a
    /// minute at most.
    pub(super) fn twin(&mut self, feed: &Feed, now: Instant) {
        let incarnation = feed.incarnation();
        let ours = self.memory.lock().incarnation;
        let due = self
            .twin_warned
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(60));
        if incarnation != ours && due {
            self.twin_warned = Some(now);
            warn!(self.log, "another process publishes as this node: give each daemon its own [agents] server";
                "node" => %self.config.node, "its_incarnation" => %incarnation);
        }
    }

    pub(super) fn refuse(&self, subject: &str, reason: &str) {
        self.memory.lock().counts.refused += 1;
        debug!(self.log, "cluster message refused"; "subject" => subject, "reason" => reason);
    }

    /// Answers a peer's request for this node's snapshot, in parts.
    pub(super) fn serve(&mut self, message: async_nats::Message, ctx: &mut Context<Self>) {
        self.config
            .metrics
            .received(Kind::SnapshotRequest, message.payload.len());
        let Some(reply) = message.reply.map(|r| r.to_string()) else {
            self.refuse(
                &message.subject,
                "a snapshot request without a reply subject",
            );
            return;
        };
        let (Some(outbox), true) = (self.outbox.clone(), self.connected()) else {
            return;
        };
        let asker = serde_json::from_slice::<protocol::SnapshotRequest>(&message.payload)
            .map(|r| r.node.to_string())
            .unwrap_or_else(|_| "?".into());
        let presence = self.presence.clone();
        let node = self.config.node.clone();
        let incarnation = self.memory.lock().incarnation;
        let limit = self.max_payload();
        let log = self.log.clone();
        let serving = async move {
            let snapshot = presence.snapshot(&node).await.map_err(|e| e.to_string())?;
            let count = snapshot.values.len();
            let seq = snapshot.seq;
            let parts = tokio::task::spawn_blocking(move || {
                let connections: Vec<Conn> = snapshot
                    .values
                    .into_iter()
                    .map(|value| Conn {
                        id: value.connection_id,
                        model: value.model,
                        agent: value.agent,
                        controller_agent: value.controller_agent,
                        user_data: value.user_data,
                    })
                    .collect();
                protocol::snapshot_parts(&node, incarnation, seq, &connections, limit)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            let parts_count = parts.len();
            for payload in parts {
                let out = Outgoing {
                    subject: reply.clone(),
                    reply: None,
                    payload,
                    kind: Kind::SnapshotPart,
                };
                // Waits for room: a snapshot's parts are all or nothing.
                outbox
                    .send(out)
                    .await
                    .map_err(|_| "the link closed".to_owned())?;
            }
            debug!(log, "snapshot served"; "to" => asker, "connections" => count,
                "seq" => seq, "parts" => parts_count);
            Ok::<(), String>(())
        };
        ctx.spawn(
            serving
                .into_actor(self)
                .map(|served, bridge, _ctx| match served {
                    Ok(()) => {
                        bridge.memory.lock().counts.snapshots_served += 1;
                        bridge.config.metrics.snapshot("served");
                    }
                    Err(e) => warn!(bridge.log, "snapshot not served"; "error" => %e),
                }),
        );
    }

    pub(super) fn answered(&mut self, request: u64, part: Result<Part, Unanswered>, bytes: usize) {
        match part {
            Ok(part) => {
                self.config.metrics.received(Kind::SnapshotPart, bytes);
                let actions = self.memory.lock().peers.part(Instant::now(), request, part);
                self.carry_out(actions);
            }
            Err(Unanswered::NoOne) => {
                self.memory.lock().peers.unanswered(Instant::now(), request);
            }
            Err(Unanswered::Unreadable(reason)) => {
                self.config.metrics.received(Kind::SnapshotPart, bytes);
                self.refuse("snapshot part", &reason);
            }
        }
    }
}
