//! The machine registry shared by the nodes of a cluster, in a JetStream
//! key-value bucket (docs/spec.md §11.9): a machine registered through one
//! node is polled by its model's holder and seen, with what the poll
//! recorded, through every node; a node restarted, then the NATS server
//! restarted, lose nothing. Real processes, polled with bounds.

mod support;

use serde_json::Value;
use support::cluster::*;
use support::nats::NatsServer;
use support::shared::*;

const MODELS: [&str; 2] = [
    "77777777-7777-4777-8777-777777777777",
    "88888888-8888-4888-8888-888888888888",
];

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn a_machine_registered_through_one_node_is_polled_and_seen_through_all_and_kept() {
    let mut nats = NatsServer::start("registry_shared");
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
