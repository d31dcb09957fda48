//! The daemon as a host of muster's parts, in-process: its tree holds
//! muster, the history, the HTTP surface and the door as supervised
//! children, and each of them, killed, is restarted while the others keep
//! working.

mod support;

use std::time::Duration;

use muster::names::ModelUuid;
use muster_door::client::{Client, Login};
use musterd::Hosted;
use musterd::config::DaemonConfig;
use serde_json::Value;
use slog::{Logger, o};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config() -> DaemonConfig {
    let mut config = DaemonConfig::default();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.agents.listen = "127.0.0.1:0".parse().unwrap();
    config.backend.machines = 3;
    config
}

/// `GET path` from the daemon's HTTP surface: the status line and the
/// body as JSON.
async fn get(hosted: &Hosted, path: &str) -> (String, Value) {
    let mut tcp = TcpStream::connect(hosted.listen).await.unwrap();
    let ask = format!("GET {path} HTTP/1.1\r\nHost: muster\r\nConnection: close\r\n\r\n");
    tcp.write_all(ask.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_owned();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The start count of the daemon's child `name`, by its report.
async fn starts(hosted: &Hosted, name: &str) -> u64 {
    let report = hosted.root.report().await.unwrap();
    report.child(name).map_or(0, |child| child.start_count)
}

/// Waits (bounded) until child `name` has started `count` times and runs.
async fn started(hosted: &Hosted, name: &str, count: u64) {
    for _ in 0..400 {
        let report = hosted.root.report().await.unwrap();
        if report.child(name).is_some_and(|c| {
            c.start_count == count && c.state == muster_actors::ChildState::Started
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{name} did not start {count} times: {:?}",
        hosted.root.report().await
    );
}

/// Waits (bounded) until `count` connections of `model` are recorded.
async fn recorded(hosted: &Hosted, model: ModelUuid, count: usize) {
    for _ in 0..400 {
        let connections = hosted.muster.presence().connections().await;
        if connections.is_ok_and(|c| c.for_model(&model).count() == count) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let held = hosted
        .muster
        .presence()
        .connections()
        .await
        .map(|c| c.for_model(&model).values());
    panic!("{count} connections of {model} were never recorded: {held:?}");
}

#[actix_web::test]
async fn the_report_shows_each_part_as_a_child_of_the_daemon() {
    let logger = Logger::root(slog::Discard, o!());
    let hosted = Hosted::start(&config(), &logger).await.unwrap();
    let (status, report) = get(&hosted, "/api/report").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(report["path"], "musterd");
    let names: Vec<&str> = report["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["muster", "history", "http", "door"]);
    for part in &report["children"].as_array().unwrap()[1..] {
        assert_eq!(part["state"], "started", "{part}");
        assert!(part["mailbox"]["capacity"].is_number(), "{part}");
    }
    let door = &report["children"][3]["report"];
    assert_eq!(door["url"], hosted.door.url());
    assert_eq!(door["accepting"], true);
    // muster's own subtree, nested.
    let muster = &report["children"][0]["report"]["children"];
    let inner: Vec<&str> = muster
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(inner, ["gateway", "presence", "machines"]);
    hosted.stop(&logger).await.unwrap();
}

/// `GET path`: the status line and the body as text.
async fn get_text(hosted: &Hosted, path: &str) -> (String, String) {
    let mut tcp = TcpStream::connect(hosted.listen).await.unwrap();
    let ask = format!("GET {path} HTTP/1.1\r\nHost: muster\r\nConnection: close\r\n\r\n");
    tcp.write_all(ask.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[actix_web::test]
async fn readyz_names_what_keeps_the_node_from_its_job_and_needs_no_token() {
    let logger = Logger::root(slog::Discard, o!());
    let mut config = config();
    config.http.token = Some("s3cret".into());
    let hosted = Hosted::start(&config, &logger).await.unwrap();
    let mut answer = get_text(&hosted, "/readyz").await;
    for _ in 0..200 {
        if answer.0 == "HTTP/1.1 200 OK" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        answer = get_text(&hosted, "/readyz").await;
    }
    assert_eq!(answer, ("HTTP/1.1 200 OK".to_owned(), "ready\n".to_owned()));
    // A part that cannot do its job says so, by its name, until it can.
    hosted
        .readiness
        .not_ready("cluster", "NATS lost: nats://10.0.0.1:4222");
    let (status, body) = get_text(&hosted, "/readyz").await;
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert_eq!(
        body,
        "not ready\ncluster: NATS lost: nats://10.0.0.1:4222\n"
    );
    hosted.readiness.ready("cluster");
    // muster restarting is not ready either, and says so.
    hosted.root.supervisor().kill("muster").await.unwrap();
    let (status, body) = get_text(&hosted, "/readyz").await;
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert!(body.contains("muster: "), "{body}");
    started(&hosted, "muster", 2).await;
    assert_eq!(get_text(&hosted, "/readyz").await.0, "HTTP/1.1 200 OK");
    // Both probes answer without the token the rest of the surface wants.
    assert_eq!(get_text(&hosted, "/healthz").await.0, "HTTP/1.1 200 OK");
    assert_eq!(
        get_text(&hosted, "/api/report").await.0,
        "HTTP/1.1 401 Unauthorized"
    );
    hosted.stop(&logger).await.unwrap();
}

#[actix_web::test]
async fn each_part_killed_is_restarted_while_the_others_keep_working() {
    let logger = Logger::root(slog::Discard, o!());
    let hosted = Hosted::start(&config(), &logger).await.unwrap();
    hosted.muster.presence().enable().await.unwrap();
    let model = ModelUuid::from_u128(7);
    let client = Client::new(&hosted.door.url(), None).unwrap();
    let login = |agent: &str| Login::new(model, agent.parse().unwrap());
    let mut first = client.login(&login("machine-0")).await.unwrap();
    recorded(&hosted, model, 1).await;

    // The door: its accept loop restarts on the same port; the agent
    // logged in before carries on, and new ones log in.
    hosted.root.supervisor().kill("door").await.unwrap();
    started(&hosted, "door", 2).await;
    first.ping().await.unwrap();
    let second = client.login(&login("machine-1")).await.unwrap();
    recorded(&hosted, model, 2).await;
    assert_eq!(get(&hosted, "/healthz").await.0, "HTTP/1.1 200 OK");

    // The HTTP surface: down while it restarts, then it answers again on
    // the same port; presence never noticed.
    hosted.root.supervisor().kill("http").await.unwrap();
    started(&hosted, "http", 2).await;
    let (status, presence) = get(&hosted, &format!("/api/presence?model={model}")).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(presence["count"], 2);

    // The history: its samples go on, numbered on from where they were.
    let (_, before) = get(&hosted, "/api/history").await;
    let latest = before["latest"].as_u64().unwrap();
    hosted.root.supervisor().kill("history").await.unwrap();
    started(&hosted, "history", 2).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, after) = get(&hosted, &format!("/api/history?after={latest}")).await;
    assert!(after["latest"].as_u64().unwrap() > latest, "{after}");

    // muster itself: the connections it held are kept across the
    // restart, and the door records through it again.
    hosted.root.supervisor().kill("muster").await.unwrap();
    started(&hosted, "muster", 2).await;
    recorded(&hosted, model, 2).await;
    let third = client.login(&login("machine-2")).await.unwrap();
    recorded(&hosted, model, 3).await;

    // Nothing else restarted along the way.
    assert_eq!(starts(&hosted, "door").await, 2);
    assert_eq!(starts(&hosted, "http").await, 2);
    for session in [first, second, third] {
        session.close().await;
    }
    recorded(&hosted, model, 0).await;
    hosted.stop(&logger).await.unwrap();
}

/// A node of a cluster on `nats`, polling two simulated models, in this
/// process.
async fn node(nats: &str, n: u32) -> Hosted {
    let text = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\
         [agents]\nlisten = \"127.0.0.1:0\"\nserver = \"machine-{n}\"\n\
         [cluster]\nname = \"parts\"\nnats = [\"{nats}\"]\nheartbeat = \"100ms\"\n\
         down_after = \"1s\"\nlease_ttl = \"3s\"\n\
         [store]\npath = \":memory:\"\n\
         [[models]]\nuuid = \"{}\"\ncloud = \"sim\"\nregion = \"r\"\n\
         [[models]]\nuuid = \"{}\"\ncloud = \"sim\"\nregion = \"r\"\n",
        ModelUuid::from_u128(1),
        ModelUuid::from_u128(2),
    );
    let config = DaemonConfig::from_toml(&text).unwrap();
    let logger = Logger::root(slog::Discard, o!());
    let hosted = Hosted::start(&config, &logger).await.unwrap();
    hosted.muster.presence().enable().await.unwrap();
    hosted
}

/// The report of the child at `path` (`cluster` or `leases`) of muster's
/// presence subtree, in the daemon's report.
async fn presence_child(hosted: &Hosted, name: &str) -> Value {
    let report = serde_json::to_value(hosted.root.report().await.unwrap()).unwrap();
    support::child(&report, name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[actix_web::test]
async fn the_bridge_and_the_lease_manager_killed_are_restarted_and_carry_on() {
    let test = "the_bridge_and_the_lease_manager_killed_are_restarted_and_carry_on";
    let nats = support::nats::NatsServer::start(test);
    let (a, b) = (node(&nats.url(), 0).await, node(&nats.url(), 1).await);
    let model = ModelUuid::from_u128(9);
    for (path, name) in [
        ("muster/presence/cluster", "cluster"),
        ("muster/presence/leases", "leases"),
    ] {
        a.root.supervisor().kill(path).await.unwrap();
        let mut restarted = Value::Null;
        for _ in 0..400 {
            restarted = presence_child(&a, name).await;
            if restarted["start_count"] == 2 && restarted["state"] == "started" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(restarted["start_count"], 2, "{restarted}");
        assert_eq!(restarted["restarts"]["failure"], 1, "{restarted}");
    }
    // An agent on one node is alive on the other, through the restarted
    // bridge.
    let client = Client::new(&b.door.url(), None).unwrap();
    let session = client
        .login(&Login::new(model, "machine-5".parse().unwrap()))
        .await
        .unwrap();
    recorded(&a, model, 1).await;
    // Each model is polled by one node: the restarted lease manager holds
    // its share again, and none twice.
    let mut held = (Value::Null, Value::Null);
    for _ in 0..400 {
        held = (
            presence_child(&a, "leases").await["report"]["held"].clone(),
            presence_child(&b, "leases").await["report"]["held"].clone(),
        );
        let count = |v: &Value| v.as_array().map_or(0, Vec::len);
        if count(&held.0) + count(&held.1) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let count = |v: &Value| v.as_array().map_or(0, Vec::len);
    assert_eq!(count(&held.0) + count(&held.1), 2, "{held:?}");
    session.close().await;
    let logger = Logger::root(slog::Discard, o!());
    a.stop(&logger).await.unwrap();
    b.stop(&logger).await.unwrap();
}
