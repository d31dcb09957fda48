//! NATS itself clustered: three `nats-server`s routed together, three
//! `musterd` nodes each given all three, one server killed mid-run.
//! Presence carries on: the nodes that were on it reconnect to another,
//! take their peers' snapshots again, and every node ends with the same
//! table, nothing lost (docs/spec.md §11.6.3). So do the model leases
//! and the shared registry, whose buckets have a replica on each server
//! (docs/spec.md §11.8, §11.9).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::*;
use support::nats::NatsServer;
use support::shared::*;

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn presence_carries_on_when_one_of_three_routed_nats_servers_dies() {
    let mut servers = NatsServer::cluster("routed");
    // Each node lists a different server first, so that the three are all
    // in use; the client picks among them as it likes.
    let nodes: Vec<Node> = (0..3)
        .map(|n| {
            let urls: Vec<String> = (0..3).map(|m| servers[(n + m) % 3].url()).collect();
            Node::start("routed", n as u32, &urls)
        })
        .collect();
    let mut agents = Agents::default();
    for (n, node) in nodes.iter().enumerate() {
        agents.login(node, n as u64 * 100, 10).await;
    }
    let all: Vec<&Node> = nodes.iter().collect();
    converge(&all, &agents.truth());
    let on = |server: &NatsServer| -> Vec<String> {
        nodes
            .iter()
            .filter(|node| node.bridge()["nats"] == format!("127.0.0.1:{}", server.port))
            .map(Node::server)
            .collect()
    };
    // The server with the most nodes on it dies.
    let victim = (0..3).max_by_key(|&s| on(&servers[s]).len()).unwrap();
    let moved = on(&servers[victim]);
    eprintln!("killing NATS {} with {moved:?} on it", servers[victim].name);
    servers[victim].kill();

    // Agents keep coming and going meanwhile.
    agents.close("machine-0", |id| id % 2 == 0);
    agents.login(&nodes[1], 700, 4).await;
    let took = converge(&all, &agents.truth());
    eprintln!("every node converged {took:?} after NATS {victim} died");
    for node in &nodes {
        let bridge = node.bridge();
        assert_eq!(bridge["link"], "connected", "{bridge}");
        assert_ne!(
            bridge["nats"],
            format!("127.0.0.1:{}", servers[victim].port),
            "{bridge}"
        );
        for peer in bridge["peers"].as_array().unwrap() {
            assert_eq!(peer["state"], "up", "{bridge}");
        }
    }

    // The dead server comes back and joins its routes again; nothing
    // changes for presence.
    servers[victim].run();
    servers[victim].wait_routes(2);
    agents.login(&nodes[2], 800, 2).await;
    converge(&all, &agents.truth());
}

const MODELS: [&str; 3] = [
    "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
    "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
    "cccccccc-cccc-4ccc-8ccc-cccccccccccc",
];

/// How long JetStream may take to carry on without one of three servers:
/// its new leaders are elected in seconds, and calls made meanwhile time
/// out after ten.
const RECOVERY: Duration = Duration::from_secs(30);

/// Until every model is polled by exactly one node (bounded), failing if
/// one is ever polled by two within one window once the leases settled.
fn one_poller_each(nodes: &[&Node]) {
    let mut pollers = Default::default();
    for _ in 0..20 {
        pollers = support::shared::pollers(nodes, &MODELS, LEASE_TTL / 2);
        for (model, by) in &pollers {
            assert!(by.len() <= 1, "{model} polled by {by:?}");
        }
        if pollers.values().all(|by| by.len() == 1) {
            return;
        }
    }
    let leases: Vec<Value> = nodes.iter().map(|n| leases(n)).collect();
    panic!("some model is not polled: {pollers:?}\n{leases:#?}");
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn leases_and_the_registry_carry_on_when_one_of_three_routed_nats_servers_dies() {
    let mut servers = NatsServer::cluster("routed_leases");
    let nodes: Vec<Node> = (0..3)
        .map(|n| {
            let urls: Vec<String> = (0..3).map(|m| servers[(n + m) % 3].url()).collect();
            Node::with_models("routed_leases", n as u32, &urls, &MODELS)
        })
        .collect();
    let all: Vec<&Node> = nodes.iter().collect();
    settle(&all, &MODELS, "the leases settle");
    one_poller_each(&all);
    let model = MODELS[0];
    let instance = polled(&nodes[0], model, "machine-0")["instance_id"].clone();
    let body = format!(r#"{{"instance_id": {instance}}}"#);
    let path = format!("/api/models/{model}/machines/9");
    assert_eq!(request(nodes[0].http, "PUT", &path, &body).0, 201);
    let before: Vec<Value> = all
        .iter()
        .map(|n| stable(&polled(n, model, "machine-9")))
        .collect();

    // The server the most nodes' leases are on dies.
    let on = |server: &NatsServer| {
        nodes
            .iter()
            .filter(|node| node.bridge()["nats"] == format!("127.0.0.1:{}", server.port))
            .count()
    };
    let victim = (0..3).max_by_key(|&s| on(&servers[s])).unwrap();
    let killed = Instant::now();
    servers[victim].kill();

    // JetStream elects new leaders for the buckets it led, which takes it
    // seconds; meanwhile the registry's calls fail.
    for node in &all {
        polled_within(node, model, "machine-9", RECOVERY);
    }
    eprintln!(
        "the registry answered through every node {:?} after NATS {victim} died",
        killed.elapsed()
    );

    // The leases settle again, each model polled by one node; what was
    // registered is still there, the same through every node, and a new
    // registration is seen through all.
    let took = settle(&all, &MODELS, "the leases settle without NATS server");
    eprintln!("leases settled {took:?} after NATS {victim} died");
    one_poller_each(&all);
    for (node, was) in all.iter().zip(&before) {
        assert_eq!(&stable(&polled(node, model, "machine-9")), was);
    }
    let path = format!("/api/models/{model}/machines/10");
    assert_eq!(request(nodes[1].http, "PUT", &path, &body).0, 201);
    for node in &all {
        polled(node, model, "machine-10");
    }
}
