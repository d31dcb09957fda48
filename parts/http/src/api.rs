//! The handlers of the health check, the JSON endpoints and the dashboard
//! page.

use std::collections::HashSet;

use actix_web::{HttpRequest, HttpResponse, web};

use muster::names::{AgentTag, ModelUuid};
use muster::presence::Status;
use muster_actors::ReportOptions;
use serde::Serialize;
use serde_json::{Value, json};

use crate::inspector::Inspector;
use crate::json::{ConnectionJson, round_report_durations};
use crate::lists::machines::MachinesQuery;
use crate::lists::natural::sort_naturally;
use crate::lists::paging::PageQuery;
use crate::respond::{bad_parameter, error, query, unavailable};

pub(crate) async fn healthz(inspector: web::Data<Inspector>) -> HttpResponse {
    // Read from what the supervisors keep: no message, no walk of the tree.
    let health = inspector.health();
    let mut response = if health.is_healthy() {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response
        .content_type("text/plain")
        .body(format!("{health}\n"))
}

pub(crate) async fn readyz(inspector: web::Data<Inspector>) -> HttpResponse {
    let causes = inspector.unready();
    if causes.is_empty() {
        return HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n");
    }
    let lines: String = causes
        .iter()
        .map(|(part, cause)| format!("{part}: {cause}\n"))
        .collect();
    HttpResponse::ServiceUnavailable()
        .content_type("text/plain")
        .body(format!("not ready\n{lines}"))
}

/// Dynamic groups larger than this come folded into counts unless
/// `?children=all` asks for every row: thousands of pollers would make a
/// page of megabytes.
pub const REPORT_FOLD_OVER: usize = 100;

pub(crate) async fn report(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
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
    match inspector.report(options).await {
        Ok(report) => match serde_json::to_value(report) {
            Ok(mut report) => {
                round_report_durations(&mut report);
                // A write the registry failed is shown beside the tree.
                if let Some(machines) = &inspector.machines {
                    report["registry"] = json!(machines.report());
                }
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

pub(crate) async fn models(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
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
    // Each model's label where the tree knows one, so that a page names it
    // as the machines table does.
    let names: std::collections::HashMap<_, _> = inspector
        .muster
        .models()
        .into_iter()
        .filter_map(|m| Some((m.uuid, m.name?)))
        .collect();
    let rows: Vec<Value> = page
        .items
        .into_iter()
        .map(|counts| {
            let name = names.get(&counts.model).cloned();
            let mut row = serde_json::to_value(counts).unwrap_or_default();
            row["name"] = json!(name);
            row
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "models": rows,
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

pub(crate) async fn presence(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
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
    let mut values = view.values();
    if page.items.len() != page.total {
        let listed: HashSet<&AgentTag> = page.items.iter().map(|a| &a.agent).collect();
        values.retain(|v| listed.contains(&v.agent));
    }
    let connections: Vec<ConnectionJson> = values.into_iter().map(Into::into).collect();
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

pub(crate) async fn machines(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
    let asked = match MachinesQuery::parse(&query(&req)) {
        Ok(asked) => asked,
        Err(e) => return e.into(),
    };
    match inspector.muster.machines().machines().await {
        Ok(machines) => {
            let mut answer = asked.answer(machines);
            // So that a page can name each machine's model, and say which
            // node polls it.
            answer["models"] = crate::registry_api::models_polled(&inspector.muster);
            HttpResponse::Ok().json(answer)
        }
        Err(e) => unavailable(e),
    }
}

pub(crate) async fn history(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
    match crate::history::parse_after(&query(&req)) {
        Ok(after) => HttpResponse::Ok().json(inspector.history.answer(after)),
        Err(e) => e.into(),
    }
}

pub(crate) async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(crate::dashboard::page())
}
