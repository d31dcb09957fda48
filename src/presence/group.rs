//! The entries of one model on one server: a shared allocation of places,
//! each an entry or a vacancy, with the vacancies linked into a free list.

use std::sync::Arc;

use super::entry::Entry;

/// A position in a group: an entry, or a vacancy linked to the next one.
#[derive(Clone, Debug)]
enum Place {
    Taken(Entry),
    Vacant { next: u32 },
}

// A vacancy fits in the entry's niche: a place is no bigger than an entry.
const _: () = assert!(std::mem::size_of::<Place>() == std::mem::size_of::<Entry>());

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
    /// Where the model's counts are in the table's tally, if it has one
    /// (see `Counts::model_index`).
    pub(super) tally: u32,
}

impl Default for Group {
    fn default() -> Self {
        Group {
            places: Arc::default(),
            used: 0,
            vacant_head: END,
            vacant: 0,
            tally: u32::MAX,
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

    /// The entry at `pos`, if the place holds one.
    pub(super) fn get(&self, pos: u32) -> Option<&Entry> {
        self.places[..self.used as usize].get(pos as usize)?.entry()
    }

    /// The places in use, made unique first if a view shares them.
    fn places_mut(&mut self) -> &mut [Place] {
        let used = self.used as usize;
        &mut Arc::make_mut(&mut self.places)[..used]
    }

    /// The entry at `pos`, mutably, made unique first if a view shares it.
    pub(super) fn get_mut(&mut self, pos: u32) -> Option<&mut Entry> {
        self.places_mut().get_mut(pos as usize)?.entry_mut()
    }

    /// Every entry, mutably.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.places_mut().iter_mut().filter_map(Place::entry_mut)
    }

    /// Takes every entry out, leaving the group empty; copies them instead
    /// if a view shares them.
    pub(super) fn drain(&mut self) -> Vec<Entry> {
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
    pub(super) fn insert(&mut self, entry: Entry) -> Option<u32> {
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
            // Grow by a quarter rather than doubling: a server holds many
            // small groups, and doubling would leave up to half of each
            // unused; each entry is still moved a bounded number of times.
            let room = self.places.len() + (self.places.len() / 4).max(4);
            self.reallocate(room);
        }
        self.used = pos.checked_add(1)?;
        *self.places_mut().get_mut(pos as usize)? = Place::Taken(entry);
        Some(pos)
    }

    /// Takes the entry at `pos` out, leaving the place as the first vacancy.
    pub(super) fn remove(&mut self, pos: u32) -> Option<Entry> {
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
    pub(super) fn is_sparse(&self) -> bool {
        self.used > 8 && self.len() * 4 < self.used as usize
    }

    /// Closes the vacant positions, calling `moved(id, pos)` for every entry
    /// with its new position so the caller can update its index, and gives
    /// the spare memory back.
    pub(super) fn compact(&mut self, mut moved: impl FnMut(u64, u32)) {
        let live = self.len();
        let tally = self.tally;
        let mut pos = 0u32;
        let places: Arc<[Place]> = self
            .drain()
            .into_iter()
            .map(|entry| {
                moved(entry.id, pos);
                pos += 1;
                Place::Taken(entry)
            })
            .chain(std::iter::repeat_n(Place::SPARE, live / 2))
            .collect();
        *self = Group {
            places,
            used: pos,
            tally,
            ..Group::default()
        };
    }
}
