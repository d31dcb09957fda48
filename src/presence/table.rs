//! The connections held by one API server, and cheap immutable views of them.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{PresenceError, Status, Value, validate_snapshot};
use crate::names::{AgentTag, MachineTag, ModelUuid};

/// One connection as stored: the model and server are those of the group and
/// the table holding it, so they are not repeated per entry.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) agent: AgentTag,
    pub(crate) id: u64,
    pub(crate) user_data: Box<str>,
    pub(crate) last_seen: SystemTime,
    pub(crate) status: Status,
    pub(crate) controller_agent: bool,
}

impl Entry {
    pub(crate) fn to_value(&self, server: &MachineTag, model: &ModelUuid) -> Value {
        Value {
            model: *model,
            server: server.clone(),
            agent: self.agent.clone(),
            controller_agent: self.controller_agent,
            connection_id: self.id,
            status: self.status,
            user_data: self.user_data.to_string(),
            last_seen: self.last_seen,
        }
    }
}

/// A server's entries grouped per model. Both levels sit behind `Arc`s: a view
/// shares them, and a mutation while a view is alive copies only the map of
/// model pointers and the one model it touches.
pub(crate) type ModelMap = HashMap<ModelUuid, Arc<Vec<Entry>>>;

/// Where a connection id's entry sits: its model group and its position there.
#[derive(Clone, Copy, Debug)]
struct Slot {
    model: ModelUuid,
    pos: usize,
}

/// How many connections of a server are in each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Connections that are current.
    pub alive: usize,
    /// Connections held by a server that went away.
    pub missing: usize,
}

impl StatusCounts {
    /// All connections.
    pub fn total(&self) -> usize {
        self.alive + self.missing
    }

    /// The count for one status; Unknown is never stored, so it counts zero.
    pub fn get(&self, status: Status) -> usize {
        match status {
            Status::Unknown => 0,
            Status::Missing => self.missing,
            Status::Alive => self.alive,
        }
    }
}

/// The connections held by one API server: the state a per-server presence
/// actor owns.
///
/// Connect, disconnect and activity are O(1) through an index from connection
/// id to (model, position). Operations take the time as an argument, so the
/// owner decides which clock to read.
pub struct ServerTable {
    server: MachineTag,
    models: Arc<ModelMap>,
    index: HashMap<u64, Slot>,
    missing: usize,
}

impl ServerTable {
    /// An empty table for `server`.
    pub fn new(server: MachineTag) -> Self {
        ServerTable {
            server,
            models: Arc::new(ModelMap::new()),
            index: HashMap::new(),
            missing: 0,
        }
    }

    /// The server whose connections this table holds.
    pub fn server(&self) -> &MachineTag {
        &self.server
    }

    /// The number of connections.
    pub fn count(&self) -> usize {
        self.index.len()
    }

    /// The number of connections in each status, for reports.
    pub fn count_by_status(&self) -> StatusCounts {
        StatusCounts {
            alive: self.index.len() - self.missing,
            missing: self.missing,
        }
    }

    /// Records connection `id` as Alive, seen at `now`. A known id becomes
    /// Alive and seen at `now`; everything else about it stays as first
    /// recorded.
    pub fn connect(
        &mut self,
        model: &ModelUuid,
        agent: &AgentTag,
        id: u64,
        controller_agent: bool,
        user_data: &str,
        now: SystemTime,
    ) {
        match self.index.entry(id) {
            MapEntry::Occupied(slot) => {
                let slot = *slot.get();
                if let Some(entry) = entry_mut(&mut self.models, slot) {
                    if entry.status == Status::Missing {
                        self.missing -= 1;
                    }
                    entry.status = Status::Alive;
                    entry.last_seen = now;
                }
            }
            MapEntry::Vacant(vacant) => {
                let group =
                    Arc::make_mut(Arc::make_mut(&mut self.models).entry(*model).or_default());
                vacant.insert(Slot {
                    model: *model,
                    pos: group.len(),
                });
                push_entry(
                    group,
                    Entry {
                        agent: agent.clone(),
                        id,
                        user_data: user_data.into(),
                        last_seen: now,
                        status: Status::Alive,
                        controller_agent,
                    },
                );
            }
        }
    }

    /// Forgets connection `id`. Returns whether it was known.
    pub fn disconnect(&mut self, id: u64) -> bool {
        let Some(slot) = self.index.remove(&id) else {
            return false;
        };
        let models = Arc::make_mut(&mut self.models);
        let Some(group) = models.get_mut(&slot.model) else {
            return true;
        };
        let group = Arc::make_mut(group);
        if slot.pos >= group.len() {
            return true;
        }
        let removed = group.swap_remove(slot.pos);
        if removed.status == Status::Missing {
            self.missing -= 1;
        }
        // The last entry moved into the freed position.
        if let Some(moved) = group.get(slot.pos)
            && let Some(moved_slot) = self.index.get_mut(&moved.id)
        {
            moved_slot.pos = slot.pos;
        }
        if group.is_empty() {
            models.remove(&slot.model);
        } else {
            shrink_if_sparse(group);
        }
        if self.index.capacity() > 64 && self.index.len() < self.index.capacity() / 4 {
            self.index.shrink_to(self.index.len() * 2);
        }
        true
    }

    /// Marks connection `id` as seen at `now`, leaving its status alone.
    /// Returns whether it was known.
    pub fn activity(&mut self, id: u64, now: SystemTime) -> bool {
        let Some(&slot) = self.index.get(&id) else {
            return false;
        };
        match entry_mut(&mut self.models, slot) {
            Some(entry) => {
                entry.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// Marks every connection Missing: the server went away. Entries are kept
    /// so that agents show as missing rather than unknown. One pass over the
    /// server's entries.
    pub fn mark_down(&mut self) {
        if self.missing == self.index.len() {
            return;
        }
        for group in Arc::make_mut(&mut self.models).values_mut() {
            for entry in Arc::make_mut(group) {
                entry.status = Status::Missing;
            }
        }
        self.missing = self.index.len();
    }

    /// Replaces the table's content with a snapshot this server reported.
    ///
    /// - A value of another server fails with
    ///   [`PresenceError::ServerMismatch`] and nothing changes.
    /// - Alive entries are kept: they reconnected after the server went down,
    ///   and the snapshot may be older than them. Missing entries are dropped.
    /// - Snapshot values are taken in order: one whose id is already Alive
    ///   (kept, or added earlier from this snapshot) only refreshes that
    ///   entry's last seen; any other is added as Alive, seen at `now`.
    ///
    /// Rebuilds the table: one pass over its entries and the snapshot.
    pub fn apply_snapshot(
        &mut self,
        values: Vec<Value>,
        now: SystemTime,
    ) -> Result<(), PresenceError> {
        validate_snapshot(&self.server, &values)?;
        let old = std::mem::replace(self, ServerTable::new(self.server.clone()));
        let models = Arc::try_unwrap(old.models).unwrap_or_else(|shared| (*shared).clone());
        for (model, group) in models {
            let group = Arc::try_unwrap(group).unwrap_or_else(|shared| (*shared).clone());
            for entry in group {
                if entry.status == Status::Alive {
                    self.insert_new(model, entry);
                }
            }
        }
        for value in values {
            if let Some(&slot) = self.index.get(&value.connection_id) {
                if let Some(entry) = entry_mut(&mut self.models, slot) {
                    entry.last_seen = now;
                }
            } else {
                self.insert_new(
                    value.model,
                    Entry {
                        agent: value.agent,
                        id: value.connection_id,
                        user_data: value.user_data.into_boxed_str(),
                        last_seen: now,
                        status: Status::Alive,
                        controller_agent: value.controller_agent,
                    },
                );
            }
        }
        Ok(())
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        *self = ServerTable::new(self.server.clone());
    }

    /// The connection with this id, if known.
    pub fn get(&self, id: u64) -> Option<Value> {
        let slot = self.index.get(&id)?;
        let entry = self.models.get(&slot.model)?.get(slot.pos)?;
        Some(entry.to_value(&self.server, &slot.model))
    }

    /// Every connection, sorted by connection id: what this server reports to
    /// its peers.
    pub fn values(&self) -> Vec<Value> {
        self.view().values()
    }

    /// An immutable view of the table as it is now. O(1): it shares the
    /// table's storage, and later changes to the table do not show in it.
    pub fn view(&self) -> ServerView {
        ServerView {
            server: self.server.clone(),
            models: Arc::clone(&self.models),
            count: self.index.len(),
            missing: self.missing,
        }
    }

    /// Adds an entry whose id is not in the table.
    fn insert_new(&mut self, model: ModelUuid, entry: Entry) {
        if entry.status == Status::Missing {
            self.missing += 1;
        }
        let group = Arc::make_mut(Arc::make_mut(&mut self.models).entry(model).or_default());
        self.index.insert(
            entry.id,
            Slot {
                model,
                pos: group.len(),
            },
        );
        push_entry(group, entry);
    }
}

impl fmt::Debug for ServerTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A table can hold a million entries: print the shape, not the content.
        f.debug_struct("ServerTable")
            .field("server", &self.server)
            .field("models", &self.models.len())
            .field("counts", &self.count_by_status())
            .finish()
    }
}

/// The entry at `slot`, made unique first if a view shares it.
fn entry_mut(models: &mut Arc<ModelMap>, slot: Slot) -> Option<&mut Entry> {
    let group = Arc::make_mut(models).get_mut(&slot.model)?;
    Arc::make_mut(group).get_mut(slot.pos)
}

/// Appends to a model group, growing it by half rather than doubling: a
/// server holds many small groups, and doubling would leave up to half of each
/// unused.
fn push_entry(group: &mut Vec<Entry>, entry: Entry) {
    if group.len() == group.capacity() {
        group.reserve_exact((group.len() / 2).max(4));
    }
    group.push(entry);
}

/// Gives memory back after many disconnects, with hysteresis so that a group
/// hovering around a size does not reallocate on every change.
fn shrink_if_sparse(group: &mut Vec<Entry>) {
    if group.capacity() > 8 && group.len() < group.capacity() / 4 {
        group.shrink_to(group.len() * 2);
    }
}

/// An immutable snapshot of one [`ServerTable`], cheap to take and to clone,
/// and `Send + Sync`: a per-server actor hands these out, and
/// [`Connections::from_views`](super::Connections::from_views) combines them.
#[derive(Clone)]
pub struct ServerView {
    pub(crate) server: MachineTag,
    pub(crate) models: Arc<ModelMap>,
    count: usize,
    missing: usize,
}

impl ServerView {
    /// The server the view is of.
    pub fn server(&self) -> &MachineTag {
        &self.server
    }

    /// The number of connections.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The number of connections in each status.
    pub fn count_by_status(&self) -> StatusCounts {
        StatusCounts {
            alive: self.count - self.missing,
            missing: self.missing,
        }
    }

    /// Every connection, sorted by connection id.
    pub fn values(&self) -> Vec<Value> {
        let mut values: Vec<Value> = self
            .models
            .iter()
            .flat_map(|(model, group)| group.iter().map(|e| e.to_value(&self.server, model)))
            .collect();
        values.sort_unstable_by_key(|value| value.connection_id);
        values
    }
}

impl fmt::Debug for ServerView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerView")
            .field("server", &self.server)
            .field("models", &self.models.len())
            .field("counts", &self.count_by_status())
            .finish()
    }
}
