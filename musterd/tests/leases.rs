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

use support::cluster::*;
use support::nats::NatsServer;
use support::shared::*;

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

#[cfg_attr(missing_chromium, ignore = "needs chromium")]
#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn each_model_is_polled_by_one_node_and_a_killed_holders_models_move() {
    let nats = NatsServer::start("leases");
    let urls = [nats.url()];
    let mut nodes: Vec<Node> = (0..3).map(|n| start("leases", n, &urls)).collect();
    let all: Vec<&Node> = nodes.iter().collect();
    let took = settle(&all, &MODELS, "the leases settle with their owners");
    eprintln!("leases settled {took:?} after the nodes started");

    // Each model is polled by exactly one node: the one holding its lease.
    for _ in 0..3 {
        let pollers = pollers(&all, &MODELS, LEASE_TTL / 2);
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
    // The dashboard's cluster panel says which models the node polls.
    let holds = held(&nodes[0]);
    {
        let dom = rendered(&format!("http://127.0.0.1:{}/", nodes[0].http));
        let shown: Vec<String> = holds.iter().map(|m| format!("{}…", &m[..8])).collect();
        let want = format!(
            "data-held=\"{}\">polls {} of {} models{}",
            holds.len(),
            holds.len(),
            MODELS.len(),
            if shown.is_empty() {
                String::new()
            } else {
                format!(": {}", shown.join(", "))
            }
        );
        assert!(dom.contains(&want), "no {want:?} in {dom}");
    }

    // SIGKILL the node holding the most models.
    let victim = (0..3).max_by_key(|&n| held(&nodes[n]).len()).unwrap();
    let moving = held(&nodes[victim]);
    assert!(!moving.is_empty());
    let others: Vec<usize> = (0..3).filter(|&n| n != victim).collect();
    let baseline: Vec<BTreeMap<String, u64>> =
        others.iter().map(|&n| polls(&nodes[n], &MODELS)).collect();
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
            let now = polls(&nodes[n], &MODELS);
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
    settle(&survivors, &MODELS, "the survivors settle");
    for _ in 0..2 {
        for (model, by) in pollers(&survivors, &MODELS, LEASE_TTL / 2) {
            assert_eq!(
                by.len(),
                1,
                "{model} polled by {by:?}: {:#?}",
                survivors
                    .iter()
                    .map(|n| (leases(n), polls(n, &MODELS)))
                    .collect::<Vec<_>>()
            );
        }
    }

    // The killed node comes back and takes its models back, gradually.
    nodes[victim].run();
    let all: Vec<&Node> = nodes.iter().collect();
    let took = settle(&all, &MODELS, "the leases settle again");
    eprintln!(
        "{} models back with their owner {took:?} after it started",
        moving.len()
    );
    // Its fresh pollers take a moment to make their first polls; until
    // then a model it took back may be polled by nobody, never by two.
    let mut windows = 0;
    loop {
        let pollers = pollers(&all, &MODELS, LEASE_TTL / 2);
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
    assert!(
        page.contains("child=\"musterd/muster/presence/leases\""),
        "{page}"
    );
}

/// A node stopped with SIGTERM gives its leases back and tells its peers
/// it leaves (docs/spec.md §11.6.6, §11.8.6). With a `lease_ttl` of 30 s
/// and a `down_after` of a minute, its models could not move before its
/// leases expired, 20 s after the stop at the soonest, nor its peers hold
/// it down before a minute: both happen well within those bounds, which
/// only the farewell makes possible.
#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn a_node_stopped_gracefully_hands_its_models_over_and_is_down_at_once() {
    let nats = NatsServer::start("farewell");
    let urls = [nats.url()];
    let lease_ttl = Duration::from_secs(30);
    let down_after = Duration::from_secs(60);
    let mut nodes: Vec<Node> = (0..3)
        .map(|n| Node::with_models_timed("farewell", n, &urls, &MODELS, down_after, lease_ttl))
        .collect();
    wait_until("every model is held", || {
        nodes.iter().map(|n| held(n).len()).sum::<usize>() == MODELS.len()
    });
    let victim = (0..3).max_by_key(|&n| held(&nodes[n]).len()).unwrap();
    let leaving = nodes[victim].server();
    let moving = held(&nodes[victim]);
    assert_eq!(nodes[victim].stop(), Some(0), "a graceful stop exits 0");
    let stopped = Instant::now();
    let others: Vec<&Node> = (0..3).filter(|&n| n != victim).map(|n| &nodes[n]).collect();

    let soonest_expiry = lease_ttl * 2 / 3;
    loop {
        let now_held: Vec<String> = others.iter().flat_map(|n| held(n)).collect();
        let down = others.iter().all(|n| n.peer(&leaving)["state"] == "down");
        if down && moving.iter().all(|m| now_held.contains(m)) {
            break;
        }
        assert!(
            stopped.elapsed() < soonest_expiry,
            "{leaving} stopped {:?} ago; its models {moving:?}, held now {now_held:?}; \
             peers down: {down}",
            stopped.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "{leaving} stopped gracefully: its {} models held by the others and it down everywhere {:?} after",
        moving.len(),
        stopped.elapsed()
    );
    // Each model is then polled by one of the two.
    for (model, by) in pollers(&others, &MODELS, Duration::from_secs(2)) {
        assert!(by.len() <= 1, "{model} polled by {by:?}");
    }
}
