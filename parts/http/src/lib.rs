//! The HTTP inspection surface: Prometheus metrics, the supervision tree,
//! presence and machines as JSON, a health check, and the dashboard.
//!
//! | path | answer |
//! | --- | --- |
//! | `/healthz` | `ok` while the tree runs with every static child up (never needs the token) |
//! | `/metrics` | Prometheus text 0.0.4, or OpenMetrics 1.0 when asked for |
//! | `/api/report[?children=all\|summary]` | the supervision tree; dynamic groups over 100 children folded into counts unless `all` |
//! | `/api/models` | every model with connections, with counts by status |
//! | `/api/presence?model=UUID[&agent=TAG]` | one model's connections and agent statuses |
//! | `/api/machines` | every machine: phase, interval, next poll, instance, addresses, error |
//! | `/api/history[?after=N]` | the samples of the last 30 minutes (see [`crate::history`]) |
//! | `/api/models/{uuid}/machines[/{id}]` | the machine registry of the models: `GET` a model's machines, `PUT` and `DELETE` one (see `registry_api.rs`) |
//! | `/` | the dashboard: one page polling the JSON endpoints |
//!
//! The lists (`/api/models`, `/api/machines`, and the agents of
//! `/api/presence`) take `offset`, `limit` and `filter` (see
//! [`crate::dashboard::paging`]), names in natural order.
//!
//! Every path answers `GET`, and `HEAD` alike without the body; another
//! method answers `405` with `Allow: GET, HEAD`, a path not listed `404`.
//! When a token is configured every path but `/healthz` wants
//! `Authorization: Bearer <token>` ([`auth`]), checked before the path is
//! looked up; a browser opening the dashboard gives it once as
//! `/?token=<token>` instead, and the page sends the header.

mod api;
pub mod auth;
pub mod dashboard;
pub mod exposition;
pub mod history;
mod json;
mod metrics;
mod registry_api;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{App, FromRequest, Handler, HttpRequest, HttpResponse, HttpServer, Resource, web};
use prometheus_client::registry::Registry;
use serde_json::json;

use muster_actors::host::Muster;

use crate::history::History;
use muster_registry::Registry as MachineRegistry;

pub use api::REPORT_FOLD_OVER;
pub(crate) use json::MachineJson;
pub use metrics::StateGauges;
pub(crate) use metrics::phase_name;

/// What the HTTP surface serves: the tree's handle, the metrics registry
/// (complete: nothing registers after the server starts), the state gauges
/// in it, the history, and the optional token.
#[derive(Clone)]
pub struct Inspector {
    muster: Muster,
    registry: Arc<Registry>,
    gauges: StateGauges,
    history: History,
    token: Option<Arc<str>>,
    /// The machine registry of the `[[models]]`, when there are some.
    machines: Option<MachineRegistry>,
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

    /// Routes and the token check, for an actix-web `App`.
    pub fn configure(&self, config: &mut web::ServiceConfig) {
        config.app_data(web::Data::new(self.clone())).service(
            web::scope("")
                .wrap(from_fn(auth::check_token))
                .service(read("/healthz", api::healthz))
                .service(read("/metrics", metrics::metrics))
                .service(read("/api/report", api::report))
                .service(read("/api/models", api::models))
                .service(read("/api/presence", api::presence))
                .service(read("/api/machines", api::machines))
                .service(read("/api/history", api::history))
                .configure(registry_api::routes)
                .service(read("/", api::index))
                .default_service(web::to(not_found)),
        );
    }

    /// Starts serving on `listener` (already bound, so that a port in use
    /// is found before anything starts) with one worker.
    pub fn serve(self, listener: TcpListener) -> std::io::Result<Server> {
        let server = HttpServer::new(move || {
            let inspector = self.clone();
            App::new().configure(move |c| inspector.configure(c))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(2)
        .listen(listener)?
        .run();
        Ok(server)
    }
}

/// The methods every path answers.
const ALLOW: &str = "GET, HEAD";

/// A path read with `GET`, or `HEAD` (the server sends the same head
/// without the body); any other method is told which it may use.
fn read<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args> + Clone,
    Args: FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(method_not_allowed))
}

/// Binds the listen address, with an error that says which address.
pub fn bind(listen: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(listen).map_err(|source| BindError { listen, source })
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

fn error(status: actix_web::http::StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message.into() }))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        actix_web::http::StatusCode::NOT_FOUND,
        format!("no such path: {}", req.path()),
    )
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, ALLOW))
        .json(json!({
            "error": format!("{} {}: this path answers {ALLOW}", req.method(), req.path())
        }))
}
