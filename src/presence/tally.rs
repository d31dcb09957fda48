//! Per-model counts of connections and agents over any number of servers,
//! kept as changes arrive, so that a summary of every model costs one pass
//! over the models instead of a walk over every connection.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::Status;
use super::agents::Agents;
use super::entry::Entry;
use super::hash::FxMap;
use crate::names::ModelUuid;

/// What one model's connections add up to, over every server of a
/// [`Tally`]. The agent counts follow [`Connections::agent_status`]: an
/// agent is alive when one of its non-controller connections is, else
/// missing when one of them is missing; an agent seen only on
/// controller-agent connections counts as `controller`. So
/// `agents = alive + missing + controller`.
///
/// [`Connections::agent_status`]: super::Connections::agent_status
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCounts {
    /// The model.
    pub model: ModelUuid,
    /// Its connections.
    pub connections: usize,
    /// Its distinct agents.
    pub agents: usize,
    /// Agents whose status is Alive.
    pub alive: usize,
    /// Agents whose status is Missing.
    pub missing: usize,
    /// Agents seen only on controller-agent connections, which never count
    /// towards an agent's status.
    pub controller: usize,
}

/// The per-model counts of every server table sharing it; see
/// [`ServerTable::with_tally`](super::ServerTable::with_tally).
///
/// Cheap to clone: clones share the counts. Each table adds what it
/// records and takes away what it forgets, drops or clears, so the counts
/// always equal what the tables hold. Reading them is O(models).
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<Counts>>);

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Tally::default()
    }

    /// The counts of every model with connections, sorted by UUID.
    pub fn models(&self) -> Vec<ModelCounts> {
        let counts = self.lock();
        let mut models: Vec<ModelCounts> =
            counts.models.iter().flatten().map(Model::counts).collect();
        models.sort_unstable_by_key(|m| m.model);
        models
    }

    /// The counts of one model; `None` when it has no connection.
    pub fn model(&self, model: &ModelUuid) -> Option<ModelCounts> {
        let counts = self.lock();
        let index = *counts.by_uuid.get(model)?;
        counts.model(index).map(Model::counts)
    }

    /// The number of models with connections.
    pub fn len(&self) -> usize {
        self.lock().by_uuid.len()
    }

    /// Whether no model has a connection.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Counts> {
        // The counts are updated by plain arithmetic that cannot panic
        // half-way, so a poisoned lock still holds consistent counts.
        crate::sync::lock(&self.0)
    }
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("models", &self.len())
            .finish()
    }
}

/// Every model's counts, and the agent tags of the tables sharing them.
///
/// The counts sit in a slab: a table's group of a model keeps the model's
/// index there (see [`Counts::model_index`]), so that a change reaches the
/// counts without hashing the model's UUID, and while the table's own
/// lookups are under way.
#[derive(Default)]
pub(super) struct Counts {
    by_uuid: FxMap<ModelUuid, u32>,
    models: Vec<Option<Model>>,
    free: Vec<u32>,
    /// Held here so that one tag has one identity over every table, which
    /// is what the models' agents are keyed by.
    pub(super) agents: Agents,
}

/// One model's counts, with each agent's connections so that a change to
/// one connection moves its agent between the alive, missing and
/// controller counts in O(1). Agents are keyed by their identity in the
/// shared [`Agents`]: a word to hash and compare, not a tag's text.
struct Model {
    uuid: ModelUuid,
    connections: usize,
    alive: usize,
    missing: usize,
    controller: usize,
    agents: FxMap<usize, AgentConnections>,
}

/// One agent's connections in one model, over every server. `u32` keeps
/// the entry small: a server table addresses fewer connections than that.
#[derive(Clone, Copy, Default)]
struct AgentConnections {
    alive: u32,
    missing: u32,
    controller: u32,
}

/// Which of a model's agent counts an agent is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Standing {
    Alive,
    Missing,
    Controller,
}

impl AgentConnections {
    /// Where the agent counts; `None` once it has no connection.
    fn standing(&self) -> Option<Standing> {
        if self.alive > 0 {
            Some(Standing::Alive)
        } else if self.missing > 0 {
            Some(Standing::Missing)
        } else if self.controller > 0 {
            Some(Standing::Controller)
        } else {
            None
        }
    }

    /// The count a connection of this kind and status is in.
    fn count_of(&mut self, controller_agent: bool, status: Status) -> Option<&mut u32> {
        match (controller_agent, status) {
            (true, _) => Some(&mut self.controller),
            (false, Status::Alive) => Some(&mut self.alive),
            (false, Status::Missing) => Some(&mut self.missing),
            // Never stored: a recorded connection is Alive or Missing.
            (false, Status::Unknown) => None,
        }
    }
}

impl Model {
    fn new(uuid: ModelUuid) -> Self {
        Model {
            uuid,
            connections: 0,
            alive: 0,
            missing: 0,
            controller: 0,
            agents: FxMap::default(),
        }
    }

    fn counts(&self) -> ModelCounts {
        ModelCounts {
            model: self.uuid,
            connections: self.connections,
            agents: self.agents.len(),
            alive: self.alive,
            missing: self.missing,
            controller: self.controller,
        }
    }

    fn standing_count(&mut self, standing: Standing) -> &mut usize {
        match standing {
            Standing::Alive => &mut self.alive,
            Standing::Missing => &mut self.missing,
            Standing::Controller => &mut self.controller,
        }
    }

    /// Applies `change` to `agent`'s connections and moves the agent to
    /// the count it now belongs in.
    fn change(&mut self, agent: usize, change: impl FnOnce(&mut AgentConnections)) {
        let (before, after) = match self.agents.get_mut(&agent) {
            Some(connections) => {
                let before = connections.standing();
                change(connections);
                let after = connections.standing();
                if after.is_none() {
                    self.agents.remove(&agent);
                }
                (before, after)
            }
            None => {
                let mut connections = AgentConnections::default();
                change(&mut connections);
                let after = connections.standing();
                if after.is_some() {
                    self.agents.insert(agent, connections);
                }
                (None, after)
            }
        };
        if before != after {
            if let Some(before) = before {
                *self.standing_count(before) -= 1;
            }
            if let Some(after) = after {
                *self.standing_count(after) += 1;
            }
        }
    }
}

impl Counts {
    /// The index of `model`'s counts, made if it has none. A table's group
    /// of the model holds it: the counts stay while the model has a
    /// connection in any table, which it has while the group is not empty.
    pub(super) fn model_index(&mut self, model: &ModelUuid) -> u32 {
        if let Some(&index) = self.by_uuid.get(model) {
            return index;
        }
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.models.push(None);
                // A tally counts fewer models than a table addresses.
                u32::try_from(self.models.len() - 1).unwrap_or(u32::MAX)
            }
        };
        if let Some(place) = self.models.get_mut(index as usize) {
            *place = Some(Model::new(*model));
        }
        self.by_uuid.insert(*model, index);
        index
    }

    fn model(&self, index: u32) -> Option<&Model> {
        self.models.get(index as usize)?.as_ref()
    }

    fn model_mut(&mut self, index: u32) -> Option<&mut Model> {
        self.models.get_mut(index as usize)?.as_mut()
    }

    /// Forgets the counts of a model left with no connection.
    fn release_if_empty(&mut self, index: u32) {
        let Some(place) = self.models.get_mut(index as usize) else {
            return;
        };
        if place.as_ref().is_some_and(|m| m.connections == 0)
            && let Some(model) = place.take()
        {
            self.by_uuid.remove(&model.uuid);
            self.free.push(index);
        }
    }

    /// A connection of the model at `index` was recorded.
    pub(super) fn added(&mut self, index: u32, entry: &Entry) {
        let Some(counts) = self.model_mut(index) else {
            return;
        };
        counts.connections += 1;
        counts.change(entry.agent_id(), |agent| {
            if let Some(n) = agent.count_of(entry.controller_agent(), entry.status()) {
                *n += 1;
            }
        });
    }

    /// A connection of the model at `index` was forgotten.
    pub(super) fn removed(&mut self, index: u32, entry: &Entry) {
        let Some(counts) = self.model_mut(index) else {
            return;
        };
        counts.connections = counts.connections.saturating_sub(1);
        counts.change(entry.agent_id(), |agent| {
            if let Some(n) = agent.count_of(entry.controller_agent(), entry.status()) {
                *n = n.saturating_sub(1);
            }
        });
        self.release_if_empty(index);
    }

    /// A group made for the model at `index` got no connection after all.
    pub(super) fn unused(&mut self, index: u32) {
        self.release_if_empty(index);
    }

    /// The status of a connection of the model at `index` changed from
    /// `from` to the entry's.
    pub(super) fn status_changed(&mut self, index: u32, entry: &Entry, from: Status) {
        // A controller agent's connections count whatever their status.
        let status = entry.status();
        if entry.controller_agent() || from == status {
            return;
        }
        let Some(counts) = self.model_mut(index) else {
            return;
        };
        counts.change(entry.agent_id(), |agent| {
            if let Some(n) = agent.count_of(false, from) {
                *n = n.saturating_sub(1);
            }
            if let Some(n) = agent.count_of(false, status) {
                *n += 1;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::names::AgentTag;
    use crate::presence::ServerTable;

    fn counts(model: ModelUuid, numbers: [usize; 5]) -> Option<ModelCounts> {
        let [connections, agents, alive, missing, controller] = numbers;
        Some(ModelCounts {
            model,
            connections,
            agents,
            alive,
            missing,
            controller,
        })
    }

    #[test]
    fn tables_sharing_a_tally_count_an_agent_once_at_its_highest_status() {
        let now = SystemTime::UNIX_EPOCH;
        let tally = Tally::new();
        let model = ModelUuid::from_u128(7);
        let unit: AgentTag = "unit-wordpress-0".parse().unwrap();
        let controller: AgentTag = "machine-0".parse().unwrap();
        let mut one = ServerTable::with_tally("machine-0".parse().unwrap(), &tally);
        let mut two = ServerTable::with_tally("machine-1".parse().unwrap(), &tally);

        one.connect(&model, &unit, 1, false, "", now);
        one.connect(&model, &controller, 2, true, "", now);
        assert_eq!(tally.model(&model), counts(model, [2, 2, 1, 0, 1]));
        one.mark_down();
        assert_eq!(tally.model(&model), counts(model, [2, 2, 0, 1, 1]));
        // The unit reconnects to the other server: alive, and counted once.
        two.connect(&model, &unit, 1, false, "", now);
        assert_eq!(tally.model(&model), counts(model, [3, 2, 1, 0, 1]));
        assert_eq!(tally.models(), vec![tally.model(&model).unwrap()]);

        // A dropped table takes its connections with it.
        drop(one);
        assert_eq!(tally.model(&model), counts(model, [1, 1, 1, 0, 0]));
        two.clear();
        assert!(tally.is_empty());
        assert_eq!(tally.model(&model), None);

        let mut plain = ServerTable::new("machine-2".parse().unwrap());
        plain.connect(&model, &unit, 1, false, "", now);
        assert!(plain.tally().is_none());
        assert!(tally.is_empty());
    }
}
