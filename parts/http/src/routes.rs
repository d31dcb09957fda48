//! The surface's routes, for a host to mount in its own actix-web app
//! ([`Inspector::scope`]) or to serve with the [`http` child](crate::server),
//! and how a path answers what it does not serve: the methods every path
//! answers, 405 for the others, 404 for a path not listed.

use actix_web::dev::HttpServiceFactory;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::inspector::Inspector;
use crate::respond::{error, read};
use crate::{api, auth, metrics, passwords_api, registry_api};

impl Inspector {
    /// Routes and the token check, for an actix-web `App` or scope: the
    /// paths of the module documentation, from the root of wherever they
    /// are mounted.
    pub fn configure(&self, config: &mut web::ServiceConfig) {
        config.service(self.scope(""));
    }

    /// The surface as a scope of the host's own actix-web app, under
    /// `prefix` (`/muster`, say: the dashboard is then `/muster/` and the
    /// metrics `/muster/metrics`). Paths of the host's outside the prefix
    /// are the host's own: the surface neither answers nor refuses them.
    pub fn scope(&self, prefix: &str) -> impl HttpServiceFactory + 'static {
        let prefix = prefix.trim_end_matches('/');
        web::scope(prefix)
            .app_data(web::Data::new(self.clone()))
            .wrap(from_fn(auth::check_token))
            .service(read("/healthz", api::healthz))
            .service(read("/readyz", api::readyz))
            .service(read("/metrics", metrics::metrics))
            .service(read("/api/report", api::report))
            .service(read("/api/models", api::models))
            .service(read("/api/presence", api::presence))
            .service(read("/api/machines", api::machines))
            .service(read("/api/history", api::history))
            .configure(registry_api::routes)
            .configure(passwords_api::routes)
            .service(read("/", api::index))
            // `/muster` is the page too, at the address its links work from.
            .service(web::resource("").to(to_slash))
            .default_service(web::to(not_found))
    }
}

pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        format!("no such path: {}", req.path()),
    )
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
