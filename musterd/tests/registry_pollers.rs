//! The instance poller of muster-actors running on the machine registry
//! (docs/spec.md §9.4 to §9.6): the real machine watcher and pollers, the
//! registry as their model facade and credential API, the simulated cloud
//! as their provider, on a paused clock.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use muster::clock::ManualClock;
use muster::model::{CredentialApi, MANUAL_MACHINE_MESSAGE, ModelFacade};
use muster::names::{MachineTag, ModelUuid};
use muster::poll::Phase;
use muster::provider::{InstanceId, InstanceStatus};
use muster::sim::{Sim, SimConfig};
use muster_actors::gateway::{GatewayConfig, GatewayMetrics, ProviderGateway};
use muster_actors::machines::{MachinesConfig, MachinesHandle, Tracking, machines_child};
use muster_actors::{ChildSpec, Mailbox, Metrics, RestartConfig, Root, SupervisorSpec};
use muster_registry::{MachineRecord, Registration, Registry};
use slog::{Discard, Logger, o};
use tokio::time::sleep;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn model() -> ModelUuid {
    ModelUuid::from_u128(42)
}

fn logger() -> Logger {
    Logger::root(Discard, o!())
}

struct Tree {
    _root: Root,
    handle: MachinesHandle,
    registry: Registry,
}

impl Tree {
    async fn phase(&self, tag: &MachineTag) -> Option<Phase> {
        self.handle
            .machine(tag)
            .await
            .unwrap()
            .and_then(|s| s.phase)
    }

    async fn record(&self, tag: &MachineTag) -> MachineRecord {
        self.registry
            .machine(model(), tag.clone())
            .await
            .unwrap()
            .expect("registered")
    }

    async fn register(&self, tag: &MachineTag, registration: Registration) {
        self.registry
            .register(model(), tag.clone(), registration)
            .await
            .unwrap();
    }
}

/// A gateway on `sim`'s provider, denied credentials reported to the
/// registry, and the machines subtree on the registry's model.
fn start(sim: &Sim, registry: &Registry) -> Tree {
    let facade = registry.model(model());
    let credentials: Arc<dyn CredentialApi> = facade.clone();
    let gateway = Mailbox::new(4096);
    let environ = sim.environ();
    let gateway_child = ChildSpec::actor("gateway", &gateway, move |cx| {
        Ok(ProviderGateway::new(
            environ.clone(),
            credentials.clone(),
            GatewayConfig::default(),
            GatewayMetrics::new(&mut prometheus_client::registry::Registry::default()),
            cx.logger().clone(),
        ))
    });
    let mut config = MachinesConfig::default();
    config.restart.jitter_seed = Some(7);
    let facade: Arc<dyn ModelFacade> = facade;
    let (machines, handle) = machines_child("machines", config, facade, gateway.clone()).unwrap();
    let spec = SupervisorSpec::new(RestartConfig {
        jitter_seed: Some(1),
        ..RestartConfig::default()
    })
    .child(gateway_child)
    .child(machines);
    let root = Root::start("root", spec, logger(), Metrics::unregistered()).unwrap();
    Tree {
        _root: root,
        handle,
        registry: registry.clone(),
    }
}

fn registry() -> Registry {
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + secs(1_700_000_000)));
    Registry::in_memory(clock, logger()).unwrap()
}

fn provisioned(id: &InstanceId) -> Registration {
    Registration {
        instance_id: Some(id.clone()),
        ..Registration::default()
    }
}

#[actix::test]
async fn registered_machines_are_polled_and_what_the_pollers_see_lands_in_the_registry() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (booting, booting_id) = sim.add_provisioned_machine();
    let (leaving, leaving_id) = sim.add_provisioned_machine();
    let waiting = sim.add_machine();
    let manual: MachineTag = "machine-9".parse().unwrap();
    let registry = registry();
    let tree = start(&sim, &registry);
    tree.register(&booting, provisioned(&booting_id)).await;
    tree.register(&leaving, provisioned(&leaving_id)).await;
    tree.register(&waiting, Registration::default()).await;
    tree.register(
        &manual,
        Registration {
            instance_id: Some("manual:10.9.9.9".into()),
            manual: true,
            ..Registration::default()
        },
    )
    .await;

    sleep(secs(1)).await;
    let state = tree
        .handle
        .machine(&booting)
        .await
        .unwrap()
        .expect("tracked");
    assert_eq!(state.tracking, Tracking::Polled);
    assert_eq!(state.phase, Some(Phase::Short));
    let state = tree
        .handle
        .machine(&manual)
        .await
        .unwrap()
        .expect("tracked");
    assert_eq!(state.tracking, Tracking::Manual);
    let record = tree.record(&manual).await;
    assert_eq!(
        record.recorded.instance_status.status,
        InstanceStatus::Running
    );
    assert_eq!(
        record.recorded.instance_status.message,
        MANUAL_MACHINE_MESSAGE
    );

    // Running with addresses: recorded; short phase while the agent, as
    // registered, has not started.
    sleep(secs(60)).await;
    let provider = sim.provider_view(&booting).unwrap();
    assert_eq!(provider.status.status, InstanceStatus::Running);
    let record = tree.record(&booting).await;
    assert_eq!(record.recorded.instance_status, provider.status);
    assert_eq!(record.recorded.addresses, provider.addresses);
    assert_eq!(record.recorded.interfaces.len(), 1);
    assert!(record.recorded.recorded_at.is_some());
    assert_eq!(tree.phase(&booting).await, Some(Phase::Short));

    // The agent registered as started: a watcher event, then the long phase.
    tree.register(
        &booting,
        Registration {
            agent_status: muster::model::MachineStatus::Started,
            ..provisioned(&booting_id)
        },
    )
    .await;
    sleep(secs(5)).await;
    assert_eq!(tree.phase(&booting).await, Some(Phase::Long));

    // Provisioned later: registered with its instance, polled to running.
    let waiting_id = sim.provision(&waiting).unwrap();
    tree.register(&waiting, provisioned(&waiting_id)).await;
    sleep(secs(60)).await;
    let record = tree.record(&waiting).await;
    assert_eq!(
        record.recorded.instance_status.status,
        InstanceStatus::Running
    );
    assert_eq!(
        record.recorded.addresses,
        sim.provider_view(&waiting).unwrap().addresses
    );

    // Removed: its poller stops.
    let poller = tree.handle.poller(&leaving).await.unwrap().unwrap();
    registry.remove(model(), leaving.clone()).await.unwrap();
    sleep(secs(1)).await;
    assert_eq!(tree.handle.machine(&leaving).await.unwrap(), None);
    assert!(!poller.is_running());
    assert_eq!(registry.report().write_failures, 0);
}

#[actix::test]
async fn a_denied_credential_is_invalidated_in_the_registry_and_polling_resumes_when_it_is_valid() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (tag, id) = sim.add_provisioned_machine();
    let registry = registry();
    let tree = start(&sim, &registry);
    tree.register(&tag, provisioned(&id)).await;
    sleep(secs(4)).await;
    assert_eq!(
        tree.record(&tag).await.recorded.instance_status.status,
        InstanceStatus::Allocating
    );

    sim.revoke_credential();
    sleep(secs(60)).await;
    let credential = registry.credential(model()).await.unwrap();
    assert!(!credential.valid);
    assert!(
        credential.reason.contains("revoked"),
        "{}",
        credential.reason
    );
    assert_eq!(sim.counters().credential_invalidations, 0, "not the sim's");
    let calls = sim.counters().instances.calls;
    sleep(secs(300)).await;
    assert_eq!(sim.counters().instances.calls, calls, "polling paused");

    // The operator fixes the credential and says so.
    sim.restore_credential();
    registry
        .set_credential_valid(model(), true, String::new())
        .await
        .unwrap();
    sleep(secs(120)).await;
    assert!(sim.counters().instances.calls > calls);
    assert_eq!(
        tree.record(&tag).await.recorded.instance_status.status,
        InstanceStatus::Running
    );
}
