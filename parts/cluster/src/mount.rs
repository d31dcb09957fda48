//! [`Cluster`]: what a host mounts to share presence, and the models it
//! polls, with the controller's other API servers over NATS.

use std::sync::Arc;

use futures::StreamExt;

use muster::clock::Clock;
use muster::names::{MachineTag, ModelUuid};
use muster_actors::{Extensions, Mailbox, ModelHolds, Readiness};
use prometheus_client::registry::Registry;
use slog::Logger;

use crate::auth::{CredentialsProblem, NatsAuth};
use crate::bridge::{BRIDGE_MAILBOX, BridgeConfig, bridge_child_on};
use crate::config::ClusterConfig;
use crate::farewell::Farewell;
use crate::leases::{LEASES_MAILBOX, LeaseConfig, LeaseMetrics, lease_child_on};
use crate::live::LiveNodes;
use crate::metrics::ClusterMetrics;
use crate::nats::connection;
use crate::protocol::Subjects;
use crate::registry::NatsBackend;

/// This node of a cluster of API servers, as its host mounts it: built
/// from the `[cluster]` section and the API server this node records its
/// agents under.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use muster_actors::{Extensions, Muster, MusterConfig, Fleet};
/// # use muster_cluster::{Cluster, ClusterConfig};
/// # fn mount(config: &ClusterConfig, fleet: Fleet, registry: &mut prometheus_client::registry::Registry) -> Result<(), Box<dyn std::error::Error>> {
/// let models: Vec<_> = fleet.models.iter().map(|m| m.uuid).collect();
/// let cluster = Cluster::new(config, "machine-0".parse()?, fleet.clock.clone())?.polling(models);
/// let (extensions, farewell) = cluster.mount(Extensions::new(), registry);
/// let (muster_child, muster) =
///     Muster::child_with("muster", &MusterConfig::default(), fleet, extensions, registry)?;
/// // ... the host adds muster_child to its tree; before it stops it:
/// # async { farewell.say().await };
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Cluster {
    config: ClusterConfig,
    node: MachineTag,
    auth: NatsAuth,
    clock: Arc<dyn Clock>,
    models: Option<Vec<ModelUuid>>,
    readiness: Readiness,
}

impl Cluster {
    /// Node `node` of the cluster `config` describes, which must have been
    /// checked; reads its credentials file now. `clock` dates what the
    /// reports show.
    pub fn new(
        config: &ClusterConfig,
        node: MachineTag,
        clock: Arc<dyn Clock>,
    ) -> Result<Cluster, CredentialsProblem> {
        Ok(Cluster {
            auth: NatsAuth::read(config)?,
            config: config.clone(),
            node,
            clock,
            models: None,
            readiness: Readiness::new(),
        })
    }

    /// Polls each of `models` on one node of the cluster only, the one
    /// holding its lease (docs/spec.md §11.7): the models of the host's
    /// [`Fleet`](muster_actors::Fleet).
    pub fn polling(mut self, models: impl IntoIterator<Item = ModelUuid>) -> Self {
        self.models = Some(models.into_iter().collect());
        self
    }

    /// Says in `readiness` (the host's `/readyz`) what keeps the node's
    /// cluster parts from their job, each by its child's name.
    pub fn with_readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// This node.
    pub fn node(&self) -> &MachineTag {
        &self.node
    }

    /// Mounts the cluster's children in muster's presence subtree, added
    /// to `extensions`: the bridge, called `cluster`, and with
    /// [`Cluster::polling`] the lease manager, called `leases`, which holds
    /// the models this node polls. Their series go into `registry`. The
    /// [`Farewell`] is what the host says before it stops gracefully.
    pub fn mount(self, extensions: Extensions, registry: &mut Registry) -> (Extensions, Farewell) {
        let live = LiveNodes::new(self.node.clone());
        let bridge = Mailbox::new(BRIDGE_MAILBOX);
        let mut extensions = extensions.presence_child(bridge_child_on(
            BridgeConfig {
                node: self.node.clone(),
                cluster: self.config.clone(),
                auth: self.auth.clone(),
                metrics: ClusterMetrics::register(registry),
                clock: self.clock.clone(),
                live: live.clone(),
            },
            bridge.clone(),
        ));
        let mut leases = None;
        if let Some(models) = self.models {
            let holds = ModelHolds::new();
            let mailbox = Mailbox::new(LEASES_MAILBOX);
            leases = Some(mailbox.clone());
            extensions = extensions
                .hold_models(holds.clone())
                .presence_child(lease_child_on(
                    LeaseConfig {
                        node: self.node,
                        cluster: self.config.clone(),
                        auth: self.auth,
                        models,
                        holds,
                        live,
                        metrics: LeaseMetrics::register(registry),
                        clock: self.clock,
                        readiness: self.readiness.clone(),
                    },
                    mailbox,
                ));
        }
        let farewell = Farewell::new(bridge, leases, self.config.lease_ttl);
        (extensions, farewell)
    }

    /// Listens on this node's own feed for three heartbeats before the node
    /// starts, and fails naming the clash when another process already
    /// publishes there: two daemons with one `[agents] server` would each
    /// claim the other's leases and hide the other's agents, so the one
    /// that comes second does not start. A NATS that cannot be reached now
    /// tells nothing: the node starts, and its bridge connects later.
    pub async fn check_alone(&self) -> Result<(), String> {
        let (options, urls) = connection(&self.config, &self.auth, &self.node, "start")?;
        let Ok(client) = options.connect(urls).await else {
            return Ok(());
        };
        let subject = Subjects::new(&self.config.name).feed(&self.node);
        let mut feed = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| format!("cannot subscribe to {subject}: {e}"))?;
        let wait = self.config.heartbeat * 3;
        match tokio::time::timeout(wait, feed.next()).await {
            Ok(Some(_)) => Err(format!(
                "another daemon already runs as {} in cluster {} (heard on {subject}): \
                 give each daemon its own [agents] server",
                self.node, self.config.name
            )),
            _ => Ok(()),
        }
    }

    /// The machine registry the nodes share, in the cluster's NATS
    /// (docs/spec.md §11.9): opened now, within a while.
    pub async fn registry(
        &self,
        log: &Logger,
    ) -> Result<NatsBackend, muster_registry::BackendError> {
        NatsBackend::connect(&self.config, &self.auth, &self.node, log).await
    }
}
