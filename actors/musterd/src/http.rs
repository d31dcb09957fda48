//! The HTTP inspection surface: Prometheus metrics, the supervision tree,
//! presence and machines as JSON, a health check, and the dashboard.
//!
//! | path | answer |
//! | --- | --- |
//! | `/healthz` | `ok` while the tree runs with every static child up (never needs the token) |
//! | `/metrics` | Prometheus text |
//! | `/api/report[?children=all\|summary]` | the supervision tree; dynamic groups over 100 children folded into counts unless `all` |
//! | `/api/models` | every model with connections, with counts by status |
//! | `/api/presence?model=UUID[&agent=TAG]` | one model's connections and agent statuses |
//! | `/api/machines` | every machine: phase, interval, next poll, instance, addresses, error |
//! | `/api/history[?after=N]` | the samples of the last 30 minutes (see [`crate::history`]) |
//! | `/` | the dashboard: one page polling the JSON endpoints |
//!
//! When a token is configured every path but `/healthz` wants
//! `Authorization: Bearer <token>`; a browser opening the dashboard gives it
//! once as `?token=<token>` instead, and the page sends the header.
//!
//! The lists (`/api/models`, `/api/machines`, and the agents of
//! `/api/presence`) take `offset`, `limit` and `filter` (see
//! [`crate::dashboard::paging`]), names in natural order.

use std::collections::HashMap;
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

use muster_actors::ReportOptions;
use muster_actors::host::Muster;

use crate::dashboard::machines::MachinesQuery;
use crate::dashboard::natural::sort_naturally;
use crate::dashboard::paging::{BadParameter, PageQuery};
use crate::history::History;

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
        // Counted in place: building every machine's state would cost as
        // much as /api/machines on every scrape.
        let counts = muster.machines().count_by_phase();
        for (phase, n) in [
            ("short", counts.short),
            ("long", counts.long),
            ("manual", counts.manual),
        ] {
            self.machines
                .get_or_create(&PhaseLabel {
                    phase: phase.to_owned(),
                })
                .set(n as i64);
        }
    }
}

/// A machine's phase as the metrics and the API name it: `short`, `long`,
/// or `manual` for a machine that is never polled.
pub(crate) fn phase_name(machine: &muster_actors::machines::MachineState) -> &'static str {
    match (machine.tracking, machine.phase) {
        (muster_actors::machines::Tracking::Manual, _) | (_, None) => "manual",
        (_, Some(muster::poll::Phase::Short)) => "short",
        (_, Some(muster::poll::Phase::Long)) => "long",
    }
}

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
}

impl Inspector {
    /// Serves `muster`; `registry` must already hold the tree's metrics and
    /// `gauges`. Its history is empty until [`Inspector::with_history`].
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
        }
    }

    /// Serves `history` as `/api/history`.
    pub fn with_history(self, history: History) -> Self {
        Inspector { history, ..self }
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
                .route("/api/history", web::get().to(history))
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

impl From<BadParameter> for HttpResponse {
    fn from(e: BadParameter) -> Self {
        bad_parameter(e.parameter, e.message)
    }
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
    // Read from what the supervisors keep: no message, no walk of the tree.
    let health = inspector.muster.health();
    let mut response = if health.is_healthy() {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response
        .content_type("text/plain")
        .body(format!("{health}\n"))
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

/// Dynamic groups larger than this come folded into counts unless
/// `?children=all` asks for every row: thousands of pollers would make a
/// page of megabytes.
pub const REPORT_FOLD_OVER: usize = 100;

async fn report(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
    let options = match query(&req).get("children").map(String::as_str) {
        None => ReportOptions::folding_over(REPORT_FOLD_OVER),
        Some("all") => ReportOptions::every_child(),
        Some("summary") => ReportOptions::folding_over(0),
        Some(other) => {
            return bad_parameter(
                "children",
                format!("parameter `children`: {other:?} is not `all` or `summary`"),
            );
        }
    };
    match inspector.muster.report_with(options).await {
        Ok(report) => HttpResponse::Ok().json(report),
        Err(e) => unavailable(e),
    }
}

async fn models(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
    let page = match PageQuery::parse(&query(&req)) {
        Ok(page) => page,
        Err(e) => return e.into(),
    };
    // Kept as events arrive: O(models), however many connections.
    let models = match inspector.muster.presence().model_counts().await {
        Ok(models) => models,
        Err(e) => return unavailable(e),
    };
    let mut totals = json!({});
    for (key, count) in [
        (
            "connections",
            models.iter().map(|m| m.connections).sum::<usize>(),
        ),
        ("agents", models.iter().map(|m| m.agents).sum()),
        ("alive", models.iter().map(|m| m.alive).sum()),
        ("missing", models.iter().map(|m| m.missing).sum()),
        ("controller", models.iter().map(|m| m.controller).sum()),
    ] {
        totals[key] = count.into();
    }
    let page = page.apply(models, |m| m.model.to_string().into());
    HttpResponse::Ok().json(json!({
        "models": page.items,
        "total": page.total,
        "matched": page.matched,
        "offset": page.offset,
        "limit": page.limit,
        "totals": totals,
    }))
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
    let page = match PageQuery::parse(&query) {
        Ok(page) => page,
        Err(e) => return e.into(),
    };
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
    let mut agents: Vec<AgentStatus> = match &agent {
        // An agent asked for by name is answered even when unknown.
        Some(agent) => vec![AgentStatus {
            agent: agent.clone(),
            status: view.agent_status(agent).unwrap_or_default(),
            controller: only_controller(&view),
        }],
        // One pass over the model, not one per agent.
        None => view
            .agent_statuses()
            .unwrap_or_default()
            .into_iter()
            .map(|a| AgentStatus {
                agent: a.agent,
                status: a.status,
                controller: a.controller,
            })
            .collect(),
    };
    sort_naturally(&mut agents, |a| a.agent.as_str());
    let page = page.apply(agents, |a| a.agent.as_str().into());
    // The connections of the agents answered: all of them when the list is
    // not narrowed.
    let connections = if page.items.len() == page.total {
        view.values()
    } else {
        let listed: std::collections::HashSet<&AgentTag> =
            page.items.iter().map(|a| &a.agent).collect();
        let mut values = view.values();
        values.retain(|v| listed.contains(&v.agent));
        values
    };
    HttpResponse::Ok().json(json!({
        "model": model,
        "count": view.count(),
        "agents": page.items,
        "total": page.total,
        "matched": page.matched,
        "offset": page.offset,
        "limit": page.limit,
        "connections": connections,
    }))
}

async fn machines(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
    let asked = match MachinesQuery::parse(&query(&req)) {
        Ok(asked) => asked,
        Err(e) => return e.into(),
    };
    match inspector.muster.machines().machines().await {
        Ok(machines) => HttpResponse::Ok().json(asked.answer(machines)),
        Err(e) => unavailable(e),
    }
}

async fn history(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
    match crate::history::parse_after(&query(&req)) {
        Ok(after) => HttpResponse::Ok().json(inspector.history.answer(after)),
        Err(e) => e.into(),
    }
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(crate::dashboard::page())
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        actix_web::http::StatusCode::NOT_FOUND,
        format!("no such path: {}", req.path()),
    )
}
