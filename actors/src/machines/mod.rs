//! The instance poller as actors (docs/spec.md §2): a [`MachineWatcher`] that follows
//! the model's machines, and one [`MachinePoller`] per provisioned machine,
//! under a nested supervisor.
//!
//! The watcher consumes the model facade's machine watcher. A new machine gets
//! a poller, added as a dynamic child of the "pollers" group and named by its
//! tag; a manually provisioned one is marked running and never polled. An
//! event about a known machine refreshes it: a dead or removed machine's
//! poller is stopped, any other is told to go back to the short phase.
//!
//! Each poller owns its machine's schedule ([`PollState`]), asks the
//! [`ProviderGateway`] for the instance when it is due, applies the update
//! rules of [`update_machine`], and sets a timer for its next poll. The
//! gateway batches the requests of pollers that fall due together.
//!
//! A poller's schedule and what it last saw live in a shared cell made by the
//! watcher: a restarted poller resumes from its phase and interval, and
//! [`MachinesHandle`] answers queries from the cells without messaging
//! thousands of pollers. The watcher's own record of the machines outlives
//! its restarts, so a restarted watcher reads every machine again without
//! starting a second poller for any of them.
//!
//! ```text
//!  model's machine watcher
//!        │ batches of tags, in order
//!        ▼
//!  MachineWatcher (watcher.rs) ── one batch (changes.rs) ──▶ PollerGroup (group.rs)
//!        │ records machines, makes cells                     │ adds, removes, lists
//!        ▼                                                    ▼
//!  Registry (registry.rs)  ◀──── writes its cell ──── MachinePoller (poller.rs), one a machine
//!  tag → machine, status cell                                │ Fetch when due
//!        ▲                                                    ▼
//!  MachinesHandle (handle.rs): the host's questions    ProviderGateway (crate::gateway)
//! ```
//!
//! `subtree.rs` builds the supervisor child that holds it all;
//! `config.rs` holds its settings.
//!
//! [`PollState`]: muster::poll::PollState
//! [`ProviderGateway`]: crate::gateway::ProviderGateway
//! [`update_machine`]: muster::update::update_machine

mod changes;
mod config;
mod group;
mod handle;
mod poller;
mod registry;
mod subtree;
mod watcher;

pub use config::MachinesConfig;
pub use handle::{MachineState, MachinesHandle, PhaseCounts, Tracking};
pub use poller::{MachinePoller, Reset};
pub(crate) use subtree::subtree;
pub use subtree::{POLLERS_GROUP, WATCHER_CHILD, machines_child, model_machines_child};
pub use watcher::MachineWatcher;
