use std::time::Duration;

use futures::{FutureExt, StreamExt};

use super::*;
use crate::error::ErrorKind;
use crate::model::{MachineBatches, MachineStatus};
use crate::provider::{AddressScope, Instance, InstanceStatus, check_instances};

mod faults;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn sim(config: SimConfig) -> Sim {
    Sim::new(config).unwrap()
}

fn faulty(seed: u64, faults: FaultConfig) -> Sim {
    sim(SimConfig {
        seed,
        faults,
        ..SimConfig::default()
    })
}

async fn instance(sim: &Sim, id: &InstanceId) -> Option<Instance> {
    sim.environ()
        .instances(std::slice::from_ref(id))
        .await
        .unwrap()
        .pop()
        .unwrap()
}

async fn advance(by: Duration) {
    tokio::time::advance(by).await;
}

/// The next batch if one is ready without waiting.
fn ready_batch(watch: &mut MachineBatches) -> Option<Vec<MachineTag>> {
    watch.next().now_or_never().map(|b| b.unwrap().unwrap())
}

fn tags(names: &[&str]) -> Vec<MachineTag> {
    names.iter().map(|n| n.parse().unwrap()).collect()
}

#[tokio::test(start_paused = true)]
async fn an_instance_boots_at_the_configured_times() {
    // pending 2 s, allocating 8 s, addresses 2 s after running, agent 5 s after.
    let sim = sim(SimConfig::default());
    let (tag, id) = sim.add_provisioned_machine();
    let machine = sim.facade().machine(&tag).await.unwrap();
    let status = |s: &Option<Instance>| s.as_ref().unwrap().status.status;

    let seen = instance(&sim, &id).await;
    assert_eq!(status(&seen), InstanceStatus::Pending);
    assert_eq!(machine.status().await.unwrap(), MachineStatus::Pending);

    advance(secs(2)).await;
    assert_eq!(
        status(&instance(&sim, &id).await),
        InstanceStatus::Allocating
    );

    advance(secs(8)).await;
    let seen = instance(&sim, &id).await.unwrap();
    assert_eq!(seen.status.status, InstanceStatus::Running);
    assert!(seen.addresses.is_empty());

    advance(secs(2)).await;
    let seen = instance(&sim, &id).await.unwrap();
    assert_eq!(
        seen.addresses,
        [
            Address::new("10.0.0.4", AddressScope::CloudLocal),
            Address::new("198.18.0.0", AddressScope::Public)
        ]
    );
    let interfaces = sim
        .environ()
        .network_interfaces(std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(interfaces.len(), 1);
    assert_eq!(interfaces[0][0].interface_name, "eth0");
    assert_eq!(interfaces[0][0].addresses, seen.addresses);
    assert_eq!(machine.status().await.unwrap(), MachineStatus::Pending);

    advance(secs(3)).await;
    assert_eq!(machine.status().await.unwrap(), MachineStatus::Started);
    let view = sim.provider_view(&tag).unwrap();
    assert_eq!(view.instance_id, id);
    assert_eq!(view.status.status, InstanceStatus::Running);
    assert_eq!(view.addresses, seen.addresses);
}

#[tokio::test(start_paused = true)]
async fn addresses_can_change_and_instances_stop() {
    let sim = sim(SimConfig::default());
    let (tag, id) = sim.add_provisioned_machine();
    advance(secs(60)).await;
    let new = vec![Address::new("10.9.9.9", AddressScope::CloudLocal)];
    sim.set_addresses(&tag, new.clone()).unwrap();
    assert_eq!(instance(&sim, &id).await.unwrap().addresses, new);

    sim.stop_instance(&tag).unwrap();
    let seen = instance(&sim, &id).await.unwrap();
    assert_eq!(seen.status.status, InstanceStatus::Stopped);
    assert!(seen.addresses.is_empty());
    assert_eq!(
        sim.model_view(&tag).unwrap().agent_status,
        MachineStatus::Down
    );
}

#[tokio::test(start_paused = true)]
async fn the_model_records_what_the_poller_sets() {
    let sim = sim(SimConfig::default());
    let (tag, id) = sim.add_provisioned_machine();
    advance(secs(20)).await;
    assert!(!sim.in_sync(&tag));
    let machine = sim.facade().machine(&tag).await.unwrap();
    assert_eq!(machine.tag(), tag);
    assert_eq!(machine.instance_id().await.unwrap(), id);
    assert_eq!(
        machine.instance_status().await.unwrap(),
        InstanceStatusInfo::new(InstanceStatus::Pending, "")
    );

    machine
        .set_instance_status(InstanceStatus::Running, String::new())
        .await
        .unwrap();
    let interfaces = sim.environ().network_interfaces(&[id]).await.unwrap();
    let (addresses, changed) = machine
        .set_provider_network_config(interfaces[0].clone())
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(addresses.len(), 2);
    let (_, changed) = machine
        .set_provider_network_config(interfaces[0].clone())
        .await
        .unwrap();
    assert!(!changed);

    let view = sim.model_view(&tag).unwrap();
    assert_eq!(view.instance_status.status, InstanceStatus::Running);
    assert_eq!(view.addresses, addresses);
    assert_eq!(view.interfaces, interfaces[0]);
    assert!(sim.in_sync(&tag));
    let counters = sim.counters();
    assert_eq!(counters.set_instance_status, 1);
    assert_eq!(counters.set_network_config, 2);
}

#[tokio::test(start_paused = true)]
async fn machine_lookups_fail_with_the_kinds_the_poller_acts_on() {
    let sim = sim(SimConfig::default());
    let facade = sim.facade();
    let tag = sim.add_machine();
    let machine = facade.machine(&tag).await.unwrap();
    let err = machine.instance_id().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotProvisioned);
    assert_eq!(err.to_string(), "machine 0 not provisioned");

    assert_eq!(machine.life(), Life::Alive);
    sim.set_life(&tag, Life::Dead).unwrap();
    assert_eq!(
        machine.life(),
        Life::Alive,
        "life is a copy until refreshed"
    );
    machine.refresh().await.unwrap();
    assert_eq!(machine.life(), Life::Dead);

    sim.remove(&tag).unwrap();
    let err = machine.refresh().await.unwrap_err();
    assert_eq!(err.to_string(), "machine 0 not found");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let Err(err) = facade.machine(&tag).await else {
        panic!("a removed machine was found");
    };
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(sim.counters().errors_of(ErrorKind::NotFound), 2);
    assert_eq!(sim.provision(&tag), Err(SimError::UnknownMachine(tag)));
}

#[tokio::test(start_paused = true)]
async fn manual_machines_are_unknown_to_the_provider() {
    let sim = sim(SimConfig::default());
    let tag = sim.add_manual_machine();
    let machine = sim.facade().machine(&tag).await.unwrap();
    assert!(machine.is_manual().await.unwrap());
    assert_eq!(machine.status().await.unwrap(), MachineStatus::Started);
    let id = machine.instance_id().await.unwrap();
    assert_eq!(id.as_str(), "manual:10.0.0.4");
    assert!(sim.provider_view(&tag).is_none());
    let err = sim.environ().instances(&[id]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoInstances);

    let other = sim.add_machine();
    sim.set_manual(&other, true).unwrap();
    assert!(sim.model_view(&other).unwrap().manual);
}

#[tokio::test(start_paused = true)]
async fn unknown_ids_are_left_out_of_an_answer() {
    let sim = sim(SimConfig::default());
    let (_, id) = sim.add_provisioned_machine();
    let unprovisioned = sim.add_machine();
    assert_eq!(
        sim.provision(&unprovisioned).map(|_| ()),
        Ok(()),
        "provisioning a known machine"
    );
    let ids = [InstanceId::from("i-nope"), id.clone()];
    let found = sim.environ().instances(&ids).await.unwrap();
    assert!(found[0].is_none());
    assert_eq!(found[1].as_ref().unwrap().id, id);
    assert!(matches!(
        check_instances(&found),
        Err(PollError::PartialInstances {
            missing: 1,
            asked: 2
        })
    ));
    let interfaces = sim.environ().network_interfaces(&ids).await.unwrap();
    assert!(interfaces[0].is_empty());
    assert_eq!(interfaces[1].len(), 1);
    assert!(sim.environ().instances(&[]).await.unwrap().is_empty());

    let counters = sim.counters();
    assert_eq!(counters.instances.calls, 2);
    assert_eq!(counters.instances.ids, 2);
    assert_eq!(counters.instances.max_ids, 2);
    assert_eq!(counters.network_interfaces.calls, 1);
}

#[tokio::test(start_paused = true)]
async fn a_provider_without_networking_says_not_supported() {
    let sim = sim(SimConfig {
        networking: false,
        ..SimConfig::default()
    });
    let (_, id) = sim.add_provisioned_machine();
    advance(secs(60)).await;
    let err = sim
        .environ()
        .network_interfaces(std::slice::from_ref(&id))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSupported);
    assert_eq!(err.to_string(), "network interfaces not supported");
    let seen = instance(&sim, &id).await.unwrap();
    let fallback = crate::provider::interfaces_from_addresses(&seen.addresses);
    assert_eq!(fallback.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_watcher_reports_what_changed() {
    let sim = sim(SimConfig::default());
    let (m0, _) = sim.add_provisioned_machine();
    let m1 = sim.add_machine();
    let mut watch = sim.facade().watch_model_machines();

    // The first batch holds every machine.
    assert_eq!(
        ready_batch(&mut watch),
        Some(tags(&["machine-0", "machine-1"]))
    );
    assert_eq!(ready_batch(&mut watch), None);

    // Provisioning and addresses are not watched; life is.
    sim.provision(&m1).unwrap();
    assert_eq!(ready_batch(&mut watch), None);
    sim.set_life(&m1, Life::Dying).unwrap();
    assert_eq!(ready_batch(&mut watch), Some(vec![m1.clone()]));

    // New machines are reported.
    let m2 = sim.add_machine();
    assert_eq!(ready_batch(&mut watch), Some(vec![m2.clone()]));

    // machine-0's agent starts 15 s after it was provisioned; machine-1's
    // at the same time, as it was provisioned in the same instant.
    let started = Instant::now();
    let batch = watch.next().await.unwrap().unwrap();
    assert_eq!(started.elapsed(), secs(15));
    assert_eq!(batch, [m0.clone(), m1.clone()]);

    // A restarted agent and a removed machine are reported.
    sim.restart_agent(&m0).unwrap();
    assert_eq!(ready_batch(&mut watch), Some(vec![m0.clone()]));
    sim.remove(&m2).unwrap();
    sim.set_life(&m1, Life::Dead).unwrap();
    assert_eq!(ready_batch(&mut watch), Some(vec![m1, m2]));
    assert_eq!(ready_batch(&mut watch), None);
}

#[tokio::test(start_paused = true)]
async fn a_watcher_of_an_empty_model_starts_with_an_empty_batch() {
    let sim = sim(SimConfig::default());
    let mut watch = sim.facade().watch_model_machines();
    assert_eq!(ready_batch(&mut watch), Some(vec![]));
    // Nothing to wait for: no change ever comes.
    advance(secs(3600)).await;
    assert_eq!(ready_batch(&mut watch), None);
}

#[test]
fn a_config_with_a_bad_rate_is_refused() {
    let err = Sim::new(SimConfig {
        faults: FaultConfig {
            error_rate: 2.0,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.keys(), ["faults.error_rate"]);
}

#[test]
fn control_errors_name_the_machine() {
    let sim = sim(SimConfig::default());
    let tag = sim.add_machine();
    assert_eq!(
        sim.stop_instance(&tag).unwrap_err().to_string(),
        "machine 0 is not provisioned"
    );
    sim.provision(&tag).unwrap();
    assert_eq!(
        sim.provision(&tag).unwrap_err().to_string(),
        "machine 0 is already provisioned"
    );
    let gone: MachineTag = "machine-9".parse().unwrap();
    assert_eq!(
        sim.set_life(&gone, Life::Dead).unwrap_err().to_string(),
        "machine 9 is not in the simulation"
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn any_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::MAX),
            (0u64..100).prop_map(Duration::from_secs),
            any::<u64>().prop_map(Duration::from_secs),
        ]
    }

    proptest! {
        #[test]
        fn any_delays_and_rates_never_panic(
            pending_for in any_duration(),
            allocating_for in any_duration(),
            address_delay in any_duration(),
            agent_start_delay in any_duration(),
            rates in prop::array::uniform4(prop_oneof![0.0..=1.0f64, Just(0.0), Just(1.0)]),
            seed in any::<u64>(),
        ) {
            let delays = [pending_for, allocating_for, address_delay, agent_start_delay];
            let sim = match Sim::new(SimConfig {
                seed,
                pending_for,
                allocating_for,
                address_delay,
                agent_start_delay,
                networking: true,
                faults: FaultConfig {
                    error_rate: rates[0],
                    throttle_rate: rates[1],
                    partial_rate: rates[2],
                    model_error_rate: rates[3],
                    ..FaultConfig::default()
                },
            }) {
                Ok(sim) => sim,
                Err(error) => {
                    // Only a delay past its range is refused.
                    prop_assert!(delays.iter().any(|d| *d > crate::config::YEAR), "{}", error);
                    return Ok(());
                }
            };
            let (tag, id) = sim.add_provisioned_machine();
            sim.add_manual_machine();
            sim.stop_instance(&tag).unwrap();
            let environ = sim.environ();
            let ids = [id, InstanceId::from("")];
            let _ = futures::executor::block_on(environ.instances(&ids));
            let _ = futures::executor::block_on(environ.network_interfaces(&ids));
            let _ = sim.provider_view(&tag);
            let _ = sim.model_view(&tag);
            if let Ok(machine) = futures::executor::block_on(sim.facade().machine(&tag)) {
                let _ = futures::executor::block_on(machine.status());
            }
        }
    }
}
