//! Immutable, shareable snapshots of one server's table.

use std::fmt;
use std::sync::Arc;

use super::Value;
use super::slab::Models;
use super::table::StatusCounts;
use crate::names::MachineTag;

/// An immutable snapshot of one [`ServerTable`](super::ServerTable), cheap
/// to take and to clone, and `Send + Sync`: a per-server actor hands these
/// out, and [`Connections::from_views`](super::Connections::from_views)
/// combines them.
#[derive(Clone)]
pub struct ServerView {
    pub(crate) server: MachineTag,
    pub(crate) models: Arc<Models>,
    pub(super) count: usize,
    pub(super) missing: usize,
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
