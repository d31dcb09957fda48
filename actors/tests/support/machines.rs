//! A tree of a gateway and the machines subtree on the simulated cloud,
//! with what the machines tests read of it.

use std::sync::Arc;
use std::time::Duration;

use super::{Capture, sim_gateway};
use muster::config::Validate;
use muster::model::ModelFacade;
use muster::names::MachineTag;
use muster::poll::Phase;
use muster::sim::Sim;
use muster_actors::gateway::{GatewayConfig, ProviderGateway};
use muster_actors::machines::{MachineState, MachinesConfig, MachinesHandle, machines_child};
use muster_actors::{
    ChildReport, ChildSpec, Mailbox, Metrics, Report, RestartConfig, Root, SupervisorSpec,
};
use slog::{Drain, Logger, o};

/// The running tree and what the tests read of it.
pub struct Tree {
    pub root: Root,
    pub handle: MachinesHandle,
    pub gateway: Mailbox<ProviderGateway>,
    pub logs: Capture,
}

/// The machines settings of these tests: the default, with fixed jitter.
pub fn machines_config() -> MachinesConfig {
    let mut config = MachinesConfig::default();
    config.restart.jitter_seed = Some(7);
    config
}

/// A root with a gateway on `sim` and the machines subtree on `facade`.
pub fn start_with(sim: &Sim, facade: Arc<dyn ModelFacade>) -> Tree {
    let config = machines_config();
    config.validate().unwrap();
    let gateway = Mailbox::new(4096);
    let cloud = sim.clone();
    let gateway_child = ChildSpec::actor("gateway", &gateway, move |cx| {
        Ok(sim_gateway(
            &cloud,
            GatewayConfig::default(),
            cx.logger().clone(),
        ))
    });
    let (machines, handle) = machines_child("machines", config, facade, gateway.clone()).unwrap();
    let spec = SupervisorSpec::new(RestartConfig {
        jitter_seed: Some(1),
        ..RestartConfig::default()
    })
    .child(gateway_child)
    .child(machines);
    let logs = Capture::default();
    let logger = Logger::root(logs.clone().fuse(), o!());
    let root = Root::start("root", spec, logger, Metrics::unregistered()).unwrap();
    Tree {
        root,
        handle,
        gateway,
        logs,
    }
}

/// A root with a gateway and the machines subtree, both on `sim`.
pub fn start(sim: &Sim) -> Tree {
    start_with(sim, sim.facade())
}

impl Tree {
    /// How many lines hold `message` and are about `machine`: logged by its
    /// poller, or naming it.
    pub fn logged(&self, message: &str, machine: &MachineTag) -> usize {
        let child = format!("child={machine}");
        let named = format!("machine={machine}");
        self.logs
            .messages()
            .iter()
            .filter(|l| l.starts_with(message) && l.split(' ').any(|w| w == child || w == named))
            .count()
    }

    pub async fn state(&self, tag: &MachineTag) -> Option<MachineState> {
        self.handle.machine(tag).await.unwrap()
    }

    pub async fn phase(&self, tag: &MachineTag) -> Option<Phase> {
        self.state(tag).await.and_then(|s| s.phase)
    }

    pub async fn interval(&self, tag: &MachineTag) -> Option<Duration> {
        self.state(tag).await.and_then(|s| s.interval)
    }

    /// The machines supervisor's report.
    pub async fn machines_report(&self) -> Report {
        let report = self.root.report().await.unwrap();
        let machines = report.child("machines").expect("a machines child");
        serde_json::from_value(machines.report.clone().expect("its report")).unwrap()
    }

    pub async fn pollers(&self) -> Vec<ChildReport> {
        let report = self.machines_report().await;
        report.children.into_iter().filter(|c| c.dynamic).collect()
    }

    pub async fn starts(&self, child: &str) -> u64 {
        let report = self.machines_report().await;
        report.child(child).map_or(0, |c| c.start_count)
    }
}
