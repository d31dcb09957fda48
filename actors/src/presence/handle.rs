//! The host's handle on presence.

use std::sync::Arc;

use muster::clock::Clock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{Connections, ModelCounts, Value};
use tokio::sync::watch;

use crate::gate::Gate;
use crate::mailbox::{Mailbox, SendError};

use super::router::{
    Follow, GetModelCounts, GetReport, IsEnabled, Request, ServerMailbox, SnapshotOf, UpdateServer,
    Views,
};
use super::router::{PresenceActor, PresenceReport, UpdateServerError};
use super::server::{ServerEvent, ServerPresence};
use super::{TableSnapshot, Tap};

/// The host's handle on presence: the vocabulary of the core's `Recorder`
/// and `Connections`, through the actors. Cheap to clone, `Send + Sync`.
///
/// Changes (`connect`, `disconnect`, `activity`, `server_down`) are stamped
/// with the clock when called and resolve once the router has accepted them
/// (or refused them when its mailbox is full); every query made after they
/// resolve sees them. Reached through [`Muster`](crate::Muster), every call
/// waits while the whole of muster restarts (docs/spec.md §8.3). A change
/// is sent in the poll that answers it, so one whose future is dropped
/// before it answered (while it waited for muster, say) was not sent.
#[derive(Clone)]
pub struct PresenceHandle {
    pub(super) router: Mailbox<PresenceActor>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) enabled: Arc<watch::Sender<bool>>,
    pub(super) gate: Gate,
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
            user_data: user_data.into(),
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

    /// Sends a change, stamped already, once muster runs. Changes are
    /// posted: the router takes every change waiting in one message, and
    /// each is metered in its mailbox as a message of its own.
    async fn event(&self, server: &MachineTag, event: ServerEvent) -> Result<(), SendError> {
        let request = Request::Event(server.clone(), event);
        self.gate
            .call(|| std::future::ready(self.router.post(request).map_err(SendError::from)))
            .await
    }
}
