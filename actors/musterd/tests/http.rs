//! The HTTP inspection surface, served in-process by `actix_web::test`
//! against a real tree on the simulated cloud.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::{App, test};
use muster::clock::SystemClock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::sim::{Sim, SimConfig};
use muster_actors::{Backends, Muster, MusterConfig};
use musterd::http::{Inspector, StateGauges};
use prometheus_client::registry::Registry;
use serde_json::Value;
use slog::{Logger, o};

fn tag(text: &str) -> MachineTag {
    text.parse().unwrap()
}

fn agent(text: &str) -> AgentTag {
    text.parse().unwrap()
}

const MODEL: u128 = 7;

/// A tree with two machines and three agent connections on two servers,
/// one of them down.
async fn tree() -> (Muster, Sim, Registry, StateGauges) {
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

async fn service(
    token: Option<&str>,
) -> (
    impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    Muster,
) {
    let (muster, _sim, registry, gauges) = tree().await;
    let inspector = Inspector::new(muster.clone(), registry, gauges, token.map(str::to_owned));
    let app = test::init_service(App::new().configure(|c| inspector.configure(c))).await;
    (app, muster)
}

async fn get(
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    uri: &str,
) -> (StatusCode, String) {
    let response = test::call_service(app, test::TestRequest::get().uri(uri).to_request()).await;
    let status = response.status();
    let body = test::read_body(response).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[actix_web::test]
async fn healthz_and_report() {
    let (app, muster) = service(None).await;
    assert_eq!(get(&app, "/healthz").await, (StatusCode::OK, "ok\n".into()));
    let (status, body) = get(&app, "/api/report").await;
    assert_eq!(status, StatusCode::OK);
    let report = json(&body);
    assert_eq!(report["path"], "root");
    let names: Vec<&str> = report["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gateway", "presence", "machines"]);
    assert_eq!(report["children"][0]["state"], "started");
    assert!(
        report["children"][0]["mailbox"]["depth"].is_number(),
        "{body}"
    );
    let (status, body) = get(&app, "/no/such/thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["error"], "no such path: /no/such/thing");
    muster.shutdown();
}

#[actix_web::test]
async fn healthz_answers_503_naming_what_is_down() {
    let (app, muster) = service(None).await;
    assert_eq!(get(&app, "/healthz").await, (StatusCode::OK, "ok\n".into()));
    muster.shutdown();
    muster.wait().await.unwrap();
    assert_eq!(
        get(&app, "/healthz").await,
        (StatusCode::SERVICE_UNAVAILABLE, "tree stopped\n".into())
    );
}

#[actix_web::test]
async fn the_report_folds_dynamic_groups_when_asked_or_past_a_hundred() {
    let (app, muster) = service(None).await;
    let presence_of = |report: &Value| report["children"][1]["report"].clone();

    // Two presence servers: listed by default, as under `all`.
    for uri in ["/api/report", "/api/report?children=all"] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let presence = presence_of(&json(&body));
        let rows: Vec<&str> = presence["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(rows, ["router", "machine-0", "machine-1"], "{uri}");
        assert!(presence.get("dynamic").is_none(), "{uri}");
    }

    let (status, body) = get(&app, "/api/report?children=summary").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let presence = presence_of(&json(&body));
    assert_eq!(presence["children"].as_array().unwrap().len(), 1);
    assert_eq!(presence["dynamic"]["group"], "servers");
    assert_eq!(presence["dynamic"]["children"], 2);
    assert_eq!(presence["dynamic"]["states"]["started"], 2);

    // Past a hundred servers, the default folds them too.
    let model = ModelUuid::from_u128(MODEL);
    for n in 2..=100 {
        let server = tag(&format!("machine-{n}"));
        muster
            .presence()
            .connect(&server, &model, &agent("unit-wordpress-0"), 1, false, "")
            .await
            .unwrap();
    }
    // Behind every connect: the router has asked for each server's actor.
    assert_eq!(muster.presence().connections().await.unwrap().count(), 102);
    let (_, body) = get(&app, "/api/report").await;
    let presence = presence_of(&json(&body));
    assert_eq!(presence["dynamic"]["children"], 101, "{presence}");
    assert_eq!(presence["children"].as_array().unwrap().len(), 1);
    let (_, body) = get(&app, "/api/report?children=all").await;
    assert_eq!(
        presence_of(&json(&body))["children"]
            .as_array()
            .unwrap()
            .len(),
        102
    );

    let (status, body) = get(&app, "/api/report?children=some").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json(&body),
        serde_json::json!({
            "error": "parameter `children`: \"some\" is not `all` or `summary`",
            "parameter": "children",
        })
    );
    muster.shutdown();
}

#[actix_web::test]
async fn presence_by_model_and_agent() {
    let (app, muster) = service(None).await;
    let model = ModelUuid::from_u128(MODEL);
    let (status, body) = get(&app, &format!("/api/presence?model={model}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = json(&body);
    assert_eq!(answer["model"], model.to_string());
    assert_eq!(answer["count"], 3);
    assert_eq!(
        answer["agents"],
        serde_json::json!([
            {"agent": "machine-0", "status": "alive", "controller": false},
            {"agent": "unit-mysql-0", "status": "missing", "controller": false},
            {"agent": "unit-wordpress-0", "status": "alive", "controller": false},
        ])
    );
    assert_eq!(answer["connections"].as_array().unwrap().len(), 3);
    assert_eq!(answer["connections"][0]["server"], "machine-0");

    let (status, body) = get(
        &app,
        &format!("/api/presence?model={model}&agent=unit-mysql-0"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer = json(&body);
    assert_eq!(answer["count"], 1);
    assert_eq!(
        answer["agents"],
        serde_json::json!([{"agent": "unit-mysql-0", "status": "missing", "controller": false}])
    );
    // An agent nobody has seen is unknown, not an error.
    let (status, body) = get(
        &app,
        &format!("/api/presence?model={model}&agent=machine-9"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["agents"][0]["status"], "unknown");

    let (status, body) = get(&app, "/api/models").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json(&body)["models"],
        serde_json::json!([{
            "model": model.to_string(), "connections": 3, "agents": 3, "alive": 2, "missing": 1,
            "controller": 0
        }])
    );
    muster.shutdown();
}

#[actix_web::test]
async fn bad_parameters_answer_400_naming_the_parameter() {
    let (app, muster) = service(None).await;
    let model = ModelUuid::from_u128(MODEL);
    for (uri, parameter, text) in [
        (
            "/api/presence".to_owned(),
            "model",
            "missing parameter `model`",
        ),
        (
            "/api/presence?model=not-a-uuid".to_owned(),
            "model",
            "\"not-a-uuid\"",
        ),
        (
            format!("/api/presence?model={model}&agent=wordpress"),
            "agent",
            "\"wordpress\"",
        ),
    ] {
        let (status, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        let answer = json(&body);
        assert_eq!(answer["parameter"], parameter, "{uri}: {body}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(parameter) && error.contains(text),
            "{uri}: {error}"
        );
    }
    muster.shutdown();
}

#[actix_web::test]
async fn machines_with_phase_and_schedule() {
    let (app, muster) = service(None).await;
    let (status, body) = get(&app, "/api/machines").await;
    assert_eq!(status, StatusCode::OK);
    let machines = json(&body)["machines"].as_array().unwrap().clone();
    assert_eq!(machines.len(), 2, "{body}");
    let polled = &machines[0];
    assert_eq!(polled["tag"], "machine-0");
    assert_eq!(polled["tracking"], "polled");
    assert_eq!(polled["phase"], "short");
    assert!(polled["interval"].is_string(), "{body}");
    assert!(polled["next_poll_in"].is_string(), "{body}");
    assert!(polled["addresses"].is_array(), "{body}");
    assert!(polled.get("last_error").is_some(), "{body}");
    assert!(polled.get("instance_status").is_some(), "{body}");
    assert_eq!(machines[1]["tracking"], "manual");
    muster.shutdown();
}

#[actix_web::test]
async fn metrics_in_prometheus_text() {
    let (app, muster) = service(None).await;
    // The provider series appear with the first provider call.
    for _ in 0..250 {
        if muster.gateway().await.unwrap().calls.values().sum::<u64>() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, text) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for series in [
        "muster_presence_connections{status=\"alive\"} 2",
        "muster_presence_connections{status=\"missing\"} 1",
        "muster_machines{phase=\"short\"} 1",
        "muster_machines{phase=\"manual\"} 1",
        "muster_machines{phase=\"long\"} 0",
        "muster_mailbox_sent_total{child=",
        "muster_mailbox_handled_total{child=",
        "muster_mailbox_depth{child=",
        "muster_mailbox_depth_high_water{child=",
        "muster_mailbox_handling_seconds_bucket{",
        "# TYPE muster_child_restarts counter",
        "muster_provider_calls_total{method=\"instances\"} ",
        "muster_provider_ids_total{method=\"instances\"} ",
        "muster_provider_throttles_total",
    ] {
        assert!(text.contains(series), "{series} not in:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
    muster.shutdown();
}

#[actix_web::test]
async fn a_token_guards_everything_but_healthz() {
    let (app, muster) = service(Some("s3cret")).await;
    assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
    for uri in [
        "/",
        "/metrics",
        "/api/report",
        "/api/machines",
        "/api/models",
    ] {
        let response =
            test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer"
        );
        let body = test::read_body(response).await;
        assert_eq!(
            json(&String::from_utf8_lossy(&body))["error"],
            "missing or wrong bearer token"
        );
        let wrong = test::TestRequest::get()
            .uri(uri)
            .insert_header((header::AUTHORIZATION, "Bearer s3cre7"))
            .to_request();
        assert_eq!(
            test::call_service(&app, wrong).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let right = test::TestRequest::get()
            .uri(uri)
            .insert_header((header::AUTHORIZATION, "Bearer s3cret"))
            .to_request();
        assert_eq!(
            test::call_service(&app, right).await.status(),
            StatusCode::OK,
            "{uri}"
        );
    }
    // A browser opens the dashboard with the token in its address.
    assert_eq!(get(&app, "/?token=s3cret").await.0, StatusCode::OK);
    muster.shutdown();
}

#[actix_web::test]
async fn the_dashboard_is_one_page() {
    let (app, muster) = service(None).await;
    let (status, html) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.starts_with("<!doctype html>"), "{html}");
    for inlined in ["api/report", "api/machines", "api/models", "--alive:"] {
        assert!(html.contains(inlined), "{inlined}");
    }
    assert!(!html.contains("/*SCRIPT*/") && !html.contains("/*STYLE*/"));
    muster.shutdown();
}
