//! The report of a supervision tree: the plain serde data, the reporters
//! that complete it with children's own reports, and how a supervisor
//! gathers it.

use std::sync::Arc;

use actix::Context;
use futures::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::actor::Supervisor;
use super::exit::Exit;
use super::lifecycle::{Child, Lifecycle};
use super::policy::{RestartPolicy, StatePolicy};
use crate::mailbox::{Mailbox, Supervised};
use crate::metrics::MailboxStats;

/// Where a child is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChildState {
    /// Waiting to be started: a restart is scheduled after a bounce or a
    /// normal exit, or the first start has not happened yet.
    Starting,
    /// Running.
    Started,
    /// Asked to stop; waiting for it to finish.
    Stopping,
    /// Not running and not scheduled: waiting for an input, or finished.
    Stopped,
    /// Its last run failed; a restart may be scheduled (see `restart_in_ms`).
    Failed,
}

/// Restarts of one child, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartCounts {
    /// After a failure or a panic.
    pub failure: u64,
    /// After the child asked to be bounced.
    pub bounce: u64,
    /// After a normal exit of a permanent child.
    pub done: u64,
    /// Because one of its inputs stopped or restarted.
    pub dependency: u64,
}

/// One child in a supervisor's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildReport {
    /// The child's name.
    pub name: String,
    /// Where it is in its life.
    pub state: ChildState,
    /// The children it needs.
    pub inputs: Vec<String>,
    /// Its restart policy.
    pub restart: RestartPolicy,
    /// Whether its state is kept across restarts.
    pub state_policy: StatePolicy,
    /// Whether it was added at run time.
    pub dynamic: bool,
    /// Whether it is waiting for one of its inputs.
    pub waiting_for_input: bool,
    /// How many times it was started.
    pub start_count: u64,
    /// When it was last started (RFC 3339, wall clock).
    pub started_at: Option<String>,
    /// How it last exited.
    pub last_exit: Option<Exit>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// Failures since its last long run, as the backoff counts them.
    pub recent_failures: u32,
    /// Milliseconds until a scheduled restart.
    pub restart_in_ms: Option<u64>,
    /// Restarts by reason.
    pub restarts: RestartCounts,
    /// Its mailbox's counters (actor children).
    pub mailbox: Option<MailboxStats>,
    /// The child's own report: a nested supervisor's [`Report`], or what an
    /// actor's reporter returned.
    pub report: Option<serde_json::Value>,
}

/// A supervisor's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The supervisor's path in the tree.
    pub path: String,
    /// `started`, or `stopping` while it shuts down.
    pub state: ChildState,
    /// Restarts counted in the current intensity window.
    pub recent_restarts: usize,
    /// The children: static ones in declaration order, then dynamic ones by
    /// name.
    pub children: Vec<ChildReport>,
}

impl Report {
    /// The child called `name`, if any.
    pub fn child(&self, name: &str) -> Option<&ChildReport> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// A child's own report, produced on demand.
pub type Reporter =
    Arc<dyn Fn() -> LocalBoxFuture<'static, Option<serde_json::Value>> + Send + Sync>;

impl<A: Supervised> Mailbox<A> {
    /// A [`Reporter`] that asks the running actor for its report with `f`;
    /// give it to [`ChildSpec::report`](super::ChildSpec::report).
    pub fn reporter<F>(&self, f: F) -> Reporter
    where
        F: Fn(&A) -> serde_json::Value + Send + Sync + 'static,
    {
        let mailbox = self.clone();
        let f = Arc::new(f);
        Arc::new(move || {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let f = f.clone();
            let sent = mailbox.control(Box::new(move |act: &mut A, _ctx: &mut Context<A>| {
                let _ = tx.send(f(act));
            }));
            Box::pin(async move { if sent { rx.await.ok() } else { None } })
        })
    }
}

impl Supervisor {
    /// A snapshot of the children now, completed by their own reports.
    pub(super) fn report(&mut self) -> LocalBoxFuture<'static, Report> {
        let now = Instant::now();
        let mut order: Vec<(&Arc<str>, &Child)> =
            self.children.iter().map(|(k, v)| (k, &**v)).collect();
        order.sort_by(|a, b| (a.1.decl, a.0).cmp(&(b.1.decl, b.0)));
        let mut pending = Vec::new();
        let children: Vec<ChildReport> = order
            .into_iter()
            .enumerate()
            .map(|(i, (name, c))| {
                if c.life.instance().is_some()
                    && let Some(reporter) = &c.spec.reporter
                {
                    pending.push((i, reporter()));
                }
                ChildReport {
                    name: name.to_string(),
                    state: c.life.state(),
                    inputs: c.spec.inputs.to_vec(),
                    restart: c.spec.restart,
                    state_policy: c.spec.state,
                    dynamic: c.dynamic,
                    waiting_for_input: matches!(c.life, Lifecycle::WaitingForInput),
                    start_count: c.start_count,
                    started_at: c
                        .started_at
                        .map(|t| humantime::format_rfc3339_millis(t).to_string()),
                    last_exit: c.last_exit.clone(),
                    last_error: c.last_error.clone(),
                    recent_failures: c.recent_failures,
                    restart_in_ms: c.life.restart_timer().map(|(at, _)| {
                        u64::try_from(at.saturating_duration_since(now).as_millis())
                            .unwrap_or(u64::MAX)
                    }),
                    restarts: c.restarts.clone(),
                    mailbox: c
                        .spec
                        .starter
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .stats(),
                    report: None,
                }
            })
            .collect();
        let mut report = Report {
            path: self.path.to_string(),
            state: if self.shutdown.is_some() {
                ChildState::Stopping
            } else {
                ChildState::Started
            },
            recent_restarts: self.intensity.recent(),
            children,
        };
        Box::pin(async move {
            for (i, fut) in pending {
                report.children[i].report = fut.await;
            }
            report
        })
    }
}
