//! A deliberately simple presence recorder: one `Vec` of values scanned
//! linearly, as Juju's `core/presence` does. It is the oracle the property
//! tests compare [`muster::presence::Recorder`] against and the baseline the
//! benchmark reports; it is not meant for production use.

use std::collections::BTreeSet;
use std::sync::Arc;

use muster::clock::Clock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{AgentPresence, ModelCounts, PresenceError, Status, Value};

/// The linear recorder.
#[derive(Debug)]
pub struct Recorder {
    clock: Arc<dyn Clock>,
    enabled: bool,
    entries: Vec<Value>,
}

impl Recorder {
    /// A disabled, empty recorder.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Recorder {
            clock,
            enabled: false,
            entries: Vec::new(),
        }
    }

    /// An enabled recorder holding `values` as they are, for building large
    /// fixtures without the quadratic cost of connecting one by one. The
    /// caller keeps (server, connection id) unique.
    pub fn with_values(clock: Arc<dyn Clock>, values: Vec<Value>) -> Self {
        Recorder {
            clock,
            enabled: true,
            entries: values,
        }
    }

    /// Sets the enabled flag.
    pub fn enable(&mut self) {
        self.enabled = true;
    }

    /// Clears the flag and every entry.
    pub fn disable(&mut self) {
        self.enabled = false;
        self.entries.clear();
    }

    /// Whether the recorder records.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    fn find(&self, server: &MachineTag, id: u64) -> Option<usize> {
        self.entries
            .iter()
            .position(|v| v.server == *server && v.connection_id == id)
    }

    /// docs/spec.md §1.3.1 `connect`.
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
        match self.find(server, id) {
            Some(pos) => {
                self.entries[pos].status = Status::Alive;
                self.entries[pos].last_seen = now;
            }
            None => self.entries.push(Value {
                model: *model,
                server: server.clone(),
                agent: agent.clone(),
                controller_agent,
                connection_id: id,
                status: Status::Alive,
                user_data: user_data.to_owned(),
                last_seen: now,
            }),
        }
    }

    /// docs/spec.md §1.3.2 `disconnect`.
    pub fn disconnect(&mut self, server: &MachineTag, id: u64) {
        if !self.enabled {
            return;
        }
        if let Some(pos) = self.find(server, id) {
            self.entries.remove(pos);
        }
    }

    /// docs/spec.md §1.3.3 `activity`.
    pub fn activity(&mut self, server: &MachineTag, id: u64) {
        if !self.enabled {
            return;
        }
        let now = self.clock.now();
        if let Some(pos) = self.find(server, id) {
            self.entries[pos].last_seen = now;
        }
    }

    /// docs/spec.md §1.3.4 `server_down`.
    pub fn server_down(&mut self, server: &MachineTag) {
        if !self.enabled {
            return;
        }
        for value in &mut self.entries {
            if value.server == *server {
                value.status = Status::Missing;
            }
        }
    }

    /// docs/spec.md §1.4 `update_server`; snapshot values are taken in order, so of two
    /// with the same id the first is added and the second refreshes it.
    pub fn update_server(
        &mut self,
        server: &MachineTag,
        values: Vec<Value>,
    ) -> Result<(), PresenceError> {
        if !self.enabled {
            return Err(PresenceError::NotEnabled);
        }
        for value in &values {
            if value.server != *server {
                return Err(PresenceError::ServerMismatch {
                    got: value.server.clone(),
                    expected: server.clone(),
                });
            }
        }
        let now = self.clock.now();
        self.entries
            .retain(|v| v.server != *server || v.status == Status::Alive);
        for mut value in values {
            match self.find(server, value.connection_id) {
                Some(pos) => self.entries[pos].last_seen = now,
                None => {
                    value.status = Status::Alive;
                    value.last_seen = now;
                    self.entries.push(value);
                }
            }
        }
        Ok(())
    }

    /// A copy of every entry, as Juju's `Connections()` does.
    pub fn connections(&self) -> Connections {
        Connections {
            model: None,
            values: self.entries.clone(),
        }
    }
}

/// The linear view: a model and a copy of the matching values.
#[derive(Clone, Debug, Default)]
pub struct Connections {
    model: Option<ModelUuid>,
    values: Vec<Value>,
}

impl Connections {
    fn narrowed(&self, model: Option<ModelUuid>, keep: impl Fn(&Value) -> bool) -> Connections {
        Connections {
            model,
            values: self.values.iter().filter(|v| keep(v)).cloned().collect(),
        }
    }

    /// The values of `model`; the view is limited to it.
    pub fn for_model(&self, model: &ModelUuid) -> Connections {
        self.narrowed(Some(*model), |v| v.model == *model)
    }

    /// The values of `server`.
    pub fn for_server(&self, server: &MachineTag) -> Connections {
        self.narrowed(self.model, |v| v.server == *server)
    }

    /// The values of `agent`.
    pub fn for_agent(&self, agent: &AgentTag) -> Connections {
        self.narrowed(self.model, |v| v.agent == *agent)
    }

    /// The number of values.
    pub fn count(&self) -> usize {
        self.values.len()
    }

    /// Distinct models, sorted.
    pub fn models(&self) -> Vec<ModelUuid> {
        let set: BTreeSet<_> = self.values.iter().map(|v| v.model).collect();
        set.into_iter().collect()
    }

    /// Distinct servers, sorted.
    pub fn servers(&self) -> Vec<MachineTag> {
        let set: BTreeSet<_> = self.values.iter().map(|v| v.server.clone()).collect();
        set.into_iter().collect()
    }

    /// Distinct agents, sorted.
    pub fn agents(&self) -> Vec<AgentTag> {
        let set: BTreeSet<_> = self.values.iter().map(|v| v.agent.clone()).collect();
        set.into_iter().collect()
    }

    /// docs/spec.md §1.5.4 `agent_status`.
    pub fn agent_status(&self, agent: &AgentTag) -> Result<Status, PresenceError> {
        if self.model.is_none() {
            return Err(PresenceError::AgentAmbiguous);
        }
        let mut result = Status::Unknown;
        for value in &self.values {
            if value.agent == *agent && !value.controller_agent && value.status > result {
                result = value.status;
            }
        }
        Ok(result)
    }

    /// `agent_status` for each agent, and whether all its connections are
    /// controller-agent ones.
    pub fn agent_statuses(&self) -> Result<Vec<AgentPresence>, PresenceError> {
        self.agents()
            .into_iter()
            .map(|agent| {
                Ok(AgentPresence {
                    status: self.agent_status(&agent)?,
                    controller: self
                        .for_agent(&agent)
                        .values
                        .iter()
                        .all(|v| v.controller_agent),
                    agent,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|agents| match self.model {
                None => Err(PresenceError::AgentAmbiguous),
                Some(_) => Ok(agents),
            })
    }

    /// Each model's counts, the long way: every agent of every model, its
    /// status by `agent_status`, and whether all its connections are
    /// controller-agent ones. Sorted by model.
    pub fn model_counts(&self) -> Vec<ModelCounts> {
        self.models()
            .into_iter()
            .map(|model| {
                let view = self.for_model(&model);
                let agents = view.agents();
                let mut counts = ModelCounts {
                    model,
                    connections: view.count(),
                    agents: agents.len(),
                    alive: 0,
                    missing: 0,
                    controller: 0,
                };
                for agent in &agents {
                    let only_controller = view
                        .for_agent(agent)
                        .values
                        .iter()
                        .all(|v| v.controller_agent);
                    if only_controller {
                        counts.controller += 1;
                    }
                    match view.agent_status(agent) {
                        Ok(Status::Alive) => counts.alive += 1,
                        Ok(Status::Missing) => counts.missing += 1,
                        _ => {}
                    }
                }
                counts
            })
            .collect()
    }

    /// The values sorted by (server, connection id).
    pub fn values(&self) -> Vec<Value> {
        let mut values = self.values.clone();
        values.sort_by(|a, b| (&a.server, a.connection_id).cmp(&(&b.server, b.connection_id)));
        values
    }
}
