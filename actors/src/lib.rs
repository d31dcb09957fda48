//! The muster supervision tree on actix.
//!
//! This crate runs the core of [`muster`] as a tree of supervised actors: a
//! presence actor with one sub-actor per API server, and a machine watcher
//! with one poller actor per machine, under a root supervisor.
//!
//! A host starts the whole tree under a root of its own with
//! [`Muster::start`] (see `examples/embed.rs`), or mounts it as one child of
//! its own supervision tree with [`Muster::child`], next to its own workers
//! and restarted by its own policy (see `examples/host_tree.rs`). Either
//! way it talks to muster through the returned handle, which stays valid
//! across every restart of muster. A host that needs a child of its own
//! inside muster's tree (a bridge carrying presence to other processes)
//! mounts it with [`Extensions`] through [`Muster::start_with`] or
//! [`Muster::child_with`].
//!
//! # A host's own tree
//!
//! What a host builds its tree with is re-exported at the crate's root, and
//! is the surface this crate keeps stable:
//! - the tree: [`SupervisorSpec`] with its [`RestartConfig`] and
//!   [`DynamicPolicy`], and [`ChildSpec`] for each child (an actor, a
//!   nested supervisor, or muster itself from [`Muster::child`]), with its
//!   [`RestartPolicy`] and [`StatePolicy`];
//! - running it: [`Root`] (start, report, shutdown, wait), [`SupervisorRef`]
//!   for a nested supervisor, [`StatusWatch`] to follow one across its
//!   restarts, and the [`Report`] they answer;
//! - the actors: [`Mailbox`] and [`supervised!`] make an actor supervisable;
//!   its start function gets a [`StartCtx`] and says why it stops through
//!   its [`ExitSlot`] with an [`Exit`]; [`Kept`] holds what it keeps across
//!   restarts;
//! - the metrics: one [`Metrics`], registered once in the host's registry
//!   and handed to the host's [`Root`], serves the whole tree, muster's
//!   subtree included.
//!
//! The machinery every actor runs under:
//! - [`supervisor`]: named children with inputs and outputs, restart
//!   policies, backoff, restart intensity, dynamic children, ordered
//!   shutdown, panics caught as failures, and the [`Report`] of the tree;
//! - [`mailbox`]: the stable, metered, bounded address of a supervised actor;
//! - [`metrics`]: the `prometheus-client` series the host registers.
//!
//! The daemon `musterd`, which hosts this tree with a config file and an
//! HTTP inspection surface, is a crate of its own.

mod gate;
pub mod gateway;
pub mod host;
pub mod machines;
pub mod mailbox;
pub mod metrics;
pub mod presence;
mod readiness;
pub mod supervisor;
mod ticks;

pub use actix;
pub use muster;

pub use host::{
    Backends, CloudAccount, DEFAULT_RESTART_WAIT, Extensions, Fleet, InvalidConfig, ModelBackends,
    ModelHandle, ModelHolds, ModelInfo, Muster, MusterConfig, StartError,
};
pub use mailbox::{Envelope, Mailbox, Metered, SendError, Supervised, TrySendError};
pub use metrics::{MailboxStats, Metrics};
pub use readiness::Readiness;
pub use supervisor::{
    Arbiters, ChildReport, ChildSpec, ChildState, DownChild, DynamicPolicy, DynamicSummary, Exit,
    ExitSlot, Health, Kept, Report, ReportOptions, Reporter, RestartConfig, RestartCounts,
    RestartPolicy, Root, StartCtx, StateCounts, StatePolicy, StatusWatch, SupervisorError,
    SupervisorRef, SupervisorSpec, SupervisorStatus, TreeError, TreeState,
};
