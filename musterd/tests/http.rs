//! The HTTP inspection surface, served in-process by `actix_web::test`
//! against a real tree on the simulated cloud: the JSON endpoints, the
//! methods and paths, and the token.

mod support;

use std::time::{Duration, SystemTime};

use actix_web::http::{Method, StatusCode, header};
use actix_web::test;
use muster::names::ModelUuid;
use muster_actors::{Metrics, RestartConfig, Root, SupervisorSpec};
use serde_json::Value;
use slog::Logger;
use support::inspector::{MODEL, agent, call, get, inspector, json, service, tag};

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
            "model": model.to_string(), "name": null, "connections": 3, "agents": 3, "alive": 2,
            "missing": 1, "controller": 0
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
async fn the_query_token_opens_the_dashboard_page_only() {
    let (app, muster) = service(Some("s3 cr&t")).await;
    assert_eq!(get(&app, "/?token=s3%20cr%26t").await.0, StatusCode::OK);
    assert_eq!(
        call(&app, Method::HEAD, "/?token=s3%20cr%26t", &[]).await.0,
        StatusCode::OK
    );
    for uri in [
        "/metrics?token=s3%20cr%26t",
        "/api/report?token=s3%20cr%26t",
        "/api/machines?token=s3%20cr%26t",
        "/api/models?token=s3%20cr%26t",
        &format!(
            "/api/presence?model={}&token=s3%20cr%26t",
            ModelUuid::from_u128(MODEL)
        ),
    ] {
        assert_eq!(get(&app, uri).await.0, StatusCode::UNAUTHORIZED, "{uri}");
    }
    // A header that is given decides, even on the page.
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/?token=s3%20cr%26t",
        &[("authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    muster.shutdown();
}

#[actix_web::test]
async fn the_bearer_scheme_is_any_case_with_spaces_around() {
    let (app, muster) = service(Some("s3cret")).await;
    for value in [
        "Bearer s3cret",
        "bearer s3cret",
        "BEARER s3cret",
        "Bearer    s3cret",
        "Bearer\ts3cret",
        "  Bearer s3cret  ",
    ] {
        let (status, _, _) = call(
            &app,
            Method::GET,
            "/api/report",
            &[("authorization", value)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{value:?}");
    }
    for value in [
        "Bearer",
        "Bearers3cret",
        "Basic czNjcmV0",
        "Bearer s3cre",
        "Bearer s3crett",
        "Bearer S3CRET",
    ] {
        let (status, _, _) = call(
            &app,
            Method::GET,
            "/api/report",
            &[("authorization", value)],
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value:?}");
    }
    // A megabyte of header is refused, not a hang.
    let huge = format!("Bearer {}", "x".repeat(1 << 20));
    let (status, _, _) = call(
        &app,
        Method::GET,
        "/api/report",
        &[("authorization", &huge)],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    muster.shutdown();
}

#[actix_web::test]
async fn without_the_token_nothing_tells_which_paths_exist() {
    let (app, muster) = service(Some("s3cret")).await;
    let bearer = [("authorization", "Bearer s3cret")];
    // The token is checked before the path and the method.
    for (method, uri) in [
        (Method::GET, "/no/such/thing"),
        (Method::POST, "/api/report"),
        (Method::DELETE, "/no/such/thing"),
    ] {
        let (status, _, _) = call(&app, method.clone(), uri, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    assert_eq!(
        call(&app, Method::GET, "/no/such/thing", &bearer).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Method::POST, "/api/report", &bearer).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // /healthz is open to every method, and answers only GET and HEAD.
    assert_eq!(
        call(&app, Method::POST, "/healthz", &[]).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        call(&app, Method::HEAD, "/healthz", &[]).await.0,
        StatusCode::OK
    );
    muster.shutdown();
}

#[actix_web::test]
async fn other_methods_answer_405_naming_get_and_head() {
    let (app, muster) = service(None).await;
    let model = ModelUuid::from_u128(MODEL);
    let presence = format!("/api/presence?model={model}");
    for uri in [
        "/",
        "/healthz",
        "/metrics",
        "/api/report",
        "/api/models",
        "/api/machines",
        &presence,
    ] {
        for method in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ] {
            let (status, headers, body) = call(&app, method.clone(), uri, &[]).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert_eq!(
                headers.get(header::ALLOW).unwrap(),
                "GET, HEAD",
                "{method} {uri}"
            );
            let path = uri.split('?').next().unwrap();
            assert_eq!(
                json(&body)["error"],
                format!("{method} {path}: this path answers GET, HEAD")
            );
        }
        let (status, _, _) = call(&app, Method::HEAD, uri, &[]).await;
        assert_eq!(status, StatusCode::OK, "HEAD {uri}");
    }
    // A path not served is 404 whatever the method.
    for method in [Method::GET, Method::HEAD, Method::POST] {
        let (status, _, _) = call(&app, method.clone(), "/api/nope", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
    }
    muster.shutdown();
}

/// One request over a real connection: the status line, the headers
/// (names in lower case) and the body, read to the end.
async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> (String, Vec<(String, String)>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .filter(|(n, _)| n != "date")
        .collect();
    (status, headers, bytes[end + 4..].to_vec())
}

#[actix_web::test]
async fn head_answers_like_get_without_the_body() {
    let (inspector, muster) = inspector(None).await;
    let listener = muster_http::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let addr = listener.local_addr().unwrap();
    let root = Root::start(
        "host",
        SupervisorSpec::new(RestartConfig::default()).child(inspector.child(listener)),
        Logger::root(slog::Discard, slog::o!()),
        Metrics::unregistered(),
    )
    .unwrap();
    for path in [
        "/",
        "/healthz",
        "/api/report",
        "/api/machines",
        "/api/models",
    ] {
        let (get_status, get_headers, get_body) = raw(addr, "GET", path).await;
        let (head_status, head_headers, head_body) = raw(addr, "HEAD", path).await;
        assert_eq!(head_status, get_status, "{path}");
        assert!(
            get_status.starts_with("HTTP/1.1 200"),
            "{path}: {get_status}"
        );
        assert!(head_body.is_empty(), "{path}: {head_body:?}");
        assert!(!get_body.is_empty(), "{path}");
        let header = |headers: &[(String, String)], name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            header(&head_headers, "content-type"),
            header(&get_headers, "content-type"),
            "{path}"
        );
        // The page and the health check do not change between the two.
        if path == "/" || path == "/healthz" {
            assert_eq!(
                header(&head_headers, "content-length"),
                Some(get_body.len().to_string()),
                "{path}"
            );
        }
    }
    root.shutdown();
    root.wait().await.unwrap();
    muster.shutdown();
}

#[actix_web::test]
async fn moments_are_rfc_3339_and_durations_whole_milliseconds() {
    let (app, muster) = service(None).await;
    let model = ModelUuid::from_u128(MODEL);
    let (_, body) = get(&app, &format!("/api/presence?model={model}")).await;
    let answer = json(&body);
    for connection in answer["connections"].as_array().unwrap() {
        let last_seen = connection["last_seen"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"));
        let at = humantime::parse_rfc3339(last_seen).unwrap_or_else(|e| panic!("{e}: {body}"));
        let age = SystemTime::now().duration_since(at).unwrap_or_default();
        assert!(age < Duration::from_secs(600), "{last_seen}");
        assert!(
            last_seen.ends_with('Z') && last_seen.len() == 24,
            "{last_seen}"
        );
    }
    let (_, body) = get(&app, "/api/machines").await;
    let answer = json(&body);
    let polled = &answer["machines"][0];
    for key in ["interval", "next_poll_in"] {
        let text = polled[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {body}"));
        let d = humantime::parse_duration(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(d.subsec_nanos() % 1_000_000, 0, "{key} = {text}");
        assert!(
            !text.contains("us") && !text.contains("ns"),
            "{key} = {text}"
        );
    }
    let (_, body) = get(&app, "/api/report").await;
    let report = json(&body);
    for child in report["children"].as_array().unwrap() {
        let started = child["started_at"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"));
        humantime::parse_rfc3339(started).unwrap_or_else(|e| panic!("{e}: {started}"));
    }
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
