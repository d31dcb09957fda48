//! The settings of the machine subtree and their ranges.

use std::time::Duration;

use muster::config::{Checker, MAILBOXES, Validate};
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

impl Validate for MachinesConfig {
    /// The poll schedule, the restart timing and the mailbox size.
    fn check(&self, at: &mut Checker) {
        at.section("poll", &self.poll);
        at.section("restart", &self.restart);
        at.count("poller_mailbox", self.poller_mailbox, MAILBOXES);
    }
}
