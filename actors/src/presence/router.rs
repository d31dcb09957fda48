//! The presence router: it starts a server's actor on that server's first
//! change, routes changes and queries to it, and answers for them all.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use actix::prelude::*;
use futures::future::join_all;
use muster::names::MachineTag;
use muster::presence::{
    ModelCounts, PresenceError, ServerTable, ServerView, StatusCounts, Tally, Value,
    validate_snapshot,
};
use serde::Serialize;
use slog::{Logger, info, warn};
use tokio::sync::watch;

use super::server::{CaughtUp, ServerEvent, ServerEvents, ServerPresence, ViewTable};
use super::{TableSnapshot, Tap, tap};
use crate::mailbox::{Mailbox, SendError};
use crate::supervisor::{ChildSpec, Kept, SupervisorError, SupervisorRef};

/// How long the router waits before it tries again to hand an event to a
/// server's actor whose mailbox is full.
const ROOM_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// The most events the router hands a server's actor in one message. The
/// router gathers the events it routes while its mailbox has more for it,
/// and hands each server what it gathered once the mailbox is drained (or
/// this many are waiting): one message, one lock of the table and one
/// metered hop for many events. Small enough that a server mailbox's
/// capacity, counted in these messages, still bounds what it holds.
pub(super) const BATCH: usize = 16;

/// One server as the router knows it.
#[derive(Clone)]
pub(super) struct ServerSlot {
    pub(super) mailbox: Mailbox<ServerPresence>,
    pub(super) table: Kept<ServerTable>,
}

/// What the router keeps across its own restarts.
#[derive(Default)]
pub(super) struct RouterState {
    pub(super) enabled: bool,
    pub(super) servers: BTreeMap<MachineTag, ServerSlot>,
    /// The per-model counts every server's table keeps up to date.
    pub(super) tally: Tally,
    pub(super) taps: tap::Taps,
    /// Events routed but not yet handed to their server's actor, in order.
    /// Kept with the rest, so that a router that fails between routing an
    /// event and handing it on loses nothing: its next instance hands them
    /// on as it starts.
    pub(super) pending: BTreeMap<MachineTag, Vec<ServerEvent>>,
    /// A hand-off of everything pending is scheduled on this instance.
    pub(super) flush_scheduled: bool,
    /// Servers whose actor's mailbox was full at the last hand-off: the
    /// router waits for room, and their later events wait in `pending`
    /// behind the refused ones.
    pub(super) blocked: std::collections::BTreeSet<MachineTag>,
}

/// The presence router: owns one [`ServerPresence`] per API server and
/// routes events and queries to them.
pub struct PresenceActor {
    pub(super) state: Kept<RouterState>,
    pub(super) enabled: Arc<watch::Sender<bool>>,
    pub(super) servers: SupervisorRef,
    pub(super) server_mailbox: usize,
    pub(super) log: Logger,
}

impl Actor for PresenceActor {
    type Context = Context<Self>;

    /// After a restart of the whole subtree the server actors are gone but
    /// their tables are not: start an actor again for every known table.
    fn started(&mut self, ctx: &mut Context<Self>) {
        let known: Vec<(MachineTag, ServerSlot)> = self
            .state
            .lock()
            .servers
            .iter()
            .map(|(tag, slot)| (tag.clone(), slot.clone()))
            .collect();
        for (tag, slot) in known {
            if !slot.mailbox.is_running() {
                self.start_server(&tag, &slot, ctx);
            }
        }
        {
            let mut state = self.state.lock();
            state.flush_scheduled = false;
            // A wait for room ended with the instance that waited; the
            // events it held back are still first in their server's
            // pending ones.
            state.blocked.clear();
        }
        self.flush(ctx);
    }
}
crate::supervised!(PresenceActor);

impl PresenceActor {
    pub(super) fn start_server(
        &self,
        tag: &MachineTag,
        slot: &ServerSlot,
        ctx: &mut Context<Self>,
    ) {
        let table = slot.table.clone();
        let spec = ChildSpec::actor(tag.as_str(), &slot.mailbox, move |cx| {
            Ok(ServerPresence {
                table: table.clone(),
                log: cx.logger().clone(),
            })
        });
        let log = self.log.clone();
        let server = tag.clone();
        let added = self.servers.add(spec);
        ctx.spawn(
            async move {
                match added.await {
                    Ok(()) => info!(log, "tracking API server"; "server" => %server),
                    Err(SupervisorError::Duplicate { .. }) => {}
                    Err(error) => {
                        warn!(log, "could not start server presence";
                            "server" => %server, "error" => %error)
                    }
                }
            }
            .into_actor(self),
        );
    }

    /// The server's slot, made (and its actor started) on first use.
    pub(super) fn server(&mut self, tag: &MachineTag, ctx: &mut Context<Self>) -> ServerSlot {
        let mut state = self.state.lock();
        if let Some(slot) = state.servers.get(tag) {
            return slot.clone();
        }
        let slot = ServerSlot {
            mailbox: Mailbox::keeping(self.server_mailbox),
            table: Kept::new(ServerTable::with_tally(tag.clone(), &state.tally)),
        };
        state.servers.insert(tag.clone(), slot.clone());
        drop(state);
        self.start_server(tag, &slot, ctx);
        slot
    }

    pub(super) fn route(
        &mut self,
        server: &MachineTag,
        event: ServerEvent,
        ctx: &mut Context<Self>,
    ) {
        let mut state = self.state.lock();
        if !state.enabled {
            return;
        }
        // A server with a place in `pending` is known: one lookup for the
        // common case.
        if !state.pending.contains_key(server) {
            if !state.servers.contains_key(server) {
                // Only a connection or a snapshot makes a server known;
                // the other events about an unknown server have nothing to
                // change.
                if !matches!(
                    event,
                    ServerEvent::Connect { .. }
                        | ServerEvent::Snapshot { .. }
                        | ServerEvent::Replace { .. }
                ) {
                    return;
                }
                drop(state);
                self.server(server, ctx);
                state = self.state.lock();
            }
            state
                .pending
                .insert(server.clone(), Vec::with_capacity(BATCH));
        }
        if !state.taps.is_empty()
            && state.taps.follows(server)
            && let Some(change) = event.change()
        {
            // Numbered in the order the server's actor applies the events.
            state.taps.changed(server, change);
        }
        let full = match state.pending.get_mut(server) {
            Some(events) => {
                events.push(event);
                events.len() >= BATCH
            }
            None => false,
        };
        let schedule = !std::mem::replace(&mut state.flush_scheduled, true);
        drop(state);
        if full {
            self.flush_server(server, ctx);
        }
        if schedule {
            // Polled once the router's mailbox is drained: actix handles
            // every queued message before it polls the context's futures.
            ctx.spawn(actix::fut::ready(()).map(|(), router: &mut Self, ctx| {
                router.state.lock().flush_scheduled = false;
                router.flush(ctx);
            }));
        }
    }

    /// Hands every server's pending events to its actor: before anything
    /// else goes to the servers' actors, so that it comes behind them.
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        let batches: Vec<(MachineTag, Mailbox<ServerPresence>, Vec<ServerEvent>)> = {
            let mut state = self.state.lock();
            let state = &mut *state;
            state
                .pending
                .iter_mut()
                .filter(|(tag, events)| !events.is_empty() && !state.blocked.contains(*tag))
                .filter_map(|(tag, events)| {
                    let slot = state.servers.get(tag)?;
                    let batch = std::mem::replace(events, Vec::with_capacity(BATCH));
                    Some((tag.clone(), slot.mailbox.clone(), batch))
                })
                .collect()
        };
        for (server, mailbox, events) in batches {
            self.hand_off(server, mailbox, events, ctx);
        }
    }

    /// Hands one server's pending events to its actor.
    fn flush_server(&mut self, server: &MachineTag, ctx: &mut Context<Self>) {
        let batch = {
            let mut state = self.state.lock();
            let state = &mut *state;
            match (state.pending.get_mut(server), state.servers.get(server)) {
                (Some(events), Some(slot))
                    if !events.is_empty() && !state.blocked.contains(server) =>
                {
                    let batch = std::mem::replace(events, Vec::with_capacity(BATCH));
                    Some((slot.mailbox.clone(), batch))
                }
                _ => None,
            }
        };
        if let Some((mailbox, events)) = batch {
            self.hand_off(server.clone(), mailbox, events, ctx);
        }
    }

    fn hand_off(
        &mut self,
        server: MachineTag,
        mailbox: Mailbox<ServerPresence>,
        events: Vec<ServerEvent>,
        ctx: &mut Context<Self>,
    ) {
        let Err(refused) = mailbox.do_send(ServerEvents(events)) else {
            return;
        };
        let (events, error) = refused.into_parts();
        if !matches!(error, SendError::Overloaded { .. }) {
            warn!(self.log, "presence events refused";
                "server" => %server, "events" => events.0.len(), "error" => %error);
            return;
        }
        // The server's actor is behind. The router waits for room,
        // handling nothing else meanwhile: its own mailbox fills and the
        // host is refused at once, rather than an event it was told was
        // accepted lost, and every event and query keeps its place behind
        // these. The events wait in the kept state, in front of any routed
        // to the server meanwhile (the rest of a take), so that a router
        // that fails while it waits loses none of them.
        {
            let mut state = self.state.lock();
            let pending = state.pending.entry(server.clone()).or_default();
            let later = std::mem::replace(pending, events.0);
            pending.extend(later);
            state.blocked.insert(server.clone());
        }
        ctx.wait(
            tokio::time::sleep(ROOM_WAIT)
                .into_actor(self)
                .map(move |(), router, ctx| {
                    router.state.lock().blocked.remove(&server);
                    router.flush_server(&server, ctx);
                }),
        );
    }

    pub(super) fn report(&self) -> PresenceReport {
        let state = self.state.lock();
        let servers: BTreeMap<MachineTag, StatusCounts> = state
            .servers
            .iter()
            .map(|(tag, slot)| (tag.clone(), slot.table.lock().count_by_status()))
            .collect();
        PresenceReport {
            enabled: state.enabled,
            total: servers.values().map(StatusCounts::total).sum(),
            servers,
        }
    }
}

/// The presence subtree's own report: connections per server and status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PresenceReport {
    /// Whether presence is being recorded.
    pub enabled: bool,
    /// All connections.
    pub total: usize,
    /// Connections per server, by status.
    pub servers: BTreeMap<MachineTag, StatusCounts>,
}

/// A request to the router.
pub(super) enum Request {
    Event(MachineTag, ServerEvent),
    Enable,
    Disable,
}

impl Message for Request {
    type Result = ();
}

impl Handler<Request> for PresenceActor {
    type Result = ();

    fn handle(&mut self, request: Request, ctx: &mut Context<Self>) {
        match request {
            Request::Event(server, event) => self.route(&server, event, ctx),
            Request::Enable => {
                self.flush(ctx);
                self.state.lock().enabled = true;
                self.enabled.send_replace(true);
                info!(self.log, "presence recording enabled");
            }
            Request::Disable => {
                self.flush(ctx);
                let mut state = self.state.lock();
                state.enabled = false;
                self.enabled.send_replace(false);
                for (server, slot) in &state.servers {
                    if let Err(error) = slot.mailbox.do_send(ServerEvent::Clear) {
                        warn!(self.log, "could not clear server presence";
                            "server" => %server, "error" => %error);
                    }
                }
                state.taps.reset_all();
                info!(self.log, "presence recording disabled; every entry dropped");
            }
        }
    }
}

/// A snapshot of one server's connections, reported by that server.
pub(super) struct UpdateServer {
    pub(super) server: MachineTag,
    pub(super) values: Vec<Value>,
    pub(super) at: SystemTime,
    /// Whether the server's table is marked down first, in the same step.
    pub(super) replace: bool,
}

impl Message for UpdateServer {
    type Result = Result<(), PresenceError>;
}

impl Handler<UpdateServer> for PresenceActor {
    type Result = Result<(), PresenceError>;

    fn handle(&mut self, update: UpdateServer, ctx: &mut Context<Self>) -> Self::Result {
        if !self.state.lock().enabled {
            return Err(PresenceError::NotEnabled);
        }
        // All or nothing: a refused snapshot creates no server and changes
        // nothing.
        validate_snapshot(&update.server, &update.values)?;
        let event = if update.replace {
            ServerEvent::Replace {
                values: update.values,
                at: update.at,
            }
        } else {
            ServerEvent::Snapshot {
                values: update.values,
                at: update.at,
            }
        };
        self.route(&update.server, event, ctx);
        Ok(())
    }
}

/// Asks the router whether presence is being recorded.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub(super) struct IsEnabled;

impl Handler<IsEnabled> for PresenceActor {
    type Result = bool;

    fn handle(&mut self, _: IsEnabled, _ctx: &mut Context<Self>) -> bool {
        self.state.lock().enabled
    }
}

/// Asks the router for a view of every server's table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Views;

impl Message for Views {
    type Result = Result<Vec<ServerView>, SendError>;
}

impl Handler<Views> for PresenceActor {
    type Result = ResponseFuture<Result<Vec<ServerView>, SendError>>;

    fn handle(&mut self, _: Views, ctx: &mut Context<Self>) -> Self::Result {
        self.flush(ctx);
        // Through each server's mailbox, behind the events already sent to
        // it, so that the answer reflects them.
        let asks: Vec<_> = self
            .state
            .lock()
            .servers
            .values()
            .map(|slot| slot.mailbox.send(ViewTable))
            .collect();
        Box::pin(async move { join_all(asks).await.into_iter().collect() })
    }
}

/// Asks the router for a tap on a server's changes.
pub(super) struct Follow(pub(super) MachineTag);

impl Message for Follow {
    type Result = Tap;
}

impl Handler<Follow> for PresenceActor {
    type Result = MessageResult<Follow>;

    fn handle(&mut self, follow: Follow, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.lock().taps.tap(&follow.0))
    }
}

/// Asks the router for a copy of one server's table, numbered.
pub(super) struct SnapshotOf(pub(super) MachineTag);

impl Message for SnapshotOf {
    type Result = Result<TableSnapshot, SendError>;
}

impl Handler<SnapshotOf> for PresenceActor {
    type Result = ResponseFuture<Result<TableSnapshot, SendError>>;

    fn handle(&mut self, ask: SnapshotOf, ctx: &mut Context<Self>) -> Self::Result {
        self.flush(ctx);
        let state = self.state.lock();
        // The number as the router routes this question: the server's actor
        // answers it behind every change numbered up to here, and before
        // any later one.
        let seq = state.taps.seq(&ask.0);
        let view = state
            .servers
            .get(&ask.0)
            .map(|slot| slot.mailbox.send(ViewTable));
        Box::pin(async move {
            let values = match view {
                Some(view) => view.await?.values(),
                None => Vec::new(),
            };
            Ok(TableSnapshot { seq, values })
        })
    }
}

/// Asks the router for the per-model counts.
#[derive(Debug, Clone, Copy)]
pub(super) struct GetModelCounts;

impl Message for GetModelCounts {
    type Result = Result<Vec<ModelCounts>, SendError>;
}

impl Handler<GetModelCounts> for PresenceActor {
    type Result = ResponseFuture<Result<Vec<ModelCounts>, SendError>>;

    fn handle(&mut self, _: GetModelCounts, ctx: &mut Context<Self>) -> Self::Result {
        self.flush(ctx);
        let state = self.state.lock();
        let tally = state.tally.clone();
        // The counts are read once every server has applied the events sent
        // before this question, as a view would be.
        let caught_up: Vec<_> = state
            .servers
            .values()
            .map(|slot| slot.mailbox.send(CaughtUp))
            .collect();
        Box::pin(async move {
            join_all(caught_up)
                .await
                .into_iter()
                .collect::<Result<Vec<()>, _>>()?;
            Ok(tally.models())
        })
    }
}

/// Asks the router for a server actor's mailbox.
pub(super) struct ServerMailbox(pub(super) MachineTag);

impl Message for ServerMailbox {
    type Result = Option<Mailbox<ServerPresence>>;
}

impl Handler<ServerMailbox> for PresenceActor {
    type Result = Option<Mailbox<ServerPresence>>;

    fn handle(&mut self, ask: ServerMailbox, ctx: &mut Context<Self>) -> Self::Result {
        // Whoever reaches the server's actor this way comes behind every
        // event routed before.
        self.flush(ctx);
        self.state
            .lock()
            .servers
            .get(&ask.0)
            .map(|slot| slot.mailbox.clone())
    }
}

/// Asks the router for its report.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "PresenceReport")]
pub(super) struct GetReport;

impl Handler<GetReport> for PresenceActor {
    type Result = MessageResult<GetReport>;

    fn handle(&mut self, _: GetReport, ctx: &mut Context<Self>) -> Self::Result {
        self.flush(ctx);
        MessageResult(self.report())
    }
}

/// Why a snapshot was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateServerError {
    /// The recorder refused it (not enabled, or a value of another server).
    #[error(transparent)]
    Presence(#[from] PresenceError),
    /// It could not reach the presence router.
    #[error(transparent)]
    Send(#[from] SendError),
}
