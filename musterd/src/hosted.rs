//! [`Hosted`]: the tree with its HTTP surface and the agents' door, started
//! from a config (the machine registry and the models' clouds, or one
//! simulated model), served until a signal or the tree's end, and stopped.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use muster::clock::{Clock, SystemClock};
use muster::sim::Sim;
use muster_actors::host::TreeBackends;
use muster_actors::{
    Arbiters, Backends, Extensions, Metrics, Muster, Readiness, Root, StartError, SupervisorSpec,
    TreeError,
};
use prometheus_client::registry::Registry;
use slog::{Logger, error, info, warn};

use crate::config::{BackendKind, DaemonConfig};
use muster_cluster::{Cluster, ClusterConfig, Farewell};
use muster_door::{BoundDoor, ConnectionIds, Door, DoorMetrics};
use muster_http::{self as http, Inspector, Sampler, StateGauges};
use muster_registry::{self as registry, fleet};

use crate::DaemonError;
use crate::passwords::RegistryPasswords;

/// The machine registry the config's `[store]` names.
fn open_store(
    store: &muster_registry::store::StoreConfig,
    clock: Arc<dyn Clock>,
    logger: &Logger,
) -> Result<registry::Registry, DaemonError> {
    let log = logger.new(slog::o!("part" => "registry"));
    let opened = if store.in_memory() {
        registry::Registry::in_memory(clock, log)
    } else {
        registry::Registry::open(&store.path, &store.options(), clock, log)
    };
    let opened = opened.map_err(DaemonError::Store)?;
    info!(logger, "machine registry open"; "location" => opened.location());
    Ok(opened)
}

/// The machine registry the nodes of `cluster` share, in its NATS.
async fn open_shared_store(
    config: &DaemonConfig,
    cluster: &ClusterConfig,
    clock: Arc<dyn Clock>,
    logger: &Logger,
) -> Result<registry::Registry, DaemonError> {
    let node = Cluster::new(cluster, config.agents.server.clone(), clock.clone())?;
    let log = logger.new(slog::o!("part" => "registry"));
    let backend = node
        .registry(&log)
        .await
        .map_err(DaemonError::SharedStore)?;
    let opened = registry::Registry::new(Arc::new(backend), clock, log);
    info!(logger, "machine registry open"; "location" => opened.location());
    Ok(opened)
}

/// The daemon's tree, started from a config, and what [`Hosted::stop`]
/// takes down. The daemon is one host of muster's parts, built from their
/// public API as any host is:
///
/// ```text
/// musterd                 the daemon's root
/// ├── muster              muster's subtree (with the cluster's bridge and
/// │                       lease manager in its presence subtree)
/// ├── history             the samples of /api/history
/// ├── http                the HTTP surface
/// └── door                the agents' door
/// ```
pub struct Hosted {
    /// The daemon's tree.
    pub root: Root,
    /// Muster's handle.
    pub muster: Muster,
    /// The simulated cloud of the one model polled when the config names
    /// no `[[models]]`.
    pub sim: Option<Sim>,
    /// The simulated models among the config's `[[models]]`, by UUID.
    pub sims: fleet::Sims,
    /// The machine registry of the `[[models]]`.
    pub registry: Option<registry::Registry>,
    mirror: Option<tokio::task::JoinHandle<()>>,
    /// Where the HTTP surface listens (the real port when 0 was asked for).
    pub listen: std::net::SocketAddr,
    /// The agents' door.
    pub door: Door,
    /// The connection ids of the process, which the door draws from.
    pub ids: ConnectionIds,
    /// What the node says to its cluster as it stops, with `[cluster]`.
    farewell: Option<Farewell>,
    /// What the parts say of whether the node can do its job (`/readyz`).
    pub readiness: Readiness,
    /// The threads the work is spread over.
    arbiters: Arbiters,
}

/// The name of the daemon's root.
pub const ROOT: &str = "musterd";

/// The name of muster's subtree in the daemon's tree.
pub const MUSTER: &str = "muster";
/// What ended a daemon's run.
#[derive(Debug)]
pub enum Ending {
    /// A signal, named.
    Signal(&'static str),
    /// The work given to [`Hosted::serve_until`] is over (the demo's
    /// `--duration`), named.
    Done(&'static str),
    /// The tree stopped on its own: with its error, or without one although
    /// nobody asked it to.
    Tree(Result<(), TreeError>),
}

/// The next signal of `signals`; never, once they are over.
async fn next_signal(signals: &mut (impl Stream<Item = &'static str> + Unpin)) -> &'static str {
    match signals.next().await {
        Some(signal) => signal,
        None => std::future::pending().await,
    }
}

/// The listen addresses, bound before anything starts, so that a port in
/// use is found first.
struct Bound {
    listener: std::net::TcpListener,
    listen: std::net::SocketAddr,
    door: BoundDoor,
}

impl Bound {
    fn bind(config: &DaemonConfig) -> Result<Bound, DaemonError> {
        let listener = http::bind(config.http.listen)?;
        let listen = listener.local_addr().map_err(DaemonError::Http)?;
        let door = BoundDoor::bind(&config.agents)?;
        Ok(Bound {
            listener,
            listen,
            door,
        })
    }
}

/// What the daemon runs besides the tree: the backends' simulations, the
/// machine registry and its simulated controller.
#[derive(Default)]
struct Extras {
    sim: Option<Sim>,
    sims: fleet::Sims,
    registry: Option<registry::Registry>,
    mirror: Option<tokio::task::JoinHandle<()>>,
}

impl Hosted {
    /// Binds both listen addresses, then starts the backends of the config
    /// (the machine registry and the models' clouds, or one simulated
    /// model), the tree, the HTTP surface and the agents' door on the
    /// current actix system. A port in use is found before anything starts.
    pub async fn start(config: &DaemonConfig, logger: &Logger) -> Result<Hosted, DaemonError> {
        let config = &crate::open_files::fit(config, crate::open_files::limit(), logger);
        let bound = Bound::bind(config)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        if let Some(cluster) = &config.cluster {
            Cluster::new(cluster, config.agents.server.clone(), clock.clone())?
                .check_alone()
                .await
                .map_err(DaemonError::NotAlone)?;
        }
        if config.models.is_empty() {
            let sim = match config.backend.kind {
                BackendKind::Sim => {
                    Sim::new(config.backend.sim.clone()).map_err(DaemonError::Backend)?
                }
            };
            for _ in 0..config.backend.machines {
                sim.add_provisioned_machine();
            }
            let backends = Backends::sim(&sim, clock);
            let extras = Extras {
                sim: Some(sim),
                ..Extras::default()
            };
            return Hosted::launch(config, bound, backends.into(), extras, logger);
        }
        let store = match &config.cluster {
            // The nodes of a cluster share one registry.
            Some(cluster) => open_shared_store(config, cluster, clock.clone(), logger).await?,
            None => open_store(&config.store, clock.clone(), logger)?,
        };
        let (fleet, sims) =
            fleet::build(&config.models, &config.backend.sim, &store, clock).await?;
        // Each simulation's cloud holds its machines, but they are seeded
        // into the registry only for a model that has none: what clients
        // registered or removed since (and what another node of the
        // cluster seeded) stays as it is.
        let mut seeded = fleet::Sims::new();
        for (model, sim) in &sims {
            for _ in 0..config.backend.machines {
                sim.add_provisioned_machine();
            }
            let held = store
                .machines(*model)
                .await
                .map_err(|e| match config.cluster {
                    Some(_) => DaemonError::SharedStore(e.source),
                    None => DaemonError::Store(e.source),
                })?;
            if held.is_empty() {
                seeded.push((*model, sim.clone()));
            }
        }
        let mut mirror = crate::mirror::SimMirror::new(seeded, store.clone(), logger.clone());
        // The simulated machines are in the registry before the watchers
        // read it.
        mirror.sync().await;
        let extras = Extras {
            sim: None,
            sims,
            registry: Some(store),
            mirror: Some(mirror.spawn()),
        };
        Hosted::launch(config, bound, fleet.into(), extras, logger)
    }

    /// [`Hosted::start`] with the tree talking to `backends` (one model's,
    /// `sim` when they are a simulated cloud's, or a fleet of many) instead
    /// of the config's.
    pub fn start_with(
        config: &DaemonConfig,
        backends: impl Into<TreeBackends>,
        sim: Option<Sim>,
        logger: &Logger,
    ) -> Result<Hosted, DaemonError> {
        let config = &crate::open_files::fit(config, crate::open_files::limit(), logger);
        let bound = Bound::bind(config)?;
        let extras = Extras {
            sim,
            ..Extras::default()
        };
        Hosted::launch(config, bound, backends.into(), extras, logger)
    }

    fn launch(
        config: &DaemonConfig,
        bound: Bound,
        backends: TreeBackends,
        extras: Extras,
        logger: &Logger,
    ) -> Result<Hosted, DaemonError> {
        let Bound {
            listener,
            listen,
            door,
        } = bound;
        let clock = backends.clock().clone();
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let arbiters = Arbiters::start(config.runtime.threads());
        let mut extensions = Extensions::new().spread_over(arbiters.clone());
        let mut farewell = None;
        let readiness = Readiness::new();
        if let Some(cluster) = &config.cluster {
            let mut node = Cluster::new(cluster, config.agents.server.clone(), clock.clone())?
                .with_readiness(readiness.clone());
            // Many models: each polled by the one node holding its lease.
            if let TreeBackends::Many(fleet) = &backends {
                node = node.polling(fleet.models.iter().map(|m| m.uuid));
            }
            let said;
            (extensions, said) = node.mount(extensions, &mut registry);
            farewell = Some(said);
        }
        let (muster_child, muster) = Muster::child_with(
            MUSTER,
            &config.muster(),
            backends,
            extensions,
            &mut registry,
        )?;
        let gauges = StateGauges::register(&mut registry);
        let ids = ConnectionIds::default();
        let mut door = door.spread_over(arbiters.clone());
        if let Some(store) = &extras.registry {
            let models = config.models.iter().filter_map(|m| m.uuid);
            door = door.checking_passwords(Arc::new(RegistryPasswords::new(store.clone(), models)));
        }
        let (door_child, door) = door.child(
            muster.presence().clone(),
            ids.clone(),
            DoorMetrics::register(&mut registry),
        );
        let (history_child, history) = Sampler::new(muster.clone(), metrics.clone(), clock).child();
        let root = Root::new(ROOT).map_err(StartError::from)?;
        let http_child =
            Inspector::new(muster.clone(), registry, gauges, config.http.token.clone())
                .with_history(history)
                .with_registry(extras.registry.clone())
                .with_tree(root.clone())
                .with_readiness(readiness.clone())
                .child(listener);
        // Stopped in reverse: the door first (every disconnect recorded),
        // then the HTTP surface, then muster.
        let spec = SupervisorSpec::new(config.supervision.clone())
            .child(muster_child)
            .child(history_child)
            .child(http_child)
            .child(door_child);
        root.run(spec, logger.clone(), metrics)
            .map_err(StartError::from)?;
        info!(logger, "muster started"; "http" => %listen, "agents" => door.url());
        Ok(Hosted {
            root,
            muster,
            sim: extras.sim,
            sims: extras.sims,
            registry: extras.registry,
            mirror: extras.mirror,
            listen,
            door,
            ids,
            farewell,
            readiness,
            arbiters,
        })
    }

    /// The lines that say what the daemon serves, for its standard output:
    /// `dashboard: http://ADDR/` (with `suffix` after the slash) and
    /// `agents: ws://ADDR/agent`.
    ///
    /// An address that listens on every interface (`0.0.0.0`, `[::]`) is
    /// printed as this host's loopback, which a browser can open, with a
    /// line that says every address of the host serves.
    pub fn print_addresses(&self, out: &mut impl Write, suffix: &str) {
        let _ = writeln!(out, "dashboard: http://{}/{suffix}", reachable(self.listen));
        let door = self.door.local_addr();
        let url = self.door.url();
        let _ = writeln!(
            out,
            "agents: {}",
            url.replacen(&door.to_string(), &reachable(door).to_string(), 1)
        );
        for (what, listen) in [("dashboard", self.listen), ("agents", door)] {
            if listen.ip().is_unspecified() {
                let _ = writeln!(
                    out,
                    "{what}: listening on {listen}, every address of this host"
                );
            }
        }
        let _ = out.flush();
    }

    /// Does `work` (which may wait on the tree for ever, as when the tree
    /// gave up before presence started) until the first of: a signal from
    /// `signals`, the tree stopping, `work` being over. Whatever is
    /// waiting when one of them comes is dropped, so nothing the tree
    /// cannot answer keeps the daemon up.
    pub async fn serve_until(
        &self,
        signals: &mut (impl Stream<Item = &'static str> + Unpin),
        work: impl Future<Output = &'static str>,
    ) -> Ending {
        tokio::select! {
            // A tree that failed is reported even if a signal came too.
            biased;
            result = self.root.wait() => Ending::Tree(result),
            signal = next_signal(signals) => Ending::Signal(signal),
            reason = work => Ending::Done(reason),
        }
    }

    /// Stops after `ending`: gracefully after a signal or the end of the
    /// work (`Ok`); after the tree stopped on its own, the door and the
    /// HTTP surface, then the tree's error. Another signal meanwhile stops
    /// waiting for a graceful stop.
    pub async fn finish(
        self,
        ending: Ending,
        logger: &Logger,
        signals: &mut (impl Stream<Item = &'static str> + Unpin),
    ) -> Result<(), DaemonError> {
        let stopping = async {
            match ending {
                Ending::Signal(signal) => {
                    info!(logger, "shutting down"; "signal" => signal);
                    self.stop(logger).await
                }
                Ending::Done(reason) => {
                    info!(logger, "shutting down"; "reason" => reason);
                    self.stop(logger).await
                }
                Ending::Tree(result) => {
                    let error = match result {
                        Err(e) => DaemonError::Tree(e),
                        Ok(()) => DaemonError::TreeStopped,
                    };
                    error!(logger, "shutting down"; "error" => %error);
                    Err(error)
                }
            }
        };
        unless_signalled(stopping, logger, signals).await
    }

    /// Closes the agents' door (every agent's disconnect recorded), says
    /// farewell to the cluster (the model leases given back, the peers
    /// told), then stops the tree gracefully: the HTTP surface, the
    /// history, then muster.
    pub async fn stop(self, logger: &Logger) -> Result<(), DaemonError> {
        if let Some(mirror) = &self.mirror {
            mirror.abort();
        }
        self.door.close().await;
        if let Some(farewell) = &self.farewell {
            farewell.say().await;
        }
        self.root.shutdown();
        let stopped = self.root.wait().await;
        self.arbiters.stop();
        stopped?;
        info!(logger, "stopped");
        Ok(())
    }
}

/// An address to connect to `listen` at: the loopback of its family when
/// it listens on every interface.
fn reachable(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    std::net::SocketAddr::new(ip, listen.port())
}

/// `stopping`, unless a signal from `signals` comes first: then the
/// daemon stops at once, with [`DaemonError::Interrupted`].
async fn unless_signalled(
    stopping: impl Future<Output = Result<(), DaemonError>>,
    logger: &Logger,
    signals: &mut (impl Stream<Item = &'static str> + Unpin),
) -> Result<(), DaemonError> {
    tokio::select! {
        biased;
        result = stopping => result,
        signal = next_signal(signals) => {
            warn!(logger, "stopping at once"; "signal" => signal);
            Err(DaemonError::Interrupted(signal))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logger() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    #[tokio::test]
    async fn a_second_signal_cuts_a_graceful_stop_short() {
        let mut signals = futures::stream::iter(["SIGINT"]);
        let stopping = std::future::pending();
        match unless_signalled(stopping, &logger(), &mut signals).await {
            Err(e @ DaemonError::Interrupted("SIGINT")) => {
                assert_eq!(e.exit_code(), crate::EXIT_FAILURE);
                assert_eq!(
                    e.to_string(),
                    "stopped at once by SIGINT, before the tree had stopped"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_graceful_stop_ends_as_it_ends_without_another_signal() {
        // No more signals to come: the stop is waited for.
        let mut signals = futures::stream::empty();
        let stopped = unless_signalled(async { Ok(()) }, &logger(), &mut signals).await;
        assert!(stopped.is_ok());
        let failed = unless_signalled(
            async { Err(DaemonError::TreeStopped) },
            &logger(),
            &mut futures::stream::pending(),
        )
        .await;
        assert!(matches!(failed, Err(DaemonError::TreeStopped)));
    }
}
