//! The muster supervision tree on actix.
//!
//! This crate runs the core of [`muster`] as a tree of supervised actors: a
//! presence actor with one sub-actor per API server, and a machine watcher
//! with one poller actor per machine, under a root supervisor.
//!
//! A host starts the whole tree with [`Muster::start`] and talks to it
//! through the returned handle (see `examples/embed.rs`).
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

pub mod gateway;
pub mod host;
pub mod machines;
pub mod mailbox;
pub mod metrics;
pub mod presence;
pub mod supervisor;
mod ticks;

pub use actix;
pub use muster;

pub use host::{Backends, InvalidConfig, Muster, MusterConfig, StartError};
pub use mailbox::{Envelope, Mailbox, SendError, Supervised, TrySendError};
pub use metrics::{MailboxStats, Metrics};
pub use supervisor::{
    ChildReport, ChildSpec, ChildState, ConfigError, DownChild, DynamicPolicy, DynamicSummary,
    Exit, ExitSlot, Health, Kept, Report, ReportOptions, Reporter, RestartConfig, RestartCounts,
    RestartPolicy, Root, StartCtx, StateCounts, StatePolicy, SupervisorError, SupervisorRef,
    SupervisorSpec, TreeError, TreeState,
};
