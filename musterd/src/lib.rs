//! The daemon `musterd` as a library: one host of muster's parts
//! ([`Hosted`]: muster from [`muster_actors`], the HTTP surface and history
//! from [`muster_http`], the agents' door from [`muster_door`], the
//! cluster from [`muster_cluster`], the machine registry from
//! [`muster_registry`]), with its config file ([`config`]), the demo
//! ([`demo`]), the load client ([`swarm`]), its logger ([`logging`]), and
//! [`run`], which hosts them with a config file until told to stop.
//!
//! A crate of its own, so that a controller mounting the parts compiles
//! none of the daemon's command line, config file reader and log drains.
//!
//! The binary (`src/main.rs`) parses the command line, installs the
//! process-wide pieces (the `log` bridge, the signal handlers) and calls
//! into this library; nothing here installs anything behind its caller's
//! back.

pub mod config;
pub mod demo;
mod hosted;
pub mod logging;
pub mod mirror;
pub mod open_files;
pub mod passwords;
pub mod swarm;

use std::io::{Read, Write};
use std::path::Path;

use futures::Stream;
use muster::config::InvalidConfig;
use muster_actors::{Backends, StartError, TreeError};
use slog::{Logger, error};

use config::DaemonConfig;
use muster_cluster::CredentialsProblem;
use muster_door::DoorError;
use muster_http::BindError;
use muster_registry::{BackendError, fleet};

pub use hosted::{Ending, Hosted};

/// The exit code of bad input: a config file that is unreadable, not TOML,
/// or out of range.
pub const EXIT_BAD_INPUT: i32 = 2;

/// The exit code of a failure at run time, such as a port in use.
pub const EXIT_FAILURE: i32 = 1;

/// Why the daemon did not run, or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The config file could not be read.
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The config file has problems; each names its key.
    #[error("{}", .problems.lines().iter().map(|p| format!("{}: {p}", .path)).collect::<Vec<_>>().join("\n"))]
    Config {
        /// The file.
        path: String,
        /// Every problem found.
        problems: InvalidConfig,
    },
    /// A command-line option is out of range.
    #[error("{0}")]
    Option(String),
    /// The HTTP listen address could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The agents' door did not open.
    #[error(transparent)]
    Door(#[from] DoorError),
    /// The NATS credentials file could not be used.
    #[error(transparent)]
    Cluster(#[from] CredentialsProblem),
    /// The tree did not start.
    #[error("the tree did not start: {0}")]
    Start(#[from] StartError),
    /// The simulated backend refused its settings.
    #[error("backend.sim: {0}")]
    Backend(InvalidConfig),
    /// The models could not be set up.
    #[error(transparent)]
    Fleet(#[from] fleet::FleetError),
    /// The machine registry could not be opened.
    #[error("store.path: {0}")]
    Store(BackendError),
    /// The machine registry the nodes of the cluster share could not be
    /// opened in their NATS.
    #[error("cluster: the shared machine registry: {0}")]
    SharedStore(BackendError),
    /// Another daemon already runs as this node of the cluster, or the
    /// cluster's NATS could not be reached to tell.
    #[error("cluster: {0}")]
    NotAlone(String),
    /// The signal handlers could not be installed.
    #[error("signal handlers: {0}")]
    Signals(std::io::Error),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(std::io::Error),
    /// The tree stopped with an error.
    #[error("the tree failed: {0}")]
    Tree(#[from] TreeError),
    /// The tree stopped on its own without an error, which the daemon
    /// never asks of it but at its own stop.
    #[error("the tree stopped on its own")]
    TreeStopped,
    /// A second signal came before the graceful stop was over.
    #[error("stopped at once by {0}, before the tree had stopped")]
    Interrupted(&'static str),
}

impl DaemonError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            DaemonError::Unreadable { .. }
            | DaemonError::Config { .. }
            | DaemonError::Option(_)
            | DaemonError::Door(DoorError::Tls(_))
            | DaemonError::Cluster(_) => EXIT_BAD_INPUT,
            _ => EXIT_FAILURE,
        }
    }
}

/// Reads and checks a config file, and the TLS and credentials files it
/// names. Reads at
/// most one byte past [`MAX_FILE_BYTES`](config::MAX_FILE_BYTES), so that
/// an endless file (`/dev/zero`) is refused at once.
pub fn read_config(path: &Path) -> Result<DaemonConfig, DaemonError> {
    let shown = path.display().to_string();
    let unreadable = |source| DaemonError::Unreadable {
        path: shown.clone(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(config::MAX_FILE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(unreadable)?;
    let (mut config, mut problems) =
        DaemonConfig::read_bytes(&bytes).map_err(|problems| DaemonError::Config {
            path: shown.clone(),
            problems,
        })?;
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    config.resolve_paths(folder);
    // The files after the values, all in one report.
    config::files::check(&config, &mut problems);
    problems.finish().map_err(|problems| DaemonError::Config {
        path: shown,
        problems,
    })?;
    Ok(config)
}

/// `musterd run`: hosts the tree with `config` until a signal comes from
/// `signals` or the tree stops on its own, then shuts down. Says what it
/// serves on `out`, once presence records. Call it on an actix system.
pub async fn run(
    config: DaemonConfig,
    logger: Logger,
    out: impl Write,
    signals: impl Stream<Item = &'static str> + Unpin,
) -> Result<(), DaemonError> {
    let hosted = Hosted::start(&config, &logger).await?;
    serve(hosted, logger, out, signals).await
}

/// [`run`] with the tree talking to `backends` instead of the config's
/// backend.
pub async fn run_with(
    config: DaemonConfig,
    backends: Backends,
    logger: Logger,
    out: impl Write,
    signals: impl Stream<Item = &'static str> + Unpin,
) -> Result<(), DaemonError> {
    let hosted = Hosted::start_with(&config, backends, None, &logger)?;
    serve(hosted, logger, out, signals).await
}

async fn serve(
    hosted: Hosted,
    logger: Logger,
    mut out: impl Write,
    mut signals: impl Stream<Item = &'static str> + Unpin,
) -> Result<(), DaemonError> {
    let announce = async {
        // Only API-server hosts record presence; this daemon is one.
        if let Err(e) = hosted.muster.presence().enable().await {
            error!(logger, "could not enable presence"; "error" => %e);
        }
        hosted.print_addresses(&mut out, "");
        std::future::pending().await
    };
    let ending = hosted.serve_until(&mut signals, announce).await;
    hosted.finish(ending, &logger, &mut signals).await
}
