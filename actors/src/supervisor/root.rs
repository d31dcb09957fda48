//! The root of a supervision tree, as its host holds it.

use std::future::Future;
use std::sync::Arc;

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

/// A running supervision tree, as its host holds it. Cheap to clone, so
/// that one task can wait for the tree while another shuts it down.
#[derive(Clone, Debug)]
pub struct Root {
    handle: SupervisorRef,
    exit: watch::Receiver<Option<Exit>>,
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
        check_name(name)?;
        spec.validate(name)?;
        if actix::System::try_current().is_none() {
            return Err(SupervisorError::NoSystem);
        }
        let handle = SupervisorRef::new();
        let seed = spec.config.jitter_seed.unwrap_or_else(rand::random);
        let exit = ExitSlot::default();
        Meter::bind(handle.0.meter(), name, &metrics, name);
        let health = HealthBoard::default();
        let sup = Supervisor::new(
            name,
            spec,
            logger,
            metrics,
            exit.clone(),
            seed,
            health.clone(),
        );
        let (tx, rx) = watch::channel(None);
        let notify: Notify = Box::new(move |exit| {
            let _ = tx.send(Some(exit));
        });
        spawn_actor(sup, &handle.0, exit, notify);
        Ok(Root {
            handle,
            exit: rx,
            name: Arc::from(name),
            health,
        })
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
