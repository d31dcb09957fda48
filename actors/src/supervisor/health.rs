//! The tree's health, kept where the host can read it without a message or
//! a walk: each supervisor posts which of its static children are down
//! whenever that may have changed, on a board the whole tree shares.
//!
//! Only static children count. Dynamic ones (a poller, a server's presence
//! actor) come and go and restart on their own; one of thousands failing is
//! the tree doing its job, and reading them all is what made a health
//! probe cost as much as the fleet.

use muster::sync::lock;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use super::actor::Supervisor;
use super::lifecycle::Lifecycle;
use super::report::ChildState;

/// A static child that should be running and is not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DownChild {
    /// Its path in the tree, e.g. `root/machines/watcher`.
    pub path: String,
    /// `failed` (possibly waiting out its restart delay), `stopped` while
    /// it waits for an input, or `stopping` for a supervisor that is
    /// shutting down on its own.
    pub state: ChildState,
    /// Why it is down: its last error, or the input it waits for.
    pub reason: Option<String>,
}

/// Where the tree as a whole is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "error")]
pub enum TreeState {
    /// Not running yet: its static children are still starting.
    Starting,
    /// The root runs.
    Running,
    /// The root is shutting down.
    Stopping,
    /// The tree stopped after a shutdown.
    Stopped,
    /// The tree stopped on an error: a fatal exit, or the root gave up.
    GaveUp(String),
}

/// The tree's health, as [`Root::health`](super::Root::health) reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Where the tree is.
    pub tree: TreeState,
    /// The static children, anywhere in the tree, that are down, by path.
    pub down: Vec<DownChild>,
}

impl Health {
    /// Whether the tree runs with every static child up.
    pub fn is_healthy(&self) -> bool {
        self.tree == TreeState::Running && self.down.is_empty()
    }
}

impl fmt::Display for Health {
    /// `ok`, or one line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = Vec::new();
        match &self.tree {
            TreeState::Running => {}
            TreeState::Starting => lines.push("tree starting".to_owned()),
            TreeState::Stopping => lines.push("tree stopping".to_owned()),
            TreeState::Stopped => lines.push("tree stopped".to_owned()),
            TreeState::GaveUp(error) => lines.push(format!("tree gave up: {error}")),
        }
        for child in &self.down {
            let state = match child.state {
                ChildState::Failed => "failed",
                ChildState::Stopping => "stopping",
                _ => "waiting for an input",
            };
            lines.push(match &child.reason {
                Some(reason) => format!("{} {state}: {reason}", child.path),
                None => format!("{} {state}", child.path),
            });
        }
        if lines.is_empty() {
            f.write_str("ok")
        } else {
            f.write_str(&lines.join("\n"))
        }
    }
}

/// What one supervisor instance posted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Post {
    /// Which instance posted, so that a stale one cannot withdraw it.
    instance: u64,
    stopping: bool,
    down: Vec<DownChild>,
}

#[derive(Debug, Default)]
struct Posts {
    next_instance: u64,
    by_path: BTreeMap<Arc<str>, Post>,
}

/// The board the supervisors of one tree post on. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct HealthBoard(Arc<Mutex<Posts>>);

impl HealthBoard {
    fn lock(&self) -> MutexGuard<'_, Posts> {
        // Posts are replaced whole, never left half-written.
        lock(&self.0)
    }

    /// A number no other supervisor instance of the tree has.
    pub(super) fn instance(&self) -> u64 {
        let mut posts = self.lock();
        posts.next_instance += 1;
        posts.next_instance
    }

    /// The health of the tree whose root is `root`, while it runs: the
    /// root's stopping flag, and every supervisor's down children. A
    /// nested supervisor shutting down on its own is down too.
    pub(super) fn read(&self, root: &str) -> Health {
        let posts = self.lock();
        let mut tree = TreeState::Running;
        let mut down = Vec::new();
        for (path, post) in &posts.by_path {
            if post.stopping {
                if **path == *root {
                    tree = TreeState::Stopping;
                } else {
                    down.push(DownChild {
                        path: path.to_string(),
                        state: ChildState::Stopping,
                        reason: None,
                    });
                }
            }
            down.extend(post.down.iter().cloned());
        }
        down.sort_by(|a, b| a.path.cmp(&b.path));
        Health { tree, down }
    }
}

/// A supervisor's place on its tree's board.
pub(super) struct HealthPost {
    board: HealthBoard,
    instance: u64,
    /// The static children, in declaration order.
    pub(super) statics: Vec<Arc<str>>,
    /// What was posted last, to post only changes.
    last: Option<(bool, Vec<DownChild>)>,
}

impl HealthPost {
    pub(super) fn new(board: HealthBoard) -> Self {
        let instance = board.instance();
        HealthPost {
            board,
            instance,
            statics: Vec::new(),
            last: None,
        }
    }

    pub(super) fn board(&self) -> &HealthBoard {
        &self.board
    }
}

impl Supervisor {
    /// Posts whether this supervisor stops and which of its static
    /// children are down, when that changed. O(static children): the
    /// dynamic ones are never looked at.
    pub(super) fn post_health(&mut self) {
        let stopping = self.shutdown.is_some();
        let down: Vec<DownChild> = self
            .health
            .statics
            .iter()
            .filter_map(|name| {
                let child = self.children.get(name)?;
                let reason = match (&child.life, child.life.state()) {
                    (Lifecycle::WaitingForInput, _) => {
                        child.last_exit.as_ref().map(|e| e.to_string())
                    }
                    (_, ChildState::Failed) => child.last_error.clone(),
                    _ => return None,
                };
                Some(DownChild {
                    path: format!("{}/{name}", self.path),
                    state: child.life.state(),
                    reason,
                })
            })
            .collect();
        if self
            .health
            .last
            .as_ref()
            .is_some_and(|(s, d)| *s == stopping && *d == down)
        {
            return;
        }
        let post = Post {
            instance: self.health.instance,
            stopping,
            down: down.clone(),
        };
        self.health
            .board
            .lock()
            .by_path
            .insert(self.path.clone(), post);
        self.health.last = Some((stopping, down));
    }

    /// Takes this instance's post off the board: it is gone, and its
    /// parent says so if that matters.
    pub(super) fn withdraw_health(&mut self) {
        let mut posts = self.health.board.lock();
        if posts
            .by_path
            .get(&self.path)
            .is_some_and(|post| post.instance == self.health.instance)
        {
            posts.by_path.remove(&self.path);
        }
    }
}
