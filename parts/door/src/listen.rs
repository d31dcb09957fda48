//! The door's listener: bound before anything starts, so that a port in
//! use is found first, then the accept loop, one task per socket, within
//! `max_connections`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use muster_actors::Arbiters;
use slog::warn;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::config::AgentsConfig;
use super::connection::{self, AGENT_PATH};
use super::metrics::DoorMetrics;
use super::passwords::AgentPasswords;
use super::shared::{Shared, closing};
use super::tls_failures::LOG_EVERY;
use super::{BindError, DoorError, tls};

/// Sockets answered HTTP 503 at once, at most; past it a socket over
/// `max_connections` is closed unanswered, so refusing stays cheap. With
/// `max_connections`, the most sockets (and so file descriptors) the door
/// holds at once.
pub const REFUSING: usize = 256;

/// The listen queue: a reconnect storm's sockets wait here for the accept
/// loop (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 4096;

/// The door's listener, bound, with its TLS settings read: what
/// [`BoundDoor::child`](crate::BoundDoor::child) mounts.
pub struct BoundDoor {
    pub(super) listener: TcpListener,
    pub(super) tls: Option<TlsAcceptor>,
    pub(super) config: AgentsConfig,
    pub(super) arbiters: Arbiters,
    pub(super) passwords: Option<Arc<dyn AgentPasswords>>,
}

impl BoundDoor {
    /// Binds `config.listen` and reads the TLS files, on the current tokio
    /// runtime. Nothing is accepted until the door's child runs.
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
            arbiters: Arbiters::default(),
            passwords: None,
        })
    }

    /// Checks each login against the agent's own password in `passwords`
    /// when the config says `auth = "password"` (without it, every such
    /// login is refused with 4401), and closes the connections whose
    /// agent's password changes.
    pub fn checking_passwords(mut self, passwords: Arc<dyn AgentPasswords>) -> Self {
        self.passwords = Some(passwords);
        self
    }

    /// Serves the connections on `arbiters` (threads), in turn as they
    /// come: the accept loop stays on the door's own arbiter, and each
    /// socket is read, written and recorded from its connection's.
    pub fn spread_over(mut self, arbiters: Arbiters) -> Self {
        self.arbiters = arbiters;
        self
    }

    /// The address bound (the real port when 0 was asked).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where agents will connect.
    pub fn url(&self) -> std::io::Result<String> {
        Ok(url(self.local_addr()?, self.tls.is_some()))
    }
}

/// `ws://ADDR/agent`, or `wss://` with TLS.
pub(super) fn url(listen: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "wss" } else { "ws" };
    format!("{scheme}://{listen}{AGENT_PATH}")
}

/// The accept loop: a socket within `max_connections` gets a connection
/// task; past it, an HTTP 503 (or, past [`REFUSING`] of those, nothing).
pub(super) async fn accept(
    listener: Arc<TcpListener>,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    mut stopping: watch::Receiver<bool>,
    arbiters: Arbiters,
) {
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let mut turn = 0usize;
    loop {
        let accepted = tokio::select! {
            biased;
            () = closing(&mut stopping) => return,
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
            let socket = Socket::opened(&shared.metrics, slot);
            let tls = tls.clone();
            spawn_socket(&arbiters, &mut turn, tcp, move |tcp| async move {
                match tls {
                    None => connection::serve(shared, tcp, peer, started).await,
                    Some(tls) => {
                        if let Some(stream) = handshake(&tls, tcp, &shared, started).await {
                            connection::serve(shared, stream, peer, started).await;
                        }
                    }
                }
                drop(socket);
            });
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

/// Serves an accepted socket on the next of `arbiters` in turn (on this
/// one without any), the socket moved to that arbiter's own reactor so
/// that its reading and writing happen there too.
fn spawn_socket<F, Fut>(arbiters: &Arbiters, turn: &mut usize, tcp: TcpStream, serve: F)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(arbiter) = arbiters.nth(*turn) else {
        tokio::spawn(serve(tcp));
        return;
    };
    *turn = turn.wrapping_add(1);
    // A socket that fails here went away: dropping it closes it, and its
    // slot goes with `serve`.
    let Ok(socket) = tcp.into_std() else {
        return;
    };
    arbiter.spawn(async move {
        if let Ok(tcp) = TcpStream::from_std(socket) {
            serve(tcp).await;
        }
    });
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
    let error = match tokio::time::timeout_at(deadline, Box::pin(tls.accept(tcp))).await {
        Ok(Ok(stream)) => return Some(Box::new(stream)),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "not done within login_timeout".to_owned(),
    };
    shared.metrics.login("tls");
    if let Some(failed) = shared.tls_failures.failed(Instant::now()) {
        warn!(shared.logger, "agents: TLS handshakes failed";
            "failed" => failed, "within" => ?LOG_EVERY, "last_error" => error);
    }
    None
}
