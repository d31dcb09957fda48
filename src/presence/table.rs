//! The connections held by one API server, and cheap immutable views of them.
//!
//! Layout: the entries of a server are grouped per model, each group's
//! entries in one `Arc`-shared allocation; the groups sit in a slab of model
//! slots cut into `Arc`-shared chunks, and the slab is itself behind an `Arc`.
//! A view clones the outer `Arc`; a mutation while a view is alive copies the
//! slab's chunk pointers, one chunk and the one model's entries it touches.
//! An index maps a connection id straight to (model slot, position), so
//! connect, disconnect and activity touch one group and never search.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::index::{Index, Slot};
use super::{PresenceError, Status, Value, validate_snapshot};
use crate::names::{AgentTag, MachineTag, ModelUuid};

/// One connection as stored: the model and server are those of the group and
/// the table holding it, so they are not repeated per entry.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) agent: AgentTag,
    pub(crate) id: u64,
    pub(crate) user_data: UserData,
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
            user_data: self.user_data.as_str().to_owned(),
            last_seen: self.last_seen,
        }
    }
}

/// Bytes of user data kept inline: with the tag and the length, the type is
/// as big as the string it replaces plus one word.
const INLINE_USER_DATA: usize = 22;

/// The string an agent gave at login. Agents send short strings, which are
/// kept inline: nothing to allocate on connect, nothing to free on disconnect.
#[derive(Clone, Debug)]
pub(crate) enum UserData {
    Inline {
        len: u8,
        bytes: [u8; INLINE_USER_DATA],
    },
    Heap(Box<str>),
}

impl UserData {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // The bytes were copied whole from a `str`, so they are UTF-8.
            UserData::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            UserData::Heap(text) => text,
        }
    }
}

impl From<&str> for UserData {
    fn from(text: &str) -> Self {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= INLINE_USER_DATA => {
                let mut bytes = [0; INLINE_USER_DATA];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                UserData::Inline { len, bytes }
            }
            _ => UserData::Heap(text.into()),
        }
    }
}

impl From<String> for UserData {
    fn from(text: String) -> Self {
        if text.len() <= INLINE_USER_DATA {
            UserData::from(text.as_str())
        } else {
            UserData::Heap(text.into_boxed_str())
        }
    }
}

/// A position in a group: an entry, or a vacancy linked to the next one.
#[derive(Clone, Debug)]
enum Place {
    Taken(Entry),
    Vacant { next: u32 },
}

/// The end of a group's list of vacancies.
const END: u32 = u32::MAX;

impl Place {
    const SPARE: Place = Place::Vacant { next: END };

    fn entry(&self) -> Option<&Entry> {
        match self {
            Place::Taken(entry) => Some(entry),
            Place::Vacant { .. } => None,
        }
    }

    fn entry_mut(&mut self) -> Option<&mut Entry> {
        match self {
            Place::Taken(entry) => Some(entry),
            Place::Vacant { .. } => None,
        }
    }

    /// The entry, leaving the place vacant with `next` as its link.
    fn take(&mut self, next: u32) -> Option<Entry> {
        match std::mem::replace(self, Place::Vacant { next }) {
            Place::Taken(entry) => Some(entry),
            vacant => {
                *self = vacant;
                None
            }
        }
    }
}

/// The entries of one model on one server.
///
/// The entries sit in one shared allocation together with its reference
/// count, so reaching an entry from the slab is a single hop; a view shares
/// the allocation, and a mutation while a view is alive copies this one
/// model's entries. A disconnect leaves a vacant place that the model's next
/// connection reuses, instead of moving another entry into it: a move would
/// cost a second random index update. Vacancies are linked through the places
/// themselves, so that neither touches another allocation. Groups are
/// compacted once mostly vacant.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    /// Places `..used` hold entries or vacancies; the rest is spare room.
    places: Arc<[Place]>,
    used: u32,
    /// The first vacancy, or [`END`].
    vacant_head: u32,
    vacant: u32,
}

impl Default for Group {
    fn default() -> Self {
        Group {
            places: Arc::default(),
            used: 0,
            vacant_head: END,
            vacant: 0,
        }
    }
}

impl Group {
    /// The entries, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.places[..self.used as usize]
            .iter()
            .filter_map(Place::entry)
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        (self.used - self.vacant) as usize
    }

    fn get(&self, pos: u32) -> Option<&Entry> {
        self.places[..self.used as usize].get(pos as usize)?.entry()
    }

    /// The places in use, made unique first if a view shares them.
    fn places_mut(&mut self) -> &mut [Place] {
        let used = self.used as usize;
        &mut Arc::make_mut(&mut self.places)[..used]
    }

    fn get_mut(&mut self, pos: u32) -> Option<&mut Entry> {
        self.places_mut().get_mut(pos as usize)?.entry_mut()
    }

    /// Every entry, mutably.
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.places_mut().iter_mut().filter_map(Place::entry_mut)
    }

    /// Takes every entry out, leaving the group empty; copies them instead
    /// if a view shares them.
    fn drain(&mut self) -> Vec<Entry> {
        let mut group = std::mem::take(self);
        let used = group.used as usize;
        match Arc::get_mut(&mut group.places) {
            Some(places) => places[..used]
                .iter_mut()
                .filter_map(|place| place.take(END))
                .collect(),
            None => group.places[..used]
                .iter()
                .filter_map(Place::entry)
                .cloned()
                .collect(),
        }
    }

    /// Stores `entry` and returns its position, or `None` past the `u32`
    /// positions a group can address (hundreds of gigabytes of entries).
    fn insert(&mut self, entry: Entry) -> Option<u32> {
        if self.vacant_head != END {
            let pos = self.vacant_head;
            let place = self.places_mut().get_mut(pos as usize)?;
            let Place::Vacant { next } = *place else {
                return None;
            };
            *place = Place::Taken(entry);
            self.vacant_head = next;
            self.vacant -= 1;
            return Some(pos);
        }
        let pos = self.used;
        if pos as usize == self.places.len() {
            // Grow by half rather than doubling: a server holds many small
            // groups, and doubling would leave up to half of each unused.
            let room = self.places.len() + (self.places.len() / 2).max(4);
            self.reallocate(room);
        }
        self.used = pos.checked_add(1)?;
        *self.places_mut().get_mut(pos as usize)? = Place::Taken(entry);
        Some(pos)
    }

    fn remove(&mut self, pos: u32) -> Option<Entry> {
        let next = self.vacant_head;
        let removed = self.places_mut().get_mut(pos as usize)?.take(next)?;
        self.vacant_head = pos;
        self.vacant += 1;
        Some(removed)
    }

    /// Moves the places into an allocation with room for `room`, keeping
    /// their positions; copies them instead if a view shares them.
    fn reallocate(&mut self, room: usize) {
        let used = self.used as usize;
        let spare = std::iter::repeat_n(Place::SPARE, room.saturating_sub(used));
        self.places = match Arc::get_mut(&mut self.places) {
            Some(places) => places[..used]
                .iter_mut()
                .map(|place| std::mem::replace(place, Place::SPARE))
                .chain(spare)
                .collect(),
            None => self.places[..used].iter().cloned().chain(spare).collect(),
        };
    }

    /// Whether vacancies outnumber entries three to one; compacting then
    /// costs less than the disconnects that emptied the group.
    fn is_sparse(&self) -> bool {
        self.used > 8 && self.len() * 4 < self.used as usize
    }
}

/// Model slots per chunk of the slab.
const CHUNK: usize = 64;

/// One chunk of model slots.
type Chunk = [Option<(ModelUuid, Group)>; CHUNK];

/// A server's model groups in a slab, so that the index can name a group by
/// a small number and reach it without hashing the model UUID.
///
/// The slab is cut into chunks behind `Arc`s, and the UUID map sits behind
/// its own `Arc`: when a view shares the slab, the first mutation copies one
/// pointer per chunk and one chunk, not one pointer per model.
#[derive(Clone, Debug, Default)]
pub(crate) struct Models {
    by_uuid: Arc<HashMap<ModelUuid, u32>>,
    chunks: Vec<Arc<Chunk>>,
    /// Slots below this have been handed out at least once.
    used: u32,
    free: Vec<u32>,
}

impl Models {
    /// The group of a model, if the server holds connections of it.
    pub(crate) fn get(&self, model: &ModelUuid) -> Option<(&ModelUuid, &Group)> {
        self.slot(*self.by_uuid.get(model)?)
    }

    /// Every model and its group.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&ModelUuid, &Group)> {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.iter().flatten())
            .map(|(model, group)| (model, group))
    }

    /// The number of models.
    pub(crate) fn len(&self) -> usize {
        self.by_uuid.len()
    }

    fn slot(&self, slot: u32) -> Option<(&ModelUuid, &Group)> {
        let chunk = self.chunks.get(slot as usize / CHUNK)?;
        let (model, group) = chunk[slot as usize % CHUNK].as_ref()?;
        Some((model, group))
    }

    fn slot_mut(&mut self, slot: u32) -> Option<&mut Option<(ModelUuid, Group)>> {
        let chunk = self.chunks.get_mut(slot as usize / CHUNK)?;
        Some(&mut Arc::make_mut(chunk)[slot as usize % CHUNK])
    }

    /// The group in `slot`, its chunk made unique first if a view shares it.
    fn group_mut(&mut self, slot: u32) -> Option<&mut Group> {
        let (_, group) = self.slot_mut(slot)?.as_mut()?;
        Some(group)
    }

    /// Every group, each chunk made unique first.
    fn groups_mut(&mut self) -> impl Iterator<Item = &mut Group> {
        self.chunks
            .iter_mut()
            .flat_map(|chunk| Arc::make_mut(chunk).iter_mut().flatten())
            .map(|(_, group)| group)
    }

    /// Every model and its group, taken out of the slab.
    fn into_groups(self) -> impl Iterator<Item = (ModelUuid, Group)> {
        self.chunks.into_iter().flat_map(|chunk| {
            let chunk = Arc::try_unwrap(chunk).unwrap_or_else(|shared| (*shared).clone());
            chunk.into_iter().flatten()
        })
    }

    /// The slot of a model, allocated if the model has none.
    fn slot_of(&mut self, model: &ModelUuid) -> Option<u32> {
        if let Some(&slot) = self.by_uuid.get(model) {
            return Some(slot);
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = self.used;
                if slot as usize == self.chunks.len() * CHUNK {
                    self.chunks.push(Arc::new(std::array::from_fn(|_| None)));
                }
                self.used = slot.checked_add(1)?;
                slot
            }
        };
        *self.slot_mut(slot)? = Some((*model, Group::default()));
        Arc::make_mut(&mut self.by_uuid).insert(*model, slot);
        Some(slot)
    }

    /// Frees the slot of a model that has no connections left.
    fn release(&mut self, slot: u32) {
        if let Some((model, _)) = self.slot_mut(slot).and_then(Option::take) {
            Arc::make_mut(&mut self.by_uuid).remove(&model);
            self.free.push(slot);
        }
    }
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
/// Connect, disconnect and activity are O(1). Operations take the time as an
/// argument, so the owner decides which clock to read.
pub struct ServerTable {
    server: MachineTag,
    models: Arc<Models>,
    index: Index,
    missing: usize,
}

impl ServerTable {
    /// An empty table for `server`.
    pub fn new(server: MachineTag) -> Self {
        ServerTable {
            server,
            models: Arc::default(),
            index: Index::default(),
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
        if let Some(slot) = self.index.get(id) {
            if let Some(entry) = entry_mut(&mut self.models, slot) {
                if entry.status == Status::Missing {
                    self.missing -= 1;
                }
                entry.status = Status::Alive;
                entry.last_seen = now;
            }
            return;
        }
        let entry = Entry {
            agent: agent.clone(),
            id,
            user_data: user_data.into(),
            last_seen: now,
            status: Status::Alive,
            controller_agent,
        };
        if let Some(slot) = insert(Arc::make_mut(&mut self.models), model, entry) {
            self.index.insert(id, slot);
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
        if group
            .remove(slot.pos)
            .is_some_and(|e| e.status == Status::Missing)
        {
            self.missing -= 1;
        }
        if group.len() == 0 {
            models.release(slot.model);
        } else if group.is_sparse() {
            compact(group, slot.model, &mut self.index);
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
        for group in Arc::make_mut(&mut self.models).groups_mut() {
            for entry in group.iter_mut() {
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
        for (model, mut group) in models.into_groups() {
            for entry in group.drain() {
                if entry.status == Status::Alive {
                    self.insert_new(&model, entry);
                }
            }
        }
        for value in values {
            if let Some(slot) = self.index.get(value.connection_id) {
                if let Some(entry) = entry_mut(&mut self.models, slot) {
                    entry.last_seen = now;
                }
            } else {
                self.insert_new(
                    &value.model,
                    Entry {
                        agent: value.agent,
                        id: value.connection_id,
                        user_data: UserData::from(value.user_data),
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

    /// Adds an entry whose id is not in the table.
    fn insert_new(&mut self, model: &ModelUuid, entry: Entry) {
        let (id, missing) = (entry.id, entry.status == Status::Missing);
        if let Some(slot) = insert(Arc::make_mut(&mut self.models), model, entry) {
            self.index.insert(id, slot);
            if missing {
                self.missing += 1;
            }
        }
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

/// Stores an entry in its model's group; `None` only past the slab's and the
/// group's `u32` addressing, which no real server reaches.
fn insert(models: &mut Models, model: &ModelUuid, entry: Entry) -> Option<Slot> {
    let slot = models.slot_of(model)?;
    let group = models.group_mut(slot)?;
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

/// Closes the vacant positions of a group, updating the index of every entry
/// that moves, and gives the spare memory back.
fn compact(group: &mut Group, model: u32, index: &mut Index) {
    let live = group.len();
    let mut pos = 0u32;
    let places: Arc<[Place]> = group
        .drain()
        .into_iter()
        .map(|entry| {
            if let Some(slot) = index.get_mut(entry.id) {
                *slot = Slot { model, pos };
            }
            pos += 1;
            Place::Taken(entry)
        })
        .chain(std::iter::repeat_n(Place::SPARE, live / 2))
        .collect();
    *group = Group {
        places,
        used: pos,
        ..Group::default()
    };
}

/// An immutable snapshot of one [`ServerTable`], cheap to take and to clone,
/// and `Send + Sync`: a per-server actor hands these out, and
/// [`Connections::from_views`](super::Connections::from_views) combines them.
#[derive(Clone)]
pub struct ServerView {
    pub(crate) server: MachineTag,
    pub(crate) models: Arc<Models>,
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
