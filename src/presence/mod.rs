//! Agent presence: which agents hold a current connection to an API server.
//!
//! Each API server records the connections it holds in a [`ServerTable`];
//! servers learn each other's connections from snapshots applied with
//! [`ServerTable::apply_snapshot`]. A [`Recorder`] is the single-process
//! composition of one table per server behind an enabled flag and a clock, and
//! [`Connections`] is the read-only view that answers queries over any set of
//! server tables.
//!
//! The rules are those of Juju's `core/presence` package (docs/spec.md §1).

mod agents;
mod connections;
mod entry;
mod group;
mod hash;
mod index;
mod slab;
mod table;
mod tally;
mod view;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::names::{AgentTag, MachineTag, ModelUuid};

pub use connections::Connections;
pub use table::{ServerTable, StatusCounts};
pub use tally::{ModelCounts, Tally};
pub use view::ServerView;

/// The presence of an agent, ordered `Unknown < Missing < Alive` so that the
/// status of an agent over several connections is the highest of them.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The agent is not in the collection.
    #[default]
    Unknown,
    /// The agent was connected to a server that went away.
    Missing,
    /// The connection is current.
    Alive,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Unknown => "unknown",
            Status::Missing => "missing",
            Status::Alive => "alive",
        })
    }
}

/// One agent connection to one API server, identified by
/// (`server`, `connection_id`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// The model the agent belongs to.
    pub model: ModelUuid,
    /// The API server holding the connection.
    pub server: MachineTag,
    /// The connected agent.
    pub agent: AgentTag,
    /// Whether the agent is a controller agent; such entries never count
    /// towards [`Connections::agent_status`].
    pub controller_agent: bool,
    /// The connection's id, unique per server.
    pub connection_id: u64,
    /// Alive or Missing for a recorded connection.
    pub status: Status,
    /// The string the agent gave at login.
    pub user_data: String,
    /// When the connection was made or last showed activity.
    pub last_seen: SystemTime,
}

/// One agent of a model as a view sees it: its status by
/// [`Connections::agent_status`], and whether it is seen only on
/// controller-agent connections (its status is then Unknown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPresence {
    /// The agent.
    pub agent: AgentTag,
    /// Its status.
    pub status: Status,
    /// Whether every connection of it is a controller agent's.
    pub controller: bool,
}

/// What a presence operation or query refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// `update_server` on a disabled recorder.
    #[error("recorder not enabled")]
    NotEnabled,
    /// A snapshot for one server held a value of another server.
    #[error("connection server mismatch, got \"{got}\" expected \"{expected}\"")]
    ServerMismatch {
        /// The server named in the offending value.
        got: MachineTag,
        /// The server the snapshot was applied to.
        expected: MachineTag,
    },
    /// `agent_status` on a view not narrowed to one model: the same agent tag
    /// can exist in several models.
    #[error("connections not limited to a model, agent ambiguous")]
    AgentAmbiguous,
}

/// Checks that every value of a snapshot belongs to `server`.
///
/// The first value of another server is reported, as Juju does. Callers run
/// this before changing anything, which makes applying a snapshot all or
/// nothing.
pub fn validate_snapshot(server: &MachineTag, values: &[Value]) -> Result<(), PresenceError> {
    match values.iter().find(|value| value.server != *server) {
        Some(value) => Err(PresenceError::ServerMismatch {
            got: value.server.clone(),
            expected: server.clone(),
        }),
        None => Ok(()),
    }
}

/// Records the presence of every agent connection in one process: one
/// [`ServerTable`] per API server, an enabled flag and a clock.
///
/// A new recorder is disabled; only API-server hosts enable theirs. While
/// disabled, every change is ignored (and `update_server` fails).
#[derive(Debug)]
pub struct Recorder {
    clock: Arc<dyn Clock>,
    enabled: bool,
    servers: BTreeMap<MachineTag, ServerTable>,
    /// Every server table counts its models here.
    tally: Tally,
}

impl Recorder {
    /// A disabled, empty recorder that reads time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Recorder {
            clock,
            enabled: false,
            servers: BTreeMap::new(),
            tally: Tally::new(),
        }
    }

    /// Starts recording. Nothing else changes.
    pub fn enable(&mut self) {
        self.enabled = true;
    }

    /// Stops recording and drops every entry.
    pub fn disable(&mut self) {
        self.enabled = false;
        self.servers.clear();
    }

    /// Whether the recorder records.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Records a connection as Alive, seen now. A known (server, id) becomes
    /// Alive and seen now; its model, agent, controller flag and user data
    /// stay as first recorded.
    pub fn connect(
        &mut self,
        server: &MachineTag,
        model: &ModelUuid,
        agent: &AgentTag,
        id: u64,
        controller_agent: bool,
        user_data: &str,
    ) {
        if !self.enabled {
            return;
        }
        let now = self.clock.now();
        let table = match self.servers.get_mut(server) {
            Some(table) => table,
            None => self.table(server),
        };
        table.connect(model, agent, id, controller_agent, user_data, now);
    }

    /// Forgets a connection; an unknown one is ignored.
    pub fn disconnect(&mut self, server: &MachineTag, id: u64) {
        if !self.enabled {
            return;
        }
        if let Some(table) = self.servers.get_mut(server) {
            table.disconnect(id);
        }
    }

    /// Marks a connection as seen now, leaving its status alone.
    pub fn activity(&mut self, server: &MachineTag, id: u64) {
        if !self.enabled {
            return;
        }
        let now = self.clock.now();
        if let Some(table) = self.servers.get_mut(server) {
            table.activity(id, now);
        }
    }

    /// Marks every connection of `server` Missing: the link to it dropped.
    pub fn server_down(&mut self, server: &MachineTag) {
        if !self.enabled {
            return;
        }
        if let Some(table) = self.servers.get_mut(server) {
            table.mark_down();
        }
    }

    /// Replaces what is known of `server` with a snapshot it reported; see
    /// [`ServerTable::apply_snapshot`] for the rules. Other servers are
    /// untouched; on error nothing changes.
    pub fn update_server(
        &mut self,
        server: &MachineTag,
        values: Vec<Value>,
    ) -> Result<(), PresenceError> {
        if !self.enabled {
            return Err(PresenceError::NotEnabled);
        }
        // Validate before creating a table for a server not seen yet, so a
        // refused snapshot leaves no trace.
        validate_snapshot(server, &values)?;
        let now = self.clock.now();
        self.table(server).apply_snapshot(values, now)
    }

    /// A read-only view of every connection, cheap to take: it shares the
    /// tables' storage instead of copying it.
    pub fn connections(&self) -> Connections {
        Connections::from_views(self.servers.values().map(ServerTable::view))
    }

    /// The number of connections per server in each status, for the
    /// presence report.
    pub fn counts_by_server(&self) -> BTreeMap<MachineTag, StatusCounts> {
        self.servers
            .iter()
            .map(|(server, table)| (server.clone(), table.count_by_status()))
            .collect()
    }

    /// The counts of every model with connections, over every server,
    /// sorted by UUID: the same answers a walk of
    /// [`connections`](Recorder::connections) gives, in O(models).
    pub fn model_counts(&self) -> Vec<ModelCounts> {
        self.tally.models()
    }

    /// The table of one server, if the recorder has seen that server.
    pub fn server_table(&self, server: &MachineTag) -> Option<&ServerTable> {
        self.servers.get(server)
    }

    fn table(&mut self, server: &MachineTag) -> &mut ServerTable {
        self.servers
            .entry(server.clone())
            .or_insert_with(|| ServerTable::with_tally(server.clone(), &self.tally))
    }
}
