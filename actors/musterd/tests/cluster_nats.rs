//! NATS itself clustered: three `nats-server`s routed together, three
//! `musterd` nodes each given all three, one server killed mid-run.
//! Presence carries on: the nodes that were on it reconnect to another,
//! take their peers' snapshots again, and every node ends with the same
//! table, nothing lost (docs/spec.md §11.6.3).

mod support;

use support::cluster::*;
use support::nats::NatsServer;

#[tokio::test]
async fn presence_carries_on_when_one_of_three_routed_nats_servers_dies() {
    let Some(mut servers) = NatsServer::cluster("routed") else {
        return;
    };
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
