//! The connections held by one API server.
//!
//! Layout: the entries of a server (`Entry`) are grouped per model, each
//! group's entries in one `Arc`-shared allocation (`Group`); the groups sit
//! in a slab of model slots cut into `Arc`-shared chunks (`Models`), and the
//! slab is itself behind an `Arc`. A `ServerView` clones the outer `Arc`; a
//! mutation while a view is alive copies the slab's chunk pointers, one chunk
//! and the one model's entries it touches. An `Index` maps a connection id
//! straight to (model slot, position), so connect, disconnect and activity
//! touch one group and never search.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::agents::Agents;
use super::entry::Entry;
use super::index::{Index, Slot};
use super::slab::Models;
use super::tally::{Counts, Tally};
use super::view::ServerView;
use super::{PresenceError, Status, Value, validate_snapshot};
use crate::names::{AgentTag, MachineTag, ModelUuid};

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
/// Connect, disconnect and activity are O(1). Operations take the time as an
/// argument, so the owner decides which clock to read.
pub struct ServerTable {
    server: MachineTag,
    models: Arc<Models>,
    index: Index,
    missing: usize,
    tally: Option<Tally>,
    /// The agent tags of a table without a tally; one with a tally holds
    /// them in the tally, shared with the other tables.
    agents: Agents,
}

impl ServerTable {
    /// An empty table for `server`.
    pub fn new(server: MachineTag) -> Self {
        ServerTable {
            server,
            models: Arc::default(),
            index: Index::default(),
            missing: 0,
            tally: None,
            agents: Agents::default(),
        }
    }

    /// An empty table for `server` that keeps `tally` up to date: every
    /// connection it records, changes, forgets, clears, or drops with
    /// itself is counted there. Tables of several servers share one tally
    /// to count their models over all of them.
    pub fn with_tally(server: MachineTag, tally: &Tally) -> Self {
        let mut table = ServerTable::new(server);
        table.tally = Some(tally.clone());
        table
    }

    /// The tally this table counts its connections in, if any.
    pub fn tally(&self) -> Option<&Tally> {
        self.tally.as_ref()
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
        if let Some(slot) = self.index.get(id) {
            let Some(group) = Arc::make_mut(&mut self.models).group_mut(slot.model) else {
                return;
            };
            let counted = group.tally;
            if let Some(entry) = group.get_mut(slot.pos) {
                let was = entry.set_status(Status::Alive);
                if was == Status::Missing {
                    self.missing -= 1;
                }
                entry.see(now);
                if let (Some(tally), Status::Missing) = (&self.tally, was) {
                    tally.lock().status_changed(counted, entry, was);
                }
            }
            return;
        }
        let models = Arc::make_mut(&mut self.models);
        match &self.tally {
            Some(tally) => {
                // One lock for the tag and the counts.
                let mut counts = tally.lock();
                let agent = counts.agents.intern(agent);
                // The counts' index is found while the table's own lookups
                // are under way: neither waits for the other's memory.
                let counted = counts.model_index(model);
                let entry = Entry::new(id, agent, controller_agent, user_data, now);
                match insert(models, model, entry, counted) {
                    Some(slot) => {
                        self.index.insert(id, slot);
                        count_added(&mut counts, models, slot);
                    }
                    None => counts.unused(counted),
                }
            }
            None => {
                let agent = self.agents.intern(agent);
                let entry = Entry::new(id, agent, controller_agent, user_data, now);
                if let Some(slot) = insert(models, model, entry, u32::MAX) {
                    self.index.insert(id, slot);
                }
            }
        }
    }

    /// Forgets connection `id`. Returns whether it was known.
    pub fn disconnect(&mut self, id: u64) -> bool {
        let Some(slot) = self.index.remove(id) else {
            return false;
        };
        let models = Arc::make_mut(&mut self.models);
        let Some(group) = models.group_mut(slot.model) else {
            return true;
        };
        if let Some(removed) = group.remove(slot.pos) {
            if removed.status() == Status::Missing {
                self.missing -= 1;
            }
            if let Some(tally) = &self.tally {
                tally.lock().removed(group.tally, &removed);
            }
        }
        if group.len() == 0 {
            models.release(slot.model);
        } else if group.is_sparse() {
            let index = &mut self.index;
            group.compact(|id, pos| {
                if let Some(moved) = index.get_mut(id) {
                    *moved = Slot {
                        model: slot.model,
                        pos,
                    };
                }
            });
        }
        true
    }

    /// Marks connection `id` as seen at `now`, leaving its status alone.
    /// Returns whether it was known.
    pub fn activity(&mut self, id: u64, now: SystemTime) -> bool {
        let Some(slot) = self.index.get(id) else {
            return false;
        };
        match entry_mut(&mut self.models, slot) {
            Some(entry) => {
                entry.see(now);
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
        let mut counts = self.tally.as_ref().map(Tally::lock);
        for (_, group) in Arc::make_mut(&mut self.models).groups_mut() {
            let counted = group.tally;
            for entry in group.iter_mut() {
                let was = entry.set_status(Status::Missing);
                if let Some(counts) = counts.as_mut() {
                    counts.status_changed(counted, entry, was);
                }
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
        let models = std::mem::take(&mut self.models);
        self.index = Index::default();
        self.missing = 0;
        let models = Arc::try_unwrap(models).unwrap_or_else(|shared| (*shared).clone());
        // A clone of the handle, so that the lock does not hold `self`.
        let tally = self.tally.clone();
        let mut counts = tally.as_ref().map(Tally::lock);
        for (model, mut group) in models.into_groups() {
            let counted = group.tally;
            for entry in group.drain() {
                if entry.status() == Status::Alive {
                    // Kept, and already counted.
                    self.insert_new(&model, entry, counted);
                } else if let Some(counts) = counts.as_mut() {
                    counts.removed(counted, &entry);
                }
            }
        }
        for value in values {
            if let Some(slot) = self.index.get(value.connection_id) {
                if let Some(entry) = entry_mut(&mut self.models, slot) {
                    entry.see(now);
                }
                continue;
            }
            let (agent, counted) = match counts.as_mut() {
                Some(counts) => (
                    counts.agents.intern(&value.agent),
                    counts.model_index(&value.model),
                ),
                None => (self.agents.intern(&value.agent), u32::MAX),
            };
            let entry = Entry::new(
                value.connection_id,
                agent,
                value.controller_agent,
                &value.user_data,
                now,
            );
            match (
                self.insert_new(&value.model, entry, counted),
                counts.as_mut(),
            ) {
                (Some(slot), Some(counts)) => count_added(counts, &self.models, slot),
                (None, Some(counts)) => counts.unused(counted),
                (_, None) => {}
            }
        }
        Ok(())
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.uncount_all();
        self.models = Arc::default();
        self.index = Index::default();
        self.missing = 0;
    }

    /// The connection with this id, if known.
    pub fn get(&self, id: u64) -> Option<Value> {
        let slot = self.index.get(id)?;
        let (model, group) = self.models.slot(slot.model)?;
        let entry = group.get(slot.pos)?;
        Some(entry.to_value(&self.server, model))
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

    /// Adds an entry whose id is not in the table, without counting it in
    /// the tally; answers where it went.
    fn insert_new(&mut self, model: &ModelUuid, entry: Entry, counted: u32) -> Option<Slot> {
        let (id, missing) = (entry.id, entry.status() == Status::Missing);
        let slot = insert(Arc::make_mut(&mut self.models), model, entry, counted)?;
        self.index.insert(id, slot);
        if missing {
            self.missing += 1;
        }
        Some(slot)
    }

    /// Takes every entry out of the tally; the entries stay.
    fn uncount_all(&self) {
        let Some(tally) = &self.tally else {
            return;
        };
        let mut counts = tally.lock();
        for (_, group) in self.models.iter() {
            for entry in group.iter() {
                counts.removed(group.tally, entry);
            }
        }
    }
}

impl Drop for ServerTable {
    /// A dropped table's connections leave the tally with it.
    fn drop(&mut self) {
        self.uncount_all();
    }
}

/// Counts the entry at `slot` of `models` in `counts`.
fn count_added(counts: &mut Counts, models: &Models, slot: Slot) {
    if let Some((_, group)) = models.slot(slot.model)
        && let Some(entry) = group.get(slot.pos)
    {
        counts.added(group.tally, entry);
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

/// Stores an entry in its model's group, whose counts are at `counted` in
/// the tally; `None` only past the slab's and the group's `u32` addressing,
/// which no real server reaches.
fn insert(models: &mut Models, model: &ModelUuid, entry: Entry, counted: u32) -> Option<Slot> {
    let slot = models.slot_of(model)?;
    let group = models.group_mut(slot)?;
    group.tally = counted;
    match group.insert(entry) {
        Some(pos) => Some(Slot { model: slot, pos }),
        None => {
            if group.len() == 0 {
                models.release(slot);
            }
            None
        }
    }
}

/// The entry at `slot`, made unique first if a view shares it.
fn entry_mut(models: &mut Arc<Models>, slot: Slot) -> Option<&mut Entry> {
    Arc::make_mut(models)
        .group_mut(slot.model)?
        .get_mut(slot.pos)
}
