//! The host's entry point: [`Muster::start`] builds the whole tree and
//! returns a handle for every question muster answers.
//!
//! ```text
//! root
//! ├── gateway            ProviderGateway: the pollers' batched path to the cloud
//! ├── presence           supervisor
//! │   ├── router         PresenceActor
//! │   └── servers/…      one ServerPresence per API server (dynamic)
//! └── machines           supervisor
//!     ├── watcher        MachineWatcher
//!     └── pollers/…      one MachinePoller per machine (dynamic)
//! ```

use std::sync::Arc;

use muster::clock::Clock;
use muster::error::ConfigError;
use muster::model::{CredentialApi, ModelFacade};
use muster::provider::Environ;
use muster::sim::Sim;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use slog::{Logger, info};

use crate::gateway::{
    CredentialValid, GatewayConfig, GatewayMetrics, GatewayReport, GetGatewayReport,
    ProviderGateway,
};
use crate::machines::{MachinesConfig, MachinesHandle, machines_child};
use crate::mailbox::{Mailbox, SendError};
use crate::metrics::Metrics;
use crate::presence::{PresenceConfig, PresenceHandle, presence_child};
use crate::supervisor::{
    ChildSpec, Health, Report, ReportOptions, RestartConfig, Root, SupervisorError, SupervisorSpec,
    TreeError,
};

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

impl MusterConfig {
    /// Checks every section; the error names the key that is wrong.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.supervision
            .validate()
            .map_err(|e| InvalidConfig::new("supervision", e))?;
        self.presence.validate()?;
        self.machines
            .validate()
            .map_err(|e| InvalidConfig::new(e.field, e.reason))?;
        Ok(self.gateway.validate()?)
    }
}

/// A setting that is out of range, named by its key in the config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidConfig {
    /// The key, e.g. `machines.poll.short_poll`.
    pub key: String,
    /// What is wrong with its value.
    pub reason: String,
}

impl InvalidConfig {
    fn new(key: impl Into<String>, reason: impl ToString) -> Self {
        InvalidConfig {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<ConfigError> for InvalidConfig {
    fn from(error: ConfigError) -> Self {
        InvalidConfig::new(error.field, error.reason)
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

/// Why the tree did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is out of range.
    #[error("invalid config: {0}")]
    Config(#[from] InvalidConfig),
    /// The tree could not be built (for instance, no actix system runs).
    #[error(transparent)]
    Tree(#[from] SupervisorError),
}

/// The host's handle on a running muster: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Muster {
    root: Root,
    presence: PresenceHandle,
    machines: MachinesHandle,
    gateway: Mailbox<ProviderGateway>,
}

impl Muster {
    /// Starts the tree on the current actix system. The metrics go into
    /// `registry`; the logs into `logger`. Nothing global is installed.
    pub fn start(
        config: &MusterConfig,
        backends: Backends,
        logger: Logger,
        registry: &mut Registry,
    ) -> Result<Muster, StartError> {
        config.validate()?;
        let metrics = Metrics::register(registry);
        let gateway_metrics = GatewayMetrics::new(registry);

        let gateway = Mailbox::new(config.gateway.mailbox);
        let gateway_config = config.gateway;
        let (environ, credentials) = (backends.environ.clone(), backends.credentials.clone());
        let gateway_child = ChildSpec::actor("gateway", &gateway, move |cx| {
            Ok(ProviderGateway::new(
                environ.clone(),
                credentials.clone(),
                gateway_config,
                gateway_metrics.clone(),
                cx.logger().clone(),
            ))
        })
        .report(gateway.reporter(|gateway: &ProviderGateway| {
            serde_json::to_value(gateway.report()).unwrap_or_default()
        }));
        let (presence_child, presence) =
            presence_child("presence", &config.presence, backends.clock.clone())?;
        let (machines_child, machines) = machines_child(
            "machines",
            config.machines.clone(),
            backends.facade.clone(),
            gateway.clone(),
        )?;
        let spec = SupervisorSpec::new(config.supervision.clone())
            .child(gateway_child)
            .child(presence_child)
            .child(machines_child);
        let root = Root::start("root", spec, logger.clone(), metrics)?;
        info!(logger, "muster started");
        Ok(Muster {
            root,
            presence,
            machines,
            gateway,
        })
    }

    /// Presence: the `Recorder` and `Connections` vocabulary of the core.
    pub fn presence(&self) -> &PresenceHandle {
        &self.presence
    }

    /// The machines and what the cloud said about each.
    pub fn machines(&self) -> &MachinesHandle {
        &self.machines
    }

    /// What the provider gateway is doing.
    pub async fn gateway(&self) -> Result<GatewayReport, SendError> {
        self.gateway.send(GetGatewayReport).await
    }

    /// Tells the gateway whether the model's credential is valid: `true`
    /// resumes polling paused by a denied credential.
    pub fn credential_valid(&self, valid: bool) -> Result<(), SendError> {
        Ok(self.gateway.do_send(CredentialValid(valid))?)
    }

    /// The supervision tree, with each actor's state, restarts and mailbox:
    /// a row for every child, each of thousands of pollers included.
    pub async fn report(&self) -> Result<Report, SendError> {
        self.root.report().await
    }

    /// The supervision tree, gathered as `options` say: with
    /// [`ReportOptions::folding_over`], the pollers and the presence
    /// servers come as counts once there are more of them than that.
    pub async fn report_with(&self, options: ReportOptions) -> Result<Report, SendError> {
        self.root.report_with(options).await
    }

    /// The tree's health (see [`Root::health`]): whether it runs and which
    /// static children are down. Sends no message and walks nothing, so a
    /// health probe costs the same however many machines and connections
    /// the tree holds.
    pub fn health(&self) -> Health {
        self.root.health()
    }

    /// Stops the tree gracefully: children in reverse start order, each
    /// within its timeout. Returns false if it was already stopping.
    pub fn shutdown(&self) -> bool {
        self.root.shutdown()
    }

    /// Waits until the tree has stopped; an error says why it failed.
    pub async fn wait(&self) -> Result<(), TreeError> {
        self.root.wait().await
    }
}
