//! Models polled only while the host holds them (docs/spec.md §11.7): the
//! host's [`ModelHolds`], and the `held` child of the `models` supervisor
//! that keeps exactly the held models' machines subtrees running.
//!
//! Each model's subtree is made once, with the tree: its record of
//! machines and each poller's schedule live in it, so a model released
//! and held again resumes every machine's phase where it was. Released,
//! its subtree is removed and nothing of it polls.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use muster::names::{MachineTag, ModelUuid};
use muster::sync::lock;
use slog::{Logger, debug, warn};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::mailbox::Mailbox;
use crate::supervisor::{ChildSpec, SupervisorError, SupervisorRef};

/// The name of the child of `models` that starts and stops the held
/// models' subtrees.
pub const HELD_CHILD: &str = "held";

/// The group of the models' subtrees under `models`, when the host holds
/// them.
pub const HELD_GROUP: &str = "models";

/// The models a host wants polled by this tree, when it decides at run
/// time (a node that polls the models it holds a lease on). Cheap to
/// clone: clones share one set. Give it to the tree with
/// [`Extensions::hold_models`](super::Extensions::hold_models).
///
/// A hold may be given until a time ([`ModelHolds::hold_until`]): past it,
/// the model's provider calls and its pollers' registry writes are refused
/// ([`ModelHolds::is_valid`]) even before the holder gets round to
/// releasing it, as after a pause of the whole process.
#[derive(Clone)]
pub struct ModelHolds {
    held: Arc<watch::Sender<BTreeSet<ModelUuid>>>,
    until: Arc<Mutex<BTreeMap<ModelUuid, Instant>>>,
    /// Which node polls each model, as the host last learnt it.
    holders: Arc<Mutex<BTreeMap<ModelUuid, MachineTag>>>,
}

impl Default for ModelHolds {
    fn default() -> Self {
        ModelHolds {
            held: Arc::new(watch::Sender::new(BTreeSet::new())),
            until: Arc::default(),
            holders: Arc::default(),
        }
    }
}

impl fmt::Debug for ModelHolds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelHolds")
            .field("held", &*self.held.borrow())
            .finish()
    }
}

impl ModelHolds {
    /// No model held.
    pub fn new() -> Self {
        ModelHolds::default()
    }

    /// Polls `model` from now on: its subtree starts (again), resuming its
    /// machines' phases. False when it was held already.
    pub fn hold(&self, model: ModelUuid) -> bool {
        lock(&self.until).remove(&model);
        self.held.send_if_modified(|held| held.insert(model))
    }

    /// Polls `model` as [`ModelHolds::hold`] does, its calls and writes
    /// allowed until `until` (by the monotonic clock), when the hold must
    /// have been given again. False when it was held already.
    pub fn hold_until(&self, model: ModelUuid, until: Instant) -> bool {
        lock(&self.until).insert(model, until);
        self.held.send_if_modified(|held| held.insert(model))
    }

    /// Stops polling `model`: its subtree, watcher and pollers, stop, and
    /// which node polls it is not known until noted again. False when it
    /// was not held.
    pub fn release(&self, model: &ModelUuid) -> bool {
        lock(&self.until).remove(model);
        let released = self.held.send_if_modified(|held| held.remove(model));
        if released {
            lock(&self.holders).remove(model);
        }
        released
    }

    /// Whether `model` may be called for, or written for, now: held, and
    /// not past the time its hold was given until.
    pub fn is_valid(&self, model: &ModelUuid) -> bool {
        self.is_held(model)
            && lock(&self.until)
                .get(model)
                .is_none_or(|until| Instant::now() < *until)
    }

    /// Whether `model` is held.
    pub fn is_held(&self, model: &ModelUuid) -> bool {
        self.held.borrow().contains(model)
    }

    /// The models held now.
    pub fn held(&self) -> BTreeSet<ModelUuid> {
        self.held.borrow().clone()
    }

    /// Notes which node polls `model` (this one or another), or that none
    /// is known to: what the host says when asked who polls it.
    pub fn note_holder(&self, model: ModelUuid, holder: Option<MachineTag>) {
        let mut holders = lock(&self.holders);
        match holder {
            Some(holder) => holders.insert(model, holder),
            None => holders.remove(&model),
        };
    }

    /// The node that polls `model`, as last noted; `None` when none is
    /// known to.
    pub fn holder(&self, model: &ModelUuid) -> Option<MachineTag> {
        lock(&self.holders).get(model).cloned()
    }

    fn subscribe(&self) -> watch::Receiver<BTreeSet<ModelUuid>> {
        self.held.subscribe()
    }
}

/// The `held` child: follows the holds and adds or removes each model's
/// subtree so that exactly the held ones run. It reconciles on every start,
/// so a restart of `models`, which loses its dynamic children, brings the
/// held models back at once.
struct Keeper {
    holds: ModelHolds,
    subtrees: Arc<BTreeMap<ModelUuid, ChildSpec>>,
    supervisor: SupervisorRef,
    /// What the last reconciliation left running.
    running: BTreeSet<ModelUuid>,
    log: Logger,
}

crate::supervised!(Keeper);

impl Actor for Keeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let mut held = self.holds.subscribe();
        let subtrees = self.subtrees.clone();
        let supervisor = self.supervisor.clone();
        let address = ctx.address();
        let log = self.log.clone();
        // Ends with the keeper: the future is the context's.
        let follow = async move {
            loop {
                let wanted = held.borrow_and_update().clone();
                match reconcile(&supervisor, &subtrees, &wanted).await {
                    Ok(()) => address.do_send(Reconciled(wanted)),
                    Err(e) => {
                        warn!(log, "the held models' subtrees could not be changed"; "error" => %e);
                        return;
                    }
                }
                if held.changed().await.is_err() {
                    return;
                }
            }
        };
        ctx.spawn(follow.into_actor(self));
    }
}

/// What the last reconciliation left running.
#[derive(Message)]
#[rtype(result = "()")]
struct Reconciled(BTreeSet<ModelUuid>);

impl Handler<Reconciled> for Keeper {
    type Result = ();

    fn handle(&mut self, done: Reconciled, _ctx: &mut Context<Self>) {
        debug!(self.log, "held models running"; "count" => done.0.len());
        self.running = done.0;
    }
}

/// Adds the subtree of every model in `wanted` and removes every other's,
/// each ignoring one already there or already gone.
async fn reconcile(
    supervisor: &SupervisorRef,
    subtrees: &BTreeMap<ModelUuid, ChildSpec>,
    wanted: &BTreeSet<ModelUuid>,
) -> Result<(), SupervisorError> {
    for (model, spec) in subtrees {
        if wanted.contains(model) {
            match supervisor.add(spec.clone()).await {
                Ok(()) | Err(SupervisorError::Duplicate { .. }) => {}
                Err(e) => return Err(e),
            }
        } else {
            match supervisor.remove(&model.to_string()).await {
                Ok(()) | Err(SupervisorError::NoSuchChild { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The `held` child of `models`, starting and stopping `subtrees` (each
/// model's machines subtree, by model) as `holds` says.
pub(super) fn keeper_child(
    holds: ModelHolds,
    subtrees: BTreeMap<ModelUuid, ChildSpec>,
    supervisor: SupervisorRef,
) -> ChildSpec {
    let mailbox: Mailbox<Keeper> = Mailbox::new(16);
    let subtrees = Arc::new(subtrees);
    ChildSpec::actor(HELD_CHILD, &mailbox, move |cx| {
        Ok(Keeper {
            holds: holds.clone(),
            subtrees: subtrees.clone(),
            supervisor: supervisor.clone(),
            running: BTreeSet::new(),
            log: cx.logger().clone(),
        })
    })
    .report(mailbox.reporter(|keeper: &Keeper| {
        serde_json::json!({
            "held": keeper.holds.held(),
            "running": keeper.running,
        })
    }))
}
