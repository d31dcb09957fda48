//! muster spread over several arbiters (threads): presence and the pollers
//! answer as they do on one, the work landing on every thread. Real
//! threads, so real time.

use std::sync::Arc;
use std::time::Duration;

use muster::clock::SystemClock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::sim::{Sim, SimConfig};
use muster_actors::{Arbiters, Backends, Extensions, Muster, MusterConfig};
use prometheus_client::registry::Registry;
use slog::{Discard, Logger, o};

#[actix::test]
async fn spread_over_threads_presence_and_pollers_answer_as_on_one() {
    let sim = Sim::new(SimConfig::default()).unwrap();
    for _ in 0..8 {
        sim.add_provisioned_machine();
    }
    let arbiters = Arbiters::start(3);
    let muster = Muster::start_with(
        &MusterConfig::default(),
        Backends::sim(&sim, Arc::new(SystemClock)),
        Extensions::new().spread_over(arbiters.clone()),
        Logger::root(Discard, o!()),
        &mut Registry::default(),
    )
    .unwrap();
    let presence = muster.presence();
    presence.enable().await.unwrap();
    let model = ModelUuid::from_u128(7);
    // Six servers, each its own actor, over three threads.
    for server in 0..6u64 {
        let tag: MachineTag = format!("machine-{server}").parse().unwrap();
        for id in 0..50u64 {
            let agent: AgentTag = format!("unit-app-{}", server * 50 + id).parse().unwrap();
            presence
                .connect(&tag, &model, &agent, id, false, "")
                .await
                .unwrap();
        }
        for id in 0..10u64 {
            presence.disconnect(&tag, id).await.unwrap();
        }
    }
    // A query answers behind every change sent before it, wherever each
    // server's actor runs.
    let connections = presence.connections().await.unwrap();
    assert_eq!(connections.for_model(&model).count(), 6 * 40);
    let report = muster.report().await.unwrap();
    let servers = report
        .child("presence")
        .and_then(|p| p.report.clone())
        .unwrap();
    let started = servers["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("machine-"))
        })
        .filter(|c| c["state"] == "started")
        .count();
    assert_eq!(started, 6, "{servers}");

    // The pollers, spread too, poll every machine.
    let mut polled = 0;
    for _ in 0..200 {
        let machines = muster.machines().machines().await.unwrap();
        polled = machines.iter().filter(|m| m.polls > 0).count();
        if polled == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(polled, 8);
    muster.shutdown();
    muster.wait().await.unwrap();
    arbiters.stop();
}
