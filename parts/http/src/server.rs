//! An actix-web app served by a child of the host's tree ([`serve`]): the
//! surface alone, as the child called `http` ([`Inspector::child`]), or a
//! host's own app with the surface in it. One worker thread, on a
//! listener bound before anything starts.
//!
//! The listener is kept across restarts (each incarnation serves a copy
//! of it), so a restart never loses the port. A stop asked by the
//! supervisor lets the requests under way finish, for two seconds at most;
//! a failure or a kill stops the server with its actor, at once.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix::prelude::*;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use muster_actors::{ChildSpec, Exit, ExitSlot, Mailbox};
use serde::Serialize;
use slog::{Logger, info};

use crate::inspector::Inspector;

/// The HTTP child's name in its host's tree.
pub const HTTP_CHILD: &str = "http";

/// The child's mailbox: it hears only its supervisor and its report.
const MAILBOX: usize = 16;

/// How long a graceful stop waits for the requests under way, in seconds.
const SHUTDOWN_SECS: u64 = 2;

pub use muster::error::BindError;

/// Binds the listen address, with an error that says which address.
pub fn bind(listen: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(listen).map_err(|source| BindError { listen, source })
}

/// Starts a server on a listener.
type Start = Arc<dyn Fn(TcpListener) -> std::io::Result<Server> + Send + Sync>;

/// The actor of one incarnation: it owns the running server.
struct Served {
    start: Start,
    listener: Arc<TcpListener>,
    listen: SocketAddr,
    server: Option<ServerHandle>,
    exit: ExitSlot,
    logger: Logger,
    stopping: bool,
}

muster_actors::supervised!(Served);

/// The child's part of its host's report.
#[derive(Debug, Serialize)]
struct ServedReport {
    listen: SocketAddr,
    serving: bool,
}

impl Actor for Served {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let listener = match self.listener.try_clone() {
            Ok(listener) => listener,
            Err(e) => {
                self.exit
                    .stop(ctx, Exit::failed(format!("cannot use the listener: {e}")));
                return;
            }
        };
        let server = match (self.start)(listener) {
            Ok(server) => server,
            Err(e) => {
                self.exit
                    .stop(ctx, Exit::failed(format!("cannot serve: {e}")));
                return;
            }
        };
        self.server = Some(server.handle());
        info!(self.logger, "http listening"; "address" => %self.listen);
        // The server runs on a task of its own, so that it hears the stop
        // its handle sends even after this actor is gone (killed, say).
        let (ended_tx, ended) = tokio::sync::oneshot::channel();
        actix::spawn(async move {
            let _ = ended_tx.send(server.await);
        });
        ctx.spawn(ended.into_actor(self).map(|ended, served, ctx| {
            if served.stopping {
                return;
            }
            // Nothing stops the server but this actor: it ended on its own.
            let why = match ended {
                Ok(Ok(())) | Err(_) => "the server stopped on its own".to_owned(),
                Ok(Err(e)) => format!("the server failed: {e}"),
            };
            served.server = None;
            served.exit.stop(ctx, Exit::failed(why));
        }));
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        // Killed, or failed: the server goes at once, with the actor.
        if self.stopping || !self.exit.stop_requested() {
            return Running::Stop;
        }
        self.stopping = true;
        let Some(server) = self.server.take() else {
            return Running::Stop;
        };
        // The requests under way are answered first.
        ctx.spawn(
            async move { server.stop(true).await }
                .into_actor(self)
                .map(|(), _, ctx| ctx.stop()),
        );
        Running::Continue
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // Killed, or failed in a handler: the server goes with its actor.
        if let Some(server) = self.server.take() {
            drop(server.stop(false));
        }
    }
}

impl Served {
    fn report(&self) -> ServedReport {
        ServedReport {
            listen: self.listen,
            serving: self.server.is_some(),
        }
    }
}

/// An app of the routes `routes` configures served on `listener` (already
/// bound, so that a port in use is found before anything starts) by a
/// child called `name` of the host's tree, with one worker thread. A host
/// serves its own routes and the surface's [`scope`](Inspector::scope)
/// together this way.
pub fn serve<F>(name: &str, listener: TcpListener, routes: F) -> ChildSpec
where
    F: Fn(&mut web::ServiceConfig) + Send + Sync + Clone + 'static,
{
    let start: Start = Arc::new(move |listener| {
        let routes = routes.clone();
        Ok(
            HttpServer::new(move || App::new().configure(routes.clone()))
                .workers(1)
                .disable_signals()
                .shutdown_timeout(SHUTDOWN_SECS)
                .listen(listener)?
                .run(),
        )
    });
    let listen = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let listener = Arc::new(listener);
    let mailbox = Mailbox::new(MAILBOX);
    ChildSpec::actor(name, &mailbox, move |cx| {
        Ok(Served {
            start: start.clone(),
            listener: listener.clone(),
            listen,
            server: None,
            exit: cx.exit_slot(),
            logger: cx.logger().clone(),
            stopping: false,
        })
    })
    .report(
        mailbox
            .reporter(|served: &Served| serde_json::to_value(served.report()).unwrap_or_default()),
    )
}

impl Inspector {
    /// The surface served on `listener` (already bound, so that a port in
    /// use is found before anything starts) by a child called
    /// [`HTTP_CHILD`] of the host's tree, with one worker thread.
    pub fn child(self, listener: TcpListener) -> ChildSpec {
        serve(HTTP_CHILD, listener, move |routes| self.configure(routes))
    }
}
