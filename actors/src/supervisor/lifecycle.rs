//! A supervised child as its supervisor holds it: its specification, the
//! one state its life is in, and what it has been through.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::exit::Exit;
use super::report::{ChildState, RestartCounts};
use super::spec::ChildSpec;
use super::task::InstanceHandle;
use super::timers::TimerKey;
use crate::metrics::RestartReason;

/// A child of a supervisor.
pub(super) struct Child {
    pub(super) spec: ChildSpec,
    /// Added at run time rather than declared.
    pub(super) dynamic: bool,
    /// Its place among the declared children (dynamic ones share the last).
    pub(super) decl: usize,
    /// The label of its metrics series: its path, or its dynamic group's.
    pub(super) metrics_label: Arc<str>,
    /// How long it may take to stop; `None` waits for ever.
    pub(super) shutdown_timeout: Option<Duration>,
    pub(super) life: Lifecycle,
    pub(super) start_count: u64,
    /// When it last started, for the report.
    pub(super) started_at: Option<SystemTime>,
    pub(super) last_exit: Option<Exit>,
    pub(super) last_error: Option<String>,
    /// Failures since its last long run, as the backoff counts them.
    pub(super) recent_failures: u32,
    pub(super) restarts: RestartCounts,
    /// Callers of `remove` waiting for it to be gone.
    pub(super) removal_waiters: Vec<oneshot::Sender<()>>,
}

impl Child {
    /// A child not started yet.
    pub(super) fn new(
        spec: ChildSpec,
        dynamic: bool,
        decl: usize,
        metrics_label: Arc<str>,
        shutdown_timeout: Option<Duration>,
    ) -> Self {
        Child {
            spec,
            dynamic,
            decl,
            metrics_label,
            shutdown_timeout,
            life: Lifecycle::Pending,
            start_count: 0,
            started_at: None,
            last_exit: None,
            last_error: None,
            recent_failures: 0,
            restarts: RestartCounts::default(),
            removal_waiters: Vec::new(),
        }
    }
}

/// Why the supervisor asked a child to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StopReason {
    /// One of its inputs stopped: it is started again after the bounce delay.
    Dependency,
    /// It is being removed.
    Remove,
    /// Its supervisor is shutting down.
    Shutdown,
}

/// A running instance of a child.
pub(super) struct Instance {
    pub(super) handle: InstanceHandle,
    /// The start that made it (the child's `start_count` then): an exit
    /// reported by an earlier instance is stale.
    pub(super) generation: u64,
    /// Its place in the supervisor's start order, which shutdown reverses.
    pub(super) seq: u64,
    /// When it started: a long run resets the backoff.
    pub(super) since: Instant,
}

/// Where a child is in its life, holding what that state needs.
pub(super) enum Lifecycle {
    /// Not started yet: just declared or added, or its start function is
    /// running (the restart timer that called it has fired).
    Pending,
    /// Running.
    Running(Instance),
    /// Asked to stop; its exit has not arrived yet. `deadline` is the
    /// timer that kills it if it takes longer than its shutdown timeout.
    Stopping {
        instance: Instance,
        reason: StopReason,
        deadline: Option<TimerKey>,
    },
    /// Not running; started again when `timer` fires.
    Restarting {
        timer: TimerKey,
        reason: RestartReason,
    },
    /// Not running; started again when one of its inputs starts.
    WaitingForInput,
    /// Not running, and nothing will start it.
    Stopped,
    /// Its last run failed, and nothing will start it (or, while its start
    /// function runs, the restart after that failure is under way).
    Failed,
}

/// What ended with a run, or with a start that failed.
pub(super) struct EndedRun {
    /// The instance, when there was one.
    pub(super) instance: Option<Instance>,
    /// Why the supervisor stopped it, when it did.
    pub(super) reason: Option<StopReason>,
    /// The stop deadline that was set for it.
    pub(super) deadline: Option<TimerKey>,
}

impl Lifecycle {
    /// The state the report shows.
    pub(super) fn state(&self) -> ChildState {
        match self {
            Lifecycle::Pending => ChildState::Starting,
            Lifecycle::Running(_) => ChildState::Started,
            Lifecycle::Stopping { .. } => ChildState::Stopping,
            Lifecycle::Restarting {
                reason: RestartReason::Failure,
                ..
            } => ChildState::Failed,
            Lifecycle::Restarting { .. } => ChildState::Starting,
            Lifecycle::WaitingForInput | Lifecycle::Stopped => ChildState::Stopped,
            Lifecycle::Failed => ChildState::Failed,
        }
    }

    /// The running instance, also while it is stopping.
    pub(super) fn instance(&self) -> Option<&Instance> {
        match self {
            Lifecycle::Running(instance) | Lifecycle::Stopping { instance, .. } => Some(instance),
            _ => None,
        }
    }

    /// The scheduled restart.
    pub(super) fn restart_timer(&self) -> Option<TimerKey> {
        match self {
            Lifecycle::Restarting { timer, .. } => Some(*timer),
            _ => None,
        }
    }

    /// The stop deadline.
    pub(super) fn deadline(&self) -> Option<TimerKey> {
        match self {
            Lifecycle::Stopping { deadline, .. } => *deadline,
            _ => None,
        }
    }

    /// Moves a running child to stopping for `reason`, and returns true; a
    /// child already stopping takes `reason` as the latest one, and returns
    /// false, as does a child that is not running.
    pub(super) fn stop(&mut self, reason: StopReason) -> bool {
        match std::mem::replace(self, Lifecycle::Stopped) {
            Lifecycle::Running(instance) => {
                *self = Lifecycle::Stopping {
                    instance,
                    reason,
                    deadline: None,
                };
                true
            }
            Lifecycle::Stopping {
                instance, deadline, ..
            } => {
                *self = Lifecycle::Stopping {
                    instance,
                    reason,
                    deadline,
                };
                false
            }
            other => {
                *self = other;
                false
            }
        }
    }

    /// Ends the run (or the failed start) and leaves the child not running:
    /// `Failed` if it was, else `Stopped`, until the supervisor decides
    /// what follows.
    pub(super) fn end(&mut self) -> EndedRun {
        let after = match self {
            Lifecycle::Failed => Lifecycle::Failed,
            _ => Lifecycle::Stopped,
        };
        match std::mem::replace(self, after) {
            Lifecycle::Running(instance) => EndedRun {
                instance: Some(instance),
                reason: None,
                deadline: None,
            },
            Lifecycle::Stopping {
                instance,
                reason,
                deadline,
            } => EndedRun {
                instance: Some(instance),
                reason: Some(reason),
                deadline,
            },
            _ => EndedRun {
                instance: None,
                reason: None,
                deadline: None,
            },
        }
    }
}
