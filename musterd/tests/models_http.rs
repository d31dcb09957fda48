//! The machine registry over HTTP, in-process, on a tree of simulated
//! models (docs/spec.md §10.5): registering, removing, listing, the
//! refusals and the token.

mod support;

use actix_web::http::{Method, StatusCode};
use futures::future::join_all;
use muster_registry::{Registry, SqliteOptions};
use serde_json::{Value, json};
use support::models::*;

#[actix_web::test]
async fn a_machine_registered_over_http_is_polled_and_answered_with_its_registration() {
    let registry =
        Registry::in_memory(std::sync::Arc::new(muster::clock::SystemClock), logger()).unwrap();
    let (muster, sims, metrics) = models(2, &registry);
    let app = service(&muster, metrics, &registry, None).await;
    let (_, instance) = sims[0].add_provisioned_machine();
    let (status, body) = put(
        &app,
        &format!("/api/models/{}/machines/3", uuid(1)),
        &format!(r#"{{"instance_id": "{instance}", "agent_status": "started"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["outcome"], "created");
    assert_eq!(body["id"], "3");

    // The tree polls it: running, the cloud's addresses, the long phase.
    let seen = until(&app, uuid(1), "machine-3", |m| m["phase"] == "long").await;
    assert_eq!(seen["instance_status"]["status"], "running");
    assert_eq!(seen["instance_id"], instance.as_str());
    assert!(!seen["addresses"].as_array().unwrap().is_empty(), "{seen}");
    assert_eq!(seen["life"], "alive");
    assert_eq!(seen["agent_status"], "started");
    assert_eq!(seen["model"], json!(uuid(1)));
    // What it saw is recorded in the registry.
    let record = registry
        .machine(uuid(1), "machine-3".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.recorded.instance_status.status.as_str(), "running");
    // The other model has none; /api/machines lists it with its model.
    let (_, other) = get(&app, &format!("/api/models/{}/machines", uuid(2))).await;
    assert_eq!(other["total"], 0);
    let (_, all) = get(&app, "/api/machines").await;
    let models: Vec<&Value> = all["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["model"])
        .collect();
    assert_eq!(models, [&json!(uuid(1))]);

    // The same registration again changes nothing; a change is an update.
    let uri = format!("/api/models/{}/machines/3", uuid(1));
    let again = format!(r#"{{"instance_id": "{instance}", "agent_status": "started"}}"#);
    assert_eq!(put(&app, &uri, &again).await.1["outcome"], "unchanged");
    let dying = format!(r#"{{"instance_id": "{instance}", "life": "dying"}}"#);
    let (status, body) = put(&app, &uri, &dying).await;
    assert_eq!(
        (status, &body["outcome"]),
        (StatusCode::OK, &json!("updated"))
    );
    until(&app, uuid(1), "machine-3", |m| m["life"] == "dying").await;

    // Removed, it is gone; a second removal is not found.
    let (status, _, body) = call(&app, Method::DELETE, &uri, b"", &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(machine(&app, uuid(1), "machine-3").await, None);
    let (status, _, body) = call(&app, Method::DELETE, &uri, b"", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["field"], "id");
    assert_eq!(
        body["error"],
        format!("machine 3 of model {} is not registered", uuid(1))
    );
    muster.shutdown();
}

#[actix_web::test]
async fn bad_requests_answer_400_or_404_naming_the_field_and_change_nothing() {
    let registry =
        Registry::in_memory(std::sync::Arc::new(muster::clock::SystemClock), logger()).unwrap();
    let (muster, _sims, metrics) = models(1, &registry);
    let app = service(&muster, metrics, &registry, None).await;
    let uri = format!("/api/models/{}/machines/4", uuid(1));
    let (status, _) = put(&app, &uri, r#"{"instance_id": "i-kept", "life": "dying"}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = machine(&app, uuid(1), "machine-4").await.unwrap();

    let megabyte = format!(r#"{{"instance_id": "{}"}}"#, "i".repeat(1 << 20));
    for (path, body, status, field, error) in [
        (
            uri.clone(),
            "{not json",
            400,
            Value::Null,
            "the body is not JSON",
        ),
        (
            uri.clone(),
            "[1, 2]",
            400,
            Value::Null,
            "the body must be a JSON object",
        ),
        (
            uri.clone(),
            r#"{"colour": "blue"}"#,
            400,
            json!("colour"),
            "unknown field",
        ),
        (
            uri.clone(),
            r#"{"life": "zombie"}"#,
            400,
            json!("life"),
            "\"zombie\" is not a valid life",
        ),
        (
            uri.clone(),
            r#"{"instance_id": 7}"#,
            400,
            json!("instance_id"),
            "must be a string",
        ),
        (
            uri.clone(),
            r#"{"instance_id": " "}"#,
            400,
            json!("instance_id"),
            "must not be empty",
        ),
        (
            uri.clone(),
            &megabyte,
            400,
            Value::Null,
            "bytes, more than the 65536 allowed",
        ),
        (
            format!("/api/models/{}/machines/04", uuid(1)),
            "{}",
            400,
            json!("id"),
            "\"04\" is not a machine id",
        ),
        (
            format!("/api/models/{}/machines/3%2Flxd%2F1", uuid(1)),
            "{}",
            400,
            json!("id"),
            "is a container",
        ),
        (
            "/api/models/nope/machines/4".to_owned(),
            "{}",
            400,
            json!("uuid"),
            "\"nope\" is not a model UUID",
        ),
        (
            format!("/api/models/{}/machines/4", uuid(9)),
            "{}",
            404,
            json!("uuid"),
            "musterd polls no model",
        ),
    ] {
        let (got, answer) = put(&app, &path, body).await;
        assert_eq!(
            got.as_u16(),
            status,
            "{path} {}: {answer}",
            &body[..body.len().min(40)]
        );
        assert_eq!(answer["field"], field, "{answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains(error), "{message}");
        assert!(message.len() < 400, "{message}");
    }
    // Nothing of any of them was registered.
    let after = machine(&app, uuid(1), "machine-4").await.unwrap();
    assert_eq!(after["instance_id"], before["instance_id"]);
    assert_eq!(after["life"], "dying");
    let (_, list) = get(&app, &format!("/api/models/{}/machines", uuid(1))).await;
    assert_eq!(list["total"], 1);
    // A machine's path takes writes only; the list, reads only.
    let (status, allow, _) = call(&app, Method::GET, &uri, b"", &[]).await;
    assert_eq!(
        (status, allow.as_deref()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("PUT, DELETE"))
    );
    let list_uri = format!("/api/models/{}/machines", uuid(1));
    let (status, allow, _) = call(&app, Method::POST, &list_uri, b"{}", &[]).await;
    assert_eq!(
        (status, allow.as_deref()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("GET, HEAD"))
    );
    let (status, body) = get(&app, &format!("/api/models/{}/machines", uuid(9))).await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::NOT_FOUND, &json!("uuid"))
    );
    muster.shutdown();
}

#[actix_web::test]
async fn concurrent_puts_leave_one_consistent_row() {
    let registry =
        Registry::in_memory(std::sync::Arc::new(muster::clock::SystemClock), logger()).unwrap();
    let (muster, _sims, metrics) = models(1, &registry);
    let app = service(&muster, metrics, &registry, None).await;
    let uri = format!("/api/models/{}/machines/8", uuid(1));
    let lives = ["alive", "dying", "dead"];
    let statuses = ["pending", "started", "stopped", "error", "down"];
    let bodies: Vec<String> = (0..30)
        .map(|n| {
            format!(
                r#"{{"instance_id": "i-{n}", "life": "{}", "agent_status": "{}"}}"#,
                lives[n % 3],
                statuses[n % 5]
            )
        })
        .collect();
    let answers = join_all(bodies.iter().map(|body| put(&app, &uri, body))).await;
    assert!(
        answers.iter().all(|(status, _)| status.is_success()),
        "{answers:?}"
    );
    let row = machine(&app, uuid(1), "machine-8").await.unwrap();
    let id = row["instance_id"].as_str().unwrap();
    let n: usize = id.strip_prefix("i-").unwrap().parse().unwrap();
    // Every field of the row is from the one write that won.
    assert_eq!(row["life"], lives[n % 3], "{row}");
    assert_eq!(row["agent_status"], statuses[n % 5], "{row}");
    let (_, list) = get(&app, &format!("/api/models/{}/machines", uuid(1))).await;
    assert_eq!(list["total"], 1);
    muster.shutdown();
}

#[actix_web::test]
async fn writes_want_the_token_when_one_is_set() {
    let registry =
        Registry::in_memory(std::sync::Arc::new(muster::clock::SystemClock), logger()).unwrap();
    let (muster, _sims, metrics) = models(1, &registry);
    let app = service(&muster, metrics, &registry, Some("t0ken")).await;
    let uri = format!("/api/models/{}/machines/1", uuid(1));
    for method in [Method::PUT, Method::DELETE] {
        let (status, _, body) = call(&app, method.clone(), &uri, b"{}", &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {body}");
    }
    let bearer = [("Authorization", "Bearer t0ken")];
    let (status, _, _) = call(&app, Method::PUT, &uri, b"{}", &bearer).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = call(&app, Method::DELETE, &uri, b"", &bearer).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    muster.shutdown();
}

#[actix_web::test]
async fn a_write_the_store_refuses_is_an_error_in_the_answer_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    // Opened at its size, the file has no room for a machine.
    drop(
        Registry::open(
            &path,
            &SqliteOptions::default(),
            std::sync::Arc::new(muster::clock::SystemClock),
            logger(),
        )
        .unwrap(),
    );
    let size = std::fs::metadata(&path).unwrap().len();
    let options = SqliteOptions {
        max_size: Some(size),
        ..SqliteOptions::default()
    };
    let registry = Registry::open(
        &path,
        &options,
        std::sync::Arc::new(muster::clock::SystemClock),
        logger(),
    )
    .unwrap();
    let (muster, _sims, metrics) = models(1, &registry);
    let app = service(&muster, metrics, &registry, None).await;
    let body = format!(r#"{{"instance_id": "{}"}}"#, "i".repeat(200));
    let mut refused = None;
    for n in 0..200 {
        let (status, answer) = put(
            &app,
            &format!("/api/models/{}/machines/{n}", uuid(1)),
            &body,
        )
        .await;
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            refused = Some(answer);
            break;
        }
    }
    let refused = refused.expect("the full store refused a write");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("registering machine"),
        "{refused}"
    );
    let (status, report) = get(&app, "/api/report").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        report["registry"]["write_failures"], 1,
        "{}",
        report["registry"]
    );
    assert!(
        report["registry"]["last_write_error"]["what"]
            .as_str()
            .unwrap()
            .starts_with("registering machine"),
        "{}",
        report["registry"]
    );
    muster.shutdown();
}

#[actix_web::test]
async fn a_model_another_node_polls_is_answered_from_the_registry_naming_that_node() {
    let registry =
        Registry::in_memory(std::sync::Arc::new(muster::clock::SystemClock), logger()).unwrap();
    let holds = muster_actors::ModelHolds::new();
    let (muster, sims, metrics) = models_with(
        1,
        &registry,
        muster_actors::Extensions::new().hold_models(holds.clone()),
    );
    let app = service(&muster, metrics, &registry, None).await;
    holds.hold(uuid(1));
    holds.note_holder(uuid(1), Some("machine-0".parse().unwrap()));
    let (_, instance) = sims[0].add_provisioned_machine();
    let uri = format!("/api/models/{}/machines/3", uuid(1));
    let body = format!(r#"{{"instance_id": "{instance}", "agent_status": "started"}}"#);
    assert_eq!(put(&app, &uri, &body).await.0, StatusCode::CREATED);
    let polled = until(&app, uuid(1), "machine-3", |m| m["phase"] == "long").await;
    assert!(polled["next_poll_in"].is_string(), "{polled}");
    let (_, list) = get(&app, &format!("/api/models/{}/machines", uuid(1))).await;
    assert_eq!(list["polled_here"], true);
    assert_eq!(list["polled_by"], "machine-0");

    // The lease goes to another node: this one answers what the registry
    // holds, with no schedule of its own, and names the node that polls.
    holds.release(&uuid(1));
    holds.note_holder(uuid(1), Some("machine-1".parse().unwrap()));
    let (_, list) = get(&app, &format!("/api/models/{}/machines", uuid(1))).await;
    assert_eq!(list["polled_here"], false);
    assert_eq!(list["polled_by"], "machine-1");
    let row = &list["machines"][0];
    assert_eq!(row["tag"], "machine-3");
    assert_eq!(row["instance_id"], instance.as_str());
    assert_eq!(row["instance_status"]["status"], "running", "{row}");
    assert!(row["next_poll_in"].is_null(), "a frozen schedule: {row}");
    assert!(row["phase"].is_null(), "{row}");
    let (_, all) = get(&app, "/api/machines").await;
    assert_eq!(all["total"], 0, "{all}");
    assert_eq!(all["models"][0]["polled_here"], false);
    assert_eq!(all["models"][0]["polled_by"], "machine-1");
    muster.shutdown();
}

#[actix_web::test]
async fn a_chunked_body_over_the_limit_is_refused_naming_the_limit() {
    let registry =
        Registry::in_memory(std::sync::Arc::new(muster::clock::SystemClock), logger()).unwrap();
    let (muster, _, metrics) = models(1, &registry);
    let app = service(&muster, metrics, &registry, None).await;
    let mut body = br#"{"instance_id": ""#.to_vec();
    body.extend(std::iter::repeat_n(b'x', 70_000));
    body.extend(br#""}"#);
    let mut request = actix_web::test::TestRequest::put()
        .uri(&format!("/api/models/{}/machines/3", uuid(1)))
        .set_payload(body)
        .to_request();
    // No declared length: the body is read until it is too long.
    request
        .headers_mut()
        .remove(actix_web::http::header::CONTENT_LENGTH);
    request.headers_mut().insert(
        actix_web::http::header::TRANSFER_ENCODING,
        actix_web::http::header::HeaderValue::from_static("chunked"),
    );
    let response = actix_web::test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = actix_web::test::read_body_json(response).await;
    assert_eq!(
        answer["error"],
        "the body is more than the 65536 bytes allowed"
    );
    assert_eq!(answer["field"], Value::Null);
    assert_eq!(machine(&app, uuid(1), "machine-3").await, None);
    muster.shutdown();
}
