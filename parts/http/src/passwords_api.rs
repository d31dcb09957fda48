//! Each agent's own password over HTTP (docs/spec.md §14.2), behind the
//! same rules as the registry's writes (`registry_api.rs`):
//!
//! | method and path | answer |
//! | --- | --- |
//! | `POST /api/models/{uuid}/agents/{tag}/password` | `201 {"model", "agent", "password"}`: a new password, shown this once; calling again rotates it |
//! | `DELETE /api/models/{uuid}/agents/{tag}/password` | `204`; `404` when the agent has none |
//!
//! A bad UUID or tag answers `400` with `{"error", "field"}`; a model
//! musterd does not poll `404`. The answer carrying a password is never
//! to be cached (`Cache-Control: no-store`).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use muster::names::AgentTag;
use serde_json::json;

use crate::inspector::Inspector;
use crate::registry_api::{Refusal, answer, failed, model, refused};
use muster_registry::BodyError;

/// The methods the path answers.
const WRITES: &str = "POST, DELETE";

/// The routes, for the surface's scope.
pub(super) fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/api/models/{uuid}/agents/{tag}/password")
            .route(web::post().to(post))
            .route(web::delete().to(delete))
            .default_service(web::to(not_a_write)),
    );
}

/// The agent tag of the path.
fn agent(tag: &str) -> Result<AgentTag, Refusal> {
    tag.parse().map_err(|_| {
        const SHOWN: usize = 40;
        let shown: String = tag.chars().take(SHOWN).collect();
        let more = if shown.len() < tag.len() { "…" } else { "" };
        refused(
            StatusCode::BAD_REQUEST,
            BodyError::field(
                "tag",
                format!(
                    "{shown:?}{more} is not an agent tag (machine-N, unit-APP-N or application-APP)"
                ),
            ),
        )
    })
}

async fn post(path: web::Path<(String, String)>, inspector: web::Data<Inspector>) -> HttpResponse {
    let (uuid, tag) = path.into_inner();
    answer(provision(&uuid, &tag, &inspector).await)
}

async fn provision(uuid: &str, tag: &str, inspector: &Inspector) -> Result<HttpResponse, Refusal> {
    let (registry, model) = model(inspector, uuid)?;
    let agent = agent(tag)?;
    let made = registry
        .provision_password(model, agent.clone())
        .await
        .map_err(failed)?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "model": model,
            "agent": agent,
            "password": made.password,
        })))
}

async fn delete(
    path: web::Path<(String, String)>,
    inspector: web::Data<Inspector>,
) -> HttpResponse {
    let (uuid, tag) = path.into_inner();
    answer(remove(&uuid, &tag, &inspector).await)
}

async fn remove(uuid: &str, tag: &str, inspector: &Inspector) -> Result<HttpResponse, Refusal> {
    let (registry, model) = model(inspector, uuid)?;
    let agent = agent(tag)?;
    if registry
        .remove_password(model, agent.clone())
        .await
        .map_err(failed)?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(refused(
            StatusCode::NOT_FOUND,
            BodyError::field(
                "tag",
                format!("agent {agent} of model {model} has no password"),
            ),
        ))
    }
}

async fn not_a_write(req: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, WRITES))
        .json(json!({
            "error": format!("{} {}: this path answers {WRITES}", req.method(), req.path())
        }))
}
