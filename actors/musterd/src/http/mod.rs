//! The HTTP inspection surface: Prometheus metrics, the supervision tree,
//! presence and machines as JSON, a health check, and the dashboard.
//!
//! | path | answer |
//! | --- | --- |
//! | `/healthz` | `ok` while the tree runs (never needs the token) |
//! | `/metrics` | Prometheus text |
//! | `/api/report` | the supervision tree |
//! | `/api/models` | every model with connections, with counts by status |
//! | `/api/presence?model=UUID[&agent=TAG]` | one model's connections and agent statuses |
//! | `/api/machines` | every machine: phase, interval, next poll, instance, addresses, error |
//! | `/` | the dashboard: one page polling the JSON endpoints |
//!
//! When a token is configured every path but `/healthz` wants
//! `Authorization: Bearer <token>`; a browser opening the dashboard gives it
//! once as `?token=<token>` instead, and the page sends the header.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use muster::names::{AgentTag, ModelUuid};
use muster::presence::Status;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use serde_json::json;

use muster_actors::host::Muster;
use muster_actors::machines::Tracking;

/// The dashboard is one page with its style and script inlined, so that a
/// browser given the token once (`/?token=…`) needs no other authorised
/// fetch than the script's own API calls.
fn dashboard_page() -> String {
    include_str!("dashboard/index.html")
        .replace("/*STYLE*/", include_str!("dashboard/dashboard.css"))
        .replace("/*SCRIPT*/", include_str!("dashboard/dashboard.js"))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

/// Gauges of what the tree holds, refreshed from its handle just before
/// each scrape: counting thousands of connections on every change would
/// cost more than counting them when asked.
#[derive(Clone, Debug, Default)]
pub struct StateGauges {
    connections: Family<StatusLabel, Gauge>,
    machines: Family<PhaseLabel, Gauge>,
}

impl StateGauges {
    /// Registers `muster_presence_connections{status}` and
    /// `muster_machines{phase}` (phase `short`, `long`, or `manual` for a
    /// machine that is never polled).
    pub fn register(registry: &mut Registry) -> Self {
        let gauges = StateGauges::default();
        registry.register(
            "muster_presence_connections",
            "Agent connections recorded by presence, by status",
            gauges.connections.clone(),
        );
        registry.register(
            "muster_machines",
            "Machines tracked by the instance poller, by poll phase",
            gauges.machines.clone(),
        );
        gauges
    }

    /// Reads the counts from the tree.
    pub async fn refresh(&self, muster: &Muster) {
        // From a view rather than the presence report: a view answers
        // after every event sent before it, the report may not.
        if let Ok(connections) = muster.presence().connections().await {
            let counts = connections.count_by_status();
            for status in [Status::Alive, Status::Missing] {
                self.connections
                    .get_or_create(&StatusLabel {
                        status: status.to_string(),
                    })
                    .set(counts.get(status) as i64);
            }
        }
        if let Ok(machines) = muster.machines().machines().await {
            let mut counts: BTreeMap<&str, i64> = [("short", 0), ("long", 0), ("manual", 0)].into();
            for machine in &machines {
                *counts.entry(phase_name(machine)).or_default() += 1;
            }
            for (phase, n) in counts {
                self.machines
                    .get_or_create(&PhaseLabel {
                        phase: phase.to_owned(),
                    })
                    .set(n);
            }
        }
    }
}

fn phase_name(machine: &muster_actors::machines::MachineState) -> &'static str {
    match (machine.tracking, machine.phase) {
        (Tracking::Manual, _) | (_, None) => "manual",
        (Tracking::Polled, Some(muster::poll::Phase::Short)) => "short",
        (Tracking::Polled, Some(muster::poll::Phase::Long)) => "long",
    }
}

/// What the HTTP surface serves: the tree's handle, the metrics registry
/// (complete: nothing registers after the server starts), the state gauges
/// in it, and the optional token.
#[derive(Clone)]
pub struct Inspector {
    muster: Muster,
    registry: Arc<Registry>,
    gauges: StateGauges,
    token: Option<Arc<str>>,
}

impl Inspector {
    /// Serves `muster`; `registry` must already hold the tree's metrics and
    /// `gauges`.
    pub fn new(
        muster: Muster,
        registry: Registry,
        gauges: StateGauges,
        token: Option<String>,
    ) -> Self {
        Inspector {
            muster,
            registry: Arc::new(registry),
            gauges,
            token: token.map(Arc::from),
        }
    }

    /// Routes and the token check, for an actix-web `App`.
    pub fn configure(&self, config: &mut web::ServiceConfig) {
        config.app_data(web::Data::new(self.clone())).service(
            web::scope("")
                .wrap(from_fn(check_token))
                .route("/healthz", web::get().to(healthz))
                .route("/metrics", web::get().to(metrics))
                .route("/api/report", web::get().to(report))
                .route("/api/models", web::get().to(models))
                .route("/api/presence", web::get().to(presence))
                .route("/api/machines", web::get().to(machines))
                .route("/", web::get().to(index))
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

fn bad_parameter(parameter: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": message.into(), "parameter": parameter }))
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

async fn check_token(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let expected = req
        .app_data::<web::Data<Inspector>>()
        .and_then(|i| i.token.clone());
    let Some(expected) = expected else {
        return next.call(req).await.map(|r| r.map_into_left_body());
    };
    if req.path() == "/healthz" {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let given = header.or_else(|| query(req.request()).remove("token"));
    if given.is_some_and(|t| same(t.as_bytes(), expected.as_bytes())) {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let response = HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .json(json!({ "error": "missing or wrong bearer token" }));
    Ok(req.into_response(response).map_into_right_body())
}

async fn healthz(inspector: web::Data<Inspector>) -> HttpResponse {
    match inspector.muster.report().await {
        Ok(_) => HttpResponse::Ok().content_type("text/plain").body("ok\n"),
        Err(e) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(format!("tree not answering: {e}\n")),
    }
}

async fn metrics(inspector: web::Data<Inspector>) -> HttpResponse {
    inspector.gauges.refresh(&inspector.muster).await;
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &inspector.registry) {
        Ok(()) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text),
        Err(e) => error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {e}"),
        ),
    }
}

fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    error(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        format!("tree not answering: {e}"),
    )
}

async fn report(inspector: web::Data<Inspector>) -> HttpResponse {
    match inspector.muster.report().await {
        Ok(report) => HttpResponse::Ok().json(report),
        Err(e) => unavailable(e),
    }
}

/// One model in `/api/models`.
#[derive(Debug, Serialize)]
struct ModelSummary {
    model: ModelUuid,
    connections: usize,
    agents: usize,
    alive: usize,
    missing: usize,
    /// Agents seen only on controller-agent connections, which never count
    /// towards an agent's status.
    controller: usize,
}

async fn models(inspector: web::Data<Inspector>) -> HttpResponse {
    let connections = match inspector.muster.presence().connections().await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let models: Vec<ModelSummary> = connections
        .models()
        .iter()
        .map(|model| {
            let view = connections.for_model(model);
            let agents = view.agents();
            let controller = agents
                .iter()
                .filter(|a| only_controller(&view.for_agent(a)))
                .count();
            let statuses: Vec<Status> = agents
                .iter()
                .map(|a| view.agent_status(a).unwrap_or_default())
                .collect();
            ModelSummary {
                model: *model,
                connections: view.count(),
                agents: agents.len(),
                alive: statuses.iter().filter(|s| **s == Status::Alive).count(),
                missing: statuses.iter().filter(|s| **s == Status::Missing).count(),
                controller,
            }
        })
        .collect();
    HttpResponse::Ok().json(json!({ "models": models }))
}

/// Whether every connection of a view is a controller agent's.
fn only_controller(view: &muster::presence::Connections) -> bool {
    let values = view.values();
    !values.is_empty() && values.iter().all(|v| v.controller_agent)
}

/// One agent in `/api/presence`.
#[derive(Debug, Serialize)]
struct AgentStatus {
    agent: AgentTag,
    status: Status,
    /// Seen only on controller-agent connections, whose status is not
    /// counted (so `status` is `unknown`).
    controller: bool,
}

async fn presence(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
    let query = query(&req);
    let model: ModelUuid = match query.get("model") {
        None => return bad_parameter("model", "missing parameter `model` (a model UUID)"),
        Some(text) => match text.parse() {
            Ok(model) => model,
            Err(e) => return bad_parameter("model", format!("parameter `model`: {e}")),
        },
    };
    let agent: Option<AgentTag> = match query.get("agent") {
        None => None,
        Some(text) => match text.parse() {
            Ok(agent) => Some(agent),
            Err(e) => return bad_parameter("agent", format!("parameter `agent`: {e}")),
        },
    };
    let connections = match inspector.muster.presence().connections().await {
        Ok(c) => c.for_model(&model),
        Err(e) => return unavailable(e),
    };
    let view = match &agent {
        Some(agent) => connections.for_agent(agent),
        None => connections,
    };
    let agents: Vec<AgentStatus> = match &agent {
        // An agent asked for by name is answered even when unknown.
        Some(agent) => vec![AgentStatus {
            agent: agent.clone(),
            status: view.agent_status(agent).unwrap_or_default(),
            controller: only_controller(&view),
        }],
        None => view
            .agents()
            .into_iter()
            .map(|agent| AgentStatus {
                status: view.agent_status(&agent).unwrap_or_default(),
                controller: only_controller(&view.for_agent(&agent)),
                agent,
            })
            .collect(),
    };
    HttpResponse::Ok().json(json!({
        "model": model,
        "count": view.count(),
        "agents": agents,
        "connections": view.values(),
    }))
}

async fn machines(inspector: web::Data<Inspector>) -> HttpResponse {
    match inspector.muster.machines().machines().await {
        Ok(machines) => HttpResponse::Ok().json(json!({ "machines": machines })),
        Err(e) => unavailable(e),
    }
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(dashboard_page())
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        actix_web::http::StatusCode::NOT_FOUND,
        format!("no such path: {}", req.path()),
    )
}
