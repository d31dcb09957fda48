//! [`Inspector`]: what the HTTP surface answers from.

use std::sync::Arc;

use muster_actors::host::Muster;
use muster_actors::{Health, Readiness, Report, ReportOptions, Root, SendError, TreeState};
use muster_registry::Registry as MachineRegistry;
use prometheus_client::registry::Registry;

use crate::gauges::StateGauges;
use crate::history::History;

/// What the HTTP surface serves: the tree's handle, the metrics registry
/// (complete: nothing registers after the server starts), the state gauges
/// in it, the history, the optional token, the machine registry, and the
/// host's tree when muster is one child of it. Cheap to clone.
#[derive(Clone)]
pub struct Inspector {
    pub(crate) muster: Muster,
    pub(crate) registry: Arc<Registry>,
    pub(crate) gauges: StateGauges,
    pub(crate) history: History,
    pub(crate) token: Option<Arc<str>>,
    /// The machine registry of the models, when there are some.
    pub(crate) machines: Option<MachineRegistry>,
    /// The host's whole tree, reported and checked in place of muster's.
    tree: Option<Root>,
    /// What the host's parts say of whether the node can do its job.
    readiness: Readiness,
}

impl Inspector {
    /// Serves `muster`; `registry` must already hold the tree's metrics and
    /// `gauges`. `token` is expected to follow
    /// [`validate_token`](muster::token::validate_token). Its history is
    /// empty until [`Inspector::with_history`].
    pub fn new(
        muster: Muster,
        registry: impl Into<Arc<Registry>>,
        gauges: StateGauges,
        token: Option<String>,
    ) -> Self {
        Inspector {
            muster,
            registry: registry.into(),
            gauges,
            history: History::new(),
            token: token.map(Arc::from),
            machines: None,
            tree: None,
            readiness: Readiness::new(),
        }
    }

    /// Serves `history` as `/api/history`.
    pub fn with_history(self, history: History) -> Self {
        Inspector { history, ..self }
    }

    /// Serves the machine registry of the models (`/api/models/{uuid}/…`,
    /// docs/spec.md §10.5), and shows it in `/api/report`.
    pub fn with_registry(self, machines: Option<MachineRegistry>) -> Self {
        Inspector { machines, ..self }
    }

    /// Reports and checks the host's whole tree (`/api/report`,
    /// `/healthz`), of which muster is one child, rather than muster's
    /// own; so the host's other children, the door and this surface's own
    /// child among them, show too. The root may be one not started yet
    /// ([`Root::new`]).
    pub fn with_tree(self, root: Root) -> Self {
        Inspector {
            tree: Some(root),
            ..self
        }
    }

    /// Answers `/readyz` from `readiness`, which the host's parts keep,
    /// beside the tree's own health.
    pub fn with_readiness(self, readiness: Readiness) -> Self {
        Inspector { readiness, ..self }
    }

    /// Why the node cannot do its job now, by part: what `/readyz`
    /// answers; empty when it can. muster not running (restarting, given
    /// up) and a static child of the tree down count, beside what the
    /// parts said.
    pub(crate) fn unready(&self) -> Vec<(String, String)> {
        let mut causes = Vec::new();
        let muster = self.muster.health();
        if muster.tree != TreeState::Running {
            causes.push(("muster".to_owned(), muster.to_string()));
        }
        if let Some(root) = &self.tree {
            let tree = root.health();
            if !tree.is_healthy() {
                causes.push(("tree".to_owned(), tree.to_string().replace('\n', "; ")));
            }
        }
        causes.extend(self.readiness.causes());
        causes
    }

    /// The health `/healthz` answers.
    pub(crate) fn health(&self) -> Health {
        match &self.tree {
            Some(root) => root.health(),
            None => self.muster.health(),
        }
    }

    /// The report `/api/report` answers.
    pub(crate) async fn report(&self, options: ReportOptions) -> Result<Report, SendError> {
        match &self.tree {
            Some(root) => root.report_with(options).await,
            None => self.muster.report_with(options).await,
        }
    }
}
