//! The map from connection id to where its entry sits, for one server.
//!
//! An open-addressing table with the id and the location side by side in one
//! 16-byte bucket, probed linearly: a lookup usually reads one cache line. A
//! general-purpose map keeps a separate array of control bytes, which at a
//! million connections costs a second cache miss on every connect,
//! disconnect and activity.

/// Where a connection's entry sits: its model's slot in the slab and its
/// position in the model's group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) model: u32,
    pub(crate) pos: u32,
}

/// A model slot no model can have (the slab hands out fewer): marks an empty
/// bucket, so that every id, `u64::MAX` included, can be a key.
const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    id: u64,
    slot: Slot,
}

impl Bucket {
    const VACANT: Bucket = Bucket {
        id: 0,
        slot: Slot {
            model: EMPTY,
            pos: 0,
        },
    };

    fn is_vacant(&self) -> bool {
        self.slot.model == EMPTY
    }
}

/// Connection id to [`Slot`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    /// A power of two long, or empty; at most three quarters full.
    buckets: Vec<Bucket>,
    len: usize,
}

/// MurmurHash3's finaliser: ids are assigned by the API server, not chosen
/// by clients, so flooding resistance buys nothing, and this spreads even ids
/// that share their low bits.
fn hash(id: u64) -> u64 {
    let mut h = id;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Index {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    fn home(&self, id: u64) -> usize {
        hash(id) as usize & self.mask()
    }

    /// The bucket holding `id`, if any.
    fn find(&self, id: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(id);
        loop {
            let bucket = &self.buckets[i];
            if bucket.is_vacant() {
                return None;
            }
            if bucket.id == id {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<Slot> {
        self.find(id).map(|i| self.buckets[i].slot)
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Slot> {
        let i = self.find(id)?;
        Some(&mut self.buckets[i].slot)
    }

    /// Maps `id` to `slot`, replacing any previous mapping. A slot with the
    /// reserved model number is not stored.
    pub(crate) fn insert(&mut self, id: u64, slot: Slot) {
        if slot.model == EMPTY {
            return;
        }
        if let Some(existing) = self.get_mut(id) {
            *existing = slot;
            return;
        }
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.resize((self.buckets.len() * 2).max(16));
        }
        self.place(Bucket { id, slot });
        self.len += 1;
    }

    /// Puts a bucket whose id is absent in the first vacant place of its run.
    fn place(&mut self, bucket: Bucket) {
        let mask = self.mask();
        let mut i = self.home(bucket.id);
        while !self.buckets[i].is_vacant() {
            i = (i + 1) & mask;
        }
        self.buckets[i] = bucket;
    }

    /// Removes `id`, returning where it pointed.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Slot> {
        let mut hole = self.find(id)?;
        let removed = self.buckets[hole].slot;
        self.len -= 1;
        // Backward-shift deletion: pull later members of the run into the
        // hole when their home does not lie cyclically in (hole, j], so that
        // every id stays reachable from its home without tombstones.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let bucket = self.buckets[j];
            if bucket.is_vacant() {
                break;
            }
            let home = self.home(bucket.id);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.buckets[hole] = bucket;
                hole = j;
            }
        }
        self.buckets[hole] = Bucket::VACANT;
        if self.buckets.len() > 64 && self.len * 16 < self.buckets.len() {
            self.resize(self.buckets.len() / 4);
        }
        Some(removed)
    }

    fn resize(&mut self, buckets: usize) {
        let old = std::mem::replace(&mut self.buckets, vec![Bucket::VACANT; buckets]);
        for bucket in old {
            if !bucket.is_vacant() {
                self.place(bucket);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn slot(n: u64) -> Slot {
        Slot {
            model: (n % 1000) as u32,
            pos: (n / 1000) as u32,
        }
    }

    /// Runs random inserts, updates and removals over ids drawn from
    /// `space(round)`, checking against a standard map.
    /// With `cap`, an existing id is removed whenever the map holds that
    /// many, which keeps the table small while ids come from a wide space.
    fn agrees_with_a_map(rounds: u64, space: impl Fn(u64) -> u64, cap: Option<usize>) {
        let mut index = Index::default();
        let mut model: HashMap<u64, Slot> = HashMap::new();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..rounds {
            let r = next();
            let id = match r % 7 {
                0 => u64::MAX - r % 3,
                _ => (r >> 8) % space(round),
            };
            if let Some(cap) = cap.filter(|&cap| model.len() >= cap) {
                let victim = *model.keys().nth((r >> 40) as usize % cap).unwrap();
                assert_eq!(index.remove(victim), model.remove(&victim));
            } else if (r >> 4) % 3 == 0 {
                assert_eq!(index.remove(id), model.remove(&id));
            } else {
                index.insert(id, slot(r >> 20));
                model.insert(id, slot(r >> 20));
            }
            assert_eq!(index.len(), model.len());
            if model.len() < 100 || round % 97 == 0 {
                for (&id, &expected) in &model {
                    assert_eq!(index.get(id), Some(expected));
                }
            }
            assert_eq!(index.get(id), model.get(&id).copied());
        }
    }

    /// Phases that grow the table, churn it and drain it, so that it grows
    /// and shrinks.
    #[test]
    fn behaves_as_a_map_while_growing_and_shrinking() {
        agrees_with_a_map(
            200_000,
            |round| match (round / 20_000) % 3 {
                0 => 5_000,
                1 => 300,
                _ => 40,
            },
            None,
        );
    }

    /// A table of sixteen buckets kept well filled with ever different ids:
    /// probe runs often wrap around its end, the case backward-shift
    /// deletion gets wrong most easily.
    #[test]
    fn behaves_as_a_map_when_runs_wrap_around() {
        agrees_with_a_map(100_000, |_| 1_000_000, Some(11));
    }

    #[test]
    fn the_reserved_model_is_not_stored() {
        let mut index = Index::default();
        index.insert(
            7,
            Slot {
                model: EMPTY,
                pos: 1,
            },
        );
        assert_eq!(index.len(), 0);
        assert_eq!(index.get(7), None);
    }
}
