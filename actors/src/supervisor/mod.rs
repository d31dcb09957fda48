//! Supervisors: trees of named children with inputs, restart policies,
//! backoff, restart intensity, dynamic children and ordered shutdown.
//!
//! A supervisor is an actix actor that runs each child on a task of its own
//! and learns how it ended: the reason the child left in its [`ExitSlot`], or
//! a panic caught anywhere in the child's future (handlers, `started`,
//! `stopping`, timers, intervals). What follows depends on the exit and the
//! child's [`RestartPolicy`]:
//!
//! | exit | permanent | transient | temporary |
//! | --- | --- | --- | --- |
//! | [`Exit::Failed`] (or a panic) | restart after backoff | restart after backoff | stays failed |
//! | [`Exit::Done`] | restart after the bounce delay | stays stopped | stays stopped |
//! | [`Exit::Bounce`] | restart after the bounce delay | restart after the bounce delay | stays stopped |
//! | [`Exit::Missing`] | waits until an input starts | same | same |
//! | [`Exit::Uninstall`] | removed | removed | removed |
//! | [`Exit::Fatal`] | the supervisor stops its children and exits fatally; up to the root | same | same |
//!
//! Whenever a child stops, the running children that list it as an input are
//! bounced: stopped and started again after the bounce delay. A child that
//! waits for an input is started when one of its inputs starts.
//!
//! Restarts after a child's own exit (not dependency bounces) count towards
//! the restart intensity: more than `max_restarts` within `restart_window`
//! and the supervisor stops its children and fails to its parent, which
//! treats that like any failure of a child. The root reports it to the host.
//!
//! # How the pieces fit
//!
//! ```text
//! host ──▶ Root (root.rs) ──┐     SupervisorRef (handle.rs): add, remove, report
//!                           ▼                 │
//!         Supervisor actor (actor.rs) ◀───────┘
//!         built from a SupervisorSpec and ChildSpecs (spec.rs; nested.rs: a sub-tree),
//!         holds one Child per name (lifecycle.rs), whose Lifecycle moves so:
//!
//!           Pending ──start.rs──▶ Running ──stop.rs──▶ Stopping
//!              ▲                     │ exit               │ exit, or killed
//!              │ timers.rs           └─────────┬──────────┘ at its deadline
//!              │                               ▼
//!           Restarting ◀────────── restart.rs decides ──▶ WaitingForInput (started
//!                                                        when an input starts),
//!                                                        Stopped, Failed, removed
//!
//!         Each instance runs on a guarded task (task.rs) and is started with a
//!         StartCtx (context.rs). dynamic.rs adds and removes children at run
//!         time; shutdown.rs stops them in reverse start order; report.rs
//!         gathers the Report; policy.rs holds the delays and the intensity;
//!         status.rs publishes where the supervisor is to a StatusWatch that
//!         outlives each incarnation, for a host whose tree restarts it.
//! ```

mod actor;
mod context;
mod dynamic;
mod error;
mod exit;
mod handle;
mod health;
mod lifecycle;
mod nested;
mod placement;
mod policy;
mod report;
mod restart;
mod root;
mod shutdown;
mod spec;
mod start;
mod status;
mod stop;
mod task;
mod timers;

pub use actor::Supervisor;
pub use context::{Kept, StartCtx};
pub use error::{SupervisorError, TreeError};
pub use exit::{Exit, ExitSlot};
pub use handle::SupervisorRef;
pub use health::{DownChild, Health, TreeState};
pub use placement::Arbiters;
pub use policy::{RestartConfig, RestartPolicy, StatePolicy};
pub use report::{
    ChildReport, ChildState, DynamicSummary, Report, ReportOptions, Reporter, RestartCounts,
    StateCounts,
};
pub use root::Root;
pub(crate) use spec::check_name;
pub use spec::{ChildSpec, DynamicPolicy, SupervisorSpec};
pub use status::{StatusWatch, SupervisorStatus};
