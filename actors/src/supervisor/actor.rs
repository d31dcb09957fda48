//! The supervisor actor: what it holds, how it starts and stops as an actix
//! actor, and how it learns that a child's instance ended.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message};
use rand::SeedableRng;
use rand::rngs::StdRng;
use slog::{Logger, info, o};

use super::context::Output;
use super::exit::{Exit, ExitSlot};
use super::health::{HealthBoard, HealthPost};
use super::lifecycle::Child;
use super::placement::Arbiters;
use super::policy::{Intensity, RestartConfig};
use super::shutdown::Shutdown;
use super::spec::{ChildSpec, DynamicPolicy, SupervisorSpec};
use super::status::StatusCell;
use super::timers::Timers;
use crate::metrics::Metrics;

/// The supervisor actor. Hosts reach it through [`Root`](super::Root) and
/// [`SupervisorRef`](super::SupervisorRef); it is public only so that its
/// mailbox can be named.
pub struct Supervisor {
    pub(super) path: Arc<str>,
    pub(super) config: RestartConfig,
    pub(super) dynamic: Option<DynamicPolicy>,
    /// Where the dynamic children run, in turn.
    pub(super) spread: Arbiters,
    /// The turn of the next dynamic child added.
    pub(super) spread_next: usize,
    /// The host's logger, from which every supervisor of the tree makes
    /// its own, so that a nested one does not repeat its parent's keys.
    pub(super) base_logger: Logger,
    pub(super) logger: Logger,
    pub(super) metrics: Metrics,
    pub(super) rng: StdRng,
    pub(super) exit: ExitSlot,
    /// The declared children, until `started` starts them.
    pub(super) pending: Vec<ChildSpec>,
    // Boxed: the map's spare capacity then costs a pointer, not a Child.
    pub(super) children: HashMap<Arc<str>, Box<Child>>,
    pub(super) group_label: Option<Arc<str>>,
    /// The running children by start order.
    pub(super) running_order: BTreeMap<u64, Arc<str>>,
    pub(super) next_seq: u64,
    /// For each child, the children that list it as an input.
    pub(super) dependents: HashMap<Arc<str>, BTreeSet<Arc<str>>>,
    /// The outputs of the running static children.
    pub(super) outputs: HashMap<Arc<str>, Output>,
    pub(super) intensity: Intensity,
    pub(super) shutdown: Option<Shutdown>,
    pub(super) addr: Option<Addr<Supervisor>>,
    pub(super) timers: Timers,
    /// Where the host watches this supervisor across its incarnations.
    pub(super) status: Option<StatusCell>,
    /// Its place on the tree's health board.
    pub(super) health: HealthPost,
}

/// An instance of a child ended with `exit`.
pub(super) struct ChildExited {
    pub(super) name: Arc<str>,
    pub(super) generation: u64,
    pub(super) exit: Exit,
}

impl Message for ChildExited {
    type Result = ();
}

crate::supervised!(Supervisor);

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.addr = Some(ctx.address());
        info!(self.logger, "supervisor started"; "children" => self.pending.len());
        self.health.statics = self.pending.iter().map(|s| s.name.clone()).collect();
        for spec in std::mem::take(&mut self.pending) {
            let name = spec.name.clone();
            let decl = self.children.len();
            self.insert(spec, false, decl);
            self.start_child(&name, ctx);
        }
        if let Some(status) = self.status.as_ref().filter(|_| self.shutdown.is_none()) {
            status.started();
        }
        self.post_health();
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> actix::Running {
        if tokio::runtime::Handle::try_current().is_err() {
            // Dropped with its system: nothing can run any more.
            return actix::Running::Stop;
        }
        if self.shutdown.is_none() {
            self.begin_shutdown(None, ctx);
        }
        self.post_health();
        if self.shutdown.as_ref().is_some_and(|s| s.done) {
            actix::Running::Stop
        } else {
            actix::Running::Continue
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.withdraw_health();
        // Normally every child has stopped before its supervisor does. A
        // supervisor that panicked, or was killed, must not leave its
        // children running with nobody to watch them.
        for child in self.children.values_mut() {
            if let Some(instance) = child.life.end().instance {
                (instance.handle.kill)();
            }
        }
        if let Some(status) = &self.status {
            status.dropped();
        }
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        let current = self.children.get(&msg.name).is_some_and(|c| {
            c.life
                .instance()
                .is_some_and(|i| i.generation == msg.generation)
        });
        if current {
            self.exited(&msg.name, msg.exit, ctx);
            self.post_health();
        }
    }
}

impl Supervisor {
    pub(super) fn new(
        path: &str,
        spec: SupervisorSpec,
        logger: Logger,
        metrics: Metrics,
        exit: ExitSlot,
        seed: u64,
        health: HealthBoard,
    ) -> Self {
        let seed = spec.config.jitter_seed.unwrap_or(seed);
        let group_label = spec
            .dynamic
            .as_ref()
            .map(|g| Arc::from(format!("{path}/{}", g.group)));
        Supervisor {
            path: Arc::from(path),
            config: spec.config,
            dynamic: spec.dynamic,
            spread: spec.spread,
            spread_next: 0,
            logger: logger.new(o!("supervisor" => path.to_owned())),
            base_logger: logger,
            metrics,
            rng: StdRng::seed_from_u64(seed),
            exit,
            pending: spec.children,
            children: HashMap::new(),
            group_label,
            running_order: BTreeMap::new(),
            next_seq: 0,
            dependents: HashMap::new(),
            outputs: HashMap::new(),
            intensity: Intensity::default(),
            shutdown: None,
            addr: None,
            timers: Timers::default(),
            status: spec.status,
            health: HealthPost::new(health),
        }
    }

    /// Adds a child, not started yet, with its place in the dependency map.
    pub(super) fn insert(&mut self, spec: ChildSpec, dynamic: bool, decl: usize) {
        let name = spec.name.clone();
        for input in spec.inputs.iter() {
            self.dependents
                .entry(Arc::from(input.as_str()))
                .or_default()
                .insert(name.clone());
        }
        let metrics_label: Arc<str> = match (&self.group_label, dynamic) {
            (Some(group), true) => group.clone(),
            _ => Arc::from(format!("{}/{}", self.path, name)),
        };
        let shutdown_timeout = spec.shutdown_timeout.unwrap_or(if spec.is_supervisor {
            None
        } else {
            Some(self.config.shutdown_timeout)
        });
        let child = Child::new(spec, dynamic, decl, metrics_label, shutdown_timeout);
        self.children.insert(name, Box::new(child));
    }
}
