use std::time::Duration;

use futures::{FutureExt, StreamExt};

use super::*;
use crate::error::ErrorKind;
use crate::model::{MachineBatches, MachineStatus};
use crate::provider::{AddressScope, Instance, InstanceStatus, check_instances};

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

/// The outcome of `calls` one-id provider calls, in order.
async fn outcomes(sim: &Sim, calls: usize) -> Vec<Option<ErrorKind>> {
    let (_, id) = sim.add_provisioned_machine();
    let environ = sim.environ();
    let mut outcomes = Vec::new();
    for _ in 0..calls {
        let result = environ.instances(std::slice::from_ref(&id)).await;
        outcomes.push(result.err().map(|e| e.kind()));
    }
    outcomes
}

#[tokio::test(start_paused = true)]
async fn injected_errors_come_at_the_configured_rate_and_repeat_by_seed() {
    let faults = FaultConfig {
        error_rate: 0.2,
        ..FaultConfig::default()
    };
    let sim = faulty(42, faults);
    let first = outcomes(&sim, 2000).await;
    let failed = first.iter().filter(|o| o.is_some()).count();
    assert!((300..500).contains(&failed), "{failed} of 2000 failed");
    assert!(first.iter().flatten().all(|k| *k == ErrorKind::Other));
    assert_eq!(
        sim.counters().errors_of(ErrorKind::Other),
        failed as u64,
        "every injected error is counted"
    );

    let again = outcomes(&faulty(42, faults), 2000).await;
    assert_eq!(first, again, "the same seed gives the same run");
    let other = outcomes(&faulty(43, faults), 2000).await;
    assert_ne!(first, other);
}

#[tokio::test(start_paused = true)]
async fn throttled_calls_say_when_to_retry() {
    let sim = faulty(
        1,
        FaultConfig {
            throttle_rate: 0.5,
            retry_after: Some(secs(7)),
            ..FaultConfig::default()
        },
    );
    let all = outcomes(&sim, 1000).await;
    let throttled = all
        .iter()
        .filter(|o| **o == Some(ErrorKind::Throttled))
        .count();
    assert!((400..600).contains(&throttled), "{throttled} of 1000");

    let always = faulty(
        1,
        FaultConfig {
            throttle_rate: 1.0,
            ..FaultConfig::default()
        },
    );
    let err = always.environ().instances(&[]).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(secs(5)));
}

#[tokio::test(start_paused = true)]
async fn calls_past_the_rate_limit_are_throttled_until_the_second_is_over() {
    let sim = faulty(
        0,
        FaultConfig {
            max_calls_per_second: Some(2),
            ..FaultConfig::default()
        },
    );
    let environ = sim.environ();
    assert!(environ.instances(&[]).await.is_ok());
    advance(Duration::from_millis(400)).await;
    assert!(environ.network_interfaces(&[]).await.is_ok());
    let err = environ.instances(&[]).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_millis(600)));
    advance(Duration::from_millis(600)).await;
    assert!(environ.instances(&[]).await.is_ok());
    assert_eq!(sim.counters().errors_of(ErrorKind::Throttled), 1);
    assert_eq!(sim.counters().instances.calls, 3, "throttled calls count");
}

#[tokio::test(start_paused = true)]
async fn partial_answers_drop_instances_at_the_configured_rate() {
    let sim = faulty(
        9,
        FaultConfig {
            partial_rate: 0.25,
            ..FaultConfig::default()
        },
    );
    let ids: Vec<InstanceId> = (0..100).map(|_| sim.add_provisioned_machine().1).collect();
    let mut missing = 0;
    for _ in 0..20 {
        let found = sim.environ().instances(&ids).await.unwrap();
        assert_eq!(found.len(), ids.len());
        for (id, instance) in ids.iter().zip(&found) {
            match instance {
                Some(instance) => assert_eq!(&instance.id, id, "answers align with the ids"),
                None => missing += 1,
            }
        }
    }
    assert!((400..600).contains(&missing), "{missing} of 2000 dropped");
    assert_eq!(sim.counters().instances.max_ids, 100);
}

#[tokio::test(start_paused = true)]
async fn provider_latency_passes_on_tokio_s_clock() {
    let sim = faulty(
        0,
        FaultConfig {
            latency: secs(2),
            ..FaultConfig::default()
        },
    );
    let (_, id) = sim.add_provisioned_machine();
    let start = Instant::now();
    let seen = instance(&sim, &id).await.unwrap();
    assert_eq!(start.elapsed(), secs(2));
    assert_eq!(seen.status.status, InstanceStatus::Allocating);
}

#[tokio::test(start_paused = true)]
async fn a_revoked_credential_denies_access_until_restored() {
    let sim = sim(SimConfig::default());
    let (_, id) = sim.add_provisioned_machine();
    let credentials = sim.credential_api();
    let mut validity = credentials.watch_credential_validity();
    assert_eq!(validity.next().await, Some(true));

    sim.revoke_credential();
    let err = sim
        .environ()
        .instances(std::slice::from_ref(&id))
        .await
        .unwrap_err();
    assert!(err.is_unauthorised());
    assert!(
        err.to_string().starts_with("cloud denied access: "),
        "{err}"
    );
    assert!(
        sim.model_credential_valid(),
        "the model has not been told yet"
    );

    sim.set_invalidation_fails(true);
    assert!(
        credentials
            .invalidate_model_credential("first".into())
            .await
            .is_err()
    );
    sim.set_invalidation_fails(false);
    credentials
        .invalidate_model_credential("cloud denied access".into())
        .await
        .unwrap();
    assert!(!sim.model_credential_valid());
    assert_eq!(validity.next().await, Some(false));
    assert_eq!(sim.invalidation_reasons(), ["cloud denied access"]);
    assert_eq!(sim.counters().credential_invalidations, 2);

    sim.restore_credential();
    assert_eq!(validity.next().await, Some(true));
    assert!(sim.environ().instances(&[id]).await.is_ok());
    assert_eq!(sim.counters().errors_of(ErrorKind::Unauthorised), 1);
}

#[tokio::test(start_paused = true)]
async fn injected_api_server_failures() {
    let sim = faulty(
        5,
        FaultConfig {
            model_error_rate: 1.0,
            ..FaultConfig::default()
        },
    );
    let tag = sim.add_machine();
    let Err(err) = sim.facade().machine(&tag).await else {
        panic!("the injected failure did not happen");
    };
    assert_eq!(err.kind(), ErrorKind::Other);
    assert_eq!(
        err.to_string(),
        "fetching of machine 0: injected API server failure"
    );
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

#[tokio::test(start_paused = true)]
async fn faults_can_be_changed_while_the_simulation_runs() {
    let sim = faulty(
        5,
        FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        },
    );
    assert!(outcomes(&sim, 50).await.iter().all(Option::is_some));
    sim.set_faults(FaultConfig::default()).unwrap();
    assert!(outcomes(&sim, 50).await.iter().all(Option::is_none));

    let bad = FaultConfig {
        error_rate: 2.0,
        ..FaultConfig::default()
    };
    let error = sim.set_faults(bad).unwrap_err();
    assert!(error.to_string().contains("error_rate"), "{error}");
    assert_eq!(
        sim.faults(),
        FaultConfig::default(),
        "a refused change leaves the faults"
    );
}
