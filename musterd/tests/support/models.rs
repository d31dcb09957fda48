//! A tree of many models served in-process: each model a simulation on a
//! cloud account of its own, every model's machines in one machine
//! registry, and the HTTP surface as an actix-web test service.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, test};
use muster::clock::{Clock, SystemClock};
use muster::names::ModelUuid;
use muster::sim::{Sim, SimAccount, SimConfig};
use muster_actors::{CloudAccount, Extensions, Fleet, ModelBackends, Muster, MusterConfig};
use muster_http::{Inspector, StateGauges};
use muster_registry::Registry;
use prometheus_client::registry::Registry as Metrics;
use serde_json::Value;
use slog::{Logger, o};

pub fn logger() -> Logger {
    Logger::root(slog::Discard, o!())
}

pub fn uuid(n: u128) -> ModelUuid {
    ModelUuid::from_u128(n)
}

/// A simulation whose instances run, with addresses, at once.
pub fn quick_sim() -> SimConfig {
    SimConfig {
        pending_for: Duration::ZERO,
        allocating_for: Duration::ZERO,
        address_delay: Duration::ZERO,
        agent_start_delay: Duration::ZERO,
        ..SimConfig::default()
    }
}

/// Models 1 to `n`, each on a simulated account of its own, their
/// machines in `registry`; polled every 50 ms while short.
pub fn models(n: u128, registry: &Registry) -> (Muster, Vec<Sim>, Metrics) {
    models_with(n, registry, Extensions::new())
}

/// [`models`], the tree extended with `extensions`.
pub fn models_with(
    n: u128,
    registry: &Registry,
    extensions: Extensions,
) -> (Muster, Vec<Sim>, Metrics) {
    let mut accounts = Vec::new();
    let mut models = Vec::new();
    let mut sims = Vec::new();
    for m in 1..=n {
        let mut account = SimAccount::new();
        let sim = account.add_model(quick_sim()).unwrap();
        let name = format!("sim-{m}");
        accounts.push(CloudAccount {
            name: name.clone(),
            environ: account.environ(),
        });
        let store = registry.model(uuid(m));
        models.push(ModelBackends {
            uuid: uuid(m),
            name: Some(format!("model-{m}")),
            account: name,
            facade: store.clone(),
            credentials: store,
        });
        sims.push(sim);
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let fleet = Fleet {
        accounts,
        models,
        clock,
    };
    let mut config = MusterConfig::default();
    config.machines.poll.short_poll = Duration::from_millis(50);
    config.machines.poll.short_poll_cap = Duration::from_millis(200);
    config.gateway.window = Duration::from_millis(5);
    let mut metrics = Metrics::default();
    let muster = Muster::start_with(&config, fleet, extensions, logger(), &mut metrics).unwrap();
    (muster, sims, metrics)
}

pub trait TestService:
    Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
{
}

impl<S> TestService for S where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
{
}

/// The HTTP surface of `muster` with `registry`, and `token` if any.
pub async fn service(
    muster: &Muster,
    metrics: Metrics,
    registry: &Registry,
    token: Option<&str>,
) -> impl TestService + use<> {
    let mut metrics = metrics;
    let gauges = StateGauges::register(&mut metrics);
    let inspector = Inspector::new(muster.clone(), metrics, gauges, token.map(str::to_owned))
        .with_registry(Some(registry.clone()));
    test::init_service(App::new().configure(|c| inspector.configure(c))).await
}

/// The answer to `method uri` with `body` and `headers`: its status, its
/// `Allow` header if any, and its body as JSON (`null` when empty).
pub async fn call(
    app: &impl TestService,
    method: Method,
    uri: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (StatusCode, Option<String>, Value) {
    let mut request = test::TestRequest::default()
        .method(method)
        .uri(uri)
        .set_payload(body.to_vec());
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status();
    let allow = response
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = test::read_body(response).await;
    let text = String::from_utf8_lossy(&body);
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    (status, allow, json)
}

pub async fn put(app: &impl TestService, uri: &str, body: &str) -> (StatusCode, Value) {
    let (status, _, json) = call(app, Method::PUT, uri, body.as_bytes(), &[]).await;
    (status, json)
}

pub async fn get(app: &impl TestService, uri: &str) -> (StatusCode, Value) {
    let (status, _, json) = call(app, Method::GET, uri, b"", &[]).await;
    (status, json)
}

/// The machine `tag` of `GET /api/models/{model}/machines`.
pub async fn machine(app: &impl TestService, model: ModelUuid, tag: &str) -> Option<Value> {
    let (status, body) = get(app, &format!("/api/models/{model}/machines")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["tag"] == tag)
        .cloned()
}

/// Waits, at most 10 s, until `check` holds of machine `tag` of `model`.
pub async fn until(
    app: &impl TestService,
    model: ModelUuid,
    tag: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = None;
    for _ in 0..500 {
        last = machine(app, model, tag).await;
        if last.as_ref().is_some_and(&check) {
            return last.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{tag} of {model} never got there: {last:?}");
}
