//! The root of a supervision tree, as its host holds it.

use std::future::Future;
use std::sync::{Arc, Mutex};

use actix::ActorContext;
use slog::Logger;
use tokio::sync::watch;

use super::actor::Supervisor;
use super::error::{SupervisorError, TreeError};
use super::exit::{Exit, ExitSlot};
use super::handle::SupervisorRef;
use super::health::{Health, HealthBoard, TreeState};
use super::report::{Report, ReportOptions};
use super::spec::{SupervisorSpec, check_name};
use super::task::{Notify, spawn_actor};
use crate::mailbox::SendError;
use crate::metrics::{Meter, Metrics};
use muster::sync::lock;

/// A supervision tree, as its host holds it. Cheap to clone, so that one
/// task can wait for the tree while another shuts it down.
///
/// [`Root::start`] starts one at once. A host that must hand its root out
/// before it starts it (to an HTTP surface, itself a child of the tree,
/// that reports the tree and its health) makes it with [`Root::new`] and
/// starts it with [`Root::run`].
#[derive(Clone, Debug)]
pub struct Root {
    handle: SupervisorRef,
    exit: watch::Receiver<Option<Exit>>,
    /// Where the exit is told; taken by the one start.
    exit_tx: Arc<Mutex<Option<watch::Sender<Option<Exit>>>>>,
    name: Arc<str>,
    health: HealthBoard,
}

impl Root {
    /// Validates `spec` and starts it as the root supervisor called `name`.
    /// Must be called inside a running actix `System`. Every child logs
    /// through a child of `logger`; metrics go to `metrics`.
    pub fn start(
        name: &str,
        spec: SupervisorSpec,
        logger: Logger,
        metrics: Metrics,
    ) -> Result<Root, SupervisorError> {
        let root = Root::new(name)?;
        root.run(spec, logger, metrics)?;
        Ok(root)
    }

    /// A root called `name` that runs nothing yet: its report answers
    /// [`SendError::NotRunning`] and its health says it is starting, until
    /// [`Root::run`] starts it.
    pub fn new(name: &str) -> Result<Root, SupervisorError> {
        check_name(name)?;
        let (tx, rx) = watch::channel(None);
        Ok(Root {
            handle: SupervisorRef::new(),
            exit: rx,
            exit_tx: Arc::new(Mutex::new(Some(tx))),
            name: Arc::from(name),
            health: HealthBoard::default(),
        })
    }

    /// Validates `spec` and starts it under this root, once. Must be called
    /// inside a running actix `System`. Every child logs through a child
    /// of `logger`; metrics go to `metrics`.
    pub fn run(
        &self,
        spec: SupervisorSpec,
        logger: Logger,
        metrics: Metrics,
    ) -> Result<(), SupervisorError> {
        let name = &*self.name;
        spec.validate(name)?;
        if actix::System::try_current().is_none() {
            return Err(SupervisorError::NoSystem);
        }
        let Some(tx) = lock(&self.exit_tx).take() else {
            return Err(SupervisorError::AlreadyStarted(name.to_owned()));
        };
        let seed = spec.config.jitter_seed.unwrap_or_else(rand::random);
        let exit = ExitSlot::default();
        Meter::bind(self.handle.0.meter(), name, &metrics, name);
        let sup = Supervisor::new(
            name,
            spec,
            logger,
            metrics,
            exit.clone(),
            seed,
            self.health.clone(),
        );
        let notify: Notify = Box::new(move |exit| {
            let _ = tx.send(Some(exit));
        });
        spawn_actor(sup, &self.handle.0, exit, notify, None);
        Ok(())
    }

    /// The root supervisor's handle.
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.handle
    }

    /// The tree's report, a row for every child.
    pub fn report(&self) -> impl Future<Output = Result<Report, SendError>> + use<> {
        self.handle.report()
    }

    /// The tree's report, gathered as `options` say.
    pub fn report_with(
        &self,
        options: ReportOptions,
    ) -> impl Future<Output = Result<Report, SendError>> + use<> {
        self.handle.report_with(options)
    }

    /// The tree's health: whether it runs, and which static children,
    /// anywhere in it, are failed or waiting for an input. Read from what
    /// the supervisors posted as their children changed: no message, no
    /// walk of the tree, the same cost under a hundred thousand dynamic
    /// children as under none.
    pub fn health(&self) -> Health {
        match self.exit.borrow().clone() {
            Some(Exit::Fatal(error) | Exit::Failed(error)) => Health {
                tree: TreeState::GaveUp(error),
                down: Vec::new(),
            },
            Some(_) => Health {
                tree: TreeState::Stopped,
                down: Vec::new(),
            },
            None => self.health.read(&self.name),
        }
    }

    /// Asks the tree to shut down: children stop in reverse start order,
    /// each within its timeout. Returns false when the root was not running.
    pub fn shutdown(&self) -> bool {
        self.handle
            .0
            .control(Box::new(|_sup: &mut Supervisor, ctx| ctx.stop()))
    }

    /// Waits until the tree has stopped: `Ok` after a shutdown, the error
    /// when a fatal exit or a failure of the root stopped it. Any number of
    /// waiters may wait, before or after the tree stopped.
    pub fn wait(&self) -> impl Future<Output = Result<(), TreeError>> + use<> {
        let mut exit = self.exit.clone();
        async move {
            let exit = match exit.wait_for(Option::is_some).await {
                Ok(exit) => exit.clone(),
                Err(_) => None,
            };
            match exit {
                Some(Exit::Fatal(e)) => Err(TreeError::Fatal(e)),
                Some(Exit::Failed(e)) => Err(TreeError::Failed(e)),
                Some(_) => Ok(()),
                None => Err(TreeError::Failed("the root's task was dropped".to_owned())),
            }
        }
    }

    /// Whether the tree has stopped.
    pub fn is_stopped(&self) -> bool {
        self.exit.borrow().is_some()
    }
}
