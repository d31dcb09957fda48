//! The answers every handler shares: a JSON error, a bad query parameter
//! named, the tree not answering, the query string read, and the methods
//! every path answers.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, web};
use serde_json::json;

use crate::lists::paging::BadParameter;

/// `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message.into() }))
}

/// 400 `{"error", "parameter"}`.
pub(crate) fn bad_parameter(parameter: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": message.into(), "parameter": parameter }))
}

impl From<BadParameter> for HttpResponse {
    fn from(e: BadParameter) -> Self {
        bad_parameter(e.parameter, e.message)
    }
}

/// The query string's parameters; none when it does not read.
pub(crate) fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// 503: the tree did not answer (it is restarting, or its mailbox is
/// full).
pub(crate) fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("tree not answering: {e}"),
    )
}

/// The methods every path answers.
const ALLOW: &str = "GET, HEAD";

/// A path read with `GET`, or `HEAD` (the server sends the same head
/// without the body); any other method is told which it may use.
pub(crate) fn read<F, Args>(path: &str, handler: F) -> Resource
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

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, ALLOW))
        .json(json!({
            "error": format!("{} {}: this path answers {ALLOW}", req.method(), req.path())
        }))
}
