//! `/metrics`: the state gauges refreshed from the tree, then the whole
//! registry in the format the scraper asks for
//! ([`exposition`](super::exposition)).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::exposition::{self, Format};
use crate::inspector::Inspector;
use crate::respond::error;

pub(crate) async fn metrics(req: HttpRequest, inspector: web::Data<Inspector>) -> HttpResponse {
    let accept = req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let format = Format::negotiate(&accept);
    inspector.gauges.refresh(&inspector.muster).await;
    match exposition::encode(&inspector.registry, format) {
        Ok(text) => HttpResponse::Ok()
            .content_type(format.content_type())
            .insert_header((header::VARY, "Accept"))
            .body(text),
        Err(e) => error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {e}"),
        ),
    }
}
