//! The report of a supervision tree: the plain serde data, the reporters
//! that complete it with children's own reports, and how a supervisor
//! gathers it.

use muster::sync::lock;
use std::sync::Arc;

pub use crate::metrics::RestartCounts;
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
    /// name (unless folded into `dynamic`).
    pub children: Vec<ChildReport>,
    /// The dynamic children folded into counts, when the report was asked
    /// to fold a group this large (see [`ReportOptions`]); they are then
    /// left out of `children`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic: Option<DynamicSummary>,
}

/// How much of a tree's report to gather.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportOptions {
    /// A supervisor with more dynamic children than this reports them as
    /// one [`DynamicSummary`] instead of a row each; `None` lists every
    /// child. Applies to every supervisor of the tree.
    pub fold_dynamic_over: Option<usize>,
}

impl ReportOptions {
    /// Every child, a row each.
    pub fn every_child() -> Self {
        ReportOptions::default()
    }

    /// Dynamic groups of more than `n` children folded into counts.
    pub fn folding_over(n: usize) -> Self {
        ReportOptions {
            fold_dynamic_over: Some(n),
        }
    }
}

/// A supervisor's dynamic children in a few numbers: what a report holds
/// instead of a row for each of thousands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicSummary {
    /// The group's name, e.g. `pollers`.
    pub group: String,
    /// How many children it holds.
    pub children: usize,
    /// How many are in each state.
    pub states: StateCounts,
    /// Their restarts, by reason, added up.
    pub restarts: RestartCounts,
    /// The messages waiting in their mailboxes, added up.
    pub mailbox_depth: usize,
}

/// Children by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    /// See [`ChildState::Starting`].
    pub starting: usize,
    /// See [`ChildState::Started`].
    pub started: usize,
    /// See [`ChildState::Stopping`].
    pub stopping: usize,
    /// See [`ChildState::Stopped`].
    pub stopped: usize,
    /// See [`ChildState::Failed`].
    pub failed: usize,
}

impl StateCounts {
    fn count(&mut self, state: ChildState) {
        *match state {
            ChildState::Starting => &mut self.starting,
            ChildState::Started => &mut self.started,
            ChildState::Stopping => &mut self.stopping,
            ChildState::Stopped => &mut self.stopped,
            ChildState::Failed => &mut self.failed,
        } += 1;
    }
}

impl DynamicSummary {
    fn add(&mut self, child: &Child) {
        self.children += 1;
        self.states.count(child.life.state());
        let r = &child.restarts;
        self.restarts.failure += r.failure;
        self.restarts.bounce += r.bounce;
        self.restarts.done += r.done;
        self.restarts.dependency += r.dependency;
        self.mailbox_depth += mailbox_stats(child).map_or(0, |s| s.depth);
    }
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

/// The counters of a child's mailbox.
fn mailbox_stats(child: &Child) -> Option<MailboxStats> {
    lock(&child.spec.starter).stats()
}

/// A child's row, without its own report.
fn child_report(name: &str, c: &Child, now: Instant) -> ChildReport {
    ChildReport {
        name: name.to_owned(),
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
            u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
        }),
        restarts: c.restarts.clone(),
        mailbox: mailbox_stats(c),
        report: None,
    }
}

impl Supervisor {
    /// A snapshot of the children now, completed by their own reports;
    /// nested supervisors report with the same `options`.
    pub(super) fn report(&mut self, options: ReportOptions) -> LocalBoxFuture<'static, Report> {
        let now = Instant::now();
        let dynamic_count = self.children.values().filter(|c| c.dynamic).count();
        let fold = options
            .fold_dynamic_over
            .is_some_and(|over| dynamic_count > over);
        let mut summary = fold.then(|| DynamicSummary {
            group: self
                .dynamic
                .as_ref()
                .map(|g| g.group.clone())
                .unwrap_or_default(),
            ..DynamicSummary::default()
        });
        let mut order: Vec<(&Arc<str>, &Child)> = Vec::new();
        for (name, child) in &self.children {
            match summary.as_mut() {
                Some(summary) if child.dynamic => summary.add(child),
                _ => order.push((name, child)),
            }
        }
        order.sort_by(|a, b| (a.1.decl, a.0).cmp(&(b.1.decl, b.0)));
        let mut pending = Vec::new();
        let children: Vec<ChildReport> = order
            .into_iter()
            .enumerate()
            .map(|(i, (name, c))| {
                if c.life.instance().is_some() {
                    if let Some(reporter) = &c.spec.reporter {
                        pending.push((i, reporter()));
                    } else if let Some(nested) = &c.spec.nested {
                        let report = nested.report_with(options);
                        pending.push((
                            i,
                            Box::pin(async move {
                                report.await.ok().and_then(|r| serde_json::to_value(r).ok())
                            }),
                        ));
                    }
                }
                child_report(name, c, now)
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
            dynamic: summary,
        };
        Box::pin(async move {
            for (i, fut) in pending {
                report.children[i].report = fut.await;
            }
            report
        })
    }
}
