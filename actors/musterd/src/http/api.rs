//! The handlers of the health check, the JSON endpoints and the dashboard
//! page.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use muster::names::{AgentTag, ModelUuid};
use muster::presence::Status;
use serde::Serialize;
use serde_json::json;

use super::json::{ConnectionJson, MachineJson, round_report_durations};
use super::{Inspector, error};

/// The dashboard is one page with its style and script inlined, so that a
/// browser given the token once (`/?token=…`) needs no other authorised
/// fetch than the script's own API calls.
fn dashboard_page() -> String {
    include_str!("../dashboard/index.html")
        .replace("/*STYLE*/", include_str!("../dashboard/dashboard.css"))
        .replace("/*SCRIPT*/", include_str!("../dashboard/dashboard.js"))
}

fn bad_parameter(parameter: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": message.into(), "parameter": parameter }))
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    error(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        format!("tree not answering: {e}"),
    )
}

pub(super) async fn healthz(inspector: web::Data<Inspector>) -> HttpResponse {
    match inspector.muster.report().await {
        Ok(_) => HttpResponse::Ok().content_type("text/plain").body("ok\n"),
        Err(e) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(format!("tree not answering: {e}\n")),
    }
}

pub(super) async fn report(inspector: web::Data<Inspector>) -> HttpResponse {
    match inspector.muster.report().await {
        Ok(report) => match serde_json::to_value(report) {
            Ok(mut report) => {
                round_report_durations(&mut report);
                HttpResponse::Ok().json(report)
            }
            Err(e) => error(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("writing the report: {e}"),
            ),
        },
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

pub(super) async fn models(inspector: web::Data<Inspector>) -> HttpResponse {
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

pub(super) async fn presence(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
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
    let connections: Vec<ConnectionJson> = view.values().into_iter().map(Into::into).collect();
    HttpResponse::Ok().json(json!({
        "model": model,
        "count": view.count(),
        "agents": agents,
        "connections": connections,
    }))
}

pub(super) async fn machines(inspector: web::Data<Inspector>) -> HttpResponse {
    match inspector.muster.machines().machines().await {
        Ok(machines) => {
            let machines: Vec<MachineJson> = machines.into_iter().map(Into::into).collect();
            HttpResponse::Ok().json(json!({ "machines": machines }))
        }
        Err(e) => unavailable(e),
    }
}

pub(super) async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(dashboard_page())
}
