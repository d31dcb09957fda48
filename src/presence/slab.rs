//! A server's model groups in a slab of numbered slots.

use std::sync::Arc;

use super::group::Group;
use super::hash::FxMap;
use crate::names::ModelUuid;

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
    by_uuid: Arc<FxMap<ModelUuid, u32>>,
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

    /// The model and group in `slot`, if the slot is taken.
    pub(super) fn slot(&self, slot: u32) -> Option<(&ModelUuid, &Group)> {
        let chunk = self.chunks.get(slot as usize / CHUNK)?;
        let (model, group) = chunk[slot as usize % CHUNK].as_ref()?;
        Some((model, group))
    }

    fn slot_mut(&mut self, slot: u32) -> Option<&mut Option<(ModelUuid, Group)>> {
        let chunk = self.chunks.get_mut(slot as usize / CHUNK)?;
        Some(&mut Arc::make_mut(chunk)[slot as usize % CHUNK])
    }

    /// The group in `slot`, its chunk made unique first if a view shares it.
    pub(super) fn group_mut(&mut self, slot: u32) -> Option<&mut Group> {
        let (_, group) = self.slot_mut(slot)?.as_mut()?;
        Some(group)
    }

    /// Every model and its group, each chunk made unique first.
    pub(super) fn groups_mut(&mut self) -> impl Iterator<Item = (&ModelUuid, &mut Group)> {
        self.chunks
            .iter_mut()
            .flat_map(|chunk| Arc::make_mut(chunk).iter_mut().flatten())
            .map(|(model, group)| (&*model, group))
    }

    /// Every model and its group, taken out of the slab.
    pub(super) fn into_groups(self) -> impl Iterator<Item = (ModelUuid, Group)> {
        self.chunks.into_iter().flat_map(|chunk| {
            let chunk = Arc::try_unwrap(chunk).unwrap_or_else(|shared| (*shared).clone());
            chunk.into_iter().flatten()
        })
    }

    /// The slot of a model, allocated if the model has none.
    pub(super) fn slot_of(&mut self, model: &ModelUuid) -> Option<u32> {
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
    pub(super) fn release(&mut self, slot: u32) {
        if let Some((model, _)) = self.slot_mut(slot).and_then(Option::take) {
            Arc::make_mut(&mut self.by_uuid).remove(&model);
            self.free.push(slot);
        }
    }
}
