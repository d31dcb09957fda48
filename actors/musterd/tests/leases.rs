//! Three `musterd` nodes with the same six simulated models on one NATS
//! server (docs/spec.md §11.8): each model is polled by exactly one node,
//! the one whose lease it holds, counted by the polls each node's cloud
//! answers; a holder killed with SIGKILL has its models polled by another
//! node within about a TTL, and a node that comes back takes its models
//! back. Real processes and real time, polled with bounds; the takeover
//! time measured is printed.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::*;
use support::nats::NatsServer;

/// The models, one simulated cloud each.
const MODELS: [&str; 6] = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",
    "44444444-4444-4444-8444-444444444444",
    "55555555-5555-4555-8555-555555555555",
    "66666666-6666-4666-8666-666666666666",
];

fn start(test: &str, n: u32, urls: &[String]) -> Node {
    Node::with_models(test, n, urls, &MODELS)
}

/// The lease manager's report, from `/api/report`.
fn leases(node: &Node) -> Value {
    let report = node.get("/api/report");
    let presence = report["children"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "presence"))
        .unwrap_or_else(|| panic!("no presence in {report}"));
    presence["report"]["children"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "leases"))
        .map(|c| c["report"].clone())
        .unwrap_or_else(|| panic!("no leases child in {presence}"))
}

/// The models `node` holds, by its report.
fn held(node: &Node) -> Vec<String> {
    leases(node)["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["model"].as_str().unwrap().to_owned())
        .collect()
}

/// `/metrics` of `node`, as text.
fn metrics(node: &Node) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", node.http)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: muster\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer
}

/// The polls each model's machines had on `node` so far.
fn polls(node: &Node) -> BTreeMap<String, u64> {
    let mut polls: BTreeMap<String, u64> = MODELS.iter().map(|m| (m.to_string(), 0)).collect();
    let answer = node.get("/api/machines");
    for machine in answer["machines"].as_array().into_iter().flatten() {
        if let Some(model) = machine["model"].as_str() {
            *polls.entry(model.to_owned()).or_default() += machine["polls"].as_u64().unwrap_or(0);
        }
    }
    polls
}

/// Whether every running node's leases are with the owner every node
/// names, and each model is held by exactly one of them.
fn settled(nodes: &[&Node]) -> bool {
    let reports: Vec<Value> = nodes.iter().map(|n| leases(n)).collect();
    let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (node, report) in nodes.iter().zip(&reports) {
        if report["live"].as_array().unwrap().len() != nodes.len() {
            return false;
        }
        for lease in report["leases"].as_array().unwrap() {
            if lease["owner"] == node.server() && lease["holder"] != node.server() {
                return false;
            }
        }
        for model in held(node) {
            holders.entry(model).or_default().push(node.server());
        }
    }
    holders.len() == MODELS.len() && holders.values().all(|h| h.len() == 1)
}

/// Polls (bounded by [`PATIENCE`]) until [`settled`]; answers how long it
/// took, or fails showing every node's leases.
fn settle(nodes: &[&Node], what: &str) -> Duration {
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        if settled(nodes) {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let reports: Vec<Value> = nodes.iter().map(|n| leases(n)).collect();
    panic!("{what}: not within {PATIENCE:?}: {reports:#?}");
}

/// The nodes whose polls of each model grew over `window`.
fn pollers(nodes: &[&Node], window: Duration) -> BTreeMap<String, Vec<String>> {
    let before: Vec<_> = nodes.iter().map(|n| polls(n)).collect();
    std::thread::sleep(window);
    let after: Vec<_> = nodes.iter().map(|n| polls(n)).collect();
    let mut pollers: BTreeMap<String, Vec<String>> =
        MODELS.iter().map(|m| (m.to_string(), Vec::new())).collect();
    for ((node, before), after) in nodes.iter().zip(&before).zip(&after) {
        for (model, count) in after {
            if *count > before[model] {
                pollers.get_mut(model).unwrap().push(node.server());
            }
        }
    }
    pollers
}

#[tokio::test]
async fn each_model_is_polled_by_one_node_and_a_killed_holders_models_move() {
    let Some(nats) = NatsServer::start("leases") else {
        return;
    };
    let urls = [nats.url()];
    let mut nodes: Vec<Node> = (0..3).map(|n| start("leases", n, &urls)).collect();
    let all: Vec<&Node> = nodes.iter().collect();
    let took = settle(&all, "the leases settle with their owners");
    eprintln!("leases settled {took:?} after the nodes started");

    // Each model is polled by exactly one node: the one holding its lease.
    for _ in 0..3 {
        let pollers = pollers(&all, LEASE_TTL / 2);
        for (model, by) in &pollers {
            let holders: Vec<String> = all
                .iter()
                .filter(|n| held(n).contains(model))
                .map(|n| n.server())
                .collect();
            assert_eq!(
                by, &holders,
                "{model} polled by {by:?}, held by {holders:?}"
            );
            assert_eq!(by.len(), 1, "{model} polled by {by:?}");
        }
    }
    for node in &all {
        let report = leases(node);
        assert_eq!(report["link"], "connected", "{report}");
        assert_eq!(report["counts"]["lost"], 0, "{report}");
    }

    // SIGKILL the node holding the most models.
    let victim = (0..3).max_by_key(|&n| held(&nodes[n]).len()).unwrap();
    let moving = held(&nodes[victim]);
    assert!(!moving.is_empty());
    let others: Vec<usize> = (0..3).filter(|&n| n != victim).collect();
    let baseline: Vec<BTreeMap<String, u64>> = others.iter().map(|&n| polls(&nodes[n])).collect();
    let killed_at = Instant::now();
    nodes[victim].kill();

    // Every model it held is polled by another node.
    let mut taken_over: BTreeMap<String, Duration> = BTreeMap::new();
    while taken_over.len() < moving.len() {
        assert!(
            killed_at.elapsed() < PATIENCE,
            "not every model moved within {PATIENCE:?}: {taken_over:?} of {moving:?}"
        );
        for (at, &n) in others.iter().enumerate() {
            let now = polls(&nodes[n]);
            for model in &moving {
                if now[model] > baseline[at][model] && !taken_over.contains_key(model) {
                    taken_over.insert(model.clone(), killed_at.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let slowest = taken_over.values().max().copied().unwrap_or_default();
    eprintln!(
        "SIGKILL of the holder → first poll by another node: {:?} for {} models, slowest {slowest:?} \
         (lease_ttl {LEASE_TTL:?}, heartbeat {HEARTBEAT:?}, down_after {DOWN_AFTER:?}, long poll {LONG_POLL:?})",
        taken_over.values().collect::<Vec<_>>(),
        taken_over.len(),
    );

    // And by exactly one of the survivors, each model.
    let survivors: Vec<&Node> = others.iter().map(|&n| &nodes[n]).collect();
    settle(&survivors, "the survivors settle");
    for _ in 0..2 {
        for (model, by) in pollers(&survivors, LEASE_TTL / 2) {
            assert_eq!(
                by.len(),
                1,
                "{model} polled by {by:?}: {:#?}",
                survivors
                    .iter()
                    .map(|n| (leases(n), polls(n)))
                    .collect::<Vec<_>>()
            );
        }
    }

    // The killed node comes back and takes its models back, gradually.
    nodes[victim].run();
    let all: Vec<&Node> = nodes.iter().collect();
    let took = settle(&all, "the leases settle again");
    eprintln!(
        "{} models back with their owner {took:?} after it started",
        moving.len()
    );
    // Its fresh pollers take a moment to make their first polls; until
    // then a model it took back may be polled by nobody, never by two.
    let mut windows = 0;
    loop {
        let pollers = pollers(&all, LEASE_TTL / 2);
        for (model, by) in &pollers {
            assert!(by.len() <= 1, "{model} polled by {by:?}");
        }
        if pollers.values().all(|by| by.len() == 1) {
            break;
        }
        windows += 1;
        assert!(windows < 10, "some model is not polled: {pollers:?}");
    }
    let back = leases(&nodes[victim]);
    assert_eq!(back["counts"]["lost"], 0, "{back}");
    // Its series say as much, and its mailbox is metered.
    let page = metrics(&nodes[victim]);
    let held_now = held(&nodes[victim]).len();
    assert!(
        page.contains(&format!("\nmuster_leases_held {held_now}\n")),
        "{page}"
    );
    assert!(
        page.contains("muster_leases_changes_total{change=\"acquired\"}"),
        "{page}"
    );
    assert!(page.contains("child=\"root/presence/leases\""), "{page}");
}
