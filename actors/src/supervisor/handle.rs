//! The stable handle through which a host or a parent talks to a
//! supervisor.

use std::future::Future;

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::actor::Supervisor;
use super::error::SupervisorError;
use super::report::{Report, ReportOptions};
use super::spec::ChildSpec;
use crate::mailbox::{Mailbox, SendError};

/// The stable handle of a supervisor: add and remove dynamic children, ask
/// for the report. Cheap to clone; valid across the supervisor's restarts.
#[derive(Clone, Debug)]
pub struct SupervisorRef(pub(super) Mailbox<Supervisor>);

impl Default for SupervisorRef {
    fn default() -> Self {
        Self::new()
    }
}

impl SupervisorRef {
    /// A handle for a supervisor not started yet; requests to it fail with
    /// [`SendError::NotRunning`] until it is.
    pub fn new() -> Self {
        Self::with_capacity(4096)
    }

    /// Like [`SupervisorRef::new`], with room for `capacity` requests
    /// waiting (each [`SupervisorRef::add_all`] is one request).
    pub fn with_capacity(capacity: usize) -> Self {
        SupervisorRef(Mailbox::new(capacity))
    }

    /// The supervisor's mailbox (its metering shows requests to it).
    pub fn mailbox(&self) -> &Mailbox<Supervisor> {
        &self.0
    }

    /// Adds a dynamic child and starts it.
    pub fn add(
        &self,
        child: ChildSpec,
    ) -> impl Future<Output = Result<(), SupervisorError>> + use<> {
        let call = self
            .0
            .call(move |sup: &mut Supervisor, ctx| sup.add_child(child, ctx));
        async move { call.await? }
    }

    /// Adds many dynamic children in one request; stops at the first error.
    pub fn add_all(
        &self,
        children: Vec<ChildSpec>,
    ) -> impl Future<Output = Result<(), SupervisorError>> + use<> {
        let call = self.0.call(move |sup: &mut Supervisor, ctx| {
            children
                .into_iter()
                .try_for_each(|child| sup.add_child(child, ctx))
        });
        async move { call.await? }
    }

    /// Stops a dynamic child (within its shutdown timeout) and removes it;
    /// resolves once it is gone.
    pub fn remove(&self, name: &str) -> impl Future<Output = Result<(), SupervisorError>> + use<> {
        let name = name.to_owned();
        let call = self
            .0
            .call(move |sup: &mut Supervisor, ctx| sup.remove_child(&name, ctx));
        async move {
            let gone = call.await??;
            // A closed channel means the supervisor stopped, which removed it.
            let _ = gone.await;
            Ok(())
        }
    }

    /// Removes many dynamic children in one request; resolves once they are
    /// all gone. Fails, removing none, when one of them is not a dynamic
    /// child.
    pub fn remove_all<I, S>(
        &self,
        names: I,
    ) -> impl Future<Output = Result<(), SupervisorError>> + use<I, S>
    where
        I: IntoIterator<Item = S> + Send + 'static,
        S: AsRef<str>,
    {
        let call = self.0.call(move |sup: &mut Supervisor, ctx| {
            let names: Vec<S> = names.into_iter().collect();
            if let Some(bad) = names.iter().find(|n| !sup.is_dynamic_child(n.as_ref())) {
                return Err(sup.no_such_child(bad.as_ref()));
            }
            names
                .iter()
                .map(|n| sup.remove_child(n.as_ref(), ctx))
                .collect::<Result<Vec<_>, _>>()
        });
        async move {
            for gone in call.await?? {
                let _ = gone.await;
            }
            Ok(())
        }
    }

    /// Kills the child at `path` (a child's name, or a path through nested
    /// supervisors: `muster/presence/cluster`) at once, as if it had
    /// failed: its supervisor restarts it, or not, as its policy says, and
    /// counts the failure towards its restart intensity. For a host's
    /// tests and an operator's last resort; a child killed this way gets
    /// no chance to stop gracefully.
    pub fn kill(&self, path: &str) -> BoxFuture<'static, Result<(), SupervisorError>> {
        match path.split_once('/') {
            None => {
                let name = path.to_owned();
                let call = self
                    .0
                    .call(move |sup: &mut Supervisor, ctx| sup.kill_child(&name, ctx));
                Box::pin(async move { call.await? })
            }
            Some((first, rest)) => {
                let (first, rest) = (first.to_owned(), rest.to_owned());
                let call = self
                    .0
                    .call(move |sup: &mut Supervisor, _ctx| sup.nested_child(&first));
                Box::pin(async move { call.await??.kill(&rest).await })
            }
        }
    }

    /// Which of `names` are not dynamic children of the supervisor, in the
    /// order given: one lookup per name, so asking about a few costs little
    /// however many children there are (a [`report`](Self::report) lists,
    /// and asks, every one of them).
    pub fn absent_dynamic_children(
        &self,
        names: Vec<String>,
    ) -> impl Future<Output = Result<Vec<String>, SendError>> + use<> {
        self.0.call(move |sup: &mut Supervisor, _ctx| {
            names
                .into_iter()
                .filter(|name| !sup.is_dynamic_child(name))
                .collect()
        })
    }

    /// The supervisor's report, with its children's own reports: a row
    /// for every child.
    pub fn report(&self) -> impl Future<Output = Result<Report, SendError>> + use<> {
        self.report_with(ReportOptions::every_child())
    }

    /// The supervisor's report, gathered as `options` say: large dynamic
    /// groups, here and in nested supervisors, may be folded into counts.
    pub fn report_with(
        &self,
        options: ReportOptions,
    ) -> impl Future<Output = Result<Report, SendError>> + use<> {
        let (tx, rx) = oneshot::channel();
        let sent = self.0.control(Box::new(move |sup: &mut Supervisor, _ctx| {
            let gather = sup.report(options);
            actix::spawn(async move {
                let _ = tx.send(gather.await);
            });
        }));
        let child = self.0.meter().name();
        async move {
            if !sent {
                return Err(SendError::NotRunning { child });
            }
            rx.await.map_err(|_| SendError::Lost { child })
        }
    }
}
