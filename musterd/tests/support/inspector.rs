//! The HTTP surface in-process, served by `actix_web::test` against a real
//! tree on the simulated cloud, and the requests the tests make of it.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, test};
use muster::clock::SystemClock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::sim::{Sim, SimConfig};
use muster_actors::{Backends, Muster, MusterConfig};
use muster_http::{Inspector, StateGauges};
use prometheus_client::registry::Registry;
use serde_json::Value;
use slog::{Logger, o};

/// The model every connection of [`tree`] is in.
pub const MODEL: u128 = 7;

pub fn tag(text: &str) -> MachineTag {
    text.parse().unwrap()
}

pub fn agent(text: &str) -> AgentTag {
    text.parse().unwrap()
}

/// A tree with two machines and three agent connections on two servers,
/// one of them down.
pub async fn tree() -> (Muster, Sim, Registry, StateGauges) {
    let sim = Sim::new(SimConfig::default()).unwrap();
    sim.add_provisioned_machine();
    sim.add_manual_machine();
    let mut registry = Registry::default();
    // Polls start soon, so that the provider's series exist; the instance
    // stays pending for seconds, so the machine stays in the short phase.
    let mut config = MusterConfig::default();
    config.machines.poll.short_poll = Duration::from_millis(50);
    let muster = Muster::start(
        &config,
        Backends::sim(&sim, Arc::new(SystemClock)),
        Logger::root(slog::Discard, o!()),
        &mut registry,
    )
    .unwrap();
    let gauges = StateGauges::register(&mut registry);
    let presence = muster.presence();
    presence.enable().await.unwrap();
    let model = ModelUuid::from_u128(MODEL);
    let (m0, m1) = (tag("machine-0"), tag("machine-1"));
    presence
        .connect(&m0, &model, &agent("machine-0"), 1, false, "")
        .await
        .unwrap();
    presence
        .connect(&m0, &model, &agent("unit-wordpress-0"), 2, false, "")
        .await
        .unwrap();
    presence
        .connect(&m1, &model, &agent("unit-mysql-0"), 1, false, "")
        .await
        .unwrap();
    presence.server_down(&m1).await.unwrap();
    // The watcher has read both machines once the handle lists them.
    for _ in 0..250 {
        if muster.machines().machines().await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (muster, sim, registry, gauges)
}

/// The inspector of a [`tree`], with `token` if any.
pub async fn inspector(token: Option<&str>) -> (Inspector, Muster) {
    let (muster, _sim, registry, gauges) = tree().await;
    let inspector = Inspector::new(muster.clone(), registry, gauges, token.map(str::to_owned));
    (inspector, muster)
}

/// The in-process service of a [`tree`]'s inspector.
pub async fn service(
    token: Option<&str>,
) -> (
    impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    Muster,
) {
    let (inspector, muster) = inspector(token).await;
    let app = test::init_service(App::new().configure(|c| inspector.configure(c))).await;
    (app, muster)
}

/// The answer to `GET uri`: its status and body.
pub async fn get(
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    uri: &str,
) -> (StatusCode, String) {
    let (status, _, body) = call(app, Method::GET, uri, &[]).await;
    (status, body)
}

/// The answer to `method uri` with `headers`: its status, its headers and
/// its body.
pub async fn call(
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, actix_web::http::header::HeaderMap, String) {
    let mut request = test::TestRequest::default().method(method).uri(uri);
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = test::read_body(response).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// `body` as JSON, or a panic that shows it.
pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
