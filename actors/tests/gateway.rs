//! The provider gateway against the simulated cloud, on a paused clock.

mod support;

use std::time::Duration;

use actix::prelude::*;
use futures::future::join_all;
use muster::config::Validate;
use muster::error::{ErrorKind, PollError};
use muster::names::MachineTag;
use muster::provider::{InstanceId, InstanceStatus};
use muster::sim::{FaultConfig, Sim, SimConfig};
use muster_actors::gateway::{
    CredentialValid, Fetch, Fetched, GatewayConfig, GatewayMetrics, GetGatewayReport,
    ProviderGateway,
};
use prometheus_client::registry::Registry;
use support::{logger, sim_gateway};

fn start(sim: &Sim, config: GatewayConfig) -> Addr<ProviderGateway> {
    config.validate().unwrap();
    sim_gateway(sim, config, logger()).start()
}

fn machines(sim: &Sim, n: usize) -> Vec<(MachineTag, InstanceId)> {
    (0..n).map(|_| sim.add_provisioned_machine()).collect()
}

async fn fetch_all(
    gateway: &Addr<ProviderGateway>,
    ids: impl IntoIterator<Item = InstanceId>,
) -> Vec<Result<Fetched, PollError>> {
    join_all(ids.into_iter().map(|id| gateway.send(Fetch { id })))
        .await
        .into_iter()
        .map(|sent| sent.expect("the gateway is running"))
        .collect()
}

fn instance_of(fetched: &Result<Fetched, PollError>) -> &muster::provider::Instance {
    match fetched {
        Ok(Fetched::Known { instance, .. }) => instance,
        other => panic!("expected a known instance, got {other:?}"),
    }
}

#[actix::test]
async fn requests_that_fall_due_together_share_a_call_and_each_gets_its_own_instance() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let machines = machines(&sim, 250);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let gateway = start(&sim, GatewayConfig::default());

    let answers = fetch_all(&gateway, machines.iter().map(|(_, id)| id.clone())).await;

    for ((tag, id), answer) in machines.iter().zip(&answers) {
        let instance = instance_of(answer);
        assert_eq!(&instance.id, id);
        let truth = sim.provider_view(tag).unwrap();
        assert_eq!(instance.status, truth.status);
        let Ok(Fetched::Known {
            interfaces: Some(interfaces),
            ..
        }) = answer
        else {
            panic!("interfaces expected for {tag}");
        };
        let addresses = muster::provider::addresses_of(interfaces);
        assert_eq!(addresses, truth.addresses);
    }
    let counters = sim.counters();
    assert_eq!(
        counters.instances.calls, 3,
        "250 ids in batches of at most 100"
    );
    assert_eq!(counters.instances.max_ids, 100);
    assert_eq!(counters.network_interfaces.calls, 3);
    let report = gateway.send(GetGatewayReport).await.unwrap();
    assert_eq!(report.calls["instances"], 3);
    assert_eq!(report.ids["instances"], 250);
    assert_eq!(report.queued, 0);
}

#[actix::test]
async fn requests_further_apart_than_the_window_go_separately() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let machines = machines(&sim, 2);
    let gateway = start(&sim, GatewayConfig::default());
    fetch_all(&gateway, [machines[0].1.clone()]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    fetch_all(&gateway, [machines[1].1.clone()]).await;
    assert_eq!(sim.counters().instances.calls, 2);
}

#[actix::test]
async fn the_rate_limit_paces_calls_below_the_providers_limit() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig {
        faults: FaultConfig {
            max_calls_per_second: Some(4),
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .unwrap();
    let machines = machines(&sim, 1_000);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let config = GatewayConfig {
        max_batch: 10,
        calls_per_second: 4.0,
        burst: 1,
        ..GatewayConfig::default()
    };
    let gateway = start(&sim, config);
    let started = tokio::time::Instant::now();

    let answers = fetch_all(&gateway, machines.iter().map(|(_, id)| id.clone())).await;

    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Ok(Fetched::Known { .. })))
    );
    let counters = sim.counters();
    assert_eq!(counters.errors_of(ErrorKind::Throttled), 0, "{counters:?}");
    assert_eq!(counters.instances.calls, 100);
    assert_eq!(counters.network_interfaces.calls, 100);
    // 200 calls at 4 a second take at least 49.75 s of virtual time.
    assert!(started.elapsed() >= Duration::from_millis(49_750));
}

#[actix::test]
async fn throttled_calls_wait_and_go_again_until_answered() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig {
        seed: 11,
        faults: FaultConfig {
            throttle_rate: 0.5,
            retry_after: Some(Duration::from_secs(7)),
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .unwrap();
    let machines = machines(&sim, 300);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let gateway = start(&sim, GatewayConfig::default());

    let answers = fetch_all(&gateway, machines.iter().map(|(_, id)| id.clone())).await;

    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Ok(Fetched::Known { .. })))
    );
    let report = gateway.send(GetGatewayReport).await.unwrap();
    let throttled = sim.counters().errors_of(ErrorKind::Throttled);
    assert!(throttled > 0);
    assert_eq!(report.throttles, throttled);
    assert_eq!(report.errors["throttled"], throttled);
}

#[actix::test]
async fn a_denied_credential_is_invalidated_once_and_polling_waits_for_it() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    // Two full batches go at once and are both denied; the rest waits its
    // window and finds polling paused.
    let machines = machines(&sim, 250);
    let gateway = start(&sim, GatewayConfig::default());
    tokio::time::sleep(Duration::from_secs(60)).await;
    sim.revoke_credential();

    let pending = {
        let gateway = gateway.clone();
        let ids: Vec<_> = machines.iter().map(|(_, id)| id.clone()).collect();
        tokio::spawn(async move { fetch_all(&gateway, ids).await })
    };
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(!pending.is_finished(), "polling is paused");
    let report = gateway.send(GetGatewayReport).await.unwrap();
    assert!(report.credential_paused);
    assert_eq!(report.credential_invalidations, 1);
    assert_eq!(sim.counters().credential_invalidations, 1);
    assert_eq!(sim.counters().instances.calls, 2, "no calls while paused");

    sim.restore_credential();
    let answers = pending.await.unwrap();
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Ok(Fetched::Known { .. })))
    );
    let report = gateway.send(GetGatewayReport).await.unwrap();
    assert!(!report.credential_paused);
}

#[actix::test]
async fn the_host_can_say_the_credential_is_valid_again() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (_, id) = sim.add_provisioned_machine();
    let gateway = start(&sim, GatewayConfig::default());
    sim.revoke_credential();
    let pending = {
        let gateway = gateway.clone();
        let id = id.clone();
        tokio::spawn(async move { gateway.send(Fetch { id }).await })
    };
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!pending.is_finished());
    // The cloud accepts the credential again, but the model still records
    // it as invalid until the host says otherwise.
    sim.restore_credential();
    gateway.do_send(CredentialValid(false));
    gateway.do_send(CredentialValid(true));
    let answer = pending.await.unwrap().unwrap();
    assert!(matches!(answer, Ok(Fetched::Known { .. })));
}

#[actix::test]
async fn a_call_that_hangs_is_cut_off() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig {
        faults: FaultConfig {
            latency: Duration::from_secs(120),
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .unwrap();
    let (_, id) = sim.add_provisioned_machine();
    let gateway = start(&sim, GatewayConfig::default());
    let answers = fetch_all(&gateway, [id]).await;
    let error = answers[0].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert_eq!(
        error.to_string(),
        "provider call timed out: no answer after 30s"
    );
    let report = gateway.send(GetGatewayReport).await.unwrap();
    assert_eq!(report.errors["timeout"], 1);
}

#[actix::test]
async fn error_kinds_have_one_name_in_the_report_and_the_metrics() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig {
        networking: false,
        ..SimConfig::default()
    })
    .unwrap();
    let (_, id) = sim.add_provisioned_machine();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mut registry = Registry::default();
    let gateway = ProviderGateway::new(
        sim.environ(),
        sim.credential_api(),
        GatewayConfig::default(),
        GatewayMetrics::new(&mut registry),
        logger(),
    )
    .start();
    fetch_all(&gateway, [id]).await;

    let report = gateway.send(GetGatewayReport).await.unwrap();
    let kinds: Vec<&str> = report.errors.keys().map(String::as_str).collect();
    assert_eq!(kinds, [ErrorKind::NotSupported.as_str()]);
    assert_eq!(kinds, ["not-supported"]);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"muster_provider_errors_total{kind="not-supported"} 1"#),
        "{text}"
    );
}

#[actix::test]
async fn unknown_instances_are_reported_unknown_and_the_rest_answered() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let machines = machines(&sim, 3);
    let gateway = start(&sim, GatewayConfig::default());
    let stranger = InstanceId::new("i-not-there");
    let answers = fetch_all(
        &gateway,
        [
            machines[0].1.clone(),
            stranger.clone(),
            machines[1].1.clone(),
        ],
    )
    .await;
    assert_eq!(instance_of(&answers[0]).id, machines[0].1);
    assert!(matches!(answers[1], Ok(Fetched::Unknown)));
    assert_eq!(instance_of(&answers[2]).id, machines[1].1);

    let only_strangers = fetch_all(&gateway, [stranger]).await;
    assert!(matches!(only_strangers[0], Ok(Fetched::Unknown)));
    assert_eq!(
        sim.counters().network_interfaces.calls,
        1,
        "skipped when none known"
    );
}

#[actix::test]
async fn without_networking_the_instance_comes_without_interfaces() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig {
        networking: false,
        ..SimConfig::default()
    })
    .unwrap();
    let (_, id) = sim.add_provisioned_machine();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let gateway = start(&sim, GatewayConfig::default());
    let answers = fetch_all(&gateway, [id]).await;
    let Ok(Fetched::Known {
        instance,
        interfaces,
    }) = &answers[0]
    else {
        panic!("{answers:?}");
    };
    assert_eq!(*interfaces, None);
    assert_eq!(instance.status.status, InstanceStatus::Running);
    assert!(!instance.addresses.is_empty());
}

#[actix::test]
async fn a_model_whose_hold_ran_out_gets_no_provider_call_until_held_again() {
    use muster::names::ModelUuid;
    use muster_actors::ModelHolds;
    use muster_actors::gateway::ModelFetch;
    use std::sync::Arc;

    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (_, id) = sim.add_provisioned_machine();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let model = ModelUuid::from_u128(5);
    let holds = ModelHolds::new();
    let gate_holds = holds.clone();
    let gateway = ProviderGateway::for_models(
        sim.environ(),
        [(model, sim.credential_api())],
        GatewayConfig::default(),
        GatewayMetrics::new(&mut Registry::default()),
        logger(),
    )
    .gated_by(Arc::new(move |m: &ModelUuid| gate_holds.is_valid(m)))
    .start();
    let fetch = || {
        gateway.send(ModelFetch {
            model,
            id: id.clone(),
        })
    };
    holds.hold_until(model, tokio::time::Instant::now() + Duration::from_secs(2));
    assert!(fetch().await.unwrap().is_ok());
    let calls = sim.counters().instances.calls;
    assert_eq!(calls, 1);
    // The process stalls past the hold's end; nothing released it yet.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(holds.is_held(&model));
    let refused = fetch().await.unwrap().unwrap_err();
    assert!(refused.to_string().contains("not valid now"), "{refused}");
    assert_eq!(sim.counters().instances.calls, calls, "no provider call");
    // Held again, it is called for again.
    holds.hold_until(model, tokio::time::Instant::now() + Duration::from_secs(2));
    assert!(fetch().await.unwrap().is_ok());
    assert_eq!(sim.counters().instances.calls, calls + 1);
}
