//! How a path answers what it does not serve: the methods every path
//! answers, 405 for the others, 404 for a path not listed.

use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, web};
use serde_json::json;

use crate::respond::error;

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

pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
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

/// The scope's own path without its slash, redirected to it: the page's
/// links are relative to it.
pub(crate) async fn to_slash(req: HttpRequest) -> HttpResponse {
    let mut location = format!("{}/", req.path());
    if !req.query_string().is_empty() {
        location = format!("{location}?{}", req.query_string());
    }
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, location))
        .finish()
}
