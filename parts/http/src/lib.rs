//! The HTTP inspection surface: Prometheus metrics, the supervision tree,
//! presence and machines as JSON, a health check, and the dashboard.
//!
//! | path | answer |
//! | --- | --- |
//! | `/healthz` | `ok` while the tree runs with every static child up (never needs the token) |
//! | `/readyz` | `ready` while the node can do its job, else 503 naming each part that cannot and why (never needs the token) |
//! | `/metrics` | Prometheus text 0.0.4, or OpenMetrics 1.0 when asked for |
//! | `/api/report[?children=all\|summary]` | the supervision tree; dynamic groups over 100 children folded into counts unless `all` |
//! | `/api/models` | every model with connections, with counts by status |
//! | `/api/presence?model=UUID[&agent=TAG]` | one model's connections and agent statuses |
//! | `/api/machines` | every machine: phase, interval, next poll, instance, addresses, error |
//! | `/api/history[?after=N]` | the samples of the last 30 minutes (see [`history`]) |
//! | `/api/models/{uuid}/machines[/{id}]` | the machine registry of the models: `GET` a model's machines, `PUT` and `DELETE` one (see `registry_api.rs`) |
//! | `/api/models/{uuid}/agents/{tag}/password` | an agent's own password: `POST` makes (or rotates) it, `DELETE` removes it (see `passwords_api.rs`) |
//! | `/` | the dashboard: one page polling the JSON endpoints |
//!
//! The lists (`/api/models`, `/api/machines`, and the agents of
//! `/api/presence`) take `offset`, `limit` and `filter` (see
//! [`lists::paging`]), names in natural order.
//!
//! Every path answers `GET`, and `HEAD` alike without the body; another
//! method answers `405` with `Allow: GET, HEAD`, a path not listed `404`.
//! When a token is configured every path but `/healthz` wants
//! `Authorization: Bearer <token>` ([`auth`]), checked before the path is
//! looked up; a browser opening the dashboard gives it once as
//! `/?token=<token>` instead, and the page sends the header.
//!
//! A host mounts the surface in its own actix-web app under a prefix of
//! its choosing ([`Inspector::scope`]), beside its own routes, or has a
//! child of its tree serve it ([`Inspector::child`], called `http`); the
//! history is filled by a child of its own ([`history::Sampler::child`],
//! called `history`):
//!
//! ```no_run
//! # use actix_web::{App, HttpResponse, web};
//! # fn app(inspector: muster_http::Inspector) -> App<impl actix_web::dev::ServiceFactory<actix_web::dev::ServiceRequest, Config = (), Response = actix_web::dev::ServiceResponse, Error = actix_web::Error, InitError = ()>> {
//! App::new()
//!     .route("/", web::get().to(|| async { HttpResponse::Ok().body("the host's own page") }))
//!     .service(inspector.scope("/muster"))
//! # }
//! ```

mod api;
pub mod auth;
mod config;
pub mod dashboard;
pub mod exposition;
mod gauges;
pub mod history;
mod inspector;
mod json;
pub mod lists;
mod metrics;
mod passwords_api;
mod registry_api;
mod respond;
mod routes;
mod server;

pub use api::REPORT_FOLD_OVER;
pub use config::{DEFAULT_LISTEN, HttpConfig};
pub use gauges::StateGauges;
pub use history::sampler::{HISTORY_CHILD, Sampler};
pub use inspector::Inspector;
pub use server::{BindError, HTTP_CHILD, bind, serve};

/// The README's Rust snippets, compiled and run as tests of this crate,
/// which can reach every part they mount.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
