//! The surface mounted under a prefix of a host's own app: it answers its
//! paths there, checks its token there, and leaves the host's own paths,
//! and paths past its prefix, to the host.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, test, web};
use muster::clock::SystemClock;
use muster::sim::{Sim, SimConfig};
use muster_actors::{Backends, Muster, MusterConfig};
use muster_http::{Inspector, StateGauges};
use prometheus_client::registry::Registry;
use slog::{Logger, o};

async fn inspector(token: Option<&str>) -> (Inspector, Muster) {
    let sim = Sim::new(SimConfig::default()).unwrap();
    let mut registry = Registry::default();
    let muster = Muster::start(
        &MusterConfig::default(),
        Backends::sim(&sim, Arc::new(SystemClock)),
        Logger::root(slog::Discard, o!()),
        &mut registry,
    )
    .unwrap();
    let gauges = StateGauges::register(&mut registry);
    let inspector = Inspector::new(muster.clone(), registry, gauges, token.map(str::to_owned));
    (inspector, muster)
}

#[actix_web::test]
async fn under_a_prefix_the_surface_and_the_host_keep_to_their_own_paths() {
    let (inspector, muster) = inspector(Some("s3cret")).await;
    let app = test::init_service(
        App::new()
            .route(
                "/",
                web::get().to(|| async { HttpResponse::Ok().body("host") }),
            )
            .route(
                "/musterings",
                web::get().to(|| async { HttpResponse::Ok().body("the host's too") }),
            )
            .service(inspector.scope("/muster/")),
    )
    .await;
    let call = |path: &str, token: Option<&str>| {
        let mut request = test::TestRequest::get().uri(path);
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        request.to_request()
    };
    // The host's own paths, with or without a token, are the host's.
    for path in ["/", "/musterings"] {
        let response = test::call_service(&app, call(path, None)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // The surface's health check needs no token; its other paths do.
    let response = test::call_service(&app, call("/muster/healthz", None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    for path in ["/muster/api/report", "/muster/metrics", "/muster/nothing"] {
        let response = test::call_service(&app, call(path, None)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let response = test::call_service(&app, call("/muster/api/report", Some("s3cret"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Within the prefix, a path the surface does not serve is its 404.
    let response = test::call_service(&app, call("/muster/nothing", Some("s3cret"))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body["error"], "no such path: /muster/nothing");
    // The page takes the token in its address, under the prefix too; the
    // prefix without its slash leads to the page, whose links are relative.
    let response = test::call_service(&app, call("/muster/?token=s3cret", None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = test::call_service(&app, call("/muster?token=s3cret", None)).await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    let location = response.headers().get("location").unwrap();
    assert_eq!(location, "/muster/?token=s3cret");
    muster.shutdown();
}
