//! Presence as actors: a router and one `ServerPresence` per API server.
//!
//! The subtree is a nested supervisor with a static child `router` (the
//! [`PresenceActor`]) and a dynamic group `servers`: one [`ServerPresence`]
//! per API server, created on the first connection or snapshot of that
//! server, each owning that server's [`ServerTable`]. The router routes every
//! event to its server's actor, and answers queries by combining the servers'
//! views into one [`Connections`].
//!
//! A server's table lives in a cell that outlives its actor, and the actor's
//! mailbox keeps its messages across a restart ([`Mailbox::keeping`]), so a
//! `ServerPresence` that fails loses nothing but the message it failed on,
//! and no other server notices. Events reach a server's actor in the order
//! they were sent, so a query sees every event sent before it.
//!
//! A host may follow one server's changes through a [`Tap`] and take a
//! copy of its table numbered to match ([`PresenceHandle::snapshot`]), to
//! share that server's connections with other processes; and it may mount
//! children of its own in the subtree, beside the router (see
//! [`Extensions`](crate::host::Extensions)).

mod tap;

pub use tap::{Change, ChangeKind, TAP_CAPACITY, TableSnapshot, Tap};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use actix::prelude::*;
use futures::future::join_all;
use muster::clock::Clock;
use muster::config::{Checker, MAILBOXES, Validate};
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{
    Connections, ModelCounts, PresenceError, ServerTable, ServerView, StatusCounts, Tally, Value,
    validate_snapshot,
};
use serde::{Deserialize, Serialize};
use slog::{Logger, debug, info, warn};
use tokio::sync::watch;

use crate::host::{Gate, PresenceChild};
use crate::mailbox::{Mailbox, SendError};
use crate::supervisor::{
    ChildSpec, DynamicPolicy, Kept, RestartConfig, RestartPolicy, StatePolicy, SupervisorError,
    SupervisorRef, SupervisorSpec,
};

/// Settings of the presence subtree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// Capacity of the router's mailbox, which the host feeds: past it,
    /// events are refused with [`SendError::Overloaded`].
    pub router_mailbox: usize,
    /// Capacity of each server actor's mailbox, which the router feeds. It
    /// also bounds what a failed server actor holds until it is back.
    pub server_mailbox: usize,
    /// Restarts of the router and the server actors.
    pub restart: RestartConfig,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            router_mailbox: 65_536,
            server_mailbox: 1_048_576,
            restart: RestartConfig::default(),
        }
    }
}

impl Validate for PresenceConfig {
    /// Both mailboxes within [`MAILBOXES`], and the restart timing.
    fn check(&self, at: &mut Checker) {
        at.count("router_mailbox", self.router_mailbox, MAILBOXES);
        at.count("server_mailbox", self.server_mailbox, MAILBOXES);
        at.section("restart", &self.restart);
    }
}

/// A change to one server's connections, stamped by the host when it
/// happened.
#[derive(Debug, Clone)]
enum ServerEvent {
    Connect {
        model: ModelUuid,
        agent: AgentTag,
        id: u64,
        controller_agent: bool,
        user_data: String,
        at: SystemTime,
    },
    Disconnect {
        id: u64,
    },
    Activity {
        id: u64,
        at: SystemTime,
    },
    Down,
    Snapshot {
        values: Vec<Value>,
        at: SystemTime,
    },
    /// Marked down and then given the snapshot, in one step: no query sees
    /// the server between the two.
    Replace {
        values: Vec<Value>,
        at: SystemTime,
    },
    Clear,
}

impl Message for ServerEvent {
    type Result = ();
}

impl ServerEvent {
    /// The change a follower of the server hears of; activity stays local.
    fn change(&self) -> Option<ChangeKind> {
        match self {
            ServerEvent::Connect {
                model,
                agent,
                id,
                controller_agent,
                user_data,
                ..
            } => Some(ChangeKind::Connect {
                id: *id,
                model: *model,
                agent: agent.clone(),
                controller_agent: *controller_agent,
                user_data: user_data.clone(),
            }),
            ServerEvent::Disconnect { id } => Some(ChangeKind::Disconnect { id: *id }),
            ServerEvent::Activity { .. } => None,
            ServerEvent::Down
            | ServerEvent::Snapshot { .. }
            | ServerEvent::Replace { .. }
            | ServerEvent::Clear => Some(ChangeKind::Reset),
        }
    }
}

/// Asks a server actor for a view of its table.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "ServerView")]
struct ViewTable;

/// Answers once a server actor has applied every event sent before it.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
struct CaughtUp;

/// One API server's connections, as an actor. Its table is kept across
/// restarts.
pub struct ServerPresence {
    table: Kept<ServerTable>,
    log: Logger,
}

impl Actor for ServerPresence {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        debug!(self.log, "server presence started"; "connections" => self.table.lock().count());
    }
}
crate::supervised!(ServerPresence);

impl Handler<ServerEvent> for ServerPresence {
    type Result = ();

    fn handle(&mut self, event: ServerEvent, _ctx: &mut Context<Self>) {
        let mut table = self.table.lock();
        match event {
            ServerEvent::Connect {
                model,
                agent,
                id,
                controller_agent,
                user_data,
                at,
            } => table.connect(&model, &agent, id, controller_agent, &user_data, at),
            ServerEvent::Disconnect { id } => {
                table.disconnect(id);
            }
            ServerEvent::Activity { id, at } => {
                table.activity(id, at);
            }
            ServerEvent::Down => table.mark_down(),
            ServerEvent::Snapshot { values, at } => {
                // The router validated the snapshot before routing it.
                if let Err(error) = table.apply_snapshot(values, at) {
                    warn!(self.log, "snapshot refused"; "error" => %error);
                }
            }
            ServerEvent::Replace { values, at } => {
                // Alive entries the snapshot no longer holds go missing
                // (docs/spec.md §1.4.3); both steps under one lock, in one
                // handler, so no query sees the table between them.
                table.mark_down();
                if let Err(error) = table.apply_snapshot(values, at) {
                    warn!(self.log, "snapshot refused"; "error" => %error);
                }
            }
            ServerEvent::Clear => table.clear(),
        }
    }
}

impl Handler<CaughtUp> for ServerPresence {
    type Result = ();

    fn handle(&mut self, _: CaughtUp, _ctx: &mut Context<Self>) {}
}

impl Handler<ViewTable> for ServerPresence {
    type Result = MessageResult<ViewTable>;

    fn handle(&mut self, _: ViewTable, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.table.lock().view())
    }
}

/// One server as the router knows it.
#[derive(Clone)]
struct ServerSlot {
    mailbox: Mailbox<ServerPresence>,
    table: Kept<ServerTable>,
}

/// What the router keeps across its own restarts.
#[derive(Default)]
struct RouterState {
    enabled: bool,
    servers: BTreeMap<MachineTag, ServerSlot>,
    /// The per-model counts every server's table keeps up to date.
    tally: Tally,
    taps: tap::Taps,
}

/// The presence router: owns one [`ServerPresence`] per API server and
/// routes events and queries to them.
pub struct PresenceActor {
    state: Kept<RouterState>,
    enabled: Arc<watch::Sender<bool>>,
    servers: SupervisorRef,
    server_mailbox: usize,
    log: Logger,
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
    }
}
crate::supervised!(PresenceActor);

impl PresenceActor {
    fn start_server(&self, tag: &MachineTag, slot: &ServerSlot, ctx: &mut Context<Self>) {
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
    fn server(&mut self, tag: &MachineTag, ctx: &mut Context<Self>) -> ServerSlot {
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

    fn route(&mut self, server: &MachineTag, event: ServerEvent, ctx: &mut Context<Self>) {
        if !self.state.lock().enabled {
            return;
        }
        // Only a connection or a snapshot makes a server known; the other
        // events about an unknown server have nothing to change.
        let slot = match event {
            ServerEvent::Connect { .. }
            | ServerEvent::Snapshot { .. }
            | ServerEvent::Replace { .. } => Some(self.server(server, ctx)),
            _ => self.state.lock().servers.get(server).cloned(),
        };
        let Some(slot) = slot else { return };
        let change = self
            .state
            .lock()
            .taps
            .follows(server)
            .then(|| event.change())
            .flatten();
        match slot.mailbox.do_send(event) {
            Ok(()) => {
                if let Some(change) = change {
                    self.state.lock().taps.changed(server, change);
                }
            }
            Err(error) => {
                warn!(self.log, "presence event refused"; "server" => %server, "error" => %error)
            }
        }
    }

    fn report(&self) -> PresenceReport {
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
enum Request {
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
                self.state.lock().enabled = true;
                self.enabled.send_replace(true);
                info!(self.log, "presence recording enabled");
            }
            Request::Disable => {
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
struct UpdateServer {
    server: MachineTag,
    values: Vec<Value>,
    at: SystemTime,
    /// Whether the server's table is marked down first, in the same step.
    replace: bool,
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
struct IsEnabled;

impl Handler<IsEnabled> for PresenceActor {
    type Result = bool;

    fn handle(&mut self, _: IsEnabled, _ctx: &mut Context<Self>) -> bool {
        self.state.lock().enabled
    }
}

/// Asks the router for a view of every server's table.
#[derive(Debug, Clone, Copy)]
struct Views;

impl Message for Views {
    type Result = Result<Vec<ServerView>, SendError>;
}

impl Handler<Views> for PresenceActor {
    type Result = ResponseFuture<Result<Vec<ServerView>, SendError>>;

    fn handle(&mut self, _: Views, _ctx: &mut Context<Self>) -> Self::Result {
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
struct Follow(MachineTag);

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
struct SnapshotOf(MachineTag);

impl Message for SnapshotOf {
    type Result = Result<TableSnapshot, SendError>;
}

impl Handler<SnapshotOf> for PresenceActor {
    type Result = ResponseFuture<Result<TableSnapshot, SendError>>;

    fn handle(&mut self, ask: SnapshotOf, _ctx: &mut Context<Self>) -> Self::Result {
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
struct GetModelCounts;

impl Message for GetModelCounts {
    type Result = Result<Vec<ModelCounts>, SendError>;
}

impl Handler<GetModelCounts> for PresenceActor {
    type Result = ResponseFuture<Result<Vec<ModelCounts>, SendError>>;

    fn handle(&mut self, _: GetModelCounts, _ctx: &mut Context<Self>) -> Self::Result {
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
struct ServerMailbox(MachineTag);

impl Message for ServerMailbox {
    type Result = Option<Mailbox<ServerPresence>>;
}

impl Handler<ServerMailbox> for PresenceActor {
    type Result = Option<Mailbox<ServerPresence>>;

    fn handle(&mut self, ask: ServerMailbox, _ctx: &mut Context<Self>) -> Self::Result {
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
struct GetReport;

impl Handler<GetReport> for PresenceActor {
    type Result = MessageResult<GetReport>;

    fn handle(&mut self, _: GetReport, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.report())
    }
}

/// Why a snapshot was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateServerError {
    /// The recorder refused it (not enabled, or a value of another server).
    #[error(transparent)]
    Presence(#[from] PresenceError),
    /// It could not reach the presence router.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// The host's handle on presence: the vocabulary of the core's `Recorder`
/// and `Connections`, through the actors. Cheap to clone, `Send + Sync`.
///
/// Changes (`connect`, `disconnect`, `activity`, `server_down`) are stamped
/// with the clock when called and resolve once the router has accepted them
/// (or refused them when its mailbox is full); every query made after they
/// resolve sees them. Reached through [`Muster`](crate::Muster), every call
/// waits while the whole of muster restarts (docs/spec.md §8.3).
#[derive(Clone)]
pub struct PresenceHandle {
    router: Mailbox<PresenceActor>,
    clock: Arc<dyn Clock>,
    enabled: Arc<watch::Sender<bool>>,
    gate: Gate,
}

impl PresenceHandle {
    /// The same handle, its calls passing `gate`.
    pub(crate) fn gated(mut self, gate: Gate) -> Self {
        self.gate = gate;
        self
    }

    /// Starts recording.
    pub async fn enable(&self) -> Result<(), SendError> {
        self.gate.call(|| self.router.send(Request::Enable)).await
    }

    /// Stops recording and drops every entry.
    pub async fn disable(&self) -> Result<(), SendError> {
        self.gate.call(|| self.router.send(Request::Disable)).await
    }

    /// Whether presence is being recorded.
    pub async fn is_enabled(&self) -> Result<bool, SendError> {
        self.gate.call(|| self.router.send(IsEnabled)).await
    }

    /// Follows whether presence is being recorded, without a round trip to
    /// the router: the value changes once the router has taken an
    /// [`enable`](Self::enable) or [`disable`](Self::disable), so a change
    /// sent after reading `true` is recorded unless a disable overtook it.
    pub fn watch_enabled(&self) -> watch::Receiver<bool> {
        self.enabled.subscribe()
    }

    /// Records a connection as Alive, seen now (see `Recorder::connect`).
    pub async fn connect(
        &self,
        server: &MachineTag,
        model: &ModelUuid,
        agent: &AgentTag,
        id: u64,
        controller_agent: bool,
        user_data: &str,
    ) -> Result<(), SendError> {
        let event = ServerEvent::Connect {
            model: *model,
            agent: agent.clone(),
            id,
            controller_agent,
            user_data: user_data.to_owned(),
            at: self.clock.now(),
        };
        self.event(server, event).await
    }

    /// Forgets a connection; an unknown one is ignored.
    pub async fn disconnect(&self, server: &MachineTag, id: u64) -> Result<(), SendError> {
        self.event(server, ServerEvent::Disconnect { id }).await
    }

    /// Marks a connection as seen now, leaving its status alone.
    pub async fn activity(&self, server: &MachineTag, id: u64) -> Result<(), SendError> {
        let at = self.clock.now();
        self.event(server, ServerEvent::Activity { id, at }).await
    }

    /// Marks every connection of `server` Missing: the link to it dropped.
    pub async fn server_down(&self, server: &MachineTag) -> Result<(), SendError> {
        self.event(server, ServerEvent::Down).await
    }

    /// Replaces what is known of `server` with a snapshot it reported (see
    /// `Recorder::update_server`); on error nothing changes.
    pub async fn update_server(
        &self,
        server: &MachineTag,
        values: Vec<Value>,
    ) -> Result<(), UpdateServerError> {
        self.snapshot_of(server, values, false).await
    }

    /// Replaces everything known of `server` with a snapshot it reported,
    /// as one change: its connections are marked missing and the snapshot
    /// applied in one step of its actor, so that a connection the snapshot
    /// no longer holds goes missing while no query ever sees the server's
    /// other connections missing in between (as one would between a
    /// [`server_down`](Self::server_down) and an
    /// [`update_server`](Self::update_server)). On error nothing changes.
    pub async fn replace_server(
        &self,
        server: &MachineTag,
        values: Vec<Value>,
    ) -> Result<(), UpdateServerError> {
        self.snapshot_of(server, values, true).await
    }

    async fn snapshot_of(
        &self,
        server: &MachineTag,
        values: Vec<Value>,
        replace: bool,
    ) -> Result<(), UpdateServerError> {
        let update = UpdateServer {
            server: server.clone(),
            values,
            at: self.clock.now(),
            replace,
        };
        Ok(self.gate.call(|| self.router.send(update)).await??)
    }

    /// A read-only view of every connection.
    pub async fn connections(&self) -> Result<Connections, SendError> {
        let views = self.gate.call(|| self.router.send(Views)).await??;
        Ok(Connections::from_views(views))
    }

    /// Every model with connections, with its counts of connections and
    /// agents by status (see `Recorder::model_counts`), sorted by UUID. The
    /// counts are kept as events arrive, so this costs O(models) however
    /// many connections there are; it sees every change made before it.
    pub async fn model_counts(&self) -> Result<Vec<ModelCounts>, SendError> {
        self.router.send(GetModelCounts).await?
    }

    /// Connections per server and status.
    pub async fn report(&self) -> Result<PresenceReport, SendError> {
        self.gate.call(|| self.router.send(GetReport)).await
    }

    /// Follows the connects and disconnects of `server` from now on,
    /// numbered (see [`Tap`]): what a host sends to the other API servers
    /// when it shares its own server's connections with them.
    pub async fn tap(&self, server: &MachineTag) -> Result<Tap, SendError> {
        self.gate
            .call(|| self.router.send(Follow(server.clone())))
            .await
    }

    /// A copy of `server`'s connections with the number of the last change
    /// it holds (see [`Tap`]; 0 while no one follows the server): every
    /// change numbered after it is one the copy does not hold. An unknown
    /// server has no connections.
    pub async fn snapshot(&self, server: &MachineTag) -> Result<TableSnapshot, SendError> {
        self.gate
            .call(|| self.router.send(SnapshotOf(server.clone())))
            .await?
    }

    /// The mailbox of a server's actor, once that server is known: for
    /// operators and tests that need to reach one server's actor.
    pub async fn server_mailbox(
        &self,
        server: &MachineTag,
    ) -> Result<Option<Mailbox<ServerPresence>>, SendError> {
        self.gate
            .call(|| self.router.send(ServerMailbox(server.clone())))
            .await
    }

    /// The router's mailbox, for operators and tests that need to reach the
    /// router itself. What is sent through it does not wait for a restart
    /// of the whole of muster.
    pub fn router_mailbox(&self) -> &Mailbox<PresenceActor> {
        &self.router
    }

    /// Sends a change, stamped already, once muster runs.
    async fn event(&self, server: &MachineTag, event: ServerEvent) -> Result<(), SendError> {
        let request = Request::Event(server.clone(), event);
        self.gate
            .call(|| std::future::ready(self.router.do_send(request).map_err(SendError::from)))
            .await
    }
}

/// Builds the presence subtree as a nested supervisor child called `name`,
/// and the handle that reaches it. Presence starts disabled, as a recorder
/// does.
pub fn presence_child(
    name: &str,
    config: &PresenceConfig,
    clock: Arc<dyn Clock>,
) -> Result<(ChildSpec, PresenceHandle), SupervisorError> {
    presence_subtree(name, config, clock, Vec::new())
}

/// [`presence_child`] with the host's own children beside the router, each
/// made from the subtree's handle; they start after the router, in the
/// order given. A name the subtree's own children take (`router`, or a
/// machine tag, which names a server's actor) is refused as a duplicate.
pub(crate) fn presence_subtree(
    name: &str,
    config: &PresenceConfig,
    clock: Arc<dyn Clock>,
    extra: Vec<PresenceChild>,
) -> Result<(ChildSpec, PresenceHandle), SupervisorError> {
    let subtree = SupervisorRef::new();
    let router = Mailbox::keeping(config.router_mailbox);
    let server_mailbox = config.server_mailbox;
    let start_servers = subtree.clone();
    let enabled = Arc::new(watch::channel(false).0);
    let router_enabled = enabled.clone();
    let router_child = ChildSpec::actor("router", &router, move |cx| {
        Ok(PresenceActor {
            state: cx.kept(RouterState::default)?,
            enabled: router_enabled.clone(),
            servers: start_servers.clone(),
            server_mailbox,
            log: cx.logger().clone(),
        })
    })
    .state(StatePolicy::Kept)
    .report(router.reporter(|router: &PresenceActor| {
        serde_json::to_value(router.report()).unwrap_or_default()
    }));
    let handle = PresenceHandle {
        router,
        clock,
        enabled,
        gate: Gate::default(),
    };
    let mut spec = SupervisorSpec::new(config.restart.clone()).child(router_child);
    for make in extra {
        let child = make(&handle);
        if child.name().parse::<MachineTag>().is_ok() {
            return Err(SupervisorError::Duplicate {
                supervisor: name.to_owned(),
                child: child.name().to_owned(),
            });
        }
        spec = spec.child(child);
    }
    let spec = spec.dynamic(DynamicPolicy {
        group: "servers".into(),
        restart: RestartPolicy::Permanent,
        state: StatePolicy::Kept,
    });
    let child = ChildSpec::supervisor(name, spec, &subtree)?;
    Ok((child, handle))
}
