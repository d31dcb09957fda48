//! Models on EC2 through musterd, in-process: against moto, a local EC2
//! double run as a child process, and against a local server answering
//! canned EC2 errors, beside simulated models (docs/spec.md §10). Built
//! with the `ec2` feature only.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use muster::clock::SystemClock;
use muster::ec2::errors::UNAUTHORISED_CODES;
use muster::names::{MachineTag, ModelUuid};
use muster::sim::Sim;
use muster_actors::Muster;
use muster_registry::{Registration, Registry};
use musterd::config::DaemonConfig;
use serde_json::Value;
use support::canned::Canned;
use support::models::{TestService, get, logger, machine, put, service};
use support::moto::Moto;
use support::moto_query;

const EC2: &str = "4f1c6a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f";
const SIM_A: &str = "7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d";
const SIM_B: &str = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";

fn uuid(text: &str) -> ModelUuid {
    text.parse().unwrap()
}

fn tag(n: usize) -> MachineTag {
    format!("machine-{n}").parse().unwrap()
}

/// A folder with moto's credential file, removed when dropped.
struct Credentials(tempfile::TempDir);

impl Credentials {
    fn new() -> Credentials {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("aws"),
            "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
        )
        .unwrap();
        Credentials(dir)
    }

    fn file(&self) -> String {
        self.0.path().join("aws").display().to_string()
    }
}

/// A config of a model on EC2 at `endpoint`, with `extra` models after it,
/// polled quickly.
fn config(endpoint: &str, credentials: &Credentials, poll: &str, extra: &str) -> DaemonConfig {
    let text = format!(
        "[machines.poll]\n{poll}\n\
         [backend.sim]\npending_for = \"0s\"\nallocating_for = \"0s\"\naddress_delay = \"0s\"\n\
         agent_start_delay = \"0s\"\n\
         [gateway]\nwindow = \"20ms\"\ncalls_per_second = 100.0\nburst = 10\n\
         throttle_backoff = \"100ms\"\nthrottle_backoff_cap = \"1s\"\ncall_timeout = \"5s\"\n\
         [[models]]\nuuid = \"{EC2}\"\nname = \"ec2\"\ncloud = \"ec2\"\nregion = \"us-east-1\"\n\
         endpoint = \"{endpoint}\"\ncredential_file = \"{}\"\n{extra}",
        credentials.file()
    );
    DaemonConfig::from_toml(&text).unwrap_or_else(|e| panic!("{e}"))
}

const QUICK: &str = "short_poll = \"100ms\"\nshort_poll_cap = \"500ms\"\nlong_poll = \"15m\"";

const TWO_SIMS: &str = "[[models]]\nuuid = \"7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d\"\ncloud = \"sim\"\nregion = \"a\"\n\
     [[models]]\nuuid = \"0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f\"\ncloud = \"sim\"\nregion = \"b\"\n";

/// The tree of `config`'s models on an in-memory registry, served
/// in-process, with the simulations.
async fn start(
    config: &DaemonConfig,
) -> (
    Muster,
    Registry,
    Vec<(ModelUuid, Sim)>,
    impl TestService + use<>,
) {
    let registry = Registry::in_memory(Arc::new(SystemClock), logger()).unwrap();
    let (fleet, sims) = muster_registry::fleet::build(
        &config.models,
        &config.backend.sim,
        &registry,
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let mut metrics = prometheus_client::registry::Registry::default();
    let muster = Muster::start(&config.muster(), fleet, logger(), &mut metrics).unwrap();
    let app = service(&muster, metrics, &registry, None).await;
    (muster, registry, sims, app)
}

/// Registers a provisioned machine of a simulated model straight in the
/// registry, its agent started.
async fn register_sim(registry: &Registry, model: ModelUuid, sim: &Sim, n: usize) {
    let (_, instance) = sim.add_provisioned_machine();
    let registration = Registration {
        instance_id: Some(instance),
        agent_status: muster::model::MachineStatus::Started,
        ..Registration::default()
    };
    registry
        .register(model, tag(n), registration)
        .await
        .unwrap();
}

/// Waits, at most 30 s, until `check` holds of machine `tag` of `model`.
async fn until(
    app: &impl TestService,
    model: ModelUuid,
    tag: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = machine(app, model, tag).await;
        if let Some(seen) = &seen
            && check(seen)
        {
            return seen.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{tag} of {model} never got there: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn polls(machine: &Value) -> u64 {
    machine["polls"].as_u64().unwrap()
}

#[cfg_attr(missing_moto, ignore = "needs moto_server")]
#[actix_web::test]
async fn moto_instances_registered_over_http_reach_running_stop_and_go() {
    let moto = Moto::start();
    let url = moto.url();
    let ids = moto_query::run_instances(&url, 3);
    let credentials = Credentials::new();
    let (muster, _registry, _sims, app) = start(&config(&url, &credentials, QUICK, "")).await;
    let model = uuid(EC2);
    // machine-0's agent is down, so it stays in the short phase and is
    // polled on; the others settle in the long phase.
    for (n, id) in ids.iter().enumerate() {
        let agent = if n == 0 { "down" } else { "started" };
        let body = format!(r#"{{"instance_id": "{id}", "agent_status": "{agent}"}}"#);
        let (status, answer) = put(&app, &format!("/api/models/{EC2}/machines/{n}"), &body).await;
        assert_eq!(status.as_u16(), 201, "{answer}");
    }
    for n in 1..3 {
        until(&app, model, &format!("machine-{n}"), |m| {
            m["phase"] == "long"
        })
        .await;
    }
    // The controller says so when an instance goes: the agent is down, and
    // the machine goes back to the short phase, as §2.2.5 says.
    let agent_down = |n: usize| {
        let body = format!(r#"{{"instance_id": "{}", "agent_status": "down"}}"#, ids[n]);
        (format!("/api/models/{EC2}/machines/{n}"), body)
    };
    // Running, with moto's own private address among its addresses.
    let private = moto_query::private_ip(&url, &ids[0]);
    let running = until(&app, model, "machine-0", |m| {
        m["instance_status"]["status"] == "running"
            && m["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["value"] == private.as_str())
    })
    .await;
    assert_eq!(running["instance_id"], ids[0].as_str());
    let scopes: Vec<&Value> = running["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["scope"])
        .collect();
    assert!(scopes.contains(&&Value::from("local-cloud")), "{running}");

    // A stopped instance is recorded stopped.
    moto_query::stop(&url, &ids[1]);
    let (uri, body) = agent_down(1);
    put(&app, &uri, &body).await;
    until(&app, model, "machine-1", |m| {
        m["instance_status"]["status"] == "stopped"
    })
    .await;

    // A terminated instance and an id moto never made are left out of the
    // answers, and the batch they share with machine-0 is answered.
    moto_query::terminate(&url, &ids[2]);
    let (uri, body) = agent_down(2);
    put(&app, &uri, &body).await;
    let (status, _) = put(
        &app,
        &format!("/api/models/{EC2}/machines/3"),
        r#"{"instance_id": "i-0123456789abcdef0"}"#,
    )
    .await;
    assert_eq!(status.as_u16(), 201);
    for gone in ["machine-2", "machine-3"] {
        until(&app, model, gone, |m| {
            m["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("the provider does not know instance"))
        })
        .await;
    }
    // machine-0 went on being answered meanwhile; no call failed whole.
    let before = polls(&running);
    let later = until(&app, model, "machine-0", |m| polls(m) > before).await;
    assert!(later["last_error"].is_null(), "{later}");
    // A call of unknown ids only is moto's "none of them": counted, and
    // answered as unknown; no call failed otherwise.
    let gateway = muster.gateway().await.unwrap();
    assert!(
        gateway.errors.keys().all(|kind| kind == "no-instances"),
        "{gateway:?}"
    );
    muster.shutdown();
}

#[cfg_attr(missing_moto, ignore = "needs moto_server")]
#[actix_web::test]
async fn machines_of_one_account_cost_one_instance_call_per_hundred_a_round() {
    let mut moto = Moto::start();
    let url = moto.url();
    let ids = moto_query::run_instances(&url, 250);
    let credentials = Credentials::new();
    // One round of polls, all due together, then nothing for minutes.
    let poll = "short_poll = \"3s\"\nshort_poll_cap = \"5m\"\nshort_poll_backoff = 100.0\nlong_poll = \"15m\"";
    let mut config = config(&url, &credentials, poll, "");
    config.gateway.window = Duration::from_millis(500);
    let registry = Registry::in_memory(Arc::new(SystemClock), logger()).unwrap();
    for (n, id) in ids.iter().enumerate() {
        let registration = Registration {
            instance_id: Some(id.as_str().into()),
            ..Registration::default()
        };
        registry
            .register(uuid(EC2), tag(n), registration)
            .await
            .unwrap();
    }
    let (fleet, _) = muster_registry::fleet::build(
        &config.models,
        &config.backend.sim,
        &registry,
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let mut metrics = prometheus_client::registry::Registry::default();
    moto.calls_since_last_count();
    let muster = Muster::start(&config.muster(), fleet, logger(), &mut metrics).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let machines = muster.machines().machines().await.unwrap();
        if machines.len() == 250 && machines.iter().all(|m| m.polls == 1) {
            break;
        }
        assert!(Instant::now() < deadline, "the round never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gateway = muster.gateway().await.unwrap();
    assert_eq!(gateway.calls["instances"], 3, "{gateway:?}");
    assert_eq!(gateway.ids["instances"], 250);
    assert_eq!(gateway.calls["network_interfaces"], 3);
    // moto saw those six calls and no other.
    assert_eq!(moto.calls_since_last_count(), 6);
    muster.shutdown();
}

#[actix_web::test]
async fn throttling_backs_off_and_fails_no_poll() {
    let server = Canned::ec2_error(400, "RequestLimitExceeded");
    let credentials = Credentials::new();
    let (muster, registry, sims, app) =
        start(&config(&server.url(), &credentials, QUICK, TWO_SIMS)).await;
    let (status, _) = put(
        &app,
        &format!("/api/models/{EC2}/machines/0"),
        r#"{"instance_id": "i-0123456789abcdef0"}"#,
    )
    .await;
    assert_eq!(status.as_u16(), 201);
    register_sim(&registry, uuid(SIM_A), &sims[0].1, 0).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The gateway waited 100 ms, 200 ms, 400 ms, 800 ms, then 1 s between
    // calls: a handful in three seconds, not one every poll.
    let requests = server.requests();
    assert!((3..=8).contains(&requests), "{requests} calls in 3 s");
    let (_, throttled) = muster
        .gateways()
        .await
        .unwrap()
        .into_iter()
        .find(|(name, _)| name == "ec2-us-east-1")
        .unwrap();
    assert_eq!(throttled.throttles as usize, requests);
    assert_eq!(
        throttled.queued + throttled.in_flight,
        1,
        "the request waits rather than fails"
    );
    let ec2 = machine(&app, uuid(EC2), "machine-0").await.unwrap();
    assert_eq!(polls(&ec2), 0, "{ec2}");
    assert!(ec2["last_error"].is_null(), "{ec2}");
    // The simulated model's account is not throttled.
    until(&app, uuid(SIM_A), "machine-0", |m| m["phase"] == "long").await;
    muster.shutdown();
}

#[actix_web::test]
async fn each_auth_error_invalidates_the_credential_once_and_pauses_that_model_only() {
    for code in UNAUTHORISED_CODES {
        let server = Canned::ec2_error(if *code == "AuthFailure" { 401 } else { 403 }, code);
        let credentials = Credentials::new();
        let (muster, registry, sims, app) =
            start(&config(&server.url(), &credentials, QUICK, TWO_SIMS)).await;
        let (status, _) = put(
            &app,
            &format!("/api/models/{EC2}/machines/0"),
            r#"{"instance_id": "i-0123456789abcdef0"}"#,
        )
        .await;
        assert_eq!(status.as_u16(), 201);
        register_sim(&registry, uuid(SIM_B), &sims[1].1, 0).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while registry.credential(uuid(EC2)).await.unwrap().valid {
            assert!(Instant::now() < deadline, "{code}: never invalidated");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let credential = registry.credential(uuid(EC2)).await.unwrap();
        assert!(credential.reason.contains(code), "{code}: {credential:?}");
        // The other model polls on and settles; this one waits, paused.
        until(&app, uuid(SIM_B), "machine-0", |m| m["phase"] == "long").await;
        let calls = server.requests();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(server.requests(), calls, "{code}: no call while paused");
        let model = muster.model(&uuid(EC2)).unwrap().gateway().await.unwrap();
        assert_eq!(model.credential_invalidations, 1, "{code}: {model:?}");
        assert!(model.models[0].paused, "{code}");
        assert!(registry.credential(uuid(SIM_B)).await.unwrap().valid);
        let (_, list) = get(&app, &format!("/api/models/{EC2}/machines")).await;
        assert_eq!(list["machines"][0]["polls"], 0, "{code}: {list}");
        muster.shutdown();
    }
}

#[cfg_attr(missing_moto, ignore = "needs moto_server")]
#[actix_web::test]
async fn one_denied_credential_of_three_models_leaves_the_other_two_polling() {
    let moto = Moto::start();
    let url = moto.url();
    let ids = moto_query::run_instances(&url, 1);
    let credentials = Credentials::new();
    let (muster, registry, sims, app) = start(&config(&url, &credentials, QUICK, TWO_SIMS)).await;
    let body = format!(r#"{{"instance_id": "{}", "agent_status": "down"}}"#, ids[0]);
    put(&app, &format!("/api/models/{EC2}/machines/0"), &body).await;
    let (a, b) = (&sims[0].1, &sims[1].1);
    for (model, sim) in [(uuid(SIM_A), a), (uuid(SIM_B), b)] {
        let (_, instance) = sim.add_provisioned_machine();
        let registration = Registration {
            instance_id: Some(instance),
            // Its agent down, each machine stays in the short phase and is
            // polled on.
            agent_status: muster::model::MachineStatus::Down,
            ..Registration::default()
        };
        registry
            .register(model, tag(0), registration)
            .await
            .unwrap();
    }
    for model in [uuid(EC2), uuid(SIM_A), uuid(SIM_B)] {
        until(&app, model, "machine-0", |m| {
            m["instance_status"]["status"] == "running"
        })
        .await;
    }
    // Simulated model A's credential is refused by its cloud.
    a.revoke_credential();
    let deadline = Instant::now() + Duration::from_secs(10);
    while registry.credential(uuid(SIM_A)).await.unwrap().valid {
        assert!(Instant::now() < deadline, "never invalidated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frozen = polls(&machine(&app, uuid(SIM_A), "machine-0").await.unwrap());
    let ec2_before = polls(&machine(&app, uuid(EC2), "machine-0").await.unwrap());
    let b_before = polls(&machine(&app, uuid(SIM_B), "machine-0").await.unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        polls(&machine(&app, uuid(SIM_A), "machine-0").await.unwrap()),
        frozen
    );
    assert!(polls(&machine(&app, uuid(EC2), "machine-0").await.unwrap()) > ec2_before);
    assert!(polls(&machine(&app, uuid(SIM_B), "machine-0").await.unwrap()) > b_before);
    for model in [uuid(EC2), uuid(SIM_B)] {
        assert!(registry.credential(model).await.unwrap().valid);
    }
    muster.shutdown();
}
