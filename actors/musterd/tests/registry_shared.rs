//! The machine registry shared by the nodes of a cluster, in a JetStream
//! key-value bucket (docs/spec.md §11.9): a machine registered through one
//! node is polled by its model's holder and seen, with what the poll
//! recorded, through every node; a node restarted, then the NATS server
//! restarted, lose nothing. Real processes, polled with bounds.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::*;
use support::nats::NatsServer;

const MODELS: [&str; 2] = [
    "77777777-7777-4777-8777-777777777777",
    "88888888-8888-4888-8888-888888888888",
];

/// `METHOD path` with `body` to the node whose HTTP port is `port`: the
/// status and the body as JSON (`null` when empty or not JSON).
fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, Value) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, Value::Null);
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return (0, Value::Null);
    };
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Machine `tag` of `model` as `node` answers it, when it does.
fn machine(node: &Node, model: &str, tag: &str) -> Option<Value> {
    let (status, list) = request(
        node.http,
        "GET",
        &format!("/api/models/{model}/machines"),
        "",
    );
    if status != 200 {
        return None;
    }
    list["machines"]
        .as_array()?
        .iter()
        .find(|m| m["tag"] == tag)
        .cloned()
}

/// Polls (bounded by [`PATIENCE`]) until `node` answers machine `tag` of
/// `model` running at a provider address, and answers it.
fn polled(node: &Node, model: &str, tag: &str) -> Value {
    let started = Instant::now();
    loop {
        if let Some(m) = machine(node, model, tag)
            && m["instance_status"]["status"] == "running"
            && !m["addresses"].as_array().is_none_or(Vec::is_empty)
        {
            return m;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{} never answered {tag} of {model} polled: {:?}",
            node.server(),
            machine(node, model, tag)
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// What the registry holds of a machine, without when it was last polled
/// nor the answering node's own poller's state.
fn stable(machine: &Value) -> Value {
    let keep = [
        "tag",
        "incarnation",
        "instance_id",
        "life",
        "agent_status",
        "manual",
        "instance_status",
        "addresses",
    ];
    keep.iter()
        .map(|key| (key.to_string(), machine[*key].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[tokio::test]
async fn a_machine_registered_through_one_node_is_polled_and_seen_through_all_and_kept() {
    let Some(mut nats) = NatsServer::start("registry_shared") else {
        return;
    };
    let urls = [nats.url()];
    let mut nodes: Vec<Node> = (0..3)
        .map(|n| Node::with_models("registry_shared", n, &urls, &MODELS))
        .collect();
    let model = MODELS[0];
    // The simulation's own machine-0, registered by each node's simulated
    // controller, names an instance the simulations run.
    let instance = polled(&nodes[1], model, "machine-0")["instance_id"].clone();
    assert!(instance.is_string(), "{instance}");

    // Registered through machine-0's API...
    let body = format!(r#"{{"instance_id": {instance}, "agent_status": "started"}}"#);
    let (status, answer) = request(
        nodes[0].http,
        "PUT",
        &format!("/api/models/{model}/machines/7"),
        &body,
    );
    assert_eq!(status, 201, "{answer}");
    // ...polled by whichever node holds the model, and seen through every
    // node with what the poll recorded.
    let seen: Vec<Value> = nodes
        .iter()
        .map(|n| stable(&polled(n, model, "machine-7")))
        .collect();
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:#?}");
    let report = nodes[2].get("/api/report");
    assert_eq!(
        report["registry"]["location"], "nats:muster_test_registry",
        "{}",
        report["registry"]
    );

    // Writes racing through the three nodes: each is applied whole, one
    // after another, and every node ends with the last.
    let statuses = ["pending", "started", "stopped", "error", "down"];
    std::thread::scope(|scope| {
        for (n, status) in statuses.iter().cycle().take(15).enumerate() {
            let port = nodes[n % 3].http;
            let instance = &instance;
            scope.spawn(move || {
                let body = format!(r#"{{"instance_id": {instance}, "agent_status": "{status}"}}"#);
                let path = format!("/api/models/{model}/machines/7");
                let (code, answer) = request(port, "PUT", &path, &body);
                assert_eq!(code, 200, "{answer}");
            });
        }
    });
    let raced: Vec<Value> = nodes
        .iter()
        .map(|n| stable(&polled(n, model, "machine-7")))
        .collect();
    assert!(raced.windows(2).all(|w| w[0] == w[1]), "{raced:#?}");
    assert!(statuses.contains(&raced[0]["agent_status"].as_str().unwrap()));
    assert_eq!(raced[0]["incarnation"], seen[0]["incarnation"]);
    let seen = raced;

    // A node restarted loses nothing.
    nodes[0].kill();
    nodes[0].run();
    assert_eq!(
        polled(&nodes[0], model, "machine-7")["instance_id"],
        instance
    );

    // Nor does the NATS server restarted: its store holds the bucket.
    nats.restart();
    for node in &nodes {
        assert_eq!(stable(&polled(node, model, "machine-7")), seen[0]);
    }

    // Removed through another node, it is gone from all.
    let (status, _) = request(
        nodes[2].http,
        "DELETE",
        &format!("/api/models/{model}/machines/7"),
        "",
    );
    assert_eq!(status, 204);
    for node in &nodes {
        assert!(machine(node, model, "machine-7").is_none());
    }
}
