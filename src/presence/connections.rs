//! The read-only view over the connections of any set of servers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::entry::Entry;
use super::group::Group;
use super::table::StatusCounts;
use super::view::ServerView;
use super::{AgentPresence, PresenceError, Status, Value};
use crate::names::{AgentTag, MachineTag, ModelUuid};

/// What a view is narrowed to. Filters are stored, not applied: narrowing is
/// O(1) and queries read only the parts of the tables the filter selects.
#[derive(Clone, Debug, Default)]
struct Filter {
    model: Option<ModelUuid>,
    server: Option<MachineTag>,
    agent: Option<AgentTag>,
    /// Two filters on the same axis disagreed: nothing can match.
    empty: bool,
}

/// A read-only view of connections, narrowed by chained filters in any order.
///
/// Built from [`ServerView`]s, so taking one copies no entries; it keeps
/// seeing the tables as they were when the views were taken. Lists come back
/// sorted; [`values`](Connections::values) are sorted by (server, connection
/// id).
#[derive(Clone, Debug, Default)]
pub struct Connections {
    views: Arc<[ServerView]>,
    filter: Filter,
}

impl Connections {
    /// A view over the given servers' views. Views are expected to be of
    /// distinct servers; of two views of the same server the later is kept.
    pub fn from_views(views: impl IntoIterator<Item = ServerView>) -> Self {
        let by_server: BTreeMap<MachineTag, ServerView> = views
            .into_iter()
            .map(|view| (view.server.clone(), view))
            .collect();
        Connections {
            views: by_server.into_values().collect(),
            filter: Filter::default(),
        }
    }

    /// The connections of one model. The new view is limited to that model,
    /// which is what [`agent_status`](Connections::agent_status) needs.
    pub fn for_model(&self, model: &ModelUuid) -> Connections {
        let mut narrowed = self.clone();
        if narrowed.filter.model.is_some_and(|m| m != *model) {
            narrowed.filter.empty = true;
        }
        narrowed.filter.model = Some(*model);
        narrowed
    }

    /// The connections held by one API server; keeps the view's model.
    pub fn for_server(&self, server: &MachineTag) -> Connections {
        let mut narrowed = self.clone();
        if narrowed.filter.server.as_ref().is_some_and(|s| s != server) {
            narrowed.filter.empty = true;
        }
        narrowed.filter.server = Some(server.clone());
        narrowed
    }

    /// The connections of one agent; keeps the view's model.
    pub fn for_agent(&self, agent: &AgentTag) -> Connections {
        let mut narrowed = self.clone();
        if narrowed.filter.agent.as_ref().is_some_and(|a| a != agent) {
            narrowed.filter.empty = true;
        }
        narrowed.filter.agent = Some(agent.clone());
        narrowed
    }

    /// The model the view is limited to, if any.
    pub fn model(&self) -> Option<&ModelUuid> {
        self.filter.model.as_ref()
    }

    /// The number of connections.
    pub fn count(&self) -> usize {
        if self.filter.empty {
            return 0;
        }
        if self.filter.agent.is_none() {
            if self.filter.model.is_none() {
                return self.views().map(ServerView::count).sum();
            }
            let mut count = 0;
            self.for_each_group(|_, _, group| count += group.len());
            return count;
        }
        let mut count = 0;
        self.for_each_entry(|_, _, _| count += 1);
        count
    }

    /// The number of connections in each status. Unnarrowed, it adds up the
    /// servers' own counts and reads no entry.
    pub fn count_by_status(&self) -> StatusCounts {
        if self.filter.empty {
            return StatusCounts::default();
        }
        if self.filter.model.is_none() && self.filter.agent.is_none() {
            return self.views().map(ServerView::count_by_status).fold(
                StatusCounts::default(),
                |sum, counts| StatusCounts {
                    alive: sum.alive + counts.alive,
                    missing: sum.missing + counts.missing,
                },
            );
        }
        let mut counts = StatusCounts::default();
        self.for_each_entry(|_, _, entry| match entry.status() {
            Status::Alive => counts.alive += 1,
            Status::Missing => counts.missing += 1,
            Status::Unknown => {}
        });
        counts
    }

    /// Whether the view holds no connection.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// The models that have connections, sorted.
    pub fn models(&self) -> Vec<ModelUuid> {
        let mut models = BTreeSet::new();
        self.for_each_group(|_, model, group| {
            if group.iter().any(|entry| self.agent_matches(entry)) {
                models.insert(*model);
            }
        });
        models.into_iter().collect()
    }

    /// The API servers that hold connections, sorted.
    pub fn servers(&self) -> Vec<MachineTag> {
        let mut servers = Vec::new();
        self.for_each_group(|view, _, group| {
            // Views are sorted by server, so a repeat is always the last one.
            if servers.last() != Some(&view.server)
                && group.iter().any(|entry| self.agent_matches(entry))
            {
                servers.push(view.server.clone());
            }
        });
        servers
    }

    /// The connected agents, sorted.
    pub fn agents(&self) -> Vec<AgentTag> {
        let mut agents = BTreeSet::new();
        self.for_each_entry(|_, _, entry| {
            agents.insert(entry.agent());
        });
        agents.into_iter().cloned().collect()
    }

    /// The status of an agent in the view's model: the highest status over
    /// its connections that are not controller-agent connections, Unknown
    /// when there are none.
    ///
    /// Fails with [`PresenceError::AgentAmbiguous`] on a view not limited to
    /// a model, since the same agent tag exists in many models.
    pub fn agent_status(&self, agent: &AgentTag) -> Result<Status, PresenceError> {
        if self.filter.model.is_none() {
            return Err(PresenceError::AgentAmbiguous);
        }
        let mut status = Status::Unknown;
        self.for_each_entry(|_, _, entry| {
            if !entry.controller_agent() && entry.agent() == agent {
                status = status.max(entry.status());
            }
        });
        Ok(status)
    }

    /// Every agent of the view, sorted, with its status and whether it is
    /// seen only on controller-agent connections: the answers of
    /// [`agent_status`](Connections::agent_status) for each of
    /// [`agents`](Connections::agents), in one pass over the connections
    /// instead of one pass per agent.
    ///
    /// Fails like `agent_status` on a view not limited to a model.
    pub fn agent_statuses(&self) -> Result<Vec<AgentPresence>, PresenceError> {
        if self.filter.model.is_none() {
            return Err(PresenceError::AgentAmbiguous);
        }
        let mut agents: BTreeMap<&AgentTag, (Status, bool)> = BTreeMap::new();
        self.for_each_entry(|_, _, entry| {
            let (status, only_controller) = agents
                .entry(entry.agent())
                .or_insert((Status::Unknown, true));
            if !entry.controller_agent() {
                *status = (*status).max(entry.status());
                *only_controller = false;
            }
        });
        Ok(agents
            .into_iter()
            .map(|(agent, (status, controller))| AgentPresence {
                agent: agent.clone(),
                status,
                controller,
            })
            .collect())
    }

    /// The connections, sorted by (server, connection id).
    pub fn values(&self) -> Vec<Value> {
        let mut values = Vec::new();
        for view in self.views() {
            let start = values.len();
            self.for_each_group_of(view, |view, model, group| {
                values.extend(
                    group
                        .iter()
                        .filter(|entry| self.agent_matches(entry))
                        .map(|entry| entry.to_value(&view.server, model)),
                );
            });
            values[start..].sort_unstable_by_key(|value| value.connection_id);
        }
        values
    }

    /// The server views the filter selects.
    fn views(&self) -> impl Iterator<Item = &ServerView> {
        let filter = &self.filter;
        self.views.iter().filter(move |view| {
            !filter.empty && filter.server.as_ref().is_none_or(|s| *s == view.server)
        })
    }

    fn agent_matches(&self, entry: &Entry) -> bool {
        self.filter
            .agent
            .as_ref()
            .is_none_or(|a| a == entry.agent())
    }

    /// Calls `f` with each model group the server and model filters select;
    /// the agent filter is left to `f`.
    fn for_each_group<'a>(&'a self, mut f: impl FnMut(&'a ServerView, &'a ModelUuid, &'a Group)) {
        for view in self.views() {
            self.for_each_group_of(view, &mut f);
        }
    }

    fn for_each_group_of<'a>(
        &self,
        view: &'a ServerView,
        mut f: impl FnMut(&'a ServerView, &'a ModelUuid, &'a Group),
    ) {
        match &self.filter.model {
            // A model filter is a lookup, not a scan: this is what keeps a
            // query about one model independent of the table's size.
            Some(model) => {
                if let Some((model, group)) = view.models.get(model) {
                    f(view, model, group);
                }
            }
            None => {
                for (model, group) in view.models.iter() {
                    f(view, model, group);
                }
            }
        }
    }

    /// Calls `f` with each entry every filter selects.
    fn for_each_entry<'a>(&'a self, mut f: impl FnMut(&'a ServerView, &'a ModelUuid, &'a Entry)) {
        self.for_each_group(|view, model, group| {
            for entry in group.iter() {
                if self.agent_matches(entry) {
                    f(view, model, entry);
                }
            }
        });
    }
}
