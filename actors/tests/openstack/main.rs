//! The OpenStack provider through the whole tree, on mimic run as a child
//! process: a server in BUILD keeps its machine in the short poll until it
//! is ACTIVE, and of two models on two credentials, the one whose user
//! Keystone refuses is paused alone. Real time, with a short schedule: the
//! tree waits on a real process, which tokio's paused clock would outrun.

#[path = "../../../tests/common/fault_proxy.rs"]
mod fault_proxy;
#[path = "../../../tests/openstack/mimic.rs"]
#[allow(dead_code)]
mod mimic;
#[path = "../../../tests/openstack/plain_http.rs"]
mod plain_http;
#[path = "../../../tests/openstack/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use muster::clock::ManualClock;
use muster::error::PollError;
use muster::model::{Life, Machine, MachineBatches, MachineStatus, ModelFacade};
use muster::names::{MachineTag, ModelUuid};
use muster::poll::Phase;
use muster::provider::{Address, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface};
use muster::sim::{Sim, SimConfig};
use muster_actors::{CloudAccount, Fleet, ModelBackends, Muster, MusterConfig};
use prometheus_client::registry::Registry;
use serde_json::json;
use slog::{Logger, o};

use support::Cloud;

/// A simulated model whose machines stand for mimic's servers: each
/// machine answers the id of its server; everything else (life, agent,
/// what the pollers record) is the simulation's, whose instances run at
/// once and whose agents start at once.
struct OnMimic {
    sim: Sim,
    servers: Arc<HashMap<MachineTag, InstanceId>>,
}

impl OnMimic {
    fn new(servers: &[String]) -> OnMimic {
        let sim = Sim::new(SimConfig {
            pending_for: Duration::ZERO,
            allocating_for: Duration::ZERO,
            address_delay: Duration::ZERO,
            agent_start_delay: Duration::ZERO,
            ..SimConfig::default()
        })
        .unwrap();
        let servers = servers
            .iter()
            .map(|id| {
                (
                    sim.add_provisioned_machine().0,
                    InstanceId::from(id.as_str()),
                )
            })
            .collect();
        OnMimic {
            sim,
            servers: Arc::new(servers),
        }
    }

    fn tags(&self) -> Vec<MachineTag> {
        let mut tags: Vec<MachineTag> = self.servers.keys().cloned().collect();
        tags.sort();
        tags
    }
}

impl ModelFacade for OnMimic {
    fn watch_model_machines(&self) -> MachineBatches {
        self.sim.facade().watch_model_machines()
    }

    fn machine(&self, tag: &MachineTag) -> BoxFuture<'static, Result<Arc<dyn Machine>, PollError>> {
        let inner = self.sim.facade().machine(tag);
        let server = self.servers.get(tag).cloned();
        Box::pin(async move {
            let inner = inner.await?;
            Ok(Arc::new(Server { inner, server }) as Arc<dyn Machine>)
        })
    }
}

/// A simulated machine answering its mimic server's id.
struct Server {
    inner: Arc<dyn Machine>,
    server: Option<InstanceId>,
}

impl Machine for Server {
    fn tag(&self) -> MachineTag {
        self.inner.tag()
    }

    fn instance_id(&self) -> BoxFuture<'static, Result<InstanceId, PollError>> {
        match &self.server {
            Some(id) => Box::pin(futures::future::ready(Ok(id.clone()))),
            None => self.inner.instance_id(),
        }
    }

    fn set_provider_network_config(
        &self,
        interfaces: Vec<NetworkInterface>,
    ) -> BoxFuture<'static, Result<(Vec<Address>, bool), PollError>> {
        self.inner.set_provider_network_config(interfaces)
    }

    fn instance_status(&self) -> BoxFuture<'static, Result<InstanceStatusInfo, PollError>> {
        self.inner.instance_status()
    }

    fn set_instance_status(
        &self,
        status: InstanceStatus,
        message: String,
    ) -> BoxFuture<'static, Result<(), PollError>> {
        self.inner.set_instance_status(status, message)
    }

    fn status(&self) -> BoxFuture<'static, Result<MachineStatus, PollError>> {
        self.inner.status()
    }

    fn life(&self) -> Life {
        self.inner.life()
    }

    fn is_manual(&self) -> BoxFuture<'static, Result<bool, PollError>> {
        self.inner.is_manual()
    }

    fn refresh(&self) -> BoxFuture<'static, Result<(), PollError>> {
        self.inner.refresh()
    }
}

/// The schedule in tenths: 100 ms doubling to 800 ms, then 5 s.
fn config() -> MusterConfig {
    let mut config = MusterConfig::default();
    config.machines.poll.short_poll = Duration::from_millis(100);
    config.machines.poll.short_poll_cap = Duration::from_millis(800);
    config.machines.poll.long_poll = Duration::from_secs(5);
    config.gateway.window = Duration::from_millis(20);
    config.gateway.calls_per_second = 100.0;
    config.gateway.burst = 20;
    config
}

fn uuid(n: u128) -> ModelUuid {
    ModelUuid::from_u128(n)
}

fn start(accounts: Vec<CloudAccount>, models: Vec<ModelBackends>) -> (Muster, Registry) {
    let fleet = Fleet {
        accounts,
        models,
        clock: Arc::new(ManualClock::new(SystemTime::now())),
    };
    let mut registry = Registry::default();
    let logger = Logger::root(slog::Discard, o!());
    let muster = Muster::start(&config(), fleet, logger, &mut registry).expect("the tree starts");
    (muster, registry)
}

fn model(n: u128, account: &str, on: &OnMimic) -> ModelBackends {
    ModelBackends {
        uuid: uuid(n),
        name: Some(format!("model-{n}")),
        account: account.to_owned(),
        facade: Arc::new(OnMimic {
            sim: on.sim.clone(),
            servers: on.servers.clone(),
        }),
        credentials: on.sim.credential_api(),
    }
}

/// Waits (real time, at most `limit`) until `done` holds of the model's
/// machines; answers whether it did.
async fn until(
    muster: &Muster,
    n: u128,
    limit: Duration,
    done: impl Fn(&[muster_actors::machines::MachineState]) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let machines = muster
            .model(&uuid(n))
            .unwrap()
            .machines()
            .machines()
            .await
            .unwrap();
        if done(&machines) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[actix::test]
async fn a_building_server_keeps_its_machine_in_the_short_poll_until_it_is_active() {
    let cloud = Cloud::start("builder", "tenant-build");
    let building = cloud.servers("building", 1, json!({"server_building": "3600"}));
    let active = cloud.servers("active", 1, json!({}));
    let on = OnMimic::new(&[building[0].clone(), active[0].clone()]);
    let tags = on.tags();
    let environ = Arc::new(cloud.environ());
    let (muster, _registry) = start(
        vec![CloudAccount {
            name: "openstack-ord".into(),
            environ,
        }],
        vec![model(1, "openstack-ord", &on)],
    );

    // The ACTIVE server's machine settles in the long phase; the building
    // one is allocating, still in the short phase, its interval growing.
    let settled = until(&muster, 1, Duration::from_secs(20), |machines| {
        let of = |tag: &MachineTag| machines.iter().find(|m| &m.tag == tag).unwrap();
        of(&tags[1]).phase == Some(Phase::Long) && of(&tags[0]).polls >= 4
    })
    .await;
    assert!(settled, "the active machine did not settle");
    let machines = muster
        .model(&uuid(1))
        .unwrap()
        .machines()
        .machines()
        .await
        .unwrap();
    let build = machines.iter().find(|m| m.tag == tags[0]).unwrap();
    assert_eq!(build.phase, Some(Phase::Short), "{build:?}");
    assert_eq!(
        build.instance_status,
        Some(InstanceStatusInfo::new(InstanceStatus::Allocating, ""))
    );
    assert!(
        build.interval.unwrap() > Duration::from_millis(100),
        "{build:?}"
    );
    let long = machines.iter().find(|m| m.tag == tags[1]).unwrap();
    assert_eq!(
        long.instance_status,
        Some(InstanceStatusInfo::new(InstanceStatus::Running, ""))
    );
    assert_eq!(long.addresses.len(), 3, "{long:?}");

    // ACTIVE at last: the machine runs, with its addresses, and settles.
    cloud
        .mimic
        .set_status(&cloud.account, &[(&building[0], "ACTIVE")]);
    let settled = until(&muster, 1, Duration::from_secs(20), |machines| {
        machines.iter().all(|m| m.phase == Some(Phase::Long))
    })
    .await;
    assert!(
        settled,
        "the machine of the server made ACTIVE did not settle"
    );
    muster.shutdown();
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[actix::test]
async fn a_refused_user_pauses_its_model_alone() {
    let cloud = Cloud::start("bob", "tenant-shared");
    // Two users of one project, each the credential of a model of its own.
    let alice_account = cloud.mimic.account("alice", "tenant-shared");
    let alice_servers: Vec<String> = (0..3)
        .map(|n| {
            cloud
                .mimic
                .create_server(&alice_account, &format!("alice-{n}"), json!({}))
        })
        .collect();
    let bob_servers = cloud.servers("bob", 3, json!({}));
    let alice = OnMimic::new(&alice_servers);
    let bob = OnMimic::new(&bob_servers);
    let refusal = cloud.mimic.refuse_users("alice", "password expired");
    let environ = |user: &str| {
        Arc::new(
            muster::openstack::OpenStackEnviron::new(&cloud.config_for(user, "tenant-shared"))
                .unwrap(),
        ) as Arc<dyn muster::provider::Environ>
    };
    let (muster, _registry) = start(
        vec![
            CloudAccount {
                name: "openstack-alice".into(),
                environ: environ("alice"),
            },
            CloudAccount {
                name: "openstack-bob".into(),
                environ: environ("bob"),
            },
        ],
        vec![
            model(1, "openstack-alice", &alice),
            model(2, "openstack-bob", &bob),
        ],
    );

    // Bob's model settles; Alice's is paused, its credential invalidated
    // once with Keystone's word, its machines not polled meanwhile.
    let settled = until(&muster, 2, Duration::from_secs(20), |machines| {
        machines.iter().all(|m| m.phase == Some(Phase::Long))
    })
    .await;
    assert!(settled, "bob's model did not settle");
    let report = muster.model(&uuid(1)).unwrap().gateway().await.unwrap();
    assert!(report.credential_paused, "{report:?}");
    assert_eq!(alice.sim.invalidation_reasons().len(), 1);
    assert!(
        alice.sim.invalidation_reasons()[0].contains("password expired"),
        "{:?}",
        alice.sim.invalidation_reasons()
    );
    assert!(bob.sim.invalidation_reasons().is_empty());
    assert!(
        !muster
            .model(&uuid(2))
            .unwrap()
            .gateway()
            .await
            .unwrap()
            .credential_paused
    );
    let machines = muster
        .model(&uuid(1))
        .unwrap()
        .machines()
        .machines()
        .await
        .unwrap();
    assert!(
        machines.iter().all(|m| m.instance_status.is_none()),
        "{machines:?}"
    );

    // Keystone takes Alice again and her credential is said valid: her
    // model polls and settles too.
    cloud.mimic.accept_users_again(&refusal);
    alice.sim.restore_credential();
    let settled = until(&muster, 1, Duration::from_secs(20), |machines| {
        machines.iter().all(|m| m.phase == Some(Phase::Long))
    })
    .await;
    assert!(settled, "alice's model did not resume");
    assert_eq!(
        alice.sim.invalidation_reasons().len(),
        1,
        "invalidated once"
    );
    muster.shutdown();
}
