//! The registry's HTTP bodies, paths and the surface's query strings, sent
//! to the real surface in-process: a refusal is a 4xx naming what was
//! wrong, never a 5xx, and a refused write leaves the registry as it was.

use std::sync::Arc;

use actix::SystemRunner;
use actix_web::http::{Method, StatusCode};
use actix_web::test::{TestRequest, call_service, read_body};
use muster::clock::SystemClock;
use muster_actors::Muster;
use muster_registry::Registry;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value, json};

use crate::json::{Field, bytes, field, text, value};
use crate::models::{TestService, logger, models, service, uuid};
use crate::settings;

/// The surface of a tree of one simulated model with its machine
/// registry, run on `system`, and the UUID of its model.
fn surface(system: &SystemRunner) -> (impl TestService + use<>, String, Registry, Muster) {
    system.block_on(async {
        let registry = Registry::in_memory(Arc::new(SystemClock), logger()).unwrap();
        let (muster, _sims, metrics) = models(1, &registry);
        let app = service(&muster, metrics, &registry, None).await;
        (app, uuid(1).to_string(), registry, muster)
    })
}

/// What the registry holds of the model's machines, as the store has it.
async fn registered(registry: &Registry) -> String {
    format!("{:?}", registry.registrations(uuid(1)).await.unwrap())
}

/// `method uri` with `body`: its status and its body.
async fn call(
    app: &impl TestService,
    method: Method,
    uri: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let request = TestRequest::default()
        .method(method)
        .uri(uri)
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body)
        .to_request();
    let response = call_service(app, request).await;
    let status = response.status();
    (status, read_body(response).await.to_vec())
}

/// A refusal: a 4xx whose JSON body says what was wrong, and which field
/// when it names one.
fn refusal(status: StatusCode, body: &[u8]) -> Result<Value, TestCaseError> {
    prop_assert!(
        status.is_client_error(),
        "{status}: {}",
        String::from_utf8_lossy(body)
    );
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("{status} without JSON: {e}")))?;
    let error = body["error"].as_str().unwrap_or_default();
    prop_assert!(!error.trim().is_empty(), "{body}");
    Ok(body)
}

/// A registration body: each field left out, good, or anything; unknown
/// and repeated fields now and then, written by hand so that a key may
/// come twice.
fn registration() -> impl Strategy<Value = Vec<u8>> {
    let fields = prop::collection::vec(field(), 4);
    let extra = prop::collection::vec(("[a-z_]{1,12}|instance_id|life", value()), 0..2);
    prop_oneof![
        4 => (fields, extra).prop_map(|(fields, extra)| {
            let good = [
                ("instance_id", json!("i-0123")),
                ("life", json!("alive")),
                ("agent_status", json!("started")),
                ("manual", json!(false)),
            ];
            let mut members = Vec::new();
            for ((name, good), field) in good.into_iter().zip(fields) {
                match field {
                    Field::Absent => {}
                    Field::Good => members.push((name.to_owned(), good)),
                    Field::Any(value) => members.push((name.to_owned(), value)),
                }
            }
            members.extend(extra);
            let text: Vec<String> = members
                .iter()
                .map(|(name, value)| format!("{}:{value}", Value::String(name.clone())))
                .collect();
            format!("{{{}}}", text.join(",")).into_bytes()
        }),
        1 => bytes(),
        1 => Just(vec![b' '; 70 * 1024]),
    ]
}

/// A query string of the parameters the surface reads, and others, with
/// any values, percent-encoded.
fn query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("offset".to_owned()),
        Just("limit".to_owned()),
        Just("filter".to_owned()),
        Just("phase".to_owned()),
        Just("after".to_owned()),
        Just("model".to_owned()),
        Just("agent".to_owned()),
        Just("token".to_owned()),
        "[a-z]{1,6}",
    ];
    let value = prop_oneof![
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
        Just("5e-324".to_owned()),
        Just("1e308".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("x".repeat(10_000)),
        text(),
    ];
    prop::collection::vec((name, value), 0..4).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(name, value)| format!("{name}={}", utf8_percent_encode(value, NON_ALPHANUMERIC)))
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[test]
fn a_refused_registration_names_what_was_wrong_and_changes_nothing() {
    let system = actix::System::new();
    let (app, uuid, registry, _muster) = surface(&system);
    let machine = format!("/api/models/{uuid}/machines/0");
    let (status, _) = system.block_on(call(
        &app,
        Method::PUT,
        &machine,
        br#"{"instance_id":"i-1"}"#.to_vec(),
    ));
    assert_eq!(status, StatusCode::CREATED);
    let mut runner = TestRunner::new(settings());
    runner
        .run(&registration(), |body| {
            system.block_on(async {
                let before = registered(&registry).await;
                let (status, answer) = call(&app, Method::PUT, &machine, body.clone()).await;
                if status.is_success() {
                    // What was taken reads back as a JSON object of known fields.
                    let taken: Map<String, Value> = serde_json::from_slice(&body).map_err(|e| {
                        TestCaseError::fail(format!("{status} for a body that is not JSON: {e}"))
                    })?;
                    prop_assert!(
                        taken
                            .keys()
                            .all(|k| muster_registry::FIELDS.contains(&k.as_str()))
                    );
                    return Ok(());
                }
                let refusal = refusal(status, &answer)?;
                // The field named is one of a registration's, or one the
                // body gave.
                if let Some(field) = refusal["field"].as_str() {
                    let given = serde_json::from_slice::<Map<String, Value>>(&body)
                        .is_ok_and(|object| object.contains_key(field));
                    prop_assert!(
                        muster_registry::FIELDS.contains(&field) || given,
                        "{refusal}"
                    );
                }
                let after = registered(&registry).await;
                prop_assert_eq!(before, after, "a refused write changed the registry");
                Ok(())
            })
        })
        .unwrap();
}

#[test]
fn a_bad_path_or_query_is_a_refusal_that_names_it() {
    let system = actix::System::new();
    let (app, uuid, _registry, _muster) = surface(&system);
    let segment = prop_oneof![Just(uuid.clone()), Just("0".to_owned()), text()];
    let strategy = (segment.clone(), segment, query(), 0usize..6);
    let mut runner = TestRunner::new(settings());
    runner
        .run(&strategy, |(model, machine, query, path)| {
            let (model, machine) = (
                utf8_percent_encode(&model, NON_ALPHANUMERIC).to_string(),
                utf8_percent_encode(&machine, NON_ALPHANUMERIC).to_string(),
            );
            let (method, uri) = match path {
                0 => (Method::GET, format!("/api/machines?{query}")),
                1 => (Method::GET, format!("/api/models/{model}/machines?{query}")),
                2 => (Method::GET, format!("/api/presence?{query}")),
                3 => (Method::GET, format!("/api/history?{query}")),
                4 => (
                    Method::DELETE,
                    format!("/api/models/{model}/machines/{machine}?{query}"),
                ),
                _ => (Method::GET, format!("/api/models?{query}")),
            };
            // A URI past 64 KiB is not a request at all (the `http` crate
            // refuses to make one); the server answers 414 before routing.
            if actix_web::http::Uri::try_from(uri.as_str()).is_err() {
                return Err(TestCaseError::reject("not a URI"));
            }
            system.block_on(async {
                let (status, body) = call(&app, method, &uri, Vec::new()).await;
                if !status.is_success() {
                    let body = refusal(status, &body)?;
                    let names = body.get("field").or_else(|| body.get("parameter"));
                    prop_assert!(
                        names.is_some() || status == StatusCode::NOT_FOUND,
                        "{uri}: {body}"
                    );
                }
                Ok(())
            })
        })
        .unwrap();
}
