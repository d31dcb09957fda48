//! What the registry examples measure alike, whatever the registry's
//! storage: registering machines one after another and then 64 at once,
//! recording a poll for each, reading each back, and listing the model.

use std::time::{Duration, Instant};

use futures::StreamExt;
use muster::model::{Machine, ModelFacade};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{Address, AddressScope, InstanceStatus, NetworkInterface};
use muster_registry::{ModelRegistry, Registration, Registry};

/// Calls in flight at once, where calls go at once.
pub const IN_FLIGHT: usize = 64;

/// `machine-N`.
pub fn tag(n: u32) -> MachineTag {
    format!("machine-{n}").parse().expect("a machine tag")
}

/// Machine N's registration, its agent `agent`.
pub fn registration(n: u32, agent: &str) -> Registration {
    let body = format!(r#"{{"instance_id": "i-{n:017x}", "agent_status": "{agent}"}}"#);
    muster_registry::parse_registration(body.as_bytes()).expect("a valid body")
}

/// Machine N's one network interface, with a private and a public address.
pub fn interfaces(n: u32) -> Vec<NetworkInterface> {
    vec![NetworkInterface {
        device_index: 0,
        interface_name: "eth0".into(),
        mac_address: format!(
            "02:00:00:{:02x}:{:02x}:{:02x}",
            n >> 16,
            (n >> 8) & 0xff,
            n & 0xff
        ),
        provider_id: format!("eni-{n:017x}"),
        subnet_id: "subnet-0a1b2c3d".into(),
        addresses: vec![
            Address::new(
                format!("10.{}.{}.4", n >> 8, n & 0xff),
                AddressScope::CloudLocal,
            ),
            Address::new(
                format!("198.18.{}.{}", n >> 8, n & 0xff),
                AddressScope::Public,
            ),
        ],
    }]
}

/// One line of figures: the time `count` operations took, and their rate.
pub fn line(what: &str, count: u32, elapsed: Duration) {
    println!(
        "{what:<44} {:>8.0} ms {:>10.0} /s",
        elapsed.as_secs_f64() * 1e3,
        f64::from(count) / elapsed.as_secs_f64()
    );
}

/// One line of figures: the time one operation took.
pub fn once(what: &str, elapsed: Duration) {
    println!("{what:<44} {:>8.0} ms", elapsed.as_secs_f64() * 1e3);
}

/// What a run leaves for the example to look at further.
pub struct Run {
    /// The model's machines, one handle each.
    pub handles: Vec<std::sync::Arc<dyn Machine>>,
    /// The model as the watcher sees it.
    pub facade: std::sync::Arc<ModelRegistry>,
}

/// Registers `machines` machines of `model` one after another, then again
/// `IN_FLIGHT` at once, records a poll of each, reads each back and lists
/// the model, printing a line for each; `after` is told the name of each
/// step once it is done (`registered`, `recorded`), for figures of its own.
pub async fn run(
    registry: &Registry,
    model: ModelUuid,
    machines: u32,
    mut after: impl FnMut(&str),
) -> Run {
    let start = Instant::now();
    for n in 0..machines {
        registry
            .register(model, tag(n), registration(n, "pending"))
            .await
            .expect("registered");
    }
    line("register, one after another", machines, start.elapsed());
    after("registered");

    let start = Instant::now();
    futures::stream::iter(0..machines)
        .map(|n| {
            let registry = registry.clone();
            async move {
                registry
                    .register(model, tag(n), registration(n, "started"))
                    .await
                    .expect("updated")
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .count()
        .await;
    line("update, 64 at once", machines, start.elapsed());

    let facade = registry.model(model);
    let handles = futures::stream::iter(0..machines)
        .map(|n| facade.machine(&tag(n)))
        .buffered(IN_FLIGHT)
        .map(|m| m.expect("registered"))
        .collect::<Vec<_>>()
        .await;
    let start = Instant::now();
    for (n, machine) in (0..machines).zip(&handles) {
        machine
            .set_instance_status(InstanceStatus::Running, String::new())
            .await
            .expect("recorded");
        machine
            .set_provider_network_config(interfaces(n))
            .await
            .expect("recorded");
    }
    line(
        "record a poll (status + network config)",
        machines,
        start.elapsed(),
    );
    after("recorded");

    let start = Instant::now();
    for machine in &handles {
        machine.instance_status().await.expect("read");
    }
    line("read one machine", machines, start.elapsed());

    let start = Instant::now();
    let listed = registry.machines(model).await.expect("listed");
    assert_eq!(listed.len(), machines as usize);
    once("list the model", start.elapsed());
    Run { handles, facade }
}
