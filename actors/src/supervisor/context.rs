//! What a start function gets: the child's name and path, its inputs'
//! outputs, its exit slot, its logger, and the state it keeps across
//! restarts.

use muster::sync::lock;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use actix::ArbiterHandle;
use slog::Logger;

use super::exit::{Exit, ExitSlot};
use super::health::HealthBoard;
use super::policy::StatePolicy;
use crate::metrics::Metrics;

/// State kept by the supervisor across a child's restarts (see
/// [`StatePolicy::Kept`]). Cheap to clone. A panic while the state is locked
/// does not poison it: keeping the state through a failure is the point.
#[derive(Debug, Default)]
pub struct Kept<S>(Arc<Mutex<S>>);

impl<S> Clone for Kept<S> {
    fn clone(&self) -> Self {
        Kept(self.0.clone())
    }
}

impl<S> Kept<S> {
    /// A cell holding `state`.
    pub fn new(state: S) -> Self {
        Kept(Arc::new(Mutex::new(state)))
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        lock(&self.0)
    }

    /// Runs `f` on the state.
    pub fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.lock())
    }
}

/// What a running child gives its dependents (see [`StartCtx::input`]).
pub(super) type Output = Arc<dyn Any + Send + Sync>;

/// The cell a child's kept state lives in between its starts.
pub(super) type KeptSlot = Mutex<Option<Box<dyn Any + Send>>>;

/// What a start function gets: the child's name, its inputs' outputs, its
/// exit slot, its logger and its kept state.
pub struct StartCtx<'a> {
    pub(super) name: &'a str,
    pub(super) path: &'a str,
    pub(super) metrics_label: &'a str,
    pub(super) start_count: u64,
    pub(super) declared: &'a [String],
    pub(super) outputs: &'a HashMap<Arc<str>, Output>,
    pub(super) exit: ExitSlot,
    pub(super) logger: Logger,
    pub(super) base_logger: &'a Logger,
    pub(super) kept: &'a KeptSlot,
    pub(super) state: StatePolicy,
    pub(super) output: Option<Output>,
    pub(super) metrics: &'a Metrics,
    pub(super) seed: u64,
    pub(super) health: &'a HealthBoard,
    /// The arbiter the child runs on; its supervisor's when `None`.
    pub(super) arbiter: Option<ArbiterHandle>,
}

impl StartCtx<'_> {
    /// The child's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The child's path in the tree, e.g. `root/pollers/machine-3`.
    pub fn path(&self) -> &str {
        self.path
    }

    /// 1 on the first start, then one more on each restart.
    pub fn start_count(&self) -> u64 {
        self.start_count
    }

    /// The child's logger: it carries the child's name (`child`) and its
    /// supervisor's path (`supervisor`).
    pub fn logger(&self) -> &Logger {
        &self.logger
    }

    /// The slot through which the actor reports why it stops.
    pub fn exit_slot(&self) -> ExitSlot {
        self.exit.clone()
    }

    /// The output of the input `input`, which must be one of the child's
    /// declared inputs. Returns [`Exit::Missing`] when that input is not
    /// running, and a failure naming the input and the expected type when its
    /// output is not a `T`; so `cx.input::<T>("x")?` in a start function does
    /// the right thing.
    pub fn input<T: Any + Clone + Send + Sync>(&self, input: &str) -> Result<T, Exit> {
        if !self.declared.iter().any(|d| d == input) {
            return Err(Exit::Failed(format!(
                "{} asked for input {input}, which it does not declare",
                self.name
            )));
        }
        let Some(output) = self.outputs.get(input) else {
            return Err(Exit::missing(input));
        };
        output.downcast_ref::<T>().cloned().ok_or_else(|| {
            Exit::Failed(format!(
                "input {input} of {} is not a {}",
                self.name,
                std::any::type_name::<T>()
            ))
        })
    }

    /// The child's state cell. With [`StatePolicy::Kept`] it is made by
    /// `init` on the first start and handed back unchanged on every restart;
    /// with [`StatePolicy::Rebuilt`] `init` runs on every start. Fails when a
    /// previous start kept a state of another type.
    pub fn kept<S: Send + 'static>(&mut self, init: impl FnOnce() -> S) -> Result<Kept<S>, Exit> {
        let mut slot = lock(self.kept);
        if self.state == StatePolicy::Rebuilt {
            *slot = None;
        }
        if let Some(existing) = slot.as_ref() {
            return existing.downcast_ref::<Kept<S>>().cloned().ok_or_else(|| {
                Exit::Failed(format!(
                    "kept state of {} is not a {}",
                    self.name,
                    std::any::type_name::<S>()
                ))
            });
        }
        let cell = Kept::new(init());
        *slot = Some(Box::new(cell.clone()));
        Ok(cell)
    }

    /// Sets what dependents get from [`StartCtx::input`]. By default an actor
    /// child's output is its [`Mailbox`](crate::mailbox::Mailbox), and a
    /// supervisor child's is its [`SupervisorRef`](super::SupervisorRef).
    pub fn set_output<T: Any + Send + Sync>(&mut self, output: T) {
        self.output = Some(Arc::new(output));
    }
}
