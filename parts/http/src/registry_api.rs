//! The machine registry over HTTP (docs/spec.md §10.5): what a controller
//! writes of each model's machines, and what muster knows of them.
//!
//! | method and path | answer |
//! | --- | --- |
//! | `PUT /api/models/{uuid}/machines/{id}` | registers machine `id` (`201` created, `200` otherwise) |
//! | `DELETE /api/models/{uuid}/machines/{id}` | removes it (`204`; `404` when it is not registered) |
//! | `GET /api/models/{uuid}/machines` | the model's machines, as `/api/machines` shows them, with `life` and `agent_status` |
//!
//! A bad UUID, machine id or body answers `400` with `{"error", "field"}`
//! (`field` `null` for the body as a whole); a model musterd does not poll
//! `404`. The token rule of the whole surface applies: with a token set,
//! writes want it like every other path.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use muster::names::{MachineTag, ModelUuid};
use muster_actors::machines::{MachineState, Tracking};
use muster_actors::{ModelHandle, Muster};
use serde_json::{Value, json};

use crate::inspector::Inspector;
use crate::json::MachineJson;
use crate::lists::natural::sort_naturally;
use crate::lists::paging::PageQuery;
use crate::respond::read;
use muster_registry::{
    BackendError, BodyError, MAX_BODY_BYTES, MachineRecord, PutOutcome, Registry, RegistryError,
    parse_machine_id, parse_model_uuid, parse_registration,
};

/// The methods a machine's path answers.
const WRITES: &str = "PUT, DELETE";

/// The registry's routes, for the surface's scope.
pub(super) fn routes(config: &mut web::ServiceConfig) {
    config
        .service(read("/api/models/{uuid}/machines", list))
        .service(
            web::resource("/api/models/{uuid}/machines/{id}")
                .route(web::put().to(put))
                .route(web::delete().to(delete))
                .default_service(web::to(not_a_write)),
        );
}

/// A request refused: its status, what was wrong and the field it was in.
pub(crate) struct Refusal(pub(crate) StatusCode, pub(crate) BodyError);

impl From<Refusal> for HttpResponse {
    fn from(Refusal(status, error): Refusal) -> Self {
        let mut answer = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            answer.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()));
        }
        answer.json(json!({ "error": error.error, "field": error.field }))
    }
}

/// When a client should ask again a call the registry could not try (its
/// shared store unreachable): the link comes back within a second of its
/// server, if the server is there.
const RETRY_AFTER_SECONDS: u64 = 1;

pub(crate) fn refused(status: StatusCode, error: BodyError) -> Refusal {
    Refusal(status, error)
}

/// The answer of a handler, or its refusal.
pub(crate) fn answer(result: Result<HttpResponse, Refusal>) -> HttpResponse {
    result.unwrap_or_else(HttpResponse::from)
}

/// The registry and the model of the path, when musterd polls it.
pub(crate) fn model<'a>(
    inspector: &'a Inspector,
    uuid: &str,
) -> Result<(&'a Registry, ModelUuid), Refusal> {
    let uuid = parse_model_uuid(uuid).map_err(|e| refused(StatusCode::BAD_REQUEST, e))?;
    match &inspector.machines {
        Some(registry) if inspector.muster.model(&uuid).is_some() => Ok((registry, uuid)),
        _ => Err(refused(
            StatusCode::NOT_FOUND,
            BodyError::field(
                "uuid",
                format!("musterd polls no model {uuid}: the models are those of its config file"),
            ),
        )),
    }
}

/// A failure of the registry itself (the disk full, the file locked): it
/// is logged and kept for `/api/report` by the registry. One the registry
/// did not even try, its shared store unreachable, is 503 with
/// `Retry-After`, at once.
pub(crate) fn failed(error: RegistryError) -> Refusal {
    let status = match error.source {
        BackendError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Refusal(status, BodyError::body(error.to_string()))
}

/// Reads the body, at most [`MAX_BODY_BYTES`] of it: a larger one is
/// refused without being read to its end.
async fn body(req: &HttpRequest, mut payload: web::Payload) -> Result<Vec<u8>, Refusal> {
    let too_large = |size: String| refused(StatusCode::BAD_REQUEST, BodyError::body(size));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > MAX_BODY_BYTES as u64
    {
        return Err(too_large(format!(
            "the body is {length} bytes, more than the {MAX_BODY_BYTES} allowed"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            refused(
                StatusCode::BAD_REQUEST,
                BodyError::body(format!("the body could not be read: {e}")),
            )
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            // A body of no declared length (chunked) is cut at the limit,
            // so its whole size is never known.
            return Err(too_large(format!(
                "the body is more than the {MAX_BODY_BYTES} bytes allowed"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn outcome_name(outcome: PutOutcome) -> &'static str {
    match outcome {
        PutOutcome::Created => "created",
        PutOutcome::Replaced => "replaced",
        PutOutcome::Updated => "updated",
        PutOutcome::Unchanged => "unchanged",
    }
}

async fn put(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    inspector: web::Data<Inspector>,
) -> HttpResponse {
    let (uuid, id) = path.into_inner();
    answer(register(&req, &uuid, &id, payload, &inspector).await)
}

async fn register(
    req: &HttpRequest,
    uuid: &str,
    id: &str,
    payload: web::Payload,
    inspector: &Inspector,
) -> Result<HttpResponse, Refusal> {
    let (registry, model) = model(inspector, uuid)?;
    let tag = parse_machine_id(id).map_err(|e| refused(StatusCode::BAD_REQUEST, e))?;
    let body = body(req, payload).await?;
    let registration =
        parse_registration(&body).map_err(|e| refused(StatusCode::BAD_REQUEST, e))?;
    let outcome = registry
        .register(model, tag.clone(), registration)
        .await
        .map_err(failed)?;
    let status = if outcome == PutOutcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(json!({
        "model": model,
        "id": tag.id(),
        "outcome": outcome_name(outcome),
    })))
}

async fn delete(
    path: web::Path<(String, String)>,
    inspector: web::Data<Inspector>,
) -> HttpResponse {
    let (uuid, id) = path.into_inner();
    answer(remove(&uuid, &id, &inspector).await)
}

async fn remove(uuid: &str, id: &str, inspector: &Inspector) -> Result<HttpResponse, Refusal> {
    let (registry, model) = model(inspector, uuid)?;
    let tag = parse_machine_id(id).map_err(|e| refused(StatusCode::BAD_REQUEST, e))?;
    if registry.remove(model, tag.clone()).await.map_err(failed)? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(refused(
            StatusCode::NOT_FOUND,
            BodyError::field(
                "id",
                format!("machine {} of model {model} is not registered", tag.id()),
            ),
        ))
    }
}

/// A registered machine as `/api/machines` shows it: what the tree knows
/// of it, and before the tree has polled it (after a restart, say) what
/// the pollers last recorded; then its registered life and agent status.
fn row(model: ModelUuid, record: MachineRecord, tracked: Option<MachineState>) -> Value {
    let recorded = record.recorded.recorded_at.is_some();
    let mut state = tracked.unwrap_or_else(|| {
        let tracking = if record.registration.manual {
            Tracking::Manual
        } else {
            Tracking::Polled
        };
        MachineState::unpolled(Some(model), record.tag.clone(), tracking)
    });
    if state.instance_id.is_none() {
        state.instance_id = record.registration.instance_id.clone();
    }
    if state.instance_status.is_none() && recorded {
        state.instance_status = Some(record.recorded.instance_status.clone());
    }
    if state.polls == 0 && state.addresses.is_empty() {
        state.addresses = record.recorded.addresses.clone();
    }
    let mut row = serde_json::to_value(MachineJson::from(state)).unwrap_or_default();
    row["life"] = json!(record.registration.life);
    row["agent_status"] = json!(record.registration.agent_status);
    row
}

/// Whether this node polls a model of the tree, and which node does when
/// the cluster says (`None` outside a cluster, or while none is known to).
fn polled(handle: Option<&ModelHandle>) -> (bool, Option<MachineTag>) {
    match handle {
        Some(handle) => (handle.polled_here(), handle.polled_by()),
        None => (false, None),
    }
}

/// The models of the tree as `/api/machines` lists them: each one's UUID,
/// label and account, whether this node polls it (`polled_here`) and
/// which node does (`polled_by`).
pub(crate) fn models_polled(muster: &Muster) -> Value {
    let models: Vec<Value> = muster
        .models()
        .into_iter()
        .map(|info| {
            let (polled_here, polled_by) = polled(muster.model(&info.uuid));
            let mut model = serde_json::to_value(info).unwrap_or_default();
            model["polled_here"] = json!(polled_here);
            model["polled_by"] = json!(polled_by);
            model
        })
        .collect();
    Value::Array(models)
}

async fn list(
    req: HttpRequest,
    path: web::Path<String>,
    inspector: web::Data<Inspector>,
) -> HttpResponse {
    answer(machines(&req, &path.into_inner(), &inspector).await)
}

async fn machines(
    req: &HttpRequest,
    uuid: &str,
    inspector: &Inspector,
) -> Result<HttpResponse, Refusal> {
    let (registry, model) = model(inspector, uuid)?;
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let page = match PageQuery::parse(&query) {
        Ok(page) => page,
        Err(e) => {
            return Ok(HttpResponse::BadRequest()
                .json(json!({ "error": e.message, "parameter": e.parameter })));
        }
    };
    let mut records = registry.machines(model).await.map_err(failed)?;
    let handle = inspector.muster.model(&model);
    // A model another node polls is answered from the registry alone.
    let tracked = match handle {
        Some(handle) => handle.machines().machines().await.unwrap_or_default(),
        None => Vec::new(),
    };
    let (polled_here, polled_by) = polled(handle);
    let mut tracked: HashMap<_, _> = tracked.into_iter().map(|m| (m.tag.clone(), m)).collect();
    sort_naturally(&mut records, |r| r.tag.as_str());
    let page = page.apply(records, |r| r.tag.as_str().into());
    let machines: Vec<Value> = page
        .items
        .into_iter()
        .map(|record| {
            let state = tracked.remove(&record.tag);
            row(model, record, state)
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "model": model,
        "polled_here": polled_here,
        "polled_by": polled_by,
        "machines": machines,
        "total": page.total,
        "matched": page.matched,
        "offset": page.offset,
        "limit": page.limit,
    })))
}

async fn not_a_write(req: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, WRITES))
        .json(json!({
            "error": format!("{} {}: this path answers {WRITES}", req.method(), req.path())
        }))
}
