//! The simulation's faults: injected errors, throttling and its
//! retry-after, the per-second rate limit, partial answers, latency, a
//! revoked credential and failures of the model's API.

use super::*;

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
