//! A holder paused (SIGSTOP) for longer than its lease, as a long stall of
//! its VM would pause it (docs/spec.md §11.7.3): once woken (SIGCONT) it
//! makes no provider call for the model until it holds the model again.
//! Real processes, real time; its calls are read from its debug log.

mod support;

use std::time::{Duration, Instant};

use support::cluster::*;
use support::nats::NatsServer;
use support::shared::*;

const MODEL: &str = "99999999-9999-4999-8999-999999999999";

/// The lease's TTL and the pause, as the issue that found it had them.
const TTL: Duration = Duration::from_secs(3);
const PAUSE: Duration = Duration::from_secs(8);

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn a_holder_woken_from_a_pause_longer_than_its_lease_calls_nothing_until_it_holds_again() {
    let nats = NatsServer::start("leases_paused");
    let urls = [nats.url()];
    let mut nodes: Vec<Node> = (0..2)
        .map(|n| Node::with_models_timed("leases_paused", n, &urls, &[MODEL], DOWN_AFTER, TTL))
        .collect();
    // Its provider calls are in its debug log.
    for node in &mut nodes {
        node.kill();
        node.run_with(&["--log-level", "debug"]);
    }
    let all: Vec<&Node> = nodes.iter().collect();
    settle(&all, &[MODEL], "the lease settles");
    let holder = (0..2)
        .find(|&n| held(&nodes[n]).contains(&MODEL.to_owned()))
        .unwrap();
    let other = 1 - holder;
    let process = &nodes[holder].musterd.as_ref().unwrap().process;
    let stderr = &nodes[holder].musterd.as_ref().unwrap().stderr;
    let logged = Instant::now();
    let mut seen = false;
    while !seen && logged.elapsed() < PATIENCE {
        if let Ok(line) = stderr.recv_timeout(Duration::from_millis(50)) {
            seen = line.contains("provider call");
        }
    }
    assert!(seen, "the holder's calls are not in its log");

    process.signal("STOP");
    let stopped = Instant::now();
    wait_until("the other node takes the model", || {
        held(&nodes[other]).contains(&MODEL.to_owned())
    });
    // Longer than the lease, whatever the takeover took.
    std::thread::sleep(PAUSE.saturating_sub(stopped.elapsed()));
    // Everything the holder wrote before it stopped has been read.
    let _ = stderr.try_iter().count();
    process.signal("CONT");

    // Up to its next hold of the model, or a while if it never takes it
    // back, not one provider call.
    let woke = Instant::now();
    let mut lines = Vec::new();
    while woke.elapsed() < TTL * 2 {
        match stderr.recv_timeout(Duration::from_millis(50)) {
            Ok(line) if line.contains("leases: holding a model") => break,
            Ok(line) => lines.push(line),
            Err(_) => {}
        }
    }
    let calls: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("provider call"))
        .collect();
    assert!(calls.is_empty(), "calls after waking: {calls:#?}");
}
