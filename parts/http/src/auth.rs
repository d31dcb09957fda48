//! The token check of the HTTP surface.
//!
//! The token goes in `Authorization: Bearer TOKEN` on every path; the
//! scheme is matched without regard to case and the spaces around the
//! credentials are skipped (RFC 7235 §2.1, RFC 6750 §2.1). Only the
//! dashboard page itself (`/`) also takes it as `?token=TOKEN`, since a
//! browser opening a link can send nothing else; a token in the address
//! of an API call would end up in logs and histories for nothing.

use std::collections::HashMap;

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::inspector::Inspector;
use muster::token;

/// The paths that never need the token: a load balancer's or an
/// orchestrator's probe has none.
const OPEN: [&str; 2] = ["/healthz", "/readyz"];

/// The path that also takes the token as a query parameter.
const PAGE: &str = "/";

/// The credentials of an `Authorization` header value of the `Bearer`
/// scheme, whatever its case, the spaces around them skipped; `None` for
/// another scheme or none.
pub fn bearer(value: &str) -> Option<&str> {
    let blank = |c: char| c == ' ' || c == '\t';
    let value = value.trim_matches(blank);
    let (scheme, credentials) = value.split_once(blank)?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim_matches(blank))
}

/// The token a request gives: the bearer header's on any path, else the
/// query parameter's on the dashboard page.
fn given(req: &ServiceRequest) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        return value.to_str().ok().and_then(bearer).map(str::to_owned);
    }
    if within(req) != PAGE {
        return None;
    }
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .ok()?
        .into_inner()
        .remove("token")
}

/// The request's path below the scope the surface is mounted at: `/healthz`
/// whether the host serves it at `/healthz` or at `/muster/healthz`.
fn within(req: &ServiceRequest) -> &str {
    match req.match_info().unprocessed() {
        "" => "/",
        path => path,
    }
}

/// Lets a request through when no token is configured, when it asks for
/// `/healthz`, or when it gives the token; answers `401` otherwise, before
/// the path is looked up, so that without the token nothing tells which
/// paths exist.
pub(crate) async fn check_token(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let expected = req
        .app_data::<web::Data<Inspector>>()
        .and_then(|i| i.token.clone());
    let allowed = match expected {
        None => true,
        Some(expected) => {
            OPEN.contains(&within(&req))
                || given(&req).is_some_and(|t| token::matches(&t, &expected))
        }
    };
    if allowed {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let response = HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .json(json!({ "error": "missing or wrong bearer token" }));
    Ok(req.into_response(response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_bearer_scheme_is_read_as_rfc_7235_says() {
        for (value, credentials) in [
            ("Bearer s3cret", Some("s3cret")),
            ("bearer s3cret", Some("s3cret")),
            ("BEARER s3cret", Some("s3cret")),
            ("bEaReR s3cret", Some("s3cret")),
            ("Bearer    s3cret", Some("s3cret")),
            ("  Bearer \t s3cret  ", Some("s3cret")),
            ("Bearer s3 cret", Some("s3 cret")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Bearers3cret", None),
            ("Basic czNjcmV0", None),
            ("", None),
        ] {
            assert_eq!(bearer(value), credentials, "{value:?}");
        }
    }
}
