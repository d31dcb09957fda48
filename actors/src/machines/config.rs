//! The settings of the machine subtree and their validation.

use std::time::Duration;

use muster::poll::PollConfig;
use serde::{Deserialize, Serialize};

use crate::supervisor::RestartConfig;

/// Settings of the machine subtree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MachinesConfig {
    /// The poll schedule (docs/spec.md §2.1).
    pub poll: PollConfig,
    /// The timing of the "machines" supervisor, which restarts the watcher
    /// and every poller: its restart intensity is shared by thousands of
    /// pollers, so it must tolerate many failures.
    pub restart: RestartConfig,
    /// How many messages each poller's mailbox holds.
    pub poller_mailbox: usize,
}

impl Default for MachinesConfig {
    fn default() -> Self {
        MachinesConfig {
            poll: PollConfig::default(),
            restart: RestartConfig {
                max_restarts: 1000,
                restart_window: Duration::from_secs(10),
                ..RestartConfig::default()
            },
            poller_mailbox: 16,
        }
    }
}

/// A [`MachinesConfig`] value that was rejected; `field` is its full name
/// in a configuration file, e.g. `machines.poll.short_poll`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct MachinesConfigError {
    /// The field, with its `machines.` prefix.
    pub field: String,
    /// What was wrong with it.
    pub reason: String,
}

impl MachinesConfig {
    /// Checks the poll schedule, the restart timing and the mailbox size;
    /// the error names the first field out of range.
    pub fn validate(&self) -> Result<(), MachinesConfigError> {
        self.poll.validate().map_err(|e| MachinesConfigError {
            field: format!("machines.poll.{}", e.field),
            reason: e.reason,
        })?;
        self.restart.validate().map_err(|e| MachinesConfigError {
            field: format!("machines.restart.{}", e.field),
            reason: e.problem,
        })?;
        if self.poller_mailbox == 0 {
            return Err(MachinesConfigError {
                field: "machines.poller_mailbox".to_owned(),
                reason: "must be at least 1, got 0".to_owned(),
            });
        }
        Ok(())
    }
}
