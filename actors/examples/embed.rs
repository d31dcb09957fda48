//! Embedding muster in a host: start the tree on the simulated cloud, record
//! some agent connections, let the pollers settle, and read the answers.
//!
//! Run with `cargo run -p muster-actors --example embed`. The simulated world
//! runs on tokio's paused clock here, so its minutes pass in milliseconds.

use std::sync::Arc;
use std::time::Duration;

use muster::clock::SystemClock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::sim::{Sim, SimConfig};
use muster_actors::{Backends, Muster, MusterConfig};
use prometheus_client::registry::Registry;
use slog::{Discard, Logger, o};

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default())?;
    let machines: Vec<MachineTag> = (0..5).map(|_| sim.add_provisioned_machine().0).collect();

    // The host owns the logger and the metrics registry; muster installs
    // nothing global.
    let mut registry = Registry::default();
    let muster = Muster::start(
        &MusterConfig::default(),
        Backends::sim(&sim, Arc::new(SystemClock)),
        Logger::root(Discard, o!()),
        &mut registry,
    )?;

    // Presence: this process hosts API server machine-0.
    let presence = muster.presence();
    presence.enable().await?;
    let server: MachineTag = "machine-0".parse()?;
    let model = ModelUuid::from_u128(42);
    let agent: AgentTag = "unit-wordpress-0".parse()?;
    presence
        .connect(&server, &model, &agent, 1, false, "4.0.1")
        .await?;
    let status = presence
        .connections()
        .await?
        .for_model(&model)
        .agent_status(&agent)?;
    println!("{agent} is {status}");

    // The pollers bring every machine to the long phase once the cloud says
    // it runs with an address and its agent has started.
    tokio::time::sleep(Duration::from_secs(120)).await;
    for state in muster.machines().machines().await? {
        println!(
            "{}: phase {:?}, instance {:?}, addresses {:?}",
            state.tag,
            state.phase,
            state.instance_status.map(|s| s.status.to_string()),
            state
                .addresses
                .iter()
                .map(|a| a.value.clone())
                .collect::<Vec<_>>()
        );
    }
    let gateway = muster.gateway().await?;
    println!(
        "{} machines, {} instance calls for {} ids",
        machines.len(),
        gateway.calls.get("instances").copied().unwrap_or(0),
        gateway.ids.get("instances").copied().unwrap_or(0)
    );

    muster.shutdown();
    muster.wait().await?;
    Ok(())
}
