//! The host's entry points, and the handle for every question muster
//! answers.
//!
//! [`Muster::start`] runs muster as a tree of its own, under a root it
//! makes; [`Muster::child`] gives a host that runs its own supervision tree
//! muster as one child of it, restarted by the host's policy
//! (docs/spec.md §8). Either way muster's supervisor holds this:
//!
//! ```text
//! root (or the host's name for muster)
//! ├── gateway            ProviderGateway: the pollers' batched path to the cloud
//! ├── presence           supervisor
//! │   ├── router         PresenceActor
//! │   └── servers/…      one ServerPresence per API server (dynamic)
//! └── machines           supervisor
//!     ├── watcher        MachineWatcher
//!     └── pollers/…      one MachinePoller per machine (dynamic)
//! ```
//!
//! Given a [`Fleet`] of many models instead of one model's [`Backends`],
//! it holds a gateway per cloud account and a machines subtree per model
//! (docs/spec.md §10):
//!
//! ```text
//! root
//! ├── gateways           supervisor
//! │   └── ACCOUNT …      one ProviderGateway per cloud account and region
//! ├── presence           as above
//! └── models             supervisor
//!     └── UUID …         one machines supervisor per model
//!         ├── watcher
//!         └── pollers/…
//! ```

mod extend;
mod fenced;
mod holds;
mod models;
mod tree;

use std::sync::Arc;
use std::time::Duration;

use muster::clock::Clock;
pub use muster::config::InvalidConfig;
use muster::config::{Checker, Validate};
use muster::model::{CredentialApi, ModelFacade};
use muster::names::ModelUuid;
use muster::provider::Environ;
use muster::sim::Sim;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use slog::{Logger, info};

use crate::gate::Gate;
use crate::gateway::{
    CredentialValid, GatewayConfig, GatewayMetrics, GatewayReport, GetGatewayReport,
    ProviderGateway, ProviderTotals,
};
use crate::machines::{MachinesConfig, MachinesHandle};
use crate::mailbox::{Mailbox, SendError};
use crate::metrics::Metrics;
use crate::presence::{PresenceConfig, PresenceHandle};
use crate::supervisor::{
    ChildSpec, ChildState, Exit, Health, Report, ReportOptions, RestartConfig, Root, StatusWatch,
    SupervisorError, SupervisorRef, TreeError, TreeState, check_name,
};
pub use models::{CloudAccount, Fleet, FleetError, ModelBackends, ModelHandle, ModelInfo};
pub use tree::{GATEWAYS, MODELS, TreeBackends};

pub use extend::Extensions;
pub use holds::{HELD_CHILD, HELD_GROUP, ModelHolds};

/// Every setting of the tree. Each section has its defaults, so an empty
/// config is a working one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MusterConfig {
    /// Restarts of the root's own children (the gateway and the two
    /// subtrees).
    pub supervision: RestartConfig,
    /// The presence subtree.
    pub presence: PresenceConfig,
    /// The machine watcher and its pollers, with the poll schedule.
    pub machines: MachinesConfig,
    /// The provider gateway.
    pub gateway: GatewayConfig,
}

impl Validate for MusterConfig {
    /// Every section, under its own key: `machines.poll.short_poll`.
    fn check(&self, at: &mut Checker) {
        at.section("supervision", &self.supervision);
        at.section("presence", &self.presence);
        at.section("machines", &self.machines);
        at.section("gateway", &self.gateway);
    }
}

/// What the tree talks to: the cloud, the controller's model, the credential
/// store, and the wall clock that stamps presence.
#[derive(Clone)]
pub struct Backends {
    /// The cloud provider.
    pub environ: Arc<dyn Environ>,
    /// The API server's view of the model.
    pub facade: Arc<dyn ModelFacade>,
    /// Where a denied credential is reported.
    pub credentials: Arc<dyn CredentialApi>,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
}

impl Backends {
    /// The embedded simulated cloud and model.
    pub fn sim(sim: &Sim, clock: Arc<dyn Clock>) -> Self {
        Backends {
            environ: sim.environ(),
            facade: sim.facade(),
            credentials: sim.credential_api(),
            clock,
        }
    }
}

/// Checks what `Muster::start` and `Muster::child` are given beyond the
/// config: a fleet's models and accounts.
fn check(backends: &TreeBackends) -> Result<(), StartError> {
    match backends {
        TreeBackends::One(_) => Ok(()),
        TreeBackends::Many(fleet) => Ok(fleet.check()?),
    }
}

/// Two gateways' reports as one: counts added, the longest throttling
/// wait, every model.
fn add_reports(mut sum: GatewayReport, report: GatewayReport) -> GatewayReport {
    fn add<K: Ord>(
        into: &mut std::collections::BTreeMap<K, u64>,
        from: std::collections::BTreeMap<K, u64>,
    ) {
        for (key, n) in from {
            *into.entry(key).or_default() += n;
        }
    }
    sum.queued += report.queued;
    sum.in_flight += report.in_flight;
    sum.credential_paused |= report.credential_paused;
    sum.credential_invalidations += report.credential_invalidations;
    sum.throttled_for = sum.throttled_for.max(report.throttled_for);
    add(&mut sum.calls, report.calls);
    add(&mut sum.ids, report.ids);
    add(&mut sum.errors, report.errors);
    sum.throttles += report.throttles;
    sum.models.extend(report.models);
    sum
}

/// Why the tree did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Settings are out of range: every one of them, each by its key.
    #[error("invalid config: {0}")]
    Config(#[from] InvalidConfig),
    /// The tree could not be built (for instance, no actix system runs).
    #[error(transparent)]
    Tree(#[from] SupervisorError),
    /// The models and accounts of a fleet do not make a tree.
    #[error("invalid fleet: {0}")]
    Fleet(#[from] FleetError),
}

/// How long a call through the handle waits for muster to run again, by
/// default.
pub const DEFAULT_RESTART_WAIT: Duration = Duration::from_secs(30);

/// The host's handle on muster: cheap to clone, `Send + Sync`, valid for as
/// long as the host keeps muster, across every restart of it.
///
/// Every call through it (its own, and those of [`Muster::presence`] and
/// [`Muster::machines`]) made while muster is not running, because its
/// parent is restarting it, waits until muster runs again, at most the
/// [restart wait](Muster::with_restart_wait) (30 s by default), then answers
/// [`SendError::Unavailable`]. Once nothing will start muster again (its
/// tree stopped, or its parent dropped it) calls answer `Unavailable` at
/// once. A call under way when muster goes down is answered by the next
/// incarnation, within the same wait (docs/spec.md §8.3).
#[derive(Clone)]
pub struct Muster {
    /// Muster's supervisor: the root's, or the one the host's tree runs.
    supervisor: SupervisorRef,
    /// The root, when muster runs as a tree of its own.
    root: Option<Root>,
    status: StatusWatch,
    gate: Gate,
    restart_wait: Duration,
    presence: PresenceHandle,
    machines: MachinesHandle,
    /// Each gateway, by name: `gateway` alone in a tree of one model.
    gateways: Arc<[(String, Mailbox<ProviderGateway>)]>,
    /// Each model of a tree of many; none in a tree of one.
    models: Arc<[ModelHandle]>,
    /// The gateways' series, which outlive every restart.
    provider: GatewayMetrics,
}

impl Muster {
    /// Starts the tree on the current actix system, under a root of its
    /// own called `root`. The metrics go into `registry`; the logs into
    /// `logger`. Nothing global is installed. A config with settings out of
    /// range is refused with all of them, so a host that builds one in code
    /// is held to the ranges a file is. A host with a supervision tree of
    /// its own mounts muster in it with [`Muster::child`] instead.
    ///
    /// `backends` is one model's [`Backends`], or a [`Fleet`] of many
    /// models, which is checked too.
    pub fn start(
        config: &MusterConfig,
        backends: impl Into<TreeBackends>,
        logger: Logger,
        registry: &mut Registry,
    ) -> Result<Muster, StartError> {
        Muster::start_with(config, backends, Extensions::new(), logger, registry)
    }

    /// [`Muster::start`] with the host's own children mounted in muster's
    /// tree (see [`Extensions`]).
    pub fn start_with(
        config: &MusterConfig,
        backends: impl Into<TreeBackends>,
        extensions: Extensions,
        logger: Logger,
        registry: &mut Registry,
    ) -> Result<Muster, StartError> {
        config.validate()?;
        let backends = backends.into();
        check(&backends)?;
        let metrics = Metrics::register(registry);
        let gateway_metrics = GatewayMetrics::new(registry);
        let (spec, handles) = tree::build(config, backends, extensions, gateway_metrics.clone())?;
        let root = Root::start("root", spec, logger.clone(), metrics)?;
        info!(logger, "muster started");
        let supervisor = root.supervisor().clone();
        Ok(Muster::new(
            "root",
            supervisor,
            Some(root),
            handles,
            gateway_metrics,
        ))
    }

    /// The whole of muster as one child called `name` of the host's own
    /// tree, and the handle that reaches it.
    ///
    /// The host adds the [`ChildSpec`] to one of its [`SupervisorSpec`]s
    /// (setting its restart policy if it likes) and starts its tree with
    /// [`Root::start`]; muster logs through that tree's logger, and its
    /// supervision metrics go to that tree's [`Metrics`], which the host
    /// registers once. When muster's own supervisor gives up (its restart
    /// intensity exceeded), that is a failure of this child, and the host's
    /// supervisor restarts it by the host's policy, or gives up in turn.
    /// Each restart keeps what docs/spec.md §8.2 lists.
    ///
    /// The gateway's metrics are registered in `registry` here, once for
    /// all the restarts; call this once per registry.
    ///
    /// [`SupervisorSpec`]: crate::supervisor::SupervisorSpec
    pub fn child(
        name: &str,
        config: &MusterConfig,
        backends: impl Into<TreeBackends>,
        registry: &mut Registry,
    ) -> Result<(ChildSpec, Muster), StartError> {
        Muster::child_with(name, config, backends, Extensions::new(), registry)
    }

    /// [`Muster::child`] with the host's own children mounted in muster's
    /// tree (see [`Extensions`]).
    pub fn child_with(
        name: &str,
        config: &MusterConfig,
        backends: impl Into<TreeBackends>,
        extensions: Extensions,
        registry: &mut Registry,
    ) -> Result<(ChildSpec, Muster), StartError> {
        config.validate()?;
        let backends = backends.into();
        check(&backends)?;
        // Before anything is registered: a refused name must leave the
        // registry as it was.
        check_name(name)?;
        let gateway_metrics = GatewayMetrics::new(registry);
        let (spec, handles) = tree::build(config, backends, extensions, gateway_metrics.clone())?;
        let supervisor = SupervisorRef::new();
        let child = ChildSpec::supervisor(name, spec, &supervisor)?;
        let muster = Muster::new(name, supervisor, None, handles, gateway_metrics);
        Ok((child, muster))
    }

    fn new(
        name: &str,
        supervisor: SupervisorRef,
        root: Option<Root>,
        handles: tree::Handles,
        provider: GatewayMetrics,
    ) -> Self {
        let gate = Gate::new(name, handles.status.clone(), DEFAULT_RESTART_WAIT);
        Muster {
            supervisor,
            root,
            status: handles.status,
            presence: handles.presence.gated(gate.clone()),
            machines: handles.machines.gated(gate.clone()),
            gateways: handles.gateways.into(),
            models: handles
                .models
                .into_iter()
                .map(|model| model.gated(gate.clone()))
                .collect(),
            gate,
            restart_wait: DEFAULT_RESTART_WAIT,
            provider,
        }
    }

    /// The same handle, whose calls wait at most `wait` for muster to run
    /// again. `Duration::ZERO` answers [`SendError::Unavailable`] at once
    /// while muster is not running; `Duration::MAX` waits for as long as
    /// something may still start it.
    pub fn with_restart_wait(mut self, wait: Duration) -> Self {
        self.gate = self.gate.with_wait(wait);
        self.presence = self.presence.gated(self.gate.clone());
        self.machines = self.machines.gated(self.gate.clone());
        self.models = self
            .models
            .iter()
            .map(|model| model.clone().gated(self.gate.clone()))
            .collect();
        self.restart_wait = wait;
        self
    }

    /// How long a call waits for muster to run again.
    pub fn restart_wait(&self) -> Duration {
        self.restart_wait
    }

    /// Presence: the `Recorder` and `Connections` vocabulary of the core.
    pub fn presence(&self) -> &PresenceHandle {
        &self.presence
    }

    /// The machines and what the cloud said about each: of every model, in
    /// a tree of many.
    pub fn machines(&self) -> &MachinesHandle {
        &self.machines
    }

    /// The models of a tree of many, in the order given; none in a tree of
    /// one model (whose machines [`Muster::machines`] answers).
    pub fn models(&self) -> Vec<ModelInfo> {
        self.models.iter().map(|m| m.info().clone()).collect()
    }

    /// The handle on one model of a tree of many; `None` for a model the
    /// tree does not poll.
    pub fn model(&self, uuid: &ModelUuid) -> Option<&ModelHandle> {
        self.models.iter().find(|m| m.uuid() == *uuid)
    }

    /// What the provider gateway is doing; in a tree of many models, every
    /// gateway's counts added up (see [`Muster::gateways`] for each).
    pub async fn gateway(&self) -> Result<GatewayReport, SendError> {
        let reports = self.gateways().await?;
        let mut reports = reports.into_iter().map(|(_, report)| report);
        let first = reports.next().expect("a tree has at least one gateway");
        Ok(reports.fold(first, add_reports))
    }

    /// What every gateway asked of the provider since muster was made:
    /// read from the counters, so it answers while muster restarts, and
    /// costs no message.
    pub fn provider_totals(&self) -> ProviderTotals {
        self.provider.totals()
    }

    /// Each gateway's report, by name: `gateway` alone in a tree of one
    /// model, one per cloud account in a tree of many.
    pub async fn gateways(&self) -> Result<Vec<(String, GatewayReport)>, SendError> {
        let mut reports = Vec::with_capacity(self.gateways.len());
        for (name, gateway) in self.gateways.iter() {
            let report = self
                .gate
                .call_again(|| gateway.send(GetGatewayReport))
                .await?;
            reports.push((name.clone(), report));
        }
        Ok(reports)
    }

    /// Tells every gateway whether the credential of every model is valid:
    /// `true` resumes polling paused by a denied credential. One model's
    /// is told through its [`ModelHandle::credential_valid`].
    pub async fn credential_valid(&self, valid: bool) -> Result<(), SendError> {
        for (_, gateway) in self.gateways.iter() {
            self.gate
                .call_again(|| {
                    std::future::ready(
                        gateway
                            .do_send(CredentialValid(valid))
                            .map_err(SendError::from),
                    )
                })
                .await?;
        }
        Ok(())
    }

    /// Muster's supervision tree, with each actor's state, restarts and
    /// mailbox: a row for every child, each of thousands of pollers
    /// included. Mounted in a host's tree, the host's own report holds this
    /// one too, nested under muster's child.
    pub async fn report(&self) -> Result<Report, SendError> {
        self.gate.call_again(|| self.supervisor.report()).await
    }

    /// Muster's supervision tree, gathered as `options` say: with
    /// [`ReportOptions::folding_over`], the pollers and the presence
    /// servers come as counts once there are more of them than that.
    pub async fn report_with(&self, options: ReportOptions) -> Result<Report, SendError> {
        self.gate
            .call_again(|| self.supervisor.report_with(options))
            .await
    }

    /// Muster's health. For a tree started with [`Muster::start`], that of
    /// the tree (see [`Root::health`]): whether it runs and which static
    /// children are down. Mounted with [`Muster::child`], whether muster's
    /// supervisor runs; its down children are on the host's own
    /// [`Root::health`], which covers the host's whole tree. Sends no
    /// message and walks nothing, so a health probe costs the same however
    /// many machines and connections muster holds.
    pub fn health(&self) -> Health {
        if let Some(root) = &self.root {
            return root.health();
        }
        let status = self.status.get();
        let tree = match (status.state, status.last_exit) {
            (ChildState::Started, _) => TreeState::Running,
            (ChildState::Stopping, _) => TreeState::Stopping,
            (_, Some(Exit::Failed(error) | Exit::Fatal(error))) => TreeState::GaveUp(error),
            (ChildState::Starting, None) => TreeState::Starting,
            _ => TreeState::Stopped,
        };
        Health {
            tree,
            down: Vec::new(),
        }
    }

    /// Stops a tree started with [`Muster::start`] gracefully: children in
    /// reverse start order, each within its timeout. Returns false if it
    /// was already stopping, and for a muster mounted with
    /// [`Muster::child`], which stops with the host's tree.
    pub fn shutdown(&self) -> bool {
        self.root.as_ref().is_some_and(Root::shutdown)
    }

    /// Waits until muster has stopped for good; an error says why it
    /// failed. For a tree started with [`Muster::start`], that is when the
    /// tree stops. For a muster mounted with [`Muster::child`], it is once
    /// nothing can start it again (the host's tree stopped, or dropped it),
    /// with how its last incarnation ended.
    pub async fn wait(&self) -> Result<(), TreeError> {
        if let Some(root) = &self.root {
            return root.wait().await;
        }
        match self.status.gone().await.last_exit {
            Some(Exit::Fatal(e)) => Err(TreeError::Fatal(e)),
            Some(Exit::Failed(e)) => Err(TreeError::Failed(e)),
            _ => Ok(()),
        }
    }
}
