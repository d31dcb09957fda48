//! A supervisor's status as seen from outside, across all its incarnations:
//! what a host's handle waits on while its parent restarts the supervisor.

use std::sync::Arc;

use tokio::sync::watch;

use super::exit::Exit;
use super::report::ChildState;

/// Where a watched supervisor is (see [`SupervisorSpec::with_status`]).
///
/// [`SupervisorSpec::with_status`]: super::SupervisorSpec::with_status
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorStatus {
    /// `starting` until its first incarnation has started its static
    /// children; `started` from then until it begins to shut down;
    /// `stopping` while it shuts down; then `stopped` after a clean stop or
    /// `failed` after an error, until its parent starts it again.
    pub state: ChildState,
    /// How many incarnations have started their children so far.
    pub starts: u64,
    /// How the last incarnation ended; `None` before the first one ended.
    pub last_exit: Option<Exit>,
}

/// The sending side, shared by the specification and every incarnation
/// made from it; when the last of them is dropped, nothing can start the
/// supervisor again and every [`StatusWatch`] sees it gone.
#[derive(Clone, Debug)]
pub(super) struct StatusCell(Arc<watch::Sender<SupervisorStatus>>);

impl StatusCell {
    /// An incarnation has started its static children.
    pub(super) fn started(&self) {
        self.0.send_modify(|s| {
            s.state = ChildState::Started;
            s.starts += 1;
        });
    }

    /// An incarnation began to shut down.
    pub(super) fn stopping(&self) {
        self.0.send_modify(|s| s.state = ChildState::Stopping);
    }

    /// An incarnation ended with `exit`.
    pub(super) fn stopped(&self, exit: Exit) {
        self.0.send_modify(|s| {
            s.state = match exit {
                Exit::Failed(_) | Exit::Fatal(_) => ChildState::Failed,
                _ => ChildState::Stopped,
            };
            s.last_exit = Some(exit);
        });
    }

    /// An incarnation is being dropped: unless it finished its shutdown, it
    /// panicked or was killed, which is a failure.
    pub(super) fn dropped(&self) {
        if matches!(
            self.0.borrow().state,
            ChildState::Started | ChildState::Stopping
        ) {
            self.stopped(Exit::Failed(
                "the supervisor ended without shutting down: it panicked or was killed".to_owned(),
            ));
        }
    }
}

/// Watches a supervisor's [`SupervisorStatus`] across its incarnations.
/// Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct StatusWatch(watch::Receiver<SupervisorStatus>);

impl StatusWatch {
    /// The status now.
    pub fn get(&self) -> SupervisorStatus {
        self.0.borrow().clone()
    }

    /// Runs `f` on the status now, without copying it.
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&SupervisorStatus) -> R) -> R {
        f(&self.0.borrow())
    }

    /// Whether nothing can start the supervisor again: the specification
    /// and every incarnation made from it are gone (its parent dropped it,
    /// or the tree it belonged to stopped).
    pub fn is_gone(&self) -> bool {
        self.0.has_changed().is_err()
    }

    /// Waits until the status satisfies `f` and answers it; once the
    /// supervisor is gone without satisfying it, answers its last status as
    /// the error.
    pub async fn wait_for(
        &self,
        f: impl FnMut(&SupervisorStatus) -> bool,
    ) -> Result<SupervisorStatus, SupervisorStatus> {
        let mut rx = self.0.clone();
        let result = rx.wait_for(f).await.map(|s| s.clone());
        result.map_err(|_| rx.borrow().clone())
    }

    /// Waits until the supervisor is gone (see [`StatusWatch::is_gone`]),
    /// and answers its last status.
    pub async fn gone(&self) -> SupervisorStatus {
        let mut rx = self.0.clone();
        while rx.changed().await.is_ok() {}
        rx.borrow().clone()
    }
}

/// A new status, `starting`, with its cell and a watch on it.
pub(super) fn status() -> (StatusCell, StatusWatch) {
    let (tx, rx) = watch::channel(SupervisorStatus {
        state: ChildState::Starting,
        starts: 0,
        last_exit: None,
    });
    (StatusCell(Arc::new(tx)), StatusWatch(rx))
}
