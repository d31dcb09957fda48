//! `[store]`: where musterd keeps the machine registry of its `[[models]]`
//! (docs/spec.md §9, §10).

use std::path::{Path, PathBuf};
use std::time::Duration;

use muster::config::{Checker, DAY, Durations, Validate};
use serde::{Deserialize, Serialize};

use crate::SqliteOptions;

/// The path that keeps the registry in memory, gone with the process.
pub const IN_MEMORY: &str = ":memory:";

/// Where the machine registry is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// The SQLite file, relative to the config file's folder; created when
    /// missing. `":memory:"` keeps the registry in memory.
    pub path: PathBuf,
    /// How long a write waits for another process's lock on the file.
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("muster.db"),
            busy_timeout: SqliteOptions::default().busy_timeout,
        }
    }
}

impl StoreConfig {
    /// Whether the registry is kept in memory.
    pub fn in_memory(&self) -> bool {
        self.path.as_os_str() == IN_MEMORY
    }

    /// The options the file is opened with.
    pub fn options(&self) -> SqliteOptions {
        SqliteOptions {
            busy_timeout: self.busy_timeout,
            ..SqliteOptions::default()
        }
    }

    /// The path, a relative one taken from `folder`.
    pub fn resolve(&mut self, folder: &Path) {
        if !self.in_memory() && self.path.is_relative() {
            self.path = folder.join(&self.path);
        }
    }
}

impl Validate for StoreConfig {
    /// A path that is not blank; a busy timeout of at most a day.
    fn check(&self, at: &mut Checker) {
        if self.path.as_os_str().to_string_lossy().trim().is_empty() {
            at.problem(
                "path",
                Some(format!("{:?}", self.path.display().to_string())),
                "must name a file, or \":memory:\"",
            );
        }
        at.duration("busy_timeout", self.busy_timeout, Durations::up_to(DAY));
    }
}
