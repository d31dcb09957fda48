//! What every call through the host's handle passes: while muster is not
//! running (its parent is restarting it), the call waits for it, at most the
//! handle's restart wait, and answers [`SendError::Unavailable`] past it or
//! once nothing will start muster again (docs/spec.md §8.3).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{Either, select};

use crate::mailbox::SendError;
use crate::supervisor::{ChildState, StatusWatch};

/// The gate of a handle. A handle made for a subtree used on its own has an
/// open gate: its calls go straight through.
#[derive(Clone, Default)]
pub(crate) struct Gate(Option<Arc<Watched>>);

struct Watched {
    /// The subsystem's name, for the errors.
    name: String,
    status: StatusWatch,
    wait: Duration,
}

impl Watched {
    fn unavailable(&self, reason: String) -> SendError {
        SendError::Unavailable {
            subsystem: self.name.clone(),
            reason,
        }
    }

    /// Waits until the subsystem runs, at most the restart wait; answers
    /// how many times it has started by then.
    async fn running(&self) -> Result<u64, SendError> {
        // The common case, muster running, costs one read of the watch.
        let running = self
            .status
            .peek(|s| (s.state == ChildState::Started).then_some(s.starts));
        if let Some(starts) = running {
            return Ok(starts);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            // The wait is timed on tokio's clock, which only a task of a
            // tokio runtime can use.
            return Err(self.unavailable(
                "it is not running, and a call made outside a tokio runtime cannot wait for it"
                    .to_owned(),
            ));
        }
        let started = self.status.wait_for(|s| s.state == ChildState::Started);
        match tokio::time::timeout(self.wait, started).await {
            Ok(Ok(status)) => Ok(status.starts),
            Ok(Err(last)) => {
                let reason = match last.last_exit {
                    Some(exit) => format!("it stopped for good, its last exit: {exit}"),
                    None => "nothing can start it any more".to_owned(),
                };
                Err(self.unavailable(reason))
            }
            Err(_) => Err(self.unavailable(format!(
                "it is not running and did not start within {}",
                humantime::format_duration(self.wait)
            ))),
        }
    }

    /// Resolves, with the error, once the subsystem has been down for the
    /// whole restart wait, or has stopped for good.
    async fn watchdog(&self) -> SendError {
        loop {
            let down = self.status.wait_for(|s| s.state != ChildState::Started);
            if down.await.is_err() {
                return self.unavailable("nothing can start it any more".to_owned());
            }
            if let Err(error) = self.running().await {
                return error;
            }
        }
    }

    /// Whether the incarnation that had started `starts` times is still
    /// the one running.
    fn still_running(&self, starts: u64) -> bool {
        self.status
            .peek(|now| now.state == ChildState::Started && now.starts == starts)
    }
}

impl Gate {
    /// A gate that waits on `status`, at most `wait` each time the
    /// subsystem called `name` is down.
    pub(crate) fn new(name: &str, status: StatusWatch, wait: Duration) -> Self {
        Gate(Some(Arc::new(Watched {
            name: name.to_owned(),
            status,
            wait,
        })))
    }

    /// The same gate with another wait.
    pub(crate) fn with_wait(&self, wait: Duration) -> Self {
        match &self.0 {
            Some(watched) => Gate::new(&watched.name, watched.status.clone(), wait),
            None => Gate(None),
        }
    }

    /// Makes `call` once the subsystem runs. A call under way when the
    /// subsystem goes down waits for the next incarnation to answer it (at
    /// most the restart wait); `call` should go through mailboxes that keep
    /// their messages across restarts, or need no actor at all.
    pub(crate) async fn call<T, F, Fut>(&self, call: F) -> Result<T, SendError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, SendError>>,
    {
        let Some(watched) = &self.0 else {
            return call().await;
        };
        watched.running().await?;
        guarded(watched, call()).await
    }

    /// Like [`Gate::call`] for a question that may be asked again: when
    /// its answer is that an actor is not running or stopped before
    /// answering, because the whole subsystem went down meanwhile, it is
    /// asked again of the next incarnation.
    pub(crate) async fn call_again<T, F, Fut>(&self, mut call: F) -> Result<T, SendError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SendError>>,
    {
        let Some(watched) = &self.0 else {
            return call().await;
        };
        loop {
            let starts = watched.running().await?;
            match guarded(watched, call()).await {
                Err(SendError::NotRunning { .. } | SendError::Lost { .. })
                    if !watched.still_running(starts) => {}
                answer => return answer,
            }
        }
    }
}

/// Runs `call` unless the watchdog fires first.
async fn guarded<T>(
    watched: &Watched,
    call: impl Future<Output = Result<T, SendError>>,
) -> Result<T, SendError> {
    // The call is polled first: one that answers at once never sets up the
    // watchdog.
    match select(pin!(call), pin!(watched.watchdog())).await {
        Either::Left((answer, _)) => answer,
        Either::Right((error, _)) => Err(error),
    }
}
