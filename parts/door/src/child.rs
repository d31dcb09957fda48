//! The door as a supervised child: an actor that runs the accept loop,
//! and the host's [`Door`] handle on it.
//!
//! What the connections share (their settings, the shutdown signal, the
//! slots within `max_connections`) is made once, so a failure of the
//! accept loop restarts it on the same listener while every connection
//! carries on. A stop asked by the supervisor (the tree shutting down)
//! closes every connection with 1001 first, and waits for presence to take
//! each disconnect; a kill or a panic leaves them be.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix::prelude::*;
use muster::sync::lock;
use muster_actors::presence::PresenceHandle;
use muster_actors::{Arbiters, ChildSpec, ExitSlot, Mailbox, StatePolicy};
use serde::Serialize;
use slog::{Logger, info, warn};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::ConnectionIds;
use super::disconnects::Disconnects;
use super::limiter::Limiter;
use super::listen::{BoundDoor, accept, url};
use super::metrics::DoorMetrics;
use super::passwords::{Live, follow};
use super::shared::Shared;
use super::tls_failures::TlsFailures;

/// The door child's name in its host's tree.
pub const DOOR_CHILD: &str = "door";

/// How long closing the door waits for the connections to close and
/// presence to take their disconnects.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The door's mailbox: it hears only its supervisor and its report.
const MAILBOX: usize = 16;

/// What the door's incarnations and its handle share.
struct State {
    /// Taken when the host closes the door, so that the port is free and
    /// no incarnation accepts again.
    listener: Mutex<Option<Arc<TcpListener>>>,
    listen: SocketAddr,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Sender<bool>,
    slots: Arc<Semaphore>,
    max: u32,
    /// The tree's logger for the door, once it has started.
    logger: OnceLock<Logger>,
    /// The disconnects presence has not taken yet, kept with the rest.
    disconnects: Arc<Disconnects>,
    /// Where the connections are served.
    arbiters: Arbiters,
}

/// What a close of every connection left.
struct Closed {
    /// Connections open when the close began.
    open: usize,
    /// Connections still closing when the wait ended.
    closing: usize,
    /// Disconnects presence had not taken when the wait ended.
    queued: usize,
}

impl State {
    fn open(&self) -> usize {
        self.max as usize - self.slots.available_permits()
    }

    /// Closes every connection with 1001 and waits for them, then for
    /// presence to take every disconnect, at most [`STOP_WAIT`] in all.
    async fn close_connections(&self) -> Closed {
        let open = self.open();
        self.shutdown.send_replace(true);
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        let all = self.max;
        // Each connection has recorded or queued its disconnect before it
        // gives its slot back.
        let closed = tokio::time::timeout_at(deadline, self.slots.acquire_many(all)).await;
        let closing = if closed.is_ok() { 0 } else { self.open() };
        let _ = tokio::time::timeout_at(deadline, self.disconnects.drained()).await;
        Closed {
            open,
            closing,
            queued: self.disconnects.len(),
        }
    }
}

/// The host's handle on its door: where agents connect, how many are
/// connected, and the close that precedes a graceful stop. Cheap to clone.
#[derive(Clone)]
pub struct Door {
    state: Arc<State>,
}

impl std::fmt::Debug for Door {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Door")
            .field("url", &self.url())
            .field("open", &self.open())
            .finish()
    }
}

impl Door {
    /// Binds `config.listen` and reads the TLS files, on the current tokio
    /// runtime; [`BoundDoor::child`] makes the child that accepts.
    pub fn bind(config: &super::AgentsConfig) -> Result<BoundDoor, super::DoorError> {
        BoundDoor::bind(config)
    }

    /// The address the door listens on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.state.listen
    }

    /// Where agents connect: `ws://ADDR/agent`, or `wss://` with TLS.
    pub fn url(&self) -> String {
        url(self.state.listen, self.state.tls.is_some())
    }

    /// Sockets open now, those still logging in included.
    pub fn open(&self) -> usize {
        self.state.open()
    }

    /// Disconnects presence has not taken yet (muster restarting, its
    /// router's mailbox full): each is sent again until it is.
    pub fn disconnects_queued(&self) -> usize {
        self.state.disconnects.len()
    }

    /// Stops accepting for good, closes every connection with 1001 and
    /// records each disconnect; answers once they are all closed and
    /// presence has taken every disconnect, or after a few seconds,
    /// whichever comes first. A host calls it before it stops its tree, so
    /// that presence hears every disconnect.
    pub async fn close(&self) {
        // The accept loop that holds the other handle on the listener ends
        // as the connections are told to close.
        drop(lock(&self.state.listener).take());
        let closed = self.state.close_connections().await;
        let Some(logger) = self.state.logger.get() else {
            return;
        };
        if closed.closing == 0 && closed.queued == 0 {
            info!(logger, "agents door closed"; "connections" => closed.open);
        } else {
            warn!(logger, "agents door closed before every disconnect was recorded";
                "connections" => closed.open, "closing" => closed.closing,
                "disconnects_queued" => closed.queued);
        }
    }
}

/// The door's part of its host's report.
#[derive(Debug, Clone, Serialize)]
struct DoorReport {
    url: String,
    open: usize,
    max_connections: u32,
    accepting: bool,
    disconnects_queued: usize,
}

/// The actor: it runs the accept loop of one incarnation.
struct Acceptor {
    state: Arc<State>,
    exit: ExitSlot,
    shared: Arc<Shared>,
    /// Set once the connections are closed and the actor may stop.
    closed: bool,
    accepting: bool,
}

muster_actors::supervised!(Acceptor);

impl Actor for Acceptor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(listener) = lock(&self.state.listener).clone() else {
            return;
        };
        // A stop before this incarnation closed the connections; new ones
        // are welcome again.
        self.state.shutdown.send_replace(false);
        self.accepting = true;
        let accepting = accept(
            listener,
            self.state.tls.clone(),
            self.shared.clone(),
            self.state.slots.clone(),
            self.state.shutdown.subscribe(),
            self.state.arbiters.clone(),
        );
        ctx.spawn(accepting.into_actor(self));
        info!(self.shared.logger, "agents listening";
            "address" => %self.state.listen, "tls" => self.state.tls.is_some());
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        // Killed, or failed: the connections carry on, and the next
        // incarnation accepts beside them.
        if self.closed || !self.exit.stop_requested() {
            return Running::Stop;
        }
        // Asked to stop: every connection closes first, so that presence
        // hears each disconnect while it still runs.
        self.closed = true;
        self.accepting = false;
        let state = self.state.clone();
        let logger = self.shared.logger.clone();
        let closing = async move {
            let closed = state.close_connections().await;
            info!(logger, "agents door stopped"; "connections" => closed.open,
                "still_closing" => closed.closing, "disconnects_queued" => closed.queued);
        };
        ctx.spawn(closing.into_actor(self).map(|(), _, ctx| ctx.stop()));
        Running::Continue
    }
}

impl Acceptor {
    fn report(&self) -> DoorReport {
        DoorReport {
            url: url(self.state.listen, self.state.tls.is_some()),
            open: self.state.open(),
            max_connections: self.state.max,
            accepting: self.accepting,
            disconnects_queued: self.state.disconnects.len(),
        }
    }
}

impl BoundDoor {
    /// The door as a child called [`DOOR_CHILD`] of the host's tree, and
    /// the host's handle on it: its accept loop records each connection
    /// through `presence` with an id from `ids`, counting in `metrics`.
    /// It logs through the tree's logger.
    pub fn child(
        self,
        presence: PresenceHandle,
        ids: ConnectionIds,
        metrics: DoorMetrics,
    ) -> (ChildSpec, Door) {
        let listen = self.listener.local_addr().unwrap_or(self.config.listen);
        let max = self.config.max_connections.min(Semaphore::MAX_PERMITS) as u32;
        let disconnects = Disconnects::new(
            presence.clone(),
            self.config.server.clone(),
            metrics.clone(),
        );
        let state = Arc::new(State {
            listener: Mutex::new(Some(Arc::new(self.listener))),
            listen,
            tls: self.tls,
            shutdown: watch::Sender::new(false),
            slots: Arc::new(Semaphore::new(max as usize)),
            max,
            logger: OnceLock::new(),
            disconnects,
            arbiters: self.arbiters,
        });
        let config = self.config;
        let passwords = self.passwords;
        let mailbox = Mailbox::new(MAILBOX);
        let started = state.clone();
        let spec = ChildSpec::actor(DOOR_CHILD, &mailbox, move |cx| {
            let logger = cx.logger().clone();
            let _ = started.logger.set(logger.clone());
            let (state, config, presence) = (started.clone(), config.clone(), presence.clone());
            let (ids, metrics) = (ids.clone(), metrics.clone());
            let passwords = passwords.clone();
            let shared = cx.kept(move || {
                let live = Arc::new(Live::default());
                if let Some(passwords) = passwords.clone().filter(|_| config.passwords()) {
                    // The runtime's task, as the disconnects' queue: it
                    // follows the changes whichever incarnation runs.
                    tokio::spawn(follow(passwords, Arc::downgrade(&live), logger.clone()));
                }
                Arc::new(Shared {
                    limiter: Limiter::new(&config),
                    passwords,
                    live,
                    websocket: Shared::websocket(&config),
                    enabled: presence.watch_enabled(),
                    config,
                    presence,
                    ids,
                    logger,
                    shutdown: state.shutdown.subscribe(),
                    metrics,
                    disconnects: state.disconnects.clone(),
                    tls_failures: TlsFailures::default(),
                })
            })?;
            let shared = shared.lock().clone();
            Ok(Acceptor {
                state: started.clone(),
                exit: cx.exit_slot(),
                shared,
                closed: false,
                accepting: false,
            })
        })
        .state(StatePolicy::Kept)
        .report(mailbox.reporter(|acceptor: &Acceptor| {
            serde_json::to_value(acceptor.report()).unwrap_or_default()
        }));
        (spec, Door { state })
    }
}
