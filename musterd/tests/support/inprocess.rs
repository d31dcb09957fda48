//! An in-process tree for the tests of what the dashboard reads: a real
//! tree on the simulated cloud with a manual wall clock, and its HTTP
//! surface as an actix-web test service.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{App, test};
use muster::clock::ManualClock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::sim::{Sim, SimConfig};
use muster_actors::{
    Backends, ChildSpec, Metrics, Muster, MusterConfig, RestartConfig, Root, SupervisorSpec,
};
use muster_http::history::History;
use muster_http::{Inspector, StateGauges};
use prometheus_client::registry::Registry;
use serde_json::Value;
use slog::{Logger, o};

pub fn start_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub fn agent(text: &str) -> AgentTag {
    text.parse().unwrap()
}

pub fn server(n: u32) -> MachineTag {
    format!("machine-{n}").parse().unwrap()
}

/// A tree on the simulated cloud with `polled` provisioned machines and
/// one manual one (the last tag), every machine listed by the handle.
pub async fn tree(polled: usize, clock: Arc<ManualClock>) -> (Muster, Sim, Registry) {
    let sim = Sim::new(SimConfig::default()).unwrap();
    for _ in 0..polled {
        sim.add_provisioned_machine();
    }
    sim.add_manual_machine();
    let mut registry = Registry::default();
    let muster = Muster::start(
        &MusterConfig::default(),
        Backends::sim(&sim, clock),
        Logger::root(slog::Discard, o!()),
        &mut registry,
    )
    .unwrap();
    muster.presence().enable().await.unwrap();
    for _ in 0..500 {
        if muster.machines().machines().await.unwrap().len() == polled + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        muster.machines().machines().await.unwrap().len(),
        polled + 1
    );
    (muster, sim, registry)
}

/// A host's tree on the simulated cloud, as [`tree`] makes it, with
/// muster as a child called `muster` of a root called `root`, beside the
/// children `children` makes from muster's handle and the tree's metrics.
pub struct Host {
    pub muster: Muster,
    pub sim: Sim,
    pub registry: Registry,
    pub metrics: Metrics,
    pub root: Root,
}

pub async fn host(
    polled: usize,
    sim_config: SimConfig,
    clock: Arc<ManualClock>,
    children: impl FnOnce(&Muster, &Metrics) -> Vec<ChildSpec>,
) -> Host {
    let sim = Sim::new(sim_config).unwrap();
    for _ in 0..polled {
        sim.add_provisioned_machine();
    }
    sim.add_manual_machine();
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let (child, muster) = Muster::child(
        "muster",
        &MusterConfig::default(),
        Backends::sim(&sim, clock),
        &mut registry,
    )
    .unwrap();
    let mut spec = SupervisorSpec::new(RestartConfig::default()).child(child);
    for extra in children(&muster, &metrics) {
        spec = spec.child(extra);
    }
    let root = Root::start(
        "root",
        spec,
        Logger::root(slog::Discard, o!()),
        metrics.clone(),
    )
    .unwrap();
    muster.presence().enable().await.unwrap();
    for _ in 0..500 {
        if muster.machines().machines().await.unwrap().len() == polled + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Host {
        muster,
        sim,
        registry,
        metrics,
        root,
    }
}

/// Three connections of one model on two servers, the second server down:
/// two alive, one missing.
pub async fn connect_three(muster: &Muster, model: ModelUuid) {
    let presence = muster.presence();
    for (server_n, agent_tag, id) in [
        (0, "machine-0", 1),
        (0, "unit-wordpress-0", 2),
        (1, "unit-mysql-0", 1),
    ] {
        presence
            .connect(&server(server_n), &model, &agent(agent_tag), id, false, "")
            .await
            .unwrap();
    }
    presence.server_down(&server(1)).await.unwrap();
}

pub trait TestService:
    Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
{
}

impl<S> TestService for S where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>
{
}

pub async fn service(muster: &Muster, registry: Registry, history: History) -> impl TestService {
    let mut registry = registry;
    let gauges = StateGauges::register(&mut registry);
    let inspector = Inspector::new(muster.clone(), registry, gauges, None).with_history(history);
    test::init_service(App::new().configure(|c| inspector.configure(c))).await
}

pub async fn get(app: &impl TestService, uri: &str) -> (StatusCode, Value) {
    let response = test::call_service(app, test::TestRequest::get().uri(uri).to_request()).await;
    let status = response.status();
    let body = test::read_body(response).await;
    let text = String::from_utf8_lossy(&body);
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, json)
}

pub async fn bad(app: &impl TestService, uri: &str, parameter: &str, message: &str) {
    let (status, body) = get(app, uri).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
    assert_eq!(body["parameter"], parameter, "{uri}: {body}");
    assert_eq!(body["error"], message, "{uri}");
}

pub fn strings(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_owned())
        .collect()
}
