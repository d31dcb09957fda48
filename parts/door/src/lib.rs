//! The agents' door: a WebSocket listener, separate from the inspection
//! surface, where each agent holds one connection and presence records it
//! for as long as the connection lasts. `docs/agent-protocol.md` states
//! the protocol.
//!
//! [`Door::bind`] takes the listen address (and reads the TLS files)
//! before anything starts; [`BoundDoor::serve`] accepts on the current
//! tokio runtime, one task per socket; [`Door::stop`] closes every
//! connection with 1001 and records each disconnect.

pub mod client;
pub mod config;
mod connection;
mod ending;
pub mod login;
pub mod metrics;
mod record;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use slog::{Logger, info, warn};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

pub use config::AgentsConfig;
pub use connection::AGENT_PATH;
use connection::Shared;
pub use ending::{GOING_AWAY, TOO_BIG, TRY_AGAIN};
pub use metrics::DoorMetrics;
pub use tls::TlsProblem;

use muster_actors::presence::PresenceHandle;

/// Connection ids, unique for the life of the process: the door and any
/// other recorder in the process (the demo's scenario) draw from one.
#[derive(Debug, Clone)]
pub struct ConnectionIds(Arc<AtomicU64>);

impl Default for ConnectionIds {
    fn default() -> Self {
        ConnectionIds(Arc::new(AtomicU64::new(1)))
    }
}

impl ConnectionIds {
    /// The next id.
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// The listen address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {listen}: {source}")]
pub struct BindError {
    /// The address.
    pub listen: SocketAddr,
    /// Why (for instance, the address is in use).
    #[source]
    pub source: std::io::Error,
}

/// Why the door did not open.
#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    /// The listen address could not be bound.
    #[error("agents: {0}")]
    Bind(BindError),
    /// A TLS file could not be used.
    #[error(transparent)]
    Tls(#[from] TlsProblem),
}

/// Sockets answered HTTP 503 at once, at most; past it a socket over
/// `max_connections` is closed unanswered, so refusing stays cheap.
const REFUSING: usize = 256;

/// The listen queue: a reconnect storm's sockets wait here for the accept
/// loop (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 4096;

/// How long [`Door::stop`] waits for the connections to close.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The door's listener, bound, with its TLS settings read.
pub struct BoundDoor {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    config: AgentsConfig,
}

/// The open door.
pub struct Door {
    listen: SocketAddr,
    tls: bool,
    shutdown: watch::Sender<bool>,
    slots: Arc<Semaphore>,
    max: u32,
    accepting: JoinHandle<()>,
    logger: Logger,
}

impl Door {
    /// Binds `config.listen` and reads the TLS files, on the current tokio
    /// runtime. Nothing is accepted until [`BoundDoor::serve`].
    pub fn bind(config: &AgentsConfig) -> Result<BoundDoor, DoorError> {
        let tls = tls::acceptor(config)?;
        let listen = config.listen;
        let bind = || -> std::io::Result<TcpListener> {
            let socket = if listen.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(listen)?;
            socket.listen(BACKLOG)
        };
        let listener = bind().map_err(|source| DoorError::Bind(BindError { listen, source }))?;
        Ok(BoundDoor {
            listener,
            tls,
            config: config.clone(),
        })
    }

    /// The address the door listens on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Where agents connect: `ws://ADDR/agent`, or `wss://` with TLS.
    pub fn url(&self) -> String {
        url(self.listen, self.tls)
    }

    /// Sockets open now, those still logging in included.
    pub fn open(&self) -> usize {
        self.max as usize - self.slots.available_permits()
    }

    /// Stops accepting, closes every connection with 1001 and records each
    /// disconnect; answers once they are all closed, or after a few
    /// seconds, whichever comes first.
    pub async fn stop(mut self) {
        let open = self.open();
        self.shutdown.send_replace(true);
        let _ = (&mut self.accepting).await;
        match tokio::time::timeout(STOP_WAIT, self.slots.acquire_many(self.max)).await {
            Ok(_) => info!(self.logger, "agents door closed"; "connections" => open),
            Err(_) => warn!(self.logger, "agents door closed with connections still closing";
                "connections" => open, "closing" => self.open()),
        }
    }
}

fn url(listen: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "wss" } else { "ws" };
    format!("{scheme}://{listen}{AGENT_PATH}")
}

impl BoundDoor {
    /// The address bound (the real port when 0 was asked).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where agents will connect.
    pub fn url(&self) -> std::io::Result<String> {
        Ok(url(self.local_addr()?, self.tls.is_some()))
    }

    /// Starts accepting on the current tokio runtime, recording through
    /// `presence` with ids from `ids`, counting in `metrics`.
    pub fn serve(
        self,
        presence: PresenceHandle,
        ids: ConnectionIds,
        metrics: DoorMetrics,
        logger: Logger,
    ) -> Door {
        let listen = self.listener.local_addr().unwrap_or(self.config.listen);
        let (shutdown, stopping) = watch::channel(false);
        let max = self.config.max_connections.min(Semaphore::MAX_PERMITS) as u32;
        let slots = Arc::new(Semaphore::new(max as usize));
        let shared = Arc::new(Shared {
            websocket: Shared::websocket(&self.config),
            enabled: presence.watch_enabled(),
            config: self.config,
            presence,
            ids,
            logger: logger.clone(),
            shutdown: stopping.clone(),
            metrics,
        });
        let tls = self.tls.is_some();
        let accepting = tokio::spawn(accept(
            self.listener,
            self.tls,
            shared,
            slots.clone(),
            stopping,
        ));
        info!(logger, "agents listening"; "address" => %listen, "tls" => tls);
        Door {
            listen,
            tls,
            shutdown,
            slots,
            max,
            accepting,
            logger,
        }
    }
}

/// The accept loop: a socket within `max_connections` gets a connection
/// task; past it, an HTTP 503 (or, past [`REFUSING`] of those, nothing).
async fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    mut stopping: watch::Receiver<bool>,
) {
    let refusing = Arc::new(Semaphore::new(REFUSING));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopping.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if out_of_resources(&e) => {
                // Wait for some sockets to close rather than spin.
                warn!(shared.logger, "agents: accept failed"; "error" => %e);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            // A connection that went away before it was accepted.
            Err(_) => continue,
        };
        let _ = tcp.set_nodelay(true);
        let started = Instant::now();
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            let shared = shared.clone();
            let peer = peer.to_string();
            let socket = Socket::opened(&shared.metrics, slot);
            match &tls {
                None => tokio::spawn(async move {
                    connection::serve(shared, tcp, peer, started).await;
                    drop(socket);
                }),
                Some(tls) => {
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        if let Some(stream) = handshake(&tls, tcp, &shared, started).await {
                            connection::serve(shared, stream, peer, started).await;
                        }
                        drop(socket);
                    })
                }
            };
        } else if let Ok(refusal) = refusing.clone().try_acquire_owned() {
            let shared = shared.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => connection::refuse(shared, tcp, started).await,
                    Some(tls) => {
                        if let Some(stream) = handshake(&tls, tcp, &shared, started).await {
                            connection::refuse(shared, stream, started).await;
                        }
                    }
                }
                drop(refusal);
            });
        }
    }
}

/// An open socket's place within `max_connections`, counted in the
/// metrics until dropped.
struct Socket {
    metrics: DoorMetrics,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Socket {
    fn opened(metrics: &DoorMetrics, slot: tokio::sync::OwnedSemaphorePermit) -> Self {
        metrics.socket_opened();
        Socket {
            metrics: metrics.clone(),
            _slot: slot,
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.metrics.socket_closed();
    }
}

/// Whether an accept failed for want of file descriptors or memory, which
/// only time frees.
fn out_of_resources(error: &std::io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM.
    matches!(error.raw_os_error(), Some(24 | 23 | 105 | 12))
}

/// The TLS handshake, within the login deadline. The stream is boxed so
/// that the plain connections' tasks stay small.
async fn handshake(
    tls: &TlsAcceptor,
    tcp: TcpStream,
    shared: &Shared,
    started: Instant,
) -> Option<Box<tokio_rustls::server::TlsStream<TcpStream>>> {
    let deadline = started + shared.config.login_timeout;
    match tokio::time::timeout_at(deadline, Box::pin(tls.accept(tcp))).await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        Ok(Err(e)) => {
            slog::debug!(shared.logger, "agent TLS handshake failed"; "error" => %e);
            None
        }
        Err(_) => None,
    }
}
